"""One dataset base class for every brainlib imaging dataset.

The interface follows torchxrayvision's (``classes``, ``labels`` N x C with 1/0/NaN,
``metadata`` row-aligned) without its per-dataset copy-paste: a subclass only *indexes*
its on-disk layout into rows of ``(labels, metadata)`` where ``metadata["paths"]`` holds the
DICOM files of the row in order. Everything else is written once here: pixel access through
:mod:`brainlib.data.cache` (windowed tensors at a working size), subsetting for folds,
``__getitem__`` returning ``{"x", "y", "id"}`` (plus ``slice_labels`` for sequence views),
the skipped-file bookkeeping, the phantom mark (:attr:`BaseDataset.synthetic`: are these
brainlib phantoms, whatever folder they were read from?) and a padding collate for
variable-length sequences.
"""
from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from brainlib.data import pixels as _pixels
from brainlib.data.errors import DataFileError, DatasetError, MixedDataError  # noqa: F401 (re-exported)
from brainlib.data.index_store import load_index, save_index
from brainlib.data.synth.marks import PHANTOM_MANUFACTURER, is_phantom_manufacturer, read_synthetic_json

#: Default windows for CT datasets: brain, subdural and soft tissue (the usual RSNA stack).
DEFAULT_WINDOW_NAMES: tuple[str, ...] = ("BRAIN", "SUBDURAL", "SOFT_TISSUE")


def default_windows() -> tuple:
    """The default window stack, resolved lazily so importing brainlib.data needs no io."""
    import brainlib.io as bio

    return tuple(getattr(bio, name) for name in DEFAULT_WINDOW_NAMES)


def resolve_windows(windows: Sequence[Any] | None | str) -> Sequence[Any] | None:
    """The loaders' ``windows`` keyword: ``"default"`` -> :func:`default_windows`, else as given."""
    return default_windows() if isinstance(windows, str) and windows == "default" else windows


