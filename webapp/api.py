"""The JSON API: the same ``recommender`` calls as the pages, documented in ``/api/openapi.json``."""
from __future__ import annotations

import dataclasses
import time

from flask import Blueprint, abort, jsonify, request
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from recommender.learning import ranking, service
from recommender.accounts import seen
from recommender.accounts.users import UserError
from recommender.features import text as textfeatures
from recommender.library.formats import FORMATS, FormatError, format_name

from . import atomfeed, feeds, imports, searchquery
from .auth import authenticate, change_password, end_session, register_user, start_session, users
from .context import MARK_ALL_MAX, after_library_change, feed_page, index, library, mark_all_seen, state
from .openapi import SPEC

bp = Blueprint("api", __name__, url_prefix="/api")


def _body() -> dict:
    return feeds.json_object()


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        feeds.bad_request(f"{key} is required (a string)")
    return value


@bp.get("/openapi.json")
def openapi():
    return jsonify(SPEC)


@bp.get("/csrf")
def csrf_token():
    return jsonify(csrf_token=generate_csrf())


@bp.post("/register")
def register():
    data = _body()
    try:
        user = register_user(_text(data, "username"), _text(data, "password"))
    except UserError as exc:
        abort(exc.status, description=str(exc))
    start_session(user)
    return jsonify(username=user.username, csrf_token=generate_csrf()), 201


@bp.post("/login")
def login():
    data = _body()
    user = authenticate(_text(data, "username"), _text(data, "password"))
    if user is None:
        abort(401, description="wrong username or password")
    start_session(user)
    return jsonify(username=user.username, csrf_token=generate_csrf())


@bp.post("/logout")
def logout():
    end_session()
    return jsonify(ok=True)


@bp.post("/password")
@login_required
def password():
    data = _body()
    try:
        change_password(current_user.user, _text(data, "old"), _text(data, "new"))
    except UserError as exc:
        abort(exc.status, description=str(exc))
    return jsonify(ok=True, csrf_token=generate_csrf())


@bp.get("/me")
@login_required
def me():
    lib = library()
    model = lib.model
    job = state().retrain_status(current_user.id)
    return jsonify(username=current_user.username, tags={t: len(ids) for t, ids in lib.tags.items()},
                   model={"trained_at": model.trained_at if model else None, "up_to_date": lib.model_fresh,
                          "retraining": job.busy, "carried_over": bool(model and model.carried),
                          "error": job.error, "retry_in": job.retry_in})


@bp.get("/feed")
def feed():
    lib = library()
    idx = index()
    previous = users().previous_visit(current_user.id) if lib is not None else None  # read only: no visit noted
    q = _with_seen(feeds.parse_feed(request.args, idx, lib is not None, api=True, previous_visit=previous))
    page = feed_page(idx, q, lib)
    papers = feeds.cards(state().papers, page.ids, page.scores, with_abstract=_abstracts(),
                         percentiles=page.percentiles(), readers=page.readers)
    return jsonify(papers=papers, total=page.total, mode=page.mode, notice=page.notice, offset=q.offset,
                   since=page.since.isoformat() if page.since else None,
                   arrived_after=page.arrived_after.isoformat() if page.arrived_after else None)


def _with_seen(q):
    """``s=1``: leave out what the user was shown or opened before ``as_of`` (default: now)."""
    if not q.hide_seen:
        return q
    cutoff = feeds.seen_cutoff(q, None, None, time.time())
    return dataclasses.replace(q, seen=users().seen_ids(current_user.id, cutoff))


SEEN_MAX_IDS = 200  # ids one POST /api/seen (or GET) takes


def _seen_ids(raw) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(i, str) for i in raw):
        feeds.bad_request("ids must be a non-empty list of arXiv ids (strings)")
    if len(raw) > SEEN_MAX_IDS:
        feeds.bad_request(f"at most {SEEN_MAX_IDS} ids at a time")
    return list(dict.fromkeys(feeds.paper_id(i) for i in raw))


@bp.post("/seen")
@login_required
def mark_seen():
    """Record papers as shown or opened (apps, the Atom feed): ``{ids, state: shown|opened, via: api|atom}``."""
    data = _body()
    ids = _seen_ids(data.get("ids"))
    name, via = data.get("state", "shown"), data.get("via", "api")
    if name not in seen.STATES:
        feeds.bad_request("state must be shown or opened")
    if via not in ("api", "atom"):
        feeds.bad_request("via must be api or atom")
    found = state().papers.get_many(ids)  # only papers the store holds: a user's rows are bounded by the store
    known = [pid for pid in ids if pid in found]
    seen.mark(users(), current_user.id, known, seen.STATES[name], via)
    return jsonify(marked=len(known), state=name, unknown=[pid for pid in ids if pid not in found])


