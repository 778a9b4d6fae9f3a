"""Error pages (HTML or JSON by path), and security headers on every response."""
from __future__ import annotations

import logging

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from recommender.index import NoGeneration

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# style-src allows inline style attributes because KaTeX sizes its glyphs with them; scripts stay 'self' only.


def _respond(code: int, title: str, message: str):
    if request.path.startswith("/api/"):
        return jsonify(error=title, message=message), code
    return render_template("error.html", code=code, title=title, message=message), code


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return _respond(400, "CSRF check failed",
                        f"{exc.description} Reload the page and try again (API clients: send X-CSRFToken).")

    @app.errorhandler(NoGeneration)
    def no_features(exc):
        return _respond(503, "No papers indexed yet", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if isinstance(exc, ServiceUnavailable):
            return _respond(503, exc.name, exc.description)
        if exc.code == 429:  # Flask-Limiter's description is only the limit, e.g. "10 per 1 minute"
            return _respond(429, exc.name, f"Too many attempts from your address (the limit is {exc.description}). "
                                           "Wait a little and try again.")
        return _respond(exc.code or 500, exc.name, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc):
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
