"""A user's email digest: the settings (address, how often, how many, which tags) and the log of sends.

One ``digest_settings`` row per user who ever opened the settings; none means "off". One
``digest_sends`` row per message: it is written *pending* (``sent_at`` NULL) before the message goes
to the SMTP server, and completed in the same transaction that records its papers as seen
(``via="digest"``) and moves the user's watermark. So a run that dies at any point leaves either
nothing, or a pending row that the next run sends again with the same Message-ID and the same papers
(see :mod:`recommender.delivery.digest`).

Addresses typed on the web are unconfirmed until the owner follows the link in a confirmation
message: until then no digest goes to them, so nobody can make Paperfeed mail someone else. An
operator's ``paperfeed account --email`` is trusted and confirmed at once.
"""
from __future__ import annotations

import dataclasses
import json
import re
import time

FREQUENCIES = ("off", "daily", "weekly")
# A digest is due this long after the last one: a little under the period, so a cron job that runs a
# few minutes early or late still sends every day (or week), and a rerun the same day sends nothing.
PERIOD_S = {"daily": 20 * 3600, "weekly": 6 * 86400 + 20 * 3600}
DEFAULT_SIZE, MAX_SIZE = 10, 50
MAX_DIGEST_TAGS = 50
EMAIL_MAX = 254
# One address, no display name: nothing that could smuggle a second recipient or a header in.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*", re.ASCII)

SCHEMA = """
CREATE TABLE IF NOT EXISTS digest_settings (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    email TEXT,
    email_confirmed INTEGER NOT NULL DEFAULT 0,
    frequency TEXT NOT NULL DEFAULT 'off',
    size INTEGER NOT NULL DEFAULT 10,
    tags TEXT,                            -- JSON list of tag names; NULL: the whole library
    nothing_new INTEGER NOT NULL DEFAULT 0,  -- 1: send a short notice when nothing is new
    popular INTEGER NOT NULL DEFAULT 0,      -- 1: add a "popular with other readers" section
    link_epoch INTEGER NOT NULL DEFAULT 0,   -- bumped when the address changes: older links stop working
    since REAL,          -- papers that entered the index after this (unix seconds) are new to the next digest
    last_sent REAL,
    last_attempt REAL,
    failures INTEGER NOT NULL DEFAULT 0,     -- consecutive failed attempts
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS digest_sends (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,          -- 'digest', 'nothing-new' or 'confirm'
    message_id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    sent_at REAL,                -- NULL: pending (built, maybe handed to the server, not recorded as sent)
    papers TEXT NOT NULL DEFAULT '[]',   -- JSON [paper id], ranked
    popular TEXT NOT NULL DEFAULT '[]',  -- JSON [paper id] of the popular section
    watermark REAL               -- the user's new ``since`` once this message is sent
);
CREATE INDEX IF NOT EXISTS digest_sends_by_user ON digest_sends (user_id, sent_at);
"""


@dataclasses.dataclass(frozen=True)
class DigestSettings:
    user_id: int
    email: str | None = None
    email_confirmed: bool = False
    frequency: str = "off"
    size: int = DEFAULT_SIZE
    tags: tuple[str, ...] | None = None  # None: the whole library
    nothing_new: bool = False
    popular: bool = False
    link_epoch: int = 0
    since: float | None = None
    last_sent: float | None = None
    last_attempt: float | None = None
    failures: int = 0
    last_error: str | None = None

    @property
    def active(self) -> bool:
        """Digests go out: a frequency is chosen and the address is confirmed."""
        return self.frequency != "off" and bool(self.email) and self.email_confirmed

    def public(self) -> dict:
        """What the account page and the API show (no internal watermark or epoch)."""
        return {"email": self.email, "email_confirmed": self.email_confirmed, "frequency": self.frequency,
                "size": self.size, "tags": list(self.tags) if self.tags is not None else None,
                "nothing_new": self.nothing_new, "popular": self.popular, "last_sent": self.last_sent,
                "last_error": self.last_error, "failures": self.failures}


@dataclasses.dataclass(frozen=True)
class Send:
    id: int
    user_id: int
    kind: str
    message_id: str
    created_at: float
    sent_at: float | None
    papers: list[str]
    popular: list[str]
    watermark: float | None


class SubscriptionError(ValueError):
    """A bad digest setting; the message is safe to show."""

    status = 400


def validate_email(address) -> str:
    """One plain address (``name@example.org``), at most 254 characters, domain lower-cased."""
    address = address.strip() if isinstance(address, str) else ""
    if len(address) > EMAIL_MAX or not _EMAIL.fullmatch(address) or "." not in address.rsplit("@", 1)[1] \
            and not address.endswith("@localhost"):
        raise SubscriptionError("email must be one plain address such as name@example.org")
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def validate_frequency(value) -> str:
    if value not in FREQUENCIES:
        raise SubscriptionError(f"digest frequency must be one of {', '.join(FREQUENCIES)}")
    return value


