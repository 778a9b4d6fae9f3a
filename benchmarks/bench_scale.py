"""The cost curve of docs/scaling.md: `paperfeed import` and `compute` at growing corpus sizes, with peak memory.

Usage:
  python benchmarks/scaled_corpus.py --papers 2700000 --out /tmp/scaled-2.7M.jsonl.gz   # once, ~9 min
  python benchmarks/bench_scale.py --corpus /tmp/scaled-2.7M.jsonl.gz --sizes 500000 1000000 2700000 \\
      --workdir /tmp/scale --out docs/bench_scale.json [--plot docs/scaling.png]

For each size N it takes the first N records of the scaled corpus (its dates end earlier for smaller N), then
runs, each as its own process under ``/usr/bin/time -v`` (wall time and peak resident memory):
``paperfeed import`` into ``<workdir>/<N>/data`` (skipped when the store already holds N papers) and
``paperfeed compute`` with ``PAPERFEED_N_JOBS`` (default 2) worker processes. Peak memory is the largest of the
job and its workers (``time -v`` reports the largest resident set of the process tree's members).
Results are merged into ``--out`` by size, so sizes can be run one at a time; ``--plot`` draws time and memory
against papers. The 131,757-paper point of the real corpus comes from benchmarks/bench_pipeline.py.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict, log: Path) -> dict:
    """Run ``cmd`` under GNU time; its wall seconds and peak RSS (MB). Raises on failure."""
    with open(log, "w") as handle:
        code = subprocess.call(["/usr/bin/time", "-v", *cmd], env=env, stdout=handle, stderr=subprocess.STDOUT)
    text = log.read_text(errors="replace")
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}); see {log}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kb / 1024)}


def head(corpus: Path, n: int, out: Path) -> None:
    if out.exists():
        return
    tmp = out.with_suffix(".tmp")
    with gzip.open(corpus, "rt", encoding="utf-8") as src, gzip.open(tmp, "wt", encoding="utf-8",
                                                                        compresslevel=1) as dst:
        for i, line in enumerate(src):
            if i == n:
                break
            dst.write(line)
    tmp.rename(out)


def stored(data: Path) -> int:
    sys.path.insert(0, str(REPO))
    from recommender.corpus.store import PaperStore
    path = data / "papers.sqlite"
    if not path.exists():
        return 0
    with PaperStore(path, readonly=True) as store:
        return len(store)


def run_size(args, n: int) -> dict:
    folder = Path(args.workdir) / str(n)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PAPERFEED_DATA_DIR": str(folder / "data"),
           "PAPERFEED_MODELS_DIR": str(folder / "models"), "PAPERFEED_N_JOBS": str(args.n_jobs)}
    cli = [sys.executable, "-m", "jobs.cli"]
    result = {"papers": n}
    if stored(folder / "data") != n:
        part = folder / f"corpus-{n}.jsonl.gz"
        head(Path(args.corpus), n, part)
        result["import"] = timed([*cli, "import", str(part)], env, folder / "import.log")
    result["compute"] = timed([*cli, "compute", "--json"], env, folder / "compute.log")
    summary = json.loads(re.search(r"^\{.*\}$", (folder / "compute.log").read_text(), re.M).group(0))
    result.update(features=summary["features"], nnz=summary["nnz"])
    return result


def plot(report: dict, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = sorted(report["sizes"].values(), key=lambda r: r["papers"])
    x = [r["papers"] / 1e6 for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(x, [r["compute"]["seconds"] / 60 for r in rows], "o-", label="compute")
    left.plot(x, [r["import"]["seconds"] / 60 if "import" in r else None for r in rows], "s--", label="import")
    left.axhline(30, color="grey", lw=0.8, ls=":", label="target: compute < 30 min")
    left.set(xlabel="papers (millions)", ylabel="minutes", title="time")
    right.plot(x, [r["compute"]["peak_rss_mb"] / 1024 for r in rows], "o-", label="compute")
    right.axhline(12, color="grey", lw=0.8, ls=":", label="target: < 12 GB")
    right.set(xlabel="papers (millions)", ylabel="peak resident GB", title="memory")
    for ax in (left, right):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, help="the scaled corpus (benchmarks/scaled_corpus.py)")
    parser.add_argument("--sizes", type=int, nargs="+", required=True)
    parser.add_argument("--workdir", default="/tmp/scale")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "docs" / "bench_scale.json"))
    parser.add_argument("--plot", help="write the time and memory curves to this PNG")
    args = parser.parse_args()
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.exists() else {"sizes": {}}
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    for n in args.sizes:
        report["sizes"][str(n)] = run_size(args, n)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report["sizes"][str(n)]), flush=True)
    if args.plot:
        plot(report, Path(args.plot))


if __name__ == "__main__":
    main()
