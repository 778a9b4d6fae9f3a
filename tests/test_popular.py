"""Popular across users (issue 11, part 4): the papers the most readers tagged in the past day, week or
month, anonymous (counts only, at least 2 readers). The library function on the real 10k sample's paper
store, then the feed page, the API and the CLI on the app built from it."""
from __future__ import annotations

import sqlite3
import time

import pytest

from recommender.accounts.popular import DAY_S, PopularCache, popular
from recommender.accounts.users import UserStore
from recommender.corpus.store import PaperStore
from recommender.settings import load_settings
from tests.webhelpers import card_ids, message, register, send, tag

pytestmark = pytest.mark.slow

P = ["2504.04704", "2504.13999", "2412.13641", "2402.01555", "2311.03426"]


@pytest.fixture
def stores(built10k, tmp_path):
    papers = PaperStore(built10k.papers_path, readonly=True)
    users = UserStore(tmp_path / "users.sqlite")
    ids = [u.id for u in (users.add_user(f"reader{i}", "x") for i in range(4))]
    assert all(pid in papers for pid in P), "the sample lacks a paper these tests name"
    yield users, papers, ids
    users.close()
    papers.close()


def _age(users: UserStore, paper_id: str, days: float) -> None:
    """Make every tag row of a paper ``days`` old (the web never writes old rows)."""
    users.conn.execute("UPDATE tags SET added_at = ? WHERE paper_id = ?", (time.time() - days * DAY_S, paper_id))


def test_one_reader_is_not_enough_two_are_and_more_readers_rank_first(stores):
    users, papers, (a, b, c, d) = stores
    users.add_tags(a, "mine", [P[0]])  # one reader: private
    users.add_tags(a, "mine", [P[1], P[2]])
    users.add_tags(b, "other", [P[1], P[2]])
    users.add_tags(c, "third", [P[2]])
    users.add_tags(a, "second tag", [P[1]])  # the same reader twice counts once
    found = popular(users, papers, "week")
    assert found.ids == [P[2], P[1]] and found.readers == [3, 2] and found.total == 2


def test_ties_go_to_the_most_recently_tagged(stores):
    users, papers, (a, b, c, d) = stores
    for pid in P[:3]:
        users.add_tags(a, "t", [pid])
        users.add_tags(b, "t", [pid])
    _age(users, P[0], 2)
    _age(users, P[1], 1)
    _age(users, P[2], 3)
    assert popular(users, papers, "week").ids == [P[1], P[0], P[2]]


def test_windows_count_back_from_now(stores):
    users, papers, (a, b, c, d) = stores
    for pid in P[:4]:
        users.add_tags(a, "t", [pid])
        users.add_tags(b, "t", [pid])
    _age(users, P[0], 0.5)   # in every window
    _age(users, P[1], 1.5)   # week and month
    _age(users, P[2], 8)     # month only
    _age(users, P[3], 31)    # none
    assert popular(users, papers, "day").ids == [P[0]]
    assert popular(users, papers, "week").ids == [P[0], P[1]]
    assert popular(users, papers, "month").ids == [P[0], P[1], P[2]]
    # one reader inside the window and one outside is one reader
    users.conn.execute("UPDATE tags SET added_at = ? WHERE paper_id = ? AND user_id = ?",
                       (time.time() - 3 * DAY_S, P[0], a))
    assert P[0] not in popular(users, papers, "day").ids


def test_untagging_stops_counting(stores):
    users, papers, (a, b, c, d) = stores
    users.add_tags(a, "t", [P[0]])
    users.add_tags(b, "t", [P[0]])
    assert popular(users, papers).ids == [P[0]]
    users.remove_tags(b, "t", [P[0]])
    assert popular(users, papers).ids == [] and popular(users, papers).total == 0
    users.add_tags(b, "u", [P[0]])
    users.delete_tag(b, "u")
    assert popular(users, papers).ids == []


def test_min_users_never_below_two(stores):
    users, papers, (a, b, c, d) = stores
    users.add_tags(a, "t", [P[0], P[1]])
    users.add_tags(b, "t", [P[0]])
    assert popular(users, papers, min_users=1).ids == [P[0]]
    assert popular(users, papers, min_users=3).ids == []
    with pytest.raises(ValueError, match="popular_min_users"):
        load_settings(environ={}, popular_min_users=1)