def validate_size(value) -> int:
    try:
        size = int(value)
        if isinstance(value, bool) or isinstance(value, float) and size != value:
            raise ValueError
    except (TypeError, ValueError):
        size = -1
    if not 1 <= size <= MAX_SIZE:
        raise SubscriptionError(f"digest size must be a whole number from 1 to {MAX_SIZE}")
    return size


def _row(row) -> DigestSettings:
    tags = json.loads(row["tags"]) if row["tags"] else None
    return DigestSettings(
        user_id=row["user_id"], email=row["email"], email_confirmed=bool(row["email_confirmed"]),
        frequency=row["frequency"], size=row["size"], tags=tuple(tags) if tags is not None else None,
        nothing_new=bool(row["nothing_new"]), popular=bool(row["popular"]), link_epoch=row["link_epoch"],
        since=row["since"], last_sent=row["last_sent"], last_attempt=row["last_attempt"],
        failures=row["failures"], last_error=row["last_error"])


def get(store, user_id: int) -> DigestSettings:
    """The user's digest settings (the defaults, "off", when none were ever saved)."""
    row = store.conn.execute("SELECT * FROM digest_settings WHERE user_id = ?", (user_id,)).fetchone()
    return _row(row) if row else DigestSettings(user_id)


_UNSET = object()


def update(store, user_id: int, *, email=_UNSET, confirmed: bool = False, frequency=_UNSET, size=_UNSET,
           tags=_UNSET, nothing_new=_UNSET, popular=_UNSET, now: float | None = None) -> DigestSettings:
    """Change some settings, in one transaction; the others stay. Returns the new settings.

    - A new ``email`` is unconfirmed (unless ``confirmed``: an operator's command), and bumps the link
      epoch, so links mailed to the old address stop working. The same address again changes nothing.
    - ``tags`` is a list of the user's tags, or None for the whole library; unknown tags are refused.
    - Turning the digest on starts its window now: the first digest holds papers that arrive after it.
    """
    now = time.time() if now is None else now
    changes: dict[str, object] = {}
    if email is not _UNSET:
        changes["email"] = validate_email(email) if email else None
    if frequency is not _UNSET:
        changes["frequency"] = validate_frequency(frequency)
    if size is not _UNSET:
        changes["size"] = validate_size(size)
    if nothing_new is not _UNSET:
        changes["nothing_new"] = int(bool(nothing_new))
    if popular is not _UNSET:
        changes["popular"] = int(bool(popular))
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        current = get(store, user_id)
        if tags is not _UNSET:
            changes["tags"] = None if tags is None else json.dumps(_check_tags(store, user_id, tags))
        if "email" in changes:
            if changes["email"] == current.email:
                del changes["email"]
                if confirmed and not current.email_confirmed:
                    changes["email_confirmed"] = 1
            else:
                changes["email_confirmed"] = int(bool(confirmed and changes["email"]))
                changes["link_epoch"] = current.link_epoch + 1
                changes["failures"], changes["last_error"] = 0, None
        turning_on = changes.get("frequency", current.frequency) != "off" and (
            current.frequency == "off" or current.since is None)
        if turning_on:  # arrival times are whole seconds: a compute that starts in this very second counts
            changes["since"] = float(int(now) - 1)
        if changes.get("frequency") == "off":
            store.conn.execute("DELETE FROM digest_sends WHERE user_id = ? AND sent_at IS NULL", (user_id,))
        store.conn.execute("INSERT OR IGNORE INTO digest_settings (user_id) VALUES (?)", (user_id,))
        if changes:
            columns = ", ".join(f"{name} = ?" for name in changes)
            store.conn.execute(f"UPDATE digest_settings SET {columns} WHERE user_id = ?",
                               (*changes.values(), user_id))
    return get(store, user_id)


def _check_tags(store, user_id: int, tags) -> list[str]:
    if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise SubscriptionError("digest tags must be a list of your tag names (or null for the whole library)")
    wanted = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
    if len(wanted) > MAX_DIGEST_TAGS:
        raise SubscriptionError(f"a digest can follow at most {MAX_DIGEST_TAGS} tags")
    have = {r[0] for r in store.conn.execute("SELECT DISTINCT tag FROM tags WHERE user_id = ?", (user_id,))}
    missing = [t for t in wanted if t not in have]
    if missing:
        raise SubscriptionError(f"you have no tag {missing[0][:40]!r}")
    return wanted


