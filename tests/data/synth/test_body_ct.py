"""DeepLesion-layout phantom writer: official layout, the mark, visible lesions inside boxes."""
import numpy as np
import pandas as pd

from brainlib.data.deeplesion import DL_INFO_COLUMNS, DeepLesionDataset
from brainlib.data.synth.body_ct import ORGANS, normal_slices, write_deeplesion


def test_writer_layout_mark_and_lesions(tmp_path):
    write_deeplesion(tmp_path, n_patients=10, seed=1, size=96, difficulty=0.3, unlabelled=1.0)
    info = pd.read_csv(tmp_path / "DL_info.csv")
    assert tuple(info.columns) == DL_INFO_COLUMNS
    assert set(info["Train_Val_Test"]) == {1, 2, 3}
    assert (info.loc[info["Train_Val_Test"] == 3, "Coarse_lesion_type"] == -1).all()
    assert info.groupby("File_name").size().max() > 1   # several lesions on one key slice
    ds = DeepLesionDataset(tmp_path, size=96)
    assert ds.synthetic and not ds.skipped
    for i in range(len(ds)):
        hu, masks = ds.hu(i), ds.lesion_masks(i)
        inside = hu[masks.any(0)].mean()
        ring = np.zeros_like(masks[0])
        for x1, y1, x2, y2 in ds.boxes(i).astype(int):
            ring[max(y1 - 4, 0):y2 + 5, max(x1 - 4, 0):x2 + 5] = True
        around = hu[ring & ~masks.any(0)].mean()
        assert abs(inside - around) > 20, (ds.ids[i], inside, around)
    normals = normal_slices(tmp_path, ds.metadata)
    assert len(normals) == 2 * len(ds)


def test_writer_is_deterministic(tmp_path):
    a = write_deeplesion(tmp_path / "a", 3, seed=2, size=64)
    b = write_deeplesion(tmp_path / "b", 3, seed=2, size=64)
    assert (a / "DL_info.csv").read_text() == (b / "DL_info.csv").read_text()
    pa = sorted((a / "Images_png").rglob("*.png"))
    assert [p.read_bytes() for p in pa] == [(b / p.relative_to(a)).read_bytes() for p in pa]


def test_only_drawable_types():
    assert set(ORGANS) == {1, 4, 5, 6, 7}
