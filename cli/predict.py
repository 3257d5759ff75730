"""``bigmodel predict``, ``bigmodel bench`` and ``bigmodel doctor`` (ONNX Runtime serving)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["predict", "bench", "doctor"]

_PROVIDER = click.Choice(["auto", "cpu", "cuda"])


def _predictor(model: str, provider: str, batch_size: int):
    from bigmodel.core.predict import Predictor, ProviderError

    try:
        return Predictor.load(model, provider=provider, batch_size=batch_size)
    except ProviderError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.argument("model", type=click.Path(exists=True, path_type=str))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--provider", type=_PROVIDER, default="auto", show_default=True, help="ONNX Runtime execution provider.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True, help="Labels listed per input.")
@click.option("--column", default=None, help="Column holding the text or image path in CSV/JSONL inputs.")
@click.option("--json", "as_json", is_flag=True, help="One JSON list on stdout.")
def predict(model: str, inputs: tuple[str, ...], provider: str, batch_size: int, top_k: int,
            column: str | None, as_json: bool) -> None:
    """Classify INPUTS with an exported MODEL.onnx (or a RUN directory holding export/model.onnx).

    Each INPUT is a text (text models), an image file (.png/.jpg/.dcm ...), a tabular row as a JSON
    object, or a .csv / .jsonl file listing inputs (text: column 'text'; images: column 'path';
    tabular: one row per line); a .txt file lists one text per line.
    """
    from bigmodel.core.predict import IMAGE_SUFFIXES, read_input_file

    predictor = _predictor(model, provider, batch_size)
    kind = predictor.kind
    items: list = []
    for raw in inputs:
        path = Path(raw)
        is_file = len(raw) < 4096 and path.is_file()
        if is_file and path.suffix.lower() in (".csv", ".jsonl", ".ndjson", ".txt"):
            items += read_input_file(path, kind, column)
        elif kind == "image":
            if not is_file:
                raise click.ClickException(f"{raw}: no such image file")
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise click.ClickException(f"{raw}: not an image file ({', '.join(IMAGE_SUFFIXES)})")
            items.append(raw)
        elif kind == "tabular":
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:
                raise click.ClickException(f"{raw[:60]!r}: a tabular input is a JSON object or a .csv/.jsonl file") from None
            if not isinstance(row, dict):
                raise click.ClickException(f"{raw[:60]!r}: a tabular input is a JSON object of column -> value")
            items.append(row)
        else:
            items.append(raw)
    note = f" ({predictor.provider_note})" if predictor.provider_note else ""
    click.echo(f"provider: {predictor.provider}{note}", err=True)
    results = predictor.predict(items, top_k=top_k)
    if as_json:
        shown = [item if isinstance(item, (str, dict)) else repr(item) for item in items]
        click.echo(json.dumps([{"input": i, **r} for i, r in zip(shown, results)], indent=2, ensure_ascii=False,
                              default=str))
        return
    for item, result in zip(items, results):
        label = str(item) if not isinstance(item, dict) else json.dumps(item, ensure_ascii=False)
        others = ", ".join(f"{t['label']} {t['score']:.3f}" for t in result["top_k"][1:])
        extra = "".join(f"  {k}={v}" for k, v in result.items() if k not in ("label", "score", "top_k"))
        click.echo(f"{result['label']}\t{result['score']:.3f}\t{label[:80]}" + (f"\t[{others}]" if others else "") + extra)


@click.command()
@click.argument("model", type=click.Path(exists=True, path_type=str))
@click.option("--provider", type=_PROVIDER, default="auto", show_default=True)
@click.option("--batch-sizes", default="1,8,32", show_default=True, help="Comma-separated batch sizes.")
@click.option("--seq-len", type=click.IntRange(min=2), default=32, show_default=True, help="Tokens per text.")
@click.option("--iters", type=click.IntRange(min=5), default=50, show_default=True, help="Timed runs per cell.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for both PyTorch and ONNX Runtime.")
@click.option("--json", "as_json", is_flag=True)
def bench(model: str, provider: str, batch_sizes: str, seq_len: int, iters: int, threads: int | None,
          as_json: bool) -> None:
    """Latency (p50/p90/p99) and throughput: PyTorch eager vs ONNX Runtime fp32/fp16/int8.

    MODEL is a run directory (all variants, exported to a temporary folder) or an .onnx file (that
    file alone, on synthetic inputs)."""
    from bigmodel.core.predict import ProviderError, bench as run_bench, format_bench

    try:
        sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    except ValueError:
        raise click.BadParameter(f"{batch_sizes!r}: comma-separated integers", param_hint="--batch-sizes") from None
    try:
        rows = run_bench(model, provider=provider, batch_sizes=sizes, seq_len=seq_len, iters=iters, threads=threads,
                         echo=lambda s: click.echo(s, err=True))
    except ProviderError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for line in format_bench(rows):
        click.echo(line)


@click.command()
@click.option("--json", "as_json", is_flag=True)
def doctor(as_json: bool) -> None:
    """Check the inference setup: versions, onnxruntime conflicts, whether the CUDA provider loads."""
    from bigmodel.core.predict import doctor as run_doctor

    report = run_doctor()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for name, version in report["versions"].items():
            click.echo(f"{name:<16} {version or '-'}")
        click.echo(f"{'providers':<16} {', '.join(report['providers']) or '-'}")
        cuda = report["cuda"]
        if cuda["loads"]:
            status = "loads"
        else:
            status = f"not usable: {cuda['error']}"
            if cuda["missing_library"]:
                status += f" (missing library: {cuda['missing_library']})"
        click.echo(f"{'CUDA provider':<16} {status}")
        click.echo(f"{'torch CUDA':<16} {report['torch_cuda']}")
        for problem in report["problems"]:
            click.echo(f"PROBLEM: {problem}", err=True)
    if report["problems"]:
        sys.exit(1)
