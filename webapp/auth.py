"""Accounts: sessions (Flask-Login), API tokens, CSRF (Flask-WTF) and password-guessing budgets.

A session cookie carries a random nonce whose hash is stored server-side, so
logout and password change really end a session: a replayed old cookie names
a nonce that no longer exists. Bearer tokens authenticate scripts without CSRF,
because a browser never attaches them by itself.

Every request that checks or sets a password (``/login``, ``/api/login``, the
password change and registration) takes an attempt from one budget per account
and one per client address, kept in ``<data dir>/throttle.sqlite`` so that every
worker process of one data directory shares them (:mod:`recommender.accounts.throttle`).
"""
from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import TooManyRequests
from werkzeug.security import generate_password_hash

from recommender.accounts import subscriptions, throttle
from recommender.accounts.passwords import check_password, hash_password
from recommender.accounts.users import User, UserError, UserStore

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
# (attempts, seconds): sliding windows shared by every process on the data directory. Override in
# <data dir>/instance/config.py; RATELIMIT_ENABLED = False turns every budget off (tests only).
# A client gets few guesses at one account; the account's own budget, over every address, is larger, so that
# one client cannot lock an owner out (it can spend at most its own share of the account's budget).
THROTTLE_DEFAULTS = {
    "LOGIN_ATTEMPTS_PER_ACCOUNT_AND_ADDRESS": (10, 600),  # password checks for one username from one address
    "LOGIN_ATTEMPTS_PER_ACCOUNT": (100, 600),  # password checks for one username from anywhere
    "LOGIN_ATTEMPTS_PER_ADDRESS": (30, 60),   # password checks and registration attempts from one address
    "REGISTRATIONS_PER_ADDRESS": (20, 3600),  # registration attempts from one client address
    "THROTTLE_PATH": None,                    # default <data dir>/throttle.sqlite
}


class TooManyAttempts(TooManyRequests):
    """429 with Retry-After; the message never says whether the account exists."""

    def __init__(self, retry_after: int):
        super().__init__(f"Too many attempts for this account or from your address. "
                         f"Try again in {retry_after} seconds.", retry_after=retry_after)


def _throttle() -> throttle.Throttle:
    return current_app.extensions["paperfeed_throttle"]


def _limit(name: str) -> throttle.Limit:
    attempts, seconds = current_app.config[name]
    return throttle.Limit(int(attempts), float(seconds))


def _client_address() -> str:
    """The client's address; for IPv6 its /64 network, since one subscriber usually holds a whole /64."""
    address = request.remote_addr or "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def take_attempt(username: str | None, *, registration: bool = False) -> list[int]:
    """Spend one attempt of ``username``'s and this address's budgets, or raise 429. Returns ids to refund."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return []
    address = _client_address()
    budgets = {throttle.key("address", address): _limit("LOGIN_ATTEMPTS_PER_ADDRESS")}
    if username is not None:
        budgets[throttle.key("account", username)] = _limit("LOGIN_ATTEMPTS_PER_ACCOUNT")
        budgets[throttle.key("account+address", f"{username}\n{address}")] = _limit(
            "LOGIN_ATTEMPTS_PER_ACCOUNT_AND_ADDRESS")
    if registration:
        budgets[throttle.key("register", address)] = _limit("REGISTRATIONS_PER_ADDRESS")
    try:
        return _throttle().reserve(budgets)
    except throttle.Throttled as exc:
        raise TooManyAttempts(exc.retry_after) from None


def refund_attempt(ids: list[int]) -> None:
    """A right password does not count against the budgets."""
    if ids:
        _throttle().refund(ids)


class WebUser(UserMixin):
    def __init__(self, user: User, nonce: str | None = None):
        self.user, self.nonce = user, nonce

    def get_id(self) -> str | None:
        return self.nonce

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def username(self) -> str:
        return self.user.username


def users() -> UserStore:
    """The request's user store, opened lazily and closed in teardown."""
    if "users" not in g:
        settings = current_app.extensions["paperfeed"].settings
        g.users = UserStore(settings.users_path, settings.limits)
    return g.users


def _close_users(_exc=None) -> None:
    store = g.pop("users", None)
    if store is not None:
        store.close()


@login_manager.user_loader
def _load_from_session(nonce: str):
    if _bearer_header():
        return None  # a request that brings a token is judged by the token alone
    user = users().session_user(nonce)
    return WebUser(user, nonce) if user else None


@login_manager.request_loader
def _load_from_token(req):
    header = req.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    user = users().token_user(secret.strip())
    if user is None:
        return None
    g.token_auth = True
    return WebUser(user)


@login_manager.unauthorized_handler
def _unauthorized():
    if request.path.startswith("/api/"):
        abort(401, description="log in, or send Authorization: Bearer <token>")
    flash("Please log in first.", "error")
    return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))


def _bearer_header() -> bool:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(secret.strip())


def check_csrf() -> None:
    bearer = _bearer_header()
    if request.method in STATE_CHANGING or bearer:
        _ = current_user.is_authenticated  # resolve the user first: a valid token exempts the request
        if bearer and not g.get("token_auth"):
            # A request that brings a token is judged by the token alone: a bad one is a 401, not a CSRF error.
            abort(401, description="invalid or revoked API token")
        if request.method in STATE_CHANGING and not g.get("token_auth"):
            from .emaillinks import one_click_unsubscribe  # imports this module
            if one_click_unsubscribe():  # RFC 8058: a mail provider's POST; the signed link is the credential
                g.one_click = True
                return
            csrf.protect()


