"""Tabular classification: encoders fitted on train only, and an MLP over them.

Numeric columns (float arrays, NaN for missing) are standardised with the training mean/std, or
mapped through training quantiles when the recipe says ``numeric_transform = "quantile"``
(scikit-learn's QuantileTransformer, reproduced exactly in numpy from its stored quantiles, then
centred to [-1, 1]); missing values become 0 (the centre). Categorical columns (object arrays of
str, None for missing) map to vocabulary indices, 0 being the unknown/missing bucket. The
preprocessor outputs ``x_num`` float32 (N, n_num) and ``x_cat`` int64 (N, n_cat), only those
that have columns.

With ``numeric_bins = n`` in the recipe the preprocessor also records, per numeric column, up to
n + 1 bin edges: quantiles of the *transformed* training column (what the model sees), duplicates
removed. Models with piecewise-linear numeric embeddings (Gorishniy et al. 2022) build their
encoding from them; the edges are part of the spec, so a rebuilt model gets the same bins.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..specs import LabelMap
from .base import Preprocessor

__all__ = ["TabularPreprocessor", "PREPROCESSOR", "build_mlp"]


def _quantile_map(values: np.ndarray, quantiles: np.ndarray, references: np.ndarray) -> np.ndarray:
    """scikit-learn's QuantileTransformer (uniform output) for one column, in numpy."""
    out = 0.5 * (np.interp(values, quantiles, references) - np.interp(-values, -quantiles[::-1], -references[::-1]))
    out[values >= quantiles[-1]] = 1.0
    out[values <= quantiles[0]] = 0.0
    return out


