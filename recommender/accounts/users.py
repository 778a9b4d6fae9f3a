"""User data in SQLite: accounts, one row per (user, tag, paper), negatives, sessions, API and feed tokens.

One row per (user, tag, paper) means two writers tagging at once never lose
each other's updates (a read-modify-write of a whole tag dict does: we measured
445 of 800 lost that way). WAL and a busy timeout let readers and writers overlap.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from recommender.corpus.store import connect

from . import seen, subscriptions

BUSY_TIMEOUT_S = 30
TOKEN_TOUCH_S = 60

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{2,31}", re.ASCII)
TAG_MAX_LENGTH = 40
_TAG = re.compile(r"[\w][\w .+-]{0,%d}" % (TAG_MAX_LENGTH - 1))
RESERVED_TAG_PREFIX = "__"  # internal model names such as "__all__" (the whole library) start with it
SESSION_TOUCH_S = 60
VISIT_GAP_S = 3600  # an hour without a page view ends a visit
VISIT_TOUCH_S = 300  # within a visit, the last-seen time is written at most every 5 minutes
FEED_PREFS_MAX_BYTES = 32768  # 50 tags of 40 characters, escaped, fit
FEED_TOKEN_PREFIX = "pff_"
FEED_TOKEN = re.compile(r"pff_[A-Za-z0-9_-]{43}", re.ASCII)  # the prefix and secrets.token_urlsafe(32)

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    session_epoch INTEGER NOT NULL DEFAULT 0,
    tags_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tags (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    paper_id TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (user_id, tag, paper_id)
);
-- The popular feed reads a time window of tags across users (see recommender.accounts.popular):
-- a range on added_at that this index covers, so the table itself is never read.
CREATE INDEX IF NOT EXISTS tags_by_time ON tags (added_at, paper_id, user_id);
CREATE TABLE IF NOT EXISTS not_interested (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper_id TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (user_id, paper_id)
);
CREATE TABLE IF NOT EXISTS sessions (
    nonce_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    last_seen REAL
);
CREATE TABLE IF NOT EXISTS user_prefs (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    last_seen REAL,
    previous_visit REAL,
    feed TEXT
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    last_used REAL
);
CREATE TABLE IF NOT EXISTS feed_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    tag TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    last_used REAL
);
""" + seen.SCHEMA + subscriptions.SCHEMA  # an older database gains the newer (empty) tables when opened


_INITIALISED: set[Path] = set()  # user databases this process has already set up (web requests open one each)


class UserError(ValueError):
    """Bad user input (name, tag, password); the message is safe to show. ``status`` is the HTTP answer."""

    status = 400


class UnknownPaper(UserError):
    """A paper id that is well formed but not in the store."""

    status = 404


class UnknownTag(UserError):
    """A tag the user does not have."""

    status = 404


class LimitExceeded(UserError):
    """A documented per-user limit (tags, papers per tag, tokens) would be exceeded."""

    status = 409


