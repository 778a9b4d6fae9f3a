"""Paperfeed's web app: the HTTP edge over ``recommender``. Build it with :func:`create_app`."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask import request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from recommender.settings import Settings, load_settings

from . import api, atomfeed, auth, digests, emaillinks, errors, exports, feeds, fetching, imports, views
from .state import AppState


class StartupError(RuntimeError):
    """The app cannot start as configured; the message says how to fix it."""


class _SQLiteInt(IntegerConverter):
    """``<int:...>`` URL parts that fit a SQLite INTEGER: a larger number is no route (404), not an overflow."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


class _SecureWhenHttps(SecureCookieSessionInterface):
    """Mark the session cookie Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


DEFAULTS = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,
    "WTF_CSRF_CHECK_DEFAULT": False,  # checked in auth.check_csrf, which skips bearer-token requests
    "WTF_CSRF_TIME_LIMIT": None,      # valid for the session's life; logout ends the session
    "RATELIMIT_ENABLED": True,        # the login/registration budgets (auth.THROTTLE_DEFAULTS); off only in tests
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "PRODUCTION": True,
    "TRUSTED_PROXIES": 0,
    "MAP_FEATURE_INDEX": True,  # False: each process reads the index into its own memory (to measure the difference)
}


def create_app(test_config: dict | None = None, settings: Settings | None = None) -> Flask:
    """Build the app: defaults, then ``<instance>/config.py``, then ``test_config``.

    ``settings`` defaults to :func:`recommender.settings.load_settings` (environment).
    The instance folder is ``<data_dir>/instance``. In production (the default)
    a missing secret key is a :class:`StartupError`; with ``PRODUCTION=False``
    one is generated once and kept in the instance folder.
    """
    settings = settings or load_settings()
    instance = settings.data_dir / "instance"
    app = Flask(__name__, instance_path=str(instance), instance_relative_config=True)
    app.url_map.converters["int"] = _SQLiteInt
    app.url_map.merge_slashes = False  # "//x" is no route rather than a redirect built from the request
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.from_mapping(test_config)
    app.config["SECRET_KEY"] = _secret_key(app, settings, instance)
    app.session_interface = _SecureWhenHttps()
    if app.config["TRUSTED_PROXIES"]:
        n = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.extensions["paperfeed"] = AppState(settings, mapped=bool(app.config["MAP_FEATURE_INDEX"]))
    app.before_request(feeds.check_request_input)  # first: no handler sees undecodable input
    imports.init_app(app)  # the import routes' larger body limit, set before the CSRF check reads the form
    auth.init_app(app)
    fetching.init_app(app)
    errors.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(fetching.bp)
    app.register_blueprint(atomfeed.bp)
    app.register_blueprint(digests.bp)
    app.register_blueprint(emaillinks.bp)
    return app


def _secret_key(app: Flask, settings: Settings, instance: Path) -> str:
    key = app.config.get("SECRET_KEY") or settings.secret_key
    if key:
        return key
    if app.config["PRODUCTION"]:
        raise StartupError("no secret key: set PAPERFEED_SECRET_KEY (e.g. `python -c 'import secrets; "
                           "print(secrets.token_hex(32))'`), or run in dev mode with `paperfeed serve --dev`")
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()
