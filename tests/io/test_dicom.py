"""brainlib.io DICOM reading: HU, quirks, typed errors, folder scanning, series assembly."""
from __future__ import annotations

import csv
import os
import random
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, get_decoder
from pydicom.uid import JPEG2000Lossless, RLELossless

from brainlib.io import (
    INDEX_COLUMNS,
    DicomError,
    MissingPixelDataError,
    NotCTError,
    Skipped,
    UnreadableDicomError,
    UnsupportedPhotometricError,
    UnsupportedTransferSyntaxError,
    Window,
    assemble_series,
    index_file,
    needs_rsna12_fix,
    read_header,
    read_hu,
    read_window_tags,
    scan_folder,
    write_skipped,
)
from brainlib.io.testing import write_ct_slice


def hu_image(seed: int = 0, n: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hu = rng.integers(-1024, 2000, (n, n)).astype(np.float32)
    hu[0, :4] = [-1024, -1000, 0, 3000]
    return hu


def disable_decoder(monkeypatch, uid) -> None:
    """Make pydicom believe no plugin can decode `uid` (as on an install without pylibjpeg)."""
    decoder = get_decoder(uid)
    monkeypatch.setattr(decoder, "_available", {})


# ------------------------------------------------------------------ HU on real CT files
def test_read_hu_on_pydicom_ct_small_matches_modality_lut():
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    hu = read_hu(path)
    assert hu.dtype == np.float32 and hu.shape == (128, 128)
    np.testing.assert_array_equal(hu, apply_modality_lut(ds.pixel_array, ds).astype(np.float32))
    assert -1100 < hu.min() < hu.max() < 3000


def test_read_hu_on_compressed_real_ct_jpeg2000():
    path = get_testdata_file("693_J2KI.dcm")  # CT, JPEG 2000, decoded by a pixel plugin
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID.is_compressed and ds.Modality == "CT"
    hu = read_hu(path)
    assert hu.shape == (512, 512) and hu.dtype == np.float32
    np.testing.assert_array_equal(hu, apply_modality_lut(ds.pixel_array, ds).astype(np.float32))


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"])
def test_compressed_real_files_equal_their_uncompressed_original(name):
    ref = read_hu(get_testdata_file("MR_small.dcm"), require_ct=False)
    np.testing.assert_array_equal(read_hu(get_testdata_file(name), require_ct=False), ref)


@pytest.mark.parametrize("compress", ["rle", "jpeg2000"])
@pytest.mark.parametrize("style", ["int16", "uint16"])
def test_written_ct_round_trips_exact_hu(tmp_path, compress, style):
    hu = hu_image()
    path = write_ct_slice(tmp_path / "a.dcm", hu, style=style, compress=compress)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == {"rle": RLELossless, "jpeg2000": JPEG2000Lossless}[compress]
    np.testing.assert_array_equal(read_hu(path), hu)


def test_uint16_with_negative_intercept_does_not_wrap(tmp_path):
    hu = hu_image()
    path = write_ct_slice(tmp_path / "u.dcm", hu, style="uint16")
    ds = pydicom.dcmread(path)
    assert ds.PixelRepresentation == 0 and ds.pixel_array.dtype == np.uint16
    wrapped = ds.pixel_array + np.uint16(np.int64(ds.RescaleIntercept) % 65536)  # the bug
    assert (wrapped.astype(np.float64) != hu).any()
    out = read_hu(path)
    np.testing.assert_array_equal(out, hu)
    assert out.min() == -1024


def test_fast_native_path_equals_pixel_array(tmp_path):
    for style in ("int16", "uint16", "rsna12"):
        path = write_ct_slice(tmp_path / f"{style}.dcm", hu_image(1), style=style)
        ds = pydicom.dcmread(path)
        from brainlib.io.dicom import _pixels

        np.testing.assert_array_equal(_pixels(ds, path), ds.pixel_array)


# ------------------------------------------------------------------ RSNA 12-bit fix
def test_rsna_12bit_fix(tmp_path):
    hu = np.array([[-1000, -1, 0, 40], [80, 1000, 2047, 3095]], dtype=np.float32)
    path = write_ct_slice(tmp_path / "rsna.dcm", hu, style="rsna12", windows=None)
    ds = pydicom.dcmread(path)
    assert (ds.BitsStored, ds.PixelRepresentation, float(ds.RescaleIntercept)) == (12, 0, 0.0)
    assert needs_rsna12_fix(ds)
    # stored as signed values mod 4096: air -1000 -> 3096, -1 -> 4095
    np.testing.assert_array_equal(ds.pixel_array, [[3096, 4095, 0, 40], [80, 1000, 2047, 3095]])
    naive = apply_modality_lut(ds.pixel_array, ds)
    assert naive[0, 0] == 3096  # what a reader without the fix would call air
    np.testing.assert_array_equal(read_hu(path), hu)


def test_rsna_fix_not_applied_to_ordinary_12bit(tmp_path):
    hu = np.array([[-1024.0, 0.0], [40.0, 1000.0]])
    path = write_ct_slice(tmp_path / "u12.dcm", hu, style="uint16", extra={"BitsStored": 12, "HighBit": 11})
    assert not needs_rsna12_fix(pydicom.dcmread(path))  # intercept -1024 <= -100
    np.testing.assert_array_equal(read_hu(path), hu)


# ------------------------------------------------------------------ headers and windows
def test_read_header_stops_before_pixels_and_window_tags(tmp_path):
    path = write_ct_slice(tmp_path / "w.dcm", hu_image(), windows=[(40, 80), (600, 2800)])
    ds = read_header(path)
    assert "PixelData" not in ds and ds.Modality == "CT"
    assert list(ds.WindowCenter) == [40, 600]
    assert read_window_tags(path) == Window(40, 80)
    assert read_window_tags(write_ct_slice(tmp_path / "n.dcm", hu_image(), windows=None)) is None
    one = write_ct_slice(tmp_path / "o.dcm", hu_image(), windows=[(35, 90)])
    assert read_window_tags(pydicom.dcmread(one)) == Window(35, 90)


# ------------------------------------------------------------------ bad inputs -> typed errors
def _truncate(path: Path, n_bytes: int) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:-n_bytes])
    return path


