"""Seen and read (issue 11, part 3): which papers a user was shown (feed, digest, Atom) and opened (the
paper page), hide-seen on the feed, "mark all as read", retention, and the API. The store on its own,
then the web app on the real 10k sample."""
from __future__ import annotations

import sqlite3
import time

import pytest

from recommender.accounts import seen
from recommender.accounts.users import VISIT_GAP_S, UserStore
from tests.webhelpers import card_ids, page_csrf, register, send, tag, topic_papers

pytestmark = pytest.mark.slow

A, B, C = "2504.04704", "2504.13999", "2412.13641"


# the store ----------------------------------------------------------------------
def test_marks_upgrade_from_shown_to_opened_and_never_down(tmp_path):
    with UserStore(tmp_path / "users.sqlite") as users:
        uid = users.add_user("reader", "x").id
        assert users.mark_shown(uid, [A, B, A], via="digest", now=1000) == 2  # a repeated id counts once
        assert users.shown(uid, [A, B, C]) == {A: seen.SHOWN, B: seen.SHOWN}
        users.mark_opened(uid, [A], now=2000)
        users.mark_shown(uid, [A], via="feed", now=3000)  # shown again after opening: still opened
        row = users.conn.execute("SELECT state, via, at FROM seen WHERE user_id = ? AND paper_id = ?",
                                 (uid, A)).fetchone()
        assert tuple(row) == (seen.OPENED, seen.VIA["page"], 3000)
        assert users.seen_ids(uid) == {A, B} and users.seen_ids(uid, before=1500) == {B}
        with pytest.raises(ValueError):
            users.mark_shown(uid, [C], via="carrier pigeon")


def test_users_do_not_see_each_others_marks(tmp_path):
    with UserStore(tmp_path / "users.sqlite") as users:
        a, b = users.add_user("alice", "x").id, users.add_user("bobby", "x").id
        users.mark_shown(a, [A, B])
        assert users.shown(b, [A, B]) == {} and users.seen_ids(b) == frozenset()


def test_retention_prunes_old_rows_a_batch_at_a_time_at_each_new_visit(tmp_path):
    day = 86400
    with UserStore(tmp_path / "users.sqlite") as users:
        uid = users.add_user("reader", "x").id
        now = 1_800_000_000
        old = [f"2401.{i:05d}" for i in range(seen.PRUNE_BATCH + 20)]
        users.mark_shown(uid, old, now=now - 400 * day)
        users.mark_shown(uid, [A], now=now - 10 * day)
        users.record_visit(uid, now)  # a first visit prunes one batch
        assert seen.count(users, uid) == 21
        users.record_visit(uid, now + 60)  # the same visit: no further delete
        assert seen.count(users, uid) == 21
        users.record_visit(uid, now + 2 * VISIT_GAP_S)  # the next visit: the rest
        assert users.seen_ids(uid) == {A}
        users.mark_shown(uid, old[:5], now=now - 400 * day)
        assert seen.prune_all(users, users.limits.seen_retention_s, now=now) == 5  # what `train` runs


