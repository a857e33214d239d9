"""Atomic file writes: a reader never sees a half-written output.

Every output brainlib writes (tables, figures, manifests, checkpoints, the report, slice
caches, phantom trees, skipped lists) goes through here: write to a temporary file in the
destination folder, flush it to disk, then `os.replace` it over the target. A crash leaves
the old file (or none), never a torn one. Bulk, regenerable outputs pass ``fsync=False``:
still atomic for readers, without one disk flush per file.

Temporary names carry the writing process's id: ``.<target>.<pid>-<hex>.tmp<suffix>`` for
files, ``.<target>.<pid>-<hex>.tmpdir`` for folders. A killed process (SIGKILL, power loss)
cannot clean up after itself; :func:`sweep_temp` removes what a dead writer left, and is called
where a run starts (the notebook runner on its output folder, the engine on its checkpoint
folder). Files of a writer that is still alive are never touched.

:func:`file_lock` serialises writers that must not interleave: one notebook run per output
folder (``<out>/.lock``), one generator per phantom set or slice cache. It is an advisory
``fcntl.flock`` lock, released by the kernel when its holder exits however it exits, so a killed
run never leaves a stale lock behind. A lock taken by ``reproduce.sh`` on an open file
descriptor is passed to its children through ``BRAINLIB_LOCK_FD``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; brainlib's runs are POSIX-only
    fcntl = None  # type: ignore[assignment]

# .<name>.<pid>-<8 hex>.tmp[<suffix>] (files) or .tmpdir (folders); the legacy pattern, written
# before pids were part of the name, is .<name>.<8 hex>.tmp[<suffix>].
_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp(?:dir|\.[^.]*)?$")
_LEGACY_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp(?:\.[^.]*)?$")
LEGACY_MIN_AGE_S = 600.0  # a legacy temp file names no writer: only removed when this old


def _temp_name(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.{kind}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    Use it for writers that want a file name (``fig.savefig``, ``torch.save``,
    ``np.save``, ``ds.save_as``). The temporary name keeps the target's suffix so writers
    that infer the format from the extension still work. On an exception the temporary file
    is removed and `path` is left untouched. ``fsync=False`` skips the flush to disk (the
    rename stays atomic) for bulk, regenerable outputs such as phantom slices and caches,
    where one fsync per file would dominate the cost.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:  # like mkstemp, but with the usual permissions (0666 minus umask), not 0600
        tmp = _temp_name(target, f"tmp{target.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as handle:  # make the bytes durable before the rename
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write(path: str | os.PathLike[str], data: str | bytes, encoding: str = "utf-8", *,
                 fsync: bool = True) -> Path:
    """Write `data` (text or bytes) to `path` atomically and return the path."""
    target = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else bytes(data)
    with atomic_path(target, fsync=fsync) as tmp:
        tmp.write_bytes(payload)
    return target


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` as a whole.

    For multi-file caches (arrays + metadata) that must appear complete or not at all.
    An existing `path` is removed just before the rename; on an exception the temporary
    folder is deleted and `path` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = _temp_name(target, "tmpdir")
        try:
            tmp.mkdir(mode=0o755)
            break
        except FileExistsError:
            continue
    try:
        os.chmod(tmp, 0o755)
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def pid_alive(pid: int) -> bool:
    """Does process `pid` exist on this machine (ours, or another user's)?"""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _pid_started(pid: int) -> float | None:
    """Start time (epoch seconds) of a live process, from /proc (Linux); None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - uptime + int(fields[19]) / ticks
    except (OSError, IndexError, ValueError):
        return None


def is_stale_temp(path: str | os.PathLike[str], now: float | None = None) -> bool:
    """True if `path` is a temporary file/folder of :func:`atomic_path`/:func:`atomic_dir`
    whose writer is gone: its process is dead, or the pid now belongs to a process started
    after the file was last written (pid reuse). Legacy names (no pid) count as stale once
    older than ``LEGACY_MIN_AGE_S``."""
    path = Path(path)
    try:
        mtime = path.lstat().st_mtime
    except FileNotFoundError:
        return False
    match = _TEMP.match(path.name)
    if match:
        pid = int(match["pid"])
        if not pid_alive(pid):
            return True
        if pid == os.getpid():
            return False
        started = _pid_started(pid)
        return started is not None and started > mtime + 1.0
    if _LEGACY_TEMP.match(path.name) and path.is_file():
        return ((now or time.time()) - mtime) > LEGACY_MIN_AGE_S
    return False


def sweep_temp(folder: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """Remove the temporary files and folders a killed writer left under `folder`.

    Only names written by this module are considered, and only when their writer is gone
    (:func:`is_stale_temp`), so a concurrent live writer is never disturbed. Returns what was
    removed. A missing `folder` is fine (nothing to do).
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    removed: list[Path] = []
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith(".") and is_stale_temp(path):
                try:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                    removed.append(path)
                except FileNotFoundError:
                    pass
            elif recursive and entry.is_dir(follow_symlinks=False):
                stack.append(path)
    return removed


# --------------------------------------------------------------------------- locks
LOCK_FD_ENV = "BRAINLIB_LOCK_FD"  # an inherited descriptor that already holds a file_lock
_HELD: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) of locks this process holds -> depth