def bad_files(root: Path, monkeypatch=None) -> dict[str, type[DicomError]]:
    """Write one file per failure kind; return name -> expected error class."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "zero.dcm").write_bytes(b"")
    (root / "text.dcm").write_text("patient,label\n1,0\n" * 20)
    _truncate(write_ct_slice(root / "truncated.dcm", hu_image()), 100)
    mr = write_ct_slice(root / "mr.dcm", hu_image(), modality="MR")
    ds = pydicom.dcmread(write_ct_slice(root / "nopix.dcm", hu_image()))
    del ds.PixelData
    ds.save_as(root / "nopix.dcm")
    rgb = pydicom.dcmread(get_testdata_file("SC_rgb_rle.dcm"))
    rgb.Modality = "CT"
    rgb.save_as(root / "rgb.dcm")
    write_ct_slice(root / "j2k.dcm", hu_image(), compress="jpeg2000")
    assert mr.exists()
    return {
        "zero.dcm": UnreadableDicomError,
        "text.dcm": UnreadableDicomError,
        "truncated.dcm": MissingPixelDataError,
        "mr.dcm": NotCTError,
        "nopix.dcm": MissingPixelDataError,
        "rgb.dcm": UnsupportedPhotometricError,
        "j2k.dcm": UnsupportedTransferSyntaxError,  # only with the decoders disabled
    }


def test_bad_inputs_raise_typed_errors_naming_the_path(tmp_path, monkeypatch):
    expected = bad_files(tmp_path)
    disable_decoder(monkeypatch, JPEG2000Lossless)
    for name, err in expected.items():
        path = tmp_path / name
        with pytest.raises(err) as info:
            read_hu(path)
        assert str(info.value).startswith(f"{path}: ") and info.value.reason, name
        assert info.value.path == str(path)
        assert isinstance(info.value, DicomError)
        with pytest.raises(err):
            index_file(path)  # the header-only check finds the same problem


def test_reasons_are_specific(tmp_path, monkeypatch):
    bad_files(tmp_path)
    disable_decoder(monkeypatch, JPEG2000Lossless)
    reasons = {}
    for name in ("zero.dcm", "text.dcm", "truncated.dcm", "mr.dcm", "nopix.dcm", "j2k.dcm"):
        with pytest.raises(DicomError) as info:
            read_hu(tmp_path / name)
        reasons[name] = info.value.reason
    assert "empty" in reasons["zero.dcm"]
    assert "not a DICOM" in reasons["text.dcm"]
    assert "truncated" in reasons["truncated.dcm"]
    assert "'MR'" in reasons["mr.dcm"]
    assert "no Pixel Data" in reasons["nopix.dcm"]
    assert "JPEG 2000" in reasons["j2k.dcm"] and "decoder" in reasons["j2k.dcm"]


def test_pydicom_truncated_real_file(tmp_path):
    src = get_testdata_file("MR_truncated.dcm")
    with pytest.raises(MissingPixelDataError, match="truncated"):
        read_hu(src, require_ct=False)
    with pytest.raises(MissingPixelDataError, match="truncated"):
        index_file(src, require_ct=False)


def test_compressed_decodes_again_when_decoders_present(tmp_path):
    path = write_ct_slice(tmp_path / "j.dcm", hu_image(), compress="jpeg2000")
    np.testing.assert_array_equal(read_hu(path), hu_image())


def test_file_without_preamble_is_read(tmp_path):
    path = write_ct_slice(tmp_path / "p.dcm", hu_image())
    ds = pydicom.dcmread(path)
    bare = tmp_path / "bare.dcm"
    ds.preamble = None
    del ds.file_meta  # old-style file: no preamble, no 'DICM', no file meta group
    ds.save_as(bare, enforce_file_format=False, implicit_vr=True, little_endian=True)
    raw = bare.read_bytes()
    assert raw[128:132] != b"DICM"
    np.testing.assert_array_equal(read_hu(bare), hu_image())


# ------------------------------------------------------------------ folders
def test_folder_with_broken_files_gives_exact_skipped_list(tmp_path, monkeypatch):
    root = tmp_path / "study"
    expected = bad_files(root / "bad")
    disable_decoder(monkeypatch, JPEG2000Lossless)
    good = [write_ct_slice(root / "good" / f"{i}.dcm", hu_image(i), instance_number=i + 1) for i in range(3)]
    index, skipped = scan_folder(root)
    assert sorted(index["path"]) == sorted(str(p) for p in good)
    assert [(Path(s.path).name, s.error) for s in skipped] == sorted(
        (name, err.__name__) for name, err in expected.items()
    )
    assert all(isinstance(s, Skipped) and s.reason for s in skipped)

    out = write_skipped(skipped, tmp_path / "out" / "skipped.csv")
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["path"], r["error"], r["reason"]) for r in rows] == [(s.path, s.error, s.reason) for s in skipped]
    assert not [p for p in out.parent.iterdir() if p.name != "skipped.csv"]  # no temp left
    empty = write_skipped([], tmp_path / "out" / "none.csv")
    assert empty.read_text().strip() == "path,error,reason"


def test_scan_folder_with_workers_matches_serial(tmp_path):
    root = tmp_path / "s"
    bad_files(root / "bad")
    for i in range(4):
        write_ct_slice(root / f"{i}.dcm", hu_image(i), instance_number=i + 1)
    (idx0, sk0), (idx2, sk2) = scan_folder(root), scan_folder(root, workers=2)
    assert idx0.equals(idx2) and sk0 == sk2


def test_index_columns_from_header(tmp_path):
    path = write_ct_slice(
        tmp_path / "x.dcm", hu_image(), position=(-10.0, 5.0, 42.5), pixel_spacing=(0.45, 0.5),
        slice_thickness=2.5, series_description="CT PLAIN", windows=[(40, 80), (80, 200)],
    )
    index, skipped = scan_folder(tmp_path)
    assert skipped == []
    row = index.iloc[0]
    for col in ("path", "study_uid", "series_uid", "sop_uid", "instance_number", "position",
                "series_description", "rows", "columns", "pixel_spacing", "slice_thickness", "modality"):
        assert col in index.columns
    assert row["path"] == str(path) and row["position"] == pytest.approx(42.5)
    assert row["pixel_spacing"] == (0.45, 0.5) and row["slice_thickness"] == 2.5
    assert (row["rows"], row["columns"], row["modality"]) == (32, 32, "CT")
    assert (row["window_level"], row["window_width"]) == (40, 80)
    assert row["series_description"] == "CT PLAIN"


def test_index_records_manufacturer(tmp_path):
    # the loaders recognise brainlib phantoms by this column (brainlib.data.synth.marks)
    write_ct_slice(tmp_path / "a.dcm", hu_image(), instance_number=1, extra={"Manufacturer": "brainlib phantom "})
    write_ct_slice(tmp_path / "b.dcm", hu_image(), instance_number=2, extra={"Manufacturer": "SIEMENS"})
    write_ct_slice(tmp_path / "c.dcm", hu_image(), instance_number=3)
    index, skipped = scan_folder(tmp_path)
    assert skipped == [] and "manufacturer" in INDEX_COLUMNS
    assert index.set_index(index["path"].map(lambda p: os.path.basename(p)))["manufacturer"].to_dict() == {
        "a.dcm": "brainlib phantom", "b.dcm": "SIEMENS", "c.dcm": ""}


def test_scan_memory_grows_with_index_not_pixels(tmp_path):
    n, size = 24, 256
    for i in range(n):
        write_ct_slice(tmp_path / f"{i}.dcm", np.zeros((size, size)), instance_number=i + 1)
    tracemalloc.start()
    index, _ = scan_folder(tmp_path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(index) == n
    assert peak < 0.1 * n * size * size * 2  # far below the pixel bytes (3 MB here)


# ------------------------------------------------------------------ series assembly
def write_series(root: Path, n: int, *, orientation=(1, 0, 0, 0, 1, 0), spacing=2.5, start=-30.0,
                 series_number=1, shuffle_seed=0, drop=(), duplicate=(), no_position=False):
    """Slices along the orientation's normal, with shuffled file names; returns names in order."""
    o = np.asarray(orientation, dtype=float)
    normal = np.cross(o[:3], o[3:])
    names = [f"IM{k:04d}.dcm" for k in random.Random(shuffle_seed).sample(range(1000, 9999), n)]
    order = []
    inst = list(range(1, n + 1))
    random.Random(shuffle_seed + 1).shuffle(inst)  # instance numbers also out of order
    for k in range(n):
        if k in drop:
            continue
        pos = tuple(np.array([3.0, -2.0, 0.0]) + (start + k * spacing) * normal)
        write_ct_slice(
            root / names[k], hu_image(k, 8), position=pos, orientation=orientation,
            instance_number=inst[k] if not no_position else k + 1, series_number=series_number,
            series_description=f"series {series_number}", slice_thickness=spacing,
        )
        if no_position:
            ds = pydicom.dcmread(root / names[k])
            del ds.ImagePositionPatient
            ds.save_as(root / names[k])
        order.append(str(root / names[k]))
        if k in duplicate:
            dup = root / f"dup{k}.dcm"
            write_ct_slice(dup, hu_image(k, 8), position=pos, orientation=orientation,
                           instance_number=100 + k, series_number=series_number, sop_uid=f"1.2.3.{k}")
            order.append(str(dup))
    return order