def init_app(app) -> None:
    for name, value in THROTTLE_DEFAULTS.items():
        app.config.setdefault(name, value)
    path = app.config["THROTTLE_PATH"] or app.extensions["paperfeed"].settings.data_dir / "throttle.sqlite"
    app.extensions["paperfeed_throttle"] = throttle.Throttle(path)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    app.before_request(check_csrf)
    app.teardown_appcontext(_close_users)


def start_session(user: User) -> None:
    """Log ``user`` in with a fresh server-side session nonce."""
    session.clear()
    login_user(WebUser(user, users().create_session(user.id)))


def end_session() -> None:
    if current_user.is_authenticated and current_user.nonce:
        users().end_session(current_user.nonce)
    logout_user()
    session.clear()


def register_user(username: str, password: str) -> User:
    take_attempt(None, registration=True)  # per address: a new name is no guess at an account's password
    return users().add_user(username, hash_password(password, username))


def authenticate(username: str, password: str) -> User | None:
    """The user if the password is right; None otherwise (429 once a budget is spent)."""
    attempt = take_attempt(username if isinstance(username, str) else "")
    user = users().get_user(username) if isinstance(username, str) else None
    if user is None:
        check_password(_DUMMY_HASH, password or "")  # same cost whether or not the name exists
        return None
    if not check_password(user.password_hash, password):
        return None
    refund_attempt(attempt)
    return user


_DUMMY_HASH = generate_password_hash("not a real password, only for timing")


def change_password(user: User, old: str, new: str) -> None:
    attempt = take_attempt(user.username)
    if not check_password(user.password_hash, old):
        raise UserError("current password is wrong")
    refund_attempt(attempt)
    store = users()
    store.set_password(user.id, hash_password(new, user.username))
    store.end_all_sessions(user.id)  # every other browser is logged out
    start_session(store.get_user_by_id(user.id))


# HTML pages --------------------------------------------------------------
@bp.route("/register", methods=["GET", "POST"])
def register():
    if request.method == "POST":
        try:
            user = register_user(request.form.get("username", ""), request.form.get("password", ""))
        except UserError as exc:
            flash(str(exc), "error")
            return render_template("register.html", username=request.form.get("username", "")), exc.status
        start_session(user)
        flash(f"Welcome, {user.username}. Search for papers you like and tag them to train your feed.", "ok")
        return redirect(url_for("views.feed"))
    return render_template("register.html", username="")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        user = authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if user is None:
            flash("Wrong username or password.", "error")
            return render_template("login.html", username=request.form.get("username", "")), 401
        start_session(user)
        return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", username="")


# A same-site path: one "/" then no second "/" or "\\", and only URL characters (no spaces, controls,
# backslashes or non-ASCII, which browsers strip or rewrite: "/\t/evil.example" becomes "//evil.example").
_NEXT = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?#]*")
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f\\]")


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the feed: never an open redirect."""
    if isinstance(target, str) and len(target) <= 2048 and _NEXT.fullmatch(target):
        parts = urlsplit(target)
        path = parts.path
        for _ in range(3):  # also judge the path as a server or browser might decode it, twice over
            if "//" in path or _CONTROL.search(path):
                break
            decoded = unquote(path, errors="replace")
            if decoded == path:
                if not parts.scheme and not parts.netloc:
                    return target
                break
            path = decoded
    return url_for("views.feed")


@bp.post("/logout")
def logout():
    end_session()
    flash("Logged out.", "ok")
    return redirect(url_for("views.feed"))


@bp.route("/account", methods=["GET"])
@login_required
def account():
    return account_page()


def account_page(status: int = 200, new_token: str | None = None, new_feed: str | None = None,
                 digest_form: dict | None = None):
    """The account page: password form, API tokens, Atom feeds (a new secret is shown once) and the email
    digest (``digest_form``: the values to show again after a refused save)."""
    from .digests import email_ready, form_defaults  # the digest module imports this one

    store = users()
    prefs = subscriptions.get(store, current_user.id)
    return render_template("account.html", tokens=store.tokens(current_user.id), new_token=new_token,
                           feeds=store.feed_tokens(current_user.id), new_feed=new_feed,
                           user_tags=sorted(store.tags(current_user.id)), digest=prefs.public(),
                           digest_form=digest_form or form_defaults(prefs), max_digest_size=subscriptions.MAX_SIZE,
                           email_ready=email_ready(current_app.extensions["paperfeed"].settings)), status


@bp.post("/account/password")
@login_required
def account_password():
    try:
        change_password(current_user.user, request.form.get("old", ""), request.form.get("new", ""))
    except UserError as exc:
        flash(str(exc), "error")
        return account_page(exc.status)
    flash("Password changed. Other sessions were logged out.", "ok")
    return redirect(url_for("auth.account"))


@bp.post("/account/tokens")
@login_required
def account_token_create():
    try:
        _, secret = users().create_token(current_user.id, request.form.get("name", ""))
    except UserError as exc:
        flash(str(exc), "error")
        return account_page(exc.status)
    return account_page(new_token=secret)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def account_token_revoke(token_id: int):
    if users().revoke_token(current_user.id, token_id):
        flash("Token revoked.", "ok")
    else:
        flash("No such token.", "error")
    return redirect(url_for("auth.account"))
