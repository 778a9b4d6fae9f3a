"""Memory of N gunicorn workers serving one feature index: RSS and PSS per process.

Usage:
  paperfeed import <snapshot> --data-dir D/data --models-dir D/models && paperfeed compute ...  # once
  python benchmarks/bench_serving_memory.py --data-dir D/data --models-dir D/models [--workers 4]
      [--user NAME --password PW] [--requests 40] [--in-memory] [--out result.json]

Starts ``gunicorn -w N 'webapp:create_app()'`` on 127.0.0.1 (production settings, a throwaway secret key),
sends feed, similar and search requests until every worker has answered ``--requests`` of them (with
``--user``, logged in: the feed is then the user's model ranked over the matrix; without, the public
endpoints), then reads ``/proc/<pid>/smaps_rollup`` of the master and each worker, and ``/proc/<pid>/smaps``
for the mappings of the generation's files. PSS counts a shared page once across the processes that map it
(each pays 1/n), so the sum of PSS is what the server really holds; the sum of RSS counts shared pages
once per process. With ``--in-memory`` it runs again with ``MAP_FEATURE_INDEX = False`` (each worker reads
the index into its own memory, as before the mapped layout) and reports both. Also reported: the time
from start to the first answer (``/api/csrf``) and to the first answer that needed the index (a search:
the index loads in a worker on its first request). Bounded: a fixed number of requests, then it stops.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import QUERIES, REPO, Client, free_port, token_for  # noqa: E402

sys.path.insert(0, str(REPO))
from recommender.features import rowids  # noqa: E402
from recommender.storage.artifacts import Generations  # noqa: E402

ROLLUP_FIELDS = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Private_Clean", "Private_Dirty", "Anonymous")


def smaps_rollup(pid: int) -> dict[str, int]:
    """``/proc/<pid>/smaps_rollup``: every kB field (Rss, Pss, Pss_Anon, Anonymous...)."""
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    return {f[0].rstrip(":"): int(f[1]) for f in (line.split() for line in lines) if len(f) >= 2 and f[1].isdigit()}


def mapped_files(pid: int, folder: Path) -> dict[str, dict[str, int]]:
    """Rss and Pss (kB) of the mappings of each file in ``folder``, by file name, from ``/proc/<pid>/smaps``."""
    out: dict[str, dict[str, int]] = {}
    current = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header line
            path = fields[5] if len(fields) > 5 else ""
            current = out.setdefault(Path(path).name, {"Rss": 0, "Pss": 0}) if path.startswith(f"{folder}/") else None
        elif current is not None and fields and fields[0] in ("Rss:", "Pss:"):
            current[fields[0][:-1]] += int(fields[1])
    return out


def process_memory(pid: int, folder: Path) -> dict:
    rollup = smaps_rollup(pid)
    files = mapped_files(pid, folder)
    return {"pid": pid, **{f"{k.lower()}_mb": round(rollup.get(k, 0) / 1024, 1) for k in ROLLUP_FIELDS},
            "index_files_rss_mb": round(sum(f["Rss"] for f in files.values()) / 1024, 1),
            "index_files_pss_mb": round(sum(f["Pss"] for f in files.values()) / 1024, 1)}


def worker_pids(log: Path) -> dict[int, int]:
    """Requests answered per worker pid, from the access log (``%(p)s`` is ``<pid>``)."""
    counts: dict[int, int] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            pid = int(line.split()[0].strip("<>"))
            counts[pid] = counts.get(pid, 0) + 1
    return counts


def wait_for(port: int, path: str, proc: subprocess.Popen, errors: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited:\n" + errors.read_text()[-3000:])
        try:
            if Client(port).request("GET", path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"no answer to {path} within {timeout} s:\n" + errors.read_text()[-3000:])


def warm(port: int, token: str | None, paths: list[str], log: Path, workers: int, per_worker: int) -> dict[int, int]:
    """Requests from 2 x ``workers`` concurrent clients until each worker has answered ``per_worker``."""
    rng = random.Random(0)
    deadline = time.monotonic() + 600
    while True:
        counts = worker_pids(log)
        if len(counts) >= workers and min(counts.values()) >= per_worker:
            return counts
        if time.monotonic() > deadline:
            raise SystemExit(f"workers did not all answer {per_worker} requests: {counts}")
        batch = [rng.choice(paths) for _ in range(8 * workers)]

        def send(chunk: list[str]) -> None:
            client = Client(port, token)  # a new connection per client spreads them over the workers
            for path in chunk:
                status, body = client.request("GET", path)
                if status != 200:
                    raise SystemExit(f"GET {path}: {status} {body[:200]!r}")

        threads = [threading.Thread(target=send, args=(batch[i::2 * workers],)) for i in range(2 * workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.3)  # let the access log catch up


def run(args, mapped: bool) -> dict:
    gens = Generations(args.models_dir)
    name = gens.current()
    if name is None:
        raise SystemExit(f"no feature generation in {args.models_dir}: run `paperfeed compute` first")
    folder = gens.path(name)
    ids, _ = rowids.load(folder, mapped=False)  # read, not mapped: this process must not share the pages
    rng = random.Random(1)
    from urllib.parse import quote

    paths = ([f"/api/papers/{ids[rng.randrange(len(ids))]}/similar" for _ in range(50)]
             + [f"/api/search?q={quote(q)}" for q in QUERIES] + ["/api/feed?limit=25"] * 10)
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    log, errors = work / "access.log", work / "server.log"
    env = {**os.environ, "PAPERFEED_DATA_DIR": str(args.data_dir), "PAPERFEED_MODELS_DIR": str(args.models_dir),
           "PAPERFEED_SECRET_KEY": secrets.token_hex(32), "PAPERFEED_N_JOBS": "1", "PYTHONPATH": str(REPO)}
    app = "webapp:create_app()" if mapped else "webapp:create_app({'MAP_FEATURE_INDEX': False})"
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
           "--access-logfile", str(log), "--access-logformat", "%(p)s %(s)s %(U)s", app]
    started = time.monotonic()
    with open(errors, "w") as err:
        server = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(port, "/api/csrf", server, errors)
        first = time.monotonic() - started
        wait_for(port, "/api/search?q=neural", server, errors)
        first_index = time.monotonic() - started
        token = token_for(port, args.user, args.password) if args.user else None
        counts = warm(port, token, paths, log, args.workers, args.requests)
        workers = [process_memory(pid, folder) for pid in sorted(counts)]
        master = process_memory(server.pid, folder)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    everyone = [master, *workers]
    return {"mapped": mapped, "generation": name, "papers": len(ids), "workers": args.workers,
            "logged_in": bool(args.user), "requests_per_worker": counts,
            "first_response_s": round(first, 2), "first_index_response_s": round(first_index, 2),
            "master": master, "worker_memory": workers,
            "total_rss_mb": round(sum(p["rss_mb"] for p in everyone), 1),
            "total_pss_mb": round(sum(p["pss_mb"] for p in everyone), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=40, help="index requests each worker answers before measuring")
    parser.add_argument("--user", help="log in as this user (the feed is then their model's ranking)")
    parser.add_argument("--password", help="the user's password")
    parser.add_argument("--in-memory", action="store_true", help="also measure workers that read the index into memory")
    parser.add_argument("--out", type=Path, help="write the JSON report here too")
    args = parser.parse_args()
    if bool(args.user) != bool(args.password):
        parser.error("--user and --password go together")
    if not Path("/proc/self/smaps_rollup").exists():
        raise SystemExit("needs /proc/<pid>/smaps_rollup (Linux 4.14 or later)")
    report = {"mapped": run(args, mapped=True)}
    if args.in_memory:
        report["in_memory"] = run(args, mapped=False)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
