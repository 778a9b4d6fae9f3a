"""The HTML pages on the real 10k sample, with CSRF on, driven like a browser without JavaScript."""
from __future__ import annotations

import html
import math
import re

import pytest

from recommender.corpus.store import PaperStore
from tests.webhelpers import PASSWORD, bearer, card_ids, csrf, page_csrf, register, send, tag, topic_papers

pytestmark = pytest.mark.slow

PID = "2504.13999"  # an astrophysics paper of the 10k sample


def get(client, url, status=200, **kwargs):
    response = client.get(url, **kwargs)
    assert response.status_code == status, (url, response.status_code, response.get_data(as_text=True)[:500])
    return response.get_data(as_text=True)


def api_ids(client, url, **params) -> list[str]:
    return [p["id"] for p in client.get(url, query_string=params).json["papers"]]


def text(page: str) -> str:
    """The page with tags stripped and entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def current_page(page: str) -> str:
    return re.search(r'aria-current="page"[^>]*>\s*(\d+)\s*<', page).group(1)


def flashes(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<p class="flash \w+">(.*?)</p>', page)]


def trained_astro_user(client, app) -> list[str]:
    token = register(client, "alice")
    astro = topic_papers(client, "galaxy dark matter halo", "astro-ph", 5)
    tag(client, token, "astro", *astro)
    app.extensions["paperfeed"].wait_for_retrains()
    return astro


# feed ---------------------------------------------------------------------
def test_feed_anonymous_shows_the_newest_papers(client):
    page = get(client, "/")
    assert re.search(r"<title>Newest\b", page)
    assert card_ids(page) == api_ids(client, "/api/feed", mode="recent", limit=25)
    assert 'value="rec"' not in page  # no Recommended choice without an account
    assert "10,000 papers" in text(page)
    assert current_page(page) == "1" and 'href="/?page=2"' in page
    assert 'href="/login"' in page and 'href="/register"' in page


def test_feed_modes(client):
    recent = get(client, "/?m=recent")
    assert card_ids(recent) == api_ids(client, "/api/feed", mode="recent", limit=25)
    random = get(client, "/?m=random")
    assert re.search(r"<title>Random\b", random)
    assert len(set(card_ids(random))) == 25
    assert 'class="pager"' not in random  # a random sample has no pages


def test_feed_filters_match_the_api(client):
    params = {"mode": "recent", "window": "month", "category": "cs.CV"}
    page = get(client, "/?m=recent&w=month&c=cs.CV")
    ids = card_ids(page)
    assert ids == api_ids(client, "/api/feed", limit=25, **params)
    assert len(ids) == 25
    assert re.search(r'<option value="cs.CV"\s+selected', page) and re.search(r'<option value="month"\s+selected', page)
    total = client.get("/api/feed", query_string=params).json["total"]
    assert f"{total:,} papers" in text(page)


def test_feed_page_numbers(client):
    page = get(client, "/?m=recent&c=cs.CV&page=3")
    assert card_ids(page) == api_ids(client, "/api/feed", mode="recent", category="cs.CV", limit=25, offset=50)
    assert current_page(page) == "3"
    links = [html.unescape(h) for h in re.findall(r'<a href="(/\?[^"]*page=\d+[^"]*)">', page)]
    assert links and all("c=cs.CV" in h and "m=recent" in h for h in links)
    assert any("page=4" in h for h in links) and any("page=1" in h for h in links)


def test_feed_for_a_new_user_has_a_notice(client):
    register(client, "alice")
    page = get(client, "/")
    assert "Tag a few papers to get recommendations" in text(page)
    assert 'value="rec"' in page and "hide tagged" in page


def test_feed_recommended_for_a_tag_and_hide_tagged(client, app):
    astro = trained_astro_user(client, app)
    page = get(client, "/?t=astro&w=all")
    assert "ranked for astro" in text(page)
    assert re.search(r"<title>Recommended\b", page)
    ids = card_ids(page)
    assert ids == api_ids(client, "/api/feed", mode="rec", tag="astro", limit=25)
    assert not set(ids) & set(astro)
    assert "model trained" in text(page)
    shown = get(client, "/?t=astro&w=all&h=0")
    assert set(astro) & set(card_ids(shown))
    pressed = set(re.findall(r'data-tag="astro" data-paper="([^"]+)"\s+aria-pressed="true"', shown))
    assert pressed == set(astro) & set(card_ids(shown))


# search -------------------------------------------------------------------
def test_search_page(client):
    page = get(client, "/search?q=galaxy")
    assert "Results for “galaxy”" in page
    assert card_ids(page) == api_ids(client, "/api/search", q="galaxy", limit=25)
    assert 'value="galaxy"' in page  # the box keeps the query
    second = get(client, "/search?q=galaxy&page=2")
    assert card_ids(second) == api_ids(client, "/api/search", q="galaxy", limit=25, offset=25)
    assert "← Previous" in second
    empty = get(client, "/search")
    assert "Type keywords" in empty and card_ids(empty) == []
    nothing = get(client, "/search?q=zzqxjvwk")
    assert "Nothing matched" in nothing


@pytest.mark.parametrize("query", [PID, PID + "v1", "arXiv:" + PID, "https://arxiv.org/abs/" + PID])
def test_search_for_an_exact_id_goes_to_the_paper(client, query):
    response = client.get("/search", query_string={"q": query})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/papers/{PID}"


# paper page -----------------------------------------------------------------
def test_paper_page(client, built10k):
    with PaperStore(built10k.papers_path, readonly=True) as store:
        paper = store.get(PID)
    page = get(client, f"/papers/{PID}")
    plain = text(page)
    assert re.search(rf"<h1[^>]*>\s*{re.escape(html.escape(paper.title))}\s*</h1>", page)
    assert ", ".join(paper.authors) in plain
    for cat in paper.categories:
        assert re.search(rf'href="/\?[^"]*c={re.escape(cat)}[^"]*">{re.escape(cat)}</a>', page)
    assert f'datetime="{paper.published}"' in page and paper.published in plain
    assert " ".join(paper.abstract.split()[:30]) in plain
    assert f'href="https://arxiv.org/abs/{PID}"' in page and f'href="https://arxiv.org/pdf/{PID}"' in page
    top_terms = client.get(f"/api/papers/{PID}").json["top_terms"]
    for term in top_terms[:12]:
        assert f'href="/search?q={term["term"].replace(" ", "+")}">{term["term"]}</a>' in page
    similar = page.split('id="similar"', 1)[1]
    assert card_ids(similar) == api_ids(client, f"/api/papers/{PID}/similar", limit=10)
    assert "Why you might like it" not in page  # anonymous
    assert "In your library" not in page
    versioned = get(client, f"/papers/{PID}v3")
    assert re.search(rf"<h1[^>]*>\s*{re.escape(html.escape(paper.title))}\s*</h1>", versioned)
    assert f"arXiv:{PID}v1" in versioned


def test_paper_page_explains_a_recommendation(client, app):
    astro = trained_astro_user(client, app)
    candidate = client.get("/api/feed?mode=rec&limit=1").json["papers"][0]["id"]
    page = get(client, f"/papers/{candidate}")
    assert "Why you might like it" in page
    why = page.split('aria-label="Why recommended"', 1)[1].split("</section>", 1)[0]
    # With one tag its model and the whole-library model are the same fit: either may score highest.
    assert re.search(r"(<strong>astro</strong>|whole-library) model", why)
    # A rank a person reads ("top 3% of 10,000 papers"), never a raw model margin such as -0.61.
    assert re.search(r"<strong>top \d+%</strong> of 10,000 papers", why)
    assert not re.search(r"-\d+\.\d\d", why)
    terms = [html.unescape(t) for t in re.findall(r"<li><span>([^<]+)</span>", why)]
    paper_text = client.get(f"/api/papers/{candidate}").json
    paper_text = (paper_text["title"] + " " + paper_text["abstract"]).lower()
    assert terms and all(word in paper_text for term in terms for word in term.split())
    assert "In your library" in page
    tagged = get(client, f"/papers/{astro[0]}")
    assert re.search(rf'data-tag="astro" data-paper="{re.escape(astro[0])}"\s+aria-pressed="true"', tagged)


def test_paper_page_without_a_model_has_no_explanation(client):
    register(client, "alice")
    page = get(client, f"/papers/{PID}")
    assert "In your library" in page and "Why you might like it" not in page


def test_unknown_paper_page_is_404(client):
    page = get(client, "/papers/2501.99999", status=404)
    assert "No paper 2501.99999 here" in text(page)


# library ------------------------------------------------------------------
def test_library_rename_and_delete_with_forms(client, app):
    token = register(client, "alice")
    tag(client, token, "stars", PID)
    title = client.get(f"/api/papers/{PID}").json["title"]
    page = get(client, "/library")
    assert "1 tag" in text(page) and html.escape(title) in page
    form_token = page_csrf(page)
    same = client.post("/library/tags/stars/rename", data={"name": "stars", "csrf_token": form_token})
    assert same.status_code == 302  # submitting the form unchanged is not an error
    renamed = client.post("/library/tags/stars/rename", data={"name": "starlight", "csrf_token": form_token})
    assert renamed.status_code == 302 and renamed.headers["Location"] == "/library"
    page = get(client, "/library")
    assert "Renamed 'stars'." in flashes(page)
    assert 'href="/?mode=rec&amp;tag=starlight">starlight</a>' in page
    assert [t["name"] for t in client.get("/api/tags").json["tags"]] == ["starlight"]
    bad = client.post("/library/tags/starlight/rename", data={"name": "<b>", "csrf_token": form_token})
    assert bad.status_code == 400  # the library page again, with the reason
    assert any("tag must be" in f for f in flashes(bad.get_data(as_text=True)))
    assert not flashes(get(client, "/library"))  # shown once
    missing = client.post("/library/tags/nope/rename", data={"name": "x", "csrf_token": form_token})
    assert missing.status_code == 404
    deleted = client.post("/library/tags/starlight/delete", data={"csrf_token": form_token})
    assert deleted.status_code == 302
    page = get(client, "/library")
    assert "Deleted tag 'starlight'." in flashes(page) and "No tags yet" in page
    assert client.get("/api/tags").json == {"tags": []}
    assert client.post("/library/tags/starlight/delete", data={"csrf_token": form_token}).status_code == 404
    app.extensions["paperfeed"].wait_for_retrains()


def test_library_needs_a_login(client):
    response = client.get("/library")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/library")


# accounts -----------------------------------------------------------------
def test_register_page_and_form(client):
    page = get(client, "/register")
    assert 'name="username"' in page and 'name="password"' in page
    short = client.post("/register", data={"username": "alice", "password": "short", "csrf_token": page_csrf(page)})
    assert short.status_code == 400
    assert "password must be at least 8 characters" in short.get_data(as_text=True)
    assert 'value="alice"' in short.get_data(as_text=True)  # the name is kept
    done = client.post("/register", data={"username": "alice", "password": PASSWORD, "csrf_token": page_csrf(page)})
    assert done.status_code == 302 and done.headers["Location"] == "/"
    home = get(client, "/")
    assert any("Welcome, alice" in f for f in flashes(home))
    assert re.search(r'href="/account"[^>]*>\s*alice\s*</a>', home)


def test_login_page_and_form(client, app):
    register(app.test_client(), "alice")
    page = get(client, "/login")
    token = page_csrf(page)
    wrong = client.post("/login", data={"username": "alice", "password": "wrong password", "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong username or password." in wrong.get_data(as_text=True)
    ok = client.post("/login?next=/library", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert ok.status_code == 302 and ok.headers["Location"] == "/library"
    assert client.get("/api/me").json["username"] == "alice"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(client, app, target):
    register(app.test_client(), "alice")
    token = page_csrf(get(client, "/login"))
    response = client.post("/login", query_string={"next": target},
                           data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_account_password_change(client, app):
    register(client, "alice")
    page = get(client, "/account")
    assert "Account: alice" in page and 'action="/account/password"' in page
    token = page_csrf(page)
    wrong = client.post("/account/password", data={"old": "nope nope nope", "new": "brand new phrase", "csrf_token": token})
    assert wrong.status_code == 400 and "current password is wrong" in wrong.get_data(as_text=True)
    done = client.post("/account/password", data={"old": PASSWORD, "new": "brand new phrase", "csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    assert "Password changed. Other sessions were logged out." in flashes(get(client, "/account"))
    other = app.test_client()
    assert send(other, "POST", "/api/login", csrf(other),
                json={"username": "alice", "password": "brand new phrase"}).status_code == 200


def test_account_tokens_create_and_revoke(client, app):
    register(client, "alice")
    token = page_csrf(get(client, "/account"))
    created = client.post("/account/tokens", data={"name": "my script", "csrf_token": token})
    assert created.status_code == 200
    secret = re.search(r'<code class="token" id="new-token">(pf_[^<]+)</code>', created.get_data(as_text=True)).group(1)
    assert app.test_client().get("/api/me", headers=bearer(secret)).json["username"] == "alice"
    page = get(client, "/account")
    assert "my script" in page and secret not in page  # shown once
    revoke = re.search(r'action="(/account/tokens/\d+/revoke)"', page).group(1)
    assert client.post(revoke, data={"csrf_token": token}).status_code == 302
    assert "Token revoked." in flashes(get(client, "/account"))
    assert app.test_client().get("/api/me", headers=bearer(secret)).status_code == 401
    assert client.post(revoke, data={"csrf_token": token}).status_code == 302
    assert "No such token." in flashes(get(client, "/account"))
    nameless = client.post("/account/tokens", data={"name": "", "csrf_token": token})
    assert nameless.status_code == 400 and "token name must be 1-60" in nameless.get_data(as_text=True)


def test_account_needs_a_login(client):
    response = client.get("/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_logout_form(client):
    register(client, "alice")
    page = get(client, "/")
    assert 'id="logout"' in page
    response = client.post("/logout", data={"csrf_token": page_csrf(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = get(client, "/")
    assert "Logged out." in flashes(home) and 'href="/login"' in home
    assert client.get("/api/me").status_code == 401


# no-JavaScript forms --------------------------------------------------------
def test_tag_form(client, app):
    register(client, "alice")
    page = get(client, f"/papers/{PID}")
    token = page_csrf(page)
    assert f'action="/papers/{PID}/tag"' in page
    added = client.post(f"/papers/{PID}/tag", data={"tag": "stars", "csrf_token": token})
    assert added.status_code == 302 and added.headers["Location"] == f"/papers/{PID}"
    assert client.get(f"/api/papers/{PID}").json["tags"] == ["stars"]
    removed = client.post(f"/papers/{PID}/tag", data={"tag": "stars", "action": "remove", "csrf_token": token})
    assert removed.status_code == 302
    assert client.get(f"/api/papers/{PID}").json["tags"] == []
    bad = client.post(f"/papers/{PID}/tag", data={"tag": "<img src=x>", "csrf_token": token})
    assert bad.status_code == 400  # the paper page again, with the reason
    assert any("tag must be" in f for f in flashes(bad.get_data(as_text=True)))
    assert client.get("/api/tags").json == {"tags": []}
    unknown = client.post("/papers/2501.99999/tag", data={"tag": "x", "csrf_token": token})
    assert unknown.status_code == 404 and "unknown paper 2501.99999" in html.unescape(unknown.get_data(as_text=True))
    app.extensions["paperfeed"].wait_for_retrains()


def test_not_interested_form(client, app):
    register(client, "alice")
    token = page_csrf(get(client, f"/papers/{PID}"))
    marked = client.post(f"/papers/{PID}/not-interested", data={"csrf_token": token})
    assert marked.status_code == 302 and marked.headers["Location"] == f"/papers/{PID}"
    assert client.get(f"/api/papers/{PID}").json["not_interested"] is True
    page = get(client, f"/papers/{PID}")
    assert '<span class="badge">not interested</span>' in page and 'name="undo" value="1"' in page
    undone = client.post(f"/papers/{PID}/not-interested", data={"undo": "1", "csrf_token": token})
    assert undone.status_code == 302
    assert client.get(f"/api/papers/{PID}").json["not_interested"] is False
    assert client.post("/papers/2501.99999/not-interested", data={"csrf_token": token}).status_code == 404
    app.extensions["paperfeed"].wait_for_retrains()


def test_forms_need_a_login(client):
    token = csrf(client)
    response = client.post(f"/papers/{PID}/tag", data={"tag": "x", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_paper_page_names_the_authors_you_follow(client, app, web_settings):
    from collections import defaultdict

    from recommender.features import author_key

    with PaperStore(web_settings.papers_path, readonly=True) as store:
        by_author = defaultdict(set)
        for p in store.iter_papers():
            for name in p.authors:
                by_author[author_key(name)].add(p.id)
    key, ids = max(by_author.items(), key=lambda kv: (len(kv[1]), kv[0]))
    ids = sorted(ids)
    token = register(client, "bob")
    tag(client, token, "people", *ids[:-1])
    app.extensions["paperfeed"].wait_for_retrains()
    page = get(client, f"/papers/{ids[-1]}")
    why = page.split('aria-label="Why recommended"', 1)[1].split("</section>", 1)[0]
    found = re.findall(r"by <strong>([^<]+)</strong> \(in (\d+) of your papers\)", why)
    assert (key, str(len(ids) - 1)) in [(author_key(html.unescape(n)), k) for n, k in found]
    api = client.get(f"/api/papers/{ids[-1]}").json["why"]
    assert {"name": html.unescape(found[0][0]), "in_library": int(found[0][1])} in api["authors"]
    shown = int(re.search(r"<strong>top (\d+)%</strong>", why).group(1))
    assert 0 <= api["percentile"] <= 100 and shown == max(1, math.ceil(100 - api["percentile"] - 1e-9))
