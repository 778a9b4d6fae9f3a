"""HTTP latency and throughput of the real server (waitress) on loopback.

Usage:
  python benchmarks/bench_pipeline.py            # once: builds /tmp/paperfeed-bench (full corpus, 20 users)
  python benchmarks/bench_http.py --workdir /tmp/paperfeed-bench [--requests 300] [--clients 8]

Starts `paperfeed serve` on 127.0.0.1, logs in as a benchmark user, creates an
API token, then measures p50/p99 of feed, similar, search and tag requests one
at a time, requests per second with N concurrent keep-alive clients on a mix of
feed/similar/search, and the server's resident memory (VmRSS and peak VmHWM).
Targets (issue 3): p50 < 30 ms and p99 < 100 ms for feed, similar and search;
server memory < 1 GB. Bounded: a fixed number of requests, then it stops.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
QUERIES = ["diffusion models", "graph neural networks", "black hole accretion", "quantum error correction",
           "language model reasoning", "protein structure", "federated learning", "2503.11893", "robot grasping",
           "dark matter halo"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive HTTP connection with the bearer token."""

    def __init__(self, port: int, token: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def start_server(args, port: int, repo: Path = REPO) -> subprocess.Popen:
    """`paperfeed serve` of the checkout ``repo`` on ``args.workdir``'s data, once it answers."""
    cmd = [sys.executable, "-m", "jobs.cli", "serve", "--dev", "--host", "127.0.0.1", "--port", str(port),
           "--threads", str(args.threads), "--data-dir", f"{args.workdir}/data", "--models-dir", f"{args.workdir}/models"]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if Client(port).request("GET", "/api/csrf")[0] == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


def token_for(port: int, username: str, password: str) -> str:
    """Log in with a session, then create a bearer token (the session flow needs the CSRF header)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/api/csrf")
    response = conn.getresponse()
    csrf = json.loads(response.read())["csrf_token"]
    cookie = response.getheader("Set-Cookie").split(";")[0]
    conn.request("POST", "/api/login", body=json.dumps({"username": username, "password": password}),
                 headers={"Content-Type": "application/json", "Cookie": cookie, "X-CSRFToken": csrf})
    response = conn.getresponse()
    body = json.loads(response.read())
    if response.status != 200:
        raise SystemExit(f"login failed: {body}")
    cookie = response.getheader("Set-Cookie").split(";")[0]
    conn.request("POST", "/api/tokens", body=json.dumps({"name": "bench"}),
                 headers={"Content-Type": "application/json", "Cookie": cookie, "X-CSRFToken": body["csrf_token"]})
    response = conn.getresponse()
    return json.loads(response.read())["token"]


def latency(client: Client, paths: list[tuple[str, str]]) -> dict:
    times, bad = [], 0
    for method, path in paths:
        start = time.perf_counter()
        status, _ = client.request(method, path)
        times.append((time.perf_counter() - start) * 1000)
        bad += status >= 400
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2),
            "n": len(times), "errors": bad}


def throughput(port: int, token: str, paths: list[str], clients: int, per_client: int) -> dict:
    errors, done = [0], [0]
    lock = threading.Lock()

    def worker(seed: int):
        client, rng = Client(port, token), random.Random(seed)
        for _ in range(per_client):
            status, _ = client.request("GET", rng.choice(paths))
            with lock:
                done[0] += 1
                errors[0] += status >= 400

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {"clients": clients, "requests": done[0], "seconds": round(seconds, 2),
            "requests_per_s": round(done[0] / seconds, 1), "errors": errors[0]}


def memory_mb(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024)
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="/tmp/paperfeed-bench")
    parser.add_argument("--user", default="bench000")
    parser.add_argument("--password", default="bench passphrase")
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint for latency")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads")
    args = parser.parse_args()
    from recommender.features.index import FeatureIndex

    ids = list(FeatureIndex.load(Path(args.workdir) / "models").ids)
    rng = random.Random(0)
    port = free_port()
    server = start_server(args, port)
    try:
        token = token_for(port, args.user, args.password)
        client = Client(port, token)
        n = args.requests
        sample = [rng.choice(ids) for _ in range(n)]
        report = {"papers": len(ids), "latency": {
            "feed (recommended, whole library)": latency(client, [("GET", "/api/feed?limit=25")] * n),
            "feed (recommended, past month)": latency(client, [("GET", "/api/feed?window=month&limit=25")] * n),
            # The page's default window: what arrived since the last visit, else the past week.
            "feed (recommended, past week)": latency(client, [("GET", "/api/feed?window=week&limit=25")] * n),
            "feed page (HTML, recommended)": latency(client, [("GET", "/")] * n),
            "similar": latency(client, [("GET", f"/api/papers/{p}/similar?limit=25") for p in sample]),
            "search": latency(client, [("GET", f"/api/search?q={q.replace(' ', '+')}&limit=25")
                                       for q in (QUERIES * n)[:n]]),
            "tag (PUT, then DELETE)": latency(client, [(m, f"/api/tags/benchtag/papers/{p}")
                                                      for p in sample[:n // 2] for m in ("PUT", "DELETE")]),
        }}
        mix = ["/api/feed?limit=25", "/api/feed?window=month&limit=25"] + \
              [f"/api/papers/{p}/similar?limit=25" for p in sample[:50]] + \
              [f"/api/search?q={q.replace(' ', '+')}&limit=25" for q in QUERIES]
        report["throughput"] = throughput(port, token, mix, args.clients, n)
        report["server_memory_mb"] = memory_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
