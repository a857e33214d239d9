"""brainlib._atomic: the fsync switch and the writers folded onto it (checkpoints, skipped lists)."""
from __future__ import annotations

import os

import pytest

from brainlib._atomic import atomic_path, atomic_write


def _no_temp_left(folder) -> bool:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("fsync", [True, False])
def test_fsync_switch(tmp_path, monkeypatch, fsync):
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    target = atomic_write(tmp_path / "sub" / "a.txt", "hello", fsync=fsync)
    assert target.read_text() == "hello"
    assert bool(calls) is fsync
    assert _no_temp_left(target.parent)


def test_atomic_path_keeps_suffix_and_old_file_on_error(tmp_path):
    target = tmp_path / "x.npz"
    atomic_write(target, b"old", fsync=False)
    with pytest.raises(RuntimeError):
        with atomic_path(target, fsync=False) as tmp:
            assert tmp.suffix == ".npz" and tmp.parent == tmp_path
            tmp.write_bytes(b"half")
            raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"old"
    assert _no_temp_left(tmp_path)


def test_checkpoint_and_skipped_writers_go_through_atomic_path(tmp_path):
    import torch

    from brainlib.engine import _atomic_save
    from brainlib.io import Skipped, write_skipped

    ckpt = tmp_path / "ck" / "last.pt"
    _atomic_save({"w": torch.arange(3)}, ckpt)
    assert torch.equal(torch.load(ckpt)["w"], torch.arange(3))
    out = write_skipped([Skipped("a.dcm", "NotCTError", "modality MR")], tmp_path / "s" / "skipped.csv")
    assert out.read_text().splitlines() == ["path,error,reason", "a.dcm,NotCTError,modality MR"]
    assert _no_temp_left(ckpt.parent) and _no_temp_left(out.parent)


def test_atomic_dir_replaces_whole_folder_or_nothing(tmp_path):
    from brainlib._atomic import atomic_dir

    target = tmp_path / "cache"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "b.txt").write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]  # old folder intact
    with atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]  # replaced as a whole
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # no temp folder left
