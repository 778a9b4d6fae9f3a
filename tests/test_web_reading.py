"""Reading-first pages (issue 10, part 4): abstracts and links, ranks a person reads, the feed opening on
"since your last visit" with remembered filters and short URLs, and search filters. On the real 10k sample."""
from __future__ import annotations

import datetime as dt
import html
import re
import sqlite3

import numpy as np
import pytest

from recommender.accounts.users import VISIT_GAP_S, VISIT_TOUCH_S, UserStore
from recommender.corpus.papers import Paper
from recommender.corpus.store import PaperStore
from recommender.features.index import FeatureIndex, to_day
from recommender.storage.artifacts import Generations, read_json, read_npz, write_npz
from tests.webhelpers import card_ids, register, tag, topic_papers

pytestmark = pytest.mark.slow

CODE_PAPER = "2504.04704"  # its abstract ends "... at \url{https://github.com/AI-Lab-China-Merchants-Bank/LagKV}."
CODE_URL = "https://github.com/AI-Lab-China-Merchants-Bank/LagKV"
REL = 'rel="noopener noreferrer nofollow"'


def get(client, url, status=200, **kwargs):
    response = client.get(url, **kwargs)
    assert response.status_code == status, (url, response.status_code, response.get_data(as_text=True)[:400])
    return response.get_data(as_text=True)


def text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def newest_day(client) -> dt.date:
    return dt.date.fromisoformat(client.get("/api/feed?mode=recent&limit=1").json["papers"][0]["date"])


def set_previous_visit(web_settings, username: str, day: dt.date) -> None:
    """Pretend the user's last visit ended at noon UTC on ``day`` (and that this visit is long over)."""
    with UserStore(web_settings.users_path) as users:
        uid = users.get_user(username).id
        noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.timezone.utc).timestamp()
        users.conn.execute("INSERT INTO user_prefs (user_id, last_seen, previous_visit) VALUES (?, ?, ?) "
                           "ON CONFLICT(user_id) DO UPDATE SET last_seen = excluded.last_seen, "
                           "previous_visit = excluded.previous_visit", (uid, noon, noon - 86400))


# the user store ---------------------------------------------------------------
def test_visits_are_counted_from_the_previous_one_and_written_rarely(tmp_path):
    with UserStore(tmp_path / "users.sqlite") as users:
        uid = users.add_user("reader", "x").id
        t0 = 1_800_000_000.0
        assert users.record_visit(uid, t0) is None  # a first visit has no previous one
        changes = users.conn.total_changes
        assert users.record_visit(uid, t0 + 60) is None  # same visit: nothing written
        assert users.conn.total_changes == changes
        assert users.record_visit(uid, t0 + VISIT_TOUCH_S + 1) is None  # same visit, last-seen moved on
        assert users.conn.total_changes == changes + 1
        later = t0 + VISIT_TOUCH_S + 1 + VISIT_GAP_S + 5
        assert users.record_visit(uid, later) == t0 + VISIT_TOUCH_S + 1  # a new visit: since the old one ended
        assert users.record_visit(uid, later + 10) == t0 + VISIT_TOUCH_S + 1  # stays so during this visit
        assert users.previous_visit(uid) == t0 + VISIT_TOUCH_S + 1


def test_feed_prefs_round_trip_and_unreadable_ones_are_ignored(tmp_path):
    with UserStore(tmp_path / "users.sqlite") as users:
        uid = users.add_user("reader", "x").id
        assert users.feed_prefs(uid) == {}
        users.set_feed_prefs(uid, {"w": "week", "c": "cs.CV", "t": ["a"], "h": "1"})
        assert users.feed_prefs(uid) == {"w": "week", "c": "cs.CV", "t": ["a"], "h": "1"}
        for junk in ("not json", "[1, 2]", "null"):
            users.conn.execute("UPDATE user_prefs SET feed = ? WHERE user_id = ?", (junk, uid))
            assert users.feed_prefs(uid) == {}


