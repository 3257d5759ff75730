"""``bigmodel export --onnx``: a run directory -> a validated ONNX file with embedded metadata.

Steps: rebuild the trained torch model from the run, export it with ``torch.onnx.export`` (an
example batch of real held-out samples, a dynamic batch axis and, for text, a dynamic sequence
axis; the TorchScript exporter with eager attention for BERT-like text models, so onnxruntime's
optimizer fuses them, the dynamo exporter for the rest), optionally optimise (onnxruntime's
transformer optimizer with the config's heads and hidden size), convert to
fp16 or quantise to int8 (onnxruntime's dynamic quantization; ``keep_fp32`` leaves a transformer's
feed-forward layers in fp32, ``auto`` tries more of them until the gate passes), embed the metadata,
then run the
**validation gate**: PyTorch and ONNX Runtime on the run's real held-out samples, in batches of
1, 7 and 32. The output is published only when the gate passes; a failing gate removes it and
raises :class:`ExportError`. The numbers go to ``export_report.json`` either way.

Files written beside ``<name>.onnx``: ``<name>.preprocess/`` (preprocess.json and the tokenizer)
and the report (``export_report.json`` for ``model.onnx``, ``<name>.export_report.json`` else).
Module-level imports are light; torch and onnxruntime load inside the functions.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .specs import atomic_write_text

__all__ = [
    "ExportError",
    "TOLERANCES",
    "MAX_DISAGREEMENT",
    "GATE_BATCH_SIZES",
    "JSON_METADATA_KEYS",
    "export_onnx",
    "default_output",
    "preprocess_dir_for",
    "report_path_for",
    "read_metadata",
    "decode_metadata",
    "convert",
    "transformer_shape",
    "ffn_matmuls",
    "int8_fp32_nodes",
    "INT8_KEEP_FP32",
    "TORCHSCRIPT_OPSET",
]

# max |logit difference| per precision (int8 is judged by label agreement alone)
TOLERANCES: dict[str, float | None] = {"fp32": 1e-4, "fp16": 2e-2, "int8": None}
# largest share of held-out samples whose predicted label may differ from PyTorch's
MAX_DISAGREEMENT = {"fp32": 0.001, "fp16": 0.001, "int8": 0.01}
GATE_BATCH_SIZES = (1, 7, 32)  # the first batch holds 1 sample, the second 7, then 32 each
# opset of the TorchScript exporter used for transformer text models (Attention fusion is tested there)
TORCHSCRIPT_OPSET = 17
TORCHSCRIPT_MAX_OPSET = 20
JSON_METADATA_KEYS = ("label_map", "preprocess", "decision", "input_names", "output_names")
_TRANSFORMER_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "electra", "camembert", "deberta",
                      "deberta-v2", "mpnet", "albert", "ernie", "xlm", "longformer"}


class ExportError(ValueError):
    """The export failed (bad arguments, or the validation gate rejected the model)."""


# -- paths -------------------------------------------------------------------------------------


def default_output(run_dir: str | os.PathLike, precision: str = "fp32") -> Path:
    """``<run>/export/model.onnx`` (fp32), ``model.fp16.onnx`` or ``model.int8.onnx``."""
    name = "model.onnx" if precision == "fp32" else f"model.{precision}.onnx"
    return Path(run_dir) / "export" / name


def _stem(model_path: Path) -> str:
    return model_path.name[: -len(".onnx")] if model_path.name.endswith(".onnx") else model_path.name


def preprocess_dir_for(model_path: str | os.PathLike) -> Path:
    """The folder beside the model holding its preprocessing files: ``<name>.preprocess/``."""
    model_path = Path(model_path)
    return model_path.with_name(f"{_stem(model_path)}.preprocess")


def report_path_for(model_path: str | os.PathLike) -> Path:
    model_path = Path(model_path)
    stem = _stem(model_path)
    return model_path.with_name("export_report.json" if stem == "model" else f"{stem}.export_report.json")


# -- metadata ----------------------------------------------------------------------------------


def decode_metadata(raw: dict[str, str]) -> dict[str, Any]:
    """ONNX ``metadata_props`` (all strings) with the JSON-valued keys parsed."""
    out: dict[str, Any] = dict(raw)
    for key in JSON_METADATA_KEYS:
        if key in out:
            try:
                out[key] = json.loads(out[key])
            except json.JSONDecodeError as exc:
                raise ValueError(f"ONNX metadata {key!r} is not valid JSON ({exc})") from None
    return out


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The bigmodel metadata embedded in an ONNX file (JSON values decoded)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ValueError(f"{path}: not a readable ONNX file ({exc})") from None
    raw = {p.key: p.value for p in model.metadata_props}
    if "kind" not in raw or "label_map" not in raw:
        raise ValueError(f"{path}: no bigmodel metadata (was it written by `bigmodel export --onnx`?)")
    meta = decode_metadata(raw)
    return meta


def _metadata(run: Any, spec: dict, precision: str, optimized: bool) -> dict[str, str]:
    from ._manager import __version__

    info = run.info
    licences = info.get("licences") or {}
    meta = {
        "sector": str(info.get("sector", "")),
        "task": str(info.get("task", "")),
        "kind": str(info["kind"]),
        "model": str(info.get("model", "")),
        "base": str(info.get("base") or ""),
        "label_map": run.label_map.to_json(),
        "preprocess": json.dumps(spec, sort_keys=True, ensure_ascii=False),
        "input_names": json.dumps(list(spec["input_names"])),
        "output_names": json.dumps(["logits"]),
        "recipe_digest": str(run.recipe_digest),
        "bigmodel_version": __version__,
        "model_licence": str(licences.get("model", "")),
        "data_licence": str(licences.get("data", "")),
        "precision": precision,
        "optimized": "true" if optimized else "false",
        "exported_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    if run.decision is not None:
        meta["decision"] = json.dumps(run.decision, sort_keys=True, ensure_ascii=False)
    return meta


def _embed_metadata(path: Path, meta: dict[str, str]) -> int:
    """Write ``meta`` and the graph's opset into its metadata_props (replacing old ones); returns the opset."""
    import onnx

    model = onnx.load(str(path))
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    del model.metadata_props[:]
    for key, value in {**meta, "opset": str(opset)}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save_model(model, str(path))
    return opset