def test_series_ordering_with_shuffled_names_and_oblique_orientation(tmp_path):
    c, s = np.cos(0.3), np.sin(0.3)
    oblique = (1.0, 0.0, 0.0, 0.0, c, s)  # gantry tilt: normal (0, -s, c)
    expected = write_series(tmp_path / "a", 7, orientation=oblique, spacing=2.5)
    expected_b = write_series(tmp_path / "b", 5, spacing=5.0, series_number=2, shuffle_seed=3)
    index, skipped = scan_folder(tmp_path)
    assert not skipped and len(index) == 12
    series = assemble_series(index.sample(frac=1.0, random_state=0))
    by_num = {int(s.series_number): s for s in series}
    a, b = by_num[1], by_num[2]
    assert a.paths == expected and b.paths == expected_b
    assert np.all(np.diff(a.positions) > 0)
    assert a.spacing == pytest.approx((2.5, 0.5, 0.5))
    assert b.spacing[0] == pytest.approx(5.0)
    assert a.warnings == [] and b.warnings == []
    assert len(a) == 7 and a.description == "series 1"


def test_missing_and_duplicated_positions_are_warnings(tmp_path):
    write_series(tmp_path, 8, drop=(3, 4), duplicate=(6,))
    series = assemble_series(scan_folder(tmp_path)[0])
    assert len(series) == 1
    s = series[0]
    assert len(s) == 7  # 8 - 2 dropped + 1 duplicate
    assert s.spacing[0] == pytest.approx(2.5)
    text = " | ".join(s.warnings)
    assert "1 duplicated slice position" in text
    assert "about 2 missing slice" in text


def test_order_falls_back_to_instance_number(tmp_path):
    expected = write_series(tmp_path, 5, no_position=True)
    index, _ = scan_folder(tmp_path)
    assert index["position"].isna().all()
    (s,) = assemble_series(index)
    assert s.paths == expected
    assert "ordered by InstanceNumber" in s.warnings[0]
    assert s.spacing[0] == pytest.approx(2.5)  # from SliceThickness


def test_assemble_series_on_empty_index(tmp_path):
    index, skipped = scan_folder(tmp_path)
    assert index.empty and skipped == [] and assemble_series(index) == []


def test_multiframe_is_refused_with_reason(tmp_path):
    path = write_ct_slice(tmp_path / "mf.dcm", hu_image(), extra={"NumberOfFrames": 2, "Rows": 16})
    for reader in (read_hu, index_file):
        with pytest.raises(DicomError, match="multi-frame") as info:
            reader(path)
        assert str(info.value).startswith(str(path))