def test_an_older_database_gains_the_table(tmp_path):
    path = tmp_path / "users.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript("""CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL, created_at REAL NOT NULL, session_epoch INTEGER NOT NULL DEFAULT 0,
        tags_version INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE sessions (nonce_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, created_at REAL NOT NULL);
        INSERT INTO users (username, password_hash, created_at) VALUES ('oldtimer', 'x', 0);""")
    conn.close()
    with UserStore(path) as users:
        uid = users.get_user("oldtimer").id
        users.mark_opened(uid, [A])
        assert users.shown(uid, [A]) == {A: seen.OPENED}
        sql = users.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'seen'").fetchone()[0]
        assert "WITHOUT ROWID" in sql


# the web app ----------------------------------------------------------------------
def _uid(web_settings, name="alice") -> int:
    with UserStore(web_settings.users_path) as users:
        return users.get_user(name).id


def _states(web_settings, uid) -> dict:
    with UserStore(web_settings.users_path) as users:
        return dict(users.conn.execute("SELECT paper_id, state FROM seen WHERE user_id = ?", (uid,)).fetchall())


def _end_visit(web_settings, uid) -> None:
    """Pretend everything so far happened in a visit that ended two hours ago."""
    with UserStore(web_settings.users_path) as users:
        users.conn.execute("UPDATE seen SET at = at - 7200 WHERE user_id = ?", (uid,))
        users.conn.execute("UPDATE user_prefs SET last_seen = last_seen - 7200 WHERE user_id = ?", (uid,))


def test_a_feed_page_marks_its_papers_and_hide_seen_hides_them_on_the_next_visit(client, web_settings):
    register(client, "alice")
    uid = _uid(web_settings)
    first = card_ids(client.get("/?m=recent").get_data(as_text=True))
    assert len(first) == 25 and _states(web_settings, uid) == {p: 1 for p in first}
    # hide-seen in the same visit: the page does not hide itself, and paging is stable
    again = client.get("/?m=recent&s=1")
    assert card_ids(again.get_data(as_text=True)) == first
    assert 'data-seen="seen"' in again.get_data(as_text=True)  # shown before: labelled
    page2 = card_ids(client.get("/?m=recent&s=1&page=2").get_data(as_text=True))
    assert not set(page2) & set(first)
    _end_visit(web_settings, uid)
    fresh = card_ids(client.get("/?m=recent&s=1").get_data(as_text=True))
    assert fresh and not set(fresh) & set(first) and not set(fresh) & set(page2)
    # without hide-seen they are back, labelled
    page = client.get("/?m=recent").get_data(as_text=True)
    assert card_ids(page) == first and page.count('data-seen="seen"') == 25


def test_hide_seen_is_remembered_for_the_recommended_feed_and_composes_with_new(client, web_settings):
    token = register(client, "alice")
    tag(client, token, "vision", *topic_papers(client, "image segmentation", "cs.CV", 5))
    assert client.get("/?w=all&s=1").status_code == 200
    assert 'name="s" value="1" checked' in client.get("/").get_data(as_text=True)  # remembered
    with UserStore(web_settings.users_path) as users:
        assert users.feed_prefs(_uid(web_settings))["s"] == "1"
    assert client.get("/?w=new&s=1").headers["Location"].endswith("/?s=1")  # "new" is the default window
    assert client.get("/?s=1").status_code == 200
    assert client.get("/?hide_seen=1&w=all").headers["Location"].endswith("/?w=all&s=1")


def test_opening_a_paper_marks_it_read(client, web_settings):
    register(client, "alice")
    uid = _uid(web_settings)
    client.get("/?m=recent")
    first = card_ids(client.get("/?m=recent").get_data(as_text=True))
    assert client.get(f"/papers/{first[0]}").status_code == 200
    assert _states(web_settings, uid)[first[0]] == seen.OPENED
    page = client.get("/?m=recent").get_data(as_text=True)
    assert f'id="p-{first[0]}" tabindex="-1" data-seen="read"' in page
    client.get("/?m=recent")  # shown again: still read
    assert _states(web_settings, uid)[first[0]] == seen.OPENED
    client.get("/logout")
    assert client.get(f"/papers/{first[1]}").status_code == 200  # anonymous: nothing to record


def test_mark_all_as_read(client, web_settings):
    register(client, "alice")
    uid = _uid(web_settings)
    page = client.get("/?m=recent&w=week").get_data(as_text=True)
    assert "Mark all as read" in page
    assert client.post("/seen/all?m=recent&w=week").status_code == 400  # no CSRF token
    done = client.post("/seen/all?m=recent&w=week&page=2", data={"csrf_token": page_csrf(page)})
    assert done.status_code == 302
    location = done.headers["Location"]
    assert "s=1" in location and "as_of=" in location and "page=" not in location
    total = client.get("/api/feed?m=recent&w=week&limit=1").json["total"]
    assert len(_states(web_settings, uid)) == min(500, total)
    marked = set(_states(web_settings, uid))
    after = client.get(location).get_data(as_text=True)
    assert "Marked" in after and not set(card_ids(after)) & marked  # the feed goes on after them
    api = client.get("/api/feed?m=recent&w=week&s=1&limit=5").json
    assert api["total"] == max(0, total - 500)


def test_the_api_marks_and_reads_only_your_own_state(client, app, web_settings):
    token = register(client, "alice")
    r = send(client, "POST", "/api/seen", token, json={"ids": [A, f"{B}v2"], "state": "opened"})
    assert r.status_code == 200 and r.json == {"marked": 2, "state": "opened", "unknown": []}
    r = send(client, "POST", "/api/seen", token, json={"ids": ["2501.99999"]})  # well formed, not in the store
    assert r.json == {"marked": 0, "state": "shown", "unknown": ["2501.99999"]}
    assert client.get(f"/api/seen?ids={A},{B},{C}").json == {"states": {A: "opened", B: "opened"}}
    send(client, "POST", "/api/seen", token, json={"ids": [A], "state": "shown"})
    assert client.get(f"/api/seen?ids={A}").json["states"][A] == "opened"  # never downgraded
    assert send(client, "POST", "/api/seen", None, json={"ids": [C]}).status_code == 400  # CSRF
    other = app.test_client()
    register(other, "bobby")
    assert other.get(f"/api/seen?ids={A},{B}").json == {"states": {}}
    assert app.test_client().get(f"/api/seen?ids={A}").status_code == 401
    bad = [{}, {"ids": []}, {"ids": "2504.04704"}, {"ids": [1]}, {"ids": ["not an id"]},
           {"ids": [A] * 201}, {"ids": [A], "state": "read"}, {"ids": [A], "via": "digest"}]
    for body in bad:
        r = send(client, "POST", "/api/seen", token, json=body)
        assert r.status_code == 400, body
    assert client.get("/api/seen").status_code == 400
    all_ = send(client, "POST", "/api/seen/all?mode=recent&window=week", token)
    assert all_.status_code == 200 and 0 < all_.json["marked"] <= 500


def test_a_locked_database_does_not_cost_the_page(client, web_settings, monkeypatch):
    register(client, "alice")
    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")
    for name in ("mark_shown", "mark_opened", "shown", "seen_ids"):
        monkeypatch.setattr(UserStore, name, locked)
    assert client.get("/?m=recent&s=1").status_code == 200
    assert client.get(f"/papers/{A}").status_code == 200


def test_train_prunes_every_users_expired_rows(web_settings, capsys):
    from jobs.cli import main

    with UserStore(web_settings.users_path) as users:
        uid = users.add_user("reader", "x").id
        users.mark_shown(uid, [A], now=time.time() - 400 * 86400)
        users.mark_shown(uid, [B])
    assert main(["train", "--data-dir", str(web_settings.data_dir), "--models-dir", str(web_settings.models_dir)]) == 0
    assert "deleted 1 seen records older than 365 days" in capsys.readouterr().out
    with UserStore(web_settings.users_path) as users:
        assert users.seen_ids(uid) == {B}
