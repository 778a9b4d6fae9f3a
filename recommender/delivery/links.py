"""Signed one-click links for email: "add to tag", "not interested", "unsubscribe" and "confirm address".

A link is ``<public_url>/email/<token>``. The token is signed (HMAC-SHA1 via ``itsdangerous``, which Flask
already uses for its session cookie) with a key kept in ``<data_dir>/instance/email_link_key`` (mode 600,
made by whichever process needs it first; delete it to invalidate every link ever mailed). It names one
user, one action and, for the paper actions, one paper: a link can do exactly that and nothing else.

- It expires (:data:`MAX_AGE_S`) and dies when the user changes address (the "link epoch" is inside).
- Opening it (GET) only shows a confirmation page; the action needs the POST of that page's form, so
  mail scanners and link previews that fetch every URL change nothing.
- Whoever holds the link may use it without logging in: it went to the user's confirmed address.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
from pathlib import Path

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

KEY_FILE = "instance/email_link_key"
SALT = "paperfeed.email-link.v1"
ACTIONS = ("tag", "not-interested", "unsubscribe", "confirm")
DAY = 86400
MAX_AGE_S = {"tag": 30 * DAY, "not-interested": 30 * DAY, "unsubscribe": 365 * DAY, "confirm": 7 * DAY}


class BadLink(ValueError):
    """A link that is damaged, forged, expired or no longer valid; the message is safe to show."""


class LinkExpired(BadLink):
    """A genuine link past its age limit (the web answers 410 Gone rather than 400)."""


@dataclasses.dataclass(frozen=True)
class Link:
    action: str
    user_id: int
    epoch: int
    paper: str | None = None
    tag: str | None = None       # "tag": the suggested tag (the page lets the user pick another)
    email_hash: str | None = None  # "confirm": which address it confirms


def link_key(data_dir: Path) -> bytes:
    """The signing key, created (mode 600, atomically) on first use."""
    path = Path(data_dir) / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def email_hash(address: str) -> str:
    return hashlib.sha256(address.encode("utf-8")).hexdigest()[:16]


class Signer:
    def __init__(self, key: bytes):
        self._serializer = URLSafeTimedSerializer(key, salt=SALT)

    def dumps(self, link: Link) -> str:
        if link.action not in ACTIONS:
            raise ValueError(f"unknown link action {link.action!r}")
        payload = {"a": link.action, "u": link.user_id, "e": link.epoch}
        if link.paper is not None:
            payload["p"] = link.paper
        if link.tag is not None:
            payload["t"] = link.tag
        if link.email_hash is not None:
            payload["m"] = link.email_hash
        return self._serializer.dumps(payload)

    def loads(self, token: str) -> Link:
        """The link ``token`` carries, or :class:`BadLink` (forged, damaged or expired)."""
        if not isinstance(token, str) or len(token) > 1000:
            raise BadLink("This link is not valid.")
        try:
            payload = self._serializer.loads(token)  # the signature first, without an age limit
            action = payload["a"]
            self._serializer.loads(token, max_age=MAX_AGE_S[action])
            link = Link(action, int(payload["u"]), int(payload["e"]), payload.get("p"), payload.get("t"),
                        payload.get("m"))
        except SignatureExpired:
            raise LinkExpired("This link has expired. Links in a digest work for a limited time; "
                          "use the site, or the newest digest, instead.") from None
        except (BadData, KeyError, TypeError, ValueError):
            raise BadLink("This link is not valid: it may have been cut short by your mail program.") from None
        for value in (link.paper, link.tag, link.email_hash):
            if value is not None and not isinstance(value, str):
                raise BadLink("This link is not valid.")
        return link
