"""Error pages (HTML or JSON by path), and security headers on every response."""
from __future__ import annotations

import errno
import logging
import sqlite3

from flask import g, jsonify, render_template, request
from flask_login import AnonymousUserMixin
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from recommender.features.index import NoGeneration
from recommender.corpus.store import CorruptRow, CorruptStore
from recommender.accounts.users import UserError

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# style-src allows inline style attributes because KaTeX sizes its glyphs with them; scripts stay 'self' only.


STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}
STORAGE_MESSAGE = ("The server cannot use its storage right now (a database is damaged, locked or read-only, "
                   "or the disk is full). Try again later; if it persists, tell the administrator.")


def _respond(code: int, title: str, message: str, headers: dict | None = None):
    if request.path.startswith("/api/"):
        return jsonify(error=title, message=message), code, headers or {}
    try:
        return render_template("error.html", code=code, title=title, message=message), code, headers or {}
    except Exception:  # the page itself failed (e.g. storage gone while loading the user): plain text, no trace
        log.exception("could not render the error page for %s", code)
        return f"{code} {title}: {message}\n", code, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}


def is_storage_error(exc: BaseException) -> bool:
    """A damaged, locked, read-only or full store, as opposed to a bug: the answer is 503, not 500."""
    if isinstance(exc, (sqlite3.OperationalError, CorruptStore, CorruptRow)) or type(exc) is sqlite3.DatabaseError:
        return True
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return _respond(400, "CSRF check failed",
                        f"{exc.description} Reload the page and try again (API clients: send X-CSRFToken).")

    @app.errorhandler(UserError)
    def user_error(exc):  # a handler that forgot to catch it: still the right status, never a 500
        return _respond(exc.status, {404: "Not Found", 409: "Conflict"}.get(exc.status, "Bad Request"), str(exc))

    @app.errorhandler(NoGeneration)
    def no_features(exc):
        return _respond(503, "No papers indexed yet", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if isinstance(exc, ServiceUnavailable):
            return _respond(503, exc.name, exc.description)
        if exc.code == 429:
            retry = getattr(exc, "retry_after", None)
            seconds = retry if isinstance(retry, int) else None
            return _respond(429, exc.name, exc.description or "Too many attempts. Wait a little and try again.",
                            {"Retry-After": str(seconds)} if seconds else None)
        headers = {k: v for k, v in exc.get_headers() if k == "Allow"} if exc.code == 405 else None
        return _respond(exc.code or 500, exc.name, exc.description or exc.name, headers)

    @app.errorhandler(Exception)
    def unexpected(exc):
        if is_storage_error(exc):
            log.exception("storage unavailable on %s %s", request.method, request.path)
            g._login_user = AnonymousUserMixin()  # the page must not look the user up in the broken store again
            return _respond(503, "Service Unavailable", STORAGE_MESSAGE)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(500, "Internal error", InternalServerError.description)

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        if request.path.startswith("/api/") or request.cookies:
            headers.setdefault("Cache-Control", "private, no-store")
        return response
