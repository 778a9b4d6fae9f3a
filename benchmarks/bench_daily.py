"""``paperfeed daily`` at the full 131k corpus with the 20 benchmark users, each mailed a digest.

Usage:  python benchmarks/bench_daily.py [--corpus FILE] [--workdir DIR] [--users 20]

Day 0: every paper of the corpus but the last announcement day is imported and computed; 20 users
(``bench_pipeline.make_users``: 2 tags of 10 papers each) subscribe to a daily digest of 10 papers and
are trained. Day 1: the last day's papers arrive by ``paperfeed import`` (standing in for ``fetch``,
which is paced by arXiv's 3 s per request, not by this machine), then ``paperfeed daily --no-fetch``
runs as its own process (wall time, peak RSS from ``os.wait4``) with a real SMTP server on loopback
(aiosmtpd) that counts the messages. Then the same command again, as a cron rerun the same day:
the store has not changed, so compute is skipped, and nothing is sent. Results as JSON on stdout.
"""
from __future__ import annotations

import argparse
import email
import email.policy
import json
import lzma
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_pipeline import SHARED, make_users  # noqa: E402
from recommender.features.index import FeatureIndex  # noqa: E402
from recommender.settings import load_settings  # noqa: E402
from tests.smtpserver import SMTPServer  # noqa: E402


def split_corpus(corpus: Path, work: Path) -> tuple[Path, Path, str]:
    """The corpus (sorted by date) as day 0 (all but the last date) and day 1 (the last date)."""
    with lzma.open(corpus, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    last = json.loads(lines[-1])["update_date"]
    day0, day1 = work / "day0.jsonl", work / "day1.jsonl"
    cut = next(i for i in range(len(lines) - 1, -1, -1) if json.loads(lines[i])["update_date"] != last) + 1
    day0.write_text("".join(lines[:cut]), encoding="utf-8")
    day1.write_text("".join(lines[cut:]), encoding="utf-8")
    return day0, day1, last


def timed(argv: list[str], env: dict) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", *argv, "--json"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    return {"exit": os.waitstatus_to_exitcode(status), "seconds": round(time.perf_counter() - start, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "output": json.loads(out) if out.strip() else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default=str(SHARED / "arxiv/corpus/arxiv-metadata-2025-2026.jsonl.xz"))
    parser.add_argument("--workdir", default="/tmp/paperfeed-bench-daily")
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    smtp = SMTPServer().start()
    env = {**os.environ, **smtp.env(), "PAPERFEED_DATA_DIR": str(work / "data"),
           "PAPERFEED_MODELS_DIR": str(work / "models")}
    report = {"machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}", "users": args.users}
    day0, day1, last = split_corpus(Path(args.corpus), work)
    report["day1_date"] = last
    report["day0_import"] = timed(["import", str(day0)], env)
    report["day0_compute"] = timed(["compute"], env)
    settings = load_settings(environ={}, data_dir=work / "data", models_dir=work / "models")
    make_users(settings, FeatureIndex.load(settings.models_dir), args.users)
    for u in range(args.users):
        assert timed(["account", f"bench{u:03d}", "--email", f"bench{u:03d}@example.org", "--digest", "daily"],
                     env)["exit"] == 0
    report["day0_train"] = timed(["train"], env)
    report["day1_import"] = timed(["import", str(day1)], env)
    report["daily"] = timed(["daily", "--no-fetch"], env)
    received = [email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in smtp.handler.messages]
    report["messages"] = len(received)
    report["recipients"] = len({m["To"] for m in received})
    report["papers_per_message"] = sorted({len(set(re.findall(r"/papers/(\S+)", m.get_body(("plain",)).get_content())))
                                           for m in received})
    report["rerun"] = timed(["daily", "--no-fetch"], env)
    report["messages_after_rerun"] = len(smtp.handler.messages)
    smtp.stop()
    steps = {s["step"]: s["seconds"] for s in report["daily"]["output"]["steps"]}
    rerun_steps = {s["step"]: s["seconds"] for s in report["rerun"]["output"]["steps"]}
    report["summary"] = {"daily_seconds": report["daily"]["seconds"], "daily_peak_rss_mb": report["daily"]["peak_rss_mb"],
                         "steps": steps, "rerun_seconds": report["rerun"]["seconds"], "rerun_steps": rerun_steps,
                         "new_papers": report["day1_import"]["output"]["added"]}
    json.dump(report, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
