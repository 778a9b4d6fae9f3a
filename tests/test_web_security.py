"""Security and robustness of the web app on the real 10k sample, with CSRF on."""
from __future__ import annotations

import ast
import dataclasses
import html
import os
import re
import sqlite3
import stat
import time

import pytest

from recommender.corpus.papers import Paper
from recommender.corpus.store import PaperStore
from recommender.accounts.users import UserStore
from recommender.delivery.links import Link, Signer, link_key
from tests.conftest import REPO
from tests.webhelpers import (PASSWORD, private_app, bearer, csrf, everything, login, message, register, send,
                              session_cookie, tag, topic_papers, users_snapshot)

pytestmark = pytest.mark.slow

PID = "2504.13999"
OTHER = "2510.00095"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def wait(app):
    app.extensions["paperfeed"].wait_for_retrains()


@pytest.fixture(scope="module")
def ro_app(built10k, tmp_path_factory):
    """One app on a private copy, for tests that only send anonymous read-only requests."""
    app = private_app(built10k, tmp_path_factory, "ro_app")
    yield app
    app.extensions["paperfeed"].close()


def fill(rule, values: dict) -> str:
    """The rule's URL with every variable filled from ``values`` (fails on a variable it does not know)."""
    missing = rule.arguments - set(values)
    assert not missing, f"no test value for {missing} in {rule.rule}"
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(rf"<(?:[a-z]+:)?{name}>", str(values[name]), url)
    return url


def user_with_everything(client, app) -> dict:
    """A logged-in user with a tag, a trained model, a negative and an API token; returns the URL values."""
    token = register(client, "alice")
    tag(client, token, "mine", PID, OTHER)
    assert send(client, "POST", f"/api/papers/{OTHER}v1/not-interested", token).status_code == 200
    created = send(client, "POST", "/api/tokens", token, json={"name": "script"}).json
    feed = send(client, "POST", "/api/feed-tokens", token, json={"name": "reader", "tag": "mine"}).json
    wait(app)
    assert client.get("/api/me").json["model"]["up_to_date"] is True
    settings = app.extensions["paperfeed"].settings
    with UserStore(settings.users_path) as store:  # a one-click "tag" link from a digest email
        link = Signer(link_key(settings.data_dir)).dumps(Link("tag", store.get_user("alice").id, 0, paper=OTHER,
                                                              tag="mine"))
    return {"token": token, "raw_id": PID, "tag": "mine", "token_id": created["id"], "secret": created["token"],
            "filename": "app.js", "feed_token": feed["url"].rsplit("/", 1)[1].removesuffix(".atom"),
            "link_token": link}


# CSRF -----------------------------------------------------------------------
JSON_BODY = {"username": "bob", "password": PASSWORD, "old": PASSWORD, "new": "another fine phrase", "name": "renamed"}
FORM_BODY = {**JSON_BODY, "tag": "other"}


def test_every_state_changing_route_refuses_a_bad_csrf_token(client, app, web_settings):
    values = user_with_everything(client, app)
    stranger = app.test_client()
    foreign = csrf(stranger)  # a well-formed token, but from another session
    before = everything(web_settings)
    checked = set()
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods & STATE_CHANGING):
            url = fill(rule, values)
            is_api = url.startswith("/api/")
            for bad in (None, "not-a-token", foreign):
                if is_api:
                    headers = {} if bad is None else {"X-CSRFToken": bad}
                    response = client.open(url, method=method, json=JSON_BODY, headers=headers)
                else:
                    data = dict(FORM_BODY) if bad is None else {**FORM_BODY, "csrf_token": bad}
                    response = client.open(url, method=method, data=data)
                assert response.status_code == 400, (method, url, bad, response.status_code)
                assert "CSRF" in message(response), (method, url)
                assert response.is_json == is_api
            checked.add((method, rule.rule))
    wait(app)
    assert everything(web_settings) == before
    assert client.get("/api/me").json["username"] == "alice"  # not even logged out
    assert {("POST", "/api/login"), ("PUT", "/api/tags/<tag>/papers/<path:raw_id>"), ("POST", "/logout"),
            ("POST", "/account/password"), ("DELETE", "/api/tokens/<int:token_id>"), ("POST", "/account/digest"),
            ("PUT", "/api/digest"), ("POST", "/email/<link_token>")} <= checked
    assert len(checked) >= 20


