"""Accounts: sessions (Flask-Login), API tokens, CSRF (Flask-WTF) and login rate limits (Flask-Limiter).

A session cookie carries a random nonce whose hash is stored server-side, so
logout and password change really end a session: a replayed old cookie names
a nonce that no longer exists. Bearer tokens authenticate scripts without CSRF,
because a browser never attaches them by itself.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf.csrf import CSRFProtect

from recommender.accounts import check_password, hash_password
from recommender.users import User, UserError, UserStore

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()
limiter = Limiter(get_remote_address, default_limits=[])
login_manager = LoginManager()
LOGIN_LIMIT = "10 per minute"
REGISTER_LIMIT = "20 per hour"
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


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
        g.users = UserStore(current_app.extensions["paperfeed"].settings.users_path)
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
            csrf.protect()


def init_app(app) -> None:
    csrf.init_app(app)
    limiter.init_app(app)
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
    return users().add_user(username, hash_password(password, username))


def authenticate(username: str, password: str) -> User | None:
    user = users().get_user(username) if isinstance(username, str) else None
    if user is None:
        check_password(_DUMMY_HASH, password or "")  # same cost whether or not the name exists
        return None
    return user if check_password(user.password_hash, password) else None


_DUMMY_HASH = hash_password("not a real password, only for timing")


def change_password(user: User, old: str, new: str) -> None:
    if not check_password(user.password_hash, old):
        raise UserError("current password is wrong")
    store = users()
    store.set_password(user.id, hash_password(new, user.username))
    store.end_all_sessions(user.id)  # every other browser is logged out
    start_session(store.get_user_by_id(user.id))


# HTML pages --------------------------------------------------------------
@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(REGISTER_LIMIT, methods=["POST"])
def register():
    if request.method == "POST":
        try:
            user = register_user(request.form.get("username", ""), request.form.get("password", ""))
        except UserError as exc:
            flash(str(exc), "error")
            return render_template("register.html", username=request.form.get("username", "")), 400
        start_session(user)
        flash(f"Welcome, {user.username}. Search for papers you like and tag them to train your feed.", "ok")
        return redirect(url_for("views.feed"))
    return render_template("register.html", username="")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT, methods=["POST"])
def login():
    if request.method == "POST":
        user = authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if user is None:
            flash("Wrong username or password.", "error")
            return render_template("login.html", username=request.form.get("username", "")), 401
        start_session(user)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", username="")


def _safe_next(target: str | None) -> str:
    # Only same-site paths: "//evil.example" and "https://..." would be open redirects.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("views.feed")


@bp.post("/logout")
def logout():
    end_session()
    flash("Logged out.", "ok")
    return redirect(url_for("views.feed"))


@bp.route("/account", methods=["GET"])
@login_required
def account():
    return render_template("account.html", tokens=users().tokens(current_user.id), new_token=None)


@bp.post("/account/password")
@login_required
def account_password():
    try:
        change_password(current_user.user, request.form.get("old", ""), request.form.get("new", ""))
    except UserError as exc:
        flash(str(exc), "error")
        return render_template("account.html", tokens=users().tokens(current_user.id), new_token=None), 400
    flash("Password changed. Other sessions were logged out.", "ok")
    return redirect(url_for("auth.account"))


@bp.post("/account/tokens")
@login_required
def account_token_create():
    try:
        _, secret = users().create_token(current_user.id, request.form.get("name", ""))
    except UserError as exc:
        flash(str(exc), "error")
        return render_template("account.html", tokens=users().tokens(current_user.id), new_token=None), 400
    return render_template("account.html", tokens=users().tokens(current_user.id), new_token=secret)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def account_token_revoke(token_id: int):
    if users().revoke_token(current_user.id, token_id):
        flash("Token revoked.", "ok")
    else:
        flash("No such token.", "error")
    return redirect(url_for("auth.account"))