# -- torch -> onnx -----------------------------------------------------------------------------


def _torch_export(model: Any, example: dict[str, np.ndarray], kind: str, path: Path, opset: int | None,
                 *, transformer: bool = False) -> None:
    """``torch.onnx.export``: dynamic batch (and sequence for text).

    Hugging Face text transformers (``transformer=True``) go through the TorchScript exporter with
    the model switched to eager attention for the export (see :func:`_eager_attention`): that graph
    is the one onnxruntime's BERT optimizer fuses into EmbedLayerNormalization, Attention (which
    quantises to QAttention), SkipLayerNormalization and BiasGelu. Everything else goes through the
    dynamo exporter. docs/export-and-serving.md says why.
    """
    import torch

    names = list(example)
    kwargs = {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in example.items()}
    model.eval()
    import warnings

    if transformer:
        axes = {name: ({0: "batch", 1: "seq"} if kwargs[name].dim() == 2 else {0: "batch"}) for name in names}
        with _eager_attention(model), warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # a deliberate choice (see docs/export-and-serving.md), not something the user must act on
            warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            # transformers' mask code indexes with aranges (never negative), which this warning is about
            warnings.filterwarnings("ignore", message="Exporting aten::index operator of advanced indexing")
            torch.onnx.export(
                model, tuple(kwargs[name] for name in names), str(path), input_names=names,
                output_names=["logits"], dynamic_axes=axes, opset_version=opset or TORCHSCRIPT_OPSET,
                dynamo=False, do_constant_folding=True,
            )
        return
    batch = torch.export.Dim("batch")
    seq = torch.export.Dim("seq")
    dynamic = {
        name: ({0: batch, 1: seq} if kind == "text" and kwargs[name].dim() == 2 else {0: batch})
        for name in names
    }
    with warnings.catch_warnings():
        # "axis name ... will not be used": the exporter names shared dims itself
        warnings.filterwarnings("ignore", message=".*axis name.*")
        program = torch.onnx.export(
            model, (), kwargs=kwargs, input_names=names, output_names=["logits"],
            dynamic_shapes=dynamic, opset_version=opset, dynamo=True, verbose=False,
        )
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    program.save(str(path))