def test_anonymous_posts_need_csrf_too(client, app, web_settings):
    UserStore(web_settings.users_path).close()  # the database exists before the first request
    before = users_snapshot(web_settings)
    assert client.post("/api/register", json={"username": "bob", "password": PASSWORD}).status_code == 400
    assert client.post("/register", data={"username": "bob", "password": PASSWORD}).status_code == 400
    assert client.post("/api/login", json={"username": "bob", "password": PASSWORD}).status_code == 400
    assert users_snapshot(web_settings) == before


# GET never changes state ----------------------------------------------------
def test_crawling_every_get_route_changes_nothing(client, app, web_settings):
    values = user_with_everything(client, app)
    queries = {"views.search": {"q": "galaxy"}, "api.search": {"q": "galaxy"},
               "exports.api_export": {"format": "bibtex", "tag": "mine"}, "api.seen_states": {"ids": PID}}
    before = everything(web_settings)
    crawled = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        url = fill(rule, values)
        response = client.get(url, query_string=queries.get(rule.endpoint, {}))
        assert response.status_code == 200, (url, response.status_code)
        crawled.append(rule.endpoint)
    extra = ["/?mode=rec", "/?mode=rec&tag=mine", "/?mode=recent&hide_tagged=0", "/?mode=random",
             "/?window=week&category=cs.CV&page=2", f"/search?q={PID}", "/search?q=dark+matter&page=2",
             f"/papers/{OTHER}v1", "/api/feed?mode=rec&tag=mine&hide_tagged=0", "/api/feed?mode=random",
             f"/api/search?q={PID}", f"/api/papers/{PID}v2/similar?limit=50", "/api/feed?since=2026-01-01"]
    for url in extra:
        assert client.get(url).status_code in (200, 302), url
    wait(app)
    after = everything(web_settings)
    # The writes a GET may make: the logged-in user's own visit time, remembered feed filters, which papers
    # the feed showed them and which they opened (issue 11, part 3), and an Atom feed token's last-read time.
    assert {row[0] for row in after[0].get("user_prefs", [])} <= {1}
    assert {row[0] for row in after[0].get("seen", [])} == {1}
    assert _without_visits(after) == _without_visits(before)
    assert {"views.feed", "views.paper", "views.library_page", "auth.account", "api.feed", "api.me", "api.tokens",
            "api.tags", "api.similar", "static", "atom.feed", "api.feed_tokens", "exports.download_bib",
            "exports.download_json", "exports.download_csv",
            "exports.api_export", "email.link_page", "digest.api_get"} <= set(crawled)


def _without_visits(snapshot: tuple) -> tuple:
    users, *rest = snapshot
    users = {t: rows for t, rows in users.items() if t not in ("user_prefs", "seen")}
    users["feed_tokens"] = [row[:-1] for row in users.get("feed_tokens", [])]  # all but last_used
    return (users, *rest)


