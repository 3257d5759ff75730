"""bigmodel-finance: credit default scoring with an FT-Transformer, calibrated probabilities and
cost-sensitive accept/reject decisions (German Credit by default, any tabular CSV too).

Light on import: the plugin module imports only bigmodel.core; the modules holding the model
(``model``), decisions (``decision``), metrics, baselines and cross-validation (``evaluation``)
and value factors (``value``) import their heavy libraries inside functions.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
