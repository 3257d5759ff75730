"""ONNX Runtime inference: :class:`Predictor` (``bigmodel.load``), ``doctor`` and ``bench``.

A predictor needs only the exported ``.onnx`` file and the ``<name>.preprocess/`` folder beside it:
preprocessing is rebuilt from those (numpy and ``tokenizers``; torch is never imported here).
Predictions carry ``label``, ``score`` and ``top_k``, plus the fields of the sector's decision
(e.g. ``handoff``) when the metadata holds one.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .export import decode_metadata, preprocess_dir_for
from .providers import ProviderError, create_session, run_with_binding
from .specs import LabelMap, resolve_callable

__all__ = ["Predictor", "ProviderError", "IMAGE_SUFFIXES", "read_image", "read_input_file", "doctor", "bench"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as an HxW or HxWxC array (PNG/JPEG/... through Pillow, DICOM through pydicom)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    if path.suffix.lower() in (".dcm", ".dicom"):
        from .loaders import read_dicom

        return read_dicom(path)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(image, dtype=np.uint16)
            if image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            return np.asarray(image)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: cannot read the image ({exc})") from None


def _rows_to_columns(rows: list[dict], columns: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for name in columns:
        values = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(f"tabular input [{i}]: expected a dict of column -> value, got {type(row).__name__}")
            if name not in row:
                raise ValueError(f"tabular input [{i}]: missing column {name!r} (expected columns: {columns})")
            values.append(row[name])
        out[name] = np.array(values, dtype=object)
    return out


class Predictor:
    """An exported model on ONNX Runtime. Build it with :meth:`load` (or ``bigmodel.load``)."""

    def __init__(self, path: Path, session: Any, metadata: dict[str, Any], preprocessor: Any,
                 batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.path = path
        self._session = session
        self.metadata = metadata
        self.kind: str = metadata["kind"]
        self.label_map = LabelMap.model_validate(metadata["label_map"])
        self.preprocessor = preprocessor
        self.batch_size = int(batch_size)
        self.input_names = [i.name for i in session.session.get_inputs()]
        decision = metadata.get("decision")
        self._decision = resolve_callable(decision["ref"]) if decision else None
        self._decision_params = decision.get("params", {}) if decision else None

    @property
    def provider(self) -> str:
        """The execution provider that runs the model (e.g. ``CPUExecutionProvider``)."""
        return self._session.provider

    @property
    def provider_note(self) -> str:
        return self._session.note

    @classmethod
    def load(cls, model: str | os.PathLike, *, provider: str = "auto", batch_size: int = 32,
             threads: int | None = None) -> "Predictor":
        """``model``: an exported ``.onnx`` file, or a run directory holding ``export/model.onnx``."""
        path = Path(model).expanduser()
        if path.is_dir():
            candidate = path / "export" / "model.onnx"
            if not candidate.is_file():
                others = sorted(p.name for p in (path / "export").glob("*.onnx")) if (path / "export").is_dir() else []
                hint = f" (found {', '.join(others)}: pass one of those files)" if others else ""
                raise FileNotFoundError(f"{candidate}: the run has no ONNX export{hint}; "
                                        f"run `bigmodel export --onnx {path}` first")
            path = candidate
        elif not path.is_file():
            raise FileNotFoundError(f"{path}: no such ONNX file or run directory")
        session = create_session(path, provider, threads=threads)
        raw = session.session.get_modelmeta().custom_metadata_map
        if "kind" not in raw or "label_map" not in raw or "preprocess" not in raw:
            raise ValueError(f"{path}: no bigmodel metadata (was it written by `bigmodel export --onnx`?)")
        metadata = decode_metadata(raw)
        preprocessor = cls._load_preprocessor(path, metadata["preprocess"])
        return cls(path, session, metadata, preprocessor, batch_size)

    @staticmethod
    def _load_preprocessor(path: Path, embedded: dict) -> Any:
        from .tasks.base import PREPROCESS_FILE, load_preprocessor, preprocessor_from_spec

        folder = preprocess_dir_for(path)
        if not (folder / PREPROCESS_FILE).is_file():
            if embedded.get("kind") == "text":
                raise FileNotFoundError(f"{folder}: the tokenizer files of {path.name} are missing "
                                        "(bigmodel export writes them beside the model: keep them together)")
            return preprocessor_from_spec(embedded, None)
        preprocessor = load_preprocessor(folder)
        on_disk = json.loads(json.dumps(preprocessor.spec(), sort_keys=True))
        if on_disk != json.loads(json.dumps(embedded, sort_keys=True)):
            raise ValueError(f"{folder / PREPROCESS_FILE}: differs from the preprocessing spec embedded in {path.name} "
                             "(the files beside the model belong to another export)")
        return preprocessor

    # -- inputs ----------------------------------------------------------------------------
    def _prepare(self, batch: list) -> Any:
        if self.kind == "text":
            return list(batch)
        if self.kind == "image":
            return [read_image(item) if isinstance(item, (str, os.PathLike)) else np.asarray(item) for item in batch]
        spec = self.metadata["preprocess"]
        return _rows_to_columns(list(batch), list(spec.get("numeric", [])) + list(spec.get("categorical", [])))

    def _as_list(self, inputs: Any) -> list:
        if isinstance(inputs, (str, bytes, os.PathLike)):
            raise ValueError("predict() takes a list of inputs; wrap a single input in a list")
        if self.kind == "tabular" and isinstance(inputs, dict):  # dict of columns (the data contract)
            lengths = {len(v) for v in inputs.values()}
            if len(lengths) != 1:
                raise ValueError(f"tabular columns have different lengths: {sorted(lengths)}")
            n = lengths.pop()
            return [{k: v[i] for k, v in inputs.items()} for i in range(n)]
        return list(inputs)

    # -- running ---------------------------------------------------------------------------
    def logits(self, inputs: Any) -> np.ndarray:
        """Raw logits ``(N, num_labels)`` for a list of inputs, in batches of ``batch_size``."""
        items = self._as_list(inputs)
        if not items:
            return np.zeros((0, len(self.label_map)), dtype=np.float32)
        out = []
        for start in range(0, len(items), self.batch_size):
            arrays = self.preprocessor(self._prepare(items[start:start + self.batch_size]))
            missing = [n for n in self.input_names if n not in arrays]
            if missing:
                raise ValueError(f"{self.path.name}: input {missing[0]!r} is not produced by the preprocessor")
            feeds = {name: arrays[name] for name in self.input_names}
            if self._session.device == "cpu":
                out.append(self._session.session.run(["logits"], feeds)[0])
            else:
                out.append(run_with_binding(self._session, feeds))
        return np.concatenate(out).astype(np.float32)

    def predict_proba(self, inputs: Any) -> np.ndarray:
        from .metrics import softmax

        return softmax(self.logits(inputs))

    def predict(self, inputs: Any, *, top_k: int = 5) -> list[dict[str, Any]]:
        """One dict per input: ``label``, ``score``, ``top_k`` ([{label, score}]) and decision fields."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        proba = self.predict_proba(inputs)
        names = self.label_map.names
        k = min(top_k, len(names))
        extra: list[dict] = [{} for _ in range(len(proba))]
        if self._decision is not None and len(proba):
            extra = list(self._decision.apply(proba, self._decision_params, self.label_map))
            if len(extra) != len(proba):
                raise ValueError(f"decision {self.metadata['decision']['ref']}: apply() returned {len(extra)} "
                                 f"rows for {len(proba)} inputs")
        results = []
        for row, fields in zip(proba, extra):
            order = np.argsort(-row, kind="stable")[:k]
            results.append({
                "label": names[int(order[0])],
                "score": float(row[order[0]]),
                "top_k": [{"label": names[int(i)], "score": float(row[i])} for i in order],
                **fields,
            })
        return results

    def __repr__(self) -> str:
        return f"Predictor({str(self.path)!r}, kind={self.kind!r}, provider={self.provider!r})"


