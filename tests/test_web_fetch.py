"""Web "fetch from arXiv": search for an id the store lacks, fetch it (POST, CSRF, rate-limited), then its page
and tagging work. arXiv is a real HTTP server on 127.0.0.1 serving recorded arXiv API responses
(../shared/arxiv/fixtures/arxiv_api), reached through the ``arxiv_api_url`` setting: no network."""
from __future__ import annotations

import dataclasses
import html
import json
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest

from recommender.settings import load_settings
from tests.httpserver import LoopbackServer
from tests.webhelpers import bearer, csrf, message, page_csrf, register, send

pytestmark = pytest.mark.slow

NEW = "1605.08386"        # recorded: one entry
OLD_STYLE = "astro-ph/0601001"  # recorded: one entry
ABSENT = "2501.99999"     # answered with arXiv's recorded reply for an id it does not have (0 results)


def _query(url: str) -> tuple:
    return tuple(sorted((k, tuple(v)) for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()))


class RecordedArxiv(LoopbackServer):
    """A real HTTP server that answers each recorded query with its recorded status and body."""

    def __init__(self, fixtures):
        self.answers = {}
        for name in ("id_1605.08386_s0_m100_199195aa31ad", "id_astro-ph_0601001_s0_m100_3150dca9dc76"):
            rec = json.loads((fixtures / f"{name}.json").read_text(encoding="utf-8"))
            self.answers[_query(rec["url"])] = (rec["status_code"], rec["body"])
        empty = json.loads((fixtures / "id_0000.0000_s0_m100_8b51d9633a68.json").read_text(encoding="utf-8"))
        self.answers[_query(empty["url"].replace("0000.0000", ABSENT))] = (200, empty["body"])
        super().__init__(lambda path: self.answers.get(_query(path), (404, "no recording for this query")),
                         "/api/query", "application/atom+xml; charset=utf-8")


@pytest.fixture(scope="module")
def arxiv(arxiv_api_fixtures):
    server = RecordedArxiv(arxiv_api_fixtures)
    yield server
    server.close()


@pytest.fixture(scope="module")
def app(built10k, tmp_path_factory, arxiv):
    from webapp import create_app

    root = tmp_path_factory.mktemp("fetch_app")
    shutil.copytree(built10k.data_dir, root / "data")
    shutil.copytree(built10k.models_dir, root / "models")
    settings = load_settings(environ={}, data_dir=root / "data", models_dir=root / "models", n_jobs=1,
                             fetch_delay=0.0, fetch_timeout=5.0, arxiv_api_url=arxiv.url)
    app = create_app({"PRODUCTION": False, "TESTING": True, "RATELIMIT_ENABLED": False}, settings=settings)
    yield app
    app.extensions["paperfeed"].close()


def test_anonymous_search_for_a_missing_id_offers_login(app, arxiv):
    page = app.test_client().get("/search", query_string={"q": NEW})
    text = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 200 and f"{NEW} is not in this Paperfeed yet" in text
    assert "Log in</a> to fetch it from arXiv" in text and "/fetch" not in text


def test_fetch_then_the_page_and_tagging_work(app, arxiv):
    client = app.test_client()
    token = register(client, "fetcher")
    page = client.get("/search", query_string={"q": f"https://arxiv.org/pdf/{NEW}v1.pdf"}).get_data(as_text=True)
    assert f'action="/papers/{NEW}/fetch"' in page and f"Fetch {NEW} from arXiv" in page
    before = len(arxiv.requests)
    assert client.post(f"/papers/{NEW}/fetch").status_code == 400  # no CSRF token: nothing asked of arXiv
    assert len(arxiv.requests) == before
    response = client.post(f"/papers/{NEW}/fetch", data={"csrf_token": page_csrf(page)})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/papers/{NEW}")
    assert len(arxiv.requests) == before + 1 and f"id_list={NEW}" in arxiv.requests[-1]
    paper = client.get(f"/papers/{NEW}")
    text = " ".join(html.unescape(paper.get_data(as_text=True)).split())
    assert paper.status_code == 200 and f"Fetched {NEW} from arXiv" in text
    assert "appear after the next <code>paperfeed compute</code>. You can tag it now." in text
    response = send(client, "PUT", f"/api/tags/fetched/papers/{NEW}", token)
    assert response.status_code == 200 and response.json["tags"] == ["fetched"]
    app.extensions["paperfeed"].wait_for_retrains()
    assert client.get("/api/me").status_code == 200  # a model over papers not in the features is no error
    assert client.get(f"/papers/{NEW}").status_code == 200
    # now the search goes straight to it, and a second fetch asks arXiv nothing
    assert client.get("/search", query_string={"q": NEW}).headers["Location"].endswith(f"/papers/{NEW}")
    assert send(client, "POST", f"/papers/{NEW}/fetch", token).status_code == 302
    assert len(arxiv.requests) == before + 1
    assert NEW in client.get("/library/export.bib").get_data(as_text=True)