@contextlib.contextmanager
def _eager_attention(model: Any) -> Iterator[None]:
    """Switch every Hugging Face model inside ``model`` to eager attention, and back afterwards.

    transformers 5 defaults to ``scaled_dot_product_attention``, which the TorchScript exporter
    writes as a pattern onnxruntime's BERT optimizer does not recognise; the eager
    (matmul-softmax-matmul) attention computes the same function and fuses into ``Attention``.
    """
    switched = []
    for module in model.modules():
        config = getattr(module, "config", None)
        current = getattr(config, "_attn_implementation", None)
        if hasattr(module, "set_attn_implementation") and current not in (None, "eager"):
            module.set_attn_implementation("eager")
            switched.append((module, current))
    try:
        yield
    finally:
        for module, previous in reversed(switched):
            module.set_attn_implementation(previous)


def _optimize(src: Path, dst: Path, *, transformer: bool, fp16: bool, num_heads: int = 0,
              hidden_size: int = 0) -> dict[str, int]:
    """onnxruntime's transformer optimizer (fusions) for transformer text models, its basic
    graph optimizations otherwise; ``fp16`` converts weights keeping fp32 inputs/outputs.

    ``num_heads``/``hidden_size`` come from the model's config (0 lets onnxruntime guess them from
    the graph). Returns the fused-operator counts (only those found; empty when not a transformer).
    """
    from onnxruntime.transformers.optimizer import optimize_model

    if transformer:
        optimized = optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size)
        fused = {op: int(n) for op, n in optimized.get_fused_operator_statistics().items() if n}
    else:
        optimized = optimize_model(str(src), model_type="bert", opt_level=1, only_onnxruntime=True)
        fused = {}
    if fp16:
        optimized.convert_float_to_float16(keep_io_types=True)
    optimized.save_model_to_file(str(dst))
    return fused


def _to_fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)
    model.save_model_to_file(str(dst))


# Parts of a transformer that int8 may keep in fp32, in the order ``keep_fp32="auto"`` tries them.
# Dynamic quantization gives each activation one scale per tensor; the GELU output that feeds a
# feed-forward block's second MatMul has the widest range, so keeping that layer (then the whole
# feed-forward block) in fp32 removes most of the int8 error (Bondarenko et al. 2021, "Understanding
# and overcoming the challenges of efficient transformer quantization").
INT8_KEEP_FP32 = ("none", "ffn-output", "ffn")
_KEEP_FP32_WORDS = {"none": "every layer quantised", "ffn-output": "feed-forward output layers kept in fp32",
                    "ffn": "feed-forward layers kept in fp32"}
_GELU_OPS = {"Gelu", "BiasGelu", "FastGelu", "QuickGelu", "Erf", "Tanh"}


