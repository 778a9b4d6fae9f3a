"""Private Atom feeds: ``/feeds/<token>.atom`` and the account forms that create and revoke them.

A feed reader has no session and no CSRF token, so the secret in the URL is the whole credential: it is
looked up by its hash (``UserStore.feed_token``), is a separate kind from API tokens (a leaked feed URL
reads one feed and nothing else), and an unknown, revoked or malformed one is a plain 404. The GET
changes nothing but the token's "last used" time, written at most once a minute.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user, login_required

from recommender.accounts.users import UserError
from recommender.delivery import atom
from recommender.features.index import from_day

from .auth import account_page, users
from .context import index, state

bp = Blueprint("atom", __name__)
CACHE_CONTROL = "private, max-age=900"  # readers poll every 15 minutes at most; no shared cache keeps a private feed


@bp.get("/feeds/<feed_token>.atom")
def feed(feed_token: str):
    store = users()
    found = store.feed_token(feed_token)
    if found is None:
        abort(404, description="No such feed. It may have been revoked: make a new one on your account page.")
    user = store.get_user_by_id(found.user_id)
    tags = store.tags(user.id)
    idx = index()
    gone = found.tag is not None and found.tag not in tags
    picked = atom.FeedPapers([], False, None, None) if gone else atom.feed_papers(
        idx, state().model(user.id), tags, store.not_interested(user.id), found.tag)
    found_papers = state().papers.get_many(picked.ids)
    papers = [found_papers[pid] for pid in picked.ids if pid in found_papers]
    try:  # the reader was shown these (so "hide seen" and the digest skip them); never worth failing the feed
        store.mark_shown(user.id, [p.id for p in papers], via="atom")
    except sqlite3.Error as exc:
        current_app.logger.warning("atom feed: seen marks skipped: %s", exc)
    info = atom.FeedInfo(
        feed_id=f"tag:{urlsplit(request.host_url).hostname or 'localhost'},2026:feeds/{found.id}",
        title=f"Paperfeed: {found.tag}" if found.tag else f"Paperfeed: {user.username}'s library",
        subtitle=_subtitle(found.tag, picked, gone),
        self_url=request.base_url, site_url=url_for("views.feed", _external=True),
        fallback_updated=_generation_day(idx))
    body, _ = atom.atom_document(info, papers, lambda pid: url_for("views.paper", raw_id=pid, _external=True))
    response = Response(body, content_type="application/atom+xml; charset=utf-8")
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Referrer-Policy"] = "no-referrer"  # the URL is the secret: never send it on
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    return response.make_conditional(request)


def _subtitle(tag: str | None, picked: atom.FeedPapers, gone: bool) -> str:
    if gone:
        return f"You no longer have the tag {tag!r}: revoke this feed on your account page."
    scope = f"the tag {tag!r}" if tag else "your library"
    window = f"papers dated {picked.since} to {picked.newest}" if picked.since else "no papers indexed yet"
    if picked.scored:
        return f"The top {atom.FEED_SIZE} recommendations for {scope} among the {window}, best first."
    return (f"No model for {scope} yet (tag a few papers; training takes a moment): the newest {window}, "
            "newest first.")


def _generation_day(idx) -> dt.datetime:
    """The feed's date when it has no entries: the newest paper in the index (deterministic, unlike now)."""
    day = from_day(int(idx.dates[-1])) if len(idx) else "2026-01-01"
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.timezone.utc)


def feed_url(secret: str) -> str:
    return url_for("atom.feed", feed_token=secret, _external=True)


def token_tag(raw) -> str | None:
    """The tag a new feed is bound to: None (the whole library) for a missing or empty value."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise UserError("tag must be a string (or empty for the whole library)")
    return raw.strip() or None


# the account page's forms (POST with CSRF, like the API tokens) ----------------------------------
@bp.post("/account/feeds")
@login_required
def account_feed_create():
    try:
        _, secret = users().create_feed_token(current_user.id, request.form.get("name", ""),
                                              token_tag(request.form.get("tag")))
    except UserError as exc:
        flash(str(exc), "error")
        return account_page(exc.status)
    return account_page(new_feed=feed_url(secret))


@bp.post("/account/feeds/<int:token_id>/revoke")
@login_required
def account_feed_revoke(token_id: int):
    if users().revoke_feed_token(current_user.id, token_id):
        flash("Feed revoked: its URL now answers 404.", "ok")
    else:
        flash("No such feed.", "error")
    return redirect(url_for("auth.account"))
