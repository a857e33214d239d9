"""mAP bootstrap and the paired mAP difference (brainlib.metrics.localization)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from brainlib.data.classes import RSNA_SUBTYPES
from brainlib.metrics.localization import map_bootstrap, paired_map_difference


def _boxes(ids):
    return pd.DataFrame([(i, "subdural", 0, 0, 4, 4) for i in ids],
                        columns=["image_id", "class", "x0", "y0", "x1", "y1"])


def test_map_bootstrap_reweights_slices():
    ids = [f"s{i}" for i in range(6)]
    gt = _boxes(ids)
    good = gt.assign(score=np.linspace(0.9, 0.4, 6))
    bad = gt.assign(x0=10, y0=10, x1=12, y1=12, score=0.5)
    ref = pd.DataFrame({"class": list(RSNA_SUBTYPES) + ["mAP"],
                        "ap": [np.nan, np.nan, np.nan, np.nan, 1.0, 1.0]})
    boot = map_bootstrap({"good": good, "bad": bad}, gt, ids, ref, 30, 0)
    assert np.all(boot["good"] == 1.0) and np.all(boot["bad"] == 0.0)
    lo, hi, p = paired_map_difference(boot["good"], boot["bad"])
    assert (lo, hi, p) == (1.0, 1.0, 0.0)


def test_half_right_detections_and_no_kept_class():
    ids = [f"s{i}" for i in range(8)]
    gt = _boxes(ids)
    half = gt.assign(score=np.linspace(0.9, 0.1, 8))  # the 4 right boxes rank first
    half.loc[4:, ["x0", "y0", "x1", "y1"]] = (20, 20, 22, 22)
    ref = pd.DataFrame({"class": ["subdural", "mAP"], "ap": [0.5, 0.5]})
    boot = map_bootstrap({"half": half}, gt, ids, ref, 200, 1)["half"]
    assert 0.0 <= boot.min() and boot.max() <= 1.0 and 0.35 < boot.mean() < 0.65
    assert len(np.unique(boot)) > 1  # resamples differ
    again = map_bootstrap({"half": half}, gt, ids, ref, 200, 1)["half"]
    np.testing.assert_array_equal(boot, again)  # seeded
    none = pd.DataFrame({"class": ["subdural", "mAP"], "ap": [np.nan, np.nan]})
    assert np.isnan(map_bootstrap({"half": half}, gt, ids, none, 5, 0)["half"]).all()


def test_paired_difference_needs_enough_replicates():
    a = np.array([0.5] * 5 + [np.nan] * 20)
    assert all(np.isnan(v) for v in paired_map_difference(a, a))


def test_map_bootstrap_with_a_class_without_detections():
    gt = pd.DataFrame([("a", "x", 0, 0, 2, 2), ("b", "y", 0, 0, 2, 2)],
                      columns=["image_id", "class", "x0", "y0", "x1", "y1"])
    det = pd.DataFrame([("a", "x", 0, 0, 2, 2, 0.9)],
                       columns=["image_id", "class", "x0", "y0", "x1", "y1", "score"])
    ref = pd.DataFrame({"class": ["x", "y", "mAP"], "ap": [1.0, 0.0, 0.5]})
    boot = map_bootstrap({"m": det}, gt, ["a", "b"], ref, 20, 0)["m"]
    assert np.nanmax(boot) <= 1.0 and np.nanmin(boot) >= 0.0  # class y: no detection, AP 0
