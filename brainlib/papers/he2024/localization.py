"""Weakly supervised localisation of He et al. 2024 (Sec. 2.1.3, Sec. 2.2.2): one CAM box per
test slice and subtype (CAM binarised at 20 % of its maximum, bounding rectangle of the
largest connected component), scored by the predicted probability; AP per subtype at
IoU > 0.5 as eq. 4.1 (precision interpolated at evenly spaced recall points) with
scikit-learn's step AP beside it, and mAP with a bootstrap CI, with and without multiscale
fusion.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from brainlib.data.classes import RSNA_CLASSES, RSNA_SHORT, RSNA_SUBTYPES
from brainlib.experiment import Experiment
from brainlib.io import BRAIN
from brainlib.localize import cam_box, class_activation_maps, localization_ap
from brainlib.metrics import percentile_ci
from brainlib.metrics.localization import map_bootstrap
from brainlib.models.he2024 import CAM_CLASSIFIER, CAM_TARGET
from brainlib.papers.he2024.data import He2024Data, pick_cases
from brainlib.papers.he2024.train import VariantResult

LOCALIZED_MODELS: tuple[str, ...] = ("he2024_full", "he2024_no_fusion")


@dataclass
class Localization:
    """AP tables, detections, the CAMs of the Fig. 8 slices and the mAP bootstrap."""

    ap: dict[str, pd.DataFrame]            # model -> AP table (per subtype + mAP)
    detections: dict[str, pd.DataFrame]
    cams: dict[str, dict[str, np.ndarray]]  # model -> case id -> CAMs of the Fig. 8 slices
    boot: dict[str, np.ndarray]            # model -> mAP on the same bootstrap resamples
    boxes: pd.DataFrame                    # ground-truth boxes of the test slices
    cam_threshold: float
    fig_cases: list[int] = field(default_factory=list)  # dataset rows shown in Fig. 8

    def map_ci(self, name: str) -> tuple[float, float, float]:
        """(mAP, low, high) of one model, 95 % percentile CI over test-slice resamples."""
        value = float(self.ap[name].set_index("class").at["mAP", "ap"])
        return (value,) + percentile_ci(self.boot[name])  # type: ignore[return-value]


def cam_detections(exp: Experiment, data: He2024Data, model: torch.nn.Module,
                   keep: Sequence[str] = (), batch_size: int = 32
                   ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One CAM box per test slice and subtype, scored by the predicted probability.

    Returns the detections and the full-size CAMs of the slices in `keep` (for Fig. 8; the
    CAMs of a whole test set would not fit in memory at the paper's size).
    """
    rows, cams_by_id = [], {}
    test = data.subset("test")
    model = model.to(exp.device).eval()
    for start in range(0, len(test), batch_size):
        items = [test[j] for j in range(start, min(start + batch_size, len(test)))]
        x = torch.stack([it["x"] for it in items]).to(exp.device)
        cams, logits = class_activation_maps(model, x, CAM_TARGET, CAM_CLASSIFIER)
        probs = 1.0 / (1.0 + np.exp(-logits))
        for b, it in enumerate(items):
            if it["id"] in keep:
                cams_by_id[it["id"]] = cams[b]
            for k, cls in enumerate(RSNA_CLASSES):
                if cls == "any":
                    continue
                box = cam_box(cams[b, k], exp.settings.cam_threshold)
                if box is not None:
                    rows.append((it["id"], cls, *box, float(probs[b, k])))
    model.cpu()
    det = pd.DataFrame(rows, columns=["image_id", "class", "x0", "y0", "x1", "y1", "score"])
    return det, cams_by_id


def localize(exp: Experiment, data: He2024Data, results: dict[str, VariantResult],
             models: Sequence[str] = LOCALIZED_MODELS) -> Localization | None:
    """AP per subtype and mAP of the CAM boxes at IoU > 0.5 for `models` (with and without
    fusion), mAPs on shared bootstrap resamples; None without ground-truth boxes."""
    if data.boxes is None:
        return None
    s = exp.settings
    with exp.timed("localization"):
        aps, dets, cams = {}, {}, {}
        fig_cases = pick_cases(data, s.n_fig_cases, with_boxes=True)
        keep = {data.dataset.ids[i] for i in fig_cases}
        for name in models:
            dets[name], cams[name] = cam_detections(exp, data, results[name].model, keep)
            aps[name] = localization_ap(dets[name], data.boxes, RSNA_SUBTYPES, s.iou_threshold,
                                        s.min_positives, s.ap_recall_points)
        boot = map_bootstrap(dets, data.boxes, data.test_ids, aps[models[0]], s.n_boot,
                             exp.seed, s.iou_threshold, s.ap_recall_points)
    return Localization(aps, dets, cams, boot, data.boxes, s.cam_threshold, fig_cases)


def ap_table(loc: Localization | None) -> pd.DataFrame:
    """AP per subtype and mAP [95 % CI] of every localised model (a one-row note when
    localisation was not run for want of ground-truth boxes)."""
    if loc is None:
        return pd.DataFrame({"note": ["no ground-truth boxes: localisation not evaluated"]})
    rows = []
    for name, ap in loc.ap.items():
        t = ap.set_index("class")
        for cls in list(RSNA_SUBTYPES) + ["mAP"]:
            v, lo, hi = loc.map_ci(name) if cls == "mAP" else (t.at[cls, "ap"], None, None)
            rows.append({"model": name, "class": RSNA_SHORT.get(cls, cls),
                         "n_ground_truth": t.at[cls, "n_ground_truth"],
                         "n_tp": t.at[cls, "n_tp"], "ap": v, "ci_low": lo, "ci_high": hi,
                         "ap_step": t.at[cls, "ap_step"], "note": t.at[cls, "note"]})
    return pd.DataFrame(rows)


def shown_class(boxes: pd.DataFrame, labels: np.ndarray) -> tuple[str, str]:
    """(class, caption) a figure shows for one slice: its first boxed subtype, else its first
    positive subtype (no box at this size), else `any` (no haemorrhage)."""
    y = np.nan_to_num(labels)
    if len(boxes):
        cls = boxes["class"].iloc[0]
        return cls, RSNA_SHORT[cls]
    if y[1:].any():
        cls = RSNA_SUBTYPES[int(np.argmax(y[1:]))]
        return cls, f"{RSNA_SHORT[cls]} (no box at this size)"
    return "any", "no haemorrhage"


def cam_example(data: He2024Data, loc: Localization | None, case: int = 0,
                model: str = "he2024_full") -> dict[str, Any] | None:
    """Inputs of `brainlib.widgets.CamViewer` for one Fig. 8 slice: HU image, CAM, true box.

    The CAM is the one of the slice's boxed subtype (else its first positive subtype, else
    `any`), exactly as Fig. 8 shows it; None when localisation was not run.
    """
    if loc is None or not loc.fig_cases:
        return None
    item = data.dataset[loc.fig_cases[min(case, len(loc.fig_cases) - 1)]]
    gt = loc.boxes[loc.boxes["image_id"] == item["id"]]
    cls, _ = shown_class(gt, item["y"].numpy())
    box = None
    if len(gt):
        b = gt[gt["class"] == cls].iloc[0]
        box = (int(b.x0), int(b.y0), int(b.x1), int(b.y1))
    cam = loc.cams[model][item["id"]][list(RSNA_CLASSES).index(cls)]
    return {"image": item["x"][0].numpy(), "cam": cam, "box": box, "window": BRAIN}
