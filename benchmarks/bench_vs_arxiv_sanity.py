"""Paperfeed against the arxiv-sanity-lite way, on the same data and machine, at several corpus sizes.

Usage:
  python benchmarks/bench_vs_arxiv_sanity.py [--sizes sample,50000,full] [--workdir /tmp/paperfeed-vs-lite]
      [--baseline-requests 25] [--paperfeed-per-baseline 5] [--out-dir docs]

Sizes: ``sample`` is the 10k sample, ``full`` the whole 2025-2026 corpus, an integer N the
first N lines of the full corpus. Each is first decompressed to plain JSON lines in the
workdir (never the repo), so both systems read the same bytes and import times compare
across sizes. Per size:
- jobs, each its own process with peak RSS from ``os.wait4``, alternating systems:
  Paperfeed import, lite ingest, lite compute, Paperfeed compute; then ``paperfeed train``
  (lite has no batch training: it fits its SVM inside every ranked request);
- one user with 2 tags of 10 papers (bench_pipeline's ``make_users``), given to both;
- both HTTP servers (waitress) on 127.0.0.1, requests one at a time and interleaved: per
  round and endpoint, K Paperfeed requests then one lite request (order flipped every
  round), so load from other jobs on a shared machine hits both alike and the ratios are fair.
Writes ``<out-dir>/bench_vs_arxiv_sanity.json`` and ``.png``, and the Markdown section
to ``<workdir>/bench_vs_arxiv_sanity.md`` (also printed), for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import lzma
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path
from urllib.parse import quote_plus

import numpy as np

import arxiv_sanity_way as lite
import bench_vs_arxiv_sanity_report as report
from bench_http import QUERIES, Client, free_port, memory_mb, start_server, token_for
from bench_pipeline import REPO, SHARED, make_users, measure, run_job

from recommender.features.index import FeatureIndex  # noqa: E402  (bench_pipeline put the repo on sys.path)
from recommender.settings import load_settings  # noqa: E402
from recommender.accounts.users import UserStore  # noqa: E402

CORPUS = SHARED / "arxiv/corpus"
USER, PASSWORD = "bench000", "bench passphrase"  # what make_users creates
SEARCHES = [q for q in QUERIES if not q[0].isdigit()]  # an arXiv id is a dict lookup in Paperfeed: not comparable
LIMIT = 25


def corpus_file(size: str, work: Path) -> Path:
    """Plain JSON lines for one size, decompressed once and cached in the workdir."""
    full = work / "full.jsonl"
    if size == "sample":
        out = work / "sample.jsonl"
        if not out.exists():
            with gzip.open(CORPUS / "arxiv-metadata-2025-2026-sample10k.jsonl.gz", "rb") as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
        return out
    if not full.exists():
        with lzma.open(CORPUS / "arxiv-metadata-2025-2026.jsonl.xz", "rb") as src, open(full, "wb") as dst:
            shutil.copyfileobj(src, dst)
    if size == "full":
        return full
    out = work / f"first{int(size)}.jsonl"
    if not out.exists():
        with open(full, "rb") as src, open(out, "wb") as dst:
            for _, line in zip(range(int(size)), src):
                dst.write(line)
    return out


def run_lite_job(argv: list[str]) -> dict:
    """One baseline job as its own process, measured like Paperfeed's jobs."""
    return measure([sys.executable, str(Path(lite.__file__)), *argv], f"baseline {argv[0]} failed")


def run_jobs(corpus: Path, pf_dirs: list[str], lite_dir: Path) -> dict:
    """Alternate the systems so neither always runs first (page cache, other jobs' load)."""
    pf, base = {}, {}
    pf["import"] = run_job(["import", str(corpus)], pf_dirs)
    pf["import"]["output"].pop("bad_lines", None)
    base["import"] = run_lite_job(["ingest", "--dir", str(lite_dir), str(corpus)])
    base["compute"] = run_lite_job(["compute", "--dir", str(lite_dir)])
    pf["compute"] = run_job(["compute"], pf_dirs)
    return {"paperfeed": pf, "arxiv_sanity": base}


