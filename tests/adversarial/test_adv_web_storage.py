"""Damaged storage is a 503 with a one-line message, never a 500 and never a stack trace.

A corrupt ``users.sqlite`` (garbage bytes), a read-only data directory, and a full or forbidden disk
(``OSError`` ENOSPC, EROFS, EACCES): JSON under ``/api/``, an HTML page elsewhere; the exception is
logged on the server.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import subprocess

import pytest

from tests.webhelpers import PASSWORD, bearer, csrf, register, send

pytestmark = pytest.mark.slow


def assert_503(response, api: bool):
    body = response.get_data(as_text=True)
    assert response.status_code == 503, (response.status_code, body[:300])
    assert "Traceback" not in body and 'File "' not in body and "sqlite3." not in body
    if api:
        assert response.is_json and set(response.json) == {"error", "message"}
        assert "storage" in response.json["message"] and "\n" not in response.json["message"]
    else:
        assert response.mimetype == "text/html" and "<h1>503 · " in body and "storage" in body


def corrupt(path):
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")
    path.write_bytes(os.urandom(64) + b"this is not a database" * 500)


def test_a_corrupt_user_database_is_a_503(make_app, web_settings, caplog):
    app = make_app()
    client = app.test_client()
    token = register(client, "alice")
    secret = send(client, "POST", "/api/tokens", token, json={"name": "s"}).json["token"]
    corrupt(web_settings.users_path)
    caplog.set_level(logging.ERROR)
    assert_503(client.get("/api/me"), api=True)  # the session cookie names a user in the broken store
    assert_503(app.test_client().get("/api/tags", headers=bearer(secret)), api=True)
    assert_503(client.get("/account"), api=False)
    assert_503(client.get("/library"), api=False)
    fresh = app.test_client()
    assert_503(send(fresh, "POST", "/api/login", csrf(fresh), json={"username": "alice", "password": PASSWORD}), True)
    assert_503(fresh.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf(fresh)}),
               api=False)
    assert_503(send(fresh, "POST", "/api/register", csrf(fresh), json={"username": "bob", "password": PASSWORD}), True)
    assert app.test_client().get("/api/feed").status_code == 200  # what needs no user database still works
    assert "storage unavailable" in caplog.text and "DatabaseError" in caplog.text  # logged with the exception


@contextlib.contextmanager
def read_only(folder):
    """Make ``folder`` read-only for this process: permissions, or (as root, whom they do not stop) a
    read-only bind mount of it on itself."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for p, mode in modes.items():
            p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"running as root and cannot bind-mount a read-only folder: {bind.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=False, capture_output=True)


def test_a_read_only_data_dir_is_a_503(make_app, web_settings):
    app = make_app(RATELIMIT_ENABLED=True)
    register(app.test_client(), "alice")
    client = app.test_client()
    token = csrf(client)
    with read_only(web_settings.data_dir):
        with pytest.raises(OSError):
            (web_settings.data_dir / "probe").write_text("x")
        assert_503(send(client, "POST", "/api/login", token, json={"username": "alice", "password": PASSWORD}), True)
        assert_503(client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}),
                   api=False)
        assert_503(send(client, "POST", "/api/register", token, json={"username": "bob", "password": PASSWORD}), True)
        anonymous = client.get("/api/feed")
        assert anonymous.status_code == 200  # reading the papers does not need a writable folder


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_forbidden_disk_is_a_503(client, monkeypatch, code):
    import webapp.auth

    token = register(client, "alice")

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(webapp.auth.UserStore, "create_token", fail)
    assert_503(send(client, "POST", "/api/tokens", token, json={"name": "s"}), api=True)
    assert_503(client.post("/account/tokens", data={"name": "s", "csrf_token": token}), api=False)


def test_other_errors_stay_500_without_a_trace(client, monkeypatch):
    import webapp.auth

    token = register(client, "alice")
    monkeypatch.setattr(webapp.auth.UserStore, "create_token", lambda *a, **k: 1 / 0)
    response = send(client, "POST", "/api/tokens", token, json={"name": "s"})
    assert response.status_code == 500 and "Traceback" not in response.get_data(as_text=True)


def test_a_corrupt_paper_row_is_a_503_for_that_paper_only(make_app, web_settings):
    """A row that does not decode (found by `paperfeed check`): its page is a 503, every other page works."""
    import sqlite3

    app = make_app()
    client = app.test_client()
    pid = client.get("/api/feed?mode=recent&limit=1").json["papers"][0]["id"]
    conn = sqlite3.connect(web_settings.papers_path)
    with conn:
        conn.execute("UPDATE papers SET value = ? WHERE key = ?", (b"\xff\xfe not json", pid))
    conn.close()
    assert_503(client.get(f"/api/papers/{pid}"), api=True)
    assert_503(client.get(f"/papers/{pid}"), api=False)
    feed = client.get("/api/feed?mode=recent&limit=5")
    assert feed.status_code == 200 and pid not in [p["id"] for p in feed.json["papers"]]
