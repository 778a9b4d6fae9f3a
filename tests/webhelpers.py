"""Helpers for the web tests: accounts, CSRF tokens, page scraping and database snapshots."""
from __future__ import annotations

import hashlib
import html
import re
import sqlite3
from pathlib import Path

PASSWORD = "long enough passphrase 7"


def private_app(built10k, tmp_path_factory, name: str):
    """An app on a private copy of the 10k sample, for module-scoped fixtures (throttles off; CSRF on).
    The caller closes it: ``app.extensions["paperfeed"].close()``."""
    import shutil

    from recommender.settings import load_settings
    from webapp import create_app

    root = tmp_path_factory.mktemp(name)
    shutil.copytree(built10k.data_dir, root / "data")
    shutil.copytree(built10k.models_dir, root / "models")
    settings = load_settings(environ={}, data_dir=root / "data", models_dir=root / "models", n_jobs=1)
    return create_app({"PRODUCTION": False, "TESTING": True, "RATELIMIT_ENABLED": False}, settings=settings)


def csrf(client) -> str:
    """A CSRF token for ``client``'s session (GET /api/csrf)."""
    response = client.get("/api/csrf")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json["csrf_token"]


def register(client, username: str, password: str = PASSWORD) -> str:
    """Register and log in through the API; returns the session's fresh CSRF token."""
    response = client.post("/api/register", json={"username": username, "password": password},
                           headers={"X-CSRFToken": csrf(client)})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json["csrf_token"]


def login(client, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/login", json={"username": username, "password": password},
                           headers={"X-CSRFToken": csrf(client)})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json["csrf_token"]


def send(client, method: str, url: str, token: str | None, **kwargs):
    """A request with ``X-CSRFToken: token`` (None sends no header)."""
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers["X-CSRFToken"] = token
    return client.open(url, method=method, headers=headers, **kwargs)


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def tag(client, token: str, tag_name: str, *ids: str) -> None:
    for pid in ids:
        response = send(client, "PUT", f"/api/tags/{tag_name}/papers/{pid}", token)
        assert response.status_code == 200, response.get_data(as_text=True)


def topic_papers(client, query: str, prefix: str, n: int) -> list[str]:
    """The first ``n`` search hits for ``query`` whose primary category starts with ``prefix``."""
    response = client.get("/api/search", query_string={"q": query, "limit": 200})
    assert response.status_code == 200
    ids = [p["id"] for p in response.json["papers"] if p["categories"] and p["categories"][0].startswith(prefix)]
    assert len(ids) >= n, f"only {len(ids)} {prefix} hits for {query!r}"
    return ids[:n]


def session_cookie(client) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def page_csrf(page: str) -> str:
    """The CSRF token a rendered page embeds in its forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF field on the page"
    return match.group(1)


def card_ids(page: str) -> list[str]:
    """Paper ids of the cards on a rendered list, in order."""
    return [html.unescape(m) for m in re.findall(r'<article class="card" id="p-([^"]+)"', page)]


def message(response) -> str:
    """The human-readable error text of a JSON or HTML error response."""
    if response.is_json:
        return response.json["message"]
    return html.unescape(response.get_data(as_text=True))


def users_snapshot(settings) -> dict[str, list[tuple]]:
    """Every row of every table of users.sqlite, sorted (a separate read-only connection)."""
    conn = sqlite3.connect(f"file:{settings.users_path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(tuple(r) for r in conn.execute(f'SELECT * FROM "{t}"')) for t in tables}
    finally:
        conn.close()


def files_snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def papers_snapshot(settings) -> str:
    conn = sqlite3.connect(f"file:{settings.papers_path}?mode=ro", uri=True)
    try:
        digest = hashlib.sha256()
        for key, value in conn.execute("SELECT key, value FROM papers ORDER BY key"):
            digest.update(f"{key}\0{value}\0".encode())
        return digest.hexdigest()
    finally:
        conn.close()


def everything(settings) -> tuple:
    """Users, models and papers, to compare before and after requests that must change nothing."""
    return users_snapshot(settings), files_snapshot(settings.models_dir), papers_snapshot(settings)
