"""``bigmodel export --onnx RUN`` (with the validation gate) and ``bigmodel inspect FILE``."""

from __future__ import annotations

import json

import click

__all__ = ["export", "inspect_cmd"]


@click.command()
@click.argument("run", type=click.Path(file_okay=False, path_type=str))
@click.option("--onnx", "to_onnx", is_flag=True, help="Export to ONNX (the only format).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Output .onnx file (default: RUN/export/model.onnx, model.fp16.onnx or model.int8.onnx).")
@click.option("--opset", type=int, default=None, help="ONNX opset (default: the exporter's).")
@click.option("--fp16", is_flag=True, help="Convert weights to float16 (inputs and logits stay float32).")
@click.option("--optimize", is_flag=True, help="Graph fusions with onnxruntime's transformer optimizer.")
@click.option("--quantize", type=str, default=None, metavar="int8", help="Dynamic int8 quantization.")
@click.option("--keep-fp32", type=click.Choice(["auto", "none", "ffn-output", "ffn"]), default="auto",
              show_default=True,
              help="int8: transformer feed-forward layers left in fp32; auto tries none, ffn-output, ffn "
                   "and keeps the first that passes the gate.")
@click.option("--atol", type=float, default=None, help="Override the gate's logit tolerance (1e-4 fp32, 2e-2 fp16).")
@click.option("--ignore-ties", is_flag=True,
              help="fp32/fp16: leave out of the label rule the flips between classes whose PyTorch logits are "
                   "within 2 x the tolerance (reported either way).")
def export(run: str, to_onnx: bool, out: str | None, opset: int | None, fp16: bool, optimize: bool,
           quantize: str | None, keep_fp32: str, atol: float | None, ignore_ties: bool) -> None:
    """Export a run directory to ONNX; the output is kept only if it passes the validation gate
    (PyTorch vs ONNX Runtime on the run's real held-out samples)."""
    if not to_onnx:
        raise click.UsageError("choose the format: bigmodel export --onnx RUN")
    from bigmodel.core.export import export_onnx

    if keep_fp32 != "auto" and quantize is None:
        raise click.UsageError("--keep-fp32 applies to --quantize int8")
    export_onnx(run, out=out, opset=opset, fp16=fp16, optimize=optimize, quantize=quantize, atol=atol,
                keep_fp32=keep_fp32, ignore_ties=ignore_ties, echo=click.echo)


@click.command("inspect")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect_cmd(file: str, as_json: bool) -> None:
    """Print the metadata embedded in an exported ONNX FILE."""
    from bigmodel.core.export import read_metadata

    meta = read_metadata(file)
    if as_json:
        click.echo(json.dumps(meta, indent=2, ensure_ascii=False))
        return
    labels = meta["label_map"]["id2label"]
    names = [labels[k] for k in sorted(labels, key=int)]
    shown = ", ".join(names[:10]) + (f", … ({len(names)} labels)" if len(names) > 10 else "")
    rows = [
        ("sector / task", f"{meta.get('sector', '')} / {meta.get('task', '')} ({meta.get('kind', '')})"),
        ("model", f"{meta.get('model', '')} (base {meta.get('base') or '-'})"),
        ("labels", shown),
        ("inputs", ", ".join(meta.get("input_names", []))),
        ("precision", f"{meta.get('precision', '')}{' optimized' if meta.get('optimized') == 'true' else ''}, opset {meta.get('opset', '')}"
                      + (f", feed-forward kept in fp32: {meta['int8_keep_fp32']}" if meta.get("int8_keep_fp32") else "")),
        ("preprocess", json.dumps(meta.get("preprocess"), ensure_ascii=False)),
        ("decision", json.dumps(meta["decision"], ensure_ascii=False) if meta.get("decision") else "-"),
        ("recipe digest", meta.get("recipe_digest", "")),
        ("licences", f"model {meta.get('model_licence') or '?'}; data {meta.get('data_licence') or '?'}"),
        ("bigmodel", f"{meta.get('bigmodel_version', '')}, exported {meta.get('exported_at', '')}"),
    ]
    for key, value in rows:
        click.echo(f"{key:<14} {value}")
