""""Fetch from arXiv": a logged-in user pulls one paper the store lacks (``POST /papers/<id>/fetch``,
``POST /api/papers/<id>/fetch``).

It goes through ``recommender.harvest.arxiv_api.fetch_ids`` (the same checks and timeout as ``paperfeed fetch``)
on a short-lived writable handle of the paper store; the app's own handle stays read-only and sees the new row at
its next read. One fetch at a time per process, at most one request to arXiv per ``fetch_delay`` seconds, and no
retries (a page must not hang for minutes: the user can press the button again). Budgets per user and per client
address live in the throttle store every worker shares (``recommender.accounts.throttle``).
"""
from __future__ import annotations

import dataclasses
import re
import threading

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
    app.extensions["paperfeed_arxiv"] = (threading.Lock(), arxiv_api.RateLimiter(
        app.extensions["paperfeed"].settings.fetch_delay))


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
    settings = dataclasses.replace(st.settings, fetch_retries=0)
    lock, limiter = current_app.extensions["paperfeed_arxiv"]
    with lock:
        limiter.wait()
        with PaperStore(settings.papers_path) as store:
            result = arxiv_api.fetch_ids(store, settings, [pid])
    if pid in result.not_found:
        raise NotOnArxiv(pid)
    return result


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
