"""Atomic file writes: a reader never sees a half-written output.

Every output brainlib writes (tables, figures, manifests, checkpoints, the report, slice
caches, phantom trees, skipped lists) goes through here: write to a temporary file in the
destination folder, flush it to disk, then `os.replace` it over the target. A crash leaves
the old file (or none), never a torn one. Bulk, regenerable outputs pass ``fsync=False``:
still atomic for readers, without one disk flush per file.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator


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
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}")
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
    import shutil
    import tempfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
