"""User store: one row per (user, tag, paper), WAL, and no lost updates under concurrent writers."""
import multiprocessing as mp
import sqlite3

import pytest

from recommender.accounts.passwords import check_password, hash_password
from recommender.accounts.users import UserError, UserStore, validate_tag


def _tag_many(path, worker, n):
    with UserStore(path) as users:
        user = users.get_user("alice")
        for i in range(n):
            users.add_tags(user.id, f"t{worker % 3}", [f"2501.{worker:02d}{i:03d}"])


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "users.sqlite"
    with UserStore(path) as users:
        users.add_user("alice", "x")
    workers, per_worker = 8, 100
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_tag_many, args=(path, w, per_worker)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with UserStore(path) as users:
        user = users.get_user("alice")
        tags = users.tags(user.id)
        assert sum(len(v) for v in tags.values()) == workers * per_worker
        assert user.tags_version == workers * per_worker
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_tag_lifecycle(tmp_path):
    with UserStore(tmp_path / "u.sqlite") as users:
        alice = users.add_user("alice", "h")
        bob = users.add_user("bob", "h")
        assert users.add_tags(alice.id, "rl", ["2501.00001", "2501.00002"]) == 2
        assert users.add_tags(alice.id, "rl", ["2501.00001"]) == 0  # idempotent
        assert users.get_user("alice").tags_version == 1
        users.add_tags(alice.id, "vision", ["2501.00002"])
        assert users.rename_tag(alice.id, "vision", "rl") == 1  # merge, no duplicate rows
        assert list(users.tags(alice.id)) == ["rl"]
        assert sorted(users.tags(alice.id)["rl"]) == ["2501.00001", "2501.00002"]
        assert users.tags(bob.id) == {}
        assert users.paper_tags(alice.id, ["2501.00002", "2501.09999"]) == {"2501.00002": ["rl"], "2501.09999": []}
        users.set_not_interested(alice.id, "2501.00003")
        assert users.not_interested(alice.id) == ["2501.00003"]
        assert users.delete_tag(alice.id, "rl") == 2 and users.tags(alice.id) == {}


def test_usernames_and_tags_are_validated(tmp_path):
    with UserStore(tmp_path / "u.sqlite") as users:
        users.add_user("alice", "h")
        with pytest.raises(UserError, match="taken"):
            users.add_user("ALICE", "h")
        for bad in ("ab", "a" * 33, "bad name", "<script>", "", "é-name"):
            with pytest.raises(UserError):
                users.add_user(bad, "h")
    for bad in ("", " ", "a" * 41, "x/y", "<b>"):
        with pytest.raises(UserError):
            validate_tag(bad)
    assert validate_tag("  deep learning ") == "deep learning"


def test_passwords_are_hashed_with_scrypt_and_rules_apply():
    digest = hash_password("correct horse battery", "alice")
    assert digest.startswith("scrypt:") and "correct" not in digest
    assert check_password(digest, "correct horse battery")
    assert not check_password(digest, "wrong password")
    for bad in ("short", "password123", "12345678", "alicealice"):
        with pytest.raises(UserError):
            hash_password(bad, "alicealice")