@bp.get("/seen")
@login_required
def seen_states():
    """``?ids=a,b``: ``{states: {id: shown|opened}}`` for those of the ids the user was shown or opened."""
    raw = [i for part in request.args.getlist("ids") for i in part.split(",") if i]
    ids = _seen_ids(raw)
    found = users().shown(current_user.id, ids)
    return jsonify(states={pid: seen.STATE_NAMES[st] for pid, st in found.items()})


@bp.post("/seen/all")
@login_required
def mark_all_seen_api():
    """Mark all as read: the first ``MARK_ALL_MAX`` papers of the feed the query parameters describe
    (as ``GET /api/feed`` takes them) count as shown."""
    idx, lib = index(), library()
    q = _with_seen(feeds.parse_feed(request.args, idx, True, api=True,
                                    previous_visit=users().previous_visit(current_user.id)))
    marked = mark_all_seen(idx, q, lib, via="api")
    return jsonify(marked=marked, limit=MARK_ALL_MAX, as_of=int(time.time()) + 1)


def _abstracts() -> bool:
    """``?abstracts=1`` adds each paper's abstract to list items (off by default: it triples the size)."""
    value = request.args.get("abstracts", "0")
    if value not in ("0", "1", "true", "false"):
        feeds.bad_request("abstracts must be 0 or 1")
    return value in ("1", "true")


@bp.get("/papers/<path:raw_id>")
def paper(raw_id: str):
    pid, found = feeds.stored_paper(state().papers, raw_id)
    data = found.to_dict()
    idx = index()
    data["top_terms"] = [{"term": t, "weight": round(w, 4)} for t, w in ranking.top_terms(idx, pid)] \
        if pid in idx.row_of else []
    lib = library()
    if lib is not None:
        data["tags"] = lib.tags_of().get(pid, [])
        data["not_interested"] = pid in lib.hidden
        why = feeds.explanation(idx, lib, pid) if pid in idx.row_of else None
        data["why"] = None if why is None else {
            "tag": why["tag"], "score": round(why["score"], 4), "percentile": why["percentile"],
            "terms": [{"term": t, "weight": round(w, 4)} for t, w in why["terms"]],
            "authors": [{"name": r.label, "in_library": r.in_library} for r in why["authors"]],
            "categories": [{"category": r.label, "in_library": r.in_library} for r in why["categories"]]}
    return jsonify(data)


@bp.get("/papers/<path:raw_id>/similar")
def similar(raw_id: str):
    pid = feeds.paper_id(raw_id)
    limit = feeds._int(request.args, "limit", 20, 1, 200)
    try:
        ids, scores = ranking.similar(index(), pid, n=limit)
    except KeyError:
        abort(404, description=f"no paper {pid} in the current features")
    return jsonify(papers=feeds.cards(state().papers, ids, scores, with_abstract=_abstracts()))


@bp.get("/search")
def search():
    idx = index()
    sq = searchquery.parse_search(request.args, idx, api=True)
    q = request.args.get("q", "")
    if textfeatures.latex_only(q):  # no words the index knows: say what to search for instead
        return jsonify(papers=[], query=q, message=searchquery.latex_message(q),
                       suggestion=textfeatures.latex_words(q) or None)
    try:
        ids, scores = ranking.search(idx, q, sq.filters, n=sq.limit, offset=sq.offset)
    except ValueError as exc:
        feeds.bad_request(str(exc))
    return jsonify(papers=feeds.cards(state().papers, ids, scores, with_abstract=_abstracts()), query=q,
                   message=None if ids or sq.offset else "nothing matched: try fewer or different words")


@bp.get("/tags")
@login_required
def tags():
    lib = library()
    return jsonify(tags=[{"name": t, "count": len(ids), "papers": ids} for t, ids in lib.tags.items()])


@bp.route("/tags/<tag>/papers/<path:raw_id>", methods=["PUT", "DELETE"])
@login_required
def tag_paper(tag: str, raw_id: str):
    pid = feeds.paper_id(raw_id)
    try:
        if request.method == "PUT":
            changed = service.tag(users(), state().papers, current_user.user, tag, [pid])
        else:
            changed = service.untag(users(), current_user.user, tag, [pid])
    except UserError as exc:
        abort(exc.status, description=str(exc))
    if changed:
        after_library_change()
    return jsonify(tag=tag.strip(), id=pid, changed=bool(changed), tags=users().paper_tags(current_user.id, [pid])[pid])


