"""Finance benchmark: 5-fold CV of the FT-Transformer vs logistic regression vs LightGBM on German Credit.

Prints, from one run: mean ± std AUROC per model (target: FT-Transformer >= 0.79 and not below
LightGBM by more than LightGBM's fold std), expected cost per applicant at each model's
validation-chosen threshold (target: FT-Transformer below logistic regression), Brier/ECE after
calibration, and the max |logit| difference between the exported ONNX model and PyTorch
(target: <= 1e-4) for one fixed-split run.

    BIGMODEL_DATA_MIRROR=../shared/data python benchmarks/finance.py [--preset full] [--folds 5] [--out DIR]

Writes ``<out>/cv/cv.json``, the fixed-split run ``<out>/run`` (with finance_report.json) and its export.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=None, help="directory for the runs (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from bigmodel.core.export import export_onnx, report_path_for
    from bigmodel.core.train import train
    from bigmodel_finance.evaluation import cross_validate, finance_report

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bigmodel-finance-bench-"))
    started = time.perf_counter()
    cv = cross_validate(out=out / "cv", preset=args.preset, sets=args.sets, folds=args.folds, seed=args.seed)
    s = cv["summary"]
    print(f"{args.folds}-fold stratified CV on German Credit ({cv['rows']} applicants), preset {args.preset}, "
          f"{cv['seconds']:.0f} s")
    print(f"{'model':<22}{'AUROC':>16}{'Brier':>16}{'ECE':>16}{'cost/applicant':>18}{'train s':>10}")
    for name, m in s.items():
        print(f"{name:<22}{m['auroc']['mean']:>9.3f} ± {m['auroc']['std']:.3f}{m['brier']['mean']:>9.3f} ± {m['brier']['std']:.3f}"
              f"{m['ece']['mean']:>9.3f} ± {m['ece']['std']:.3f}{m['expected_cost']['mean']:>11.3f} ± {m['expected_cost']['std']:.3f}"
              f"{m['train_seconds']['mean']:>10.1f}")
    trivial = min(s["ft_transformer"]["accept_all"]["mean"], s["ft_transformer"]["reject_all"]["mean"])
    print(f"best trivial policy (reject-all / accept-all): {trivial:.3f} per applicant")
    ft, lr, gbm = s["ft_transformer"], s["logistic_regression"], s["lightgbm"]
    checks = {
        "FT AUROC >= 0.79": ft["auroc"]["mean"] >= 0.79,
        "FT AUROC >= LightGBM - its fold std": ft["auroc"]["mean"] >= gbm["auroc"]["mean"] - gbm["auroc"]["std"],
        "FT expected cost < logistic regression's": ft["expected_cost"]["mean"] < lr["expected_cost"]["mean"],
    }
    print(f"ratio FT/LR AUROC {ft['auroc']['mean'] / lr['auroc']['mean']:.3f}; "
          f"FT/LR cost {ft['expected_cost']['mean'] / lr['expected_cost']['mean']:.3f}; "
          f"FT/LightGBM AUROC {ft['auroc']['mean'] / gbm['auroc']['mean']:.3f}")

    run = train("finance", preset=args.preset, sets=args.sets, out=out / "run", seed=args.seed, quiet=True, overwrite=True)
    report = finance_report(run)
    onnx_path = export_onnx(run, out=out / "credit.onnx", echo=lambda line: None)
    gate = json.loads(report_path_for(onnx_path).read_text())
    diff = gate["max_abs_logit_diff"]
    checks["ONNX vs PyTorch max |logit diff| <= 1e-4"] = diff <= 1e-4
    fixed = report["models"]
    print(f"fixed split (test n={fixed['ft_transformer']['test']['n']}): AUROC FT {fixed['ft_transformer']['test']['auroc']:.3f}, "
          f"LR {fixed['logistic_regression']['test']['auroc']:.3f}, LightGBM {fixed['lightgbm']['test']['auroc']:.3f}; "
          f"ONNX vs PyTorch max |logit diff| {diff}")
    for name, ok in checks.items():
        print(f"  [{'PASS' if ok else 'MISS'}] {name}")
    print(f"total {time.perf_counter() - started:.0f} s; outputs in {out}")


if __name__ == "__main__":
    main()
