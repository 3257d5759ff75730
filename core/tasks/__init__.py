"""Task kinds: numpy-only preprocessors and torch model builders (imported lazily).

Importing this package loads neither torch nor transformers.
"""

from __future__ import annotations

from .base import (
    PREPROCESS_FILE,
    Preprocessor,
    count_inputs,
    load_preprocessor,
    make_preprocessor,
    preprocessor_from_spec,
    resolve_base,
    take_inputs,
)

__all__ = [
    "PREPROCESS_FILE",
    "Preprocessor",
    "count_inputs",
    "load_preprocessor",
    "make_preprocessor",
    "preprocessor_from_spec",
    "resolve_base",
    "take_inputs",
]
