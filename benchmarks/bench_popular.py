"""The Popular feed's query at the size of a lab or an institute: time per page, on real paper ids.

    python benchmarks/bench_popular.py [--users 2000] [--tags-per-user 300] [--out docs/bench_popular.json]

A user store with U users, each tagging T real papers of the 10k sample (papers drawn with a skew, so some are
popular) at times spread over the past 60 days, is written straight into SQLite (the tag rows as
``UserStore.add_tags`` writes them). Then :func:`recommender.accounts.popular.popular` is timed for each window,
first page and page 10, median of 20 runs: counted afresh (``popular()``), and from the web app's warm
:class:`PopularCache` (recounted only when tags change, or each minute). Target: a page in well under the 30 ms
p50 a web request has.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recommender.accounts.popular import PopularCache, popular  # noqa: E402
from recommender.accounts.users import UserStore  # noqa: E402
from recommender.corpus.ingest import import_snapshots  # noqa: E402
from recommender.corpus.store import PaperStore  # noqa: E402

SHARED = Path(os.environ.get("PAPERFEED_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "arxiv" / "corpus" / "arxiv-metadata-2025-2026-sample10k.jsonl.gz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--tags-per-user", type=int, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench_popular.json")
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="paperfeed-popular-") as tmp:
        with PaperStore(Path(tmp) / "papers.sqlite") as store:
            import_snapshots(store, [CORPUS])
            ids = sorted(p.id for p in store.iter_papers())
            now = time.time()
            with UserStore(Path(tmp) / "users.sqlite") as users:
                for u in range(args.users):
                    users.add_user(f"reader{u}", "x")
                uids = [users.get_user(f"reader{u}").id for u in range(args.users)]
                rows = []
                for uid in uids:
                    chosen = {ids[min(int(rng.paretovariate(1.2)) - 1, len(ids) - 1) if rng.random() < 0.3
                                  else rng.randrange(len(ids))] for _ in range(args.tags_per_user)}
                    rows += [(uid, "reading", pid, now - rng.uniform(0, 60 * 86400)) for pid in chosen]
                with users.conn:
                    users.conn.executemany("INSERT OR IGNORE INTO tags (user_id, tag, paper_id, added_at) "
                                           "VALUES (?, ?, ?, ?)", rows)
                results = {}
                for window in ("day", "week", "month"):
                    for page in (1, 10):
                        times = []
                        for _ in range(20):
                            start = time.perf_counter()
                            got = popular(users, store, window, n=25, offset=(page - 1) * 25, now=now)
                            times.append(time.perf_counter() - start)
                        cache = PopularCache()
                        popular(users, store, window, n=25, now=now, cache=cache)  # the one recount
                        warm = []
                        for _ in range(20):
                            start = time.perf_counter()
                            popular(users, store, window, n=25, offset=(page - 1) * 25, now=now, cache=cache)
                            warm.append(time.perf_counter() - start)
                        results[f"{window} page {page}"] = {"median_ms": round(statistics.median(times) * 1000, 2),
                                                            "cached_median_ms": round(statistics.median(warm) * 1000, 2),
                                                            "qualifying_papers": got.total}
    record = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
              "users": args.users, "tag_rows": len(rows), "results": results,
              "command": f"python benchmarks/bench_popular.py --users {args.users} --tags-per-user {args.tags_per_user}"}
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
