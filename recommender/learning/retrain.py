"""A fair background queue for retraining users after their libraries change.

- **Coalescing**: a user is queued at most once; changes made while they wait join that run, and a
  change made while they train queues exactly one more run.
- **Fairness**: the queue is first in, first out, and each turn does a bounded amount of work (the
  caller fits at most ``retrain_batch`` models). A user with more to do goes to the back of the line,
  so one account with many tags cannot hold the workers while others wait.
- **Several workers**; one user is never trained by two of them at once.
- **Failures** are retried with exponential backoff (``RETRY_BASE_S`` doubling, capped at ``RETRY_MAX_S``:
  2, 4, ... 128 s for the ``MAX_ATTEMPTS - 1`` = 7 retries); a change to the library starts the tries afresh.
  The last error is kept for :meth:`status`, so the library page can show it.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)
RETRY_BASE_S = 2.0
RETRY_MAX_S = 600.0
MAX_ATTEMPTS = 8


@dataclasses.dataclass(frozen=True)
class Status:
    queued: bool = False
    running: bool = False
    error: str | None = None     # the last failure, kept until a run succeeds
    retry_in: float | None = None  # seconds until the next try; None when not scheduled or given up
    attempts: int = 0

    @property
    def busy(self) -> bool:
        return self.queued or self.running


class RetrainQueue:
    """Run ``work(user_id) -> bool`` (True: more to do, come back) on ``workers`` threads."""

    def __init__(self, work: Callable[[int], bool], workers: int = 2, name: str = "retrain"):
        self._work = work
        self._cond = threading.Condition()
        self._ready: deque[int] = deque()
        self._queued: set[int] = set()
        self._running: set[int] = set()
        self._again: set[int] = set()
        self._delayed: dict[int, float] = {}  # user -> monotonic time of the next try
        self._failures: dict[int, tuple[int, str]] = {}  # user -> (attempts, last error)
        self._closed = False
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    # producers ----------------------------------------------------------
    def schedule(self, user_id: int, change: bool = True) -> None:
        """Queue a retrain; repeated calls coalesce. A ``change`` (the user edited their library) retries a
        failed user at once; otherwise a user in backoff, or given up on, waits for their next try."""
        with self._cond:
            if not change and user_id in self._failures:
                return
            if user_id in self._failures:  # a change starts the tries afresh (the last error stays until success)
                self._failures[user_id] = (0, self._failures[user_id][1])
            self._delayed.pop(user_id, None)
            if user_id in self._running:
                self._again.add(user_id)
            elif user_id not in self._queued:
                self._enqueue(user_id)

    def status(self, user_id: int) -> Status:
        with self._cond:
            attempts, error = self._failures.get(user_id, (0, None))
            due = self._delayed.get(user_id)
            return Status(user_id in self._queued, user_id in self._running, error,
                          None if due is None else max(0.0, due - time.monotonic()), attempts)

    def wait(self, user_id: int, timeout: float) -> bool:
        """Wait until the user is neither queued nor training (a backoff wait does not count). True if so."""
        with self._cond:
            return self._cond.wait_for(lambda: user_id not in self._queued and user_id not in self._running, timeout)

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until nothing is queued or running (tests, shutdown). Users in backoff do not count."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queued and not self._running, timeout)

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    # workers ------------------------------------------------------------
    def _enqueue(self, user_id: int) -> None:
        self._queued.add(user_id)
        self._ready.append(user_id)
        self._cond.notify_all()

    def _next(self) -> int | None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                for uid, due in list(self._delayed.items()):
                    if due <= now and uid not in self._queued and uid not in self._running:
                        del self._delayed[uid]
                        self._enqueue(uid)
                if self._ready:
                    uid = self._ready.popleft()
                    self._queued.discard(uid)
                    self._running.add(uid)
                    return uid
                wake = min(self._delayed.values(), default=None)
                self._cond.wait(None if wake is None else max(0.01, wake - now))
        return None

    def _loop(self) -> None:
        while (uid := self._next()) is not None:
            more, error = False, "interrupted"
            try:
                more, error = bool(self._work(uid)), None
            except Exception as exc:  # a failure must not kill the worker: it is retried with backoff
                log.exception("retraining user %s failed", uid)
                error = f"{type(exc).__name__}: {exc}"[:300]
            finally:
                self._finish(uid, more, error)

    def _finish(self, uid: int, more: bool, error: str | None) -> None:
        with self._cond:
            self._running.discard(uid)
            if error is None:
                self._failures.pop(uid, None)
            else:
                attempts = self._failures.get(uid, (0, ""))[0] + 1
                self._failures[uid] = (attempts, error)
                if attempts < MAX_ATTEMPTS and uid not in self._again:
                    self._delayed[uid] = time.monotonic() + min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (attempts - 1))
            if uid in self._again or (more and error is None):
                self._again.discard(uid)
                self._enqueue(uid)  # to the back of the line: the others get their turn first
            self._cond.notify_all()
