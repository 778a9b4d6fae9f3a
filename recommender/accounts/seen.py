"""Which papers a user was shown (feed, digest, Atom, API clients) and which they opened.

One row per (user, paper), in a ``WITHOUT ROWID`` table keyed by ``(user_id, paper_id)``: the rows of one
user are contiguous, so "this user's seen set" is one range read of the primary key and needs no other
index. A row is only ever upgraded (shown -> opened) and its time moves forward; it is never downgraded.
Measured at 50,000 rows: 27 bytes a row on disk as written, 24 after VACUUM (``benchmarks/bench_seen_bytes.py``),
so a heavy reader's 30,000 rows a year take under 1 MB.

Retention: rows older than ``seen_retention_days`` are deleted, a few hundred at a time, for one user at
the start of each of their visits (:meth:`UserStore.record_visit` calls :func:`prune`), and for every user
by ``paperfeed train`` (:func:`prune_all`). A paper not shown for that long counts as unseen again.

The digest (:mod:`recommender.delivery.digest`) leaves out every paper a user was shown or opened, and
records what it sent with ``via="digest"`` in the transaction that records the send.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

SHOWN, OPENED = 1, 2
STATES = {"shown": SHOWN, "opened": OPENED}
STATE_NAMES = {v: k for k, v in STATES.items()}
VIA = {"feed": 1, "digest": 2, "atom": 3, "page": 4, "api": 5}
PRUNE_BATCH = 500  # rows one opportunistic prune deletes at most (a page view stays cheap)

SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper_id TEXT NOT NULL,
    state INTEGER NOT NULL,  -- 1 shown, 2 opened (see recommender.accounts.seen)
    via INTEGER NOT NULL,    -- 1 feed, 2 digest, 3 atom, 4 paper page, 5 API
    at INTEGER NOT NULL,     -- unix seconds of the last mark
    PRIMARY KEY (user_id, paper_id)
) WITHOUT ROWID;
"""

# Upgrade only: a shown mark never turns "opened" back into "shown" (the state and its via stay).
_UPSERT = ("INSERT INTO seen (user_id, paper_id, state, via, at) VALUES (?, ?, ?, ?, ?) "
           "ON CONFLICT(user_id, paper_id) DO UPDATE SET "
           "via = CASE WHEN excluded.state >= seen.state THEN excluded.via ELSE seen.via END, "
           "state = max(seen.state, excluded.state), at = max(seen.at, excluded.at)")


def mark(store, user_id: int, ids: Iterable[str], state: int = SHOWN, via: str = "feed",
         now: float | None = None) -> int:
    """Record ``ids`` as shown (or opened) for one user, in one transaction; returns how many ids.

    Parameters
    ----------
    store : UserStore
    ids : paper ids, already validated by the caller (the web edge checks their form)
    state : :data:`SHOWN` or :data:`OPENED`
    via : a key of :data:`VIA`: where the paper was shown
    """
    ids = list(dict.fromkeys(ids))
    if ids:
        with store.conn:
            store.conn.execute("BEGIN IMMEDIATE")
            upsert(store.conn, user_id, ids, state, via, now)
    return len(ids)


def upsert(conn, user_id: int, ids: Iterable[str], state: int, via: str, now: float | None = None) -> None:
    """The marks of :func:`mark`, inside a transaction the caller holds (the digest records a send and
    its papers' marks together)."""
    if state not in STATE_NAMES or via not in VIA:
        raise ValueError(f"state must be 1 or 2 and via one of {', '.join(VIA)}")
    at = int(time.time() if now is None else now)
    conn.executemany(_UPSERT, [(user_id, pid, state, VIA[via], at) for pid in dict.fromkeys(ids)])


def seen_ids(store, user_id: int, before: float | None = None) -> frozenset[str]:
    """The papers this user was shown or opened (marked before ``before``, if given)."""
    if before is None:
        rows = store.conn.execute("SELECT paper_id FROM seen WHERE user_id = ?", (user_id,))
    else:
        rows = store.conn.execute("SELECT paper_id FROM seen WHERE user_id = ? AND at < ?", (user_id, int(before)))
    return frozenset(r[0] for r in rows)


def states(store, user_id: int, ids: Iterable[str]) -> dict[str, int]:
    """``{paper id: state}`` for those of ``ids`` this user was shown or opened (O(len(ids)) key lookups)."""
    ids = list(dict.fromkeys(ids))
    out: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for pid, state in store.conn.execute(
                f"SELECT paper_id, state FROM seen WHERE user_id = ? AND paper_id IN ({marks})", (user_id, *chunk)):
            out[pid] = state
    return out


def count(store, user_id: int) -> int:
    return store.conn.execute("SELECT count(*) FROM seen WHERE user_id = ?", (user_id,)).fetchone()[0]


def prune(store, user_id: int, retention_s: float, now: float | None = None, limit: int = PRUNE_BATCH) -> int:
    """Delete up to ``limit`` of one user's rows older than ``retention_s``; returns how many went."""
    cutoff = int((time.time() if now is None else now) - retention_s)
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        return store.conn.execute(
            "DELETE FROM seen WHERE user_id = ? AND paper_id IN "
            "(SELECT paper_id FROM seen WHERE user_id = ? AND at < ? LIMIT ?)",
            (user_id, user_id, cutoff, limit)).rowcount


def prune_all(store, retention_s: float, now: float | None = None) -> int:
    """Delete every user's rows older than ``retention_s`` (``paperfeed train``), one user per transaction."""
    users = [r[0] for r in store.conn.execute("SELECT DISTINCT user_id FROM seen")]
    total = 0
    for uid in users:
        while (gone := prune(store, uid, retention_s, now, limit=10_000)):
            total += gone
    return total