def sample_studies(n: int, max_studies: int, seed: int) -> np.ndarray:
    """Sorted indices of ``max_studies`` of ``n`` whole studies drawn with ``seed``: the
    loaders' ``max_studies`` + ``seed`` keywords (same seed, same studies, in input order)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:max_studies])


def phantom_paths(index: pd.DataFrame) -> frozenset[str]:
    """Paths of the rows of a header index (:func:`brainlib.io.scan_folder`) whose
    ``manufacturer`` is the phantom mark; empty if the index has no such column."""
    if "manufacturer" not in index.columns or index.empty:
        return frozenset()
    marked = index["manufacturer"].map(is_phantom_manufacturer).to_numpy(dtype=bool)
    return frozenset(str(p) for p in index["path"].to_numpy()[marked])


class BaseDataset(Dataset):
    """Labels + row-aligned metadata + pixel access, shared by every dataset.

    Subclasses index their layout and call ``super().__init__`` with the rows; they never load
    pixels themselves.

    Args:
        labels, metadata, classes, skipped: the indexed rows (see Attributes).
        sequence: items are sequences ``(Z, C, S, S)`` with ``slice_labels`` (or None).
        windows: :class:`brainlib.io.Window` tuple stacked as channels, None for HU (C = 1),
            ``"default"`` for brain/subdural/soft tissue. Ignored if ``pixel_store`` is given.
        size: working size S (None = native size, read without the cache).
        transform: applied to ``x`` (the whole sequence for sequence views).
        seq_len: sequence views only: resample each sequence to this many evenly spaced slices
            (then the default collate works); None keeps every slice (use ``collate_fn``).
        pixel_store: where pixels come from (:class:`brainlib.data.pixels.PixelStore`).
        root: the dataset's folder (kept as ``self.root``; a subclass may set it before).
        marked_files: paths (as in ``metadata["paths"]``) of the files carrying the phantom
            mark, for layouts whose files carry one (DICOM ``Manufacturer``, see
            :func:`phantom_paths`); None for layouts marked by ``SYNTHETIC.json`` at ``root``.

    Attributes:
        classes: class names, in label-column order.
        labels: ``(N, C)`` float32 array, 1 = present, 0 = absent, NaN = unknown.
        metadata: DataFrame row-aligned with ``labels``; always has ``case_id`` and ``paths``
            (tuple of files making the row, in slice order).
        skipped: :class:`brainlib.io.Skipped` entries for everything that could not be used.
        sequence: True if an item's ``x`` is a ``(Z, C, S, S)`` sequence, else ``(C, S, S)``.
        root: the dataset's folder (None if built from rows without one).
        synthetic: whether the files are brainlib phantoms (property, see there).
    """

    classes: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        labels: np.ndarray,
        metadata: pd.DataFrame,
        classes: Sequence[str] | None = None,
        skipped: Iterable[Any] = (),
        sequence: bool = False,
        windows: Sequence[Any] | None | str = "default",
        size: int | None = 256,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        seq_len: int | None = None,
        pixel_store: _pixels.PixelStore | None = None,
        root: str | Path | None = None,
        marked_files: Iterable[str] | None = None,
    ) -> None:
        if classes is not None:
            self.classes = tuple(classes)
        labels = np.array(labels, dtype=np.float32)  # own, writable copy
        if labels.ndim != 2 or labels.shape[1] != len(self.classes):
            raise ValueError(f"labels shape {labels.shape} does not match {len(self.classes)} classes")
        if len(metadata) != len(labels):
            raise ValueError(f"metadata has {len(metadata)} rows, labels {len(labels)}")
        for col in ("case_id", "paths"):
            if col not in metadata.columns:
                raise ValueError(f"metadata lacks the column {col!r}")
        self.labels = labels
        self.metadata = metadata.reset_index(drop=True)
        self.skipped = list(skipped)
        self.sequence = bool(sequence)
        self.transform = transform
        self.seq_len = seq_len
        if pixel_store is None:
            pixel_store = _pixels.PixelStore(resolve_windows(windows), size)
        self.pixels = pixel_store
        if root is not None or not hasattr(self, "root"):
            self.root: Path | None = None if root is None else as_path(root)
        self.marked_files: frozenset[str] | None = (None if marked_files is None
                                                    else frozenset(str(p) for p in marked_files))

    # ----------------------------------------------------------------- phantom mark
    @property
    def synthetic(self) -> bool:
        """True if the data are brainlib phantoms, False if real, wherever they were read from.

        Layouts with per-file marks (DICOM ``Manufacturer`` = "brainlib phantom", recorded by
        the header scan): True when every file used by the rows (``metadata["paths"]``)
        carries the mark, False when none does. Other layouts: True when ``SYNTHETIC.json``
        marks ``root``. A dataset without rows is judged on every file its loader indexed.

        Raises:
            MixedDataError: some used files carry the mark and some do not.
            DatasetError: ``SYNTHETIC.json`` exists but is damaged.
        """
        if self.marked_files is None:
            if self.root is None:
                return False
            try:
                return read_synthetic_json(self.root) is not None
            except ValueError as err:
                raise DatasetError(str(err)) from err
        used = sorted({str(p) for paths in self.metadata["paths"] for p in paths})
        if not used:
            return bool(self.marked_files)
        marked = [p for p in used if p in self.marked_files]
        if len(marked) == len(used):
            return True
        if not marked:
            return False
        unmarked = [p for p in used if p not in self.marked_files]
        raise MixedDataError(
            f"{self.root}: mixes brainlib phantom files and real ones: {len(marked)} of "
            f"{len(used)} file(s) used carry the phantom mark (DICOM Manufacturer "
            f"{PHANTOM_MANUFACTURER!r}), {len(unmarked)} do not; e.g. marked {marked[0]}, "
            f"unmarked {unmarked[0]}. Results on such a tree are neither a phantom run nor a "
            "run on real data: point the loader at a tree that is all phantom or all real."
        )

    # ----------------------------------------------------------------- bookkeeping
    def __len__(self) -> int:
        return len(self.labels)

    @property
    def ids(self) -> list[str]:
        """Case ids in row order."""
        return [str(c) for c in self.metadata["case_id"]]

    @property
    def groups(self) -> np.ndarray:
        """Grouping key for folds (same study never split), ``metadata['group']`` or case id."""
        col = "group" if "group" in self.metadata.columns else "case_id"
        return self.metadata[col].to_numpy()

    @property
    def slice_classes(self) -> tuple[str, ...]:
        """Column names of ``slice_labels`` (the dataset's classes)."""
        return self.classes

    @property
    def collate_fn(self) -> Callable[[list[dict[str, Any]]], dict[str, Any]] | None:
        """What a DataLoader should collate with: :func:`collate_sequences` for sequence
        views (variable length, ``slice_labels`` may be None), the default otherwise."""
        return collate_sequences if self.sequence else None

    def label_frame(self) -> pd.DataFrame:
        """Labels as a DataFrame indexed by case id, one column per class."""
        return pd.DataFrame(self.labels, columns=list(self.classes),
                            index=pd.Index(self.ids, name="case_id"))

    def subset(self, indices: Sequence[int] | np.ndarray) -> BaseDataset:
        """A view of the rows ``indices`` (for folds); shares the pixel cache."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        new = copy.copy(self)
        new.labels = self.labels[idx]
        new.metadata = self.metadata.iloc[idx].reset_index(drop=True)
        self._subset_extra(new, idx)
        return new

    def filter(self, mask: np.ndarray | pd.Series | Callable[[pd.DataFrame], Any]) -> BaseDataset:
        """Rows where ``mask`` (bool array, or a function of ``metadata``) is true."""
        if callable(mask):
            mask = mask(self.metadata)
        return self.subset(np.asarray(mask, dtype=bool))

    def _subset_extra(self, new: BaseDataset, idx: np.ndarray) -> None:
        """Hook for subclasses holding more row-aligned arrays."""

    # ----------------------------------------------------------------- pixels
    def prepare_pixels(self, paths: Iterable[str], workers: int = 0) -> list[Any]:
        """Make sure ``paths`` are in the pixel cache; return Skipped for files that failed."""
        return self.pixels.prepare(list(paths), workers=workers)

    def load_x(self, index: int) -> torch.Tensor:
        """Pixels of row ``index``: ``(C, S, S)`` for slice views, ``(Z, C, S, S)`` for sequences."""
        paths = self.metadata.at[index, "paths"]
        if self.sequence:
            paths = [paths[i] for i in self._sequence_indices(len(paths))]
        x = self.pixels.load(paths)
        return x if self.sequence else x[0]

    def volume(self, index: int) -> torch.Tensor:
        """Every slice of row ``index`` as ``(Z, C, S, S)`` (ignores ``seq_len``), e.g. to sample
        fixed-length sub-sequences oneself."""
        return self.pixels.load(self.metadata.at[int(index), "paths"])

    def _sequence_indices(self, z: int) -> np.ndarray:
        """Slice indices used for a sequence: all, or ``seq_len`` evenly spaced."""
        if not self.seq_len or self.seq_len == z:
            return np.arange(z)
        return np.round(np.linspace(0, z - 1, self.seq_len)).astype(np.int64)

    def slice_labels(self, index: int) -> np.ndarray | None:
        """Per-slice labels ``(Z, C')`` of a sequence row, or None when the layout has none."""
        if "slice_labels" not in self.metadata.columns:
            return None
        value = self.metadata.at[index, "slice_labels"]
        return None if value is None else np.asarray(value, dtype=np.float32)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = int(index)
        if index < 0:
            index += len(self)
        x = self.load_x(index)
        if self.transform is not None:
            x = self.transform(x)
        item: dict[str, Any] = {
            "x": x,
            "y": torch.from_numpy(self.labels[index].copy()),
            "id": str(self.metadata.at[index, "case_id"]),
        }
        if self.sequence:
            sl = self.slice_labels(index)
            if sl is not None:
                sl = torch.from_numpy(sl[self._sequence_indices(len(sl))].copy())
            item["slice_labels"] = sl
        return item

    def __repr__(self) -> str:
        pos = np.nansum(self.labels, axis=0).astype(int)
        counts = ", ".join(f"{c}={n}" for c, n in zip(self.classes, pos))
        view = "sequence" if self.sequence else "slice"
        return (f"{type(self).__name__}(n={len(self)}, view={view}, {counts}, "
                f"skipped={len(self.skipped)})")


def collate_sequences(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate sequence items of different lengths: zero-pad to the longest.

    Returns ``x`` (B, Zmax, C, S, S), ``mask`` (B, Zmax) bool (True = real slice), ``y``,
    ``id`` (list), ``lengths`` and ``slice_labels`` (B, Zmax, C', NaN-padded) or None if
    any item has none.
    """
    lengths = torch.tensor([b["x"].shape[0] for b in batch])
    zmax = int(lengths.max())
    first = batch[0]["x"]
    x = first.new_zeros((len(batch), zmax) + tuple(first.shape[1:]))
    mask = torch.zeros(len(batch), zmax, dtype=torch.bool)
    for i, b in enumerate(batch):
        x[i, : b["x"].shape[0]] = b["x"]
        mask[i, : b["x"].shape[0]] = True
    out: dict[str, Any] = {
        "x": x, "mask": mask, "lengths": lengths,
        "y": torch.stack([b["y"] for b in batch]),
        "id": [b["id"] for b in batch],
    }
    sls = [b.get("slice_labels") for b in batch]
    if all(s is not None for s in sls):
        sl = torch.full((len(batch), zmax, sls[0].shape[1]), float("nan"))
        for i, s in enumerate(sls):
            sl[i, : s.shape[0]] = s
        out["slice_labels"] = sl
    else:
        out["slice_labels"] = None
    return out


def scan_cached(folder: str | Path, pattern: str = "**/*.dcm", workers: int = 0,
                use_cache: bool = True) -> tuple[pd.DataFrame, list[Any]]:
    """:func:`brainlib.io.scan_folder`, remembered between runs.

    Header scanning a real dataset (RSNA: 750k files) takes minutes, so the index is kept in
    ``cache_dir("index")`` keyed by the folder, the pattern and every file's name, size and
    mtime: any change on disk rescans. Written atomically, without pickle
    (:mod:`brainlib.data.index_store`: a shared cache folder must not be able to run code).
    """
    import brainlib.io as bio

    folder = Path(folder)
    if not use_cache:
        return bio.scan_folder(folder, pattern=pattern, workers=workers)
    from brainlib.paths import cache_dir

    h = hashlib.sha256(f"{folder.resolve()}\0{pattern}\0{bio.INDEX_COLUMNS}".encode())
    for p in sorted(folder.glob(pattern)):
        try:
            st = p.stat()
        except OSError:
            continue
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    target = cache_dir("index") / f"{h.hexdigest()[:32]}.npz"
    if target.is_file():
        try:
            return load_index(target)
        except ValueError:
            pass  # unreadable cache entry: rescan and overwrite
    result = bio.scan_folder(folder, pattern=pattern, workers=workers)
    save_index(target, *result)
    return result


def as_path(p: str | Path) -> Path:
    """Path with ``~`` expanded, for every loader's ``root`` argument."""
    return Path(p).expanduser()