# -- inputs from the command line ----------------------------------------------------------------


def _pick(row: dict, column: str | None, kind: str, where: str) -> Any:
    if kind == "tabular":
        return row
    wanted = column or ("text" if kind == "text" else "path")
    if wanted in row:
        return row[wanted]
    if column is None and len(row) == 1:
        return next(iter(row.values()))
    raise ValueError(f"{where}: no column {wanted!r} (columns: {sorted(row)}); choose one with --column")


def read_input_file(path: Path, kind: str, column: str | None = None) -> list:
    """Inputs listed in a CSV (header row), JSONL (one object or string a line) or, for text, TXT file."""
    suffix = path.suffix.lower()
    items: list = []
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for line, row in enumerate(reader, start=2):
                items.append(_pick(row, column, kind, f"{path}:{line}"))
    elif suffix in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8") as fh:
            for line, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{line}: not valid JSON ({exc.msg})") from None
                items.append(_pick(value, column, kind, f"{path}:{line}") if isinstance(value, dict) else value)
    elif suffix == ".txt" and kind == "text":
        items = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        raise ValueError(f"{path}: unsupported input file (use .csv, .jsonl{', .txt' if kind == 'text' else ''})")
    if kind == "image":  # image paths in a list are relative to the list
        items = [str(path.parent / p) if isinstance(p, str) and not Path(p).is_absolute() else p for p in items]
    return items


