"""bigmodel-medical: medical imaging screening and grading for bigmodel (see README.md)."""

__all__: list[str] = []
