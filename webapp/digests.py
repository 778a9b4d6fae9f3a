"""The email digest's web side: the account page's settings form and ``GET``/``PUT /api/digest``.

Saving a new address leaves it unconfirmed (see :mod:`recommender.accounts.subscriptions`). When email
is set up (``smtp_host``, ``smtp_from`` and ``public_url``) the confirmation message goes out at once,
within the request (bounded by ``smtp_timeout``, at most ``WEB_SMTP_TIMEOUT_S``); otherwise, or when the server does not take it, the
next ``paperfeed digest`` run sends it. Either way the save itself has succeeded: a mail problem is never
an error page. At most one confirmation message a day goes to a user (``digest.CONFIRM_EVERY_S``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, request, url_for
from flask_login import current_user, login_required

from recommender.accounts import subscriptions
from recommender.accounts.subscriptions import DigestSettings, SubscriptionError
from recommender.delivery import digest, mailer

from . import feeds
from .auth import account_page, users
from .context import state

bp = Blueprint("digest", __name__)

API_FIELDS = ("email", "frequency", "size", "tags", "popular", "nothing_new")

WEB_SMTP_TIMEOUT_S = 10.0  # a page waits at most this long on the SMTP server (the digest job waits smtp_timeout)


@dataclasses.dataclass(frozen=True)
class Confirmation:
    """What became of the confirmation message after a save: ``status`` and a sentence for people."""

    status: str   # sent, later (the next digest run), waiting (one was sent in the last day), none
    message: str = ""


def email_ready(settings) -> bool:
    """Email can go out from the web: an SMTP server, a From address and the site's public address."""
    return bool(settings.smtp_host and settings.smtp_from and settings.public_url)


def _next_run_note(prefs: DigestSettings) -> str:
    if prefs.frequency == "off":
        return ("It will be sent by the next digest run once you choose daily or weekly (or use "
                "“send the confirmation again” later).")
    return "It will be sent by the next digest run."


