"""What risk teams use today, fitted on exactly the same rows as the FT-Transformer.

Both baselines take the engine's tabular :class:`~bigmodel.core.data.Split` objects (dict of
columns: numeric float64 with NaN, categorical object arrays with None) and return P(positive)
for each split asked for:

- logistic regression (scikit-learn): numeric columns median-imputed and standardised,
  categorical columns one-hot encoded (missing and unseen categories get all-zero rows);
- LightGBM: numeric columns as they are (NaN handled natively), categorical columns as
  LightGBM categoricals, early stopping on the validation split's AUROC.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BASELINES", "column_kinds", "logistic_regression", "lightgbm"]


def column_kinds(inputs: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) column names, by dtype as in the core's tabular preprocessor."""
    numeric, categorical = [], []
    for name, column in inputs.items():
        column = np.asarray(column)
        (categorical if column.dtype == object or column.dtype.kind in "US" else numeric).append(name)
    return numeric, categorical


def _numeric(inputs: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    if not names:
        return np.zeros((len(next(iter(inputs.values()))), 0))
    return np.stack([np.asarray(inputs[n], dtype=np.float64) for n in names], axis=1)


def _categorical(inputs: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    n = len(next(iter(inputs.values())))
    out = np.empty((n, len(names)), dtype=object)
    for j, name in enumerate(names):
        out[:, j] = ["__missing__" if v is None else str(v) for v in inputs[name]]
    return out


def _binary_target(split: Any, positive_id: int) -> np.ndarray:
    return (np.asarray(split.labels) == positive_id).astype(np.int64)


def logistic_regression(train: Any, evaluate: dict[str, Any], *, positive_id: int = 1, seed: int = 0,
                        validation: Any = None) -> dict[str, np.ndarray]:
    """P(positive) per split in ``evaluate`` from an L2 logistic regression fitted on ``train``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric, categorical = column_kinds(train.inputs)

    def design(inputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([_numeric(inputs, numeric).astype(object), _categorical(inputs, categorical)], axis=1)

    n_num = len(numeric)
    transformer = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), list(range(n_num))),
        ("cat", OneHotEncoder(handle_unknown="ignore"), list(range(n_num, n_num + len(categorical)))),
    ])
    model = Pipeline([("features", transformer), ("lr", LogisticRegression(C=1.0, max_iter=2000, random_state=seed))])
    model.fit(design(train.inputs), _binary_target(train, positive_id))
    return {name: model.predict_proba(design(split.inputs))[:, 1] for name, split in evaluate.items()}


def lightgbm(train: Any, evaluate: dict[str, Any], *, positive_id: int = 1, seed: int = 0,
             validation: Any = None) -> dict[str, np.ndarray]:
    """P(positive) per split in ``evaluate`` from LightGBM (early stopping on ``validation`` AUROC when given)."""
    import lightgbm as lgb

    numeric, categorical = column_kinds(train.inputs)
    vocabularies = {c: sorted({str(v) for v in train.inputs[c] if v is not None}) for c in categorical}

    def design(inputs: dict[str, np.ndarray]) -> np.ndarray:
        codes = []
        for c in categorical:
            index = {v: i for i, v in enumerate(vocabularies[c])}
            # unseen and missing categories: NaN, which LightGBM sends down its missing-value branch
            codes.append(np.array([index.get(str(v), np.nan) if v is not None else np.nan for v in inputs[c]], dtype=np.float64))
        return np.concatenate([_numeric(inputs, numeric), np.stack(codes, axis=1) if codes else np.zeros((len(inputs[next(iter(inputs))]), 0))], axis=1)

    cat_index = list(range(len(numeric), len(numeric) + len(categorical)))
    params = dict(n_estimators=1000, learning_rate=0.03, num_leaves=15, min_child_samples=20, subsample=0.8,
                  subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0, random_state=seed, n_jobs=1, verbose=-1)
    model = lgb.LGBMClassifier(**params)
    fit_args: dict[str, Any] = {"categorical_feature": cat_index}
    if validation is not None:
        fit_args.update(eval_X=(design(validation.inputs),), eval_y=(_binary_target(validation, positive_id),), eval_metric="auc",
                        callbacks=[lgb.early_stopping(50, first_metric_only=True, verbose=False)])
    else:
        model.set_params(n_estimators=200)
    model.fit(design(train.inputs), _binary_target(train, positive_id), **fit_args)
    return {name: model.predict_proba(design(split.inputs))[:, 1] for name, split in evaluate.items()}


BASELINES = {"logistic_regression": logistic_regression, "lightgbm": lightgbm}
