"""Hostile input on every route: never a 5xx, never a traceback.

Crawls every rule of ``app.url_map`` with every method (GET and the state-changing ones), anonymous and
logged in (a session with its CSRF token; API routes also with a bearer token), and puts a battery of
hostile values in each path variable, in each query parameter (including names that collide with
``url_for``'s own arguments), and in JSON and form bodies. Undecodable or surrogate input, deep JSON and
malformed numbers must be refused with a 4xx.
"""
from __future__ import annotations

import re

import pytest

from tests.webhelpers import bearer, csrf, private_app, register, send, tag

pytestmark = pytest.mark.slow

PID = "2504.13999"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
OK_STATUSES = {200, 201, 302, 400, 401, 404, 405, 409, 413, 429}

# Raw URL text (already percent-encoded as a client would send it).
SURROGATES = ["%ED%A0%80", "%ED%BF%BF", "a%ED%B0%80b"]  # UTF-8-style encodings of lone surrogates
UNDECODABLE = ["%FF", "%C0%AF", "%E2%82", "%F8%88%80%80%80"]  # not UTF-8 at all (incl. overlong '/')
CONTROL = ["%00", "%0A", "%0D%0Aset-cookie:x=1", "%09", "%7F", "%1B%5B31m"]
HOSTILE_PATH = SURROGATES + UNDECODABLE + CONTROL + [
    "..", "..%2F..%2Fetc%2Fpasswd", "%2F", "%5C", "a" * 3000, "9" * 40, "-1", "%E2%80%AE", "%EF%BC%8F",
    "%3Cscript%3E", "%25", "%20", "null", f"{PID}v99999999999999999999", "%EF%BF%BD", "%F0%9F%92%A9"]
HOSTILE_QUERY = SURROGATES + UNDECODABLE + CONTROL + [
    "--1", "-0", "+1", "1e9", "0x10", "%D9%A1", "9" * 40, "9" * 5000, "-" * 20 + "1", "", "%20", "a" * 5000,
    "%3Cscript%3E", "2026-02-30", "99999-01-01", "%EF%BC%91"]
# The query parameters each GET route reads ("x": none, so an unknown name), and names that collide with
# url_for's arguments or with path variables. A new route must be added here (checked below).
FEED = ["mode", "tag", "since", "until", "window", "category", "hide_tagged", "hide_seen", "s", "as_of"]
QUERY_NAMES = {
    "views.feed": FEED + ["page"], "api.feed": FEED + ["limit", "offset"], "views.search": ["q", "page"],
    "api.search": ["q", "limit", "offset"], "api.similar": ["limit"], "auth.login": ["next"],
    "exports.api_export": ["format", "tag"], "api.seen_states": ["ids"],
    **{f"exports.download_{ext}": ["tag"] for ext in ("bib", "json", "csv")},
    **{endpoint: ["x"] for endpoint in ("static", "auth.register", "auth.account", "views.paper",
                                        "views.library_page", "api.openapi", "api.csrf_token", "api.me",
                                        "api.paper", "api.tags", "api.tokens", "api.feed_tokens", "atom.feed",
                                        "digest.api_get", "email.link_page")},
}
COLLIDING_NAMES = ["endpoint", "_method", "_external", "_anchor", "_scheme", "values", "raw_id", "tag",
                   "filename", "token_id", "page"]


def _deep(opening: str, closing: str, n: int = 25000) -> str:
    return opening * n + closing * n


JSON_BODIES = [
    _deep("[", "]"),
    _deep('{"a":', "}", 9000)[:-9000] + "1" + "}" * 9000,
    _deep('{"name":[', "]}", 4000),
    '{"username": "\\ud800", "password": "\\udfff\\ud800xxxxxxxx", "name": "\\ud800", "old": "\\udc00", '
    '"new": "x\\ud800xxxxxxxxxx"}',
    '{"username": "a\\u0000b", "password": "\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000", '
    '"name": "\\u0000", "old": "\\u0000", "new": "\\u0000"}',
    '{"username": 1e999999, "password": ' + "9" * 5000 + ', "name": NaN, "old": -Infinity, "new": null}',
    '{"username": {"$gt": ""}, "password": [], "name": {}, "old": true, "new": [[]]}',
    "[]", '"text"', "null", "1", "", "{", '{"name": "x", "name": "y"}',
    "\ufeff{\"name\": \"bom\"}",
]
RAW_JSON_BODIES = [b'{"name": "\xff\xfe", "username": "\xc0\xaf", "password": "\xed\xa0\x80xxxxxxxx"}']
FORM_VALUES = ["%ED%A0%80", "%00", "%FF", "a" * 3000, "%0D%0A", "", "%3Cscript%3E", "9" * 40]
FORM_FIELDS = ["username", "password", "tag", "name", "old", "new", "action", "undo"]