def confirm(store, user_id: int, email: str) -> bool:
    """Mark ``email`` confirmed if it is still the user's address; False if it changed meanwhile."""
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        return store.conn.execute("UPDATE digest_settings SET email_confirmed = 1, failures = 0, last_error = NULL "
                                  "WHERE user_id = ? AND email = ?", (user_id, email)).rowcount > 0


def unsubscribe(store, user_id: int) -> bool:
    """Turn the digest off; True if it was on."""
    was_on = get(store, user_id).frequency != "off"
    update(store, user_id, frequency="off")
    return was_on


def subscribers(store) -> list[tuple[int, str]]:
    """``(user id, username)`` of every user whose digest is on (confirmed or not), by id."""
    return [(r[0], r[1]) for r in store.conn.execute(
        "SELECT u.id, u.username FROM digest_settings d JOIN users u ON u.id = d.user_id "
        "WHERE d.frequency != 'off' AND d.email IS NOT NULL ORDER BY u.id")]


# the send log -----------------------------------------------------------------------------------------
def _send(row) -> Send:
    return Send(row["id"], row["user_id"], row["kind"], row["message_id"], row["created_at"], row["sent_at"],
                json.loads(row["papers"]), json.loads(row["popular"]), row["watermark"])


def pending(store, user_id: int) -> Send | None:
    """The user's message that was built but not recorded as sent (a failed or interrupted run's)."""
    row = store.conn.execute("SELECT * FROM digest_sends WHERE user_id = ? AND sent_at IS NULL "
                             "ORDER BY id DESC LIMIT 1", (user_id,)).fetchone()
    return _send(row) if row else None


def last_sent(store, user_id: int, kind: str) -> float | None:
    row = store.conn.execute("SELECT MAX(sent_at) FROM digest_sends WHERE user_id = ? AND kind = ?",
                             (user_id, kind)).fetchone()
    return row[0]


def add_pending(store, user_id: int, kind: str, message_id: str, papers: list[str], popular: list[str],
                watermark: float | None, now: float | None = None) -> Send:
    """Record a message about to be sent (replacing an older pending one of the user)."""
    now = time.time() if now is None else now
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        store.conn.execute("DELETE FROM digest_sends WHERE user_id = ? AND sent_at IS NULL", (user_id,))
        cur = store.conn.execute(
            "INSERT INTO digest_sends (user_id, kind, message_id, created_at, papers, popular, watermark) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (user_id, kind, message_id, now, json.dumps(papers), json.dumps(popular), watermark))
    return Send(cur.lastrowid, user_id, kind, message_id, now, None, papers, popular, watermark)


def drop_pending(store, send: Send) -> None:
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        store.conn.execute("DELETE FROM digest_sends WHERE id = ? AND sent_at IS NULL", (send.id,))


def record_sent(store, send: Send, now: float | None = None) -> None:
    """The server accepted ``send``: in ONE transaction, complete its row, mark its papers seen
    (``via="digest"``) and, for a digest, move the user's window on and clear the failure count."""
    from . import seen  # the seen table lives in the same database
    now = time.time() if now is None else now
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        store.conn.execute("UPDATE digest_sends SET sent_at = ? WHERE id = ?", (now, send.id))
        if send.kind == "confirm":
            return
        seen.upsert(store.conn, send.user_id, [*send.papers, *send.popular], seen.SHOWN, "digest", now)
        store.conn.execute(
            "UPDATE digest_settings SET last_sent = ?, last_attempt = ?, failures = 0, last_error = NULL, "
            "since = COALESCE(?, since) WHERE user_id = ?", (now, now, send.watermark, send.user_id))


def record_failure(store, user_id: int, error: str, now: float | None = None) -> None:
    """A failed attempt: counted and kept for the account page (the pending message stays for the next run)."""
    now = time.time() if now is None else now
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        store.conn.execute("UPDATE digest_settings SET failures = failures + 1, last_error = ?, last_attempt = ? "
                           "WHERE user_id = ?", (error[:500], now, user_id))


def sends(store, user_id: int, limit: int = 20) -> list[Send]:
    """The user's most recent messages, newest first."""
    rows = store.conn.execute("SELECT * FROM digest_sends WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                              (user_id, limit))
    return [_send(r) for r in rows]


def prune_sends(store, retention_s: float, now: float | None = None) -> int:
    """Delete the record of messages sent longer than ``retention_s`` ago (``paperfeed train``, with the
    seen records they go with); pending ones stay."""
    cutoff = (time.time() if now is None else now) - retention_s
    with store.conn:
        store.conn.execute("BEGIN IMMEDIATE")
        return store.conn.execute("DELETE FROM digest_sends WHERE sent_at IS NOT NULL AND sent_at < ?",
                                  (cutoff,)).rowcount
