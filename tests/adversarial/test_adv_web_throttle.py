"""Password guessing is throttled per account and per client address, in a store every worker shares.

``/login``, ``/api/login``, the password change and registration take attempts from one budget per
username and one per address, kept in ``<data dir>/throttle.sqlite``. The last test starts ``gunicorn -w 4``
on one data directory and hammers both login endpoints from several threads: all four processes together
must let no more than the budget through.
"""
from __future__ import annotations

import collections
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from recommender.accounts import throttle
from recommender.accounts.passwords import hash_password
from recommender.settings import load_settings
from recommender.accounts.users import UserStore
from tests.conftest import REPO
from tests.webhelpers import PASSWORD, csrf, register, send

pytestmark = pytest.mark.slow

WRONG = "not the right passphrase"


# the store ------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_the_store_keeps_a_sliding_window(tmp_path):
    clock = Clock()
    store = throttle.Throttle(tmp_path / "throttle.sqlite", clock=clock)
    limit = throttle.Limit(3, 60)
    key = throttle.key("account", "Alice")
    assert key == throttle.key("account", "ALICE") and "alice" not in key.lower().split(":", 1)[1]
    start = clock.now
    for second in (0, 10, 20):
        clock.now = start + second
        store.reserve({key: limit})
    with pytest.raises(throttle.Throttled) as caught:
        store.reserve({key: limit})
    assert caught.value.retry_after == 40  # the first attempt (at +0) leaves the window at +60; now is +20
    assert store.used(key, limit) == 3  # a refused attempt is not counted
    clock.now += 41
    ids = store.reserve({key: limit})  # the oldest left the window
    store.refund(ids)
    assert store.used(key, limit) == 2
    other = throttle.key("address", "10.0.0.1")
    with pytest.raises(throttle.Throttled):  # all budgets or none: the full one blocks the attempt
        store.reserve({other: throttle.Limit(5, 60), key: throttle.Limit(2, 60)})
    assert store.used(other, throttle.Limit(5, 60)) == 0


def test_old_attempts_are_pruned(tmp_path):
    import sqlite3

    clock = Clock()
    store = throttle.Throttle(tmp_path / "throttle.sqlite", clock=clock)
    for n in range(20):
        store.reserve({throttle.key("address", f"10.0.0.{n}"): throttle.Limit(1, 60)})
    clock.now += 3600
    store.reserve({throttle.key("address", "10.0.0.99"): throttle.Limit(1, 60)})
    conn = sqlite3.connect(tmp_path / "throttle.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == 1
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


# one process ----------------------------------------------------------------
SMALL = {"RATELIMIT_ENABLED": True, "LOGIN_ATTEMPTS_PER_ACCOUNT": (4, 60), "LOGIN_ATTEMPTS_PER_ADDRESS": (9, 60),
         "REGISTRATIONS_PER_ADDRESS": (3, 3600)}


def _form_login(client, token, username, password, address="10.0.0.1"):
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_overrides={"REMOTE_ADDR": address})


def _api_login(client, token, username, password, address="10.0.0.1"):
    return send(client, "POST", "/api/login", token, json={"username": username, "password": password},
                environ_overrides={"REMOTE_ADDR": address})


def assert_throttled(response, api: bool):
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    text = response.json["message"] if api else response.get_data(as_text=True)
    assert "Too many attempts for this account or from your address" in text and "seconds" in text
    assert api == response.is_json


def test_both_login_endpoints_share_one_budget_per_account(make_app):
    app = make_app(**SMALL)
    register(app.test_client(), "alice")
    client = app.test_client()
    token = csrf(client)
    assert _form_login(client, token, "alice", WRONG).status_code == 401
    assert _api_login(client, token, "ALICE", WRONG).status_code == 401  # names are case-insensitive
    assert _form_login(client, token, "alice", WRONG, "10.0.0.2").status_code == 401  # another address
    assert _api_login(client, token, "alice", WRONG, "10.0.0.3").status_code == 401
    assert_throttled(_api_login(client, token, "alice", PASSWORD, "10.0.0.4"), api=True)  # even the right one
    assert_throttled(_form_login(client, token, "alice", PASSWORD, "10.0.0.5"), api=False)
    assert client.get("/api/me").status_code == 401
    assert _api_login(client, token, "bob", WRONG).status_code == 401  # other accounts are not locked


