"""He et al. 2024 (Heliyon 10:e30270): window-setting optimisation, multiscale attention
fusion and CAM localisation of intracranial haemorrhage on RSNA 2019.

The notebook `notebooks/he2024_ich_window_multiscale.ipynb` is a parameters cell, then::

    exp = he2024.setup(**params)                   # brainlib.experiment.Experiment
    data = he2024.prepare_data(exp)                # RSNA layout (phantoms by default), split
    exp.table("split", data.split_table())
    exp.table("table2", he2024.table2())
    results = he2024.train_variants(exp, data)     # every model through brainlib.engine.fit
    exp.table("table3", he2024.table3(exp, results))
    exp.figure("fig6_roc", he2024.fig6_roc(results))
    ...
    he2024.record_claims(exp, data, results, loc, paired)
    exp.finish()

Tables and figures are returned as data and saved by the session (captions from `captions`
plus the data source and deviations). Every number beside a paper number carries a bootstrap
CI; comparisons are paired tests on the same test cases (`comparisons`).

Modules: `settings` (He2024Settings), `data`, `train`, `tables`, `figures`, `localization`,
`comparisons`, `claims`.
"""
from __future__ import annotations

import os
from pathlib import Path

from brainlib.experiment import Experiment, open_experiment
from brainlib.models.backbones import vgg16_features
from brainlib.models.he2024 import STRUCTURE_READINGS
from brainlib.papers.he2024.claims import record_claims
from brainlib.papers.he2024.comparisons import COMPARISONS, paired_tests
from brainlib.papers.he2024.data import (He2024Data, label_proportions, prepare_data,
                                         scale_boxes)
from brainlib.papers.he2024.figures import fig5_proportions, fig6_roc, fig7_windows, fig8_cam
from brainlib.papers.he2024.localization import (Localization, ap_table, cam_detections,
                                                 cam_example, localize)
from brainlib.papers.he2024.settings import PAPER, He2024Settings
from brainlib.papers.he2024.sweep import (SWEEP_DIFFICULTIES, SWEEP_MODELS, difficulty_sweep,
                                          fig_difficulty_sweep)
from brainlib.papers.he2024.tables import (fig5_table, learned_window_presets, learned_windows,
                                           table2, table3, table4)
from brainlib.papers.he2024.train import (TABLE3_MODELS, TABLE4_ROWS, TRAINED_VARIANTS,
                                          VariantResult, predictions_frame, test_auc,
                                          train_variant, train_variants, training_history,
                                          training_summary)
from brainlib.report import data_source

__all__ = [
    "COMPARISONS", "CONTROL_FLOORS", "PAPER", "SWEEP_DIFFICULTIES", "SWEEP_MODELS",
    "TABLE3_MODELS", "TABLE4_ROWS", "TRAINED_VARIANTS", "He2024Data", "He2024Settings",
    "Localization", "VariantResult", "ap_table", "cam_detections", "cam_example", "captions",
    "difficulty_sweep", "fig5_proportions", "fig5_table", "fig6_roc", "fig7_windows",
    "fig8_cam", "fig_difficulty_sweep", "label_proportions", "learned_window_presets",
    "learned_windows", "localize", "paired_tests", "predictions_frame", "prepare_data",
    "record_claims", "scale_boxes", "setup", "table2", "table3", "table4", "test_auc",
    "train_variant", "train_variants", "training_history", "training_summary",
]

#: Positive controls (issue 10): the full model on plainly visible phantom lesions must reach
#: these test AUCs (uncertain slices left out) before the run's numbers mean anything.
CONTROL_FLOORS: dict[str, float] = {"any": 0.90, "mean": 0.85}

SHARED_FULL_MODEL = ("Table 4's last row (three windows, trained) is the full model, trained "
                     "once and reported in both tables.")


