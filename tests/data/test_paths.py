"""Names from data files never leave the data root; a linked data root keeps working (issue 14)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainlib.data.classes import CQ500_HEADER, RSNA_CLASSES
from brainlib.data.cq500 import read_reads_csv
from brainlib.data.deeplesion import DL_INFO_COLUMNS, index_key_slices
from brainlib.data.names import UnsafeNameError, check_relative, join_inside
from brainlib.data.rsna import RSNADataset, read_rsna_csv
from brainlib.io import scan_folder
from brainlib.io.testing import uid_from, write_ct_slice

ESCAPES = ["ID_x/../../y", "/etc/passwd", "ID_a\x00b", "ID_..", "ID_x\\..\\y", "ID_\u0661\u0662"]


def _rsna_tree(root: Path) -> Path:
    (root / "stage_2_train").mkdir(parents=True)
    rows = []
    for k in range(3):
        image = f"ID_0{k}ab"
        write_ct_slice(root / "stage_2_train" / f"{image}.dcm", np.zeros((16, 16), np.float32),
                       study_uid=uid_from("st"), series_uid=uid_from("se"), sop_uid=uid_from("sop", k),
                       instance_number=k + 1, position=(0.0, 0.0, 5.0 * k))
        rows += [(f"{image}_{c}", 0) for c in RSNA_CLASSES]
    rows += [(f"{bad}_{c}", 1) for bad in ESCAPES for c in RSNA_CLASSES]
    pd.DataFrame(rows, columns=["ID", "Label"]).to_csv(root / "stage_2_train.csv", index=False)
    return root


def _inside(path: str, root: Path) -> bool:
    return os.path.normpath(path).startswith(str(root) + os.sep) or path.startswith(str(root))


def test_rsna_ids_that_navigate_are_skipped_as_malformed(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "cache"))
    root = _rsna_tree(tmp_path / "rsna")
    ds = RSNADataset(root, size=8, cache=False)
    assert sorted(ds.ids) == ["ID_00ab", "ID_01ab", "ID_02ab"]
    bad = [s for s in ds.skipped if s.error == "MalformedIdError"]
    assert len(bad) == len(ESCAPES) * len(RSNA_CLASSES) == len(ds.skipped)
    assert all(s.path.startswith(str(root / "stage_2_train.csv") + " line ") for s in bad)
    # no path the dataset holds, read or reported lies outside the root
    used = [p for paths in ds.metadata["paths"] for p in paths] + [s.path for s in ds.skipped]
    assert all(_inside(p, root) for p in used)
    with pytest.raises(UnsafeNameError, match="line"):
        read_rsna_csv(root / "stage_2_train.csv")  # the strict reader refuses instead


def test_rsna_through_a_symlinked_root_and_image_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE", str(tmp_path / "cache"))
    real = _rsna_tree(tmp_path / "disk2" / "rsna")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rsna").symlink_to(real, target_is_directory=True)  # user's linked root
    ds = RSNADataset(tmp_path / "data" / "rsna", size=8, cache=False)
    assert len(ds) == 3 and ds[0]["x"].shape == (3, 8, 8)
    # a layout whose image folder is a link to another disk
    split = tmp_path / "split"
    split.mkdir()
    (split / "stage_2_train.csv").write_bytes((real / "stage_2_train.csv").read_bytes())
    (split / "stage_2_train").symlink_to(real / "stage_2_train", target_is_directory=True)
    assert len(RSNADataset(split, size=8, cache=False)) == 3


def test_cq500_names_that_are_not_ids_are_skipped(tmp_path):
    names = ["CQ500-CT-1", "CQ500-CT-1/../../x", "/etc/passwd", "CQ500-CT-\u0661", "CQ500-CT-2\x00"]
    rows = [[n, "B1"] + [0] * (len(CQ500_HEADER) - 2) for n in names]
    path = tmp_path / "reads.csv"
    pd.DataFrame(rows, columns=list(CQ500_HEADER)).to_csv(path, index=False)
    skipped: list = []
    df = read_reads_csv(path, skipped)
    assert list(df["name"]) == ["CQ500-CT-1"]
    assert [s.error for s in skipped] == ["MalformedIdError"] * 4
    assert [s.path for s in skipped] == [f"{path} line {i}" for i in (3, 4, 5, 6)]
    with pytest.raises(ValueError, match="CQ500-CT-<N>"):
        read_reads_csv(path)


def test_dicom_uids_that_are_not_ids_are_skipped(tmp_path):
    for k, sop in enumerate([uid_from("ok"), "../../etc/x", "ID_ab", ".."]):
        write_ct_slice(tmp_path / f"s{k}.dcm", np.zeros((8, 8), np.float32), sop_uid=sop)
    index, skipped = scan_folder(tmp_path)
    assert sorted(Path(p).name for p in index["path"]) == ["s0.dcm", "s2.dcm"]  # RSNA-style ids pass
    assert sorted((Path(s.path).name, s.error) for s in skipped) == [
        ("s1.dcm", "MalformedIdError"), ("s3.dcm", "MalformedIdError")]


def test_deeplesion_file_names_cannot_navigate(tmp_path):
    good = {"File_name": "000001_01_01_009.png", "Patient_index": 1, "Study_index": 1, "Series_ID": 1,
            "Key_slice_index": 9, "Measurement_coordinates": "1,2,3,4", "Bounding_boxes": "1,2,30,40",
            "Lesion_diameters_Pixel_": "5,3", "Normalized_lesion_location": "0.5,0.5,0.5",
            "Coarse_lesion_type": 3, "Possibly_noisy": 0, "Slice_range": "1,20", "Spacing_mm_px_": "0.7,0.7,5",
            "Image_size": "512,512", "DICOM_windows": "-175,275", "Patient_gender": "F", "Patient_age": 50,
            "Train_Val_Test": 1}
    bad = ["../../../etc/passwd", "/abs/000001_01_01_009.png", "000001_01_01/../009.png",
           "000001_01_01_009.png\x00.txt", "\u0661_01_01_009.png"]
    info = pd.DataFrame([good] + [{**good, "File_name": b} for b in bad], columns=list(DL_INFO_COLUMNS))
    frame, skipped = index_key_slices(tmp_path, info, tmp_path / "DL_info.csv")
    assert list(frame["image_path"]) == [str(tmp_path / "Images_png" / "000001_01_01" / "009.png")]
    assert [s.error for s in skipped] == ["MalformedRowError"] * len(bad)


@pytest.mark.parametrize("rel, ok", [("normal/a.dcm", True), ("a/./b.dcm", True), ("../a.dcm", False),
                                     ("a/../../b", False), ("/etc/passwd", False), ("C:\\x.dcm", False),
                                     ("\\\\server\\share", False), ("a\x00b", False), ("", False),
                                     ("a\\..\\..\\b", False)])
def test_check_relative(tmp_path, rel, ok):
    assert (check_relative(rel) is None) == ok
    if ok:
        assert join_inside(tmp_path, rel) == tmp_path / rel
    else:
        with pytest.raises(UnsafeNameError, match=str(tmp_path)):
            join_inside(tmp_path, rel)


def test_busi_duplicate_case_is_listed_not_overwritten(tmp_path):
    from PIL import Image

    from brainlib.data.busi import index_busi

    (tmp_path / "benign").mkdir()
    for name in ("benign (12).png", "benign (012).png", "benign (12)_mask.png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "benign" / name)
    frame, skipped = index_busi(tmp_path)
    assert len(frame) == 1 and [s.error for s in skipped] == ["DuplicateCaseError"]


def test_cq500_batch_and_patient_folders_may_be_links(tmp_path):
    from brainlib.data.cq500 import find_patient_dirs

    other = tmp_path / "disk2"
    (other / "batch2" / "CQ500CT7 CQ500CT7").mkdir(parents=True)
    (other / "CQ500CT9 CQ500CT9").mkdir(parents=True)
    root = tmp_path / "cq500"
    (root / "batch1" / "CQ500CT1 CQ500CT1").mkdir(parents=True)
    (root / "batch2").symlink_to(other / "batch2", target_is_directory=True)
    (root / "batch1" / "CQ500CT9 CQ500CT9").symlink_to(other / "CQ500CT9 CQ500CT9", target_is_directory=True)
    (root / "batch1" / "loop").symlink_to(root, target_is_directory=True)  # a loop ends, once
    found, duplicates = find_patient_dirs(root)
    assert sorted(found) == [1, 7, 9] and duplicates == []
    assert found[7] == root / "batch2" / "CQ500CT7 CQ500CT7"  # reported under the user's root