def test_an_older_user_database_gains_the_prefs_table(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE, "
                       "password_hash TEXT NOT NULL, created_at REAL NOT NULL, session_epoch INTEGER NOT NULL "
                       "DEFAULT 0, tags_version INTEGER NOT NULL DEFAULT 0);"
                       "INSERT INTO users (username, password_hash, created_at) VALUES ('old', 'x', 1);")
    conn.close()
    with UserStore(path) as users:
        uid = users.get_user("old").id
        assert users.record_visit(uid, 5.0) is None and users.feed_prefs(uid) == {}


# since your last visit -------------------------------------------------------------
def newest_indexed_day(web_settings) -> dt.date:
    gens = Generations(web_settings.models_dir)
    return dt.date.fromisoformat(read_json(gens.path(gens.current()) / "meta.json")["last_date"])


def arrive_in_two_batches(web_settings, visit_day: dt.date, back_days: int) -> set[str]:
    """Rewrite the index's arrival times: papers dated within ``back_days`` before ``visit_day`` or later
    came in a batch three days after that day's noon, the rest long before. Returns the batch's ids."""
    gens = Generations(web_settings.models_dir)
    folder = gens.path(gens.current())
    rows, ids = read_npz(folder / "rows.npz"), FeatureIndex.load(web_settings.models_dir).ids
    noon = dt.datetime(visit_day.year, visit_day.month, visit_day.day, 12, tzinfo=dt.timezone.utc).timestamp()
    late = rows["dates"] >= to_day(visit_day - dt.timedelta(days=back_days))
    rows["first_seen"] = np.where(late, noon + 3 * 86400, noon - 30 * 86400).astype(np.int64)
    write_npz(folder / "rows.npz", **rows)
    return {pid for pid, is_late in zip(ids, late) if is_late}


def test_feed_opens_on_what_arrived_since_your_last_visit(make_app, web_settings):
    """Visit on one day; the next batch holds papers dated up to three days before it: all of them are new,
    though many are dated before the visit (arXiv announces papers days after their date)."""
    visit_day = newest_indexed_day(web_settings) - dt.timedelta(days=2)
    batch = arrive_in_two_batches(web_settings, visit_day, back_days=3)
    client = make_app().test_client()
    register(client, "alice")
    set_previous_visit(web_settings, "alice", visit_day)
    page = get(client, "/")
    visit = f"{visit_day.isoformat()} 12:00 UTC"  # this is a new visit: the last one ended that noon
    assert f"{len(batch):,} papers arrived since your last visit ({visit})" in text(page)
    assert re.search(r'<option value="new"\s+selected', page)
    api = client.get("/api/feed", query_string={"window": "new", "mode": "recent", "limit": 200}).json
    assert api["total"] == len(batch) and api["arrived_after"] == f"{visit_day.isoformat()}T12:00:00+00:00"
    assert card_ids(page) == [p["id"] for p in api["papers"]][:len(card_ids(page))]
    shown = {}
    for offset in range(0, len(batch), 200):
        shown |= {p["id"]: p["date"] for p in client.get("/api/feed", query_string={
            "window": "new", "mode": "recent", "limit": 200, "offset": offset}).json["papers"]}
    assert set(shown) == batch
    assert min(shown.values()) < visit_day.isoformat()  # dated before the visit: a date window missed these


def test_an_index_without_arrival_times_falls_back_to_dates(make_app, web_settings):
    gens = Generations(web_settings.models_dir)
    folder = gens.path(gens.current())
    rows = read_npz(folder / "rows.npz")
    del rows["first_seen"]
    write_npz(folder / "rows.npz", **rows)
    client = make_app().test_client()
    register(client, "alice")
    last = newest_day(client)
    set_previous_visit(web_settings, "alice", last - dt.timedelta(days=2))
    page = get(client, "/")
    visit = (last - dt.timedelta(days=2)).isoformat()
    assert f"since your last visit ({visit})" in text(page)
    dates = re.findall(r'<time datetime="([0-9-]+)"', page)
    assert dates and min(dates) >= visit
    api = client.get("/api/feed", query_string={"window": "new", "mode": "recent", "limit": 25}).json
    assert api["since"] == visit and api["arrived_after"] is None and card_ids(page) == [p["id"] for p in api["papers"]]