class TabularPreprocessor(Preprocessor):
    kind = "tabular"

    def __init__(self, *, numeric_transform: str = "standard", numeric_bins: int = 0,
                 spec: dict[str, Any] | None = None) -> None:
        if numeric_transform not in ("standard", "quantile"):
            raise ValueError(f"recipe field 'numeric_transform': expected 'standard' or 'quantile', got {numeric_transform!r}")
        if isinstance(numeric_bins, bool) or not isinstance(numeric_bins, int) or numeric_bins < 0 or numeric_bins == 1:
            raise ValueError(f"recipe field 'numeric_bins': expected 0 (none) or an integer >= 2, got {numeric_bins!r}")
        self.numeric_transform = numeric_transform
        self.numeric_bins = numeric_bins
        self.bins: list[list[float]] = []
        self.numeric: list[str] = []
        self.categorical: list[str] = []
        self.means: list[float] = []
        self.stds: list[float] = []
        self.quantiles: list[list[float]] = []
        self.references: list[float] = []
        self.vocabularies: dict[str, list[str]] = {}
        self.unknown_counts: dict[str, int] = {}
        self.fitted = False
        if spec is not None:
            self._restore(spec)

    @classmethod
    def create(cls, *, base: str | None, recipe: Any, label_map: LabelMap) -> "TabularPreprocessor":
        return cls(numeric_transform=str(getattr(recipe, "numeric_transform", "standard")),
                   numeric_bins=int(getattr(recipe, "numeric_bins", 0) or 0))

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, train: Any) -> None:
        inputs = train.inputs if hasattr(train, "inputs") else train
        if not isinstance(inputs, dict) or not inputs:
            raise ValueError("tabular inputs must be a non-empty dict of column name -> array")
        self.numeric, self.categorical = [], []
        for name, column in inputs.items():
            column = np.asarray(column)
            if column.dtype == object or column.dtype.kind in "US":
                self.categorical.append(name)
            elif column.dtype.kind in "fiub":
                self.numeric.append(name)
            else:
                raise ValueError(f"column {name!r}: unsupported dtype {column.dtype}")
        numbers = np.stack([self._numeric_column(inputs, n) for n in self.numeric], axis=1) if self.numeric else np.zeros((0, 0))
        self.means, self.stds, self.quantiles, self.references = [], [], [], []
        if self.numeric:
            with np.errstate(all="ignore"):
                means = np.nanmean(numbers, axis=0) if len(numbers) else np.zeros(len(self.numeric))
                stds = np.nanstd(numbers, axis=0) if len(numbers) else np.ones(len(self.numeric))
            self.means = [0.0 if not math.isfinite(m) else float(m) for m in means]
            self.stds = [1.0 if not math.isfinite(s) or s < 1e-12 else float(s) for s in stds]
            if self.numeric_transform == "quantile":
                from sklearn.preprocessing import QuantileTransformer

                qt = QuantileTransformer(n_quantiles=max(2, min(1000, len(numbers))), output_distribution="uniform",
                                         subsample=10**9, random_state=0)
                qt.fit(numbers)
                self.quantiles = qt.quantiles_.T.tolist()
                self.references = qt.references_.tolist()
        self.vocabularies = {}
        for name in self.categorical:
            values = self._categorical_column(inputs, name)
            self.vocabularies[name] = sorted({v for v in values if v is not None})
        self.fitted = True
        self.bins = self._fit_bins(inputs) if self.numeric_bins and self.numeric else []

    def _fit_bins(self, inputs: dict[str, Any]) -> list[list[float]]:
        """Quantile bin edges of each transformed training column; a constant column gets [v, v + 1]."""
        x_num = self(inputs)["x_num"].astype(np.float64)
        bins = []
        for j in range(x_num.shape[1]):
            edges = np.unique(np.quantile(x_num[:, j], np.linspace(0.0, 1.0, self.numeric_bins + 1)))
            bins.append(edges.tolist() if len(edges) >= 2 else [float(edges[0]), float(edges[0]) + 1.0])
        return bins

    # -- transforming -----------------------------------------------------------------------
    @staticmethod
    def _numeric_column(inputs: dict[str, Any], name: str) -> np.ndarray:
        if name not in inputs:
            raise ValueError(f"missing column {name!r}")
        column = np.asarray(inputs[name])
        if column.dtype.kind in "fiub":
            out = column.astype(np.float64)
        elif column.dtype == object or column.dtype.kind in "US":
            out = np.empty(len(column), dtype=np.float64)
            for i, value in enumerate(column):
                if value is None or (isinstance(value, str) and not value.strip()):
                    out[i] = np.nan
                    continue
                if isinstance(value, (bool, np.bool_)):
                    out[i] = float(value)
                    continue
                try:
                    out[i] = float(value)
                except (TypeError, ValueError):
                    raise ValueError(f"column {name!r}: expected a number, got {value!r} at row {i}") from None
        else:
            raise ValueError(f"column {name!r}: expected numbers, got dtype {column.dtype}")
        if out.ndim != 1:
            raise ValueError(f"column {name!r}: expected one value per row, got shape {out.shape}")
        if np.isinf(out).any():
            raise ValueError(f"column {name!r}: infinite value at row {int(np.flatnonzero(np.isinf(out))[0])}")
        return out

    @staticmethod
    def _categorical_column(inputs: dict[str, Any], name: str) -> list[str | None]:
        if name not in inputs:
            raise ValueError(f"missing column {name!r}")
        column = np.asarray(inputs[name], dtype=object) if not isinstance(inputs[name], np.ndarray) else inputs[name]
        if column.dtype != object and column.dtype.kind not in "US":
            raise ValueError(f"column {name!r}: expected categories (str), got dtype {column.dtype}")
        out: list[str | None] = []
        for i, value in enumerate(column):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                out.append(None)
            elif isinstance(value, str):
                out.append(value if value != "" else None)
            elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
                out.append(str(int(value)))
            else:
                raise ValueError(f"column {name!r}: expected a category string, got {value!r} at row {i}")
        return out

    def __call__(self, inputs: Any, *, train: bool = False) -> dict[str, np.ndarray]:
        if not self.fitted:
            raise ValueError("tabular preprocessor is not fitted: call fit(train) first")
        if not isinstance(inputs, dict):
            raise ValueError(f"tabular inputs must be a dict of column name -> array, got {type(inputs).__name__}")
        expected = self.numeric + self.categorical
        missing = [c for c in expected if c not in inputs]
        if missing:
            raise ValueError(f"missing column {missing[0]!r} (expected columns: {expected})")
        lengths = {len(inputs[c]) for c in expected}
        if len(lengths) > 1:
            raise ValueError(f"columns have different lengths: {sorted(lengths)}")
        out: dict[str, np.ndarray] = {}
        if self.numeric:
            columns = []
            for j, name in enumerate(self.numeric):
                values = self._numeric_column(inputs, name)
                if self.numeric_transform == "quantile":
                    present = ~np.isnan(values)
                    mapped = np.zeros_like(values)
                    quantiles = np.asarray(self.quantiles[j])
                    mapped[present] = 2.0 * _quantile_map(values[present], quantiles, np.asarray(self.references)) - 1.0
                    columns.append(mapped)
                else:
                    columns.append(np.nan_to_num((values - self.means[j]) / self.stds[j], nan=0.0))
            out["x_num"] = np.stack(columns, axis=1).astype(np.float32)
        if self.categorical:
            self.unknown_counts = {}
            columns = []
            for name in self.categorical:
                index = {v: i + 1 for i, v in enumerate(self.vocabularies[name])}
                values = self._categorical_column(inputs, name)
                ids = np.fromiter((index.get(v, 0) if v is not None else 0 for v in values), dtype=np.int64, count=len(values))
                unseen = sum(1 for v in values if v is not None and v not in index)
                if unseen:
                    self.unknown_counts[name] = unseen
                columns.append(ids)
            out["x_cat"] = np.stack(columns, axis=1)
        return out

    # -- persistence ------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        if not self.fitted:
            raise ValueError("tabular preprocessor is not fitted: call fit(train) first")
        names = (["x_num"] if self.numeric else []) + (["x_cat"] if self.categorical else [])
        return {
            "kind": self.kind,
            "input_names": names,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "numeric_transform": self.numeric_transform,
            "means": list(self.means),
            "stds": list(self.stds),
            "quantiles": [list(q) for q in self.quantiles],
            "references": list(self.references),
            "numeric_bins": self.numeric_bins,
            "bins": [list(b) for b in self.bins],
            "vocabularies": {k: list(v) for k, v in self.vocabularies.items()},
            "unknown_index": 0,
            "missing_numeric": 0.0,
            "formula": (
                "x_num[:, j] = nan_to_num((x - means[j]) / stds[j], nan=0)"
                if self.numeric_transform == "standard"
                else "x_num[:, j] = 2 * sklearn_uniform_quantile(x, quantiles[j], references) - 1, NaN -> 0"
            ) + "; x_cat[:, j] = 1 + vocabularies[col].index(v), 0 for missing or unseen",
        }

    def _restore(self, spec: dict[str, Any]) -> None:
        try:
            self.numeric = list(spec["numeric"])
            self.categorical = list(spec["categorical"])
            self.means = [float(v) for v in spec["means"]]
            self.stds = [float(v) for v in spec["stds"]]
            self.quantiles = [list(map(float, q)) for q in spec.get("quantiles", [])]
            self.references = [float(v) for v in spec.get("references", [])]
            self.bins = [list(map(float, b)) for b in spec.get("bins", [])]
            self.vocabularies = {k: list(v) for k, v in spec["vocabularies"].items()}
        except KeyError as exc:
            raise ValueError(f"tabular preprocessing spec lacks field {exc.args[0]!r}") from None
        if len(self.means) != len(self.numeric) or set(self.vocabularies) != set(self.categorical):
            raise ValueError("tabular preprocessing spec is inconsistent: columns and encoders differ")
        if self.numeric_transform == "quantile" and len(self.quantiles) != len(self.numeric):
            raise ValueError("tabular preprocessing spec: quantile transform without one quantile list per numeric column")
        if self.bins and (len(self.bins) != len(self.numeric)
                          or any(len(b) < 2 or any(u >= v for u, v in zip(b, b[1:])) for b in self.bins)):
            raise ValueError("tabular preprocessing spec: 'bins' needs one strictly increasing list of >= 2 edges per numeric column")
        self.fitted = True

    @classmethod
    def from_spec(cls, spec: dict[str, Any], directory: Path | None = None) -> "TabularPreprocessor":
        return cls(numeric_transform=str(spec.get("numeric_transform", "standard")),
                   numeric_bins=int(spec.get("numeric_bins", 0)), spec=spec)