def request_confirmation(user_id: int, username: str) -> Confirmation:
    """Send the confirmation message now if email is set up; never raises for a mail problem."""
    store = users()
    prefs = subscriptions.get(store, user_id)
    if not prefs.email or prefs.email_confirmed:
        return Confirmation("none")
    settings = state().settings
    if not email_ready(settings):
        return Confirmation("later", f"Email is not set up on this server yet, so no confirmation message "
                                     f"went to {prefs.email} now. {_next_run_note(prefs)}")
    try:
        config = mailer.SMTPConfig.from_settings(settings)
        config = dataclasses.replace(config, timeout=min(config.timeout, WEB_SMTP_TIMEOUT_S))
        ctx = digest.Context(settings, store, state().papers, None, base_url=settings.public_url)
        with mailer.Mailer(config) as outbox:
            outcome = digest.send_confirmation(ctx, user_id, username, outbox)
    except mailer.NotConfigured:
        return Confirmation("later", f"Email is not set up on this server yet. {_next_run_note(prefs)}")
    except (mailer.Refused, mailer.Unavailable) as exc:
        subscriptions.record_failure(store, user_id, str(exc))
        current_app.logger.warning("confirmation message for user %s not sent: %s", user_id, exc)
        return Confirmation("later", f"The confirmation message to {prefs.email} could not be sent just now "
                                     f"({exc}). {_next_run_note(prefs)}")
    if outcome.status == "confirm":
        return Confirmation("sent", f"A confirmation message went to {prefs.email}: follow its link to start "
                                    "receiving digests (it works for 7 days).")
    if outcome.status == "skipped" and outcome.detail != "nothing to confirm":
        last = subscriptions.last_sent(store, user_id, "confirm") or 0
        at = dt.datetime.fromtimestamp(last + digest.CONFIRM_EVERY_S, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return Confirmation("waiting", f"A confirmation message was sent less than a day ago; at most one a day "
                                       f"is sent, so the next one can go to {prefs.email} after {at}. "
                                       "Look for the last one (also in your spam folder).")
    return Confirmation("none")


# the account page's form ----------------------------------------------------------------------------
def _form_values(form) -> dict:
    """The form's fields as ``subscriptions.update`` takes them (validation is update's)."""
    scope = form.get("scope", "library")
    chosen = form.getlist("tags")
    if scope not in ("library", "tags"):
        raise SubscriptionError("choose the whole library or some of your tags")
    if scope == "tags" and not chosen:
        raise SubscriptionError("choose at least one tag for the digest, or the whole library")
    return {"email": form.get("email", "").strip() or None, "frequency": form.get("frequency", ""),
            "size": form.get("size", ""), "tags": chosen if scope == "tags" else None,
            "popular": form.get("popular") == "1", "nothing_new": form.get("nothing_new") == "1"}


@bp.post("/account/digest")
@login_required
def account_digest():
    store = users()
    uid = current_user.id
    before = subscriptions.get(store, uid)
    try:
        values = _form_values(request.form)
        after = subscriptions.update(store, uid, **values)
    except SubscriptionError as exc:
        flash(str(exc), "error")
        return account_page(exc.status, digest_form=_echo(request.form))
    flash("Digest settings saved.", "ok")
    if after.email and not after.email_confirmed and after.email != before.email:
        note = request_confirmation(uid, current_user.username)
        if note.message:
            flash(note.message, "ok" if note.status == "sent" else "error")
    elif not after.email and after.frequency != "off":
        flash("No digest goes out until you give an email address.", "error")
    return redirect(url_for("auth.account") + "#digest")


def _echo(form) -> dict:
    """The submitted values, shown again in the form after an error."""
    return {"email": form.get("email", "")[:300], "frequency": form.get("frequency", ""),
            "size": form.get("size", "")[:10], "scope": form.get("scope", "library"),
            "tags": form.getlist("tags"), "popular": form.get("popular") == "1",
            "nothing_new": form.get("nothing_new") == "1"}


@bp.post("/account/digest/confirm")
@login_required
def account_digest_resend():
    """“Send the confirmation again” (still at most one message a day)."""
    prefs = subscriptions.get(users(), current_user.id)
    if not prefs.email:
        flash("Give an email address first.", "error")
    elif prefs.email_confirmed:
        flash(f"{prefs.email} is already confirmed.", "ok")
    else:
        note = request_confirmation(current_user.id, current_user.username)
        if note.message:
            flash(note.message, "ok" if note.status == "sent" else "error")
    return redirect(url_for("auth.account") + "#digest")


def form_defaults(prefs: DigestSettings) -> dict:
    """The settings as the form shows them."""
    return {"email": prefs.email or "", "frequency": prefs.frequency, "size": str(prefs.size),
            "scope": "library" if prefs.tags is None else "tags", "tags": list(prefs.tags or ()),
            "popular": prefs.popular, "nothing_new": prefs.nothing_new}


# the JSON API ----------------------------------------------------------------------------------------
def _api_view(prefs: DigestSettings, confirmation: Confirmation | None = None) -> dict:
    out = prefs.public()
    out["confirmation"] = None if confirmation is None or confirmation.status == "none" else {
        "status": confirmation.status, "message": confirmation.message}
    return out


@bp.get("/api/digest")
@login_required
def api_get():
    return jsonify(_api_view(subscriptions.get(users(), current_user.id)))


@bp.put("/api/digest")
@login_required
def api_put():
    data = feeds.json_object()
    unknown = sorted(set(data) - set(API_FIELDS))
    if unknown:
        feeds.bad_request(f"unknown field {unknown[0][:40]!r}: the digest takes {', '.join(API_FIELDS)}")
    values = {k: data[k] for k in API_FIELDS if k in data}
    if "email" in values and values["email"] is not None and not isinstance(values["email"], str):
        feeds.bad_request("email must be a string (or null or empty to remove the address)")
    if "frequency" in values and not isinstance(values["frequency"], str):
        feeds.bad_request("frequency must be off, daily or weekly")
    if "size" in values and (isinstance(values["size"], bool) or not isinstance(values["size"], int)):
        feeds.bad_request(f"size must be a whole number from 1 to {subscriptions.MAX_SIZE}")
    for flag in ("popular", "nothing_new"):
        if flag in values and not isinstance(values[flag], bool):
            feeds.bad_request(f"{flag} must be true or false")
    if "tags" in values and values["tags"] == []:
        values["tags"] = None  # no tag named: the whole library
    store = users()
    before = subscriptions.get(store, current_user.id)
    try:
        after = subscriptions.update(store, current_user.id, **values)
    except SubscriptionError as exc:
        abort(exc.status, description=str(exc))
    note = None
    if after.email and not after.email_confirmed and after.email != before.email:
        note = request_confirmation(current_user.id, current_user.username)
        after = subscriptions.get(store, current_user.id)
    return jsonify(_api_view(after, note))
