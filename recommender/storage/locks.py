"""One running job of each kind: ``fcntl.flock`` on ``<models_dir>/locks/<job>.lock``.

The lock is non-blocking (a second ``paperfeed compute`` fails at once with
:class:`JobRunning`, naming the pid of the first) and the kernel releases it when
the holder exits, however it dies, so a killed job never leaves a stale lock.
The files themselves stay (deleting a lock file races with the next locker); each
holds the pid of its last holder, for the message.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path


class JobRunning(RuntimeError):
    """Another process holds this job's lock."""

    def __init__(self, job: str, pid: int | None, path: Path):
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"another `paperfeed {job}` is running{who}; try again when it has finished "
                         f"(lock file {path})")
        self.job, self.pid, self.path = job, pid, path


def lock_path(models_dir: Path, job: str) -> Path:
    return Path(models_dir) / "locks" / f"{job}.lock"


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


@contextlib.contextmanager
def job_lock(models_dir: Path, job: str) -> Iterator[Path]:
    """Hold ``job``'s lock for the block, or raise :class:`JobRunning` at once if another process has it."""
    path = lock_path(models_dir, job)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobRunning(job, _holder(fd), path) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def job_locks(models_dir: Path, jobs: Iterable[str]) -> Iterator[list[Path]]:
    """Hold several jobs' locks (in a fixed order, so two lockers cannot deadlock)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(job_lock(models_dir, job)) for job in sorted(set(jobs))]


@contextlib.contextmanager
def waiting_lock(path: Path, timeout: float, what: str) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path``, waiting up to ``timeout`` seconds for another holder
    (a thread or a process); ``TimeoutError`` naming ``what`` after that. Freed if the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{what} is locked by another process for {timeout:.0f} s") from None
                time.sleep(0.02)
        yield path
    finally:
        os.close(fd)  # releases the lock
