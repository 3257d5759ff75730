"""FT-Transformer (Gorishniy et al., "Revisiting Deep Learning Models for Tabular Data", NeurIPS 2021).

Every feature becomes a token (numeric: ``x * w_j + b_j``; categorical: an embedding row plus a
per-feature bias), a learnt [CLS] token is prepended, PreNorm transformer blocks (no normalisation
before the first block's attention, ReGLU feed-forward) mix the tokens, and the [CLS]
representation goes through LayerNorm → ReLU → Linear to the logits. The layout follows the
reference implementation in ``rtdl_revisiting_models`` 0.0.2; this module re-implements it
because that package's attention reads the batch size as a Python int (``len(q)``), which the
TorchScript ONNX exporter bakes into the graph and ``torch.export`` (non-strict) refuses to
keep dynamic. Here every reshape keeps the batch axis symbolic, so both exporters give a graph
with a dynamic batch.

Numeric tokens are either linear (``x * w_j + b_j``, the 2021 paper) or piecewise-linear
embeddings (Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep Learning",
NeurIPS 2022) from ``rtdl_num_embeddings``, built from the bin edges the preprocessor fitted on
the training rows (recipe ``numeric_bins``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["FTTransformer", "FTTransformerEnsemble", "build_model", "feature_layout"]


class _NumericTokens(nn.Module):
    def __init__(self, n_features: int, d: int) -> None:
        super().__init__()
        bound = d ** -0.5
        self.weight = nn.Parameter(torch.empty(n_features, d).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_features, d).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:  # (B, F) -> (B, F, d)
        return x.unsqueeze(-1) * self.weight + self.bias


def _piecewise_linear_tokens(bins: list[list[float]], d: int) -> nn.Module:
    """Piecewise-linear embeddings, version "B" (a linear embedding plus a piecewise-linear term
    initialised to zero), no activation: the recommended setting for FT-Transformer."""
    from rtdl_num_embeddings import PiecewiseLinearEmbeddings

    edges = [torch.tensor(b, dtype=torch.float32) for b in bins]
    with warnings.catch_warnings():  # a two-valued column has one bin: min-max scaling, as intended
        warnings.filterwarnings("ignore", message=".*has just two bin edges.*")
        return PiecewiseLinearEmbeddings(edges, d, activation=False, version="B")


class _CategoricalTokens(nn.Module):
    def __init__(self, cardinalities: list[int], d: int) -> None:
        super().__init__()
        bound = d ** -0.5
        offsets = torch.tensor([0] + list(cardinalities[:-1]), dtype=torch.long).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.embedding = nn.Embedding(sum(cardinalities), d)
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        self.bias = nn.Parameter(torch.empty(len(cardinalities), d).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:  # (B, C) int64 -> (B, C, d)
        return self.embedding(x + self.offsets) + self.bias


class _Attention(nn.Module):
    def __init__(self, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if d % n_heads:
            raise ValueError(f"recipe field 'd_block' ({d}) must be a multiple of 'attention_n_heads' ({n_heads})")
        self.n_heads, self.d_head = n_heads, d // n_heads
        self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))
        for layer in (self.q, self.k, self.v):
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.out.bias)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: Tensor) -> Tensor:  # (B, T, d) -> (B, H, T, d_head)
        return x.unflatten(-1, (self.n_heads, self.d_head)).transpose(1, 2)

    def forward(self, x_q: Tensor, x_kv: Tensor) -> Tensor:
        q, k, v = self._heads(self.q(x_q)), self._heads(self.k(x_kv)), self._heads(self.v(x_kv))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.d_head), dim=-1)
        mixed = (self.dropout(weights) @ v).transpose(1, 2).flatten(-2)
        return self.out(mixed)


class _ReGLU(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=-1)
        return a * torch.relu(b)


class _Block(nn.Module):
    def __init__(self, d: int, n_heads: int, attention_dropout: float, ffn_dropout: float,
                 residual_dropout: float, ffn_hidden: int, first: bool) -> None:
        super().__init__()
        self.attention_norm = nn.Identity() if first else nn.LayerNorm(d)
        self.attention = _Attention(d, n_heads, attention_dropout)
        self.ffn_norm = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 2 * ffn_hidden), _ReGLU(), nn.Dropout(ffn_dropout), nn.Linear(ffn_hidden, d))
        self.residual_dropout = nn.Dropout(residual_dropout)

    def forward(self, x: Tensor, cls_only: bool) -> Tensor:
        h = self.attention_norm(x)
        query = h[:, :1] if cls_only else h
        x = (x[:, :1] if cls_only else x) + self.residual_dropout(self.attention(query, h))
        return x + self.residual_dropout(self.ffn(self.ffn_norm(x)))


class FTTransformer(nn.Module):
    """``forward(x_num, x_cat) -> logits (B, n_classes)``; either input may be absent (no columns)."""

    def __init__(self, *, n_numeric: int, cardinalities: list[int], n_classes: int, n_blocks: int = 3,
                 d_block: int = 192, attention_n_heads: int = 8, attention_dropout: float = 0.2,
                 ffn_dropout: float = 0.1, residual_dropout: float = 0.0, ffn_multiplier: float = 4 / 3,
                 bins: list[list[float]] | None = None) -> None:
        super().__init__()
        if n_numeric + len(cardinalities) == 0:
            raise ValueError("FT-Transformer needs at least one numeric or categorical column")
        if any(c < 1 for c in cardinalities):
            raise ValueError(f"categorical cardinalities must be >= 1, got {cardinalities}")
        if n_blocks < 1:
            raise ValueError(f"recipe field 'n_blocks' must be >= 1, got {n_blocks}")
        self.n_numeric, self.n_categorical = n_numeric, len(cardinalities)
        bound = d_block ** -0.5
        self.cls = nn.Parameter(torch.empty(d_block).uniform_(-bound, bound))
        if bins and len(bins) != n_numeric:
            raise ValueError(f"piecewise-linear embeddings need bin edges for each of the {n_numeric} numeric columns, got {len(bins)}")
        if not n_numeric:
            self.numeric = None
        else:
            self.numeric = _piecewise_linear_tokens(bins, d_block) if bins else _NumericTokens(n_numeric, d_block)
        self.categorical = _CategoricalTokens(list(cardinalities), d_block) if cardinalities else None
        hidden = int(d_block * ffn_multiplier)
        self.blocks = nn.ModuleList(
            _Block(d_block, attention_n_heads, attention_dropout, ffn_dropout, residual_dropout, hidden, first=i == 0)
            for i in range(n_blocks)
        )
        self.head = nn.Sequential(nn.LayerNorm(d_block), nn.ReLU(), nn.Linear(d_block, n_classes))

    def forward(self, x_num: Tensor | None = None, x_cat: Tensor | None = None) -> Tensor:
        tokens = []
        if self.numeric is not None:
            if x_num is None:
                raise ValueError(f"the model expects x_num with {self.n_numeric} numeric columns")
            tokens.append(self.numeric(x_num))
        if self.categorical is not None:
            if x_cat is None:
                raise ValueError(f"the model expects x_cat with {self.n_categorical} categorical columns")
            tokens.append(self.categorical(x_cat))
        first = tokens[0]
        cls = self.cls.expand(first.shape[0], 1, -1)
        x = torch.cat([cls, *tokens], dim=1)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x, cls_only=i == last)
        return self.head(x[:, 0])


class FTTransformerEnsemble(nn.Module):
    """A deep ensemble of independently initialised FT-Transformers (the paper's ensembles).

    Training mode returns every member's logits, ``(members, B, n_classes)``: the engine's trainer
    gives each member its own loss, so they learn independently from the same batches. Eval mode
    (evaluation, export, serving) returns the members' mean logits ``(B, n_classes)``, one graph.
    """

    def __init__(self, size: int, **kwargs: Any) -> None:
        super().__init__()
        if size < 2:
            raise ValueError(f"recipe field 'ensemble_size' must be >= 2 for an ensemble, got {size}")
        self.members = nn.ModuleList(FTTransformer(**kwargs) for _ in range(size))

    def forward(self, x_num: Tensor | None = None, x_cat: Tensor | None = None) -> Tensor:
        logits = torch.stack([member(x_num, x_cat) for member in self.members])
        return logits if self.training else logits.mean(0)


def feature_layout(preprocess: dict[str, Any]) -> tuple[int, list[int]]:
    """(number of numeric columns, categorical cardinalities) from the core's tabular spec.

    Each categorical column has ``len(vocabularies[col]) + 1`` ids: 0 is the unknown/missing bucket.
    """
    try:
        numeric = list(preprocess["numeric"])
        categorical = list(preprocess["categorical"])
        vocabularies = preprocess["vocabularies"]
        cards = [len(vocabularies[c]) + 1 for c in categorical]
    except KeyError as exc:
        raise ValueError(f"tabular preprocessing spec lacks {exc.args[0]!r} (keys: {sorted(preprocess)})") from None
    return len(numeric), cards


def build_model(*, label_map: Any, recipe: Any, base: str | None, preprocess: dict[str, Any], pretrained: bool = True) -> nn.Module:
    """The engine's model builder for ``ft_transformer`` (trained from scratch: ``base`` must be None);
    ``recipe.ensemble_size`` > 1 builds an :class:`FTTransformerEnsemble`; bin edges in the
    preprocessing spec (recipe ``numeric_bins``) give piecewise-linear numeric embeddings."""
    if base is not None:
        raise ValueError(f"model ft_transformer is trained from scratch; it takes no base model (got {base!r})")
    n_numeric, cardinalities = feature_layout(preprocess)
    size = int(getattr(recipe, "ensemble_size", 1))
    kwargs = dict(
        n_numeric=n_numeric,
        cardinalities=cardinalities,
        n_classes=len(label_map),
        n_blocks=getattr(recipe, "n_blocks", 3),
        d_block=getattr(recipe, "d_block", 192),
        attention_n_heads=getattr(recipe, "attention_n_heads", 8),
        attention_dropout=getattr(recipe, "attention_dropout", 0.2),
        ffn_dropout=getattr(recipe, "ffn_dropout", 0.1),
        residual_dropout=getattr(recipe, "residual_dropout", 0.0),
        bins=preprocess.get("bins") or None,
    )
    return FTTransformer(**kwargs) if size == 1 else FTTransformerEnsemble(size, **kwargs)