def test_first_visit_and_nothing_new_fall_back_to_the_past_week(make_app, web_settings):
    visit_day = newest_indexed_day(web_settings) + dt.timedelta(days=30)
    assert not arrive_in_two_batches(web_settings, visit_day, back_days=0)  # every paper arrived before
    client = make_app().test_client()
    register(client, "alice")
    week = client.get("/api/feed", query_string={"window": "week", "mode": "recent"}).json["total"]
    first = get(client, "/")
    assert "Here is the past week" in text(first) and f"{week:,} papers" in text(first)
    set_previous_visit(web_settings, "alice", visit_day)
    later = get(client, "/")
    assert f"Nothing new since your last visit ({visit_day.isoformat()} 12:00 UTC)" in text(later)
    assert f"{week:,} papers" in text(later) and "arrived since" not in text(later)


def test_anonymous_feed_is_unchanged_and_has_no_visit_window(client):
    page = get(client, "/")
    assert "10,000 papers" in text(page) and 'value="new"' not in page


# remembered filters and short URLs --------------------------------------------------
def test_filters_are_remembered_per_user_and_explicit_ones_win(client, app):
    register(client, "alice")
    page = get(client, "/?w=month&c=cs.CV")
    assert re.search(r'<option value="cs.CV"\s+selected', page) and re.search(r'<option value="month"\s+selected', page)
    again = get(client, "/")  # no filter in the URL: the remembered ones
    assert re.search(r'<option value="cs.CV"\s+selected', again) and re.search(r'<option value="month"\s+selected', again)
    assert card_ids(again) == card_ids(page)
    other = get(client, "/?c=astro-ph.GA")  # explicit parameters win, and become the remembered set
    assert re.search(r'<option value="astro-ph.GA"\s+selected', other)
    assert re.search(r'<option value="astro-ph.GA"\s+selected', get(client, "/?page=2"))
    bob = app.test_client()
    register(bob, "bob")
    assert not re.search(r'<option value="astro-ph.GA"\s+selected', get(bob, "/"))  # per user


def test_browsing_newest_by_category_leaves_the_recommended_feeds_filters_alone(client):
    """Category badges link to Newest (``/?m=recent&c=...``): that must not rewrite what the recommended feed
    remembers (with Newest's defaults: all time, tagged papers shown)."""
    register(client, "alice")
    get(client, "/?w=month")
    get(client, "/?m=recent&c=cs.CV")
    page = get(client, "/")
    assert re.search(r'<option value="month"\s+selected', page)
    assert not re.search(r'<option value="cs.CV"\s+selected', page)
    assert re.search(r'name="h"[^>]*checked', page) or 'hide tagged' in text(page)


def test_explicit_dates_replace_the_opening_window(client):
    register(client, "alice")
    get(client, "/")  # a first visit, so the next one has a previous visit
    for url in ("/?until=2020-01-01", "/?since=2026-01-01", "/api/feed?until=2020-01-01"):
        get(client, url, follow_redirects=True)  # never "since (your last visit) is after until"


def test_a_since_your_last_visit_link_opened_anonymously_shows_the_week(client):
    page = get(client, "/?w=new", follow_redirects=True)
    assert "10,000 papers" not in text(page) and "Next time" not in text(page)


def test_a_tag_named_many_times_counts_once_and_too_many_tags_is_a_400(client):
    token = register(client, "alice")
    tag(client, token, "mine", *topic_papers(client, "galaxy", "astro-ph", 3))
    assert client.get("/api/feed?" + "&".join(["t=mine"] * 5000)).status_code == 200
    response = client.get("/api/feed?" + "&".join(f"t=t{i}" for i in range(51)))
    assert response.status_code == 400 and "at most 50 tags" in response.json["message"]


def test_feed_bookkeeping_failing_does_not_cost_the_page(client, app, monkeypatch):
    """A locked or read-only user database: the visit and the remembered filters are skipped, the feed served."""
    register(client, "alice")
    def locked(*args):
        raise sqlite3.OperationalError("database is locked")
    monkeypatch.setattr(UserStore, "record_visit", locked)
    monkeypatch.setattr(UserStore, "set_feed_prefs", locked)
    get(client, "/?w=week")


