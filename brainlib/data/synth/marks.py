"""The mark every phantom file carries, so synthetic data stay known as synthetic.

A phantom tree passed as ``--data-root`` must still be reported as a phantom run (DESIGN.md,
"Phantoms are a measuring instrument"). The writers therefore mark what they write and the
loaders read the mark back; this module is the single place that defines it.

DICOM layouts (RSNA, CQ500, every file):

==========================  ====================================================================
attribute                   value
==========================  ====================================================================
``Manufacturer`` (LO)       ``"brainlib phantom"`` (:data:`PHANTOM_MANUFACTURER`): *the* mark
``ManufacturerModelName``   generator name, e.g. ``"brainlib.data.synth.head_ct"``
``SoftwareVersions`` (LO)   two values: ``"brainlib <package version>"``, ``"<generator> <version>"``
``DeviceSerialNumber``      the dataset seed (decimal), so the tree can be regenerated
``ImageComments`` (LT)      one readable sentence: synthetic, generator, version, dataset seed,
                            study index and study seed, "not patient data"
==========================  ====================================================================

Only ``Manufacturer`` decides (:func:`is_phantom_header`); the other attributes are provenance.
The header scan (:func:`brainlib.io.scan_folder`) records ``Manufacturer`` in its index column
``manufacturer`` and :attr:`brainlib.data.BaseDataset.synthetic` combines the per-file marks.

PNG/CSV layouts (BUSI, DeepLesion, ...): one ``SYNTHETIC.json`` at the dataset root
(:func:`write_synthetic_json`, :func:`read_synthetic_json`) holding ``synthetic: true``, the
mark, generator, version, seed and any further details.

This module is a leaf (standard library only) so loaders can import it cheaply.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from brainlib import __version__ as BRAINLIB_VERSION
from brainlib._atomic import atomic_write

#: ``Manufacturer`` of every phantom DICOM file (and the ``mark`` of SYNTHETIC.json).
PHANTOM_MANUFACTURER = "brainlib phantom"
#: Version of the marking scheme; part of the phantom cache key (trees written before the
#: mark existed are regenerated, not reused).
MARK_VERSION = "1"
#: File name of the mark of PNG/CSV layouts, at the dataset root.
SYNTHETIC_JSON = "SYNTHETIC.json"
#: Generator name of the head-CT phantoms (RSNA and CQ500 layouts).
HEAD_CT_GENERATOR = "brainlib.data.synth.head_ct"


def is_phantom_manufacturer(value: Any) -> bool:
    """True if a ``Manufacturer`` value is the phantom mark (padding and case ignored)."""
    if value is None:
        return False
    return str(value).strip(" \x00").casefold() == PHANTOM_MANUFACTURER.casefold()


def is_phantom_header(ds: Any) -> bool:
    """True if a pydicom Dataset (header suffices) carries the phantom mark."""
    return is_phantom_manufacturer(ds.get("Manufacturer", None))


def phantom_dicom_attributes(generator: str, version: str, seed: int, *, layout: str = "",
                             study_index: int | None = None, study_seed: int | None = None) -> dict[str, Any]:
    """DICOM attributes marking a phantom file (keyword -> value), see the module docstring."""
    where = f", layout {layout}" if layout else ""
    study = ""
    if study_index is not None:
        study += f", study {int(study_index)}"
    if study_seed is not None:
        study += f", study seed {int(study_seed)}"
    short = generator.rsplit(".", 1)[-1]
    return {
        "Manufacturer": PHANTOM_MANUFACTURER,
        "ManufacturerModelName": generator[:64],
        "SoftwareVersions": [f"brainlib {BRAINLIB_VERSION}"[:64], f"{short} {version}"[:64]],
        "DeviceSerialNumber": str(int(seed)),
        "ImageComments": (f"Synthetic phantom written by {generator} version {version} (brainlib "
                          f"{BRAINLIB_VERSION}{where}, dataset seed {int(seed)}{study}); not patient data."),
    }


def phantom_provenance(ds: Any) -> dict[str, Any] | None:
    """Generator, versions and seed read back from a marked header; None if unmarked."""
    if not is_phantom_header(ds):
        return None
    versions = ds.get("SoftwareVersions", None)
    if versions is not None and isinstance(versions, str):
        versions = [versions]
    seed_text = str(ds.get("DeviceSerialNumber", "") or "").strip()
    return {
        "generator": str(ds.get("ManufacturerModelName", "") or ""),
        "software_versions": [str(v) for v in (versions or [])],
        "seed": int(seed_text) if seed_text.lstrip("-").isdigit() else None,
        "comment": str(ds.get("ImageComments", "") or ""),
    }


def write_synthetic_json(root: str | os.PathLike[str], generator: str, version: str, seed: int,
                         **details: Any) -> Path:
    """Write ``<root>/SYNTHETIC.json`` (atomically) marking a PNG/CSV phantom tree; return its path.

    ``details`` (JSON-serialisable: layout, n_images, size, difficulty, ...) are stored beside
    the fixed keys ``synthetic``, ``mark``, ``generator``, ``version``, ``brainlib_version``
    and ``seed``, which they may not override.
    """
    fixed = {"synthetic": True, "mark": PHANTOM_MANUFACTURER, "mark_version": MARK_VERSION,
             "generator": str(generator), "version": str(version),
             "brainlib_version": BRAINLIB_VERSION, "seed": int(seed)}
    clash = sorted(set(fixed) & set(details))
    if clash:
        raise ValueError(f"details may not override {clash}")
    path = Path(root) / SYNTHETIC_JSON
    atomic_write(path, json.dumps({**fixed, **details}, indent=2, sort_keys=False) + "\n", fsync=False)
    return path


def read_synthetic_json(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The content of ``<root>/SYNTHETIC.json``, or None when the tree has no such file.

    Raises:
        ValueError: the file exists but is not a JSON object with ``"synthetic": true`` and the
            phantom ``mark`` (a damaged or foreign mark is never read as "real").
    """
    path = Path(root) / SYNTHETIC_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable synthetic-data mark ({err})") from err
    if not isinstance(data, Mapping) or data.get("synthetic") is not True \
            or not is_phantom_manufacturer(data.get("mark")):
        raise ValueError(f"{path}: not a brainlib synthetic-data mark (expected a JSON object with "
                         f"\"synthetic\": true and \"mark\": {PHANTOM_MANUFACTURER!r})")
    return dict(data)