def ffn_matmuls(model: Any) -> dict[str, list[str]]:
    """Names of the feed-forward MatMuls of an ONNX transformer graph, found by structure:
    ``{"input": [...], "output": [...]}`` (the MatMul before the GELU, the MatMul after it).

    The activation is a fused Gelu/BiasGelu/FastGelu or the exporter's erf/tanh formula. A MatMul
    counts as "after" when a GELU op lies within four producers of its first input, as "before"
    when one lies within four consumers of its output (no MatMul, Attention or Gemm in between).
    Empty lists for other graphs."""
    producer = {out: node for node in model.graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def gelu_upstream(tensor: str, depth: int = 4) -> bool:
        node = producer.get(tensor)
        if node is None or depth == 0 or node.op_type in ("MatMul", "Attention", "Gemm"):
            return False
        return node.op_type in _GELU_OPS or any(gelu_upstream(t, depth - 1) for t in node.input)

    def gelu_downstream(tensor: str, depth: int = 4) -> bool:
        if depth == 0:
            return False
        for node in consumers.get(tensor, []):
            if node.op_type in _GELU_OPS:
                return True
            if node.op_type not in ("MatMul", "Attention", "Gemm") and any(
                    gelu_downstream(t, depth - 1) for t in node.output):
                return True
        return False

    found: dict[str, list[str]] = {"input": [], "output": []}
    for node in model.graph.node:
        if node.op_type != "MatMul":
            continue
        if gelu_upstream(node.input[0]):
            found["output"].append(node.name)
        elif gelu_downstream(node.output[0]):
            found["input"].append(node.name)
    return found


def int8_fp32_nodes(model: Any, keep_fp32: str) -> list[str]:
    """The node names ``keep_fp32`` (one of :data:`INT8_KEEP_FP32`) leaves unquantised."""
    if keep_fp32 not in INT8_KEEP_FP32:
        raise ExportError(f"--keep-fp32 {keep_fp32!r}: choose one of auto, {', '.join(INT8_KEEP_FP32)}")
    if keep_fp32 == "none":
        return []
    found = ffn_matmuls(model)
    return found["output"] + (found["input"] if keep_fp32 == "ffn" else [])


def _quantize_int8(src: Path, dst: Path, keep_fp32: str = "none") -> list[str]:
    """Dynamic int8 quantisation: signed int8 weights, per channel, reduced range (7 bits: no
    saturation in the u8s8 kernels of CPUs without VNNI); fused Attention becomes QAttention. The
    fused contrib ops carry no type information, hence ``DefaultTensorType``. ``keep_fp32`` names
    the feed-forward layers left in fp32. Returns the names of the nodes left in fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = int8_fp32_nodes(onnx.load(str(src), load_external_data=False), keep_fp32)
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     nodes_to_exclude=excluded, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return excluded


def transformer_shape(run: Any) -> dict[str, Any] | None:
    """``{"model_type", "num_heads", "hidden_size"}`` of a BERT-like text model (what onnxruntime's
    'bert' optimizer fuses), read from the run's HF config; None for any other model."""
    if run.kind != "text":
        return None
    try:
        model_info = run.model_info()
    except (ValueError, FileNotFoundError):
        return None
    base = model_info.get("rebuild_base")
    if base and model_info.get("rebuild_base_in_run"):
        base = str(run.path / base)
    config_path = Path(str(base)) / "config.json" if base else None
    if config_path is None or not config_path.is_file():
        return None
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{config_path}: not valid JSON ({exc})") from None
    if config.get("model_type", "") not in _TRANSFORMER_TYPES:
        return None
    return {"model_type": config["model_type"], "num_heads": int(config.get("num_attention_heads") or 0),
            "hidden_size": int(config.get("hidden_size") or 0)}


def _is_transformer_text(run: Any) -> bool:
    """Whether the run's text model is BERT-like (what onnxruntime's 'bert' optimizer fuses)."""
    return transformer_shape(run) is not None


def convert(src: Path, dst: Path, *, precision: str, optimize: bool, transformer: bool,
            num_heads: int = 0, hidden_size: int = 0) -> dict[str, int]:
    """Derive ``dst`` from an fp32 export ``src``: optimise, then fp16 or int8 (int8 quantises the
    optimised, fused graph, every layer). Returns the fused-operator counts of the optimisation ({} without)."""
    work, fused = src, {}
    if optimize:
        opt = dst.with_name(dst.name + ".opt.onnx")
        fused = _optimize(work, opt, transformer=transformer, fp16=precision == "fp16", num_heads=num_heads,
                          hidden_size=hidden_size)
        work = opt
    elif precision == "fp16":
        _to_fp16(work, dst)
        return fused
    if precision == "int8":
        _quantize_int8(work, dst)
    elif work != dst:
        shutil.copyfile(work, dst)
    if work not in (src, dst):
        work.unlink(missing_ok=True)
    return fused


# -- the gate ----------------------------------------------------------------------------------


def _batches(n: int) -> list[np.ndarray]:
    out, start = [], 0
    sizes = list(GATE_BATCH_SIZES)
    while start < n:
        size = sizes.pop(0) if len(sizes) > 1 else sizes[0]
        out.append(np.arange(start, min(n, start + size)))
        start += size
    return out


def _reference_logits(model: Any, preprocessor: Any, inputs: Any, n: int) -> list[np.ndarray]:
    """PyTorch's logits on the held-out samples, batch by batch as the gate feeds them."""
    import torch

    from .tasks.base import take_inputs

    out = []
    with torch.inference_mode():
        for idx in _batches(n):
            arrays = preprocessor(take_inputs(inputs, idx))
            ref = model(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()})
            out.append(ref.float().numpy())
    return out