def test_papers_missing_from_the_store_are_skipped_and_pages_hold(stores):
    users, papers, (a, b, c, d) = stores
    missing = "2504.99999"
    assert missing not in papers
    users.add_tags(a, "t", [missing, *P])
    users.add_tags(b, "t", [missing, *P])
    users.add_tags(c, "t", [missing])  # the most readers, but nothing to show
    first = popular(users, papers, n=2)
    second = popular(users, papers, n=2, offset=2)
    rest = popular(users, papers, n=10, offset=4)
    assert missing not in first.ids + second.ids + rest.ids
    assert sorted(first.ids + second.ids + rest.ids) == sorted(P) and len(rest.ids) == 1
    with pytest.raises(ValueError, match="day, week, month"):
        popular(users, papers, "year")


def test_the_cache_gives_the_same_pages_and_counts_again_when_tags_change(stores):
    """The web app's cache: the same answer as counting afresh, recounted at once after any tag change and
    after max_age seconds (the window slides), never serving counts from before a change."""
    users, papers, (a, b, c, d) = stores
    cache = PopularCache(max_age=60)
    users.add_tags(a, "mine", [P[0], P[1]])
    users.add_tags(b, "mine", [P[0], P[1]])
    users.add_tags(c, "mine", [P[1]])
    now = time.time()
    fresh = popular(users, papers, "week", n=1, offset=1, now=now)
    cached = popular(users, papers, "week", n=1, offset=1, now=now, cache=cache)
    assert cached == fresh and cached.ids == [P[0]] and cached.total == 2
    first = cache.ranked(users, "week", 2, now)
    assert cache.ranked(users, "week", 2, now + 30) is first  # nothing changed: no recount
    users.add_tags(d, "mine", [P[0]])  # a change: recounted at once
    after = popular(users, papers, "week", now=now + 31, cache=cache)
    assert after.ids == [P[0], P[1]] and after.readers == [3, 3]
    users.remove_tags(d, "mine", [P[0]])
    assert popular(users, papers, "week", now=now + 32, cache=cache).readers == [3, 2]
    _age(users, P[0], 8)  # written straight to SQLite (no version bump): the cache notices within max_age
    assert popular(users, papers, "week", now=now + 33, cache=cache).ids[:2] == [P[1], P[0]]
    assert popular(users, papers, "week", now=now + 100, cache=cache).ids == [P[1]]  # past max_age: recounted


def test_the_query_reads_the_time_index(stores):
    users, papers, _ = stores
    plan = " ".join(r[-1] for r in users.conn.execute(
        "EXPLAIN QUERY PLAN SELECT paper_id, COUNT(DISTINCT user_id) AS readers, MAX(added_at) AS last FROM tags "
        "WHERE added_at >= ? GROUP BY paper_id HAVING readers >= ?", (0.0, 2)))
    assert "tags_by_time" in plan and "COVERING" in plan, plan