def test_remembered_filters_are_validated_on_read(client, web_settings):
    register(client, "alice")
    with UserStore(web_settings.users_path) as users:
        users.set_feed_prefs(users.get_user("alice").id, {"t": ["gone", 3], "w": "forever", "c": "no.such", "h": 7})
    page = get(client, "/")  # a deleted tag, an odd window or category: dropped, never a 400 or 500
    assert re.search(r'<option value="new"\s+selected', page)
    with UserStore(web_settings.users_path) as users:
        users.conn.execute("UPDATE user_prefs SET feed = '{' ")
    get(client, "/")


@pytest.mark.parametrize("old, short", [
    ("/?mode=recent&window=month&category=cs.CV&hide_tagged=0", "/?m=recent&w=month&c=cs.CV"),
    ("/?window=week&category=", "/?w=week"),
    ("/?mode=recent&tag=&window=&category=cs.CV&hide_tagged=0&hide_tagged=0", "/?m=recent&c=cs.CV"),
])
def test_old_and_long_feed_urls_redirect_to_short_ones(client, old, short):
    response = client.get(old)
    assert response.status_code == 302 and response.headers["Location"] == short
    get(client, short)  # and the short one is final


def test_the_filter_form_lands_on_a_short_url(client):
    register(client, "alice")
    response = client.get("/?m=rec&w=new&c=&h=1&h=0")  # what the form submits with every default chosen
    assert response.status_code == 302 and response.headers["Location"] == "/?m=rec"
    response = client.get("/?m=rec&w=week&c=cs.CV&h=1&h=0")
    assert response.headers["Location"] == "/?m=rec&w=week&c=cs.CV"
    assert client.get("/?m=rec").status_code == 200


@pytest.mark.parametrize("url", ["/?w=forever", "/?c=no.such", "/?m=best", "/?since=yesterday", "/?page=0"])
def test_bad_feed_filters_are_a_clear_400(client, url):
    register(client, "alice")
    assert client.get(url).status_code == 400


# ranks a person reads ------------------------------------------------------------
def test_recommended_feed_shows_ranks_not_margins(client, app):
    token = register(client, "alice")
    tag(client, token, "astro", *topic_papers(client, "galaxy dark matter halo", "astro-ph", 5))
    app.extensions["paperfeed"].wait_for_retrains()
    page = get(client, "/?w=all")
    ranks = re.findall(r"</meter>\s*top (\d+)%", page)
    assert len(ranks) == 25 and ranks[0] == "1" and "ranked above" in page.lower()
    assert not re.search(r"score -?\d", text(page))
    assert page.count(">Why?</a>") == 25
    api = client.get("/api/feed?window=all&limit=25").json
    assert [p["id"] for p in api["papers"]] == card_ids(page)
    percentiles = [p["percentile"] for p in api["papers"]]
    assert percentiles == sorted(percentiles, reverse=True) and 99 < percentiles[0] <= 100
    newest = get(client, "/?m=recent&w=all", follow_redirects=True)
    assert "Why?</a>" not in newest and 'class="rank"' not in newest  # no model scored these
    assert all(p["percentile"] is None for p in client.get("/api/feed?mode=recent").json["papers"])


# abstracts, code links and safe links ----------------------------------------------------
def test_code_badge_and_clickable_links(client):
    title = client.get(f"/api/papers/{CODE_PAPER}").json["title"]
    page = get(client, "/search", query_string={"q": title})
    card = page.split(f'id="p-{CODE_PAPER}"', 1)[1].split("</article>", 1)[0]
    assert f'<a class="code-badge" href="{CODE_URL}" {REL}' in card
    assert f'<a href="{CODE_URL}" {REL} class="ext">{CODE_URL}</a>' in card  # in the abstract itself
    assert 'class="more"' in card and 'class="math clamp"' in card
    paper = get(client, f"/papers/{CODE_PAPER}")
    assert f'class="code-badge" href="{CODE_URL}"' in paper and f'href="{CODE_URL}" {REL}' in paper
    hit = next(p for p in client.get("/api/search", query_string={"q": title}).json["papers"] if p["id"] == CODE_PAPER)
    assert hit["code_url"] == CODE_URL and {"url": CODE_URL, "kind": "github"} in hit["links"]


