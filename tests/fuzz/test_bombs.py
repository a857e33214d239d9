"""Resource bombs are refused before allocation, with a typed error naming the file.

Each test measures what the refusal cost (tracemalloc peak, CPU seconds), so a regression
that starts allocating for the bomb fails here, not on a user's machine.
"""
from __future__ import annotations

import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian

from brainlib.claims.schema import ClaimsError, load_paper
from brainlib.data.bonescan import read_scan_csv
from brainlib.data.busi import ImageTooLargeError as BusiTooLarge
from brainlib.data.busi import open_png
from brainlib.data.classes import BONESCAN_CLASSES, CQ500_HEADER
from brainlib.data.cq500 import read_reads_csv
from brainlib.data.csvfile import CsvLimitError
from brainlib.data.deeplesion import ImageTooLargeError as DlTooLarge
from brainlib.data.deeplesion import open_hu, read_dl_info
from brainlib.data.rsna import read_rsna_csv
from brainlib.io import DicomError, ImplausibleImageError, index_file, read_hu
from brainlib.io.nm import ImplausibleNMError, read_nm
from brainlib.io.testing import write_ct_slice
from brainlib.localize import load_box_csv

SMALL = 32 * 2**20  # traced bytes any refusal may cost


def refused(fn, path, error):
    """Call ``fn(path)``: it must raise ``error`` naming ``path``; return (peak bytes, CPU s)."""
    tracemalloc.start()
    t0 = time.process_time()
    try:
        with pytest.raises(error) as info:
            fn(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    return peak, time.process_time() - t0


def _ct(tmp_path: Path, **attrs) -> Path:
    path = write_ct_slice(tmp_path / "ct.dcm", np.zeros((16, 16), np.float32))
    ds = pydicom.dcmread(path)
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.save_as(path)
    return path


@pytest.mark.parametrize("attrs, error", [
    (dict(Rows=65535, Columns=65535), ImplausibleImageError),
    (dict(Rows=4096, Columns=4096, NumberOfFrames="50"), ImplausibleImageError),
    (dict(NumberOfFrames="100000"), DicomError),  # 100 MB: under the limit, refused as multi-frame
])
def test_ct_header_claiming_enormous_size(tmp_path, attrs, error):
    path = _ct(tmp_path, **attrs)
    for reader in (read_hu, index_file):
        peak, cpu = refused(reader, path, error)
        assert peak < SMALL and cpu < 2


def test_nm_header_claiming_enormous_frames(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("JPEG2000.dcm"))
    ds.NumberOfFrames = 100000
    ds.save_as(tmp_path / "nm.dcm")
    peak, _ = refused(read_nm, tmp_path / "nm.dcm", ImplausibleNMError)
    assert peak < SMALL


@pytest.mark.parametrize("name, reader", [("693_J2KI.dcm", read_hu), ("JPEG2000.dcm", read_nm),
                                          ("JPGExtended.dcm", read_nm)])
def test_codestream_larger_than_header_refused_before_decoding(tmp_path, name, reader):
    """A 60000 x 60000 codestream in a normal header: the decoder would allocate ~14 GB
    (measured before the fix: 20000 x 20000 took 2.9 GB and 9 s, 60000 was OOM-killed)."""
    data = bytearray(Path(get_testdata_file(name)).read_bytes())
    i = data.find(b"\xff\x4f\xff\x51")
    if i >= 0:  # JPEG 2000 SIZ: Xsiz, Ysiz
        data[i + 8:i + 16] = struct.pack(">II", 60000, 60000)
    else:  # JPEG SOF1 (extended): Y, X
        i = data.find(b"\xff\xc1")
        data[i + 5:i + 9] = struct.pack(">HH", 60000, 60000)
    (tmp_path / "bomb.dcm").write_bytes(bytes(data))
    peak, cpu = refused(reader, tmp_path / "bomb.dcm", ImplausibleImageError)
    assert peak < SMALL and cpu < 2


@pytest.mark.parametrize("tag", [b"\xe0\x7f\x10\x00OW", b"\x08\x00\x60\x00CS"])
def test_damaged_length_field_allocates_nothing_big(tmp_path, tag):
    """A length of 0x7FFFFFF0 / 0xFFFF: pydicom used to call read(2 GiB), allocated up front
    (2.1 GB traced). Now the read stops at the file's end: a result or a typed error, cheaply."""
    data = bytearray(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    i = data.find(tag)
    if tag.endswith(b"OW"):
        data[i + 8:i + 12] = struct.pack("<I", 0x7FFFFFF0)
    else:
        data[i + 6:i + 8] = struct.pack("<H", 0xFFFF)
    (tmp_path / "len.dcm").write_bytes(bytes(data))
    tracemalloc.start()
    try:
        try:
            assert read_hu(tmp_path / "len.dcm").shape == (128, 128)
        except DicomError as err:
            assert str(tmp_path / "len.dcm") in str(err)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < SMALL


def test_deflated_bomb_refused_and_normal_deflated_read(tmp_path, monkeypatch):
    path = write_ct_slice(tmp_path / "d.dcm", np.zeros((1024, 1024), np.float32))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "deflated.dcm", enforce_file_format=True)
    assert (tmp_path / "deflated.dcm").stat().st_size < 100_000  # 2 MB of pixels inflate from ~10 kB
    assert read_hu(tmp_path / "deflated.dcm").shape == (1024, 1024)
    monkeypatch.setattr("brainlib.io.limits.MAX_INFLATED_BYTES", 2**20)
    refused(read_hu, tmp_path / "deflated.dcm", ImplausibleImageError)


def _png_bomb(path: Path, side: int) -> Path:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("reader, error", [(open_hu, DlTooLarge), (open_png, BusiTooLarge)])
def test_png_decompression_bomb(tmp_path, reader, error):
    path = _png_bomb(tmp_path / "bomb.png", 100_000)  # 10^10 pixels claimed in 200 bytes
    peak, cpu = refused(reader, path, error)
    assert peak < SMALL and cpu < 2


CSV_READERS = [
    ("stage_2_train.csv", "ID,Label", lambda p: read_rsna_csv(p, [])),
    ("reads.csv", ",".join(CQ500_HEADER), lambda p: read_reads_csv(p, [])),
    ("DL_info.csv", "File_name,Patient_index", read_dl_info),
    ("scans.csv", "path,label", lambda p: read_scan_csv(p, BONESCAN_CLASSES, [])),
    ("boxes.csv", "image_id,class,x0,y0,x1,y1", load_box_csv),
]


@pytest.mark.parametrize("name, header, reader", CSV_READERS, ids=[c[0] for c in CSV_READERS])
@pytest.mark.parametrize("bomb", ["columns", "field", "many_short_columns"])
def test_csv_bombs_refused_before_pandas(tmp_path, name, header, reader, bomb):
    path = tmp_path / name
    if bomb == "columns":  # a header of two million columns
        path.write_text(header + "," * 2_000_000 + "\nx\n")
    elif bomb == "field":  # one absurd 8 MB field
        path.write_text(header + "\n" + "A" * 8_000_000 + ",1\n")
    else:  # 2000 short columns: under the line limit, over the column limit
        path.write_text(",".join(f"c{i}" for i in range(2000)) + "\n")
    peak, cpu = refused(reader, path, CsvLimitError)
    assert peak < SMALL and cpu < 2


def test_csv_over_the_file_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr("brainlib.data.csvfile.MAX_CSV_BYTES", 1000)
    path = tmp_path / "stage_2_train.csv"
    path.write_text("ID,Label\n" + "ID_a_any,0\n" * 200)
    with pytest.raises(CsvLimitError, match="above the limit"):
        read_rsna_csv(path, [])


@pytest.mark.parametrize("text, why", [
    ('a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
     'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n'
     'claims: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n', "aliases"),
    ("claims: " + "[" * 50_000 + "]" * 50_000 + "\n", "nest"),
    ("claims:\n- value: " + "9" * 6000 + "\n", "value"),
    ("x: 1\n" + "#" * (2**20 + 10) + "\n", "bytes"),
])
def test_claims_yaml_bombs(tmp_path, text, why):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    peak, cpu = refused(load_paper, path, ClaimsError)
    assert peak < 4 * SMALL and cpu < 5
