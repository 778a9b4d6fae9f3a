"""Private Atom feeds (``/feeds/<token>.atom``) on the real 10k sample, read back with feedparser and lxml.

Checked: the Atom rules (ids, dates, one alternate link per entry, escaping), the ranking (the same papers as the
recommended web feed for the past week, whole library or one tag), stable ids and conditional GETs, no session,
revocation (404), one user's token never showing another's feed, and the /account forms (POST with CSRF).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import xml.etree.ElementTree as ET

import feedparser
import pytest
from lxml import etree

from recommender.corpus.store import PaperStore
from recommender.features.index import from_day
from tests.webhelpers import page_csrf, private_app, register, send, tag, topic_papers

pytestmark = pytest.mark.slow

ATOM = "{http://www.w3.org/2005/Atom}"
ASTRO_QUERY = "galaxy dark matter halo"
VISION_QUERY = "image segmentation convolutional"
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


@pytest.fixture(scope="module")
def app(built10k, tmp_path_factory):
    app = private_app(built10k, tmp_path_factory, "atom")
    yield app
    app.extensions["paperfeed"].close()


def wait(app):
    app.extensions["paperfeed"].wait_for_retrains()


def new_feed(client, tag_name: str = "") -> str:
    """Create a feed through the /account form (POST with the page's CSRF token); returns its URL path."""
    page = client.get("/account").get_data(as_text=True)
    response = client.post("/account/feeds", data={"name": "my reader", "tag": tag_name,
                                                   "csrf_token": page_csrf(page)})
    assert response.status_code == 200, response.get_data(as_text=True)
    match = re.search(r'<code class="token" id="new-feed">([^<]+)</code>', response.get_data(as_text=True))
    assert match, "the new feed's URL is not shown"
    url = match.group(1)
    assert url.startswith("http://localhost/feeds/pff_") and url.endswith(".atom")
    return url.removeprefix("http://localhost")


def fetch(app, path: str, **headers):
    """GET with a fresh client: no cookies, no session, like a feed reader."""
    return app.test_client().get(path, headers=headers)


def parse(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    parsed = feedparser.parse(response.get_data())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def entry_ids(parsed) -> list[str]:
    return [e.id.removeprefix("https://arxiv.org/abs/") for e in parsed.entries]


def week_since(app) -> str:
    with app.app_context():
        from webapp.context import index
        idx = index()
        return from_day(int(idx.dates[-1]) - 6)


def rec_feed(client, **params) -> list[str]:
    response = client.get("/api/feed", query_string={"m": "rec", "limit": 50, **params})
    assert response.status_code == 200, response.get_data(as_text=True)
    return [p["id"] for p in response.json["papers"]]


@pytest.fixture(scope="module")
def alice(app):
    """A user with an astro tag and a vision tag, trained, and a whole-library feed and an astro feed."""
    client = app.test_client()
    token = register(client, "alice")
    astro = topic_papers(client, ASTRO_QUERY, "astro-ph", 6)
    vision = topic_papers(client, VISION_QUERY, "cs.CV", 6)
    tag(client, token, "astro", *astro)
    tag(client, token, "vision", *vision)
    wait(app)
    return {"client": client, "csrf": token, "tagged": set(astro) | set(vision),
            "library": new_feed(client), "astro": new_feed(client, "astro"), "vision": new_feed(client, "vision")}


def test_the_feed_reads_back_with_feedparser(app, alice):
    response = fetch(app, alice["library"])
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert response.headers["Cache-Control"] == "private, max-age=900"
    assert "Set-Cookie" not in response.headers  # no session is made for a reader
    parsed = parse(response)
    assert parsed.feed.title == "Paperfeed: alice's library"
    assert "top 50 recommendations" in parsed.feed.subtitle
    assert len(parsed.entries) == 50
    since = week_since(app)
    for entry in parsed.entries:
        assert entry.id.startswith("https://arxiv.org/abs/")
        assert entry.title and entry.summary and entry.summary_detail.type == "text/plain"
        assert entry.link.startswith("http://localhost/papers/")  # the alternate link: this site's page
        assert any(link.href == entry.id and link.rel == "related" for link in entry.links)
        assert entry.updated_parsed and entry.published_parsed and entry.authors and entry.tags
        assert entry.published[:10] >= since  # the past week of the index
    assert not set(entry_ids(parsed)) & alice["tagged"]


def test_the_feed_is_the_recommended_web_feed_of_the_past_week(app, alice):
    since = week_since(app)
    whole = entry_ids(parse(fetch(app, alice["library"])))
    assert whole == rec_feed(alice["client"], since=since, w="all")
    astro = entry_ids(parse(fetch(app, alice["astro"])))
    assert astro == rec_feed(alice["client"], since=since, w="all", t="astro")
    vision = entry_ids(parse(fetch(app, alice["vision"])))
    assert vision == rec_feed(alice["client"], since=since, w="all", t="vision")
    assert astro != vision and astro != whole
    papers = {p["id"]: p for p in alice["client"].get(
        "/api/feed", query_string={"m": "recent", "since": since, "limit": 200}).json["papers"]}
    top = [papers[pid] for pid in astro[:10] if pid in papers]
    assert sum(any(c.startswith("astro-ph") for c in p["categories"]) for p in top) >= 8


def test_the_document_keeps_the_atom_rules(app, alice):
    raw = fetch(app, alice["astro"]).get_data()
    root = etree.fromstring(raw)
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"{ATOM}{name}")) == 1
    assert RFC3339.fullmatch(root.findtext(f"{ATOM}updated"))
    self_links = [link for link in root.findall(f"{ATOM}link") if link.get("rel") == "self"]
    assert len(self_links) == 1 and self_links[0].get("href").endswith(alice["astro"])
    entries = root.findall(f"{ATOM}entry")
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(ids) == len(set(ids)) == 50
    newest = max(e.findtext(f"{ATOM}updated") for e in entries)
    assert root.findtext(f"{ATOM}updated") == newest  # the feed's date is its newest entry's
    for e in entries:
        assert RFC3339.fullmatch(e.findtext(f"{ATOM}updated")) and RFC3339.fullmatch(e.findtext(f"{ATOM}published"))
        assert e.findtext(f"{ATOM}published") <= e.findtext(f"{ATOM}updated")
        alternates = [link for link in e.findall(f"{ATOM}link") if link.get("rel", "alternate") == "alternate"]
        assert len(alternates) == 1  # RFC 4287 4.1.1: at most one alternate link per type and language
        assert e.find(f"{ATOM}summary").get("type") == "text"
        assert e.find(f"{ATOM}author/{ATOM}name") is not None


