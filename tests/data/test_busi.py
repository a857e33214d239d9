"""BUSIDataset on a BUSI-layout tree written here by hand (not by the phantom writer): real-style
names, extra lesion masks, RGB and grey PNGs of odd sizes, odd names, missing masks, a broken PNG
and a decompression bomb; plus the phantom writer's tree and its SYNTHETIC.json mark."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brainlib.data.busi import (BUSIDataset, ImageTooLargeError, UnreadableImageError, find_busi_folder,
                                open_png)
from brainlib.data.base import DatasetError


def _png(path: Path, arr: np.ndarray, rgb: bool = False) -> None:
    im = Image.fromarray(arr.astype(np.uint8))
    (im.convert("RGB") if rgb else im).save(path)


def _bomb(path: Path, w: int, h: int) -> None:
    """A valid PNG header claiming w x h pixels with almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.fixture()
def busi_tree(tmp_path: Path) -> Path:
    root = tmp_path / "Dataset_BUSI_with_GT"
    for cls in ("benign", "malignant", "normal"):
        (root / cls).mkdir(parents=True)
    rng = np.random.default_rng(0)
    b = root / "benign"
    img = rng.integers(0, 255, (83, 117))
    _png(b / "benign (3).png", img, rgb=True)
    m0 = np.zeros((83, 117)); m0[10:30, 20:50] = 255
    m1 = np.zeros((83, 117)); m1[50:70, 60:90] = 255
    _png(b / "benign (3)_mask.png", m0)
    _png(b / "benign (3)_mask_1.png", m1)
    _png(b / "benign (10).png", rng.integers(0, 255, (64, 90)))           # grey
    m = np.zeros((64, 90)); m[20:40, 30:60] = 255
    _png(b / "benign (10)_mask.png", m, rgb=True)                         # RGB mask
    _png(b / "benign (11).png", rng.integers(0, 255, (40, 40)))           # no mask
    _png(b / "benign (12)_mask.png", m)                                   # no image
    _png(b / "Copy of benign (4).png", rng.integers(0, 255, (40, 40)))    # odd name
    (b / "benign (5).png").write_bytes(b"\x89PNG\r\n\x1a\n not really")    # broken
    _png(b / "benign (5)_mask.png", np.zeros((40, 40)))
    _bomb(b / "benign (6).png", 30000, 30000)
    _png(b / "benign (6)_mask.png", np.zeros((40, 40)))
    mal = root / "malignant"
    _png(mal / "malignant (1).png", rng.integers(0, 255, (101, 77)), rgb=True)
    mm = np.zeros((101, 77)); mm[40:80, 20:40] = 255
    _png(mal / "malignant (1)_mask.png", mm)
    nor = root / "normal"
    _png(nor / "normal (2).png", rng.integers(0, 255, (70, 70)), rgb=True)
    _png(nor / "normal (2)_mask.png", np.zeros((70, 70)))
    return tmp_path


def test_loads_published_layout_as_is(busi_tree: Path) -> None:
    ds = BUSIDataset(busi_tree, size=32)
    assert ds.classes == ("benign", "malignant", "normal")
    assert ds.ids == ["benign (3)", "benign (10)", "malignant (1)", "normal (2)"]
    np.testing.assert_array_equal(ds.labels.argmax(1), [0, 0, 1, 2])
    item = ds[0]
    assert item["x"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    assert float(item["x"].max()) <= 1.0 and item["id"] == "benign (3)"
    # both lesion masks merged
    meta = ds.metadata.set_index("case_id")
    assert meta.at["benign (3)", "n_masks"] == 2
    assert meta.at["benign (3)", "lesion_fraction"] == pytest.approx((600 + 600) / (83 * 117))
    assert meta.at["normal (2)", "lesion_fraction"] == 0
    assert meta.at["benign (3)", "mode"] == "RGB" and meta.at["benign (10)", "mode"] == "L"
    assert not ds.synthetic
    # the same tree through the Dataset_BUSI_with_GT folder itself
    assert BUSIDataset(busi_tree / "Dataset_BUSI_with_GT", size=32).ids == ds.ids


def test_reports_what_it_cannot_use(busi_tree: Path) -> None:
    ds = BUSIDataset(busi_tree, size=32)
    by_error = {(Path(s.path).name, s.error) for s in ds.skipped}
    assert ("benign (11).png", "MissingMaskError") in by_error
    assert ("benign (12)_mask.png", "OrphanMaskError") in by_error
    assert ("Copy of benign (4).png", "OddNameError") in by_error
    assert ("benign (5).png", "UnreadableImageError") in by_error
    assert ("benign (6).png", "ImageTooLargeError") in by_error
    for s in ds.skipped:
        assert s.reason


def test_open_png_typed_errors(busi_tree: Path) -> None:
    b = busi_tree / "Dataset_BUSI_with_GT" / "benign"
    with pytest.raises(ImageTooLargeError, match=r"benign \(6\)\.png: .*(bomb|max_pixels)"):
        open_png(b / "benign (6).png")
    with pytest.raises(ImageTooLargeError, match=r"117 x 83 pixels exceeds max_pixels 1000"):
        open_png(b / "benign (3).png", max_pixels=1000)
    with pytest.raises(UnreadableImageError, match=r"benign \(5\)\.png"):
        open_png(b / "benign (5).png")
    assert open_png(b / "benign (3).png").shape == (83, 117)


def test_no_class_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no BUSI class folder"):
        find_busi_folder(tmp_path)


def test_phantom_writer_tree_is_marked_and_loads(tmp_path: Path) -> None:
    from brainlib.data.synth.breast_us import load_duplicates, write_busi

    root = write_busi(tmp_path / "ph", n_images=20, seed=3, size=64, difficulty=0.3,
                      duplicate_fraction=0.1)
    ds = BUSIDataset(root, size=32)
    assert len(ds) == 20 and not ds.skipped
    assert ds.synthetic and BUSIDataset(root / "Dataset_BUSI_with_GT", size=32).synthetic
    counts = np.bincount(ds.class_index, minlength=3)
    assert counts[0] > counts[1] > 0 and counts[2] > 0
    normal = ds.labels[:, 2] == 1
    assert all(not ds.arrays(i)[1].any() for i in np.flatnonzero(normal))
    assert all(ds.arrays(i)[1].any() for i in np.flatnonzero(~normal))
    assert len(load_duplicates(root)) >= 1


def test_phantom_lesions_follow_their_class() -> None:
    from brainlib.data.synth.breast_us import make_breast_image

    for seed in range(4):
        _, (benign,) = make_breast_image(seed, "benign", 128, 160, 0.3)
        _, (malignant,) = make_breast_image(seed, "malignant", 128, 160, 0.3)
        rows, cols = np.flatnonzero(benign.any(1)), np.flatnonzero(benign.any(0))
        assert np.ptp(cols) > np.ptp(rows)  # wider than tall
        rows, cols = np.flatnonzero(malignant.any(1)), np.flatnonzero(malignant.any(0))
        assert np.ptp(rows) > np.ptp(cols)  # taller than wide
    image, masks = make_breast_image(0, "normal", 64)
    assert image.dtype == np.uint8 and masks == []
