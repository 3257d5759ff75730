"""Generic metrics: accuracy, macro-F1, AUROC (binary), expected calibration error."""

from __future__ import annotations

from bigmodel.core import MetricSpec, hookimpl

_IMPL = "bigmodel.core.metrics"


@hookimpl
def register_metrics(register):
    register(MetricSpec(name="accuracy", compute=f"{_IMPL}:accuracy", description="share of exact predictions"))
    register(MetricSpec(name="macro_f1", compute=f"{_IMPL}:macro_f1", description="unweighted mean of per-class F1"))
    register(MetricSpec(name="auroc", compute=f"{_IMPL}:auroc", binary_only=True, description="area under the ROC curve of the positive class"))
    register(MetricSpec(name="ece", compute=f"{_IMPL}:ece", higher_is_better=False, description="expected calibration error, 15 equal-width bins of top-class confidence"))