def test_one_client_cannot_lock_the_owner_out(make_app):
    """Review finding: with only an account-wide budget, ten wrong guesses a minute from anywhere kept the owner
    out. One client now spends only its own (account, address) share; the account's budget is larger."""
    app = make_app(**{**SMALL, "LOGIN_ATTEMPTS_PER_ACCOUNT_AND_ADDRESS": (3, 60), "LOGIN_ATTEMPTS_PER_ACCOUNT": (6, 60)})
    register(app.test_client(), "alice")
    attacker, owner = app.test_client(), app.test_client()
    token = csrf(attacker)
    assert [_api_login(attacker, token, "alice", WRONG, "10.6.6.6").status_code for _ in range(4)] == [401] * 3 + [429]
    assert _api_login(owner, csrf(owner), "alice", PASSWORD, "10.0.0.1").status_code == 200
    # Many addresses together still meet the account's own budget (the residual risk docs/security.md names).
    for n in range(4):
        _api_login(attacker, token, "alice", WRONG, f"10.7.{n}.1")
    assert_throttled(_api_login(owner, csrf(owner), "alice", PASSWORD, "10.0.0.1"), api=True)


def test_unknown_accounts_are_throttled_the_same_way(make_app):
    app = make_app(**SMALL)
    register(app.test_client(), "alice")
    client = app.test_client()
    token = csrf(client)
    answers = {}
    for name in ("alice", "nobody"):
        answers[name] = [(r.status_code, r.json["message"]) for r in
                         (_api_login(client, token, name, WRONG, f"10.1.{n}.1") for n in range(5))]
    assert answers["alice"] == answers["nobody"]  # nothing tells whether the account exists
    assert [code for code, _ in answers["alice"]] == [401] * 4 + [429]


def test_a_right_password_does_not_count(make_app):
    app = make_app(**SMALL)
    register(app.test_client(), "alice")
    client = app.test_client()
    token = csrf(client)
    for _ in range(3):
        assert _api_login(client, token, "alice", WRONG).status_code == 401
    for _ in range(5):  # each success is refunded, so the owner is never locked out by their own logins
        fresh = app.test_client()
        assert _api_login(fresh, csrf(fresh), "alice", PASSWORD).status_code == 200
    assert _api_login(client, token, "alice", WRONG).status_code == 401
    assert_throttled(_api_login(client, token, "alice", WRONG), api=True)


def test_one_address_is_limited_across_accounts(make_app):
    app = make_app(**SMALL)
    client = app.test_client()
    token = csrf(client)
    codes = [_api_login(client, token, f"user{n}", WRONG, "10.9.9.9").status_code for n in range(12)]
    assert codes == [401] * 9 + [429] * 3
    assert _api_login(client, token, "user0", WRONG, "10.9.9.10").status_code == 401  # another address


def test_an_ipv6_client_is_one_slash_64(make_app):
    app = make_app(**SMALL)
    client = app.test_client()
    token = csrf(client)
    codes = [_api_login(client, token, f"user{n}", WRONG, f"2001:db8:1:2::{n + 1:x}").status_code for n in range(10)]
    assert codes == [401] * 9 + [429]  # rotating addresses inside one /64 does not buy more attempts
    assert _api_login(client, token, "user0", WRONG, "2001:db8:1:3::1").status_code == 401


def test_password_change_and_registration_take_from_the_budgets(make_app):
    app = make_app(**SMALL)
    client = app.test_client()
    token = register(client, "alice")
    for _ in range(4):
        response = send(client, "POST", "/api/password", token, json={"old": WRONG, "new": "fresh quiet meadow"})
        assert response.status_code == 400
    assert_throttled(send(client, "POST", "/api/password", token, json={"old": PASSWORD, "new": "fresh quiet meadow"}),
                     api=True)
    stranger = app.test_client()
    assert_throttled(_api_login(stranger, csrf(stranger), "alice", PASSWORD, "10.7.7.7"), api=True)
    other = app.test_client()
    for n in range(2):  # register() above took the first registration of 127.0.0.1's three
        assert send(other, "POST", "/api/register", csrf(other), json={"username": f"new{n}", "password": "x"}) \
            .status_code == 400
    assert_throttled(send(other, "POST", "/api/register", csrf(other),
                          json={"username": "new9", "password": PASSWORD}), api=True)
    page = other.post("/register", data={"username": "new8", "password": PASSWORD, "csrf_token": csrf(other)})
    assert_throttled(page, api=False)


