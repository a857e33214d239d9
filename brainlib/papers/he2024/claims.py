"""Every regenerated number of He et al. 2024, recorded into `exp.claims` under the claim ids
of `brainlib/claims/he2024.yaml`; `exp.finish()` puts them beside the paper's.

One small function per group of claims: settings, Table 2, dataset counts, Fig. 5
proportions, Table 3 and the abstract, Table 4, localisation, comparisons.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from brainlib.data.classes import RSNA_CLASSES, RSNA_SUBTYPES
from brainlib.experiment import Experiment
from brainlib.papers.he2024.data import He2024Data
from brainlib.papers.he2024.localization import Localization
from brainlib.papers.he2024.settings import SETTING_CLAIMS
from brainlib.papers.he2024.tables import CLAIM_MODEL, PRESETS, auc_with_ci, table2
from brainlib.papers.he2024.train import TABLE3_MODELS, TABLE4_ROWS, VariantResult

# Claim keys of the three presets, in the order of `tables.PRESETS`.
WINDOW_KEYS = ("brain", "subdural", "soft_tissue")
# Subtypes whose AP the paper's text reports (EDH left out: too few boxes).
TEXT_AP_CLASSES = ("intraventricular", "intraparenchymal", "subarachnoid", "subdural")
# Dataset count claims: slices with k haemorrhage types.
TYPE_COUNT_WORDS = {2: "two", 3: "three", 4: "four"}


def record_setting_claims(exp: Experiment) -> None:
    """Training, split and localisation settings used, the window presets and the labels."""
    exp.record_settings(SETTING_CLAIMS)
    for key, (_, w) in zip(WINDOW_KEYS, PRESETS):
        exp.claims.add(f"text/windows/{key}/level", w.level)
        exp.claims.add(f"text/windows/{key}/width", w.width)


def record_table2_claims(exp: Experiment) -> None:
    """W and b of eq. 3.1 as the module holds them (float32, what the paper printed)."""
    t2 = table2().set_index("parameter")
    for key, (col, _) in zip(WINDOW_KEYS, PRESETS):
        for param in ("W", "b"):
            exp.claims.add(f"table2/{key}/{param}", float(t2.at[f"{param} (module)", col]),
                           note="module's float32 value")


def record_dataset_claims(exp: Experiment, data: He2024Data) -> None:
    """Slice counts of the data set used: total, without haemorrhage, with k types, test."""
    lab = data.dataset.labels
    n_types = np.nansum(lab[:, 1:], axis=1)
    exp.claims.add("text/dataset/labels", len(RSNA_CLASSES))
    exp.claims.add("text/dataset/total_slices", len(lab))
    exp.claims.add("text/dataset/no_ich_slices", int(np.sum(np.nan_to_num(lab[:, 0]) == 0)))
    for k, word in TYPE_COUNT_WORDS.items():
        exp.claims.add(f"text/dataset/{word}_type_slices", int(np.sum(n_types == k)))
    exp.claims.add("text/dataset/test_slices", len(data.test))


def record_fig5_claims(exp: Experiment, data: He2024Data) -> None:
    """Fig. 5: share of slices per label in training (train + val) and test, exact binomial CI."""
    lab = data.dataset.labels
    parts = (("train", np.concatenate([data.train, data.val])), ("test", data.test))
    for part, idx in parts:
        for i, cls in enumerate(RSNA_CLASSES):
            col = lab[idx, i]
            col = col[~np.isnan(col)]
            k, n = int(col.sum()), len(col)
            ci = binomtest(k, n).proportion_ci(0.95) if n else None
            exp.claims.add(f"fig5/{part}/{cls}/proportion", k / n if n else float("nan"),
                           (ci.low, ci.high) if ci else None, note="exact binomial 95 % CI")


def record_table3_claims(exp: Experiment, results: dict[str, VariantResult]) -> None:
    """Table 3 AUCs of the three models, and the abstract's AUCs (the full model's)."""
    for name, _ in TABLE3_MODELS:
        key = CLAIM_MODEL[name]
        for cls in list(RSNA_CLASSES) + ["average"]:
            v, lo, hi = auc_with_ci(exp, results[name], None if cls == "average" else cls)
            exp.claims.add(f"table3/{key}/{cls}/auc", v, (lo, hi))
    full = results["he2024_full"]
    v, lo, hi = auc_with_ci(exp, full, None)
    exp.claims.add("abstract/bleeding/auc", v, (lo, hi), note="read as the six-label mean")
    for cls in RSNA_SUBTYPES:
        v, lo, hi = auc_with_ci(exp, full, cls)
        exp.claims.add(f"abstract/{cls}/auc", v, (lo, hi))


def record_table4_claims(exp: Experiment, results: dict[str, VariantResult]) -> None:
    """Table 4: mean AUC over the six labels of each window-module input setting."""
    for name, _, _, _, key in TABLE4_ROWS:
        v, lo, hi = auc_with_ci(exp, results[name], None)
        exp.claims.add(f"table4/{key}/auc", v, (lo, hi), note="mean AUC over the six labels")


def record_localization_claims(exp: Experiment, loc: Localization) -> None:
    """mAP [CI] and the AP per subtype the text reports, of the full model's CAM boxes."""
    t = loc.ap["he2024_full"].set_index("class")
    m, lo, hi = loc.map_ci("he2024_full")
    exp.claims.add("text/localization/map", m, (lo, hi), note=t.at["mAP", "note"])
    for cls in TEXT_AP_CLASSES:
        exp.claims.add(f"text/localization/{cls}/ap", float(t.at[cls, "ap"]),
                       note=t.at[cls, "note"])


def record_comparison_claims(exp: Experiment, paired: pd.DataFrame) -> None:
    """Each paired test: difference a - b, its CI and p-value."""
    for row in paired.itertuples(index=False):
        exp.claims.add(row.claim_id, row.difference, (row.ci_low, row.ci_high),
                       p_value=row.p_value, note=f"{row.test}, a - b")


def record_claims(exp: Experiment, data: He2024Data, results: dict[str, VariantResult],
                  loc: Localization | None, paired: pd.DataFrame | None) -> None:
    """Record every regenerated number (what `exp.finish()` compares with the paper)."""
    record_setting_claims(exp)
    record_table2_claims(exp)
    record_dataset_claims(exp, data)
    record_fig5_claims(exp, data)
    record_table3_claims(exp, results)
    record_table4_claims(exp, results)
    if loc is not None:
        record_localization_claims(exp, loc)
    if paired is not None:
        record_comparison_claims(exp, paired)
