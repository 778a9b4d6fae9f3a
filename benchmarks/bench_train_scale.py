"""How long does `train` take for many users, here and on a Dask cluster, and what would 8 workers do? (issue 12)

Usage:
  python benchmarks/bench_train_scale.py --data-dir D --models-dir M [--users 10000] [--workers 2]
         [--seed 0] [--work DIR] [--no-local] [--out FILE.json]

``D``/``M`` hold a paper store and a computed generation (e.g. ``paperfeed import`` + ``paperfeed compute`` of
a corpus, or ``benchmarks/bench_pipeline.py``'s workdir); they are only read. The run works in ``--work``
(default: a temp directory): a fresh users database and ``models/users``, with ``models/features`` a
symlink to ``M``'s.

Synthetic readers from real co-author clusters (seeded by ``--seed``, so a rerun writes the same users):
for each user, a seed author is drawn uniformly from the authors with at least 2 papers in the generation
(exact name strings as arXiv lists them). The library is the seed's papers, then the papers of their
co-authors, most frequent co-author first, up to 100 papers. It is split by primary category: the 3
largest categories become tags named after them, the rest (if any) one more tag ``other``; so up to 4
tags, and up to 5 models with the whole library. Users are written with the normal ``UserStore`` API.

Then, from no models at all each time (``train --all``):
- local: the normal train path in this process (``service.train_current``, ``PAPERFEED_N_JOBS`` threads);
- cluster: the same through ``recommender.learning.distributed`` (what ``train --scheduler`` runs) on a
  ``LocalCluster`` of ``--workers`` worker processes with one thread each, on this machine.
The cluster's per-task cost is each task's compute time on its worker (Dask's task stream): mean, p50,
p95 (a worker's first task includes its one load of the features). Overhead is everything else:
``wall - sum(task costs) / workers`` (the client reading users and submitting, scheduling, results coming
back, the tail when workers run out of work).

The 8-worker figure is a PROJECTION, not a measurement: ``overhead + sum(task costs) / 8``. It assumes
the overhead stays what it was here and each task costs the same on 8 workers (no shared-disk,
memory-bandwidth or scheduler contention; each worker process loads the features once).

Validated at small scale only (the 10k sample, 50 users: see the commit message); the 10,000-user run on
the full corpus is for a bigger machine.
Output: JSON on stdout and in ``--out``.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recommender.accounts.users import UserStore  # noqa: E402
from recommender.corpus.store import PaperStore  # noqa: E402
from recommender.features.index import FeatureIndex  # noqa: E402
from recommender.learning import distributed, service  # noqa: E402
from recommender.settings import load_settings  # noqa: E402

LIBRARY_MAX, TAGS_MAX = 100, 4


def coauthor_libraries(papers: list[tuple[str, tuple[str, ...], str]], n_users: int, seed: int) -> list[dict]:
    """``n_users`` libraries ``{tag: [paper ids]}`` drawn from co-author clusters (see the module docstring).
    ``papers`` is ``(id, authors, primary category)`` in a fixed order."""
    by_author: dict[str, list[int]] = collections.defaultdict(list)
    for i, (_, authors, _) in enumerate(papers):
        for name in dict.fromkeys(authors):
            by_author[name].append(i)
    seeds = sorted(name for name, rows in by_author.items() if len(rows) >= 2)
    if not seeds:
        raise SystemExit("no author has 2 papers in this generation: nothing to build libraries from")
    rng = random.Random(seed)
    return [_library(papers, by_author, rng.choice(seeds)) for _ in range(n_users)]


def _library(papers, by_author, author: str) -> dict[str, list[str]]:
    chosen = dict.fromkeys(by_author[author])
    coauthors = collections.Counter(name for row in by_author[author] for name in papers[row][1] if name != author)
    for name, _ in sorted(coauthors.items(), key=lambda item: (-item[1], item[0])):
        if len(chosen) >= LIBRARY_MAX:
            break
        chosen.update(dict.fromkeys(by_author[name]))
    rows = list(chosen)[:LIBRARY_MAX]
    by_category: dict[str, list[str]] = collections.defaultdict(list)
    for row in rows:
        by_category[papers[row][2]].append(papers[row][0])
    ranked = sorted(by_category.items(), key=lambda item: (-len(item[1]), item[0]))
    tags = dict(ranked[:TAGS_MAX - 1])
    rest = [pid for _, ids in ranked[TAGS_MAX - 1:] for pid in ids]
    if rest:
        tags["other"] = rest
    return tags


def read_papers(settings, index: FeatureIndex) -> list[tuple[str, tuple[str, ...], str]]:
    with PaperStore(settings.papers_path, readonly=True) as store:
        found = [(p.id, tuple(p.authors), p.categories[0] if p.categories else "none")
                 for p in store.iter_papers() if p.id in index.row_of]
    return sorted(found)


def write_users(settings, libraries: list[dict]) -> dict:
    with UserStore(settings.users_path, settings.limits) as users:
        for u, tags in enumerate(libraries):
            user = users.add_user(f"reader{u:05d}", "x")  # never logs in: no password hash needed
            users.add_tag_sets(user.id, tags)
    sizes = [sum(len(ids) for ids in tags.values()) for tags in libraries]
    return {"users": len(libraries), "papers_per_user_mean": round(float(np.mean(sizes)), 1),
            "tags_per_user_mean": round(float(np.mean([len(t) for t in libraries])), 2)}


def clear_models(settings) -> None:
    shutil.rmtree(settings.models_dir / "users", ignore_errors=True)
    (settings.models_dir / "users").mkdir()


def measure_local(settings) -> dict:
    clear_models(settings)
    with UserStore(settings.users_path, settings.limits) as users:
        start = time.perf_counter()
        summary = service.train_current(settings, users, everyone=True)
        wall = time.perf_counter() - start
    return {"wall_s": round(wall, 2), "threads": settings.n_jobs, "trained": len(summary.trained),
            "empty": len(summary.empty), "users_per_s": round(len(summary.trained) / wall, 2)}


def measure_cluster(settings, workers: int) -> dict:
    from distributed import Client, LocalCluster, get_task_stream

    clear_models(settings)
    with (LocalCluster(n_workers=workers, processes=True, threads_per_worker=1, host="127.0.0.1",
                       dashboard_address=None) as cluster,
          Client(cluster.scheduler_address, set_as_default=False) as watcher,
          get_task_stream(client=watcher) as stream,
          UserStore(settings.users_path, settings.limits) as users):
        start = time.perf_counter()
        with distributed.trainer(settings, cluster.scheduler_address) as fit:  # what `train --scheduler` runs
            summary = service.train_current(settings, users, everyone=True, trainer=fit)
        wall = time.perf_counter() - start
    costs = np.array([ss["stop"] - ss["start"] for task in stream.data for ss in task["startstops"]
                      if ss["action"] == "compute" and "paperfeed-train" in str(task["key"])])
    overhead = wall - costs.sum() / workers
    return {"workers": workers, "threads_per_worker": 1, "wall_s": round(wall, 2), "trained": len(summary.trained),
            "tasks": len(costs), "per_task_s": _stats(costs), "overhead_s": round(overhead, 2),
            "sum_task_s": round(float(costs.sum()), 2), "users_per_s": round(len(summary.trained) / wall, 2)}


def _stats(values: np.ndarray) -> dict:
    if not len(values):
        return {"mean": None, "p50": None, "p95": None}
    return {"mean": round(float(values.mean()), 4), "p50": round(float(np.percentile(values, 50)), 4),
            "p95": round(float(np.percentile(values, 95)), 4)}


def projection(cluster: dict, workers: int = 8) -> dict:
    return {"label": f"PROJECTION to {workers} workers (not measured): overhead + sum(task costs) / {workers}",
            "workers": workers, "wall_s": round(cluster["overhead_s"] + cluster["sum_task_s"] / workers, 2),
            "assumes": "the overhead measured here stays fixed and each task costs the same on every worker "
                       "(no shared-disk, memory-bandwidth or scheduler contention)"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, type=Path, help="holds papers.sqlite")
    parser.add_argument("--models-dir", required=True, type=Path, help="holds features/ with a current generation")
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="run directory (default: a temp directory, removed afterwards)")
    parser.add_argument("--no-local", action="store_true", help="skip the local measurement")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-train-scale-")))
        if (work / "data" / "users.sqlite").exists():
            raise SystemExit(f"{work} already holds a users database: give an empty --work")
        (work / "data").mkdir(parents=True, exist_ok=True)
        (work / "models").mkdir(exist_ok=True)
        (work / "models" / "features").symlink_to(args.models_dir.resolve() / "features")
        source = load_settings(environ={}, data_dir=args.data_dir, models_dir=args.models_dir)
        settings = load_settings(data_dir=work / "data", models_dir=work / "models")  # PAPERFEED_* apply
        index = FeatureIndex.load(settings.models_dir)
        start = time.perf_counter()
        libraries = coauthor_libraries(read_papers(source, index), args.users, args.seed)
        result = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
                  "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                              "python": platform.python_version()},
                  "corpus": {"generation": index.generation, "papers": len(index), "columns": int(index.X.shape[1])},
                  "settings": {"max_negatives": settings.max_negatives,
                               "keep_recommendations": settings.keep_recommendations,
                               "n_jobs": settings.n_jobs},
                  "users": {**write_users(settings, libraries), "setup_s": round(time.perf_counter() - start, 2),
                            "seed": args.seed}}
        del index  # the measurements load their own, as `train` and the workers do
        if not args.no_local:
            result["local"] = measure_local(settings)
        result["cluster"] = measure_cluster(settings, args.workers)
        result["projection"] = projection(result["cluster"])
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