# -- doctor --------------------------------------------------------------------------------------


def doctor() -> dict[str, Any]:
    """Versions, the onnxruntime/onnxruntime-gpu conflict, and whether the CUDA provider loads."""
    from importlib import metadata

    from .providers import cuda_provider_check, installed_runtimes

    versions = {}
    for name in ("bigmodel", "torch", "transformers", "onnxruntime", "onnxruntime-gpu", "onnx", "onnxscript",
                 "numpy", "tokenizers", "timm"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    problems = []
    runtimes = installed_runtimes()
    if "onnxruntime" in runtimes and "onnxruntime-gpu" in runtimes:
        problems.append(
            f"onnxruntime {runtimes['onnxruntime']} and onnxruntime-gpu {runtimes['onnxruntime-gpu']} are both "
            "installed: they share the 'onnxruntime' module and overwrite each other; fix: pip uninstall -y "
            "onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu (or onnxruntime for CPU only)")
    if not runtimes:
        problems.append("no onnxruntime installed: pip install 'bigmodel[cpu]' or 'bigmodel[gpu]'")
    cuda: dict[str, Any] = {"listed": False, "loads": False, "error": "onnxruntime missing", "missing_library": None}
    providers: list[str] = []
    if runtimes:
        import onnxruntime as ort

        providers = list(ort.get_available_providers())
        cuda = cuda_provider_check()
    torch_cuda = None
    if versions["torch"]:
        import torch

        torch_cuda = bool(torch.cuda.is_available())
    return {"versions": versions, "onnxruntime_distributions": runtimes, "providers": providers, "cuda": cuda,
            "torch_cuda": torch_cuda, "problems": problems}


# -- bench ---------------------------------------------------------------------------------------


def _percentiles(times: list[float], batch: int) -> dict[str, float]:
    ms = np.asarray(times) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)), "throughput": float(batch / np.median(ms) * 1e3)}


def _time(fn: Callable[[], Any], *, warmup: int, iters: int, sync: Callable[[], Any] | None = None) -> list[float]:
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - start)
    return times


def bench_arrays(preprocessor: Any, inputs: Any, kind: str, batch: int, seq_len: int) -> dict[str, np.ndarray]:
    """A batch of ``batch`` real samples; text is made exactly ``seq_len`` tokens long."""
    from .tasks.base import count_inputs, take_inputs

    n = count_inputs(inputs)
    idx = [i % n for i in range(batch)]
    if kind != "text":
        return preprocessor(take_inputs(inputs, idx))
    texts = [" ".join(inputs[(i + j) % n] for j in range(8)) for i in idx]  # long enough, then cut
    arrays = preprocessor(texts)
    width = arrays["input_ids"].shape[1]
    if width < seq_len:
        raise ValueError(f"--seq-len {seq_len}: the model's max_length allows at most {width} tokens")
    return {k: np.ascontiguousarray(v[:, :seq_len]) for k, v in arrays.items()}


def _synthetic_inputs(spec: dict[str, Any], kind: str) -> Any:
    if kind == "text":
        return ["the quick brown fox jumps over the lazy dog while the bank processes my card " * 4]
    if kind == "image":
        height, width = spec["image_size"]
        return [np.random.default_rng(0).integers(0, 256, (height, width, spec["channels"]), dtype=np.uint8)]
    columns: dict[str, np.ndarray] = {name: np.zeros(1) for name in spec.get("numeric", [])}
    for name in spec.get("categorical", []):
        vocabulary = spec.get("vocabularies", {}).get(name) or [None]
        columns[name] = np.array([vocabulary[0]], dtype=object)
    return columns