def _gate(reference: list[np.ndarray], preprocessor: Any, inputs: Any, labels: np.ndarray, path: Path,
          precision: str, atol: float | None, label_map: Any, ignore_ties: bool = False) -> dict[str, Any]:
    """Compare ONNX Runtime on ``path`` with PyTorch's ``reference`` logits (from
    :func:`_reference_logits`) on the same held-out batches; the report says whether it passed."""
    import onnxruntime as ort

    from .metrics import accuracy, macro_f1, softmax
    from .tasks.base import take_inputs

    options = ort.SessionOptions()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds_names = [i.name for i in session.get_inputs()]
    n = len(labels)
    torch_logits, onnx_logits, sizes = [], [], []
    for idx, ref in zip(_batches(n), reference):
        arrays = preprocessor(take_inputs(inputs, idx))
        missing = [name for name in feeds_names if name not in arrays]
        if missing:
            raise ExportError(f"{path.name}: graph input {missing[0]!r} is not produced by the preprocessor ({sorted(arrays)})")
        got = session.run(["logits"], {name: arrays[name] for name in feeds_names})[0]
        if got.shape != tuple(ref.shape):
            raise ExportError(f"{path.name}: ONNX logits have shape {got.shape} for a batch of {len(idx)}, "
                              f"PyTorch {tuple(ref.shape)}")
        torch_logits.append(ref)
        onnx_logits.append(got.astype(np.float32))
        sizes.append(len(idx))
    t, o = np.concatenate(torch_logits), np.concatenate(onnx_logits)
    tolerance = TOLERANCES[precision] if atol is None else float(atol)
    max_diff = float(np.abs(t - o).max())
    flipped = np.flatnonzero(t.argmax(1) != o.argmax(1))
    disagree = int(len(flipped))
    # a flip between two classes whose PyTorch logits lie within 2 x tolerance of each other is a tie
    # that differences inside the tolerance can reorder; such ties count unless ignore_ties is given
    # (fp32/fp16; int8 has no logit tolerance, so every flip counts)
    margins = t[flipped, t.argmax(1)[flipped]] - t[flipped, o.argmax(1)[flipped]]
    ties = int((margins <= 2 * tolerance).sum()) if tolerance is not None else 0
    counted = disagree - ties if ignore_ties else disagree
    share = counted / n
    pt, po = softmax(t), softmax(o)
    metrics = {
        "pytorch": {"accuracy": accuracy(labels, pt), "macro_f1": macro_f1(labels, pt)},
        "onnx": {"accuracy": accuracy(labels, po), "macro_f1": macro_f1(labels, po)},
    }
    metrics["change"] = {k: metrics["onnx"][k] - metrics["pytorch"][k] for k in ("accuracy", "macro_f1")}
    failures = []
    if tolerance is not None and not max_diff <= tolerance:  # NaN fails too
        failures.append(f"max |logit diff| {max_diff:.3g} > tolerance {tolerance:g}")
    if share > MAX_DISAGREEMENT[precision]:
        note = ""
        if ties and ignore_ties:
            note = f", not counting {ties} ties within 2 x tolerance"
        elif ties:
            note = (f"; {ties} of them between classes whose PyTorch logits are within 2 x tolerance "
                    f"(--ignore-ties leaves those out)")
        failures.append(f"labels disagree on {counted}/{n} samples ({share:.2%} > {MAX_DISAGREEMENT[precision]:.1%}{note})")
    return {
        "passed": not failures,
        "failures": failures,
        "precision": precision,
        "samples": n,
        "batch_sizes": sorted(set(sizes)),
        "max_abs_logit_diff": max_diff,
        "mean_abs_logit_diff": float(np.abs(t - o).mean()),
        "tolerance": tolerance,
        "label_disagreements": disagree,
        "label_ties_within_tolerance": ties,
        "ignore_ties": bool(ignore_ties),
        "label_disagreement_rate": share,
        "max_label_disagreement_rate": MAX_DISAGREEMENT[precision],
        "metrics": metrics,
        "num_labels": len(label_map),
    }


