"""One-click links from digest emails: ``/email/<token>`` (see :mod:`recommender.delivery.links`).

- ``GET`` shows what the link will do (nothing changes: mail scanners and link previews fetch every URL);
  the page's form POSTs back to the same URL with a CSRF token.
- ``POST`` does exactly the signed action for the signed user, whoever is (or is not) logged in: the
  token is the credential. A damaged, forged, expired or outdated link is a friendly 400/410 page.
- RFC 8058 one-click unsubscribe: mail providers POST ``List-Unsubscribe=One-Click`` to the
  ``List-Unsubscribe`` URL without any cookie or CSRF token. :func:`one_click_unsubscribe` lets exactly
  that request (an unsubscribe link, that body) past the CSRF check; every other POST here needs the token.

The URL is a secret, so these pages are sent with ``Referrer-Policy: no-referrer``, ``X-Robots-Tag:
noindex`` and ``Cache-Control: no-store``.
"""
from __future__ import annotations

import dataclasses

from flask import Blueprint, g, render_template, request

from recommender.accounts import subscriptions
from recommender.accounts.subscriptions import DigestSettings
from recommender.accounts.users import User, UserError, validate_tag
from recommender.corpus.papers import Paper
from recommender.delivery.links import KEY_FILE, BadLink, Link, LinkExpired, Signer, email_hash, link_key
from recommender.learning import service

from .auth import users
from .context import state

bp = Blueprint("email", __name__)

INVALID = "This link is not valid: it may have been cut short by your mail program."


class Problem(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass
class Resolved:
    link: Link
    user: User
    prefs: DigestSettings
    paper: Paper | None


def _signer() -> Signer:
    data_dir = state().settings.data_dir
    if not (data_dir / KEY_FILE).exists():  # no key: no link was ever mailed (and a GET creates nothing)
        raise Problem(400, INVALID)
    return Signer(link_key(data_dir))


def _load(token: str) -> Link:
    try:
        return _signer().loads(token)
    except LinkExpired as exc:
        raise Problem(410, str(exc)) from None
    except BadLink as exc:
        raise Problem(400, str(exc)) from None


def resolve(token: str) -> Resolved:
    """The link's action, user, digest settings and paper, or :class:`Problem` saying why it does not work."""
    link = _load(token)
    store = users()
    user = store.get_user_by_id(link.user_id)
    if user is None:
        raise Problem(410, "This link's account no longer exists.")
    prefs = subscriptions.get(store, user.id)
    if link.epoch != prefs.link_epoch:
        raise Problem(410, "This link no longer works: the digest's email address was changed after it was "
                           "sent. Use a newer message, or the site.")
    if link.action == "confirm" and (not prefs.email or link.email_hash != email_hash(prefs.email)):
        raise Problem(410, "This confirmation link is for an address that is no longer the one in the digest "
                           "settings.")
    paper = None
    if link.action in ("tag", "not-interested"):
        if not link.paper:
            raise Problem(400, INVALID)
        paper = state().papers.get_many([link.paper]).get(link.paper)
        if paper is None:
            raise Problem(404, f"The paper {link.paper[:40]} is not in this Paperfeed any more, so the link "
                               "cannot be used.")
    return Resolved(link, user, prefs, paper)


def one_click_unsubscribe() -> bool:
    """This request is an RFC 8058 one-click unsubscribe: a POST of ``List-Unsubscribe=One-Click`` to a
    genuine, current unsubscribe link. Only then is the CSRF check skipped (``auth.check_csrf``)."""
    if request.method != "POST" or request.endpoint != "email.link_post":
        return False
    if request.form.get("List-Unsubscribe") != "One-Click":
        return False
    try:
        link = _load((request.view_args or {}).get("link_token", ""))
    except Problem:
        return False
    return link.action == "unsubscribe"


@bp.after_request
def _private(response):
    response.headers["Referrer-Policy"] = "no-referrer"  # the URL is the secret: never send it on
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _page(status: int = 200, **values):
    return render_template("email_link.html", **values), status


def _problem(problem: Problem):
    return _page(problem.status, problem=str(problem), code=problem.status)


def _choices(r: Resolved) -> dict:
    """The tag select: the user's tags, with the link's suggestion (kept even if the tag was deleted)."""
    tags = users().tags(r.user.id)
    names = sorted(tags)
    suggested = r.link.tag if isinstance(r.link.tag, str) and r.link.tag.strip() else None
    if suggested and suggested not in tags:
        names = sorted([*names, suggested])
    already = sorted(t for t, ids in tags.items() if r.paper is not None and r.paper.id in ids)
    return {"tag_names": names, "suggested": suggested or (names[0] if names else None), "already": already}


@bp.get("/email/<link_token>")
def link_page(link_token: str):
    try:
        r = resolve(link_token)
    except Problem as problem:
        return _problem(problem)
    extra = _choices(r) if r.link.action == "tag" else {}
    if r.link.action == "not-interested":
        extra["hidden"] = r.paper.id in users().not_interested(r.user.id)
    return _page(r=r, action=r.link.action, **extra)


@bp.post("/email/<link_token>")
def link_post(link_token: str):
    try:
        r = resolve(link_token)
    except Problem as problem:
        return _problem(problem)
    action = r.link.action
    try:
        if action == "tag":
            return _tag(r)
        if action == "not-interested":
            return _not_interested(r)
        if action == "unsubscribe":
            was_on = subscriptions.unsubscribe(users(), r.user.id)
            done = ("You are unsubscribed: no more digests will be sent." if was_on
                    else "The digest was already off: no digests are sent.")
            return _page(r=r, action=action, done=done, one_click=g.get("one_click", False))
        if action == "confirm":
            return _confirm(r)
    except UserError as exc:
        return _page(exc.status, r=r, action=action, problem=str(exc), code=exc.status)
    return _problem(Problem(400, INVALID))


def _tag(r: Resolved):
    raw = request.form.get("new_tag", "").strip() or request.form.get("tag", "")
    try:
        name = validate_tag(raw)
    except UserError as exc:
        return _page(exc.status, r=r, action="tag", error=str(exc), **_choices(r))
    added = service.tag(users(), state().papers, r.user, name, [r.paper.id])
    if added:
        g.pop("library", None)
        state().schedule_retrain(r.user.id)  # as the web does after a tag change
    done = (f"Added to your tag “{name}”." if added else f"It was already in your tag “{name}”.")
    return _page(r=r, action="tag", done=done, tag=name)


def _not_interested(r: Resolved):
    store = users()
    if r.paper.id in store.not_interested(r.user.id):
        return _page(r=r, action="not-interested", done="It was already marked not interested.")
    store.set_not_interested(r.user.id, r.paper.id, True)
    g.pop("library", None)
    state().schedule_retrain(r.user.id)
    return _page(r=r, action="not-interested",
                 done="Marked not interested: your recommendations will show fewer papers like it.")


def _confirm(r: Resolved):
    if r.prefs.email_confirmed:
        done = f"{r.prefs.email} was already confirmed."
    elif subscriptions.confirm(users(), r.user.id, r.prefs.email):
        done = f"{r.prefs.email} is confirmed."
    else:  # the address changed between the check and now
        return _problem(Problem(410, "This confirmation link is for an address that is no longer the one in "
                                     "the digest settings."))
    prefs = subscriptions.get(users(), r.user.id)
    if prefs.frequency == "off":
        done += " The digest is off: choose daily or weekly in your account settings to receive it."
    else:
        done += f" Your {prefs.frequency} digest will be sent to it."
    return _page(r=r, action="confirm", done=done)