def test_hostile_abstracts_are_escaped_before_linking(make_app, web_settings):
    hostile = Paper(id="2601.99999", version=1, title="<script>alert(1)</script> & <b>bold</b>",
                    abstract='See javascript:alert(1) and <img src=x onerror=alert(2)> at '
                             'https://github.com/a/b"onmouseover="alert(3) and https://x.org/?a=1&b=<i>.',
                    authors=("A. Person",), categories=("cs.CV",), comments="data:text/html,<script>x</script>",
                    published="2026-01-01", updated="2026-01-01")
    with PaperStore(web_settings.papers_path) as store:
        store.upsert_many([hostile])
    page = get(make_app().test_client(), "/papers/2601.99999")
    assert "<script>alert" not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    hrefs = re.findall(r'<a href="([^"]*)" rel="noopener noreferrer nofollow" class="ext">', page)
    assert hrefs == ["https://github.com/a/b", "https://x.org/?a=1&amp;b="]
    assert 'href="javascript' not in page and 'href="data:text' not in page and "onmouseover=" not in page.replace(
        "&#34;onmouseover=&#34;", "")


def test_api_abstracts_on_request(client):
    plain = client.get("/api/feed?limit=3").json["papers"]
    assert all("abstract" not in p for p in plain)
    full = client.get("/api/feed?limit=3&abstracts=1").json["papers"]
    assert all(p["abstract"] for p in full) and [p["id"] for p in full] == [p["id"] for p in plain]
    assert all(p["abstract"] for p in client.get("/api/search?q=galaxy&abstracts=1&limit=3").json["papers"])
    assert client.get("/api/feed?abstracts=2").status_code == 400


# search filters ------------------------------------------------------------------
def test_search_date_range_and_category(client):
    params = {"q": "galaxy", "from": "2025-06-01", "to": "2025-12-31", "c": "astro-ph.GA", "limit": 50}
    papers = client.get("/api/search", query_string=params).json["papers"]
    assert papers and all("2025-06-01" <= p["date"] <= "2025-12-31" and "astro-ph.GA" in p["categories"]
                          for p in papers)
    unfiltered = client.get("/api/search", query_string={"q": "galaxy", "limit": 50}).json["papers"]
    assert [p["id"] for p in papers] != [p["id"] for p in unfiltered]
    page = get(client, "/search", query_string={k: v for k, v in params.items() if k != "limit"})
    assert card_ids(page) == [p["id"] for p in papers[:25]]
    assert 'value="2025-06-01"' in page and re.search(r'<option value="astro-ph.GA"\s+selected', page)
    assert "clear filters" in page


@pytest.mark.parametrize("query", ["from=2025-13-01", "to=soon", "from=2026-01-02&to=2026-01-01", "c=no.such"])
def test_bad_search_filters_are_a_clear_400(client, query):
    for url in (f"/search?q=galaxy&{query}", f"/api/search?q=galaxy&{query}"):
        response = client.get(url)
        assert response.status_code == 400, url
    assert "from" in client.get("/api/search?q=x&from=2026-01-02&to=2026-01-01").json["message"]


@pytest.mark.parametrize("query, suggestion", [("$\\alpha$", "alpha"), ("\\mathbb{R}", None), ("$x^2$", None)])
def test_latex_only_queries_get_a_helpful_message(client, query, suggestion):
    page = get(client, "/search", query_string={"q": query})
    assert "LaTeX is left out of the index" in text(page) and "Nothing matched" not in page
    if suggestion:
        assert f'href="/search?q={suggestion}"' in page
    api = client.get("/api/search", query_string={"q": query})
    assert api.status_code == 200 and api.json["papers"] == [] and "LaTeX" in api.json["message"]
    assert api.json["suggestion"] == suggestion
