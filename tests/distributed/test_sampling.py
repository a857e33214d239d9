"""Sharding without processes: the DDP samplers reproduce the one-process batches (fast)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from brainlib.engine import EpochShuffleSampler, make_loader
from brainlib.engine import distributed as d


def test_ranks_together_see_the_one_process_batches():
    n, global_batch, world = 48, 8, 4
    single = EpochShuffleSampler(n, seed=5)
    for epoch in (0, 3):
        single.set_epoch(epoch)
        order = list(single)
        shards = []
        for rank in range(world):
            s = d.DistributedEpochSampler(n, d.DistInfo(rank, world), seed=5)
            s.set_epoch(epoch)
            shards.append(list(s))
        b = global_batch // world
        for k in range(n // global_batch):
            together = sorted(i for shard in shards for i in shard[k * b:(k + 1) * b])
            assert together == sorted(order[k * global_batch:(k + 1) * global_batch])


def test_padding_when_the_world_does_not_divide_the_data():
    shards = [list(d.DistributedEpochSampler(10, d.DistInfo(r, 4), seed=0)) for r in range(4)]
    assert all(len(s) == 3 for s in shards)
    assert sorted(set(i for s in shards for i in s)) == list(range(10))  # 2 repeated cases


def test_validation_shards_interleave_back_in_order():
    n, world = 13, 3
    shards = [np.array(d.ShardSampler(n, d.DistInfo(r, world)).indices) * 10 for r in range(world)]
    assert d.interleave(shards, n).tolist() == [i * 10 for i in range(n)]
    with pytest.raises(RuntimeError, match="rank 1 returned"):
        d.interleave([shards[0], shards[1][:-1], shards[2]], n)


class _Items(torch.utils.data.Dataset):
    def __len__(self):
        return 12

    def __getitem__(self, i):
        return {"x": torch.tensor([float(i)]), "y": torch.tensor([0.0]), "id": str(i)}


def test_train_loader_keeps_the_global_batch_and_refuses_what_it_cannot_shard():
    info = d.DistInfo(1, 2)
    loader = d.train_loader(make_loader(_Items(), 6, shuffle=True, seed=2), info, 0)
    assert loader.batch_size == 3 and isinstance(loader.sampler, d.DistributedEpochSampler)
    assert loader.sampler.seed == 2 and loader.sampler.shuffle
    with pytest.raises(d.DistributedSetupError, match="batch size 5 is not divisible by 2"):
        d.train_loader(make_loader(_Items(), 5), info, 0)
    weighted = torch.utils.data.DataLoader(
        _Items(), batch_size=4, sampler=torch.utils.data.WeightedRandomSampler([1.0] * 12, 12))
    with pytest.raises(d.DistributedSetupError, match="WeightedRandomSampler"):
        d.train_loader(weighted, info, 0)


def test_env_info(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert d.env_info() == d.DistInfo() and not d.env_info().active
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(d.DistributedSetupError, match="RANK, MASTER_ADDR, MASTER_PORT not set"):
        d.env_info()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert d.env_info() == d.DistInfo(1, 2, 0)
