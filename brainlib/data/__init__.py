"""brainlib.data: datasets in their official on-disk layouts, one base class for all.

``BaseDataset`` (labels N x C with 1/0/NaN, row-aligned ``metadata``, ``skipped``),
``RSNADataset`` (slice or series view), ``CQ500Dataset`` (reader majority, deliberate series
choice) and ``collate_sequences`` for variable-length sequence batches. ``dataset.synthetic``
says whether the files are brainlib phantoms (``MixedDataError`` for a tree mixing both).
Exports are resolved lazily so ``import brainlib.data.classes`` stays light (no torch import).
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "BaseDataset": "brainlib.data.base",
    "DatasetError": "brainlib.data.base",
    "MixedDataError": "brainlib.data.base",
    "collate_sequences": "brainlib.data.base",
    "RSNADataset": "brainlib.data.rsna",
    "read_rsna_csv": "brainlib.data.rsna",
    "CQ500Dataset": "brainlib.data.cq500",
    "BoneScanDataset": "brainlib.data.bonescan",
    "BUSIDataset": "brainlib.data.busi",
    "DeepLesionDataset": "brainlib.data.deeplesion",
    "read_reads_csv": "brainlib.data.cq500",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'brainlib.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