PREPROCESSOR = TabularPreprocessor


def build_mlp(*, label_map: LabelMap, recipe: Any, base: str | None, preprocess: dict, pretrained: bool = True):
    """An MLP over ``x_num`` and embedded ``x_cat`` (recipe: ``hidden_size`` 128, ``num_layers`` 2,
    ``dropout`` 0.1, ``embedding_dim`` 8). Trained from scratch; ``base`` must be None."""
    import torch
    from torch import nn

    if base is not None:
        raise ValueError(f"tabular_mlp trains from scratch; it takes no base model (got {base!r})")
    names = list(preprocess["input_names"])
    n_num = len(preprocess.get("numeric", []))
    vocab_sizes = [len(preprocess["vocabularies"][c]) + 1 for c in preprocess.get("categorical", [])]
    hidden = int(getattr(recipe, "hidden_size", 128))
    layers = int(getattr(recipe, "num_layers", 2))
    dropout = float(getattr(recipe, "dropout", 0.1))
    emb_dim = int(getattr(recipe, "embedding_dim", 8))

    class TabularMLP(nn.Module):
        """forward(x_num, x_cat) -> logits; takes only the inputs the preprocessor produces."""

        input_names = names

        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.ModuleList(nn.Embedding(size, emb_dim) for size in vocab_sizes)
            width = n_num + emb_dim * len(vocab_sizes)
            if width == 0:
                raise ValueError("tabular model has no input columns")
            blocks: list[nn.Module] = []
            for _ in range(layers):
                blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
                width = hidden
            blocks.append(nn.Linear(width, len(label_map)))
            self.mlp = nn.Sequential(*blocks)

        def forward(self, x_num=None, x_cat=None):
            parts = []
            if n_num:
                parts.append(x_num)
            for j, embedding in enumerate(self.embeddings):
                parts.append(embedding(x_cat[:, j]))
            return self.mlp(torch.cat(parts, dim=1))

    return TabularMLP()
