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


def _dead_pid() -> int:
    from pathlib import Path

    return int(Path("/proc/sys/kernel/pid_max").read_text())  # no live process has this pid


def test_temp_names_carry_the_writer_pid(tmp_path):
    from brainlib._atomic import _TEMP

    with atomic_path(tmp_path / "last.pt", fsync=False) as tmp:
        match = _TEMP.match(tmp.name)
        assert match and int(match["pid"]) == os.getpid() and tmp.name.endswith(".pt")
    from brainlib._atomic import atomic_dir

    with atomic_dir(tmp_path / "cache") as tmp:
        assert _TEMP.match(tmp.name)["pid"] == str(os.getpid()) and tmp.name.endswith(".tmpdir")


def test_sweep_removes_only_what_dead_writers_left(tmp_path):
    import time

    from brainlib._atomic import LEGACY_MIN_AGE_S, sweep_temp

    dead = _dead_pid()
    sub = tmp_path / "he2024" / "checkpoints" / "full-abc"
    sub.mkdir(parents=True)
    stale = [sub / f".last.pt.{dead}-0123abcd.tmp.pt", tmp_path / "he2024" / f".he2024.ipynb.{dead}-89abcdef.tmp.ipynb"]
    for path in stale:
        path.write_bytes(b"half")
    stale_dir = tmp_path / f".cache.{dead}-0123abcd.tmpdir"
    (stale_dir / "inner").mkdir(parents=True)
    old_legacy = sub / ".best.pt.0123abcd.tmp.pt"
    old_legacy.write_bytes(b"old")
    past = time.time() - LEGACY_MIN_AGE_S - 60
    os.utime(old_legacy, (past, past))
    kept = [sub / f".last.pt.{os.getpid()}-0123abcd.tmp.pt",  # a live writer (this process)
            sub / ".best.pt.fedcba98.tmp.pt",  # legacy name, recent: may be in flight
            sub / "last.pt", sub / ".hidden", tmp_path / "notes.tmp"]
    for path in kept:
        path.write_bytes(b"x")
    removed = sweep_temp(tmp_path)
    assert sorted(removed) == sorted(stale + [stale_dir, old_legacy])
    assert all(p.exists() for p in kept) and not stale_dir.exists()
    assert sweep_temp(tmp_path / "missing") == []
    assert sweep_temp(tmp_path) == []


def test_sweep_treats_a_reused_pid_as_dead(tmp_path):
    """The pid is alive but its process started after the file was last written."""
    import time

    from brainlib._atomic import is_stale_temp

    parent = os.getppid()  # alive; started before this test wrote anything
    fresh = tmp_path / f".x.csv.{parent}-0123abcd.tmp.csv"
    fresh.write_bytes(b"x")
    assert not is_stale_temp(fresh)
    long_ago = time.time() - 10 * 365 * 86400  # written before the parent process started
    os.utime(fresh, (long_ago, long_ago))
    assert is_stale_temp(fresh)
