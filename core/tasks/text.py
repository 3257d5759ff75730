"""Text classification: a fast-tokenizer preprocessor and a Hugging Face sequence classifier.

The preprocessor needs only ``tokenizers`` and numpy; :func:`build_model` imports torch and
transformers when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..specs import LabelMap
from .base import Preprocessor, resolve_base

__all__ = ["TextPreprocessor", "PREPROCESSOR", "build_model", "DEFAULT_MAX_LENGTH"]

DEFAULT_MAX_LENGTH = 128
TOKENIZER_FILE = "tokenizer.json"


class TextPreprocessor(Preprocessor):
    """Tokenises a batch of strings: int64 ``input_ids``, ``attention_mask`` (and ``token_type_ids``
    when the model takes them), padded to the batch's longest sequence, truncated to ``max_length``."""

    kind = "text"

    def __init__(self, tokenizer: Any, *, max_length: int, input_names: list[str], pad_token: str, pad_id: int) -> None:
        if max_length < 2:
            raise ValueError(f"recipe field 'max_length': must be at least 2, got {max_length}")
        bad = sorted(set(input_names) - {"input_ids", "attention_mask", "token_type_ids"})
        if bad or "input_ids" not in input_names:
            raise ValueError(f"text inputs must include input_ids and only known names; got {input_names}")
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self._names = list(input_names)
        self.pad_token, self.pad_id = pad_token, int(pad_id)
        tokenizer.no_padding()
        tokenizer.no_truncation()
        tokenizer.enable_truncation(max_length=self.max_length)
        tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token)

    @classmethod
    def create(cls, *, base: str | None, recipe: Any, label_map: LabelMap) -> "TextPreprocessor":
        from transformers import AutoTokenizer

        resolved = resolve_base(base)
        if resolved is None:
            raise ValueError("a text model needs a base model (hub id, local directory or package:<module>) for its tokenizer")
        hf = AutoTokenizer.from_pretrained(resolved)
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(f"base model {base!r}: no fast tokenizer (tokenizer.json) available")
        if hf.pad_token is None or hf.pad_token_id is None:
            raise ValueError(f"base model {base!r}: the tokenizer defines no padding token")
        wanted = list(hf.model_input_names)
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in wanted else [])
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(backend.to_str())  # an independent copy
        max_length = int(getattr(recipe, "max_length", DEFAULT_MAX_LENGTH))
        return cls(tokenizer, max_length=max_length, input_names=names, pad_token=hf.pad_token, pad_id=hf.pad_token_id)

    def __call__(self, inputs: Any, *, train: bool = False) -> dict[str, np.ndarray]:
        if isinstance(inputs, str) or not isinstance(inputs, (list, tuple)):
            raise ValueError(f"text inputs must be a list of strings, got {type(inputs).__name__}")
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise ValueError(f"text input [{i}] is {type(text).__name__}, expected str")
        if not inputs:
            raise ValueError("empty batch of text inputs")
        encodings = self.tokenizer.encode_batch(list(inputs))
        out = {
            "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
        }
        if "token_type_ids" in self._names:
            out["token_type_ids"] = np.asarray([e.type_ids for e in encodings], dtype=np.int64)
        return {name: out[name] for name in self._names}

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "input_names": list(self._names),
            "max_length": self.max_length,
            "tokenizer_file": TOKENIZER_FILE,
            "pad_token": self.pad_token,
            "pad_id": self.pad_id,
            "padding": "longest",
            "truncation": "right",
            "dtype": "int64",
        }

    def save_files(self, directory: Path) -> None:
        import os
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f".{TOKENIZER_FILE}.", dir=directory)
        os.close(fd)
        try:
            self.tokenizer.save(tmp)
            os.replace(tmp, directory / TOKENIZER_FILE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def from_spec(cls, spec: dict[str, Any], directory: Path | None = None) -> "TextPreprocessor":
        from tokenizers import Tokenizer

        if directory is None:
            raise ValueError("a text preprocessor needs the directory holding its tokenizer file")
        path = Path(directory) / spec.get("tokenizer_file", TOKENIZER_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: tokenizer file missing")
        try:
            return cls(Tokenizer.from_file(str(path)), max_length=int(spec["max_length"]),
                       input_names=list(spec["input_names"]), pad_token=spec["pad_token"], pad_id=int(spec["pad_id"]))
        except KeyError as exc:
            raise ValueError(f"text preprocessing spec lacks field {exc.args[0]!r}") from None


PREPROCESSOR = TextPreprocessor


def build_model(*, label_map: LabelMap, recipe: Any, base: str | None, preprocess: dict, pretrained: bool = True):
    """A Hugging Face encoder from ``base`` with a classification head; ``forward(**batch)`` returns logits.

    ``recipe.freeze_embeddings`` keeps the token embeddings fixed. ``recipe.pooling`` chooses the head: ``"cls"`` (default) is ``AutoModelForSequenceClassification``
    (the model's own pooler on the first token); ``"mean"`` averages the token vectors under the
    attention mask, as sentence encoders such as all-MiniLM-L6-v2 were trained, then a linear layer.
    With ``pretrained=False`` only the configuration is read from ``base`` (random weights), which
    is how a run directory rebuilds the model from its saved ``model_config/``.
    """
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    resolved = resolve_base(base)
    if resolved is None:
        raise ValueError("a text model needs a base model (hub id, local directory or package:<module>)")
    pooling = str(getattr(recipe, "pooling", "cls"))
    if pooling not in ("cls", "mean"):
        raise ValueError(f"recipe field 'pooling': expected 'cls' or 'mean', got {pooling!r}")
    dropout = getattr(recipe, "dropout", None)
    if pooling == "mean":
        if pretrained:
            inner = AutoModel.from_pretrained(resolved)
        else:
            inner = AutoModel.from_config(AutoConfig.from_pretrained(resolved))
    else:
        labels = {"num_labels": len(label_map), "id2label": dict(label_map.id2label), "label2id": label_map.label2id}
        extra = {"classifier_dropout": float(dropout)} if dropout is not None else {}
        if pretrained:
            inner = AutoModelForSequenceClassification.from_pretrained(
                resolved, **labels, **extra, ignore_mismatched_sizes=True
            )
        else:
            config = AutoConfig.from_pretrained(resolved, **labels, **extra)
            inner = AutoModelForSequenceClassification.from_config(config)
    if bool(getattr(recipe, "freeze_embeddings", False)):
        # the token embedding matrix is half of a small encoder's weights: frozen, each step is cheaper
        inner.get_input_embeddings().requires_grad_(False)
    names = list(preprocess["input_names"])

    class TextClassifier(torch.nn.Module):
        """forward(input_ids, attention_mask[, token_type_ids]) -> logits (batch, num_labels)."""

        input_names = names

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.model = inner
            if pooling == "mean":
                hidden = int(inner.config.hidden_size)
                self.dropout = torch.nn.Dropout(0.1 if dropout is None else float(dropout))
                self.head = torch.nn.Linear(hidden, len(label_map))
                with torch.no_grad():
                    self.head.weight.normal_(0.0, 0.02)
                    self.head.bias.zero_()

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            if pooling == "cls":
                return self.model(**kwargs).logits
            tokens = self.model(**kwargs).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return self.head(self.dropout(pooled))

        def save_config(self, directory: Path) -> str:
            """Write the HF config (no weights) so the model rebuilds offline; returns the folder name."""
            directory = Path(directory)
            self.model.config.save_pretrained(directory)
            return directory.name

    return TextClassifier(inner)
