"""Attempt budgets shared by every process that serves one data directory (a sliding window in SQLite).

Several server processes (``gunicorn -w 4``, or several waitress instances) on one data directory
see the same budget, because it lives in its own SQLite file (``<data dir>/throttle.sqlite``):
WAL, a busy timeout, and ``BEGIN IMMEDIATE`` around count-then-insert, so two processes can
never both take the last attempt of a budget.

An attempt is *reserved* before the expensive check (a password hash) and can be *refunded*
afterwards (a successful login), so a burst of parallel requests gets no more than the budget.

Keys are opaque strings; callers hash what they hold (a username, an address), so the file
stores no user names.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import sqlite3
import time
from pathlib import Path

BUSY_TIMEOUT_S = 10
PRUNE_EVERY_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    at REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_key_at ON attempts (key, at);
CREATE INDEX IF NOT EXISTS attempts_expires ON attempts (expires);
"""


@dataclasses.dataclass(frozen=True)
class Limit:
    """At most ``attempts`` per ``window_s`` seconds (sliding window) for one key."""

    attempts: int
    window_s: float

    def __post_init__(self):
        if self.attempts < 1 or self.window_s <= 0:
            raise ValueError(f"a limit needs at least 1 attempt in a positive window, not {self}")


class Throttled(Exception):
    """A budget is spent; ``retry_after`` is whole seconds until one attempt frees up."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many attempts; retry in {retry_after} s")
        self.retry_after = retry_after


def key(kind: str, value: str) -> str:
    """An opaque key for ``kind`` ("account", "address", ...) and a value (case-folded, hashed)."""
    digest = hashlib.sha256(value.casefold().encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{kind}:{digest}"


class Throttle:
    """Sliding-window attempt counters in ``path``. Safe across threads and processes."""

    def __init__(self, path: Path, clock=time.time):
        self.path = Path(path)
        self.clock = clock
        self._ready = False
        self._pruned = 0.0

    def _connect(self) -> sqlite3.Connection:
        # One short-lived connection per call: cheap, fork-safe (gunicorn) and thread-safe (waitress).
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        if not self._ready:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
            self._ready = True
        return conn

    def reserve(self, budgets: dict[str, Limit]) -> list[int]:
        """Take one attempt from every budget (key -> limit) at once, or none and raise :class:`Throttled`.

        Returns row ids to pass to :meth:`refund` if the attempt turns out not to count.
        """
        now = self.clock()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")  # the write lock first: count and insert are one step for all processes
            try:
                wait = 0.0
                for name, limit in budgets.items():
                    rows = conn.execute("SELECT at FROM attempts WHERE key = ? AND at > ? ORDER BY at DESC LIMIT ?",
                                        (name, now - limit.window_s, limit.attempts)).fetchall()
                    if len(rows) >= limit.attempts:  # the oldest of the last `attempts` frees the next slot
                        wait = max(wait, rows[-1][0] + limit.window_s - now)
                if wait > 0:
                    conn.execute("COMMIT")
                    raise Throttled(max(1, math.ceil(wait)))
                ids = [conn.execute("INSERT INTO attempts (key, at, expires) VALUES (?, ?, ?)",
                                    (name, now, now + limit.window_s)).lastrowid for name, limit in budgets.items()]
                if now - self._pruned > PRUNE_EVERY_S:
                    conn.execute("DELETE FROM attempts WHERE expires < ?", (now,))
                    self._pruned = now
                conn.execute("COMMIT")
                return ids
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    def refund(self, ids: list[int]) -> None:
        """Give back attempts taken by :meth:`reserve` (e.g. the password was right)."""
        if not ids:
            return
        conn = self._connect()
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("DELETE FROM attempts WHERE id = ?", [(i,) for i in ids])
        finally:
            conn.close()

    def used(self, name: str, limit: Limit) -> int:
        """Attempts counted against ``name`` in the current window."""
        conn = self._connect()
        try:
            return conn.execute("SELECT COUNT(*) FROM attempts WHERE key = ? AND at > ?",
                                (name, self.clock() - limit.window_s)).fetchone()[0]
        finally:
            conn.close()

    def clear(self) -> None:
        conn = self._connect()
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM attempts")
        finally:
            conn.close()
