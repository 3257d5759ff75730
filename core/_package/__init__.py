"""bigmodel: turn a pretrained model into a sector solution.

Public entry points: :func:`load` (an ONNX Runtime predictor for an exported model or
a run directory) and the plugin API in :mod:`bigmodel.core`. Heavy libraries are
imported only when used.
"""

from __future__ import annotations

from typing import Any

from bigmodel.core._version import __version__

__all__ = ["__version__", "load"]


def load(model: str, **kwargs: Any):
    """An ONNX Runtime predictor for ``model`` (a ``.onnx`` file or a run directory).

    Keyword arguments go to :class:`bigmodel.core.predict.Predictor` (``provider``, ``batch_size``).
    """
    from bigmodel.core.predict import Predictor

    return Predictor.load(model, **kwargs)