# IDOR -----------------------------------------------------------------------
def test_one_user_cannot_see_or_change_anothers_data(make_app, web_settings):
    app = make_app()
    alice, bob = app.test_client(), app.test_client()
    a = user_with_everything(alice, app)
    b_token = register(bob, "bob")

    def alices_rows():
        snap = users_snapshot(web_settings)
        return [r for r in snap["tags"] if r[0] == 1], [r for r in snap["api_tokens"] if r[1] == 1], \
            [r for r in snap["not_interested"] if r[0] == 1]

    before = alices_rows()
    assert before[0] and before[1] and before[2]
    # reading
    assert bob.get("/api/tags").json == {"tags": []}
    assert bob.get("/api/tokens").json == {"tokens": []}
    me = bob.get("/api/me").json
    assert me["tags"] == {} and me["model"]["trained_at"] is None
    assert bob.get(f"/api/papers/{PID}").json["tags"] == []
    assert bob.get(f"/api/papers/{OTHER}").json["not_interested"] is False
    assert bob.get("/api/feed?mode=rec&tag=mine").status_code == 404
    rec = bob.get("/api/feed?mode=rec").json
    assert rec["mode"] == "recent" and rec["notice"]  # no model of his own, and never Alice's
    for page in ("/library", "/account", f"/papers/{PID}", "/?hide_tagged=0"):
        body = bob.get(page).get_data(as_text=True)
        assert 'data-tag="mine"' not in body and "Why you might like it" not in body, page
    assert "No tags yet" in bob.get("/library").get_data(as_text=True)
    assert "No tokens." in bob.get("/account").get_data(as_text=True)
    # changing
    assert send(bob, "DELETE", f"/api/tags/mine/papers/{PID}", b_token).json["changed"] is False
    assert send(bob, "POST", "/api/tags/mine/rename", b_token, json={"name": "stolen"}).status_code == 404
    assert send(bob, "DELETE", "/api/tags/mine", b_token).status_code == 404
    assert bob.post("/library/tags/mine/rename", data={"name": "stolen", "csrf_token": b_token}).status_code == 404
    assert bob.post("/library/tags/mine/delete", data={"csrf_token": b_token}).status_code == 404
    assert send(bob, "DELETE", f"/api/tokens/{a['token_id']}", b_token).status_code == 404
    assert bob.post(f"/account/tokens/{a['token_id']}/revoke", data={"csrf_token": b_token}).status_code == 302
    assert send(bob, "DELETE", f"/api/papers/{OTHER}/not-interested", b_token).status_code == 200  # his own: a no-op
    assert send(bob, "PUT", f"/api/tags/mine/papers/{PID}", b_token).status_code == 200  # his own tag "mine"
    wait(app)
    assert alices_rows() == before
    assert app.test_client().get("/api/me", headers=bearer(a["secret"])).json["username"] == "alice"
    assert [t["name"] for t in alice.get("/api/tags").json["tags"]] == ["mine"]
    assert alice.get("/api/tags").json["tags"][0]["count"] == 2
    assert bob.get("/api/tags").json["tags"] == [{"name": "mine", "count": 1, "papers": [PID]}]


# XSS ------------------------------------------------------------------------
XSS_TITLE = "<script>alert(1)</script> & <b>"


def test_markup_in_paper_metadata_is_shown_as_text(client, app, web_settings):
    pid = "2512.99999"
    with PaperStore(web_settings.papers_path) as store:
        assert store.get(pid) is None
        store.upsert_many([Paper(id=pid, version=1, title=XSS_TITLE, abstract="<img src=x onerror=alert(2)> text",
                                 authors=("<i>Mallory</i>",), categories=("cs.CR",), comments="<u>c</u>",
                                 published="2025-12-01", updated="2025-12-01")])
    assert pid not in app.extensions["paperfeed"].index().row_of  # in the store only, not in the features
    token = register(client, "alice")
    tag(client, token, "xss", pid)
    for url in (f"/papers/{pid}", "/library"):
        page = client.get(url).get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in page, url
        assert "<script>alert(1)" not in page and "<b>" not in page, url
    page = client.get(f"/papers/{pid}").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<i>Mallory" not in page and "&lt;i&gt;Mallory&lt;/i&gt;" in page and "<u>c" not in page
    data = client.get(f"/api/papers/{pid}")
    assert data.mimetype == "application/json" and data.headers["X-Content-Type-Options"] == "nosniff"
    assert data.json["title"] == XSS_TITLE and data.json["authors"] == ["<i>Mallory</i>"]
    assert client.get("/api/tags").json["tags"][0]["papers"] == [pid]
    wait(app)


def test_markup_in_a_search_query_is_escaped(client):
    page = client.get("/search", query_string={"q": XSS_TITLE}).get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_tag_names_with_markup_are_refused(client):
    token = register(client, "alice")
    response = send(client, "PUT", "/api/tags/%3Cimg%20src%3Dx%3E/papers/" + PID, token)
    assert response.status_code == 400 and "tag must be" in response.json["message"]
    tag(client, token, "fine", PID)
    renamed = send(client, "POST", "/api/tags/fine/rename", token, json={"name": "<img src=x>"})
    assert renamed.status_code == 400 and "tag must be" in renamed.json["message"]
    assert [t["name"] for t in client.get("/api/tags").json["tags"]] == ["fine"]


