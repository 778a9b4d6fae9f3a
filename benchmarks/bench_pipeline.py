"""Time and peak memory of import, compute and train, and latency of recommend/similar/search.

Usage:  python benchmarks/bench_pipeline.py [--corpus FILE] [--workdir DIR] [--users 20] [--tags 3]

Each job runs as its own process (the real ``paperfeed`` CLI); its peak RSS
comes from ``os.wait4``. Query latency is measured in-process from loaded
state, as a web worker would see it. Targets (from issue 2): import < 60 s,
compute < 180 s, a single-user retrain with 4 models < 1 s (issue 8), queries in milliseconds.
Results go to stdout as JSON and Markdown; paste them into docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recommender.learning import ranking, service  # noqa: E402
from recommender.accounts.passwords import hash_password  # noqa: E402
from recommender.features.index import FeatureIndex  # noqa: E402
from recommender.learning.models import load_user_model  # noqa: E402
from recommender.settings import load_settings  # noqa: E402
from recommender.accounts.users import UserStore  # noqa: E402

SHARED = Path(os.environ.get("PAPERFEED_SHARED", REPO.parent / "shared"))
QUERIES = ["diffusion models", "graph neural networks", "black hole accretion", "quantum error correction",
           "large language model reasoning", "reinforcement learning from human feedback", "2503.11893",
           "superconductivity in twisted bilayer graphene", "protein structure prediction", "federated learning privacy"]
TOPICS = ["diffusion image generation", "language model reasoning", "graph neural networks", "reinforcement learning",
          "quantum computing", "galaxy formation", "robot manipulation", "speech recognition"]


def measure(cmd: list[str], failure: str) -> dict:
    """Run one job as its own process: wall time, peak RSS (from os.wait4) and its JSON output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(failure)
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024), "output": json.loads(out)}


def run_job(argv: list[str], dirs: list[str]) -> dict:
    return measure([sys.executable, "-m", "jobs.cli", *argv, *dirs, "--json"], f"{argv[0]} failed")


def make_users(settings, index, n_users: int, tags: int = 2) -> None:
    """n users with ``tags`` tags of 10 papers each, drawn from search hits for real topics.

    Each user gets one model per tag plus one for the whole library.
    """
    rng = np.random.default_rng(0)
    with UserStore(settings.users_path) as users:
        for u in range(n_users):
            user = users.add_user(f"bench{u:03d}", hash_password("bench passphrase"))
            for t in rng.choice(len(TOPICS), tags, replace=False):
                ids, _ = ranking.search(index, TOPICS[t], n=60)
                users.add_tags(user.id, TOPICS[t].split()[0], list(rng.choice(ids, 10, replace=False)))


def percentiles(fn, args_list) -> dict:
    times = []
    for args in args_list:
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
            "n": len(times)}


def query_latency(settings) -> dict:
    start = time.perf_counter()
    index = FeatureIndex.load(settings.models_dir)
    load_s = time.perf_counter() - start
    rng = np.random.default_rng(1)
    with UserStore(settings.users_path) as users:
        people = users.list_users()
        libraries = {u.id: {p for ids in users.tags(u.id).values() for p in ids} for u in people}
    models = {u.id: load_user_model(settings.models_dir, u.id) for u in people}
    picks = [people[i % len(people)] for i in range(200)]

    def rec(user, filters):
        lib = libraries[user.id]
        service.recommend(index, models[user.id], lib, None, ranking.Filters(exclude=frozenset(lib)) if filters is None
                          else filters, n=25)

    month = ranking.Filters(since=dt.date(2026, 6, 1))
    ids = [index.ids[i] for i in rng.choice(len(index), 200, replace=False)]
    with UserStore(settings.users_path) as users:
        retrain = percentiles(lambda u: service.retrain_user(settings, index, users, u.id, everything=True),
                              [(u,) for u in people[:10]])

        def one_more_paper(user, k):  # the web app's case: one tag changed, so that tag and the library refit
            tag = sorted(users.tags(user.id))[0]
            users.add_tags(user.id, tag, [index.ids[-1 - k]])
            return service.retrain_user(settings, index, users, user.id)
        after_tag = percentiles(one_more_paper, [(u, k) for k, u in enumerate(people[:10])])
    return {
        "index_load_s": round(load_s, 2),
        "recommend_saved": percentiles(rec, [(u, None) for u in picks]),
        "recommend_matvec_last_month": percentiles(rec, [(u, month) for u in picks]),
        "similar": percentiles(lambda p: ranking.similar(index, p, n=25), [(p,) for p in ids]),
        "search": percentiles(lambda q: ranking.search(index, q, n=25), [(q,) for q in QUERIES * 20]),
        "retrain_one_user": retrain,
        "retrain_after_one_tag": after_tag,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(SHARED / "arxiv/corpus/arxiv-metadata-2025-2026.jsonl.xz"))
    parser.add_argument("--workdir", default="/tmp/paperfeed-bench")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--tags", type=int, default=3, help="tags per user (models per user: tags + 1)")
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    settings = load_settings(environ={}, data_dir=work / "data", models_dir=work / "models")
    dirs = ["--data-dir", str(settings.data_dir), "--models-dir", str(settings.models_dir)]
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}", "corpus": args.corpus}
    report["import"] = run_job(["import", args.corpus], dirs)
    report["reimport"] = run_job(["import", args.corpus], dirs)
    report["compute"] = run_job(["compute"], dirs)
    make_users(settings, FeatureIndex.load(settings.models_dir), args.users, args.tags)
    report["train"] = run_job(["train"], dirs)
    report["queries"] = query_latency(settings)
    for job in ("import", "reimport", "compute", "train"):
        report[job]["output"] = {k: v for k, v in report[job]["output"].items() if k != "bad_lines"}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