def validate_username(name: str) -> str:
    if not isinstance(name, str) or not _USERNAME.fullmatch(name):
        raise UserError("username must be 3-32 characters: letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def validate_tag(tag: str) -> str:
    """The one check every tag name passes (tag, rename, import): the stripped name, or :class:`UserError`."""
    tag = tag.strip() if isinstance(tag, str) else ""
    if not _TAG.fullmatch(tag):
        raise UserError(f"tag must be 1-{TAG_MAX_LENGTH} characters: letters, digits, spaces, '.', '+', '_' or '-'")
    if tag.startswith(RESERVED_TAG_PREFIX):
        raise UserError(f"tag names starting with {RESERVED_TAG_PREFIX!r} are reserved")
    return tag


def _setting(name: str):
    from recommender.settings import default
    return default(name)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-user limits the store enforces (documented in the settings table and docs/security.md).

    They keep one account from hurting the others: every tag is a model to fit and keep in memory.
    """

    tags: int = _setting("max_tags")
    papers_per_tag: int = _setting("max_papers_per_tag")
    not_interested: int = _setting("max_not_interested")
    api_tokens: int = _setting("max_api_tokens")
    session_idle_s: float = _setting("session_idle_days") * 86400
    session_max_s: float = _setting("session_max_days") * 86400
    seen_retention_s: float = _setting("seen_retention_days") * 86400


@dataclasses.dataclass(frozen=True)
class FeedToken:
    """A private Atom feed: whose, and for which tag (None: the whole library)."""

    id: int
    user_id: int
    name: str
    tag: str | None


@dataclasses.dataclass(frozen=True)
class User:
    id: int
    username: str
    password_hash: str
    created_at: float
    session_epoch: int
    tags_version: int


class UserStore:
    """Users, tags and negatives in SQLite (WAL, busy timeout). One connection per instance.

    ``limits`` are checked inside the writing transaction, so two concurrent requests cannot both
    squeeze under a limit.
    """

    def __init__(self, path: Path, limits: Limits | None = None, readonly: bool = False):
        path = Path(path)
        self.path = path
        self.limits = limits or Limits()
        if readonly:  # reading commands on a read-only data dir (see ``store.connect``); the schema must exist
            self.conn = connect(path, readonly=True, timeout=BUSY_TIMEOUT_S)
            self.conn.text_factory = str
            self.conn.row_factory = sqlite3.Row
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        self.conn.execute("PRAGMA foreign_keys = ON")
        if path not in _INITIALISED:  # WAL mode is stored in the file; the schema needs creating once
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.executescript(SCHEMA)
            _migrate(self.conn)
            _INITIALISED.add(path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.conn.close()

    def _write(self, sql: str, params=()) -> sqlite3.Cursor:
        # BEGIN IMMEDIATE takes the write lock up front, so concurrent writers queue on the busy timeout.
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn.execute(sql, params)

    # users -------------------------------------------------------------
    def add_user(self, username: str, password_hash: str) -> User:
        validate_username(username)
        try:
            self._write("INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
                        (username, password_hash, time.time()))
        except sqlite3.IntegrityError:
            raise UserError(f"username {username!r} is taken") from None
        return self.get_user(username)

    def get_user(self, username: str) -> User | None:
        row = self.conn.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        return User(**dict(row)) if row else None

    def get_user_by_id(self, user_id: int) -> User | None:
        row = self.conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        return User(**dict(row)) if row else None

    def list_users(self) -> list[User]:
        return [User(**dict(r)) for r in self.conn.execute("SELECT * FROM users ORDER BY id")]

    def set_password(self, user_id: int, password_hash: str) -> None:
        """Replace the hash and bump the session epoch, which ends every old session."""
        self._write("UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1 WHERE id = ?",
                    (password_hash, user_id))

    def bump_session_epoch(self, user_id: int) -> None:
        self._write("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ?", (user_id,))

    # tags --------------------------------------------------------------
    def _change(self, statements: list[tuple[str, tuple]], user_id: int, check=None) -> int:
        """Run row-level changes and bump the user's tags_version in one transaction.

        ``check(conn)`` runs after the changes and before the commit; raising rolls everything back.
        """
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            changed = sum(self.conn.execute(sql, params).rowcount for sql, params in statements)
            if changed and check is not None:
                check(self.conn)
            if changed:
                self.conn.execute("UPDATE users SET tags_version = tags_version + 1 WHERE id = ?", (user_id,))
        return changed

    def _check_tag_limits(self, user_id: int, tag: str):
        def check(conn):
            n_tags = conn.execute("SELECT COUNT(DISTINCT tag) FROM tags WHERE user_id = ?", (user_id,)).fetchone()[0]
            if n_tags > self.limits.tags:
                raise LimitExceeded(f"you have reached the limit of {self.limits.tags} tags: "
                                    "add to an existing tag, or delete one")
            n_papers = conn.execute("SELECT COUNT(*) FROM tags WHERE user_id = ? AND tag = ?",
                                    (user_id, tag)).fetchone()[0]
            if n_papers > self.limits.papers_per_tag:
                raise LimitExceeded(f"a tag holds at most {self.limits.papers_per_tag} papers; "
                                    f"{tag!r} would have {n_papers}")
        return check

    def add_tags(self, user_id: int, tag: str, paper_ids: Iterable[str]) -> int:
        """Tag papers; returns how many rows were new. Ids must already be validated.

        Raises :class:`LimitExceeded` (and changes nothing) past the tag or papers-per-tag limit.
        """
        tag, now = validate_tag(tag), time.time()
        sql = "INSERT OR IGNORE INTO tags (user_id, tag, paper_id, added_at) VALUES (?, ?, ?, ?)"
        return self._change([(sql, (user_id, tag, pid, now)) for pid in paper_ids], user_id,
                            self._check_tag_limits(user_id, tag))

    def add_tag_sets(self, user_id: int, tagged: dict[str, Iterable[str]]) -> dict[str, int]:
        """Add several tags' papers (an import's tag and collections) in ONE transaction: all or nothing.

        Returns ``{tag: rows that were new}``. Ids must already be validated. Raises :class:`LimitExceeded`
        (and changes nothing) if any tag would pass the papers-per-tag limit or the user the tag limit;
        ``tags_version`` is bumped once, and only when a row was new.
        """
        plan: dict[str, list[str]] = {}
        for tag, ids in tagged.items():
            plan.setdefault(validate_tag(tag), []).extend(ids)
        now, counts = time.time(), {}
        sql = "INSERT OR IGNORE INTO tags (user_id, tag, paper_id, added_at) VALUES (?, ?, ?, ?)"
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            for tag, ids in plan.items():
                counts[tag] = self.conn.executemany(sql, [(user_id, tag, pid, now) for pid in ids]).rowcount
            if any(counts.values()):
                for tag in plan:
                    self._check_tag_limits(user_id, tag)(self.conn)
                self.conn.execute("UPDATE users SET tags_version = tags_version + 1 WHERE id = ?", (user_id,))
        return counts

    def remove_tags(self, user_id: int, tag: str, paper_ids: Iterable[str]) -> int:
        sql = "DELETE FROM tags WHERE user_id = ? AND tag = ? AND paper_id = ?"
        return self._change([(sql, (user_id, tag, pid)) for pid in paper_ids], user_id)

    def rename_tag(self, user_id: int, old: str, new: str) -> int:
        new = validate_tag(new)
        # Merge into an existing tag of that name without violating the primary key.
        return self._change([
            ("INSERT OR IGNORE INTO tags (user_id, tag, paper_id, added_at) "
             "SELECT user_id, ?, paper_id, added_at FROM tags WHERE user_id = ? AND tag = ?", (new, user_id, old)),
            ("DELETE FROM tags WHERE user_id = ? AND tag = ? AND tag != ?", (user_id, old, new)),
        ], user_id, self._check_tag_limits(user_id, new))

    def delete_tag(self, user_id: int, tag: str) -> int:
        return self._change([("DELETE FROM tags WHERE user_id = ? AND tag = ?", (user_id, tag))], user_id)

    def tags(self, user_id: int) -> dict[str, list[str]]:
        """``{tag: [paper ids, newest first]}`` for one user."""
        out: dict[str, list[str]] = {}
        rows = self.conn.execute(
            "SELECT tag, paper_id FROM tags WHERE user_id = ? ORDER BY tag, added_at DESC, paper_id", (user_id,))
        for row in rows:
            out.setdefault(row["tag"], []).append(row["paper_id"])
        return out

    def paper_tags(self, user_id: int, paper_ids: Iterable[str]) -> dict[str, list[str]]:
        """``{paper id: [tags]}`` for the given papers (one query per page, not per paper)."""
        ids = list(paper_ids)
        out: dict[str, list[str]] = {pid: [] for pid in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                f"SELECT paper_id, tag FROM tags WHERE user_id = ? AND paper_id IN ({marks}) ORDER BY tag",
                (user_id, *chunk))
            for row in rows:
                out[row["paper_id"]].append(row["tag"])
        return out

    # across users: counts only, never who ----------------------------------
    def popular_rows(self, since: float, min_users: int) -> sqlite3.Cursor:
        """``(paper_id, readers)`` rows, most readers first then the most recently tagged, for papers that at
        least ``min_users`` different users tagged at or after ``since`` (unix seconds). A lazy cursor: the
        caller reads as many rows as its page needs. Use :func:`recommender.accounts.popular.popular`."""
        return self.conn.execute(
            "SELECT paper_id, COUNT(DISTINCT user_id) AS readers, MAX(added_at) AS last FROM tags "
            "WHERE added_at >= ? GROUP BY paper_id HAVING readers >= ? ORDER BY readers DESC, last DESC, paper_id",
            (since, min_users))

    def tags_generation(self) -> tuple[int, int]:
        """Changes whenever any user's tags change: (the sum of the users' ``tags_version``, the user count)."""
        total, count = self.conn.execute("SELECT COALESCE(SUM(tags_version), 0), COUNT(*) FROM users").fetchone()
        return int(total), int(count)

    def popular_count(self, since: float, min_users: int) -> int:
        """How many papers :meth:`popular_rows` would yield."""
        return self.conn.execute(
            "SELECT COUNT(*) FROM (SELECT paper_id FROM tags WHERE added_at >= ? GROUP BY paper_id "
            "HAVING COUNT(DISTINCT user_id) >= ?)", (since, min_users)).fetchone()[0]

    # negatives ---------------------------------------------------------
    def set_not_interested(self, user_id: int, paper_id: str, value: bool = True) -> int:
        if not value:
            return self._change([("DELETE FROM not_interested WHERE user_id = ? AND paper_id = ?",
                                  (user_id, paper_id))], user_id)

        def check(conn):
            n = conn.execute("SELECT COUNT(*) FROM not_interested WHERE user_id = ?", (user_id,)).fetchone()[0]
            if n > self.limits.not_interested:
                raise LimitExceeded(f"at most {self.limits.not_interested} papers can be marked not interested")
        sql = "INSERT OR IGNORE INTO not_interested (user_id, paper_id, added_at) VALUES (?, ?, ?)"
        return self._change([(sql, (user_id, paper_id, time.time()))], user_id, check)

    def not_interested(self, user_id: int) -> list[str]:
        rows = self.conn.execute("SELECT paper_id FROM not_interested WHERE user_id = ? ORDER BY added_at", (user_id,))
        return [r["paper_id"] for r in rows]

    # sessions and API tokens: only hashes are stored, so a leaked database holds no live credential
    def create_session(self, user_id: int) -> str:
        """A new login session. Expired sessions of every user are pruned on the way."""
        nonce, now = secrets.token_urlsafe(24), time.time()
        self.prune_sessions(now)
        self._write("INSERT INTO sessions (nonce_hash, user_id, created_at, last_seen) VALUES (?, ?, ?, ?)",
                    (_digest(nonce), user_id, now, now))
        return nonce

    def session_user(self, nonce: str) -> User | None:
        """The session's user, or None if the session ended or expired (idle or absolute lifetime)."""
        row = self.conn.execute("SELECT u.*, s.created_at AS s_created, s.last_seen AS s_seen FROM sessions s "
                                "JOIN users u ON u.id = s.user_id WHERE s.nonce_hash = ?", (_digest(nonce),)).fetchone()
        if row is None:
            return None
        now, seen = time.time(), row["s_seen"] or row["s_created"]
        if now - row["s_created"] > self.limits.session_max_s or now - seen > self.limits.session_idle_s:
            self.end_session(nonce)
            return None
        if now - seen > SESSION_TOUCH_S:  # not a write on every request
            self.conn.execute("UPDATE sessions SET last_seen = ? WHERE nonce_hash = ?", (now, _digest(nonce)))
        return User(**{k: row[k] for k in row.keys() if not k.startswith("s_")})

    def prune_sessions(self, now: float | None = None) -> int:
        """Delete every expired session; returns how many."""
        now = time.time() if now is None else now
        return self._write("DELETE FROM sessions WHERE created_at < ? OR COALESCE(last_seen, created_at) < ?",
                           (now - self.limits.session_max_s, now - self.limits.session_idle_s)).rowcount

    def end_session(self, nonce: str) -> None:
        self._write("DELETE FROM sessions WHERE nonce_hash = ?", (_digest(nonce),))

    def end_all_sessions(self, user_id: int) -> None:
        self._write("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    def create_token(self, user_id: int, name: str) -> tuple[int, str]:
        """A new personal API token; the secret is returned once and only its hash is kept."""
        name = _token_name(name)
        secret = "pf_" + secrets.token_urlsafe(32)
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            held = self.conn.execute("SELECT COUNT(*) FROM api_tokens WHERE user_id = ?", (user_id,)).fetchone()[0]
            if held >= self.limits.api_tokens:
                raise LimitExceeded(f"you have {held} API tokens, the limit: revoke one first")
            cur = self.conn.execute("INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?)",
                                    (user_id, name, _digest(secret), time.time()))
        return cur.lastrowid, secret

    def token_user(self, secret: str) -> User | None:
        row = self.conn.execute("SELECT u.*, t.id AS token_id, t.last_used FROM api_tokens t JOIN users u ON u.id = t.user_id "
                                "WHERE t.token_hash = ?", (_digest(secret),)).fetchone()
        if row is None:
            return None
        now = time.time()
        if row["last_used"] is None or now - row["last_used"] > TOKEN_TOUCH_S:  # not a write on every request
            self.conn.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", (now, row["token_id"]))
        return User(**{k: row[k] for k in row.keys() if k not in ("token_id", "last_used")})

    def tokens(self, user_id: int) -> list[dict]:
        rows = self.conn.execute("SELECT id, name, created_at, last_used FROM api_tokens WHERE user_id = ? ORDER BY id",
                                 (user_id,))
        return [dict(r) for r in rows]

    def revoke_token(self, user_id: int, token_id: int) -> bool:
        """Revoke one of this user's tokens; another user's token id is simply not found."""
        return self._write("DELETE FROM api_tokens WHERE id = ? AND user_id = ?", (token_id, user_id)).rowcount > 0

    # Atom feed tokens: a separate kind, so a feed URL (which readers store and may leak) can never call the API
    def create_feed_token(self, user_id: int, name: str, tag: str | None = None) -> tuple[int, str]:
        """A private feed token, for the whole library or one of the user's tags; the secret is returned once.

        Raises :class:`UserError` for a bad name, :class:`UnknownTag` for a tag the user does not have and
        :class:`LimitExceeded` past ``limits.api_tokens`` feed tokens (the same number as API tokens).
        """
        name = _token_name(name)
        secret = FEED_TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            if tag is not None and self.conn.execute("SELECT 1 FROM tags WHERE user_id = ? AND tag = ? LIMIT 1",
                                                     (user_id, tag)).fetchone() is None:
                raise UnknownTag(f"you have no tag {str(tag)[:40]!r}")
            held = self.conn.execute("SELECT COUNT(*) FROM feed_tokens WHERE user_id = ?", (user_id,)).fetchone()[0]
            if held >= self.limits.api_tokens:
                raise LimitExceeded(f"you have {held} feeds, the limit: revoke one first")
            cur = self.conn.execute("INSERT INTO feed_tokens (user_id, name, tag, token_hash, created_at) "
                                    "VALUES (?, ?, ?, ?, ?)", (user_id, name, tag, _digest(secret), time.time()))
        return cur.lastrowid, secret

    def feed_token(self, secret: str) -> FeedToken | None:
        """The feed token with this secret, or None (unknown, revoked or malformed: the caller answers 404).

        Found by the secret's hash, so the lookup time says nothing about how close a guess was. Notes the
        use at most every ``TOKEN_TOUCH_S``.
        """
        if not isinstance(secret, str) or not FEED_TOKEN.fullmatch(secret):
            return None
        row = self.conn.execute("SELECT id, user_id, name, tag, last_used FROM feed_tokens WHERE token_hash = ?",
                                (_digest(secret),)).fetchone()
        if row is None:
            return None
        now = time.time()
        if row["last_used"] is None or now - row["last_used"] > TOKEN_TOUCH_S:  # not a write on every fetch
            self.conn.execute("UPDATE feed_tokens SET last_used = ? WHERE id = ?", (now, row["id"]))
        return FeedToken(row["id"], row["user_id"], row["name"], row["tag"])

    def feed_tokens(self, user_id: int) -> list[dict]:
        """``[{id, name, tag, created_at, last_used}]``, never the secrets; ``tag`` None is the whole library."""
        rows = self.conn.execute("SELECT id, name, tag, created_at, last_used FROM feed_tokens WHERE user_id = ? "
                                 "ORDER BY id", (user_id,))
        return [dict(r) for r in rows]

    def revoke_feed_token(self, user_id: int, token_id: int) -> bool:
        """Revoke one of this user's feed tokens; another user's token id is simply not found."""
        return self._write("DELETE FROM feed_tokens WHERE id = ? AND user_id = ?", (token_id, user_id)).rowcount > 0

    # visits and feed preferences: bookkeeping of the user's own row, cheap enough for a page view
    def record_visit(self, user_id: int, now: float | None = None) -> float | None:
        """Note a page view; returns when the user's previous visit ended (None on a first visit).

        A visit is a run of page views less than ``VISIT_GAP_S`` apart. Within one, "since your last
        visit" keeps meaning the visit before, and the row is written at most every ``VISIT_TOUCH_S``.
        """
        now = time.time() if now is None else now
        row = self.conn.execute("SELECT last_seen, previous_visit FROM user_prefs WHERE user_id = ?",
                                (user_id,)).fetchone()
        last_seen = row["last_seen"] if row else None
        previous = row["previous_visit"] if row else None
        if last_seen is None or now - last_seen > VISIT_GAP_S:  # a new visit: the last one ended at last_seen
            previous = last_seen
            seen.prune(self, user_id, self.limits.seen_retention_s, now)  # once a visit, a bounded delete
            self._write("INSERT INTO user_prefs (user_id, last_seen, previous_visit) VALUES (?, ?, ?) "
                        "ON CONFLICT(user_id) DO UPDATE SET last_seen = excluded.last_seen, "
                        "previous_visit = excluded.previous_visit", (user_id, now, previous))
        elif now - last_seen > VISIT_TOUCH_S:
            self._write("UPDATE user_prefs SET last_seen = ? WHERE user_id = ?", (now, user_id))
        return previous

    def previous_visit(self, user_id: int) -> float | None:
        """When the user's previous visit ended, without recording anything (the API's read)."""
        row = self.conn.execute("SELECT previous_visit FROM user_prefs WHERE user_id = ?", (user_id,)).fetchone()
        return row["previous_visit"] if row else None

    def feed_prefs(self, user_id: int) -> dict:
        """The remembered feed filters, as saved (a JSON object of strings and lists); {} if none or unreadable.
        The caller validates each value against what exists now (a tag may be gone)."""
        row = self.conn.execute("SELECT feed FROM user_prefs WHERE user_id = ?", (user_id,)).fetchone()
        try:
            prefs = json.loads(row["feed"]) if row and row["feed"] else {}
        except ValueError:
            return {}
        return prefs if isinstance(prefs, dict) else {}

    def set_feed_prefs(self, user_id: int, prefs: dict) -> None:
        """Remember feed filters (written only when they change)."""
        text = json.dumps(prefs, sort_keys=True, ensure_ascii=True)
        if len(text) > FEED_PREFS_MAX_BYTES:
            raise UserError("feed preferences are too large")
        if self.feed_prefs(user_id) == json.loads(text):
            return
        self._write("INSERT INTO user_prefs (user_id, feed) VALUES (?, ?) "
                    "ON CONFLICT(user_id) DO UPDATE SET feed = excluded.feed", (user_id, text))


    # seen and opened papers (see recommender.accounts.seen) -------------
    def mark_shown(self, user_id: int, ids, via: str = "feed", now: float | None = None) -> int:
        """Record that ``ids`` were shown to the user (the feed, the digest, the Atom feed)."""
        return seen.mark(self, user_id, ids, seen.SHOWN, via, now)

    def mark_opened(self, user_id: int, ids, via: str = "page", now: float | None = None) -> int:
        """Record that the user opened ``ids`` (upgrades a shown row, never the other way)."""
        return seen.mark(self, user_id, ids, seen.OPENED, via, now)

    def seen_ids(self, user_id: int, before: float | None = None) -> frozenset[str]:
        """Every paper the user was shown or opened (marked before ``before``, if given)."""
        return seen.seen_ids(self, user_id, before)

    def shown(self, user_id: int, ids) -> dict[str, int]:
        """``{id: state}`` for those of ``ids`` the user was shown (1) or opened (2)."""
        return seen.states(self, user_id, ids)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a database made by an older release up to the schema (columns added since)."""
    columns = {r["name"] for r in conn.execute("PRAGMA table_info(sessions)")}
    if "last_seen" not in columns:
        conn.execute("ALTER TABLE sessions ADD COLUMN last_seen REAL")


def _token_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= 60 or not name.isprintable():
        raise UserError("token name must be 1-60 printable characters")
    return name


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
