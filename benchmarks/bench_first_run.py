"""The first ten minutes: install Paperfeed into a fresh venv, then time `paperfeed demo` offline until it serves.

    python benchmarks/bench_first_run.py [--repo DIR] [--out docs/bench_first_run.json] [--keep]

1. Creates a new venv (no system site-packages) and runs ``pip install <repo>`` in it, from the package
   registries, as a new user would (timed, but the registry's speed is not ours, so it is reported apart).
2. In an empty directory, inside a fresh network namespace (``unshare -n``, loopback only: no DNS, no route
   out, so "offline" is enforced, not assumed), runs ``paperfeed demo --port P`` and polls
   ``http://127.0.0.1:P/login`` and the demo user's feed until they answer 200.

Needs root for ``unshare -n`` (CI machines and this VM have it); with ``--online`` it runs without the namespace.
The issue's target: serving in under 30 s on a fresh machine, offline.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs inside the namespace: start the demo, poll until the site and a logged-in feed answer.
PROBE = r'''
import http.cookiejar, json, re, socket, subprocess, sys, time, urllib.parse, urllib.request
paperfeed, workdir = sys.argv[1], sys.argv[2]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
start = time.monotonic()
demo = subprocess.Popen([paperfeed, "demo", "--port", str(port)], cwd=workdir, stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, text=True)
base = f"http://127.0.0.1:{port}"
result = {}
try:
    while time.monotonic() - start < 300:
        try:
            with urllib.request.urlopen(base + "/login", timeout=5) as r:
                if r.status == 200:
                    result["login_page_s"] = time.monotonic() - start
                    break
        except OSError:
            time.sleep(0.1)
        if demo.poll() is not None:
            raise SystemExit("demo exited: " + demo.stderr.read())
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login", timeout=30).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    err = ""
    # the demo printed its password on stderr before serving
    while "password" not in err:
        err += demo.stderr.readline()
    password = re.search(r"with password '([^']+)'", err).group(1)
    form = urllib.parse.urlencode({"csrf_token": token, "username": "demo", "password": password}).encode()
    opener.open(urllib.request.Request(base + "/login", data=form, headers={"Referer": base + "/login"}), timeout=30)
    feed = opener.open(base + "/", timeout=30).read().decode()
    result["personal_feed_s"] = time.monotonic() - start
    result["feed_is_personal"] = re.search(r"<title>\s*Recommended", feed) is not None
finally:
    demo.terminate()
    demo.wait(timeout=30)
print(json.dumps(result))
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench_first_run.json")
    parser.add_argument("--online", action="store_true", help="do not enforce offline with unshare -n")
    parser.add_argument("--keep", action="store_true", help="keep the venv and the demo directory")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="paperfeed-first-run-"))
    try:
        venv, workdir = root / "venv", root / "site"
        workdir.mkdir()
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([venv / "bin" / "pip", "install", "-q", str(args.repo)], check=True)
        install_s = time.monotonic() - t0
        probe = [str(venv / "bin" / "python"), "-c", PROBE, str(venv / "bin" / "paperfeed"), str(workdir)]
        if not args.online:
            probe = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *probe]
        out = subprocess.run(probe, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            print(out.stdout, out.stderr, file=sys.stderr)
            return 1
        result = json.loads(out.stdout.strip().splitlines()[-1])
        version = subprocess.run([venv / "bin" / "paperfeed", "--version"], capture_output=True, text=True).stdout
        record = {"offline": not args.online, "install_s": round(install_s, 1),
                  "login_page_s": round(result["login_page_s"], 2),
                  "personal_feed_s": round(result["personal_feed_s"], 2),
                  "feed_is_personal": result["feed_is_personal"], "version": version.strip(),
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
                  "command": "python benchmarks/bench_first_run.py"}
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(record, indent=2))
        return 0
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