def test_ids_are_stable_and_conditional_gets_work(app, alice):
    first, second = fetch(app, alice["library"]), fetch(app, alice["library"])
    assert first.get_data() == second.get_data()  # deterministic: no "now" in the document
    etag = first.headers["ETag"]
    assert fetch(app, alice["library"], **{"If-None-Match": etag}).status_code == 304
    # the same paper has the same entry id in every feed it appears in
    whole = {e.link: e.id for e in parse(first).entries}
    astro = {e.link: e.id for e in parse(fetch(app, alice["astro"])).entries}
    shared = set(whole) & set(astro)
    assert shared and all(whole[link] == astro[link] for link in shared)


def test_a_revoked_or_unknown_token_is_404(app, alice):
    client = alice["client"]
    path = new_feed(client)
    assert fetch(app, path).status_code == 200
    feeds = client.get("/api/feed-tokens").json["feeds"]
    mine = max(feeds, key=lambda f: f["id"])
    page = client.get("/account").get_data(as_text=True)
    assert client.post(f"/account/feeds/{mine['id']}/revoke").status_code == 400  # no CSRF token: refused
    assert fetch(app, path).status_code == 200
    response = client.post(f"/account/feeds/{mine['id']}/revoke", data={"csrf_token": page_csrf(page)})
    assert response.status_code == 302
    assert fetch(app, path).status_code == 404
    assert mine["id"] not in {f["id"] for f in client.get("/api/feed-tokens").json["feeds"]}
    secret = path.removeprefix("/feeds/").removesuffix(".atom")
    for bad in ("/feeds/pff_" + "A" * 43 + ".atom", "/feeds/nonsense.atom", f"/feeds/{secret[:-1]}.atom",
                f"/feeds/{secret}x.atom", "/feeds/.atom", f"/feeds/{secret}"):
        assert fetch(app, bad).status_code == 404, bad


