"""The one module that writes artifacts: atomic files, generations and the CURRENT pointer.

A generation is a directory ``features/gen-*`` written under a temporary name,
fsynced, renamed into place, and only then named in ``features/CURRENT``.
A reader that follows CURRENT therefore always sees a complete generation, even
if ``compute`` is killed at any instant. Nothing here pickles: arrays are
``.npz`` or ``.npy`` (loaded with ``allow_pickle=False``) and everything else is JSON.
A large ``.npy`` is memory-mapped read-only (:func:`map_npy`), so every process that
maps it shares one copy in the page cache. Files are only ever replaced, never
rewritten in place, so a mapping never sees a file change under it.

File mode: artifacts are created ``0o666`` minus the process umask (``0644`` under
the usual umask 022, ``0664`` under 002), like any file a program creates, not the
``0600`` of ``mkstemp``. So the web server may run as another Unix user than the
batch jobs as long as it can read them (same group with umask 002, or anyone with
022). Run the jobs with umask 077 to keep them private to one user.

Temporary names carry the writer's pid: ``.<name>.<pid>.<random>.tmp`` for files,
``.gen-<stamp>-<pid>.tmp`` for generations. A killed run leaves them behind;
:func:`remove_stale_temps` (run by ``compute``, ``train`` and ``check --repair``)
deletes those whose writer is dead, never one a live writer is using (see
:func:`is_stale` for the rule).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import datetime as dt
import re
import threading
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

KEEP_GENERATIONS = 3
STALE_NO_PID_S = 3600          # a temp file without a pid in its name (older releases) is stale after an hour
STALE_LIVE_PID_S = 24 * 3600   # ... and one whose pid is alive but untouched this long (the pid was reused)

_TEMP_FILE = re.compile(r"\..+\.(?P<pid>[0-9]+)\.[A-Za-z0-9_]+\.tmp")
_TEMP_GEN = re.compile(r"\.gen-.*-(?P<pid>[0-9]+)\.tmp")
_umask_lock = threading.Lock()


def umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # elsewhere: set and restore (another thread creating a file meanwhile is not covered)
        value = os.umask(0o022)
        os.umask(value)
        return value


def file_mode() -> int:
    """The mode artifacts are created with: ``0o666 & ~umask``."""
    return 0o666 & ~umask()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb"):
    """Write ``path`` via a temp file in the same directory, fsync, then ``os.replace``.

    The file gets :func:`file_mode` (``0644`` under umask 022). On any error (``ENOSPC``,
    ``EROFS``...) the temp file is removed and the old ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            os.fchmod(handle.fileno(), file_mode())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno and exc.filename is None:
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc  # say which file
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


def write_npy(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


def map_npy(path: Path, mapped: bool = True) -> np.ndarray:
    """A ``.npy`` file as a read-only array backed by the file (``mapped``), or read into private memory.

    The mapped array is a plain ``ndarray`` view of the ``np.memmap`` (results of arithmetic on it are
    then ordinary arrays, not memmaps without a file). A truncated file raises ``ValueError``.
    """
    if not mapped:
        return np.load(path, allow_pickle=False)
    return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))


CSR_PARTS = ("data", "indices", "indptr", "shape")


def csr_files(name: str) -> list[str]:
    """The files :func:`write_csr_npy` writes for matrix ``name``: ``<name>.data.npy`` and so on."""
    return [f"{name}.{part}.npy" for part in CSR_PARTS]


def csr_index_dtype(nnz: int) -> type:
    """int32 indices and indptr while they fit, else int64 for both: scipy casts mismatched index arrays to
    one dtype, which would copy a mapped array into private memory."""
    return np.int32 if nnz < 2**31 else np.int64


def write_csr_npy(folder: Path, name: str, matrix: sp.csr_matrix) -> None:
    """A CSR matrix as one ``.npy`` per array (see :func:`csr_files`), so it can be memory-mapped."""
    index = csr_index_dtype(matrix.nnz)
    write_npy(folder / f"{name}.data.npy", matrix.data.astype(np.float32, copy=False))
    write_npy(folder / f"{name}.indices.npy", matrix.indices.astype(index, copy=False))
    write_npy(folder / f"{name}.indptr.npy", matrix.indptr.astype(index, copy=False))
    write_npy(folder / f"{name}.shape.npy", np.array(matrix.shape, dtype=np.int64))


def map_csr(folder: Path, name: str, mapped: bool = True) -> sp.csr_matrix:
    """The matrix :func:`write_csr_npy` wrote, its arrays backed by the files (``mapped``): nothing is copied,
    and the arrays are read-only, so an operation that would change them in place raises instead."""
    data, indices, indptr, shape = (map_npy(folder / f, mapped) for f in csr_files(name))
    if indices.dtype != indptr.dtype or indptr.dtype not in (np.int32, np.int64) or shape.shape != (2,):
        raise ValueError(f"{name}: index arrays of {indices.dtype} and {indptr.dtype}, shape {shape.shape}")
    if len(indptr) != shape[0] + 1 or len(indices) != len(data) or (len(indptr) and indptr[-1] != len(data)):
        raise ValueError(f"{name}: arrays of {len(data)}, {len(indices)} and {len(indptr)} entries "
                         f"for a {shape[0]} x {shape[1]} matrix")
    return sp.csr_matrix((data, indices, indptr), shape=(int(shape[0]), int(shape[1])))


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
        remove_stale_temps(self.root)
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
        remove_stale_temps(self.root)

    def complete(self) -> list[str]:
        """Names of the finished generation directories, oldest first."""
        return sorted(p.name for p in self.root.glob("gen-*") if p.is_dir())


def temp_pid(name: str) -> int | None:
    """The writer's pid in a temp name (file or generation), or None for a name without one."""
    match = _TEMP_GEN.fullmatch(name) or _TEMP_FILE.fullmatch(name)
    return int(match["pid"]) if match else None


def is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's live process (or a pid this system cannot have: keep, age decides)
    return True


def is_stale(path: Path, now: float | None = None) -> bool:
    """Whether a temp file or directory was left by a run that is over.

    With a pid in its name: stale when that process is dead, or (the pid was reused)
    when untouched for ``STALE_LIVE_PID_S``. Without one: when untouched for
    ``STALE_NO_PID_S``. A live writer keeps its file fresh, so it is never removed.
    """
    now = time.time() if now is None else now
    try:
        age = now - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    pid = temp_pid(path.name)
    if pid is None:
        return age > STALE_NO_PID_S
    return not _alive(pid) or age > STALE_LIVE_PID_S


def find_temps(root: Path) -> list[Path]:
    """Temp files and generation directories under ``root`` (not inside a temp directory)."""
    found = []
    for folder, dirs, files in os.walk(root):
        for name in list(dirs):
            if is_temp(name):
                found.append(Path(folder) / name)
                dirs.remove(name)
        found += [Path(folder) / name for name in files if is_temp(name)]
    return sorted(found)


def remove_stale_temps(root: Path, now: float | None = None) -> list[Path]:
    """Delete the stale temp files and directories under ``root``; returns what was removed."""
    removed = []
    for path in find_temps(root):
        if is_stale(path, now):
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            except FileNotFoundError:
                pass
            removed.append(path)
    return removed
