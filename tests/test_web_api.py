"""The JSON API on the real 10k sample, with CSRF on: every route in webapp/api.py and its documented shape."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from recommender.corpus.papers import Paper
from recommender.corpus.store import PaperStore
from tests.webhelpers import PASSWORD, bearer, csrf, login, register, send, tag, topic_papers

pytestmark = pytest.mark.slow

CARD_KEYS = {"id", "title", "authors", "categories", "date", "score", "percentile", "code_url", "links"}
ASTRO_QUERY = "galaxy dark matter halo"


@pytest.fixture(scope="module")
def corpus(built10k):
    """Every paper of the 10k sample, read straight from the store (not through the app)."""
    with PaperStore(built10k.papers_path, readonly=True) as store:
        return {p.id: p for p in store.iter_papers()}


def is_astro(card) -> bool:
    return any(c.startswith("astro-ph") for c in card["categories"])


def feed(client, **params):
    response = client.get("/api/feed", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def wait(app):
    app.extensions["paperfeed"].wait_for_retrains()


# accounts -----------------------------------------------------------------
def test_csrf_token_is_required_and_accepted(client):
    token = csrf(client)
    assert isinstance(token, str) and len(token) > 20
    assert client.post("/api/logout").status_code == 400
    assert send(client, "POST", "/api/logout", token).status_code == 200


def test_register_logs_in_and_me_describes_the_user(client):
    token = register(client, "alice")
    me = client.get("/api/me")
    assert me.status_code == 200
    assert me.json["username"] == "alice"
    assert me.json["tags"] == {}
    assert me.json["model"] == {"trained_at": None, "up_to_date": False, "retraining": False, "carried_over": False,
                                "error": None, "retry_in": None}
    assert token


def test_register_refuses_a_taken_name_case_insensitively(client, app):
    register(client, "alice")
    other = app.test_client()
    response = send(other, "POST", "/api/register", csrf(other), json={"username": "ALICE", "password": PASSWORD})
    assert response.status_code == 400
    assert "taken" in response.json["message"]


def test_me_needs_a_login(client):
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.json["error"] == "Unauthorized"
    assert "Bearer" in response.json["message"]


def test_login_right_and_wrong(client, app):
    register(app.test_client(), "alice")
    wrong = send(client, "POST", "/api/login", csrf(client), json={"username": "alice", "password": "not it at all"})
    assert wrong.status_code == 401 and wrong.json["message"] == "wrong username or password"
    nobody = send(client, "POST", "/api/login", csrf(client), json={"username": "nobody", "password": PASSWORD})
    assert nobody.status_code == 401 and nobody.json["message"] == "wrong username or password"
    assert client.get("/api/me").status_code == 401
    response = send(client, "POST", "/api/login", csrf(client), json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json["username"] == "alice" and response.json["csrf_token"]
    assert client.get("/api/me").json["username"] == "alice"


def test_logout_ends_the_session(client):
    token = register(client, "alice")
    response = send(client, "POST", "/api/logout", token)
    assert response.status_code == 200 and response.json == {"ok": True}
    assert client.get("/api/me").status_code == 401


def test_password_change(client, app):
    token = register(client, "alice")
    wrong = send(client, "POST", "/api/password", token, json={"old": "not the password", "new": "another fine phrase"})
    assert wrong.status_code == 400 and wrong.json["message"] == "current password is wrong"
    response = send(client, "POST", "/api/password", token, json={"old": PASSWORD, "new": "another fine phrase"})
    assert response.status_code == 200 and response.json["ok"] is True and response.json["csrf_token"]
    fresh = app.test_client()
    old = send(fresh, "POST", "/api/login", csrf(fresh), json={"username": "alice", "password": PASSWORD})
    assert old.status_code == 401
    login(fresh, "alice", "another fine phrase")


def test_password_needs_a_login(client):
    response = send(client, "POST", "/api/password", csrf(client), json={"old": PASSWORD, "new": "another fine phrase"})
    assert response.status_code == 401


# feed ---------------------------------------------------------------------
def test_feed_shape_and_anonymous_default_is_newest(client, corpus):
    data = feed(client, limit=30)
    assert data["mode"] == "recent" and data["notice"] is None and data["offset"] == 0
    assert data["total"] == len(corpus) == 10000
    papers = data["papers"]
    assert len(papers) == 30 and len({p["id"] for p in papers}) == 30
    for card in papers:
        assert set(card) == CARD_KEYS
        paper = corpus[card["id"]]
        assert card["title"] == paper.title and card["authors"] == list(paper.authors)
        assert card["categories"] == list(paper.categories) and card["date"] == paper.published
    dates = [p["date"] for p in papers]
    assert dates == sorted(dates, reverse=True)
    assert dates[0] == max(p.published for p in corpus.values())


def test_feed_recommended_needs_a_login(client):
    response = client.get("/api/feed?mode=rec")
    assert response.status_code == 401
    assert "log in" in response.json["message"]


def test_feed_before_any_tag_falls_back_to_newest_with_a_notice(client):
    register(client, "alice")
    data = feed(client, mode="rec", limit=10)
    assert data["mode"] == "recent"
    assert "Tag a few papers" in data["notice"]
    assert [p["id"] for p in data["papers"]] == [p["id"] for p in feed(client, mode="recent", limit=10)["papers"]]
    assert feed(client, limit=10)["notice"]  # logged in, the default mode is rec


def test_feed_since_until(client, corpus):
    data = feed(client, since="2026-01-01", until="2026-01-31", limit=200)
    expected = sum(1 for p in corpus.values() if "2026-01-01" <= p.published <= "2026-01-31")
    assert data["total"] == expected > 0
    assert all("2026-01-01" <= p["date"] <= "2026-01-31" for p in data["papers"])
    assert data["papers"][0]["date"] == max(p.published for p in corpus.values() if p.published <= "2026-01-31")


def test_feed_window_counts_back_from_the_newest_paper(client, corpus):
    last = dt.date.fromisoformat(max(p.published for p in corpus.values()))
    first = (last - dt.timedelta(days=6)).isoformat()
    data = feed(client, window="week", limit=200)
    assert data["total"] == sum(1 for p in corpus.values() if p.published >= first) > 0
    assert all(p["date"] >= first for p in data["papers"])
    month = feed(client, window="month", limit=1)
    assert month["total"] > data["total"]


def test_feed_category(client, corpus):
    data = feed(client, category="astro-ph.GA", limit=50)
    assert data["total"] == sum(1 for p in corpus.values() if "astro-ph.GA" in p.categories) > 0
    assert len(data["papers"]) == 50
    assert all("astro-ph.GA" in p["categories"] for p in data["papers"])


def test_feed_limit_and_offset_page_consistently(client):
    whole = [p["id"] for p in feed(client, mode="recent", limit=40)["papers"]]
    second = feed(client, mode="recent", limit=20, offset=20)
    assert second["offset"] == 20
    assert [p["id"] for p in second["papers"]] == whole[20:40]
    assert len(feed(client, limit=3)["papers"]) == 3


def test_feed_random_respects_filters(client, corpus):
    data = feed(client, mode="random", category="quant-ph", limit=15)
    assert data["mode"] == "random"
    assert data["total"] == sum(1 for p in corpus.values() if "quant-ph" in p.categories)
    assert len(data["papers"]) == 15 and len({p["id"] for p in data["papers"]}) == 15
    assert all("quant-ph" in p["categories"] and p["score"] == 0 for p in data["papers"])


def test_feed_hide_tagged(client):
    token = register(client, "alice")
    newest = feed(client, mode="recent", limit=1)["papers"][0]["id"]
    tag(client, token, "mine", newest)
    assert newest in [p["id"] for p in feed(client, mode="recent", limit=5)["papers"]]  # recent shows by default
    assert newest not in [p["id"] for p in feed(client, mode="recent", limit=5, hide_tagged=1)["papers"]]
    assert newest in [p["id"] for p in feed(client, mode="recent", limit=5, hide_tagged=0)["papers"]]


def test_known_answer_astro_tags_give_an_astro_feed(client, app):
    token = register(client, "alice")
    before = feed(client, mode="rec", limit=20)
    assert before["mode"] == "recent" and before["notice"]
    astro = topic_papers(client, ASTRO_QUERY, "astro-ph", 5)
    tag(client, token, "astro", *astro)
    wait(app)
    me = client.get("/api/me").json
    assert me["tags"] == {"astro": 5}
    assert me["model"]["up_to_date"] is True and me["model"]["retraining"] is False
    assert me["model"]["trained_at"] is not None
    for params in ({"mode": "rec"}, {"mode": "rec", "tag": "astro"}):
        data = feed(client, limit=20, **params)
        assert data["mode"] == "rec" and data["notice"] is None
        papers = data["papers"]
        assert len(papers) == 20
        assert sum(map(is_astro, papers)) >= 15, [p["categories"] for p in papers]
        assert not {p["id"] for p in papers} & set(astro)
        scores = [p["score"] for p in papers]
        assert scores == sorted(scores, reverse=True)
    shown = feed(client, mode="rec", limit=200, hide_tagged=0)["papers"]
    assert set(astro) <= {p["id"] for p in shown}  # the tagged papers themselves rank high once shown


def test_feed_tag_parameter_picks_the_tags_model(client, app):
    token = register(client, "alice")
    tag(client, token, "astro", *topic_papers(client, ASTRO_QUERY, "astro-ph", 5))
    tag(client, token, "vision", *topic_papers(client, "image segmentation", "cs.CV", 5))
    wait(app)
    vision = feed(client, mode="rec", tag="vision", limit=20)["papers"]
    astro = feed(client, mode="rec", tag="astro", limit=20)["papers"]
    assert sum("cs.CV" in p["categories"] for p in vision) >= 15
    assert sum(map(is_astro, astro)) >= 15
    both = client.get("/api/feed?mode=rec&tag=astro&tag=vision&limit=20")
    assert both.status_code == 200 and both.json["mode"] == "rec"
    unknown = client.get("/api/feed?mode=rec&tag=nope")
    assert unknown.status_code == 404 and "nope" in unknown.json["message"]


def test_not_interested_drops_a_paper_from_the_feed(client, app):
    token = register(client, "alice")
    tag(client, token, "astro", *topic_papers(client, ASTRO_QUERY, "astro-ph", 5))
    wait(app)
    top = feed(client, mode="rec", limit=5)["papers"][0]["id"]
    response = send(client, "POST", f"/api/papers/{top}/not-interested", token)
    assert response.status_code == 200 and response.json == {"id": top, "not_interested": True}
    assert client.get(f"/api/papers/{top}").json["not_interested"] is True
    wait(app)
    assert top not in [p["id"] for p in feed(client, mode="rec", limit=50)["papers"]]
    response = send(client, "DELETE", f"/api/papers/{top}/not-interested", token)
    assert response.status_code == 200 and response.json["not_interested"] is False
    assert client.get(f"/api/papers/{top}").json["not_interested"] is False
    wait(app)


def test_not_interested_needs_a_known_paper_and_a_login(client, app):
    token = register(client, "alice")
    assert send(client, "POST", "/api/papers/2501.99999/not-interested", token).status_code == 404
    assert send(client, "POST", "/api/papers/abc/not-interested", token).status_code == 400
    anon = app.test_client()
    assert send(anon, "POST", "/api/papers/2504.13999/not-interested", csrf(anon)).status_code == 401


# papers, similar, search ---------------------------------------------------
def test_paper_detail(client, corpus):
    pid = "2504.13999"
    response = client.get(f"/api/papers/{pid}")
    assert response.status_code == 200
    data = response.json
    paper = corpus[pid]
    assert data["id"] == pid and data["title"] == paper.title and data["abstract"] == paper.abstract
    assert data["authors"] == list(paper.authors) and data["categories"] == list(paper.categories)
    assert data["published"] == paper.published
    weights = [t["weight"] for t in data["top_terms"]]
    assert len(weights) >= 5 and weights == sorted(weights, reverse=True)
    text = paper.text.lower()
    assert all(word in text for t in data["top_terms"] for word in t["term"].split())
    assert "tags" not in data  # anonymous


def test_paper_detail_with_a_version_is_the_same_paper(client):
    plain = client.get("/api/papers/2504.13999").json
    assert client.get("/api/papers/2504.13999v1").json == plain
    assert client.get("/api/papers/2504.13999v7").json == plain  # a version suffix is ignored


def test_paper_detail_shows_my_tags(client):
    token = register(client, "alice")
    tag(client, token, "radiation", "2504.13999")
    data = client.get("/api/papers/2504.13999").json
    assert data["tags"] == ["radiation"] and data["not_interested"] is False


def test_old_style_ids_route_through_every_paper_url(client, app, web_settings, corpus):
    assert not any("/" in pid for pid in corpus)  # the 10k sample has only new-style ids
    unknown = "hep-th/9901001"
    assert client.get(f"/api/papers/{unknown}").status_code == 404
    assert client.get(f"/api/papers/{unknown}/similar").status_code == 404
    # An old-style paper in the store (not yet in the features) is reachable through every route.
    pid = "astro-ph/0101001"
    with PaperStore(web_settings.papers_path) as store:
        store.upsert_many([Paper(id=pid, version=2, title="An old paper", abstract="Old text.",
                                 categories=("astro-ph",), published="2001-01-01", updated="2001-02-01")])
    response = client.get(f"/api/papers/{pid}v2")
    assert response.status_code == 200
    assert response.json["id"] == pid and response.json["top_terms"] == []
    similar = client.get(f"/api/papers/{pid}/similar")
    assert similar.status_code == 404 and "in the current features" in similar.json["message"]
    token = register(client, "alice")
    assert send(client, "PUT", f"/api/tags/old/papers/{unknown}", token).status_code == 404
    assert send(client, "PUT", f"/api/tags/old/papers/{pid}", token).json["tags"] == ["old"]
    assert client.get("/api/tags").json["tags"] == [{"name": "old", "count": 1, "papers": [pid]}]
    assert send(client, "POST", f"/api/papers/{pid}/not-interested", token).status_code == 200
    assert send(client, "DELETE", f"/api/tags/old/papers/{pid}", token).json["changed"] is True
    wait(app)


def test_similar(client, corpus):
    pid = "2504.13999"
    response = client.get(f"/api/papers/{pid}/similar?limit=10")
    assert response.status_code == 200
    papers = response.json["papers"]
    assert len(papers) == 10 and pid not in {p["id"] for p in papers}
    assert all(set(p) == CARD_KEYS for p in papers)
    scores = [p["score"] for p in papers]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1
    assert sum(map(is_astro, papers)) >= 5  # an astrophysics paper's neighbours; astro-ph is about a tenth of the sample
    assert len(client.get(f"/api/papers/{pid}v1/similar?limit=3").json["papers"]) == 3
    assert client.get("/api/papers/2501.99999/similar").status_code == 404


def test_search_keywords(client, corpus):
    response = client.get("/api/search?q=galaxy&limit=30")
    assert response.status_code == 200
    data = response.json
    assert data["query"] == "galaxy" and len(data["papers"]) == 30
    for card in data["papers"]:
        assert "galaxy" in corpus[card["id"]].text.lower()
    scores = [p["score"] for p in data["papers"]]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    page2 = client.get("/api/search?q=galaxy&limit=10&offset=10").json["papers"]
    assert [p["id"] for p in page2] == [p["id"] for p in data["papers"][10:20]]


@pytest.mark.parametrize("query", ["2504.13999", "2504.13999v1", "arXiv:2504.13999", "https://arxiv.org/abs/2504.13999"])
def test_search_by_arxiv_id(client, query):
    data = client.get("/api/search", query_string={"q": query}).json
    assert [(p["id"], p["score"]) for p in data["papers"]] == [("2504.13999", 1.0)]


# tags -----------------------------------------------------------------------
def test_tags_lifecycle(client, app):
    token = register(client, "alice")
    assert client.get("/api/tags").json == {"tags": []}
    first = send(client, "PUT", "/api/tags/stars/papers/2504.13999", token)
    assert first.status_code == 200
    assert first.json == {"tag": "stars", "id": "2504.13999", "changed": True, "tags": ["stars"]}
    again = send(client, "PUT", "/api/tags/stars/papers/2504.13999v1", token)
    assert again.json["changed"] is False
    tag(client, token, "stars", "2510.00095")
    tag(client, token, "disks", "2504.13999")
    listed = {t["name"]: t for t in client.get("/api/tags").json["tags"]}
    assert set(listed) == {"stars", "disks"}
    assert listed["stars"]["count"] == 2 and set(listed["stars"]["papers"]) == {"2504.13999", "2510.00095"}
    removed = send(client, "DELETE", "/api/tags/stars/papers/2510.00095", token)
    assert removed.json["changed"] is True and removed.json["tags"] == []
    renamed = send(client, "POST", "/api/tags/stars/rename", token, json={"name": "starlight"})
    assert renamed.status_code == 200
    assert {t["name"] for t in client.get("/api/tags").json["tags"]} == {"starlight", "disks"}
    merged = send(client, "POST", "/api/tags/starlight/rename", token, json={"name": "disks"})
    assert merged.status_code == 200
    assert client.get("/api/tags").json["tags"] == [{"name": "disks", "count": 1, "papers": ["2504.13999"]}]
    assert send(client, "DELETE", "/api/tags/disks", token).json == {"ok": True}
    assert client.get("/api/tags").json == {"tags": []}
    assert send(client, "DELETE", "/api/tags/disks", token).status_code == 404
    wait(app)


def test_tag_errors(client):
    token = register(client, "alice")
    unknown = send(client, "PUT", "/api/tags/x/papers/2501.99999", token)
    assert unknown.status_code == 404 and "unknown paper 2501.99999" in unknown.json["message"]
    bad = send(client, "PUT", "/api/tags/x/papers/abc", token)
    assert bad.status_code == 400 and "not an arXiv id" in bad.json["message"]
    long_tag = send(client, "PUT", "/api/tags/" + "t" * 41 + "/papers/2504.13999", token)
    assert long_tag.status_code == 400 and "1-40 characters" in long_tag.json["message"]
    rename_missing = send(client, "POST", "/api/tags/nope/rename", token, json={"name": "x"})
    assert rename_missing.status_code == 404
    tag(client, token, "ok", "2504.13999")
    rename_bad = send(client, "POST", "/api/tags/ok/rename", token, json={"name": "no/slash"})
    assert rename_bad.status_code == 400
    rename_type = send(client, "POST", "/api/tags/ok/rename", token, json={"name": 3})
    assert rename_type.status_code == 400 and "name is required" in rename_type.json["message"]
    assert [t["name"] for t in client.get("/api/tags").json["tags"]] == ["ok"]


def test_tag_routes_need_a_login(client):
    token = csrf(client)
    assert client.get("/api/tags").status_code == 401
    assert send(client, "PUT", "/api/tags/x/papers/2504.13999", token).status_code == 401
    assert send(client, "DELETE", "/api/tags/x", token).status_code == 401


# tokens -------------------------------------------------------------------
def test_tokens_lifecycle(client):
    token = register(client, "alice")
    assert client.get("/api/tokens").json == {"tokens": []}
    created = send(client, "POST", "/api/tokens", token, json={"name": "laptop"})
    assert created.status_code == 201
    secret, token_id = created.json["token"], created.json["id"]
    assert secret.startswith("pf_") and len(secret) > 30
    listed = client.get("/api/tokens")
    assert [(t["id"], t["name"]) for t in listed.json["tokens"]] == [(token_id, "laptop")]
    assert secret not in listed.get_data(as_text=True)
    assert "token_hash" not in listed.json["tokens"][0]
    assert send(client, "DELETE", f"/api/tokens/{token_id}", token).json == {"ok": True}
    assert client.get("/api/tokens").json == {"tokens": []}
    assert send(client, "DELETE", f"/api/tokens/{token_id}", token).status_code == 404
    empty = send(client, "POST", "/api/tokens", token, json={"name": "  "})
    assert empty.status_code == 400 and "token name must be 1-60" in empty.json["message"]


def test_bearer_token_works_without_csrf(client, app):
    token = register(client, "alice")
    secret = send(client, "POST", "/api/tokens", token, json={"name": "script"}).json["token"]
    script = app.test_client()
    response = script.put("/api/tags/fromscript/papers/2504.13999", headers=bearer(secret))
    assert response.status_code == 200 and response.json["changed"] is True
    assert script.get("/api/me", headers=bearer(secret)).json["username"] == "alice"
    assert script.get("/api/me").status_code == 401  # the token is not turned into a session
    assert [t["name"] for t in client.get("/api/tags").json["tags"]] == ["fromscript"]
    last_used = client.get("/api/tokens").json["tokens"][0]["last_used"]
    assert last_used is not None
    wait(app)


def test_revoked_and_garbage_tokens_get_401(client, app):
    token = register(client, "alice")
    created = send(client, "POST", "/api/tokens", token, json={"name": "script"}).json
    assert send(client, "DELETE", f"/api/tokens/{created['id']}", token).status_code == 200
    script = app.test_client()
    for secret in (created["token"], "pf_garbage", "x" * 200):
        put = script.put("/api/tags/x/papers/2504.13999", headers=bearer(secret))
        assert put.status_code == 401, put.get_data(as_text=True)
        assert "token" in put.json["message"]
        assert script.get("/api/me", headers=bearer(secret)).status_code == 401
        assert script.get("/api/feed", headers=bearer(secret)).status_code == 401
    assert client.get("/api/tags").json == {"tags": []}


def test_a_bad_token_does_not_fall_back_to_the_session(client):
    token = register(client, "alice")
    response = client.put("/api/tags/x/papers/2504.13999", headers={**bearer("pf_garbage"), "X-CSRFToken": token})
    assert response.status_code == 401
    assert client.get("/api/tags").json == {"tags": []}


# OpenAPI ------------------------------------------------------------------
def _openapi_path(rule: str) -> str:
    names = {"raw_id": "id"}
    return re.sub(r"<(?:[a-z]+:)?(\w+)>", lambda m: "{" + names.get(m.group(1), m.group(1)) + "}", rule)


def test_openapi_documents_every_api_route(client, app):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    routes = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/")]
    assert len(routes) >= 18
    for rule in routes:
        path = _openapi_path(rule.rule)
        assert path in paths, f"{rule.rule} is not in the OpenAPI spec (as {path})"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths[path], f"{method} {path} is not documented"
    assert set(paths) == {_openapi_path(r.rule) for r in routes}  # and nothing documented that does not exist
    for path, ops in paths.items():
        for op in ops.values():
            named = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert named == set(re.findall(r"{(\w+)}", path)), f"path parameters of {path}"