# four processes -------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One client over real HTTP with its own session cookie and CSRF token."""

    def __init__(self, port: int):
        self.port = port
        response, body, headers = self.request("GET", "/api/csrf")
        self.cookie = re.search(r"session=[^;]+", headers["Set-Cookie"]).group(0)
        self.token = json.loads(body)["csrf_token"]

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read().decode(), dict(response.getheaders())
        finally:
            conn.close()

    def login(self, api: bool, username: str, password: str):
        headers = {"Cookie": self.cookie, "X-CSRFToken": self.token}
        if api:
            headers["Content-Type"] = "application/json"
            return self.request("POST", "/api/login", json.dumps({"username": username, "password": password}),
                                headers)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return self.request("POST", "/login", urlencode({"username": username, "password": password,
                                                         "csrf_token": self.token}), headers)


@pytest.fixture
def four_workers(built10k, tmp_path):
    """gunicorn -w 4 on a copy of the 10k sample (production settings, default budgets); stopped after."""
    shutil.copytree(built10k.data_dir, tmp_path / "data")
    shutil.copytree(built10k.models_dir, tmp_path / "models")
    settings = load_settings(environ={}, data_dir=tmp_path / "data", models_dir=tmp_path / "models")
    with UserStore(settings.users_path) as users:
        users.add_user("alice", hash_password(PASSWORD, "alice"))
    port = _free_port()
    log = tmp_path / "access.log"
    env = {**os.environ, "PAPERFEED_DATA_DIR": str(settings.data_dir), "PAPERFEED_MODELS_DIR": str(settings.models_dir),
           "PAPERFEED_SECRET_KEY": "s" * 64, "PAPERFEED_N_JOBS": "1", "PYTHONPATH": str(REPO)}
    errors = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}", "--access-logfile", str(log),
         "--access-logformat", "%(p)s %(s)s %(m)s %(U)s", "webapp:create_app()"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        _wait_for_all_workers(server, port, log, tmp_path / "server.log")
        yield port, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        errors.close()


def _pids(log: Path) -> set[str]:
    return {line.split()[0] for line in log.read_text().splitlines()} if log.exists() else set()


def _wait_for_all_workers(server, port: int, log: Path, errors: Path, workers: int = 4) -> None:
    """Until each worker has answered a request (so the logins below really spread over four processes)."""
    deadline = time.monotonic() + 120
    while len(_pids(log)) < workers:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not start {workers} workers:\n" + errors.read_text()[-3000:])
        threads = [threading.Thread(target=_try_csrf, args=(port,)) for _ in range(2 * workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.2)


def _try_csrf(port: int) -> None:
    try:
        Browser(port)
    except (OSError, AttributeError, KeyError, ValueError):
        pass


def test_four_worker_processes_hold_one_budget(four_workers):
    port, log = four_workers
    from webapp.auth import THROTTLE_DEFAULTS

    # From one address the budget of (account, address) binds first; the account's own is larger (anti-lockout).
    per_account, _ = THROTTLE_DEFAULTS["LOGIN_ATTEMPTS_PER_ACCOUNT_AND_ADDRESS"]
    per_address, _ = THROTTLE_DEFAULTS["LOGIN_ATTEMPTS_PER_ADDRESS"]
    attempts = 2 * per_account + 4  # per thread; two accounts, both endpoints, eight threads
    results: dict[str, list] = collections.defaultdict(list)
    lock = threading.Lock()

    def hammer(number: int):
        browser = Browser(port)
        account = ("alice", "ghost")[number % 2]  # one that exists, one that does not
        for attempt in range(attempts):
            status, body, headers = browser.login(api=(attempt + number) % 2 == 0, username=account, password=WRONG)
            with lock:
                results[account].append((status, headers.get("Retry-After"), body))

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    passed = {account: sum(1 for status, _, _ in rows if status != 429) for account, rows in results.items()}
    total = sum(len(rows) for rows in results.values())
    assert total == 8 * attempts
    assert all(status in (401, 429) for rows in results.values() for status, _, _ in rows)
    assert max(passed.values()) <= per_account, f"non-429 attempts per account: {passed} (limit {per_account})"
    assert sum(passed.values()) <= per_address
    assert all(int(retry) >= 1 for rows in results.values() for status, retry, _ in rows if status == 429)
    workers = {line.split()[0] for line in Path(log).read_text().splitlines() if " POST " in line}
    assert len(workers) >= 3, f"only worker(s) {workers} served the logins: the test proves little"