def bench(model: str | os.PathLike, *, provider: str = "auto", batch_sizes: Iterable[int] = (1, 8, 32),
          seq_len: int = 32, warmup: int = 5, iters: int = 50, threads: int | None = None,
          echo: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """Latency percentiles and throughput of PyTorch eager vs ONNX Runtime fp32/fp16/int8, one run.

    ``model``: a run directory (PyTorch eager, and the ONNX variants exported from it into a
    temporary folder through the gated export) or an ``.onnx`` file (that file alone).
    Returns rows ``{variant, batch, p50_ms, p90_ms, p99_ms, throughput, speedup}`` where
    ``speedup`` is eager p50 / variant p50 at the same batch size.
    """
    import tempfile

    from .export import convert, export_onnx

    path = Path(model)
    batch_sizes = [int(b) for b in batch_sizes]
    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"--batch-sizes: positive integers, got {batch_sizes}")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bigmodel-bench-") as tmp:
        variants: dict[str, Path] = {}
        torch_model = None
        if path.is_dir():
            from .export import _is_transformer_text
            from .runs import Run

            run = Run.load(path)
            inputs, _ = run.heldout()
            preprocessor, kind = run.preprocessor(), run.kind
            echo("exporting fp32 through the validation gate ...")
            fp32 = export_onnx(run, out=Path(tmp) / "model.onnx", optimize=True, max_samples=64, echo=lambda s: None)
            variants["ort-fp32"] = fp32
            transformer = _is_transformer_text(run)
            for precision in ("fp16", "int8"):
                dst = Path(tmp) / f"model.{precision}.onnx"
                convert(fp32, dst, precision=precision, optimize=False, transformer=transformer)
                variants[f"ort-{precision}"] = dst
            torch_model = run.build_model()
        else:  # one exported file: no PyTorch model, synthetic inputs of the right shapes
            predictor = Predictor.load(path, provider="cpu")
            preprocessor, kind = predictor.preprocessor, predictor.kind
            inputs = _synthetic_inputs(predictor.metadata["preprocess"], kind)
            variants[f"ort-{predictor.metadata.get('precision', 'fp32')}"] = path
        sessions = {name: create_session(p, provider, threads=threads) for name, p in variants.items()}
        used = {s.provider for s in sessions.values()}
        echo(f"provider: {', '.join(sorted(used))}" + "".join(f" ({s.note})" for s in sessions.values() if s.note)[:200])
        for batch in batch_sizes:
            arrays = bench_arrays(preprocessor, inputs, kind, batch, seq_len)
            eager_p50 = None
            if torch_model is not None:
                import torch

                if threads:
                    torch.set_num_threads(int(threads))
                device = "cuda" if "CUDAExecutionProvider" in used else "cpu"
                tm = torch_model.to(device)
                if device == "cuda":
                    tm = tm.half()
                tensors = {k: torch.from_numpy(v).to(device) for k, v in arrays.items()}
                if device == "cuda":
                    tensors = {k: (v.half() if v.is_floating_point() else v) for k, v in tensors.items()}
                sync = torch.cuda.synchronize if device == "cuda" else None
                with torch.inference_mode():
                    stats = _percentiles(_time(lambda: tm(**tensors), warmup=warmup, iters=iters, sync=sync), batch)
                eager_p50 = stats["p50_ms"]
                rows.append({"variant": f"torch-eager{'-fp16' if device == 'cuda' else ''}", "batch": batch,
                             **stats, "speedup": 1.0})
            for name, session in sessions.items():
                feeds = {i.name: arrays[i.name] for i in session.session.get_inputs()}
                if session.device == "cpu":
                    fn = lambda s=session, f=feeds: s.session.run(["logits"], f)  # noqa: E731
                else:
                    fn = lambda s=session, f=feeds: run_with_binding(s, f)  # noqa: E731
                stats = _percentiles(_time(fn, warmup=warmup, iters=iters), batch)
                rows.append({"variant": name, "batch": batch, **stats,
                             "speedup": (eager_p50 / stats["p50_ms"]) if eager_p50 else None})
    return rows


def format_bench(rows: list[dict[str, Any]]) -> list[str]:
    head = f"{'variant':<16} {'batch':>5} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'samples/s':>10} {'vs eager':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        speed = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        lines.append(f"{r['variant']:<16} {r['batch']:>5} {r['p50_ms']:>9.2f} {r['p90_ms']:>9.2f} {r['p99_ms']:>9.2f} "
                     f"{r['throughput']:>10.1f} {speed:>9}")
    return lines
