"""bigmodel sector plugin: customer-service intent detection with a human hand-off (BANKING77).

Modules: ``plugin`` (hooks), ``intents`` (label names), ``decision`` (hand-off threshold),
``metrics`` (sector metrics), ``baseline`` (TF-IDF + logistic regression), ``value`` (value factors).
"""

__all__: list[str] = []