def make_library(settings, lite_dir: Path) -> dict[str, list[str]]:
    """One user with 2 tags of 10 papers in Paperfeed; the very same library for lite."""
    make_users(settings, FeatureIndex.load(settings.models_dir), 1)
    with UserStore(settings.users_path) as users:
        tags = users.tags(users.get_user(USER).id)
    lite.write_tags(lite_dir, USER, tags)
    return tags


def wait_ready(proc: subprocess.Popen, port: int, path: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if Client(port).request("GET", path)[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("baseline server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def request_plan(tags: dict, ids: list[str], n: int, k: int) -> dict:
    """Per endpoint: the Paperfeed paths (n*k) and the lite paths (n, a subset of the same inputs)."""
    rng = random.Random(0)
    pids = [rng.choice(ids) for _ in range(n * k)]
    queries = [SEARCHES[i % len(SEARCHES)] for i in range(n * k)]
    both = "&".join(f"tag={quote_plus(t)}" for t in tags)
    lite_feed = f"/api/feed?user={USER}&tags={quote_plus(','.join(tags))}&limit={LIMIT}"
    return {
        "feed": {"paperfeed": [f"/api/feed?limit={LIMIT}"] * (n * k), "arxiv_sanity": [lite_feed] * n},
        "feed_live": {"paperfeed": [f"/api/feed?{both}&limit={LIMIT}"] * (n * k), "arxiv_sanity": []},
        "similar": {"paperfeed": [f"/api/papers/{p}/similar?limit={LIMIT}" for p in pids],
                    "arxiv_sanity": [f"/api/similar/{p}?limit={LIMIT}" for p in pids[::k]]},
        "search": {"paperfeed": [f"/api/search?q={quote_plus(q)}&limit={LIMIT}" for q in queries],
                   "arxiv_sanity": [f"/api/search?q={quote_plus(q)}&limit={LIMIT}" for q in queries[::k]]},
    }


def timed(client: Client, path: str, endpoint: str, sample: dict) -> None:
    """One request; a response counts as an error unless it is 200 with papers (and, for a feed, ranked)."""
    start = time.perf_counter()
    status, body = client.request("GET", path)
    sample["ms"].append((time.perf_counter() - start) * 1000)
    data = json.loads(body) if status == 200 else {}
    ok = bool(data.get("papers")) and (not endpoint.startswith("feed") or data.get("mode", "rec") == "rec")
    sample["errors"] += not ok
    if "timing" in data:  # lite reports where its time went: reloading features.p, fitting the SVM
        for key in ("load_s", "train_s"):
            sample.setdefault(key, []).append(data["timing"][key] * 1000)


def interleaved(clients: dict, plan: dict, n: int, k: int) -> dict:
    samples = {ep: {s: {"ms": [], "errors": 0} for s in clients} for ep in plan}
    for ep, paths in plan.items():  # warm-up, not counted: first-request lazy loads
        for system, client in clients.items():
            if paths[system]:
                timed(client, paths[system][0], ep, {"ms": [], "errors": 0})
    for i in range(n):
        for ep, paths in plan.items():
            turns = [("paperfeed", range(i * k, (i + 1) * k)), ("arxiv_sanity", range(i, i + 1))]
            for system, rows in turns[::-1] if i % 2 else turns:
                for j in rows if paths[system] else ():
                    timed(clients[system], paths[system][j], ep, samples[ep][system])
    return {ep: {s: summarize(v) for s, v in per.items() if v["ms"]} for ep, per in samples.items()}


def summarize(sample: dict) -> dict:
    def pct(values, q):
        return round(float(np.percentile(values, q)), 2)

    out = {"p50_ms": pct(sample["ms"], 50), "p99_ms": pct(sample["ms"], 99), "n": len(sample["ms"]),
           "errors": sample["errors"]}
    for key in ("load_s", "train_s"):
        if key in sample:
            out[f"{key[:-2]}_p50_ms"] = pct(sample[key], 50)
    return out


def serve_and_measure(work: Path, settings, lite_dir: Path, tags: dict, args) -> dict:
    ids = FeatureIndex.load(settings.models_dir).ids
    pf_port, lite_port = free_port(), free_port()
    pf = start_server(types.SimpleNamespace(threads=8, workdir=str(work)), pf_port)
    base = subprocess.Popen([sys.executable, str(Path(lite.__file__)), "serve", "--dir", str(lite_dir),
                             "--port", str(lite_port), "--threads", "8"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(base, lite_port, "/api/health")
        clients = {"paperfeed": Client(pf_port, token_for(pf_port, USER, PASSWORD)), "arxiv_sanity": Client(lite_port)}
        for c in clients.values():
            c.conn.timeout = 600  # a lite request at 131k takes seconds
        latency = interleaved(clients, request_plan(tags, list(ids), args.baseline_requests,
                                                    args.paperfeed_per_baseline), args.baseline_requests,
                              args.paperfeed_per_baseline)
        memory = {"paperfeed": memory_mb(pf.pid), "arxiv_sanity": memory_mb(base.pid)}
    finally:
        stop(pf)
        stop(base)
    return {"latency": latency, "server_memory_mb": memory}


def run_size(size: str, args) -> dict:
    work = Path(args.workdir) / f"size-{size}"
    shutil.rmtree(work, ignore_errors=True)
    corpus = corpus_file(size, Path(args.workdir))
    settings = load_settings(environ={}, data_dir=work / "data", models_dir=work / "models")
    pf_dirs = ["--data-dir", str(settings.data_dir), "--models-dir", str(settings.models_dir)]
    lite_dir = work / "lite"
    load_before = os.getloadavg()
    start = time.perf_counter()
    jobs = run_jobs(corpus, pf_dirs, lite_dir)
    tags = make_library(settings, lite_dir)
    jobs["paperfeed"]["train"] = run_job(["train"], pf_dirs)
    result = {"size": size, "papers": jobs["paperfeed"]["import"]["output"]["added"], "jobs": jobs,
              "library": {t: len(ids) for t, ids in tags.items()}, "paperfeed_settings": tuning(load_settings(data_dir=work / "data"))}
    result.update(serve_and_measure(work, settings, lite_dir, tags, args))
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["loadavg_1m"] = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def tuning(settings) -> dict:
    """Paperfeed's feature and model settings as its jobs see them (environment included): they drive the costs."""
    return {k: v for k, v in dataclasses.asdict(settings).items()
            if isinstance(v, (int, float)) and not k.startswith("fetch")}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = Path("/proc/meminfo").read_text().split()[1]
    import sklearn
    return {"cpu": cpu, "nproc": os.cpu_count(), "ram_gib": round(int(mem) / 2**20),
            "python": platform.python_version(),
            "scikit_learn": sklearn.__version__, "numpy": np.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="sample,50000,full",
                        help="comma-separated: sample (10k), full, or N (the first N lines of the full corpus)")
    parser.add_argument("--workdir", default="/tmp/paperfeed-vs-lite")
    parser.add_argument("--baseline-requests", type=int, default=25, help="lite requests per endpoint and size")
    parser.add_argument("--paperfeed-per-baseline", type=int, default=5, help="Paperfeed requests per lite request")
    parser.add_argument("--out-dir", default=str(REPO / "docs"))
    parser.add_argument("--keep", action="store_true", help="keep each size's stores and artifacts")
    parser.add_argument("--note", default="", help="a sentence for the report, e.g. that the machine was shared")
    args = parser.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = {"command": shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
               "machine": machine(), "note": args.note, "baseline_requests": args.baseline_requests,
               "paperfeed_per_baseline": args.paperfeed_per_baseline, "sizes": []}
    for size in args.sizes.split(","):
        results["sizes"].append(run_size(size.strip(), args))
        print(json.dumps(results["sizes"][-1]["latency"]), file=sys.stderr, flush=True)
    results["runtime_s"] = round(time.perf_counter() - start, 1)
    report.add_ratios(results)
    out = Path(args.out_dir)
    (out / "bench_vs_arxiv_sanity.json").write_text(json.dumps(results, indent=2) + "\n")
    report.plot(results, out / "bench_vs_arxiv_sanity.png")
    section = report.markdown(results)
    (Path(args.workdir) / "bench_vs_arxiv_sanity.md").write_text(section)
    print(section)


if __name__ == "__main__":
    main()
