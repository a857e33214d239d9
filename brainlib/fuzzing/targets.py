"""The readers under fuzzing, their seed files and the typed error family each may raise.

A target is one reader with its contract: given any bytes at ``path`` it returns a valid
result (checked by ``valid``) or raises an exception of ``family`` whose message names the
file. Seeds are real files: pydicom's own CT and NM test files plus brainlib's phantom
writers (the same code that writes the phantom datasets), and small CSV / PNG / YAML files in
each dataset's published format.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainlib.fuzzing.mutate import Seed, dicom_length_fields, png_chunks

__all__ = ["Target", "targets"]


@dataclass
class Target:
    """One reader under fuzzing."""

    name: str
    suffix: str
    seeds: list[Seed]
    read: Callable[[Path], Any]
    family: tuple[type[BaseException], ...]
    valid: Callable[[Any], bool] = field(default=lambda result: True)


def _dicom_seed(name: str, data: bytes) -> Seed:
    return Seed(name, data, "dicom", lengths=dicom_length_fields(data))


def _png_seed(name: str, data: bytes) -> Seed:
    lengths, dims = png_chunks(data)
    return Seed(name, data, "png", lengths=lengths, dims=dims)


def _ct_seeds(work: Path) -> list[Seed]:
    from pydicom.data import get_testdata_file

    from brainlib.io.testing import write_ct_slice

    seeds = [_dicom_seed(n, Path(get_testdata_file(n)).read_bytes())
             for n in ("CT_small.dcm", "693_J2KI.dcm")]
    hu = np.random.default_rng(0).integers(-1024, 2000, (64, 64)).astype(np.float32)
    for style, compress in (("int16", None), ("uint16", None), ("rsna12", None),
                            ("int16", "rle"), ("int16", "jpeg2000")):
        p = write_ct_slice(work / f"ct_{style}_{compress}.dcm", hu, style=style, compress=compress,
                           windows=((40.0, 80.0), (600.0, 2800.0)))
        seeds.append(_dicom_seed(p.name, p.read_bytes()))
    return seeds


def _nm_seeds(work: Path) -> list[Seed]:
    from pydicom.data import get_testdata_file

    from brainlib.data.synth.bone_scan import write_nm

    seeds = [_dicom_seed(n, Path(get_testdata_file(n)).read_bytes())
             for n in ("JPEG2000.dcm", "JPGExtended.dcm")]
    counts = np.random.default_rng(1).integers(0, 400, (2, 32, 16)).astype(np.uint16)
    p = write_nm(work / "nm_phantom.dcm", counts, patient_id="P1", study_uid="1.2.3.4", seed=0,
                 study_index=0)
    seeds.append(_dicom_seed(p.name, p.read_bytes()))
    return seeds


def _png_bytes(arr: np.ndarray, mode: str | None = None) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _text(name: str, text: str) -> Seed:
    return Seed(name, text.encode("utf-8"), "text")


def _csv_seeds(work: Path) -> dict[str, list[Seed]]:
    from brainlib.data.classes import CQ500_HEADER, RSNA_CLASSES
    from brainlib.data.synth.body_ct import write_deeplesion

    rsna = "ID,Label\n" + "".join(f"ID_{h}_{c},{int(c in ('any', 'subdural') and h == '0a1b')}\n"
                                  for h in ("0a1b", "ff02", "33c9") for c in RSNA_CLASSES)
    reads = ",".join(CQ500_HEADER) + "\n" + "".join(
        f"CQ500-CT-{n},B1," + ",".join(str((n + k) % 2) for k in range(len(CQ500_HEADER) - 2)) + "\n"
        for n in (0, 7, 12))
    dl_root = write_deeplesion(work / "deeplesion", n_patients=2, seed=0, size=64)
    dl_lines = (dl_root / "DL_info.csv").read_text().splitlines()[:5]
    scans = "path,label,patient\nnormal/a.dcm,normal,P1\nmetastasis/b.dcm,metastasis,P2\n"
    boxes = "image_id,class,x0,y0,x1,y1\nID_0a1b,subdural,3,4,20,30\nID_ff02,epidural,1,1,5,9\n"
    return {"rsna": [_text("stage_2_train.csv", rsna)], "cq500": [_text("reads.csv", reads)],
            "deeplesion": [_text("DL_info.csv", "\n".join(dl_lines) + "\n")],
            "bonescan": [_text("scans.csv", scans)], "boxes": [_text("boxes.csv", boxes)]}


def _deeplesion_dataset(images: Path) -> Callable[[Path], Any]:
    """Build a DeepLesionDataset from a mutated ``DL_info.csv`` beside the seed images and
    load its first items: malformed rows and unusable PNGs must land in ``skipped``."""
    from brainlib.data.deeplesion import DeepLesionDataset

    def read(path: Path) -> Any:
        link = path.parent / "Images_png"
        if not link.exists():
            link.symlink_to(images, target_is_directory=True)
        ds = DeepLesionDataset(path.parent, size=16)
        return ds, [ds[i] for i in range(min(len(ds), 2))]
    return read


def _claims_seeds() -> list[Seed]:
    from brainlib.claims.schema import CLAIMS_DIR

    return [_text(n, (CLAIMS_DIR / n).read_text()) for n in ("lin2021.yaml", "pandiyaraju2024.yaml")]


def _is_frame(x: Any) -> bool:
    import pandas as pd

    return isinstance(x, pd.DataFrame)


def _finite(a: Any, ndim: int) -> bool:
    return isinstance(a, np.ndarray) and a.ndim == ndim and a.size > 0 and bool(np.isfinite(a).all())


def targets(work: Path) -> list[Target]:
    """Every fuzzed reader with seeds written into ``work``."""
    from brainlib.claims.schema import ClaimsError, load_paper
    from brainlib.data.base import DatasetError
    from brainlib.data.busi import BUSIImageError, open_png
    from brainlib.data.bonescan import read_scan_csv
    from brainlib.data.classes import BONESCAN_CLASSES
    from brainlib.data.cq500 import read_reads_csv
    from brainlib.data.deeplesion import DeepLesionError, index_key_slices, open_hu, read_dl_info
    from brainlib.data.rsna import read_rsna_csv
    from brainlib.io import DicomError, index_file, read_hu
    from brainlib.io.nm import read_nm
    from brainlib.localize import load_box_csv

    work.mkdir(parents=True, exist_ok=True)
    csvs = _csv_seeds(work)
    rng = np.random.default_rng(2)
    grey16 = rng.integers(31000, 34500, (40, 48)).astype(np.uint16)
    busi_rgb = rng.integers(0, 255, (40, 48, 3)).astype(np.uint8)
    mask = (rng.random((40, 48)) > 0.7).astype(np.uint8) * 255
    return [
        Target("dicom_ct_read_hu", ".dcm", _ct_seeds(work), read_hu, (DicomError,),
               lambda a: _finite(a, 2) and a.dtype == np.float32),
        Target("dicom_ct_index", ".dcm", _ct_seeds(work), index_file, (DicomError,),
               lambda r: isinstance(r, dict) and r["rows"] > 0),
        Target("dicom_nm_read", ".dcm", _nm_seeds(work), read_nm, (DicomError,),
               lambda s: _finite(s.counts, 3) and len(s.views) == s.counts.shape[0]),
        Target("rsna_csv", ".csv", csvs["rsna"], lambda p: read_rsna_csv(p, []), (DatasetError,), _is_frame),
        Target("cq500_csv", ".csv", csvs["cq500"], lambda p: read_reads_csv(p, []), (DatasetError,), _is_frame),
        Target("deeplesion_csv", ".csv", csvs["deeplesion"],
               lambda p: index_key_slices(p.parent, read_dl_info(p), p)[0], (DatasetError,), _is_frame),
        Target("deeplesion_dataset", "/DL_info.csv", csvs["deeplesion"],
               _deeplesion_dataset(work / "deeplesion" / "Images_png"), (DatasetError,),
               lambda r: all(i["x"].shape == (1, 16, 16) for i in r[1])),
        Target("bonescan_csv", ".csv", csvs["bonescan"], lambda p: read_scan_csv(p, BONESCAN_CLASSES, []),
               (DatasetError,), _is_frame),
        Target("box_csv", ".csv", csvs["boxes"], load_box_csv, (DatasetError,), _is_frame),
        Target("deeplesion_png", ".png", [_png_seed("dl16.png", _png_bytes(grey16))], open_hu,
               (DeepLesionError,), lambda a: _finite(a, 2)),
        Target("busi_png", ".png", [_png_seed("busi_rgb.png", _png_bytes(busi_rgb)),
                                    _png_seed("busi_mask.png", _png_bytes(mask))], open_png,
               (BUSIImageError,), lambda a: isinstance(a, np.ndarray) and a.ndim == 2 and a.dtype == np.uint8),
        Target("claims_yaml", ".yaml", _claims_seeds(), load_paper, (ClaimsError,),
               lambda c: len(c.claims) > 0),
    ]
