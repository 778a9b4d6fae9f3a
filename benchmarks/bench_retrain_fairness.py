"""How stale do feeds get while 16 users tag and one neighbour hammers the retrain queue? (issue 9)

Usage:
  python benchmarks/bench_pipeline.py                    # once: builds /tmp/paperfeed-bench (full corpus)
  python benchmarks/bench_retrain_fairness.py [--repo DIR] [--out FILE.json]

``--repo`` runs the server and `train` from another checkout (e.g. a `git worktree` of the previous
release) on the same data, so the two are compared on one machine. Setup is direct (no HTTP):
a copy of the workdir's papers and features, a fresh user database with a noisy user at the tag
limit (50 tags x 20 papers) and 16 quiet users (one tag, 5 papers), trained once with `paperfeed train`.

Then the real server (waitress, 16 threads) runs on 127.0.0.1 and, at the same time:
- the noisy client adds a paper to a different one of its 50 tags every 50 ms;
- each quiet client tags a paper 5 times, 1-3 s apart, and after each tag polls ``/api/me`` every
  100 ms until its model is up to date: that wait is the staleness of its feed.
Reports the staleness p50/p90/max over the 80 tag events, how many exceeded 5 s, and how many quiet
users were still stale 60 s after their last tag. Target (issue 9): no user more than a few seconds behind.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_http import Client, free_port, start_server  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
QUIET, EVENTS, GIVE_UP_S = 16, 5, 120.0


def setup(workdir: Path, run: Path, repo: Path) -> dict:
    """A run directory sharing the workdir's papers and features, with fresh users and models."""
    if run.exists():
        shutil.rmtree(run)
    (run / "data").mkdir(parents=True)
    shutil.copy2(workdir / "data" / "papers.sqlite", run / "data" / "papers.sqlite")
    shutil.copytree(workdir / "models" / "features", run / "models" / "features")
    (run / "models" / "users").mkdir()
    code = f"""
import json, random, sqlite3, sys, time, secrets, hashlib
from recommender.features.index import FeatureIndex
idx = FeatureIndex.load({str(run / 'models')!r})
ids = idx.ids[-30000:]
rng = random.Random(0)
db = sqlite3.connect({str(run / 'data' / 'users.sqlite')!r})
from recommender.accounts.users import UserStore
UserStore({str(run / 'data' / 'users.sqlite')!r}).close()  # the schema of the code under test
tokens = {{}}
def user(name, tags):
    cur = db.execute("INSERT INTO users (username, password_hash, created_at) VALUES (?, 'x', ?)", (name, time.time()))
    uid = cur.lastrowid
    for tag, papers in tags.items():
        db.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?, ?, ?)", [(uid, tag, p, time.time()) for p in papers])
    secret = 'pf_' + secrets.token_urlsafe(32)
    db.execute("INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, 'bench', ?, ?)",
               (uid, hashlib.sha256(secret.encode()).hexdigest(), time.time()))
    tokens[name] = secret
user('noisy', {{f't{{i:02d}}': rng.sample(ids, 20) for i in range(50)}})
for q in range({QUIET}):
    user(f'quiet{{q:02d}}', {{'mine': rng.sample(ids, 5)}})
db.commit()
json.dump({{'tokens': tokens, 'pool': ids}}, sys.stdout)
"""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True)
    setup_info = json.loads(out.stdout)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jobs.cli", "train", "--data-dir", str(run / "data"),
                    "--models-dir", str(run / "models")], cwd=repo, env=env, check=True, capture_output=True)
    setup_info["train_s"] = round(time.perf_counter() - start, 1)
    return setup_info


def fresh(client: Client) -> bool:
    status, body = client.request("GET", "/api/me")
    return status == 200 and json.loads(body)["model"]["up_to_date"]


def quiet_client(port: int, token: str, pool: list[str], seed: int, waits: list, last: dict, name: str) -> None:
    client, rng = Client(port, token), random.Random(seed)
    for _ in range(EVENTS):
        time.sleep(rng.uniform(1, 3))
        status, body = client.request("PUT", f"/api/tags/mine/papers/{rng.choice(pool)}")
        if status != 200:
            raise SystemExit(f"{name}: tag failed {status} {body[:200]!r}")
        start = time.perf_counter()
        while not fresh(client) and time.perf_counter() - start < GIVE_UP_S:
            time.sleep(0.1)
        waits.append(time.perf_counter() - start)
    last[name] = time.perf_counter()


def noisy_client(port: int, token: str, pool: list[str], stop: threading.Event, count: list) -> None:
    client, rng, i = Client(port, token), random.Random(99), 0
    while not stop.is_set():
        client.request("PUT", f"/api/tags/t{i % 50:02d}/papers/{rng.choice(pool)}")
        count[0] += 1
        i += 1
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="/tmp/paperfeed-bench", type=Path)
    parser.add_argument("--repo", default=REPO, type=Path, help="checkout whose server and train run (default: this one)")
    parser.add_argument("--run-dir", default=Path("/tmp/paperfeed-fairness"), type=Path)
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    info = setup(args.workdir, args.run_dir, args.repo)
    port = free_port()
    proc = start_server(argparse.Namespace(threads=16, workdir=args.run_dir), port, args.repo)
    waits, last, noisy_changes = [], {}, [0]
    stop = threading.Event()
    try:
        noisy = threading.Thread(target=noisy_client, args=(port, info["tokens"]["noisy"], info["pool"], stop, noisy_changes))
        noisy.start()
        quiet = [threading.Thread(target=quiet_client, args=(port, info["tokens"][f"quiet{q:02d}"], info["pool"], q,
                                                             waits, last, f"quiet{q:02d}")) for q in range(QUIET)]
        start = time.perf_counter()
        [t.start() for t in quiet]
        [t.join() for t in quiet]
        seconds = time.perf_counter() - start
        stop.set()
        noisy.join()
    finally:
        proc.terminate()
        proc.wait(30)
    w = np.array(waits)
    result = {
        "repo": str(args.repo), "quiet_users": QUIET, "tag_events": len(w), "noisy_changes": noisy_changes[0],
        "staleness_p50_s": round(float(np.percentile(w, 50)), 2), "staleness_p90_s": round(float(np.percentile(w, 90)), 2),
        "staleness_max_s": round(float(w.max()), 2), "events_over_5s": int((w > 5).sum()),
        "events_given_up_120s": int((w >= GIVE_UP_S).sum()), "seconds": round(seconds, 1), "setup_train_s": info["train_s"],
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