def test_not_on_arxiv_is_a_clear_404_page(app, arxiv):
    client = app.test_client()
    token = register(client, "seeker")
    response = send(client, "POST", f"/papers/{ABSENT}/fetch", token)
    assert response.status_code == 404 and f"arXiv has no paper {ABSENT}" in html.unescape(
        response.get_data(as_text=True))


def test_unreachable_arxiv_is_a_clear_502(app, arxiv):
    client = app.test_client()
    token = register(client, "offline")
    state = app.extensions["paperfeed"]
    real = state.settings
    state.settings = dataclasses.replace(real, arxiv_api_url="http://127.0.0.1:9/api/query")  # nothing listens
    try:
        page = send(client, "POST", "/papers/2501.99998/fetch", token)
        api = send(client, "POST", "/api/papers/2501.99998/fetch", token)
    finally:
        state.settings = real
    assert page.status_code == 502 and "arXiv could not be reached" in html.unescape(page.get_data(as_text=True))
    assert api.status_code == 502 and "arXiv could not be reached" in api.json["message"]
    assert "Traceback" not in page.get_data(as_text=True)


def test_api_fetch_with_a_token(app, arxiv):
    client = app.test_client()
    token = register(client, "scripter")
    secret = send(client, "POST", "/api/tokens", token, json={"name": "s"}).json["token"]
    anon = app.test_client()
    assert send(anon, "POST", f"/api/papers/{OLD_STYLE}/fetch", csrf(anon)).status_code == 401
    response = anon.post(f"/api/papers/{OLD_STYLE}v1/fetch", headers=bearer(secret))
    assert response.status_code == 200 and response.json == {"id": OLD_STYLE, "fetched": True, "added": 1,
                                                             "updated": 0}
    again = anon.post(f"/api/papers/{OLD_STYLE}/fetch", headers=bearer(secret))
    assert again.json["fetched"] is False
    assert anon.get(f"/api/papers/{OLD_STYLE}").json["id"] == OLD_STYLE
    missing = anon.post(f"/api/papers/{ABSENT}/fetch", headers=bearer(secret))
    assert missing.status_code == 404 and missing.json["message"] == f"arXiv has no paper {ABSENT}"


def test_fetches_are_rate_limited_per_user(app, arxiv):
    client = app.test_client()
    token = register(client, "greedy")
    app.config["ARXIV_FETCHES_PER_USER"] = (2, 3600)
    try:
        codes = [send(client, "POST", f"/api/papers/{ABSENT}/fetch", token).status_code for _ in range(2)]
        third = send(client, "POST", f"/api/papers/{ABSENT}/fetch", token)
        page = send(client, "POST", f"/papers/{ABSENT}/fetch", token)
    finally:
        app.config["ARXIV_FETCHES_PER_USER"] = (20, 3600)
    assert codes == [404, 404]
    assert third.status_code == 429 and int(third.headers["Retry-After"]) > 0
    assert "fetched many papers from arXiv" in message(third)
    assert page.status_code == 429 and "Try again in" in html.unescape(page.get_data(as_text=True))
    other = app.test_client()  # another user is not held back by this one's budget
    assert send(other, "POST", f"/api/papers/{ABSENT}/fetch", register(other, "patient")).status_code == 404
