"""GPU benchmark: a bert-base-shaped classifier, batch 32, 128 tokens, on one CUDA card.

Random init from a ``BertConfig`` (no download). The run directory is written by hand in a
temporary folder, exported with ``export_onnx(..., fp16=True, optimize=True)`` (the gated
export: TorchScript exporter with eager attention, onnxruntime's BERT fusions with the config's
heads and hidden size, fp16; the fused operators are printed and an unfused graph fails), served by :class:`bigmodel.core.predict.Predictor` with ``provider="cuda"`` (IO binding),
and compared with PyTorch eager fp16 on the same card, in one run. Target: <= 2.3 ms per batch on
an H200 and >= 4x faster than eager fp16. Needs onnxruntime-gpu and a CUDA build of torch; exits
with a message (code 2) where CUDA is missing.

    python benchmarks/gpu_predict.py [--iters 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np


def _run_dir(root: Path, hidden: int, layers: int, heads: int) -> Path:
    import torch
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import BertConfig

    from bigmodel.core.data import Split
    from bigmodel.core.runs import write_run
    from bigmodel.core.specs import LabelMap
    from bigmodel.core.tasks.text import TextPreprocessor, build_model

    torch.manual_seed(0)
    config_dir = root / "config"
    BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
               intermediate_size=4 * hidden, vocab_size=30522).save_pretrained(config_dir)
    words = [f"w{i}" for i in range(30000)]
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    pre = TextPreprocessor(tokenizer, max_length=128, input_names=["input_ids", "attention_mask", "token_type_ids"],
                           pad_token="[PAD]", pad_id=0)
    label_map = LabelMap.from_names(["a", "b", "c", "d"])
    model = build_model(label_map=label_map, recipe=SimpleNamespace(), base=str(config_dir),
                        preprocess=pre.spec(), pretrained=False)
    with torch.no_grad():  # well-separated logits, so fp16 noise does not flip near-tied random labels
        model.model.classifier.weight.mul_(50.0)
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=int(rng.integers(40, 126)))) for _ in range(128)]
    with torch.inference_mode():
        arrays = pre(texts)
        labels = model(**{k: torch.from_numpy(v) for k, v in arrays.items()}).argmax(1).numpy()
    heldout = Split(texts, labels.astype(np.int64), [f"s[{i}]" for i in range(128)])
    run = write_run(root / "run", kind="text", model=model, preprocessor=pre, label_map=label_map,
                    builder="bigmodel.core.tasks.text:build_model", heldout=heldout, rebuild_base=str(config_dir),
                    sector="bench", task="bench", model_name="bert_base_shaped",
                    licences={"model": "random init", "data": "synthetic"})
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu_predict.py: no CUDA device visible to torch; run it on a machine with an NVIDIA GPU")
        return 2
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        print(f"gpu_predict.py: onnxruntime {ort.__version__} has no CUDAExecutionProvider; install onnxruntime-gpu")
        return 2
    from bigmodel.core.export import export_onnx, report_path_for
    from bigmodel.core.predict import Predictor
    from bigmodel.core.providers import run_with_binding
    from bigmodel.core.runs import Run

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = _run_dir(Path(tmp), hidden=768, layers=12, heads=12)
        run = Run.load(run_dir)
        t0 = time.perf_counter()
        onnx_path = export_onnx(run, fp16=True, optimize=True, max_samples=128)
        report = json.loads(report_path_for(onnx_path).read_text())
        print(f"export --fp16 --optimize: {time.perf_counter() - t0:.1f} s, {report['exporter']} exporter, fused: "
              f"{report['fused_operators'] or 'none'}")
        if "Attention" not in report["fused_operators"]:
            print("gpu_predict.py: the export fused no Attention; the ONNX graph is not the optimised one")
            return 1
        predictor = Predictor.load(onnx_path, provider="cuda", batch_size=args.batch)
        print(f"provider: {predictor.provider}")
        texts, _ = run.heldout()
        arrays = predictor.preprocessor([" ".join([texts[i % len(texts)]] * 3) for i in range(args.batch)])
        arrays = {k: np.ascontiguousarray(v[:, : args.seq_len]) for k, v in arrays.items()}
        session = predictor._session
        # steady state: inputs already on the GPU, output bound there
        binding = session.session.io_binding()
        for name, value in arrays.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0))
        binding.bind_output("logits", "cuda")

        def ort_step():
            session.session.run_with_iobinding(binding)

        def timed(fn, sync):
            for _ in range(20):
                fn()
            sync()
            times = []
            for _ in range(args.iters):
                start = time.perf_counter()
                fn()
                sync()
                times.append((time.perf_counter() - start) * 1e3)
            return statistics.median(times)

        binding.synchronize_outputs()
        ort_ms = timed(ort_step, binding.synchronize_outputs)
        full_ms = timed(lambda: run_with_binding(session, arrays), lambda: None)  # host copies included
        model = run.build_model().cuda().half().eval()
        tensors = {k: torch.from_numpy(v).cuda() for k, v in arrays.items()}
        with torch.inference_mode():
            eager_ms = timed(lambda: model(**tensors), torch.cuda.synchronize)
            diff = float(np.abs(model(**tensors).float().cpu().numpy() - run_with_binding(session, arrays)).max())
        result = {"device": torch.cuda.get_device_name(0), "batch": args.batch, "seq_len": args.seq_len,
                  "fused_operators": report["fused_operators"],
                  "ort_fp16_iobinding_ms": ort_ms, "ort_fp16_with_host_copies_ms": full_ms,
                  "torch_eager_fp16_ms": eager_ms, "speedup": eager_ms / ort_ms, "max_abs_logit_diff": diff,
                  "targets": {"ms<=2.3": ort_ms <= 2.3, "speedup>=4": eager_ms / ort_ms >= 4}}
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