def test_an_api_token_is_no_feed_token_and_a_feed_token_no_api_token(app, alice):
    client = alice["client"]
    api_secret = send(client, "POST", "/api/tokens", alice["csrf"], json={"name": "script"}).json["token"]
    assert fetch(app, f"/feeds/{api_secret}.atom").status_code == 404
    feed_secret = alice["library"].removeprefix("/feeds/").removesuffix(".atom")
    response = app.test_client().get("/api/me", headers={"Authorization": f"Bearer {feed_secret}"})
    assert response.status_code == 401


def test_each_token_shows_only_its_own_users_feed(app, alice):
    bob = app.test_client()
    token = register(bob, "bob")
    vision = topic_papers(bob, VISION_QUERY, "cs.CV", 6)
    tag(bob, token, "vision", *vision)
    wait(app)
    bob_feed = new_feed(bob)
    bob_ids = entry_ids(parse(fetch(app, bob_feed)))
    assert bob_ids == rec_feed(bob, since=week_since(app), w="all")
    assert bob_ids != entry_ids(parse(fetch(app, alice["library"])))
    assert "bob" in parse(fetch(app, bob_feed)).feed.title
    # bob can neither list nor revoke alice's feeds
    alice_ids = {f["id"] for f in alice["client"].get("/api/feed-tokens").json["feeds"]}
    assert not alice_ids & {f["id"] for f in bob.get("/api/feed-tokens").json["feeds"]}
    some = min(alice_ids)
    assert send(bob, "DELETE", f"/api/feed-tokens/{some}", token).status_code == 404
    page = bob.get("/account").get_data(as_text=True)
    bob.post(f"/account/feeds/{some}/revoke", data={"csrf_token": page_csrf(page)})
    assert some in {f["id"] for f in alice["client"].get("/api/feed-tokens").json["feeds"]}


def test_without_a_model_the_feed_is_the_newest_papers_and_says_so(app):
    client = app.test_client()
    register(client, "carol")
    parsed = parse(fetch(app, new_feed(client)))
    assert "No model" in parsed.feed.subtitle and "newest" in parsed.feed.subtitle
    dates = [e.published[:10] for e in parsed.entries]
    assert len(dates) == 50 and dates == sorted(dates, reverse=True)


def test_a_hostile_title_is_escaped(app):
    client = app.test_client()
    register(client, "dave")
    path = new_feed(client)
    newest = entry_ids(parse(fetch(app, path)))[0]
    settings = app.extensions["paperfeed"].settings
    hostile = "<script>alert(1)</script> Q&A: a < b && c > d ]]> \"quoted\" 'single'"
    with PaperStore(settings.papers_path) as store:
        paper = store.get(newest)
        store.upsert_many([dataclasses.replace(paper, version=paper.version + 1, title=hostile,
                                               abstract="x < y & z\x0c <b>bold</b>",
                                               authors=("A. <img src=x> & B.",))])
    raw = fetch(app, path).get_data()
    assert b"<script>" not in raw and b"<b>" not in raw and b"<img" not in raw
    assert b"&lt;script&gt;alert(1)&lt;/script&gt; Q&amp;A" in raw
    first = ET.fromstring(raw).find(f"{ATOM}entry")
    assert first.findtext(f"{ATOM}title") == hostile  # the text survives the round trip exactly
    assert first.findtext(f"{ATOM}summary") == "x < y & z <b>bold</b>"  # the form feed XML cannot carry is dropped
    assert first.findtext(f"{ATOM}author/{ATOM}name") == "A. <img src=x> & B."
    parsed = feedparser.parse(raw)
    assert parsed.bozo == 0
    assert parsed.entries[0].title_detail.type == "text/plain"
    assert "alert(1)" in parsed.entries[0].title


