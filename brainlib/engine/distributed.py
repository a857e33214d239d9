"""torch.distributed for :func:`brainlib.engine.fit`: join the job torchrun started, shard data.

A process started by ``torchrun`` (``python -m torch.distributed.run``) has ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in its environment. So has
every Jupyter kernel it starts (papermill passes the environment on), which is how a notebook's
``fit`` calls take part in a multi-process training without the notebook knowing
(``brainlib run --nproc N``, docs/scale.md). :func:`join` creates the process group the first
time a training needs it: ``gloo`` on CPU, ``cpu:gloo,cuda:nccl`` on CUDA, with a timeout
(``BRAINLIB_DIST_TIMEOUT`` seconds, default 300) so that a rank waiting for a dead peer fails
with an error instead of hanging.

Every process group gets its own key prefix in the rendezvous store, numbered by a counter kept
in the store itself: successive kernels of one torchrun job (one per notebook) each start a fresh
group without reading the keys of the previous one.

Data: :class:`DistributedEpochSampler` is a ``DistributedSampler`` whose epoch order is the
permutation :class:`~brainlib.engine.loaders.EpochShuffleSampler` draws for ``(seed, epoch)``,
dealt round-robin, so the union of the ranks' k-th batches is the single-process run's k-th
batch of the same global size. Validation is split without padding (:class:`ShardSampler`) and
gathered back in dataset order, so metrics are computed on exactly the single-process cases.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import (DataLoader, DistributedSampler, RandomSampler, Sampler,
                              SequentialSampler)

from brainlib.engine.loaders import EpochShuffleSampler, _epoch_seed
from brainlib.engine.syncbn import convert_global_batchnorm

DEFAULT_TIMEOUT_S = 300.0


class DistributedSetupError(RuntimeError):
    """The torchrun environment is incomplete or the batch cannot be split over the ranks."""


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Rank, world size and local rank from the torchrun environment (1 process without it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise DistributedSetupError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: start "
                                    "the job with torchrun (python -m torch.distributed.run)")
    return DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def timeout_seconds() -> float:
    """Collective timeout: ``BRAINLIB_DIST_TIMEOUT`` seconds (default 300)."""
    return float(os.environ.get("BRAINLIB_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))


def join(device: torch.device) -> DistInfo:
    """Join (once per process) the process group of the torchrun job this process belongs to.

    Returns the process's :class:`DistInfo`; a single process (no ``WORLD_SIZE`` > 1) gets the
    trivial one and no group. The group lives until the process ends.
    """
    info = env_info()
    if not info.active or dist.is_initialized():
        return info
    timeout = timedelta(seconds=timeout_seconds())
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    agent_serves = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(host, port, world_size=info.world_size, timeout=timeout,
                          is_master=info.rank == 0 and not agent_serves,
                          multi_tenant=not agent_serves)
    generation = store.add(f"brainlib/generation/rank{info.rank}", 1)
    backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend, store=dist.PrefixStore(f"brainlib/pg{generation}", store),
                            rank=info.rank, world_size=info.world_size, timeout=timeout)
    return info


def rank_device(device: torch.device, info: DistInfo) -> torch.device:
    """The CUDA device of this rank (``cuda:LOCAL_RANK``); other devices unchanged."""
    if info.active and device.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return device


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def wrap_model(model: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """Batch norm over the global batch where the model has it, then DistributedDataParallel.

    ``nn.SyncBatchNorm`` on CUDA, :class:`~brainlib.engine.syncbn.GlobalBatchNorm` on CPU (torch's
    runs on GPU modules only). The BN layers are replaced inside ``model`` sharing their tensors
    (same names, so state dicts and checkpoints stay those of the single-process model); the
    returned wrapper is used for training steps only. DDP looks for parameters a step leaves
    without gradient (``find_unused_parameters``: DrCT2's heads, detectors' unused branches);
    ``BRAINLIB_DDP_FIND_UNUSED=0`` skips that search when every parameter is always used.
    """
    if has_batch_norm(model):
        for name, child in list(model.named_children()):
            setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(child)
                    if device.type == "cuda" else convert_global_batchnorm(child))
        model.to(device)
    ids = [device.index] if device.type == "cuda" else None
    find_unused = os.environ.get("BRAINLIB_DDP_FIND_UNUSED", "1") != "0"
    return nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                               find_unused_parameters=find_unused)


class DistributedEpochSampler(DistributedSampler):
    """``DistributedSampler`` over the :class:`EpochShuffleSampler` order for ``(seed, epoch)``.

    Rank ``r`` takes positions ``r, r + W, r + 2W, ...`` of that order (padded at the end with
    its first positions, as ``DistributedSampler`` does, when ``W`` does not divide the size).
    """

    def __init__(self, n: int, info: DistInfo, seed: int = 0, shuffle: bool = True) -> None:
        super().__init__(range(n), num_replicas=info.world_size, rank=info.rank, shuffle=shuffle,
                         seed=seed, drop_last=False)
        self.n = int(n)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        order += order[: self.total_size - self.n]
        return iter(order[self.rank:self.total_size:self.num_replicas])


class ShardSampler(Sampler[int]):
    """Positions ``rank, rank + W, ...`` of the dataset, no padding, in order (validation)."""

    def __init__(self, n: int, info: DistInfo) -> None:
        self.indices = list(range(info.rank, int(n), info.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _rebuild(loader: DataLoader, sampler: Sampler, batch_size: int, rank: int) -> DataLoader:
    gen = None
    if loader.generator is not None:  # per-rank worker seeds, reproducible per loader seed
        gen = torch.Generator().manual_seed(_epoch_seed(loader.generator.initial_seed(), 1 + rank))
    return DataLoader(loader.dataset, batch_size=batch_size, sampler=sampler, shuffle=False,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      worker_init_fn=loader.worker_init_fn, generator=gen,
                      persistent_workers=loader.persistent_workers if loader.num_workers else False)


def train_loader(loader: DataLoader, info: DistInfo, seed: int) -> DataLoader:
    """The rank's share of a training loader; its batch size is the global one divided by W.

    Raises :class:`DistributedSetupError` when the global batch size is not a multiple of the
    world size (the paper's batch size must stay the global batch size).
    """
    if loader.batch_size is None:
        raise DistributedSetupError("a training loader with batch_sampler= cannot be sharded; "
                                    "use make_loader(dataset, batch_size, ...)")
    if loader.batch_size % info.world_size:
        raise DistributedSetupError(
            f"batch size {loader.batch_size} is not divisible by {info.world_size} processes; "
            f"choose --nproc dividing it (the batch size is the global one)")
    sampler = loader.sampler
    if not isinstance(sampler, (EpochShuffleSampler, RandomSampler, SequentialSampler)):
        raise DistributedSetupError(
            f"cannot shard a training loader with a {type(sampler).__name__}: only uniform "
            "shuffling (make_loader(shuffle=True)) or sequential order have a DDP equivalent")
    shuffle = not isinstance(sampler, SequentialSampler)
    seed = int(getattr(sampler, "seed", seed if seed is not None else 0))
    dsampler = DistributedEpochSampler(len(loader.dataset), info, seed=seed, shuffle=shuffle)  # type: ignore[arg-type]
    return _rebuild(loader, dsampler, loader.batch_size // info.world_size, info.rank)


def eval_loader(loader: DataLoader, info: DistInfo) -> DataLoader:
    """The rank's share of a validation loader (unpadded, dataset order, same batch size)."""
    return _rebuild(loader, ShardSampler(len(loader.dataset), info),  # type: ignore[arg-type]
                    loader.batch_size or 1, info.rank)


def gather(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` in rank order (``[obj]`` in a single process)."""
    if not info.active:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


def merge_sums(parts: Sequence[tuple[dict[str, float], int]]) -> dict[str, float]:
    """Case-weighted means from per-rank ``(sums, n)`` pairs."""
    total = sum(n for _, n in parts)
    keys = sorted({k for sums, _ in parts for k in sums})
    return {k: sum(s.get(k, 0.0) for s, _ in parts) / max(total, 1) for k in keys}


def interleave(shards: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Undo :class:`ShardSampler`: rank ``r``'s ``k``-th row is dataset position ``k W + r``."""
    world = len(shards)
    out = np.empty((n, *shards[0].shape[1:]), dtype=shards[0].dtype)
    for r, shard in enumerate(shards):
        expected = len(range(r, n, world))
        if len(shard) != expected:
            raise RuntimeError(f"rank {r} returned {len(shard)} validation rows, expected {expected}")
        out[r::world] = shard
    return out
