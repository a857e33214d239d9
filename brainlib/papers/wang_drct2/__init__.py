"""Wang et al., DrCT1/DrCT2 key-slice sequence models (CQ500, RSNA) on the experiment layer.

The notebook ``notebooks/wang_drct2_key_slices.ipynb`` calls, in order:

1. ``exp = setup(**params)`` — settings of the profile (`settings.py`: every field with the
   paper's value and section, or our reason), run folder, data source, deviations.
2. ``datas = prepare(exp)`` — each dataset opened and every slice encoded once by the frozen
   slice encoder, cached (`data.py`, `encoder.py`).
3. ``cvs = cross_validate_all(exp, datas)`` — patient-grouped k-fold CV of DrCT1, DrCT2 and
   the ablations (`crossval.py`).
4. one call per table or figure (`tables.py`, `figures.py`, `scans.py`), saved by the
   notebook through ``exp.table`` / ``exp.figure`` / ``exp.predictions``;
5. ``record_claims(exp, cvs, datas, seconds_per_scan)`` (`claims.py`) and ``exp.finish()``.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from brainlib.experiment import Experiment, open_experiment
from brainlib.papers.wang_drct2.claims import record_claims
from brainlib.papers.wang_drct2.controls import (AUC_FLOOR, KEY_SLICE_RATIO, SWEEP_DIFFICULTIES,
                                                 comprehensive_ratio, difficulty_sweep,
                                                 fig_difficulty_sweep, positive_controls)
from brainlib.papers.wang_drct2.crossval import CVResult, Variant, build_model, \
    cross_validate, variants_for
from brainlib.papers.wang_drct2.data import PAPER, ScanData, SequenceSet, feature_key, \
    open_dataset, planned_source, prepare_data, record_provenance
from brainlib.papers.wang_drct2.encoder import make_encoder, pretrain_spec, resolve_encoder
from brainlib.papers.wang_drct2.figures import fig2_report, fig5_curves, fig6_mkey, \
    fig7_positions, fig8_accuracy
from brainlib.papers.wang_drct2.scans import attention_example, report_scans, time_per_scan
from brainlib.papers.wang_drct2.settings import DATASETS, LAYOUT_LABEL, WangDrct2Settings, \
    datasets_for, settings_for
from brainlib.papers.wang_drct2.tables import feature_norm_table, fig6_table, per_class_accuracy, \
    predictions_frame, table1, table2, table3, table4, table5, table6, table7, table8, \
    top5_positions, ttest_folds

#: Captions of the saved tables (by saved name), composed with data source and deviations.
CAPTIONS: dict[str, str] = {
    "table1": "Table 1: data distribution (scans, patients, slices per scan, sequence-level "
              "positives per label)",
    "table2": "Table 2: DrCT2 with MSE vs BCE for the primary and APS losses (fusion always "
              "BCE); macro precision/recall (%) and F1 on pooled out-of-fold predictions",
    "table3": "Table 3: DrCT1 vs DrCT2, macro precision/recall (%) and F1 at threshold 0.5 on "
              "pooled out-of-fold predictions; 95% CI of F1 by patient bootstrap; macro ROC AUC "
              "added (not in the paper) as a threshold-free reading",
    "table4": "Table 4: resolution strategies on CQ500 (DrCT1 at working size, zoomed, and "
              "'model fusion' with zoomed slices in the most attended window; DrCT2 with APS "
              "at working size vs zoomed)",
    "table5": "Table 5: key-slice tasks (Algorithm 1) on RSNA-layout scans, slice attention of "
              "the primary network; key slices from the per-slice labels; last column (not in "
              "the paper): chance level of random slice rankings",
    "table6": "Table 6: key-slice accuracy per disease: key slices of that disease found among "
              "each scan's top-h attended slices, over all its key slices (amount = slices)",
    "table7": "Table 7: sequence-level DrCT1/DrCT2 (scan labels) vs a fully supervised "
              "slice-level baseline aggregated by 'any slice positive' (RSNA-1 stand-in: "
              "3 FC layers on the same frozen slice features, trained with slice labels)",
    "table8": "Table 8: reader study as reported (junior radiologists; not reproducible "
              "offline), beside DrCT2 computed here on RSNA-layout test scans; time per scan "
              "measured on this CPU (encoder + DrCT2 from images)",
    "ttest_drct2_vs_drct1": "DrCT2 vs DrCT1 across folds: paired t-test "
                            "(scipy.stats.ttest_rel) of per-fold macro metrics, as in the "
                            "paper's Discussion; fold scores share training data, so p-values "
                            "are optimistic",
    "fig6_data": "Fig. 6: DrCT2 macro F1 when the APS network reads m_key slices chosen by "
                 "attention vs at random",
    "ablation_feature_norm": "DrCT2 with and without per-feature standardisation of z before "
                             "eq. 3's softmax (the paper has none); macro P/R/F1 and ROC AUC on "
                             "pooled out-of-fold predictions",
    "difficulty_sweep": "DrCT1 and DrCT2 scan-level macro ROC AUC (pooled out-of-fold, patient "
                        "bootstrap 95% CI; fold_mean_auc: mean of the per-fold AUCs, the "
                        "positive controls' estimate) against the phantom difficulty knob; same "
                        "settings and frozen encoder at every difficulty (not in the paper)",
    "fig_difficulty_sweep": "DrCT2 vs DrCT1 scan-level macro AUC against phantom difficulty "
                            "(lesion contrast, size, noise); shaded: 95% CI",
}


def setup(profile: str = "quick", data_root: str | os.PathLike | None = None,
          out_dir: str | os.PathLike = "outputs/wang_drct2", device: str = "auto",
          seed: int = 0, dataset: str = "both", **overrides: Any) -> Experiment:
    """Open the run: settings of `profile` with the notebook's overrides (`folds`, `epochs`,
    `image_size`, `zoom_size`, `m_key`, `max_studies`, `encoder`; None keeps the profile's).

    Raises ValueError for an unknown profile, dataset or setting.
    """
    s = settings_for(profile, **overrides)
    names = datasets_for(dataset)
    params = dict(profile=profile, data_root=data_root, out_dir=out_dir, device=device,
                  seed=seed, dataset=dataset, **overrides)
    return open_experiment(PAPER, s, params=params, out_dir=out_dir, device=device, seed=seed,
                           data_root=data_root, source=planned_source(data_root, names, s),
                           captions=CAPTIONS)


def prepare(exp: Experiment, weights: str | None = None,
            progress: bool = False) -> dict[str, ScanData]:
    """Open and encode every dataset of the run; record provenance and the data source."""
    out = {}
    with exp.timed("prepare_data"), exp.threads(exp.settings.encode_threads):
        for name in datasets_for(exp.run.params.get("dataset", "both")):
            out[name] = prepare_data(name, exp.settings, exp.data_root, seed=exp.seed,
                                     weights=weights, progress=progress,
                                     device=str(exp.device))
    record_provenance(exp, out)
    return out


def cross_validate_all(exp: Experiment, datas: Mapping[str, ScanData],
                       progress: bool = False) -> dict[str, CVResult]:
    """Cross-validate every variant on every dataset; training times go to the run notes."""
    cvs = {}
    for name, data in datas.items():
        with exp.timed(f"cross_validate_{name}"), exp.threads(exp.settings.train_threads):
            cvs[name] = cross_validate(data, exp.settings, seed=exp.seed,
                                       device=str(exp.device), progress=progress,
                                       checkpoint_dir=exp.checkpoint_dir)
        exp.note(f"{name}: training seconds per variant " +
                 ", ".join(f"{k} {v:.1f}" for k, v in cvs[name].seconds.items()))
    return cvs


__all__ = [
    "AUC_FLOOR", "KEY_SLICE_RATIO", "SWEEP_DIFFICULTIES", "comprehensive_ratio",
    "difficulty_sweep", "fig_difficulty_sweep", "feature_norm_table", "positive_controls",
    "CAPTIONS", "CVResult", "DATASETS", "LAYOUT_LABEL", "PAPER", "ScanData", "SequenceSet",
    "Variant", "WangDrct2Settings", "attention_example", "build_model", "cross_validate",
    "cross_validate_all", "datasets_for", "feature_key", "fig2_report", "fig5_curves",
    "fig6_mkey", "fig6_table", "fig7_positions", "fig8_accuracy", "make_encoder",
    "open_dataset", "per_class_accuracy", "predictions_frame", "prepare", "prepare_data",
    "pretrain_spec", "record_claims", "record_provenance", "report_scans", "resolve_encoder",
    "settings_for", "setup", "table1", "table2", "table3", "table4", "table5", "table6",
    "table7", "table8", "time_per_scan", "top5_positions", "ttest_folds", "variants_for",
]
