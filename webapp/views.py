"""HTML pages: feed, search, paper, library. Tagging from lists goes through the JSON API (app.js);
the POST forms here are the no-JavaScript fallback."""
from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
import time
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from recommender.accounts.users import VISIT_GAP_S, UserError
from recommender.corpus import links
from recommender.features import text as textfeatures
from recommender.learning import ranking, service
from recommender.learning.models import ALL
from recommender.library.formats import FORMATS, FormatError

from . import feeds, feedurls, fetching, imports, searchquery
from .auth import users
from .context import after_library_change, feed_page, index, library, mark_all_seen, state
from .render import linkify, top_percent

bp = Blueprint("views", __name__)
bp.add_app_template_filter(linkify)
bp.add_app_template_filter(top_percent)
TOP_CATEGORIES = 40


def _categories(idx) -> list[tuple[str, int]]:
    sizes = sorted(((name, len(rows)) for name, rows in idx.category_rows.items()), key=lambda c: -c[1])
    return sizes[:TOP_CATEGORIES]


def pages(current: int, total_items: int, size: int) -> list[int | None]:
    """Page numbers to show: first, last and a window around the current one (None is a gap)."""
    last = max(1, min(-(-total_items // size), feeds.MAX_PAGE))
    shown = sorted({1, last, *range(max(1, current - 2), min(last, current + 2) + 1)})
    out: list[int | None] = []
    for number in shown:
        if out and number - out[-1] > 1:
            out.append(None)
        out.append(number)
    return out


@bp.app_template_filter("datetime")
def format_timestamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


@bp.app_template_global()
def page_url(number: int) -> str:
    """This page's URL with another page number, keeping every (repeated) parameter.

    The query is encoded here rather than passed to ``url_for`` as keywords: parameter names such as
    ``endpoint``, ``_method`` or ``_anchor`` (or a path variable's name) would collide with its arguments.
    """
    pairs = [(k, v) for k, values in request.args.lists() if k != "page" for v in values]
    return url_for(request.endpoint, **(request.view_args or {})) + "?" + urlencode([*pairs, ("page", str(number))])


def _model_status(lib):
    """What the pages say about the user's model: when trained, whether up to date, and a failed retrain."""
    if lib is None:
        return None
    job = state().retrain_status(current_user.id)
    if lib.model is None and job.error is None:
        return None
    return {"trained_at": format_timestamp(lib.model.trained_at) if lib.model else None,
            "fresh": lib.model_fresh, "retraining": job.busy,
            "carried": bool(lib.model and lib.model.carried and not lib.needs_retrain),
            "error": job.error, "retry_in": None if job.retry_in is None else max(1, round(job.retry_in))}


@bp.get("/")
def feed():
    idx, lib = index(), library()
    q, short, previous = _feed_query(idx, lib)
    if short is not None:
        return redirect(url_for("views.feed") + ("?" + short if short else ""))
    q = _with_seen(q, previous)
    page = feed_page(idx, q, lib)
    seen_of = None
    if lib is not None:  # the states as they were before this page, then this page's papers count as shown
        seen_of = _bookkeeping(users().shown, current_user.id, page.ids) or {}
        _bookkeeping(users().mark_shown, current_user.id, page.ids, "feed")
    cards = feeds.cards(state().papers, page.ids, page.scores, lib.tags_of() if lib else None, with_abstract=True,
                        percentiles=page.percentiles(), readers=page.readers, seen_of=seen_of)
    return render_template(
        "feed.html", cards=cards, q=q, page=page, pages=pages(q.page, page.total, q.limit),
        categories=_categories(idx), windows=_windows(lib, q.mode), user_tags=sorted(lib.tags) if lib else [],
        model_status=_model_status(lib), last_date=idx.meta.get("last_date"), generation=idx.generation,
        popular_min_users=max(2, state().settings.popular_min_users),
        mark_all_url=url_for("views.mark_all_read") + "?" + request.query_string.decode("latin-1"))


def _with_seen(q, previous):
    """The query with the papers hide-seen leaves out, read once from the user's rows (best effort)."""
    if not q.hide_seen:
        return q
    cutoff = feeds.seen_cutoff(q, previous, VISIT_GAP_S, time.time())
    if cutoff is None:
        return q
    return dataclasses.replace(q, seen=_bookkeeping(users().seen_ids, current_user.id, cutoff) or frozenset())


@bp.post("/seen/all")
@login_required
def mark_all_read():
    """"Mark all as read": the first ``MARK_ALL_MAX`` papers of the feed this URL's query shows (its filters,
    from the top, whatever the page) count as shown; then that feed with hide-seen on, as of now."""
    idx, lib = index(), library()
    q, _, previous = _feed_query(idx, lib, note_visit=False)
    marked = mark_all_seen(idx, _with_seen(q, previous), lib)
    flash(f"Marked {marked:,} {'paper' if marked == 1 else 'papers'} as read.", "ok")
    pairs = [p for p in feedurls.canonical(q, request.args, "rec", feeds.default_window(q.mode, True, api=False))
             if p[0] not in ("s", "as_of", "page")]
    return redirect(url_for("views.feed") + "?" + urlencode([*pairs, ("s", "1"), ("as_of", str(int(time.time()) + 1))]))


def _feed_query(idx, lib, note_visit: bool = True):
    """The feed's query, and the short URL to redirect to (None: this URL is already short).

    A logged-in view notes the visit and, when the URL names no filter, uses the remembered ones;
    a URL that names filters is remembered. Both are the user's own small row (see ``feedurls``).
    """
    args = feedurls.short_args(request.args)
    previous, named = None, feedurls.names_a_filter(args)
    recommended = (args.get("m") or "rec") == "rec"  # remembered filters are the recommended feed's
    if lib is not None and not note_visit:
        previous = _bookkeeping(users().previous_visit, current_user.id)
    elif lib is not None:
        previous = _bookkeeping(users().record_visit, current_user.id)  # one small write every few minutes
        if not named and recommended:
            args = feedurls.with_prefs(args, users().feed_prefs(current_user.id), set(lib.tags), feeds.WINDOWS,
                                       idx.category_rows)
    q = feeds.parse_feed(args, idx, lib is not None, api=False, previous_visit=previous)
    unknown = [t for t in q.tags if lib is not None and q.mode == "rec" and t not in lib.tags]
    if unknown:  # before remembering or redirecting anything
        abort(404, description=f"you have no tag {unknown[0][:40]!r}")
    if lib is not None and named and q.mode == "rec" and note_visit:
        prefs = feedurls.prefs_of(q)
        prefs["t"] = [t for t in prefs["t"] if t in lib.tags]
        _bookkeeping(users().set_feed_prefs, current_user.id, prefs)
    default_mode = "rec" if lib is not None else "recent"
    short = feedurls.redirect_to(request.args, feedurls.canonical(
        q, args, default_mode, feeds.default_window(q.mode, lib is not None, api=False)))
    return q, short, previous


def _bookkeeping(write, *args):
    """The pages' own small reads and writes (the visit, the remembered filters, seen and opened papers): a locked or read-only user database
    must not cost the reader the page, so a failure is logged and the feed is served without them."""
    try:
        return write(*args)
    except sqlite3.Error as exc:
        current_app.logger.warning("feed bookkeeping skipped: %s", exc)
        return None


def _windows(lib, mode: str) -> list[tuple[str, str]]:
    labels = {"new": "since your last visit", "all": "all time"}
    shown = feeds.POPULAR_WINDOWS if mode == "popular" else [w for w in feeds.WINDOWS if w != "new" or lib is not None]
    return [(w, labels.get(w, "past " + w)) for w in shown]


@bp.get("/search")
def search():
    idx, lib = index(), library()
    sq = searchquery.parse_search(request.args, idx, api=False)
    user_tags = sorted(lib.tags) if lib else []
    wanted = fetching.query_id(sq.text)
    if wanted is not None:
        if wanted in state().papers:  # indexed or not (fetched since the last compute): its page
            return redirect(url_for("views.paper", raw_id=wanted))
        return render_template("search.html", query=sq.text, cards=[], page_number=1, sq=sq, fetch_offer=wanted,
                               categories=_categories(idx), user_tags=user_tags)
    cards, message = [], None
    if sq.text and textfeatures.latex_only(sq.text):
        message = searchquery.latex_message(sq.text)
    elif sq.text:
        try:
            ids, scores = ranking.search(idx, sq.text, sq.filters, n=sq.limit, offset=sq.offset)
        except ValueError as exc:
            feeds.bad_request(str(exc))
        if len(ids) == 1 and sq.page == 1 and scores == [1.0] and ids[0] in sq.text:
            return redirect(url_for("views.paper", raw_id=ids[0]))  # an exact id goes straight to its page
        cards = feeds.cards(state().papers, ids, scores, lib.tags_of() if lib else None, with_abstract=True)
    return render_template("search.html", query=sq.text, cards=cards, page_number=sq.page, sq=sq, message=message,
                           latex_words=textfeatures.latex_words(sq.text) if message else "",
                           categories=_categories(idx), user_tags=sorted(lib.tags) if lib else [])


@bp.get("/papers/<path:raw_id>")
def paper(raw_id: str):
    pid, found = feeds.stored_paper(state().papers, raw_id)
    idx, lib = index(), library()
    in_index = pid in idx.row_of
    if lib is not None:
        _bookkeeping(users().mark_opened, current_user.id, [pid], "page")
    similar = []
    if in_index:
        ids, scores = ranking.similar(idx, pid, n=10)
        similar = feeds.cards(state().papers, ids, scores, lib.tags_of() if lib else None, with_abstract=True)
    return render_template(
        "paper.html", paper=found, in_index=in_index,
        code_url=links.code_url(links.find_links(found.abstract, found.comments)),
        top_terms=ranking.top_terms(idx, pid, 12) if in_index else [],
        why=feeds.explanation(idx, lib, pid) if in_index else None, similar=similar,
        tags=lib.tags_of().get(pid, []) if lib else [], user_tags=sorted(lib.tags) if lib else [],
        not_interested=lib is not None and pid in lib.hidden)


@bp.get("/library")
@login_required
def library_page(report: dict | None = None, form: dict | None = None):
    lib = library()
    found = state().papers.get_many({p for ids in lib.tags.values() for p in ids})
    settings = state().settings
    return render_template("library.html", tags=lib.tags, papers=found, model_status=_model_status(lib),
                           hidden=len(lib.hidden), report=report, form=form or {}, formats=FORMATS,
                           max_upload=f"{settings.import_max_bytes / 2**20:.0f} MiB",
                           max_entries=settings.import_max_entries, web_fetch=settings.import_web_fetch)


@bp.post("/library/import")
@login_required
def library_import():
    """The upload form: a file, or ids pasted in the box. The report is shown on the library page."""
    form = {"tag": request.form.get("tag", ""), "format": request.form.get("format", ""),
            "collections": request.form.get("collections") == "1", "ids": request.form.get("ids", "")[:2000]}
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data, name = upload.read(state().settings.import_max_bytes + 1), upload.filename
    elif request.form.get("ids", "").strip():
        data, name = request.form["ids"], "pasted.txt"
    else:
        flash("Choose a file to upload, or paste arXiv ids or links into the box.", "error")
        return library_page(form=form), 400
    try:
        report = imports.run_import(data, filename=name, fmt=form["format"] or None,
                                    tag=form["tag"].strip() or None, collections=form["collections"])
    except (FormatError, UserError) as exc:
        flash(str(exc), "error")
        return library_page(form=form), getattr(exc, "status", 400)
    return library_page(report=imports.report_view(report, index()), form=form)


@bp.post("/library/tags/<tag>/rename")
@login_required
def rename_tag(tag: str):
    if tag not in library().tags:  # renaming to the same name changes no row but is not an error
        abort(404, description=f"You have no tag {tag[:40]!r}.")
    try:
        users().rename_tag(current_user.id, tag, request.form.get("name", ""))
    except UserError as exc:
        flash(str(exc), "error")
        return library_page(), exc.status
    after_library_change()
    flash(f"Renamed {tag!r}.", "ok")
    return redirect(url_for("views.library_page"))


@bp.post("/library/tags/<tag>/delete")
@login_required
def delete_tag(tag: str):
    if not users().delete_tag(current_user.id, tag):
        abort(404, description=f"You have no tag {tag[:40]!r}.")
    after_library_change()
    flash(f"Deleted tag {tag!r}.", "ok")
    return redirect(url_for("views.library_page"))


@bp.post("/library/tags/<tag>/remove")
@login_required
def remove_from_tag(tag: str):
    """Take one paper (form field ``id``) out of one tag; the last paper's removal ends the tag."""
    pid = feeds.paper_id(request.form.get("id", ""))
    if pid not in library().tags.get(tag, ()):
        abort(404, description=f"{pid} is not in your tag {tag[:40]!r}.")
    service.untag(users(), current_user.user, tag, [pid])
    after_library_change()
    flash(f"Removed {pid} from {tag!r}.", "ok")
    return redirect(url_for("views.library_page"))


@bp.post("/papers/<path:raw_id>/tag")
@login_required
def tag_form(raw_id: str):
    pid = feeds.paper_id(raw_id)
    tag = request.form.get("tag", "")
    try:
        if request.form.get("action") == "remove":
            service.untag(users(), current_user.user, tag, [pid])
        else:
            service.tag(users(), state().papers, current_user.user, tag, [pid])
    except UserError as exc:
        if exc.status == 404:  # no such paper: its page would be a 404 too
            abort(404, description=str(exc))
        flash(str(exc), "error")
        return paper(pid), exc.status
    after_library_change()
    return redirect(url_for("views.paper", raw_id=pid))


@bp.post("/papers/<path:raw_id>/not-interested")
@login_required
def not_interested_form(raw_id: str):
    pid = feeds.paper_id(raw_id)
    if pid not in state().papers:
        abort(404, description=f"No paper {pid}.")
    try:
        users().set_not_interested(current_user.id, pid, request.form.get("undo") != "1")
    except UserError as exc:
        flash(str(exc), "error")
        return paper(pid), exc.status
    after_library_change()
    return redirect(url_for("views.paper", raw_id=pid))
