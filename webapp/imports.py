"""Library import over the web: the ``/library`` upload form and ``POST /api/library/import`` share this.

Limits, so one import cannot hold a worker or hurt the neighbours:

- the body may be ``import_max_bytes`` (16 MiB) plus 64 KiB of form around it; every other route keeps 64 KiB;
- ``IMPORTS_PER_USER`` imports per sliding window (config; default 20 an hour), shared by every worker;
- at most ``import_web_fetch`` missing papers (100, one arXiv request) are fetched while the page waits, with
  one retry and a 15 s timeout, and one web fetch at a time across workers, spaced by ``fetch_delay``.
  The rest are listed as not fetched, with how to get them: import the same file again, or use the CLI.
"""
from __future__ import annotations


from flask import abort, current_app, request
from flask_login import current_user
from werkzeug.exceptions import TooManyRequests

from recommender.accounts import throttle
from recommender.harvest import arxiv_api
from recommender.library import formats, importing

from . import fetching
from .auth import users
from .context import after_library_change, state

ENDPOINTS = ("views.library_import", "api.library_import")
FORM_OVERHEAD = 64 * 1024
IMPORT_DEFAULTS = {"IMPORTS_PER_USER": (20, 3600), "IMPORT_ARXIV_SESSION": None}  # the session: tests only


def init_app(app) -> None:
    for name, value in IMPORT_DEFAULTS.items():
        app.config.setdefault(name, value)
    app.before_request(upload_limit)  # before the CSRF check, which reads the form


def upload_limit() -> None:
    """Raise the body limit for the import routes only, and refuse a larger upload up front."""
    if request.endpoint not in ENDPOINTS:
        return
    limit = state().settings.import_max_bytes + FORM_OVERHEAD
    request.max_content_length = limit  # per request: Flask 3.1 or later
    request.max_form_memory_size = limit  # a pasted list is a form field, not a file: same limit
    if request.content_length is not None and request.content_length > limit:
        abort(413, description=f"The upload is {_mib(request.content_length)}; a library import takes at most "
                               f"{_mib(state().settings.import_max_bytes)}. Split the export (one collection "
                               "at a time), or use `paperfeed library import` on the server.")


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


class ImportThrottled(TooManyRequests):
    def __init__(self, retry_after: int):
        super().__init__(f"You have imported too often; try again in {retry_after} seconds.",
                         retry_after=retry_after)


def take_budget() -> None:
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    attempts, seconds = current_app.config["IMPORTS_PER_USER"]
    budgets = {throttle.key("import", str(current_user.id)): throttle.Limit(int(attempts), float(seconds))}
    try:
        current_app.extensions["paperfeed_throttle"].reserve(budgets)
    except throttle.Throttled as exc:
        raise ImportThrottled(exc.retry_after) from None


def run_import(data: bytes | str, *, filename: str | None, fmt: str | None, tag: str | None,
               collections: bool) -> importing.ImportReport:
    """Parse, fetch (capped), tag, and queue a retrain. Raises ``FormatError``/``UserError`` (400/409)."""
    settings = state().settings
    take_budget()
    parsed = formats.parse(data, filename=filename, fmt=fmt, max_bytes=settings.import_max_bytes,
                           max_entries=settings.import_max_entries)
    hint = (f"a web import fetches at most {settings.import_web_fetch} missing papers at a time: import the same "
            "file again to fetch the next ones (what is tagged stays tagged), or run `paperfeed library import`")
    report = importing.import_entries(state().papers, users(), current_user.user, parsed, tag=tag,
                                      collections=collections, fetch=_fetch, max_fetch=settings.import_web_fetch,
                                      not_fetched_hint=hint)
    if report.changed:
        after_library_change()
    return report


def _fetch(ids: list[str]) -> arxiv_api.FetchResult:
    return fetching.fetch_into_store(ids, retries=1, session=current_app.config["IMPORT_ARXIV_SESSION"])


def report_view(report: importing.ImportReport, index) -> dict:
    """The report as the page shows it: counts, lists, and fetched papers not yet in the features."""
    data = report.to_dict()
    data["unindexed"] = sum(1 for item in report.fetched if item["id"] not in index.row_of)
    return data
