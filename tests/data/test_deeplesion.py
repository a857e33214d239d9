"""DeepLesion loader: a tree written here by hand (not by brainlib's phantom writer) loads as is."""
import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brainlib.data import DatasetError
from brainlib.data.deeplesion import (DL_INFO_COLUMNS, DeepLesionDataset, NotSixteenBitError,
                                      UnreadableImageError, image_path, open_hu)

ROW = {"Measurement_coordinates": "10, 12, 20, 12, 15, 9, 15, 15", "Lesion_diameters_Pixel_": "10.0, 6.0",
       "Normalized_lesion_location": "0.4, 0.3, 0.5", "Possibly_noisy": 0, "Spacing_mm_px_": "0.7, 0.7, 5",
       "Image_size": "64, 64", "DICOM_windows": "-175, 275", "Patient_gender": "F", "Patient_age": 61}


def _png16(path: Path, hu: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((hu + 32768).astype(np.uint16)).save(path)


def _row(fname, patient, key, box, ctype, split, slice_range="8, 12"):
    series = fname.rsplit("_", 1)[0].split("_")
    return {**ROW, "File_name": fname, "Patient_index": patient, "Study_index": int(series[1]),
            "Series_ID": int(series[2]), "Key_slice_index": key, "Bounding_boxes": box,
            "Coarse_lesion_type": ctype, "Slice_range": slice_range, "Train_Val_Test": split}


@pytest.fixture()
def tree(tmp_path):
    hu = np.full((64, 64), -1000.0)
    hu[8:24, 8:24] = 40.0
    _png16(tmp_path / "Images_png/000001_01_01/010.png", hu)
    _png16(tmp_path / "Images_png/000002_01_02/005.png", np.zeros((64, 64)))
    _png16(tmp_path / "Images_png/000003_01_01/020.png", np.zeros((64, 64)))
    (tmp_path / "Images_png/000004_01_01").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "Images_png/000004_01_01/030.png")
    rows = [
        _row("000001_01_01_010.png", 1, 10, "8, 8, 24, 24", 5, 1),     # two lesions, one key slice
        _row("000001_01_01_010.png", 1, 10, "30, 30, 40, 44", 4, 1),
        _row("000002_01_02_005.png", 2, 5, "1, 2, 3, 4", -1, 3),       # unlabelled, test split
        _row("000003_01_01_020.png", 3, 20, "5, 5, 9, 9", 6, 2),
        _row("000004_01_01_030.png", 4, 30, "5, 5, 9, 9", 6, 1),       # 8-bit PNG
        _row("000005_01_01_001.png", 5, 1, "5, 5, 9, 9", 6, 1),        # missing file
        _row("000006_01_01_001.png", 6, 1, "5, 5, 9", 6, 1),           # malformed box
    ]
    with open(tmp_path / "DL_info.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(DL_INFO_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    return tmp_path


def test_hand_written_tree_loads(tree):
    ds = DeepLesionDataset(tree, size=None)
    assert list(ds.ids) == ["000001_01_01_010", "000002_01_02_005", "000003_01_01_020"]
    assert not ds.synthetic
    first = ds[0]
    assert first["boxes"].shape == (2, 4) and first["types"].tolist() == [5, 4]
    assert ds.classes[4] == "lung" and ds.classes[3] == "liver"
    np.testing.assert_array_equal(ds.labels[0], [0, 0, 0, 1, 1, 0, 0, 0])
    assert np.isnan(ds.labels[1]).all()          # -1: unknown type
    assert list(ds.split) == ["train", "test", "val"]
    errors = {Path(s.path).name if "row" not in s.path else "csv": s.error for s in ds.skipped}
    assert errors["030.png"] == "NotSixteenBitError"
    assert errors["001.png"] == "UnreadableImageError"
    assert errors["csv"] == "MalformedRowError"
    assert any("DL_info.csv row 8" in s.path for s in ds.skipped)


def test_hu_is_value_minus_32768_and_masks(tree):
    ds = DeepLesionDataset(tree, size=None)
    hu = ds.hu(0)
    assert hu[10, 10] == 40.0 and hu[0, 0] == -1000.0
    m = ds.lesion_masks(0, "box")
    assert m.shape == (2, 64, 64) and m[0, 16, 16] and not m[0, 40, 40]
    e = ds.lesion_masks(0)
    assert e[0].sum() < m[0].sum() and e[0, 16, 16]


def test_resize_scales_boxes_and_windows(tree):
    ds = DeepLesionDataset(tree, size=32, windows=[(40, 400)])
    item = ds[0]
    assert item["x"].shape == (1, 32, 32) and 0 <= item["x"].min() and item["x"].max() <= 1
    np.testing.assert_allclose(item["boxes"][0].numpy(), [4, 4, 12, 12])


def test_official_split_is_honoured(tree):
    assert DeepLesionDataset(tree, split="test").ids == ["000002_01_02_005"]
    assert DeepLesionDataset(tree, split="val").ids == ["000003_01_01_020"]
    with pytest.raises(ValueError):
        DeepLesionDataset(tree, split="validation")


def test_typed_errors_name_the_file(tree, tmp_path):
    with pytest.raises(NotSixteenBitError, match="030.png"):
        open_hu(tree / "Images_png/000004_01_01/030.png")
    with pytest.raises(UnreadableImageError, match="nope.png"):
        open_hu(tree / "nope.png")
    (tree / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(UnreadableImageError, match="bad.png"):
        open_hu(tree / "bad.png")


def test_decompression_bomb_refused_before_decoding(tree):
    ds = DeepLesionDataset(tree, max_pixels=1000)
    assert len(ds) == 0
    assert {s.error for s in ds.skipped} >= {"ImageTooLargeError"}


def test_missing_columns_and_missing_csv(tmp_path):
    with pytest.raises(DatasetError, match="DL_info.csv"):
        DeepLesionDataset(tmp_path)
    (tmp_path / "DL_info.csv").write_text("File_name,Bounding_boxes\n")
    with pytest.raises(DatasetError, match="missing column"):
        DeepLesionDataset(tmp_path)


def test_image_path_mapping():
    assert image_path("/r", "000001_01_01_109.png") == Path("/r/Images_png/000001_01_01/109.png")
    with pytest.raises(ValueError):
        image_path("/r", "x.png")


def test_damaged_mark_is_an_error(tree):
    (tree / "SYNTHETIC.json").write_text("{}")
    with pytest.raises(DatasetError):
        DeepLesionDataset(tree).synthetic
