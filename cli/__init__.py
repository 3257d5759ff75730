"""The ``bigmodel`` command line. Command modules import only click and the light core;
engine modules (torch, transformers, onnxruntime) are imported inside the commands."""

from __future__ import annotations

from ._main import cli, main

__all__ = ["cli", "main"]
