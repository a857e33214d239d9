"""Guards on the output folder of a run: where it may be, and one run in it at a time.

- :func:`check_out_dir`: the output folder may not be the data root, lie inside it, or hold
  it. A run clears and rewrites its output folder (tables, figures, temporary files of killed
  writers), so overlapping the two would let a run delete or rewrite the dataset, or read its
  own outputs as data.
- :func:`output_lock`: an exclusive ``fcntl.flock`` on ``<out>/.lock`` held for the whole run,
  so a second run into the same folder exits at once with a message naming the first (or waits
  for it with ``wait=``). Two different output folders run side by side; they share the phantom
  and slice caches, which have their own per-entry locks (:mod:`brainlib.data.cache`,
  ``ensure_*`` in :mod:`brainlib.data.synth`).

``reproduce.sh`` holds the lock across ``brainlib run`` and ``brainlib report`` by opening the
lock file on a descriptor and running ``python -m brainlib.run_guard lock OUT FD``; the children
find the held descriptor through ``BRAINLIB_LOCK_FD`` (:func:`brainlib._atomic.file_lock`).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from brainlib._atomic import LockedError, file_lock, lock_fd

LOCK_NAME = ".lock"
EXIT_LOCKED = 75  # EX_TEMPFAIL: try again later


class OutputLocationError(ValueError):
    """The output folder overlaps the data root."""


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.expanduser(os.fspath(path))).resolve()


def check_out_dir(out: str | os.PathLike[str], data_root: str | os.PathLike[str] | None) -> None:
    """Raise :class:`OutputLocationError` if `out` is `data_root`, inside it, or holds it.

    Both paths are compared after resolving symbolic links, so a link to the data root given
    as the output folder is refused too; a data root that is itself a link keeps working.
    """
    if not data_root:
        return
    o, d = _real(out), _real(data_root)
    if o == d:
        problem = "is the data root"
    elif o.is_relative_to(d):
        problem = f"is inside the data root {d}"
    elif d.is_relative_to(o):
        problem = f"contains the data root {d}"
    else:
        return
    raise OutputLocationError(
        f"output folder {o} {problem}: a run clears and rewrites its output folder, so it must "
        f"not overlap the dataset; choose an --out outside {d}")


def _refused(out: Path) -> str:
    return (f"another run is writing into {out}; wait for it to finish, or choose another --out "
            "(a second run into the same folder would mix both runs' outputs)")


@contextmanager
def output_lock(out: str | os.PathLike[str], *, wait: bool | float = False) -> Iterator[Path]:
    """Hold ``<out>/.lock`` for the block; :class:`brainlib._atomic.LockedError` if taken."""
    folder = _real(out)
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / LOCK_NAME, wait=wait, purpose=f"brainlib run into {folder}",
                   refused=_refused(folder)) as path:
        yield path


def main(argv: Sequence[str] | None = None) -> int:
    """``check OUT [DATA_ROOT]`` (exit 2 on overlap) or ``lock OUT FD`` (exit 75 if taken)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) in (2, 3) and args[0] == "check":
            check_out_dir(args[1], args[2] if len(args) == 3 else None)
            return 0
        if len(args) == 3 and args[0] == "lock":
            folder = _real(args[1])
            lock_fd(int(args[2]), folder / LOCK_NAME, purpose=f"reproduce.sh into {folder}",
                    refused=_refused(folder), holder_pid=os.getppid())  # the shell holds the fd
            return 0
    except OutputLocationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LockedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    print("usage: python -m brainlib.run_guard check OUT [DATA_ROOT] | lock OUT FD", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
