"""Library export downloads: ``/library/export.bib|.json|.csv?tag=`` (pages) and ``GET /api/library/export``.

GET, because nothing changes. Only the logged-in user's own library: no route takes a user.
The writers are ``recommender.library.export``; this module only picks the format and sets the headers.
"""
from __future__ import annotations

from flask import Blueprint, abort, make_response, request
from flask_login import current_user, login_required

from recommender.library import export

from .auth import users
from .context import state
from . import feeds

bp = Blueprint("exports", __name__)
BY_EXTENSION = {ext: fmt for fmt, ext in export.EXTENSIONS.items()}


def _download(fmt: str):
    tag = request.args.get("tag") or None
    try:
        result = export.export_user(users(), state().papers, current_user.id, fmt, tag)
    except export.UnknownTag:
        abort(404, description=f"You have no tag {tag[:40]!r}.")
    response = make_response(result.text)
    response.headers["Content-Type"] = export.CONTENT_TYPES[fmt]
    response.headers.set("Content-Disposition", "attachment", filename=export.filename(fmt, tag))
    response.headers["X-Paperfeed-Papers"] = str(result.papers)
    response.headers["X-Paperfeed-Missing"] = str(result.missing)  # tagged, but not in the paper store
    return response


def _route(ext: str):
    @login_required
    def download():
        return _download(BY_EXTENSION[ext])
    return download


for _ext in BY_EXTENSION:  # one plain rule (and endpoint) per file: exports.download_bib -> /library/export.bib
    bp.add_url_rule(f"/library/export.{_ext}", f"download_{_ext}", _route(_ext), methods=["GET"])


@bp.get("/api/library/export")
@login_required
def api_export():
    fmt = export.format_name(request.args.get("format", ""))
    if fmt not in export.FORMATS:
        feeds.bad_request(f"format must be one of {', '.join(export.FORMATS)}")
    return _download(fmt)
