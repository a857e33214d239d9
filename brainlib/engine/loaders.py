"""Seeding, devices, threads and reproducible loaders (per-epoch seeded shuffling).

Shuffling order of epoch ``e`` depends only on ``(seed, e)`` (:class:`EpochShuffleSampler`), so a
resumed run sees the order an uninterrupted run would have seen.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with `n` torch CPU threads (None: unchanged), then restore the count.

    Phases differ (docs/PERFORMANCE.md): small training loops on a shared 2-core CPU run fastest
    on 1 thread, encoders may want 2; the thread count changes float results, so it is a setting.
    """
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Map ``"auto"`` to CUDA when available else CPU; refuse ``"cuda"`` without a GPU."""
    if isinstance(device, torch.device):
        return device
    name = str(device).lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} requested but no CUDA device is available")
    if name == "cpu" or name.startswith("cuda"):
        return torch.device(name)
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices).

    ``deterministic=True`` also asks torch for deterministic kernels (``warn_only``, because
    e.g. torchvision's ``roi_align`` backward on CUDA has none) and turns off cuDNN benchmarking.
    CPU runs are bit-identical per seed without it.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed derived from (seed, epoch), independent of any global RNG."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]) >> 1


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and python from the worker's torch seed.

    Each worker's torch seed is ``base_seed + worker_id`` with ``base_seed`` drawn from the
    loader's generator, so it differs per worker and per epoch and is reproducible per loader
    seed. Recent torch releases already seed python/numpy in workers; doing it here keeps the
    guarantee explicit and independent of the torch version.
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


class EpochShuffleSampler(Sampler[int]):
    """Random permutation whose order depends only on ``(seed, epoch)``.

    :func:`fit` calls :meth:`set_epoch` before every epoch (like ``DistributedSampler``), so
    a resumed run sees exactly the order an uninterrupted run would have seen.
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose seeded order ``__iter__`` yields (called by :func:`fit`)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    workers: int = 0,
    *,
    drop_last: bool = False,
    collate_fn: Callable | None = None,
    pin_memory: bool | None = None,
) -> DataLoader:
    """A reproducible DataLoader: per-epoch seeded shuffling, seeded workers and generator."""
    generator = torch.Generator().manual_seed(int(seed))
    sampler = EpochShuffleSampler(len(dataset), seed) if shuffle else None  # type: ignore[arg-type]
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=seed_worker,
        generator=generator,
        drop_last=drop_last,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        persistent_workers=False,
    )