@bp.post("/tags/<tag>/rename")
@login_required
def rename_tag(tag: str):
    if tag not in library().tags:
        abort(404, description=f"you have no tag {tag[:40]!r}")
    try:
        users().rename_tag(current_user.id, tag, _text(_body(), "name"))
    except UserError as exc:
        abort(exc.status, description=str(exc))
    after_library_change()
    return jsonify(ok=True)


@bp.delete("/tags/<tag>")
@login_required
def delete_tag(tag: str):
    if not users().delete_tag(current_user.id, tag):
        abort(404, description=f"you have no tag {tag[:40]!r}")
    after_library_change()
    return jsonify(ok=True)


@bp.route("/papers/<path:raw_id>/not-interested", methods=["POST", "DELETE"])
@login_required
def not_interested(raw_id: str):
    pid = feeds.paper_id(raw_id)
    if pid not in state().papers:
        abort(404, description=f"no paper {pid}")
    try:
        users().set_not_interested(current_user.id, pid, request.method == "POST")
    except UserError as exc:
        abort(exc.status, description=str(exc))
    after_library_change()
    return jsonify(id=pid, not_interested=request.method == "POST")


@bp.get("/tokens")
@login_required
def tokens():
    return jsonify(tokens=users().tokens(current_user.id))


@bp.post("/tokens")
@login_required
def create_token():
    try:
        token_id, secret = users().create_token(current_user.id, _text(_body(), "name"))
    except UserError as exc:
        abort(exc.status, description=str(exc))
    return jsonify(id=token_id, token=secret), 201


@bp.delete("/tokens/<int:token_id>")
@login_required
def revoke_token(token_id: int):
    if not users().revoke_token(current_user.id, token_id):
        abort(404, description="no such token")
    return jsonify(ok=True)


@bp.get("/feed-tokens")
@login_required
def feed_tokens():
    return jsonify(feeds=users().feed_tokens(current_user.id))


@bp.post("/feed-tokens")
@login_required
def create_feed_token():
    data = _body()
    try:
        tag = atomfeed.token_tag(data.get("tag"))
        token_id, secret = users().create_feed_token(current_user.id, _text(data, "name"), tag)
    except UserError as exc:
        abort(exc.status, description=str(exc))
    return jsonify(id=token_id, tag=tag, url=atomfeed.feed_url(secret)), 201


@bp.delete("/feed-tokens/<int:token_id>")
@login_required
def revoke_feed_token(token_id: int):
    if not users().revoke_feed_token(current_user.id, token_id):
        abort(404, description="no such feed")
    return jsonify(ok=True)


@bp.post("/library/import")
@login_required
def library_import():
    """Import a library: multipart (``file`` or ``text``, ``tag``, ``format``, ``collections``) or JSON
    ``{text, tag?, format?, collections?}``. Answers the report (the same as the CLI's ``--json``)."""
    if request.is_json:
        data = _body()
        text, tag, fmt, cols = data.get("text"), data.get("tag"), data.get("format"), data.get("collections", True)
        name = "pasted.txt"
        if not isinstance(text, str) or not text.strip():
            feeds.bad_request("text is required (a non-empty string: an export or one arXiv id a line)")
    else:
        upload = request.files.get("file")
        tag, fmt, cols = request.form.get("tag"), request.form.get("format"), request.form.get("collections", "1")
        cols = cols not in ("0", "false", "")
        if upload is not None and upload.filename:
            text, name = upload.read(state().settings.import_max_bytes + 1), upload.filename
        elif request.form.get("text", "").strip():
            text, name = request.form["text"], "pasted.txt"
        else:
            feeds.bad_request("send a file (multipart field 'file'), pasted text ('text'), or JSON {text}")
    fmt = format_name(fmt) if isinstance(fmt, str) else fmt
    if tag is not None and not isinstance(tag, str) or fmt not in (None, "", *FORMATS) or not isinstance(cols, bool):
        feeds.bad_request(f"tag must be a string, format one of {', '.join(FORMATS)}, collections a boolean")
    try:
        report = imports.run_import(text, filename=name, fmt=fmt or None, tag=(tag or "").strip() or None,
                                    collections=cols)
    except (FormatError, UserError) as exc:
        abort(getattr(exc, "status", 400), description=str(exc))
    return jsonify(imports.report_view(report, index()))