def format_report(report: dict[str, Any]) -> list[str]:
    """Human-readable lines of a gate report."""
    m = report["metrics"]
    tol = "n/a (int8: judged by labels)" if report["tolerance"] is None else f"{report['tolerance']:g}"
    lines = [
        f"gate {'PASSED' if report['passed'] else 'FAILED'}: {report['precision']} on {report['samples']} real held-out "
        f"samples (batch sizes {', '.join(map(str, report['batch_sizes']))})",
        f"  max |logit diff| {report['max_abs_logit_diff']:.3g} (tolerance {tol}); "
        f"labels disagree on {report['label_disagreements']}/{report['samples']}"
        + (f" ({report['label_ties_within_tolerance']} ties within 2 x tolerance"
           + (", not counted" if report.get("ignore_ties") else "") + ")"
           if report.get("label_ties_within_tolerance") else "")
        + f" ({report['label_disagreement_rate']:.2%}, allowed {report['max_label_disagreement_rate']:.1%})",
        f"  accuracy {m['pytorch']['accuracy']:.4f} -> {m['onnx']['accuracy']:.4f} ({m['change']['accuracy']:+.4f}); "
        f"macro-F1 {m['pytorch']['macro_f1']:.4f} -> {m['onnx']['macro_f1']:.4f} ({m['change']['macro_f1']:+.4f})",
    ]
    lines += [f"  {f}" for f in report["failures"]]
    return lines


# -- the command -------------------------------------------------------------------------------


