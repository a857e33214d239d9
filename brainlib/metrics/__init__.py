"""brainlib.metrics: classification metrics, uncertainty and paired tests (scikit-learn and
scipy underneath). See :mod:`.classification` and :mod:`.stats`; key-slice metrics of
Wang et al. (DrCT2) live in :mod:`.keyslice`."""
from __future__ import annotations

from .classification import (
    classification_metrics,
    classification_table,
    confusion,
    infer_task,
    make_metric_fn,
    pr_curves,
    prepare,
    roc_auc_per_class,
    roc_curves,
)
from .multilabel import defined_classes, macro_auc, macro_prf, masked_bce, percentile_ci
from .stats import (
    BootstrapCI,
    DeLongResult,
    McNemarResult,
    PairedBootstrapResult,
    PairedTTestResult,
    bootstrap_ci,
    delong,
    delong_ci,
    mcnemar,
    paired_bootstrap,
    paired_t_test,
)

try:  # written separately; only its absence is tolerated, not an error inside it
    from .keyslice import key_slice_task
except ModuleNotFoundError as exc:  # pragma: no cover - depends on which files exist
    if exc.name != f"{__name__}.keyslice":
        raise
    key_slice_task = None  # type: ignore[assignment]

__all__ = [
    "BootstrapCI",
    "DeLongResult",
    "McNemarResult",
    "PairedBootstrapResult",
    "PairedTTestResult",
    "bootstrap_ci",
    "classification_metrics",
    "classification_table",
    "confusion",
    "delong",
    "defined_classes",
    "delong_ci",
    "infer_task",
    "key_slice_task",
    "macro_auc",
    "macro_prf",
    "make_metric_fn",
    "masked_bce",
    "mcnemar",
    "paired_bootstrap",
    "paired_t_test",
    "percentile_ci",
    "pr_curves",
    "prepare",
    "roc_auc_per_class",
    "roc_curves",
]
