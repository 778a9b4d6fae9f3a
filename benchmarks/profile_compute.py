"""Where `paperfeed compute`'s time and memory go: the time of each of its steps, and the resident and peak
memory (``/proc/self/status``) as each ends.

Usage:  python benchmarks/profile_compute.py --data-dir DIR [--models-dir DIR]

For the cost curve in docs/scaling.md (500k papers):
    zcat /tmp/scaled-2.7M.jsonl.gz | head -500000 | gzip -1 > /tmp/s500/corpus-500k.jsonl.gz
    PAPERFEED_DATA_DIR=/tmp/s500/data /usr/bin/time -v paperfeed import /tmp/s500/corpus-500k.jsonl.gz
    python benchmarks/profile_compute.py --data-dir /tmp/s500/data --models-dir /tmp/s500/models-prof
(the corpus from benchmarks/scaled_corpus.py). Linux only (reads /proc).
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recommender.corpus.store import PaperStore  # noqa: E402
from recommender.features import FeatureParams  # noqa: E402
from recommender.features.index import compute_generation  # noqa: E402
from recommender.settings import load_settings  # noqa: E402


def memory_mb() -> dict[str, int]:
    status = Path("/proc/self/status").read_text()
    return {key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) // 1024 for key in ("VmRSS", "VmHWM")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--models-dir", help="where the generation goes (default: <data dir>/../models-prof)")
    args = parser.parse_args()
    models = args.models_dir or str(Path(args.data_dir).parent / "models-prof")
    settings = load_settings(environ={}, data_dir=args.data_dir, models_dir=models)
    start = time.perf_counter()
    last = [start, "start"]

    def step(message: str) -> None:
        now, m = time.perf_counter(), memory_mb()
        print(f"{now - start:8.1f}s  (+{now - last[0]:6.1f}s for {last[1]!r})  RSS {m['VmRSS']} MB  "
              f"peak {m['VmHWM']} MB  -> {message}", flush=True)
        last[:] = [now, message]

    with PaperStore(settings.papers_path, readonly=True) as store:
        result = compute_generation(store, settings.models_dir, FeatureParams.from_settings(settings), step)
    step("done")
    print(result)


if __name__ == "__main__":
    main()