@pytest.fixture(scope="module")
def crawl_app(built10k, tmp_path_factory):
    app = private_app(built10k, tmp_path_factory, "crawl")
    yield app
    app.extensions["paperfeed"].wait_for_retrains()
    app.extensions["paperfeed"].close()


class Visitor:
    """An anonymous or logged-in client that sends one request and records anything broken."""

    def __init__(self, app, mode: str):
        self.app, self.mode = app, mode
        self.client = app.test_client()
        self.headers: dict = {}
        self.failures: list[str] = []
        self.sent = 0
        if mode == "anonymous":
            self.token = csrf(self.client)
        else:
            self.token = register(self.client, f"crawler{mode[:1]}")
            tag(self.client, self.token, "mine", PID)
            if mode == "bearer":
                created = send(self.client, "POST", "/api/tokens", self.token, json={"name": "crawl"}).json
                self.headers = bearer(created["token"])
                self.client = app.test_client()  # no cookies: the token alone

    def relogin(self):
        if self.mode == "session":
            response = send(self.client, "POST", "/api/login", csrf(self.client),
                            json={"username": "crawlers", "password": "long enough passphrase 7"})
            assert response.status_code == 200, response.get_data(as_text=True)
            self.token = response.json["csrf_token"]
        elif self.mode == "anonymous":
            self.token = csrf(self.client)

    def open(self, method: str, url: str, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if method in STATE_CHANGING and self.mode != "bearer":
            headers["X-CSRFToken"] = self.token
        response = self.client.open(url, method=method, headers=headers, **kwargs)
        self.sent += 1
        body = response.get_data(as_text=True)
        if response.status_code not in OK_STATUSES or "Traceback" in body or 'File "/' in body:
            self.failures.append(f"{self.mode} {method} {url[:120]} {kwargs.get('data', '')!r:.80} -> "
                                 f"{response.status_code} {body[:160]!r}")
        if url.rstrip("?").endswith("logout") and response.status_code == 200 or response.status_code == 302 \
                and url.startswith("/logout"):
            self.relogin()
        return response


@pytest.fixture(scope="module")
def visitors(crawl_app):
    return [Visitor(crawl_app, mode) for mode in ("anonymous", "session", "bearer")]


VALID = {"raw_id": PID, "tag": "mine", "token_id": "1", "filename": "app.js", "feed_token": "pff_" + "A" * 43,
         "link_token": "eyJhIjoidGFnIn0.AAAAAA.forged-signature"}


def url_for_rule(rule, values: dict) -> str:
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(rf"<(?:[a-z]+(?:\([^)]*\))?:)?{name}>", values.get(name, VALID[name]), url)
    return url


def routes(app, modes: dict):
    """(rule, method, visitor) for every route, method and the visitors that make sense for it."""
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for visitor in modes:
                if visitor.mode == "bearer" and not rule.rule.startswith("/api/"):
                    continue
                yield rule, method, visitor


def _report(visitors) -> None:
    failures = [f for v in visitors for f in v.failures]
    sent = sum(v.sent for v in visitors)
    for v in visitors:
        v.failures.clear()
    assert not failures, f"{len(failures)} of {sent} hostile requests broke:\n" + "\n".join(failures[:60])


def test_hostile_path_variables(crawl_app, visitors):
    checked = 0
    for rule, method, visitor in routes(crawl_app, visitors):
        for name in sorted(rule.arguments):
            for value in HOSTILE_PATH:
                response = visitor.open(method, url_for_rule(rule, {name: value}))
                checked += 1
                if value in SURROGATES + UNDECODABLE and not (name == "token_id"):
                    assert response.status_code == 400, (method, rule.rule, value, response.status_code)
    _report(visitors)
    assert checked > 1000


def test_hostile_query_parameters(crawl_app, visitors):
    get_endpoints = {r.endpoint for r in crawl_app.url_map.iter_rules() if "GET" in r.methods}
    assert get_endpoints == set(QUERY_NAMES), "list the query parameters of new GET routes in QUERY_NAMES"
    for rule, method, visitor in routes(crawl_app, visitors):
        if method != "GET" and rule.endpoint != "auth.login":
            continue
        base = url_for_rule(rule, {})
        names = QUERY_NAMES[rule.endpoint]
        values = HOSTILE_QUERY if names != ["x"] else SURROGATES + UNDECODABLE + CONTROL
        for name in names:
            for value in values:
                response = visitor.open(method, f"{base}?{name}={value}")
                if value in SURROGATES + UNDECODABLE:
                    assert response.status_code == 400, (rule.rule, name, value, response.status_code)
        if method == "GET":
            for name in COLLIDING_NAMES:  # page=2 makes the feed build its pagination links
                visitor.open(method, f"{base}?page=2&{name}=x&{name}=y")
    _report(visitors)


@pytest.mark.parametrize("url", ["/api/feed?limit=--1", "/api/feed?offset=--1", "/?page=--1",
                                 "/search?q=galaxy&page=--1", f"/api/papers/{PID}/similar?limit=--1",
                                 "/api/search?q=galaxy&limit=--1", "/api/feed?limit=" + "9" * 5000],
                         ids=lambda url: url[:45])
def test_malformed_numbers_are_a_400(crawl_app, url):
    response = crawl_app.test_client().get(url)
    assert response.status_code == 400


@pytest.mark.parametrize("name", ["endpoint", "_method", "_external", "_anchor", "_scheme"])
def test_url_for_names_in_the_query_are_ignored(crawl_app, name):
    response = crawl_app.test_client().get(f"/?page=2&{name}=x")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f"{name}=x" in page and 'href="http' not in page.split("<footer", 1)[0].split('class="pager"', 1)[-1]


MALFORMED_JSON = [b for i, b in enumerate(JSON_BODIES) if i != 4]  # the NUL body is well-formed JSON
JSON_ENDPOINTS = {"api.login", "api.register", "api.password", "api.create_token", "api.rename_tag"}


def test_hostile_json_bodies(crawl_app, visitors):
    for rule, method, visitor in routes(crawl_app, visitors):
        if method not in STATE_CHANGING:
            continue
        url = url_for_rule(rule, {})
        for body in JSON_BODIES:
            response = visitor.open(method, url, data=body.encode("utf-8"), content_type="application/json")
            reads_body = rule.endpoint in JSON_ENDPOINTS and (visitor.mode != "anonymous" or rule.endpoint in (
                "api.login", "api.register"))
            if reads_body and body in MALFORMED_JSON:
                assert response.status_code == 400, (visitor.mode, url, body[:40], response.status_code)
        for body in RAW_JSON_BODIES:
            response = visitor.open(method, url, data=body, content_type="application/json")
            if rule.endpoint in ("api.login", "api.register"):
                assert response.status_code == 400, (visitor.mode, url, response.status_code)
    _report(visitors)


def test_hostile_form_bodies(crawl_app, visitors):
    for rule, method, visitor in routes(crawl_app, visitors):
        if method not in STATE_CHANGING or rule.rule.startswith("/api/"):
            continue
        url = url_for_rule(rule, {})
        for value in FORM_VALUES:
            body = "&".join(f"{field}={value}" for field in FORM_FIELDS) + f"&csrf_token={visitor.token}"
            visitor.open(method, url, data=body, content_type="application/x-www-form-urlencoded")
    _report(visitors)


def test_a_user_error_anywhere_answers_its_status(make_app, monkeypatch):
    """LimitExceeded (409) from the store, on routes that call it: the status, the message, no 500."""
    from recommender.accounts.users import LimitExceeded, UserStore

    app = make_app()
    client = app.test_client()
    token = register(client, "alice")

    def full(*args, **kwargs):
        raise LimitExceeded("at most 2 papers can be marked not interested")

    monkeypatch.setattr(UserStore, "set_not_interested", full)
    response = send(client, "POST", f"/api/papers/{PID}/not-interested", token)
    assert response.status_code == 409 and response.json == {
        "error": "Conflict", "message": "at most 2 papers can be marked not interested"}
    page = client.post(f"/papers/{PID}/not-interested", data={"csrf_token": token})
    assert page.status_code == 409 and "at most 2 papers" in page.get_data(as_text=True)
