"""BoneScanDataset on phantom NM trees: layouts, patients, the phantom mark, skipped files."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainlib.data import BoneScanDataset, DatasetError, MixedDataError
from brainlib.data.classes import BONESCAN_CLASSES
from brainlib.data.synth.bone_scan import draw_patient, load_bonescan_truth, write_bonescan, write_nm


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_bonescan(tmp_path_factory.mktemp("bs"), n_studies=8, seed=1, shape=(128, 32),
                          follow_up=0.5)


def test_folder_layout_rows_labels_groups(tree):
    ds = BoneScanDataset(tree, size=(64, 32))
    truth = load_bonescan_truth(tree)
    assert len(ds) == len(truth) and ds.classes == BONESCAN_CLASSES
    assert ds.labels.sum(1).tolist() == [1.0] * len(ds)
    assert (np.nansum(ds.labels, 0) > 0).all()
    assert len(set(ds.groups)) == 8 and len(ds) > 8  # follow-up scans share a patient
    item = ds[0]
    assert item["x"].shape == (2, 64, 32) and item["y"].shape == (4,) and item["id"] == ds.ids[0]
    assert ds.synthetic is True and ds.skipped == []
    sub = ds.subset([1, 2])
    assert sub.ids == ds.ids[1:3] and (sub[0]["x"] == ds[1]["x"]).all()


def test_csv_layout_and_patient_column(tree, tmp_path):
    truth = load_bonescan_truth(tree)
    (tmp_path / "scans").symlink_to(tree, target_is_directory=True)  # a linked folder keeps working
    escapes = [str(tree / truth[0]["path"]), f"../{tree.name}/{truth[0]['path']}", "scans/a\x00b.dcm",
               "scans/../../etc/passwd"]
    pd.DataFrame({"path": [f"scans/{t['path']}" for t in truth] + escapes,
                  "label": [t["label"] for t in truth] + ["normal"] * len(escapes),
                  "patient": ["same"] * (len(truth) + len(escapes))}).to_csv(tmp_path / "scans.csv", index=False)
    ds = BoneScanDataset(tmp_path / "scans.csv", size=64)
    assert len(ds) == len(truth) and set(ds.groups) == {"same"}
    # absolute paths, '..' and NUL never leave the CSV's folder: listed as malformed, not read
    bad = [s for s in ds.skipped if s.error == "MalformedPathError"]
    assert len(bad) == len(escapes) == len(ds.skipped)
    assert all("scans.csv line" in s.path for s in bad)
    assert {"absolute" in s.reason or "'..'" in s.reason or "NUL" in s.reason for s in bad} == {True}
    (tmp_path / "bad.csv").write_text("path,label\nx.dcm,fracture\n")
    with pytest.raises(DatasetError, match="fracture"):
        BoneScanDataset(tmp_path / "bad.csv")


def test_bad_files_are_skipped_not_fatal(tree, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tree, root)
    (root / "normal" / "broken.dcm").write_bytes(b"garbage")
    ds = BoneScanDataset(root, size=64)
    assert len(ds) == len(load_bonescan_truth(tree))
    assert [s.error for s in ds.skipped] == ["UnreadableDicomError"]
    assert ds.skipped[0].path.endswith("broken.dcm")


def test_unmarked_file_makes_a_mixed_tree(tree, tmp_path):
    import shutil

    import pydicom

    root = tmp_path / "mixed"
    shutil.copytree(tree, root)
    f = next((root / "normal").glob("*.dcm"))
    ds = pydicom.dcmread(f)
    ds.Manufacturer = "ACME Gamma"
    ds.save_as(f)
    with pytest.raises(MixedDataError):
        BoneScanDataset(root, size=64).synthetic


def test_single_view_files_of_one_study_are_paired(tmp_path):
    rng = np.random.default_rng(0)
    counts = np.ones((2, 64, 16), np.uint16) * 5
    (tmp_path / "arthritis").mkdir()
    for k, view in enumerate(("anterior", "posterior")):
        write_nm(tmp_path / "arthritis" / f"p_{view}.dcm", counts[k:k + 1], patient_id="P",
                 study_uid="9.9", seed=0, study_index=0, views=(view,))
    ds = BoneScanDataset(tmp_path, size=64)
    assert len(ds) == 1 and ds.metadata.at[0, "views"] == ("anterior", "posterior")
    assert draw_patient(rng, "metastasis").lesions


def test_max_scans_keeps_whole_patients(tree):
    ds = BoneScanDataset(tree, size=64, max_scans=5, seed=3)
    assert len(ds) <= 5
    counts = pd.Series(ds.groups).value_counts()
    full = pd.Series(BoneScanDataset(tree, size=64).groups).value_counts()
    assert all(counts[p] == full[p] for p in counts.index)


def _walk_in_thread(root, size=64):
    """Build the dataset in a daemon thread: a walk that recursed forever would hang the test
    run instead of failing it; here it fails after 60 s."""
    import threading

    out: dict = {}

    def run():
        try:
            out["ds"] = BoneScanDataset(root, size=size)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
            out["err"] = err

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the folder walk did not end (a link loop followed forever?)"
    if "err" in out:
        raise out["err"]
    return out["ds"]


def test_folder_walk_survives_a_link_loop_and_lists_duplicates(tree, tmp_path):
    import shutil

    root = tmp_path / "loop"
    shutil.copytree(tree, root)
    # a folder linking to its parent, to its own class folder, to the root, to another class
    (root / "normal" / "sub").mkdir()
    (root / "normal" / "sub" / "up").symlink_to(root / "normal", target_is_directory=True)
    (root / "metastasis" / "self").symlink_to(root / "metastasis", target_is_directory=True)
    (root / "arthritis" / "top").symlink_to(root, target_is_directory=True)
    (root / "thyroid_carcinoma" / "side").symlink_to(root / "normal", target_is_directory=True)
    # one file linked into another class folder: used once, under its own (link-free) path
    target = sorted((root / "metastasis").glob("*.dcm"))[0]
    (root / "normal" / "sub" / "copy.dcm").symlink_to(target)
    ds = _walk_in_thread(root)
    plain = BoneScanDataset(tree, size=64)
    assert sorted(ds.ids) == sorted(plain.ids) and len(ds) == len(plain)
    assert (ds.labels.sum(0) == plain.labels.sum(0)).all()  # no class relabelled by a link
    assert [(s.error, s.path) for s in ds.skipped] == [
        ("DuplicateFileError", str(root / "normal" / "sub" / "copy.dcm"))]
    assert str(target) in ds.skipped[0].reason


def test_folder_walk_follows_a_linked_class_folder_and_lists_broken_links(tree, tmp_path):
    import shutil

    root = tmp_path / "linked"
    shutil.copytree(tree, root)
    elsewhere = tmp_path / "disk2"
    shutil.move(str(root / "arthritis"), str(elsewhere))
    (root / "arthritis").symlink_to(elsewhere, target_is_directory=True)  # a class on another disk
    (root / "normal" / "gone.dcm").symlink_to(tmp_path / "missing.dcm")
    ds = _walk_in_thread(root)
    assert len(ds) == len(load_bonescan_truth(tree))
    assert [s.error for s in ds.skipped] == ["NotAFileError"]
    assert ds.skipped[0].path.endswith("gone.dcm")