def captions(s: He2024Settings) -> dict[str, str]:
    """Caption of every table and figure the notebook saves (the session adds the data
    source and deviations); `fig5_proportions` names both the table and the figure."""
    size = s.image_size
    return {
        "split": "Slices, studies and positive slices per class in each part",
        "fig5_proportions": "Fig. 5: percentage of slices with each label, training (train + "
                            "validation) and test sets",
        "table2": "Table 2: initial W and b of the window module from eq. 3.1 (U = 255, "
                  "eps = 1), exact (float64) and as the module's float32 parameters; "
                  "independent of data and training. The paper prints the brain window's b "
                  "as +5.5373344; eq. 3.1 gives -5.5373344",
        "training_history": "Per-epoch training history of every model (validation mean AUC "
                            "selects the tested epoch)",
        "table3": "Table 3: test AUC [95 % bootstrap CI] per class and average; radiologists' "
                  "columns quoted from Ye et al. 2019 as reported by the paper, not re-run",
        "table4": "Table 4: window-module input settings, test AUC [95 % bootstrap CI] (mean "
                  "over the six labels, and 'any'); every model has multiscale fusion; the "
                  "last row is the full model",
        "fig7_learned_windows": "Fig. 7: window (level, width) of each window module before "
                                "and after training, from the trained W, b by inverting "
                                "eq. 3.1",
        "ap_localization": (
            f"Weakly supervised localisation: AP of CAM boxes (threshold "
            f"{s.cam_threshold:.0%} of the CAM's maximum, largest component) at IoU > "
            f"{s.iou_threshold} per subtype and mAP [95 % bootstrap CI over test slices], with "
            f"and without multiscale fusion; 'ap' is eq. 4.1 (precision interpolated at 101 "
            f"evenly spaced recall points), 'ap_step' scikit-learn's step-wise AP; subtypes "
            f"with fewer than {s.min_positives} ground-truth boxes are flagged and left out of the mAP. The CAM comes from a {size // 16}x"
            f"{size // 16} feature map ({size} px input / 16)"),
        "fig6_roc": "Fig. 6: ROC curve and AUC of each label (any + five subtypes), full "
                    "model, test set",
        "fig7_windows": "Fig. 7: the same test slices at the preset windows and at the windows "
                        "the full model's window module learned",
        "fig8_cam": (f"Fig. 8: ground-truth box, CAM without and with multiscale fusion (box "
                     f"from the CAM at {s.cam_threshold:.0%} of its maximum), same test slices"),
        "difficulty_sweep": "Difficulty sweep (not in the paper): test AUC [95 % bootstrap CI "
                            "over studies] of the full model and the Table 3 ablations on "
                            "phantoms generated at each difficulty, one training each",
        "fig_difficulty_sweep": "Difficulty sweep (not in the paper): 'any' and mean AUC of "
                                "the full model and its ablations against the phantom "
                                "difficulty knob (0 = plainly visible lesions), 95 % CI bars",
        "paired_tests": "Comparative claims: difference a - b on the same test slices, 95 % "
                        "CI and two-sided p (DeLong for one class, slices treated as "
                        "independent; paired bootstrap for six-class means (whole test "
                        "studies resampled) and for the mAP (test slices resampled))",
    }


def setup(
    profile: str = "quick",
    data_root: str | None = None,
    out_dir: str | Path = "outputs/he2024",
    device: str = "auto",
    seed: int = 0,
    epochs: int | None = None,
    image_size: int | None = None,
    batch_size: int | None = None,
    max_studies: int | None = None,
    box_csv: str | None = None,
) -> Experiment:
    """Resolve the profile's settings, open the run in `out_dir` and return the session.

    Arguments other than `profile`, `data_root`, `out_dir`, `device` and `seed` override the
    profile when not None. The data source starts as "phantoms" without `data_root`; the
    files' phantom mark decides once `prepare_data` has read them.
    """
    settings = He2024Settings.for_profile(profile, epochs=epochs, image_size=image_size,
                                          batch_size=batch_size, max_studies=max_studies,
                                          box_csv=box_csv)
    width = settings.backbone_width
    if width != 1.0 and os.environ.get("BRAINLIB_VGG16_WEIGHTS"):
        raise ValueError(f"BRAINLIB_VGG16_WEIGHTS is set but profile {profile!r} uses a VGG-16 "
                         f"of width {width}; ImageNet weights need the full profile (width 1)")
    _, init = vgg16_features(width)  # cheap; says how the backbone will be initialised
    details = {} if data_root else {"phantom": settings.phantom(seed)}
    params = {"profile": profile, "data_root": data_root, "out_dir": str(out_dir),
              "device": device, "seed": seed, "epochs": epochs, "image_size": image_size,
              "batch_size": batch_size, "max_studies": max_studies, "box_csv": box_csv}
    exp = open_experiment(PAPER, settings, params=params, out_dir=out_dir, device=device,
                          seed=seed, data_root=data_root,
                          source=data_source(data_root, "rsna", **details),
                          threads=settings.threads, captions=captions(settings),
                          notes=[init.note, SHARED_FULL_MODEL])
    for name, (value, why) in STRUCTURE_READINGS.items():
        exp.read(name, value, why)
    exp.read("CAM box", "cam >= 20 % of max(cam); no box when max(cam) <= 0",
             "Sec. 2.1.3: 'twenty percent of the maximum activation value'; a map without "
             "positive activation has nothing to threshold")
    if not init.pretrained:
        exp.deviate("backbone: random initialisation (no local ImageNet VGG-16 weights file; "
                    "set BRAINLIB_VGG16_WEIGHTS)")
    return exp