def test_usernames_with_markup_are_refused(client, web_settings):
    for name in ("<b>bob</b>", '"><script>x', "bob<img>"):
        response = send(client, "POST", "/api/register", csrf(client), json={"username": name, "password": PASSWORD})
        assert response.status_code == 400 and "username must be" in response.json["message"]
    form = client.post("/register", data={"username": "<script>x</script>", "password": PASSWORD,
                                          "csrf_token": csrf(client)})
    assert form.status_code == 400
    body = form.get_data(as_text=True)
    assert "<script>x" not in body and "username must be" in html.unescape(body)
    assert users_snapshot(web_settings)["users"] == []


# passwords ------------------------------------------------------------------
def test_passwords_are_hashed_with_scrypt(client, web_settings):
    register(client, "alice")
    (row,) = users_snapshot(web_settings)["users"]
    stored = row[2]
    assert stored.startswith("scrypt:") and PASSWORD not in stored


@pytest.mark.parametrize("password, reason", [
    ("short", "at least 8 characters"), ("1234567", "at least 8 characters"),
    ("password123", "too common"), ("PASSWORD", "too common"), ("12345678", "too common"),
    ("aliceinwonder", None),  # fine: it does not contain the username
    ("Alice.Smith", "based on your username"), ("alice.smith2024", "based on your username"),
    ("aaaaaaaa", "too easy to guess"),
])
def test_weak_passwords_are_refused(client, password, reason):
    response = send(client, "POST", "/api/register", csrf(client), json={"username": "Alice.Smith", "password": password})
    if reason is None:
        assert response.status_code == 201
    else:
        assert response.status_code == 400 and reason in response.json["message"]


def test_password_change_refuses_weak_passwords(client):
    token = register(client, "alice")
    response = send(client, "POST", "/api/password", token, json={"old": PASSWORD, "new": "qwerty"})
    assert response.status_code == 400 and "at least 8" in response.json["message"]
    login(client, "alice")


# cookies and sessions -------------------------------------------------------
def _session_set_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    return cookies[-1]


def test_session_cookie_flags_over_http(client):
    response = send(client, "POST", "/api/register", csrf(client), json={"username": "alice", "password": PASSWORD})
    cookie = _session_set_cookie(response)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_session_cookie_is_secure_over_https(client):
    https = {"base_url": "https://localhost"}
    token = client.get("/api/csrf", **https).json["csrf_token"]
    headers = {"X-CSRFToken": token, "Referer": "https://localhost/"}
    response = client.post("/api/register", json={"username": "alice", "password": PASSWORD}, headers=headers, **https)
    assert response.status_code == 201
    cookie = _session_set_cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/api/me", **https).json["username"] == "alice"


def test_logout_really_ends_the_session(client, app):
    token = register(client, "alice")
    old = session_cookie(client)
    replay = app.test_client()
    replay.set_cookie("session", old)
    assert replay.get("/api/me").status_code == 200  # the copy works while the session lives
    assert send(client, "POST", "/api/logout", token).status_code == 200
    assert replay.get("/api/me").status_code == 401
    assert replay.get("/account").status_code == 302
    assert client.get("/api/me").status_code == 401


def test_password_change_ends_other_sessions_only(client, app):
    token = register(client, "alice")
    other = app.test_client()
    login(other, "alice")
    mine_before = session_cookie(client)
    assert other.get("/api/me").status_code == 200
    response = send(client, "POST", "/api/password", token, json={"old": PASSWORD, "new": "another fine phrase"})
    assert response.status_code == 200
    assert other.get("/api/me").status_code == 401
    assert client.get("/api/me").json["username"] == "alice"  # the changer stays logged in
    replay = app.test_client()
    replay.set_cookie("session", mine_before)
    assert replay.get("/api/me").status_code == 401  # even the changer's own old cookie is dead
    new_token = response.json["csrf_token"]
    assert send(client, "PUT", f"/api/tags/x/papers/{PID}", new_token).status_code == 200
    wait(app)


