""""Fetch from arXiv": a logged-in user pulls one paper the store lacks (``POST /papers/<id>/fetch``,
``POST /api/papers/<id>/fetch``).

It goes through ``recommender.harvest.arxiv_api.fetch_ids`` (the same checks as ``paperfeed fetch``) on a
short-lived writable handle of the paper store; the app's own handle stays read-only and sees the new row at its
next read. :func:`fetch_into_store` is the one way the web app reaches arXiv (this button and library imports): one
request at a time across every worker, ``fetch_delay`` seconds apart, a 15 s timeout, and no retries for this
button (a page must not hang for minutes: the user can press it again). Budgets per user and per client
address live in the throttle store every worker shares (``recommender.accounts.throttle``).
"""
from __future__ import annotations

import dataclasses
import re
import sqlite3

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import TooManyRequests

from recommender.accounts import throttle
from recommender.corpus.ids import InvalidArxivId, parse_arxiv_id
from recommender.corpus.store import PaperStore
from recommender.harvest import arxiv_api

from . import auth, feeds
from .context import state

bp = Blueprint("fetching", __name__)
WEB_TIMEOUT_S = 15.0  # a page waits at most this long for one arXiv request
# (fetches, seconds), sliding windows shared by every worker; override in <data dir>/instance/config.py.
FETCH_DEFAULTS = {
    "ARXIV_FETCHES_PER_USER": (20, 3600),
    "ARXIV_FETCHES_PER_ADDRESS": (30, 3600),
}
_PDF_OR_ABS = re.compile(r"https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/(.+?)(?:\.pdf)?/?", re.ASCII)


class NotOnArxiv(LookupError):
    pass


class TooManyFetches(TooManyRequests):
    def __init__(self, retry_after: int):
        super().__init__(f"You have fetched many papers from arXiv lately. Try again in {retry_after} seconds.",
                         retry_after=retry_after)


def query_id(text: str) -> str | None:
    """The versionless arXiv id a search names (``1706.03762``, ``arXiv:1706.03762v5``, an abs or pdf URL),
    or None when it is not an id."""
    text = (text or "").strip()
    match = _PDF_OR_ABS.fullmatch(text)
    try:
        return parse_arxiv_id(match.group(1) if match else text)[0]
    except InvalidArxivId:
        return None


def init_app(app) -> None:
    for name, value in FETCH_DEFAULTS.items():
        app.config.setdefault(name, value)


def _spend_budget() -> None:
    budgets = {throttle.key("fetch-user", str(current_user.id)): _limit("ARXIV_FETCHES_PER_USER"),
               throttle.key("fetch-address", auth._client_address()): _limit("ARXIV_FETCHES_PER_ADDRESS")}
    try:
        current_app.extensions["paperfeed_throttle"].reserve(budgets)
    except throttle.Throttled as exc:
        raise TooManyFetches(exc.retry_after) from None


def _limit(name: str) -> throttle.Limit:
    count, seconds = current_app.config[name]
    return throttle.Limit(int(count), float(seconds))


def fetch_one(pid: str) -> arxiv_api.FetchResult | None:
    """Fetch ``pid`` into the store; None when it is there already (no budget spent).

    Raises :class:`NotOnArxiv`, ``arxiv_api.FetchError`` (arXiv unreachable or failing) or
    :class:`TooManyFetches`.
    """
    st = state()
    if pid in st.papers:
        return None
    _spend_budget()
    result = fetch_into_store([pid], retries=0)
    if pid in result.not_found:
        raise NotOnArxiv(pid)
    return result


def fetch_into_store(ids: list[str], *, retries: int, session=None) -> arxiv_api.FetchResult:
    """``fetch_ids`` for a waiting page: at most ``retries`` retries and a ``WEB_TIMEOUT_S`` timeout, one request
    at a time across every worker of this data directory, ``fetch_delay`` apart (``arxiv_api.shared_pacing``),
    through a short-lived writable handle of the paper store (the app's own handle is read-only).
    ``session`` replaces the HTTP session (tests replay recorded responses through it)."""
    settings = state().settings
    web = dataclasses.replace(settings, fetch_retries=min(settings.fetch_retries, retries),
                              fetch_timeout=min(settings.fetch_timeout, WEB_TIMEOUT_S))
    lock = settings.models_dir / "locks" / "arxiv-web.lock"
    try:
        with arxiv_api.shared_pacing(lock, settings.fetch_delay), PaperStore(settings.papers_path) as store:
            return arxiv_api.fetch_ids(store, web, ids, session=session)
    except (sqlite3.Error, OSError, TimeoutError) as exc:  # a read-only data dir, a busy store, a stuck lock
        raise arxiv_api.FetchError(f"the server could not store fetched papers ({exc})") from None


def _unreachable(exc: arxiv_api.FetchError) -> str:
    return f"arXiv could not be reached or failed to answer ({exc}). Nothing was saved; try again in a few minutes."


@bp.post("/papers/<path:raw_id>/fetch")
@login_required
def fetch_form(raw_id: str):
    pid = feeds.paper_id(raw_id)
    try:
        result = fetch_one(pid)
    except NotOnArxiv:
        return _search_page(pid, f"arXiv has no paper {pid}. Check the id.", 404)
    except arxiv_api.FetchError as exc:
        return _search_page(pid, _unreachable(exc), 502)
    if result is not None:
        flash(f"Fetched {pid} from arXiv.", "ok")
    return redirect(url_for("views.paper", raw_id=pid))


def _search_page(pid: str, message: str, status: int):
    return render_template("search.html", query=pid, cards=[], page_number=1, user_tags=[], fetch_offer=pid,
                           fetch_error=message), status


@bp.post("/api/papers/<path:raw_id>/fetch")
@login_required
def fetch_api(raw_id: str):
    pid = feeds.paper_id(raw_id)
    try:
        result = fetch_one(pid)
    except NotOnArxiv:
        abort(404, description=f"arXiv has no paper {pid}")
    except arxiv_api.FetchError as exc:
        abort(502, description=_unreachable(exc))
    return jsonify(id=pid, fetched=result is not None, added=result.added if result else 0,
                   updated=result.updated if result else 0)
