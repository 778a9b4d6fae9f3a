"""Bytes on disk per row of the ``seen`` table (README, settings): 50,000 rows for 5 users, new-style ids.

Run: ``PYTHONPATH=. python benchmarks/bench_seen_bytes.py``. Prints the file growth per row as written and after VACUUM.
"""
from __future__ import annotations

import random
import sqlite3
import tempfile
from pathlib import Path

from recommender.accounts.users import UserStore

ROWS, USERS = 50_000, 5


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "users.sqlite"
        with UserStore(path) as users:
            uids = [users.add_user(f"reader{i}", "x").id for i in range(USERS)]
        empty = _size(path)
        rng = random.Random(0)
        with UserStore(path) as users:
            for n, uid in enumerate(uids):
                ids = [f"25{rng.randrange(1, 13):02d}.{rng.randrange(100000):05d}" for _ in range(ROWS // USERS * 2)]
                ids = list(dict.fromkeys(ids))[:ROWS // USERS]
                for start in range(0, len(ids), 25):  # a feed page at a time, as the web writes them
                    users.mark_shown(uid, ids[start:start + 25], now=1_760_000_000 + start)
                users.mark_opened(uid, ids[::10])
            rows = users.conn.execute("SELECT count(*) FROM seen").fetchone()[0]
        grown = _size(path, vacuum=False)
        full = _size(path)
        print(f"{rows} rows: {(grown - empty) / rows:.1f} bytes a row as written (pages split by random ids), "
              f"{(full - empty) / rows:.1f} after VACUUM")


def _size(path: Path, vacuum: bool = True) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if vacuum:
        conn.execute("VACUUM")
    conn.close()
    return path.stat().st_size


if __name__ == "__main__":
    main()