class LockedError(RuntimeError):
    """Another process holds the lock; the message names it (pid, host, start, command)."""

    def __init__(self, path: Path, holder: dict[str, Any] | None, purpose: str = "") -> None:
        self.path, self.holder = Path(path), holder or {}
        who = ", ".join(f"{k} {self.holder[k]}" for k in ("pid", "host", "started") if self.holder.get(k))
        what = self.holder.get("purpose") or "another brainlib process"
        super().__init__(f"{self.path}: locked by {what}" + (f" ({who})" if who else "")
                         + (f"; {purpose}" if purpose else ""))


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _inherited_fd(path: Path) -> int | None:
    """The descriptor named by BRAINLIB_LOCK_FD if it is open on `path` (same inode)."""
    try:
        fd = int(os.environ.get(LOCK_FD_ENV, ""))
        st = os.fstat(fd)
    except (ValueError, OSError):
        return None
    return fd if (st.st_dev, st.st_ino) == _inode(path) else None


def read_lock_holder(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What the holder of a :func:`file_lock` wrote into the lock file (None if unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return " ".join(sys.argv) if pid == os.getpid() else ""


def _write_holder(fd: int, purpose: str, pid: int | None = None) -> None:
    pid = os.getpid() if pid is None else pid
    info = {"pid": pid, "host": socket.gethostname(), "purpose": purpose,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": _command_line(pid)[:300]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)


def lock_fd(fd: int, path: str | os.PathLike[str], *, wait: bool | float = False, purpose: str = "",
            refused: str = "", holder_pid: int | None = None) -> None:
    """Take the exclusive lock on open descriptor `fd` (of `path`), or raise :class:`LockedError`.

    ``wait``: False fails at once, True waits as long as needed, a number waits that many
    seconds. The holder's description (``holder_pid``, default this process) is written into
    the file for the next one to read.
    """
    if fcntl is None:  # pragma: no cover
        return
    deadline = None if wait is True else time.monotonic() + (0.0 if wait is False else float(wait))
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:  # type: ignore[operator]
                raise LockedError(Path(path), read_lock_holder(path), refused) from None
            time.sleep(0.1)
    _write_holder(fd, purpose, holder_pid)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, wait: bool | float = True, purpose: str = "",
              refused: str = "") -> Iterator[Path]:
    """Hold an exclusive advisory lock on `path` (created if needed) for the block.

    Re-entrant within a process; a lock inherited through ``BRAINLIB_LOCK_FD`` (reproduce.sh
    holds ``<out>/.lock`` for its whole run) counts as held. ``purpose`` is written into the
    lock file and quoted to whoever is refused; ``refused`` is appended to that message (what
    to do about it). The lock file itself is left in place: removing it would let two
    processes lock two different files of the same name.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    inherited = _inherited_fd(target)
    if inherited is not None:  # normally held already (same open file); its holder stays named
        if fcntl is not None:
            try:
                fcntl.flock(inherited, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockedError(target, read_lock_holder(target), refused) from None
        yield target
        return
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if key not in _HELD:
            lock_fd(fd, target, wait=wait, purpose=purpose, refused=refused)
        _HELD[key] = _HELD.get(key, 0) + 1
        try:
            yield target
        finally:
            _HELD[key] -= 1
            if not _HELD[key]:
                del _HELD[key]
    finally:
        os.close(fd)  # closing the last descriptor of a flock releases it