def _as_run(run: Any) -> Any:
    if hasattr(run, "build_model") and hasattr(run, "heldout"):
        return run
    from .runs import Run

    return Run.load(run)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _publish(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst`` (a file or a folder), replacing what is there."""
    if src.is_dir() and dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
        os.replace(src, dst)
        _remove(old)
    else:
        os.replace(src, dst)


def export_onnx(
    run_dir: Any,
    *,
    out: str | os.PathLike | None = None,
    opset: int | None = None,
    fp16: bool = False,
    optimize: bool = False,
    quantize: str | None = None,
    atol: float | None = None,
    max_samples: int | None = None,
    keep_fp32: str = "auto",
    ignore_ties: bool = False,
    echo: Callable[[str], Any] = print,
) -> Path:
    """Export the run at ``run_dir`` (a path or a loaded :class:`~bigmodel.core.runs.Run`) to ONNX.

    Returns the path of the validated model. Raises :class:`ExportError` (output removed) when the
    validation gate fails. ``max_samples`` caps the held-out samples the gate uses (default: all).
    ``keep_fp32`` (int8 only) leaves a transformer's feed-forward layers in fp32: ``"none"``,
    ``"ffn-output"``, ``"ffn"``, or ``"auto"``, which tries them in that order and keeps the first
    that passes the gate (each attempt is printed and listed in the report). ``ignore_ties`` (fp32/fp16)
    leaves out of the label rule the flips between classes whose PyTorch logits are within twice the
    tolerance (ties that differences inside the tolerance can reorder); they are reported either way.
    """
    if keep_fp32 != "auto" and keep_fp32 not in INT8_KEEP_FP32:
        raise ExportError(f"--keep-fp32 {keep_fp32!r}: choose one of auto, {', '.join(INT8_KEEP_FP32)}")
    if quantize not in (None, "int8"):
        raise ExportError(f"--quantize {quantize!r}: only 'int8' is supported")
    if fp16 and quantize:
        raise ExportError("choose one of --fp16 and --quantize int8")
    if opset is not None and not 14 <= int(opset) <= 23:
        raise ExportError(f"--opset {opset}: choose an opset between 14 and 23")
    precision = "int8" if quantize else "fp16" if fp16 else "fp32"
    run = _as_run(run_dir)
    out = Path(out) if out is not None else default_output(run.path, precision)
    if out.suffix != ".onnx":
        raise ExportError(f"--out {out}: the file name must end in .onnx")
    out.parent.mkdir(parents=True, exist_ok=True)

    preprocessor = run.preprocessor()
    spec = preprocessor.spec()
    inputs, labels = run.heldout()
    labels = np.asarray(labels, dtype=np.int64)
    from .tasks.base import count_inputs, take_inputs

    n = count_inputs(inputs)
    if max_samples is not None and n > max_samples:
        inputs, labels, n = take_inputs(inputs, range(max_samples)), labels[:max_samples], max_samples
    if n < 2:
        raise ExportError(f"{run.path}: the gate needs at least 2 held-out samples, the run has {n}")
    model = run.build_model().eval()
    shape = transformer_shape(run)
    transformer = shape is not None
    if transformer and opset is not None and int(opset) > TORCHSCRIPT_MAX_OPSET:
        raise ExportError(f"--opset {opset}: transformer text models are exported with the TorchScript exporter, "
                          f"which writes opsets up to {TORCHSCRIPT_MAX_OPSET}")

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        exported = tmp / "exported.onnx"
        example = preprocessor(take_inputs(inputs, range(min(n, 4))))
        echo(f"exporting {run.path} ({run.kind}, {len(run.label_map)} labels) to ONNX ...")
        try:
            _torch_export(model, example, run.kind, exported, opset, transformer=transformer)
        except ExportError:
            raise
        except Exception as exc:  # the exporter's errors are long; keep the first line, chain the rest
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ExportError(f"torch.onnx.export failed for {run.path}: {type(exc).__name__}: {first}") from exc
        final = tmp / out.name
        base = tmp / "fp32.onnx" if precision == "int8" else final
        fused = convert(exported, base, precision="fp32" if precision == "int8" else precision, optimize=optimize,
                        transformer=transformer, num_heads=shape["num_heads"] if shape else 0,
                        hidden_size=shape["hidden_size"] if shape else 0)
        if optimize and transformer:
            echo("fused operators: " + (", ".join(f"{op} x{n}" for op, n in sorted(fused.items())) or "none"))
            if "Attention" not in fused:
                echo("warning: onnxruntime's optimizer fused no Attention in this graph; it runs unfused (slower)")
        meta = _metadata(run, spec, precision, optimize)
        preprocessor.save(tmp / "preprocess")
        reference = _reference_logits(model, preprocessor, inputs, n)
        atol_source = "--atol" if atol is not None else "default"
        if atol is None and precision != "int8":
            family_atol = (run.model_info().get("export_atol") or {}).get(precision)
            if family_atol is not None:
                atol, atol_source = float(family_atol), "model family export_atol"
                echo(f"gate tolerance {atol:g} for {precision}: the model family's export_atol "
                     f"({run.info.get('model', '?')}); --atol overrides")
        levels = [None] if precision != "int8" else list(INT8_KEEP_FP32) if keep_fp32 == "auto" else [keep_fp32]
        attempts: list[dict[str, Any]] = []
        tried: list[list[str]] = []
        for level in levels:
            if level is not None:
                kept = _quantize_int8(base, final, level)
                if kept in tried:  # nothing more to keep in fp32 at this level (e.g. no feed-forward GELU)
                    continue
                tried.append(kept)
                meta["int8_keep_fp32"] = level
                if len(levels) > 1:
                    echo(f"int8, {_KEEP_FP32_WORDS[level]} ({len(kept)} MatMul nodes in fp32) ...")
            used_opset = _embed_metadata(final, meta)
            report = _gate(reference, preprocessor, inputs, labels, final, precision, atol, run.label_map,
                           ignore_ties=ignore_ties)
            if level is not None:
                report["int8_keep_fp32"] = level
                report["int8_fp32_nodes"] = len(kept)
                attempts.append({k: report[k] for k in ("int8_keep_fp32", "int8_fp32_nodes", "passed", "failures",
                                                        "label_disagreements", "max_abs_logit_diff",
                                                        "mean_abs_logit_diff")})
            if report["passed"]:
                break
            if level is not None and len(levels) > 1:
                echo("  gate failed: " + "; ".join(report["failures"]))
        if attempts:
            report["int8_attempts"] = attempts
        report.update({
            "tolerance_source": atol_source if precision != "int8" else None,
            "run": str(run.path), "model_file": out.name, "opset": used_opset, "optimized": optimize,
            "transformer_fusion": bool(optimize and transformer), "fused_operators": fused,
            "exporter": "torchscript" if transformer else "dynamo",
            "attention": ({"num_heads": shape["num_heads"], "hidden_size": shape["hidden_size"]} if shape else None),
            "size_bytes": final.stat().st_size,
            "bigmodel_version": meta["bigmodel_version"],
        })
        for line in format_report(report):
            echo(line)
        report_text = json.dumps(report, indent=2, allow_nan=True) + "\n"
        if not report["passed"]:
            for stale in (out, preprocess_dir_for(out)):
                if stale.exists():
                    _remove(stale)
            atomic_write_text(report_path_for(out), report_text)
            raise ExportError(f"validation gate failed for {out}: {'; '.join(report['failures'])} "
                              f"(output removed; numbers in {report_path_for(out)})")
        _publish(tmp / "preprocess", preprocess_dir_for(out))
        os.replace(final, out)
        atomic_write_text(report_path_for(out), report_text)
        echo(f"wrote {out} ({report['size_bytes'] / 1e6:.1f} MB), {preprocess_dir_for(out).name}/ and {report_path_for(out).name}")
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
