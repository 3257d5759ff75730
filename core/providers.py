"""ONNX Runtime execution providers: honest selection (no silent CPU fallback), IO binding, checks.

``cpu``: CPUExecutionProvider. ``cuda``: ``onnxruntime.preload_dlls()`` where it exists, a session
with CUDAExecutionProvider first, and :class:`ProviderError` unless the session really runs on it.
``auto``: CUDA when that works, else CPU, with the reason kept in :attr:`Session.note`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PROVIDERS", "ProviderError", "Session", "create_session", "run_with_binding", "cuda_provider_check",
           "installed_runtimes", "physical_cores", "session_options"]

PROVIDERS = ("auto", "cpu", "cuda")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"


class ProviderError(RuntimeError):
    """The requested execution provider cannot run this model here."""


@dataclass
class Session:
    """An ``onnxruntime.InferenceSession`` and the provider that actually runs it."""

    session: Any
    provider: str        # the provider the session runs on, e.g. "CUDAExecutionProvider"
    device: str          # "cuda" or "cpu": where IO binding places inputs and outputs
    note: str = ""       # why auto chose what it chose


def installed_runtimes() -> dict[str, str]:
    """Installed onnxruntime distributions (name -> version), found through importlib.metadata."""
    from importlib import metadata

    found = {}
    for name in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _missing_library(error: str) -> str | None:
    """The shared library named in a loader error ("libcudnn.so.9: cannot open shared object file")."""
    import re

    match = re.search(r"([\w.+-]+\.(?:so(?:\.\d+)*|dll))\s*:\s*cannot open shared object file", error) or \
        re.search(r"(?:Could not|cannot|Unable to) (?:load|locate|find)[^\n]*?([\w.+-]+\.(?:so(?:\.\d+)*|dll))", error)
    return match.group(1) if match else None


def cuda_provider_check() -> dict[str, Any]:
    """Whether the CUDA provider loads: ``{"listed", "loads", "error", "missing_library"}``.

    ``listed``: onnxruntime was built with it. ``loads``: its shared library and the CUDA/cuDNN
    libraries it links load (checked with ``ctypes``, which names the first missing library).
    """
    import ctypes

    import onnxruntime as ort

    result: dict[str, Any] = {"listed": _CUDA in ort.get_available_providers(), "loads": False,
                              "error": None, "missing_library": None}
    if not result["listed"]:
        result["error"] = (f"this onnxruntime build ({ort.__version__}) has no {_CUDA}; "
                           "install onnxruntime-gpu (and uninstall onnxruntime)")
        return result
    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
        except Exception as exc:  # preload is best effort: report what it said, then try the provider
            result["error"] = f"onnxruntime.preload_dlls(): {exc}"
    library = Path(ort.__file__).parent / "capi" / ("onnxruntime_providers_cuda.dll" if os.name == "nt"
                                                   else "libonnxruntime_providers_cuda.so")
    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        result["error"] = f"cannot load {library.name}: {exc}"
        result["missing_library"] = _missing_library(str(exc))
        return result
    result["loads"] = True
    result["error"] = None
    return result


def physical_cores() -> int:
    """Physical CPU cores this process may run on (hyper-threads not counted): the default number
    of ONNX Runtime intra-op threads. Linux reads /proc/cpuinfo; elsewhere ``os.cpu_count()``."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores: set[tuple[str, str]] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            physical = core = None
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not line.strip() and core is not None:
                    cores.add((physical or "0", core))
                    physical = core = None
            if core is not None:
                cores.add((physical or "0", core))
    except OSError:
        cores = set()
    return max(1, min(allowed, len(cores) or allowed))


def session_options(threads: int | None = None) -> Any:
    """Session options: every graph optimisation level on (fusions of an already optimised file
    are cheap at load), ``threads`` intra-op threads (default: physical cores), one inter-op thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int(threads) if threads else physical_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def _cuda_session(path: Path, threads: int | None) -> Session:
    import onnxruntime as ort

    check = cuda_provider_check()
    if not check["listed"] or not check["loads"]:
        missing = f" (missing library: {check['missing_library']})" if check["missing_library"] else ""
        raise ProviderError(f"--provider cuda: the CUDA provider is not usable: {check['error']}{missing}; "
                            "run `bigmodel doctor`")
    try:
        session = ort.InferenceSession(str(path), session_options(threads), providers=[_CUDA, _CPU])
    except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
        raise ProviderError(f"--provider cuda: cannot create a CUDA session for {path}: {exc}") from None
    active = session.get_providers()
    if not active or active[0] != _CUDA:
        raise ProviderError(f"--provider cuda: onnxruntime fell back to {active[0] if active else 'nothing'} "
                            f"for {path} (the CUDA provider failed to initialise); run `bigmodel doctor`")
    return Session(session, _CUDA, "cuda")


def create_session(path: str | os.PathLike, provider: str = "auto", *, threads: int | None = None) -> Session:
    """An inference session for ``path`` on ``provider`` ("auto", "cpu" or "cuda")."""
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise ValueError(f"--provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
    path = Path(path)
    if provider == "cuda":
        return _cuda_session(path, threads)
    note = ""
    if provider == "auto":
        if _CUDA in ort.get_available_providers():
            try:
                session = _cuda_session(path, threads)
                session.note = "auto: CUDA works"
                return session
            except ProviderError as exc:
                note = f"auto: CUDA not used ({exc})"
        else:
            note = "auto: this onnxruntime has no CUDA provider"
    session = ort.InferenceSession(str(path), session_options(threads), providers=[_CPU])
    return Session(session, _CPU, "cpu", note)


def run_with_binding(session: Session, feeds: dict[str, np.ndarray], output: str = "logits") -> np.ndarray:
    """Run one batch through IO binding: inputs copied once to the session's device, the output
    allocated there and copied back."""
    import onnxruntime as ort

    binding = session.session.io_binding()
    for name, array in feeds.items():
        value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), session.device, 0)
        binding.bind_ortvalue_input(name, value)
    binding.bind_output(output, session.device)
    session.session.run_with_iobinding(binding)
    return binding.copy_outputs_to_cpu()[0]