def test_feeds_are_listed_and_limited_on_the_account_and_the_api(app):
    client = app.test_client()
    token = register(client, "erin")
    tag(client, token, "mine", "2504.13999")
    assert send(client, "POST", "/api/feed-tokens", token, json={"name": "x", "tag": "nope"}).status_code == 404
    assert send(client, "POST", "/api/feed-tokens", token, json={"name": ""}).status_code == 400
    assert send(client, "POST", "/api/feed-tokens", token, json={"name": "x", "tag": 3}).status_code == 400
    assert client.post("/api/feed-tokens", json={"name": "no csrf"}).status_code == 400
    made = send(client, "POST", "/api/feed-tokens", token, json={"name": "reader", "tag": "mine"})
    assert made.status_code == 201 and made.json["tag"] == "mine"
    assert re.fullmatch(r"http://localhost/feeds/pff_[A-Za-z0-9_-]{43}\.atom", made.json["url"])
    assert fetch(app, made.json["url"].removeprefix("http://localhost")).status_code == 200
    listed = client.get("/api/feed-tokens").json["feeds"]
    assert [(f["name"], f["tag"]) for f in listed] == [("reader", "mine")]
    assert listed[0]["last_used"] is not None  # the fetch above was noted
    assert "url" not in listed[0] and "token" not in str(listed[0])
    page = client.get("/account").get_data(as_text=True)
    assert "reader" in page and "tag mine" in page and "last read" in page
    assert made.json["url"] not in page  # the secret is shown once, never again
    limit = app.extensions["paperfeed"].settings.limits.api_tokens
    for i in range(limit - 1):
        assert send(client, "POST", "/api/feed-tokens", token, json={"name": f"f{i}"}).status_code == 201
    over = send(client, "POST", "/api/feed-tokens", token, json={"name": "one too many"})
    assert over.status_code == 409 and "revoke one" in over.json["message"]
    assert send(client, "DELETE", f"/api/feed-tokens/{listed[0]['id']}", token).status_code == 200
    assert fetch(app, made.json["url"].removeprefix("http://localhost")).status_code == 404


def test_secrets_are_stored_hashed(app, alice):
    import sqlite3
    settings = app.extensions["paperfeed"].settings
    secret = alice["library"].removeprefix("/feeds/").removesuffix(".atom")
    conn = sqlite3.connect(f"file:{settings.users_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT * FROM feed_tokens").fetchall()
    finally:
        conn.close()
    assert rows and not any(secret in str(r) for r in rows)


def test_the_feed_date_without_entries_is_deterministic(app):
    """A feed bound to a tag that was deleted since: valid, empty, says why, dated by the index."""
    client = app.test_client()
    token = register(client, "frank")
    tag(client, token, "gone", "2504.13999")
    path = new_feed(client, "gone")
    assert send(client, "DELETE", "/api/tags/gone", token).status_code == 200
    first = fetch(app, path)
    parsed = parse(first)
    assert parsed.entries == [] and "no longer have the tag" in parsed.feed.subtitle
    assert first.get_data() == fetch(app, path).get_data()
    assert parsed.feed.updated.startswith(week_since(app)[:4])
    assert dt.datetime.fromisoformat(parsed.feed.updated)


def test_papers_in_the_atom_feed_count_as_shown(app):
    """A reader who reads the feed in a feed reader was shown those papers: "hide seen" and the digest skip them."""
    from recommender.accounts.users import UserStore
    client = app.test_client()
    token = register(client, "reader")
    tag(client, token, "mine", *topic_papers(client, "galaxy", "astro-ph", 4))
    wait(app)
    ids = entry_ids(parse(fetch(app, new_feed(client))))
    assert ids
    with UserStore(app.extensions["paperfeed"].settings.users_path) as users:
        states = users.shown(users.get_user("reader").id, ids)
    assert sorted(states) == sorted(ids)
