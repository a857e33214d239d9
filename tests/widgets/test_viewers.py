"""SeriesAttentionViewer (Wang et al. slice attention) and CamViewer (He et al. CAM boxes)."""
from __future__ import annotations

import numpy as np
import pytest

from brainlib.io import BRAIN, window
from brainlib.widgets import CamViewer, SeriesAttentionViewer


@pytest.fixture()
def volume() -> np.ndarray:
    return np.random.default_rng(0).normal(40, 60, (4, 64, 64)).astype(np.float32)


def test_series_attention_viewer(volume):
    att = np.array([0.1, 0.5, 0.15, 0.25])
    v = SeriesAttentionViewer(volume, att, top_k=2, probabilities={"ICH": 0.9})
    assert v.top_indices == [1, 3]
    assert v.slice_index == 1
    v.widget()
    v._controls["slice"].value = 2
    assert v.slice_index == 2 and "not in top-2" in v.readout() and v.readout().startswith("slice 3 / 4")
    v._controls["top"].value = 3
    assert v.slice_index == 3 and v._controls["slice"].value == 3
    np.testing.assert_array_equal(v.image(2), window(volume[2], 40, 80))
    assert v.render_rgb().shape == (384, 384, 3)  # 64 px enlarged 6x by whole pixels
    with pytest.raises(ValueError, match="attention has 3 values for 4 slices"):
        SeriesAttentionViewer(volume, att[:3])


def test_cam_viewer_threshold_moves_box():
    img = np.zeros((64, 64), np.float32)
    cam = np.zeros((64, 64), np.float32)
    cam[20:30, 20:30] = 1.0
    cam[10:50, 10:50] += 0.3
    v = CamViewer(img, cam, box=(20, 20, 30, 30), threshold=0.2)
    assert v.predicted_box == (10, 10, 50, 50)
    v.widget()
    v._controls["threshold"].value = 0.5
    assert v.predicted_box == (20, 20, 30, 30)
    assert "IoU 1.00" in v.readout()
    with pytest.raises(ValueError, match="2-D"):
        CamViewer(np.zeros((2, 2, 2)), cam)


def test_cam_viewer_windows_hu_input():
    hu = np.linspace(-100, 200, 64 * 64, dtype=np.float32).reshape(64, 64)
    v = CamViewer(hu, np.ones((8, 8)), window=BRAIN)
    np.testing.assert_array_equal(v.base, window(hu, *BRAIN))