def test_an_older_database_gets_the_index_and_its_rows_count(built10k, tmp_path):
    """Databases from every release have ``tags.added_at`` (since the first): opening one adds the index."""
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            password_hash TEXT NOT NULL, created_at REAL NOT NULL, session_epoch INTEGER NOT NULL DEFAULT 0,
            tags_version INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE tags (user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, tag TEXT NOT NULL,
            paper_id TEXT NOT NULL, added_at REAL NOT NULL, PRIMARY KEY (user_id, tag, paper_id));
        CREATE TABLE sessions (nonce_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, created_at REAL NOT NULL);
    """)
    now = time.time()
    old.executemany("INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, 'x', 0)",
                    [(1, "ann"), (2, "bob")])
    old.executemany("INSERT INTO tags VALUES (?, 't', ?, ?)", [(1, P[0], now - 3600), (2, P[0], now - 7200),
                                                                (1, P[1], now - 40 * DAY_S),
                                                                (2, P[1], now - 40 * DAY_S)])
    old.commit()
    old.close()
    with UserStore(path) as users, PaperStore(built10k.papers_path, readonly=True) as papers:
        names = {r[0] for r in users.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "tags_by_time" in names
        assert popular(users, papers, "day").ids == [P[0]] and popular(users, papers, "month").ids == [P[0]]


# The web feed and the API --------------------------------------------------------------------------------
def _readers(app, n: int):
    clients = []
    for i in range(n):
        client = app.test_client()
        clients.append((client, register(client, f"reader{i}")))
    return clients


def test_popular_page_and_api_for_anonymous_visitors(app):
    anonymous = app.test_client()
    home = anonymous.get("/").get_data(as_text=True)
    assert 'value="popular"' in home and "Popular" in home
    empty = anonymous.get("/?m=popular")
    assert empty.status_code == 200
    assert "Nothing is popular this week yet: papers appear here once at least 2 readers tag them" in \
        empty.get_data(as_text=True)
    (c1, t1), (c2, t2), (c3, t3) = _readers(app, 3)
    tag(c1, t1, "a", P[0], P[1], P[2])
    tag(c2, t2, "b", P[1], P[2])
    tag(c3, t3, "c", P[2])
    page = anonymous.get("/?m=popular")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and card_ids(body) == [P[2], P[1]]
    assert "tagged by 3 readers" in body and "tagged by 2 readers" in body
    assert "reader0" not in body and "reader1" not in body  # counts, never names
    api = anonymous.get("/api/feed?m=popular&w=week").json
    assert api["mode"] == "popular" and api["total"] == 2
    assert [(p["id"], p["readers"]) for p in api["papers"]] == [(P[2], 3), (P[1], 2)]
    assert "readers" not in anonymous.get("/api/feed?m=recent&limit=1").json["papers"][0]
    # a reader who untags stops counting, through the API like everyone else
    assert send(c2, "DELETE", f"/api/tags/b/papers/{P[1]}", t2).status_code == 200
    assert [p["id"] for p in anonymous.get("/api/feed?mode=popular").json["papers"]] == [P[2]]
    # logged in: the tab is there too, and the feed is the same
    assert card_ids(c1.get("/?m=popular").get_data(as_text=True)) == [P[2]]


def test_popular_windows_and_parameters(app):
    client = app.test_client()
    for bad in ("w=all", "w=year", "window=foo", "since=2025-04-01", "until=2025-04-01"):
        response = client.get(f"/api/feed?m=popular&{bad}")
        assert response.status_code == 400, bad
    assert "day, week, month" in message(client.get("/api/feed?m=popular&w=all"))
    assert "since and until do not apply" in message(client.get("/?m=popular&since=2025-04-01"))
    for w in ("day", "week", "month"):
        assert client.get(f"/api/feed?m=popular&w={w}").status_code == 200
    # the page's form carries the previous feed's window, category and tags: they give way to the week
    response = client.get("/?m=popular&w=all&c=cs.LG&h=1")
    assert response.status_code == 302 and response.headers["Location"].endswith("/?m=popular")
    page = client.get("/?m=popular&w=day").get_data(as_text=True)
    assert "Nothing is popular today yet" in page
    assert 'value="year"' not in page and 'value="month"' in page


def test_popular_does_not_touch_remembered_filters(app):
    client = app.test_client()
    register(client, "remembers")
    assert client.get("/?w=month&c=cs.LG").status_code == 200
    assert client.get("/?m=popular&w=day").status_code == 200
    assert client.get("/").get_data(as_text=True).count('value="month" selected') == 1


def test_cli_popular(web_settings, capsys):
    import json

    from tests.conftest import run_cli

    with UserStore(web_settings.users_path) as users:
        a, b = (users.add_user(name, "x").id for name in ("ann", "bob"))
        users.add_tags(a, "t", [P[0], P[1]])
        users.add_tags(b, "t", [P[0]])
    rc, out, err = run_cli(["popular", "--window", "day", "--json"], web_settings, capsys)
    assert rc == 0, err
    data = json.loads(out)
    assert data["window"] == "day" and data["total"] == 1
    assert [(p["id"], p["readers"]) for p in data["papers"]] == [(P[0], 2)] and data["papers"][0]["title"]
    rc, out, err = run_cli(["popular"], web_settings, capsys)
    assert rc == 0 and out.split()[:2] == ["2", P[0]]
    with pytest.raises(SystemExit) as usage:  # argparse: a usage error exits 2
        run_cli(["popular", "--window", "year"], web_settings, capsys)
    assert usage.value.code == 2
