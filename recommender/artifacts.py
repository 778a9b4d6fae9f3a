"""The one module that writes artifacts: atomic files, generations and the CURRENT pointer.

A generation is a directory ``features/gen-*`` written under a temporary name,
fsynced, renamed into place, and only then named in ``features/CURRENT``.
A reader that follows CURRENT therefore always sees a complete generation, even
if ``compute`` is killed at any instant. Nothing here pickles: arrays are
``.npz`` (loaded with ``allow_pickle=False``) and everything else is JSON.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import datetime as dt
from pathlib import Path

import numpy as np
import scipy.sparse as sp

KEEP_GENERATIONS = 3


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb"):
    """Write ``path`` via a temp file in the same directory, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, value) -> None:
    with atomic_file(path, "w") as handle:
        json.dump(value, handle, ensure_ascii=False, separators=(",", ":"))


def read_json(path: Path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_npz(path: Path, **arrays) -> None:
    with atomic_file(path) as handle:
        np.savez(handle, **arrays)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def write_csr(path: Path, matrix: sp.csr_matrix) -> None:
    write_npz(path, data=matrix.data, indices=matrix.indices, indptr=matrix.indptr,
              shape=np.array(matrix.shape, dtype=np.int64))


def read_csr(path: Path) -> sp.csr_matrix:
    a = read_npz(path)
    return sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=tuple(a["shape"]))


class Generations:
    """Feature generations under ``models_dir/features``."""

    def __init__(self, models_dir: Path):
        self.root = Path(models_dir) / "features"
        self.pointer = self.root / "CURRENT"

    def current(self) -> str | None:
        """Name of the current generation, or None if ``compute`` never finished."""
        try:
            name = self.pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name if name and (self.root / name).is_dir() else None

    def path(self, name: str) -> Path:
        return self.root / name

    @contextlib.contextmanager
    def new(self):
        """Yield a fresh directory to fill; on success it becomes the current generation.

        If the block raises (or the process dies), CURRENT still names the old
        generation and the partial directory is left under a ``.tmp`` name.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # Microseconds keep two runs in one second apart; the pid lets prune() spot a dead run's leftovers.
        name = dt.datetime.now().strftime("gen-%Y%m%dT%H%M%S-%f") + f"-{os.getpid()}"
        tmp = self.root / f".{name}.tmp"
        tmp.mkdir()
        try:
            yield tmp
            fsync_dir(tmp)
            os.rename(tmp, self.root / name)
            fsync_dir(self.root)
            with atomic_file(self.pointer, "w") as handle:
                handle.write(name + "\n")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.prune(keep=name)

    def prune(self, keep: str) -> None:
        """Drop old generations and leftovers of killed runs; the newest few stay for running readers."""
        finished = sorted(p for p in self.root.glob("gen-*") if p.is_dir())
        for old in finished[:-KEEP_GENERATIONS]:
            if old.name != keep:
                shutil.rmtree(old, ignore_errors=True)
        for leftover in self.root.glob(".gen-*.tmp"):
            if leftover.name != f".{keep}.tmp" and _pid_dead(leftover.name):
                shutil.rmtree(leftover, ignore_errors=True)


def _pid_dead(tmp_name: str) -> bool:
    try:
        pid = int(tmp_name.rsplit("-", 1)[1].split(".")[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return True
    except PermissionError:
        return False
    return pid == os.getpid()