def test_login_is_rate_limited(make_app):
    """Both login endpoints take from one budget per account and client (10 per 10 minutes by default); 429 with
    Retry-After."""
    app = make_app(RATELIMIT_ENABLED=True)
    register(app.test_client(), "alice")
    client = app.test_client()
    token = csrf(client)
    bad = {"username": "alice", "password": "wrong wrong wrong"}
    for _ in range(5):
        assert send(client, "POST", "/api/login", token, json=bad).status_code == 401
    for _ in range(5):
        assert client.post("/login", data={**bad, "csrf_token": token}).status_code == 401
    limited = send(client, "POST", "/api/login", token, json={"username": "alice", "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.json["error"] == "Too Many Requests"
    assert "Too many attempts for this account or from your address" in limited.json["message"]
    assert 0 < int(limited.headers["Retry-After"]) <= 600
    assert client.get("/api/me").status_code == 401  # the right password did not get through
    page = client.post("/login", data={**bad, "csrf_token": token})
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert "Too many attempts" in html.unescape(page.get_data(as_text=True))
    assert int(page.headers["Retry-After"]) > 0
    other = {"username": "bob", "password": "wrong wrong wrong"}  # another account from the same address
    assert send(client, "POST", "/api/login", token, json=other).status_code == 401


# secret key -----------------------------------------------------------------
def test_production_refuses_to_start_without_a_secret_key(web_settings):
    from webapp import StartupError, create_app

    with pytest.raises(StartupError, match="PAPERFEED_SECRET_KEY"):
        create_app({"PRODUCTION": True}, settings=web_settings)
    with pytest.raises(StartupError):
        create_app(settings=web_settings)  # production is the default
    assert not (web_settings.data_dir / "instance" / "secret_key").exists()
    keyed = dataclasses.replace(web_settings, secret_key="k" * 64)
    app = create_app({"PRODUCTION": True, "RATELIMIT_ENABLED": False}, settings=keyed)
    try:
        assert app.secret_key == "k" * 64
    finally:
        app.extensions["paperfeed"].close()


def test_dev_mode_keeps_one_generated_key(make_app, web_settings):
    from webapp import StartupError, create_app

    path = web_settings.data_dir / "instance" / "secret_key"
    assert not path.exists()
    first = make_app()
    key = path.read_text().strip()
    assert len(key) >= 32 and first.secret_key == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert make_app().secret_key == key
    assert path.read_text().strip() == key
    with pytest.raises(StartupError):  # a dev key never becomes the production key by accident
        create_app({"PRODUCTION": True}, settings=web_settings)


# headers and templates ------------------------------------------------------
def _csp(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in policy.split(";")) if d}


@pytest.mark.parametrize("url", ["/", f"/papers/{PID}", "/login", "/search?q=galaxy", "/nothing", "/papers/abc",
                                 "/api/feed", "/api/me", "/api/papers/abc", "/api/openapi.json", "/static/app.js"])
def test_security_headers(ro_app, url):
    response = ro_app.test_client().get(url)
    csp = _csp(response)
    assert csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"] and csp["default-src"] == ["'self'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


TEMPLATES = sorted((REPO / "webapp" / "templates").glob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_have_no_inline_script(template):
    source = template.read_text(encoding="utf-8")
    opened = re.findall(r"<script\b", source, re.I)
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script\s*>", source, re.I | re.S)
    assert len(scripts) == len(opened)
    for attrs, body in scripts:
        assert re.search(r"\bsrc=", attrs) and body.strip() == "", f"inline script in {template.name}"
    assert not re.search(r"\son[a-z]+\s*=", source, re.I), f"inline event handler in {template.name}"
    assert "javascript:" not in source.lower()


def test_templates_exist():
    assert {"base.html", "feed.html", "paper.html", "error.html"} <= {t.name for t in TEMPLATES}


def test_rendered_pages_have_no_inline_script(ro_app):
    client = ro_app.test_client()
    for url in ("/", f"/papers/{PID}", "/search?q=galaxy", "/login", "/register", "/nothing"):
        page = client.get(url).get_data(as_text=True)
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script\s*>", page, re.I | re.S)
        assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts), url


# bad input ------------------------------------------------------------------
BAD_INPUT = [
    ("/api/papers/2501.99999", 404, "no paper 2501.99999"),
    ("/api/papers/abc", 400, "'abc' is not an arXiv id"),
    ("/api/papers/2503.1234", 400, "ids from 1501 on have five digits"),
    ("/api/papers/2513.00001", 400, "month 13 does not exist"),
    ("/api/papers/../../etc/passwd", 400, "is not an arXiv id"),
    ("/api/papers/..%2F..%2Fetc%2Fpasswd", 400, "is not an arXiv id"),
    ("/api/papers/\u0662\u0665\u0660\u0663.\u0660\u0661\u0662\u0663\u0664", 400, "is not an arXiv id"),
    ("/api/papers/\uff12\uff15\uff10\uff13.01234", 400, "is not an arXiv id"),
    ("/api/papers/hep-th/9901001", 404, "no paper hep-th/9901001"),
    ("/api/papers/2501.99999/similar", 404, "no paper 2501.99999 in the current features"),
    ("/api/papers/2504.13999/similar?limit=0", 400, "limit must be between 1 and 200"),
    ("/api/feed?since=2026-13-01", 400, "since must be a date like"),
    ("/api/feed?until=yesterday", 400, "until must be a date like"),
    ("/api/feed?since=2026-02-01&until=2026-01-01", 400, "since (2026-02-01) is after until (2026-01-01)"),
    ("/api/feed?limit=-1", 400, "limit must be between 1 and 200"),
    ("/api/feed?limit=0", 400, "limit must be between 1 and 200"),
    ("/api/feed?limit=" + "9" * 40, 400, "limit must be between 1 and 200"),
    ("/api/feed?limit=\u0663", 400, "limit must be a whole number"),
    ("/api/feed?limit=2.5", 400, "limit must be a whole number"),
    ("/api/feed?offset=-5", 400, "offset must be between 0 and"),
    ("/api/feed?offset=abc", 400, "offset must be a whole number"),
    ("/api/feed?category=xx.YY", 400, "unknown category 'xx.YY'"),
    ("/api/feed?mode=bogus", 400, "mode must be one of rec, recent, random"),
    ("/api/feed?window=fortnight", 400, "window must be one of"),
    ("/api/feed?mode=rec", 401, "log in to see recommendations"),
    ("/api/search?q=", 400, "empty search query"),
    ("/api/search?q=%20%20", 400, "empty search query"),
    ("/api/search?q=" + "a" * 1001, 400, "longer than 1000 characters"),
    ("/api/search?q=galaxy&offset=x", 400, "offset must be a whole number"),
    ("/api/tokens/abc", 404, "not found"),
    ("/api/nothing", 404, "not found"),
    ("/papers/2501.99999", 404, "No paper 2501.99999 here"),
    ("/papers/abc", 400, "'abc' is not an arXiv id"),
    ("/papers/../../etc/passwd", 400, "is not an arXiv id"),
    ("/papers/2503.1234v2", 400, "ids from 1501 on have five digits"),
    ("/?page=abc", 400, "page must be a whole number"),
    ("/?page=0", 400, "page must be between 1 and 4000"),
    ("/?page=-1", 400, "page must be between 1 and 4000"),
    ("/?page=1000000000", 400, "page must be between 1 and 4000"),
    ("/?since=2026-13-01", 400, "since must be a date like"),
    ("/?since=2026-03-01&until=2026-02-01", 400, "is after until"),
    ("/?category=nope", 400, "unknown category 'nope'"),
    ("/?mode=bogus", 400, "mode must be one of"),
    ("/?window=x", 400, "window must be one of"),
    ("/?mode=rec", 401, "log in to see recommendations"),
    ("/search?q=" + "a" * 1001, 400, "longer than 1000 characters"),
    ("/search?q=galaxy&page=41", 400, "page must be between 1 and 40"),
    ("/nothing", 404, "not found"),
]


@pytest.mark.parametrize("url, status, expected", BAD_INPUT, ids=[u[:50] for u, _, _ in BAD_INPUT])
def test_bad_input_gets_a_clear_error(ro_app, url, status, expected):
    response = ro_app.test_client().get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    if url.startswith("/api/"):
        assert response.is_json and set(response.json) == {"error", "message"}
    else:
        assert response.mimetype == "text/html" and f"<h1>{status} · " in response.get_data(as_text=True)
    assert expected.lower() in message(response).lower()


def test_page_far_past_the_end_is_an_empty_page_not_an_error(ro_app):
    client = ro_app.test_client()
    assert client.get("/api/feed?offset=99000").json["papers"] == []
    page = client.get("/?page=4000")
    assert page.status_code == 200 and "No papers match these filters" in page.get_data(as_text=True)
    assert client.get("/search?q=").status_code == 200  # an empty search box is just the search page


def test_bad_input_for_a_logged_in_user(client):
    token = register(client, "alice")
    for url in ("/api/feed?mode=rec&tag=nope", "/?mode=rec&tag=nope"):
        response = client.get(url)
        assert response.status_code == 404 and "you have no tag 'nope'" in message(response)
    long_tag = client.get("/api/feed", query_string={"mode": "rec", "tag": "x" * 5000})
    assert long_tag.status_code == 404 and len(long_tag.json["message"]) < 100
    cases = [
        ("POST", "/api/login", {"data": "username=alice", "content_type": "text/plain"}, 400, "send a JSON object body"),
        ("POST", "/api/login", {"data": "{not json", "content_type": "application/json"}, 400, "send a JSON object"),
        ("POST", "/api/login", {"json": ["alice", PASSWORD]}, 400, "send a JSON object body"),
        ("POST", "/api/login", {"json": {"username": 5, "password": []}}, 400, "username is required (a string)"),
        ("POST", "/api/login", {"json": {"username": "alice"}}, 400, "password is required (a string)"),
        ("POST", "/api/register", {"json": {"username": ["a"], "password": PASSWORD}}, 400, "username is required"),
        ("POST", "/api/password", {"json": {"old": 1, "new": 2}}, 400, "old is required (a string)"),
        ("POST", "/api/tokens", {"json": {"name": {"a": 1}}}, 400, "name is required (a string)"),
        ("POST", "/api/tokens", {"json": {"name": "n" * 61}}, 400, "token name must be 1-60"),
        ("POST", "/api/login", {"json": {"username": "alice", "password": "x" * 70000}}, 413, "exceeds"),
    ]
    for method, url, kwargs, status, expected in cases:
        response = send(client, method, url, token, **kwargs)
        assert response.status_code == status, (url, kwargs, response.get_data(as_text=True))
        assert response.is_json and expected in response.json["message"], (url, response.json)
    tag(client, token, "t", PID)
    renamed = send(client, "POST", "/api/tags/t/rename", token, data="name=x", content_type="text/plain")
    assert renamed.status_code == 400 and "JSON object" in renamed.json["message"]
    assert client.get("/api/me").json["username"] == "alice"


# no unpickling --------------------------------------------------------------
PICKLING_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal"}
UNPICKLERS = PICKLING_MODULES | {"joblib", "torch"}  # their load()/loads() unpickle


def pickle_risks(source: str, relative: str) -> list[str]:
    """Ways a module could unpickle: imports, loaders, np.load without allow_pickle=False, default SqliteDict."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in PICKLING_MODULES or root == "joblib":
                    problems.append(f"{relative}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            names = {a.name for a in node.names}
            if root in PICKLING_MODULES:
                problems.append(f"{relative}: from {node.module} import ...")
            elif root == "joblib" and not (relative == "recommender/learning/service.py" and names <= {"Parallel", "delayed"}):
                problems.append(f"{relative}: from joblib import {', '.join(sorted(names))}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            keywords = {k.arg: k.value for k in node.keywords}
            if name == "read_pickle" or (name in ("load", "loads") and owner in UNPICKLERS):
                problems.append(f"{relative}:{node.lineno}: {owner}.{name}()")
            if name == "load" and owner in ("np", "numpy"):
                flag = keywords.get("allow_pickle")
                if not (isinstance(flag, ast.Constant) and flag.value is False):
                    problems.append(f"{relative}:{node.lineno}: np.load without allow_pickle=False")
            if name == "SqliteDict" and not {"encode", "decode"} <= set(keywords):
                problems.append(f"{relative}:{node.lineno}: SqliteDict with its default (pickle) codec")
    return problems


def test_the_web_process_never_unpickles():
    problems = []
    for package in ("webapp", "recommender"):
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            problems += pickle_risks(path.read_text(encoding="utf-8"), relative)
    assert problems == []


def test_the_web_app_never_trains_everyone():
    for path in sorted((REPO / "webapp").rglob("*.py")):
        assert "train_users" not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("source", [
    "import pickle", "import joblib", "from joblib import load", "import numpy as np\nnp.load('x', allow_pickle=True)",
    "import numpy as np\nnp.load('x')", "from sqlitedict import SqliteDict\nSqliteDict('x')", "import dill.settings",
    "from pickle import loads", "import pandas as pd\npd.read_pickle('x')", "import torch\ntorch.load('x')",
])
def test_the_pickle_check_catches(source):
    assert pickle_risks(source, "recommender/x.py")
    assert pickle_risks("from joblib import Parallel, delayed", "recommender/learning/service.py") == []
    assert pickle_risks("from joblib import Parallel", "webapp/x.py")


# new generations and odd data ----------------------------------------------
def _wait_for_a_new_generation_name(current: str) -> None:
    # Generation names carry the second they were made; two in one second in one process would collide.
    while time.strftime("gen-%Y%m%dT%H%M%S") == current.rsplit("-", 1)[0]:
        time.sleep(0.05)


def test_a_new_generation_is_served_without_a_restart(client, app, web_settings, monkeypatch):
    import webapp.state
    from recommender.features import FeatureParams
    from recommender.features.index import compute_generation
    from webapp.context import index

    new = "2607.00042"
    client.get("/api/feed")  # load the index
    old = app.extensions["paperfeed"].index()
    with PaperStore(web_settings.papers_path) as store:
        store.upsert_many([Paper(id=new, version=1, title="Pulsar timing arrays and gravitational waves",
                                 abstract="We search pulsar timing array data for a gravitational wave background.",
                                 categories=("astro-ph.HE",), published="2026-07-01", updated="2026-07-01")])
    assert client.get(f"/api/search?q={new}").json["papers"] == []  # stored, not yet in the features
    assert client.get(f"/api/papers/{new}").json["top_terms"] == []
    with app.test_request_context("/api/feed"):
        held = index()
        assert held is old
        monkeypatch.setattr(webapp.state, "RELOAD_CHECK_S", 0.0)
        _wait_for_a_new_generation_name(old.generation)
        with PaperStore(web_settings.papers_path) as store:
            result = compute_generation(store, web_settings.models_dir, FeatureParams(**old.meta["params"]))
        assert result.generation != old.generation and result.papers == len(old) + 1
        assert index() is held  # a request keeps the generation it started with
        assert new not in held.row_of
    found = client.get(f"/api/search?q={new}").json["papers"]
    assert [p["id"] for p in found] == [new]
    assert app.extensions["paperfeed"].index().generation == result.generation
    assert client.get(f"/api/papers/{new}").json["top_terms"]
    assert client.get("/api/feed?limit=200").json["total"] == len(old) + 1
    page = client.get(f"/papers/{new}").get_data(as_text=True)
    assert "not in the current features" not in page and 'class="card"' in page


def test_unknown_ids_in_a_library_do_not_break_it(client, app, web_settings):
    token = register(client, "alice")
    astro = topic_papers(client, "galaxy dark matter halo", "astro-ph", 3)
    tag(client, token, "astro", *astro)
    wait(app)
    conn = sqlite3.connect(web_settings.users_path)
    with conn:
        conn.executemany("INSERT INTO tags (user_id, tag, paper_id, added_at) VALUES (1, ?, ?, 0)",
                         [("astro", "2512.99998"), ("ghost", "hep-th/9901001")])
    conn.close()
    for url in ("/", "/?mode=rec", "/?mode=rec&tag=astro", "/?mode=rec&tag=ghost", "/library", "/api/feed",
                "/api/feed?mode=rec&tag=ghost", "/api/tags", "/api/me", f"/papers/{astro[0]}"):
        response = client.get(url, follow_redirects=True)  # old-style feed links redirect to short ones
        assert response.status_code == 200, (url, response.get_data(as_text=True)[:300])
    library = client.get("/library").get_data(as_text=True)
    assert "2512.99998" in library and "hep-th/9901001" in library
    tags = {t["name"]: t["papers"] for t in client.get("/api/tags").json["tags"]}
    assert "2512.99998" in tags["astro"] and tags["ghost"] == ["hep-th/9901001"]
    tag(client, token, "astro", OTHER)  # a retrain over the odd library
    wait(app)
    assert client.get("/api/me").json["model"]["up_to_date"] is True
    feed = client.get("/api/feed?mode=rec&limit=20").json
    assert feed["mode"] == "rec" and len(feed["papers"]) == 20
    assert client.get("/api/feed?mode=rec&tag=ghost").status_code == 200
