"""OpenAPI 3.1 description of the JSON API, served at ``/api/openapi.json``."""
from __future__ import annotations


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict | None = None, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def _path(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


ERRORS = {"400": _json(_ref("Error"), "Bad input"), "401": _json(_ref("Error"), "Not logged in"),
          "404": _json(_ref("Error"), "Not found")}
PAPERS = _json({"type": "object", "properties": {"papers": {"type": "array", "items": _ref("PaperCard")}}})
CREDENTIALS = {"required": True, "content": {"application/json": {"schema": _ref("Credentials")}}}
PID = _path("id", "arXiv id, e.g. 2503.01234 or hep-th/9901001 (a version suffix is ignored)")
TAG = _path("tag", "tag name")
LIMIT = _query("limit", "results (1-200)", {"type": "integer", "minimum": 1, "maximum": 200})
OK = _json({"type": "object", "properties": {"ok": {"type": "boolean"}}})


def _op(summary: str, responses: dict, *, params=(), body=None, auth=False, changes=False) -> dict:
    op = {"summary": summary, "parameters": list(params), "responses": {**responses, **ERRORS}}
    if body:
        op["requestBody"] = body
    if auth:
        op["security"] = [{"session": [], "csrf": []} if changes else {"session": []}, {"bearer": []}]
    return op


SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Paperfeed API", "version": "1",
             "description": "Personalized arXiv feeds. Session-cookie clients send X-CSRFToken (from GET /api/csrf) "
                            "on every POST, PUT and DELETE; bearer-token clients need no CSRF token."},
    "paths": {
        "/api/csrf": {"get": _op("A CSRF token for this session", {"200": _json(
            {"type": "object", "properties": {"csrf_token": {"type": "string"}}})})},
        "/api/register": {"post": _op("Create an account and log in", {"201": _json(_ref("Session"))},
                                      body=CREDENTIALS)},
        "/api/login": {"post": _op("Log in (rate-limited)", {"200": _json(_ref("Session"))}, body=CREDENTIALS)},
        "/api/logout": {"post": _op("End this session", {"200": OK})},
        "/api/password": {"post": _op("Change password; ends every other session", {"200": OK}, auth=True,
                                      changes=True, body={"required": True, "content": {"application/json": {
                                          "schema": {"type": "object", "required": ["old", "new"], "properties": {
                                              "old": {"type": "string"}, "new": {"type": "string"}}}}}})},
        "/api/me": {"get": _op("The current user, tag counts and model status", {"200": _json({"type": "object"})},
                               auth=True)},
        "/api/feed": {"get": _op("A ranked feed", {"200": _json(_ref("Feed"))}, params=[
            _query("mode", "rec (default when logged in), recent or random",
                   {"type": "string", "enum": ["rec", "recent", "random"]}),
            _query("tag", "rank for this tag; repeat to combine; none means the whole library"),
            _query("since", "YYYY-MM-DD, inclusive", {"type": "string", "format": "date"}),
            _query("until", "YYYY-MM-DD, inclusive", {"type": "string", "format": "date"}),
            _query("window", "day, week, month, year or all, counted back from the newest paper",
                   {"type": "string", "enum": ["day", "week", "month", "year", "all"]}),
            _query("category", "an arXiv category such as cs.LG"),
            _query("hide_tagged", "0 or 1 (default 1 for rec)"),
            LIMIT, _query("offset", "skip this many", {"type": "integer", "minimum": 0})])},
        "/api/papers/{id}": {"get": _op("One paper with its top terms (and your tags, and why your model scores it)", {"200": _json(_ref("Paper"))},
                                        params=[PID])},
        "/api/papers/{id}/similar": {"get": _op("Similar papers", {"200": PAPERS}, params=[PID, LIMIT])},
        "/api/papers/{id}/not-interested": {
            "post": _op("Mark not interested (a negative for your models)", {"200": _json({"type": "object"})},
                        params=[PID], auth=True, changes=True),
            "delete": _op("Undo not interested", {"200": _json({"type": "object"})}, params=[PID], auth=True,
                          changes=True)},
        "/api/search": {"get": _op("Search by keywords or arXiv id", {"200": PAPERS}, params=[
            _query("q", "keywords or an arXiv id", required=True), LIMIT,
            _query("offset", "skip this many", {"type": "integer", "minimum": 0})])},
        "/api/tags": {"get": _op("Your tags and their papers", {"200": _json({"type": "object"})}, auth=True)},
        "/api/tags/{tag}": {"delete": _op("Delete a tag", {"200": OK}, params=[TAG], auth=True, changes=True)},
        "/api/tags/{tag}/rename": {"post": _op("Rename (or merge into) a tag", {"200": OK}, params=[TAG], auth=True,
                                               changes=True, body={"required": True, "content": {"application/json": {
                                                   "schema": {"type": "object", "properties": {
                                                       "name": {"type": "string"}}}}}})},
        "/api/tags/{tag}/papers/{id}": {
            "put": _op("Tag a paper (creates the tag if new)", {"200": _json(_ref("TagChange"))}, params=[TAG, PID],
                       auth=True, changes=True),
            "delete": _op("Untag a paper", {"200": _json(_ref("TagChange"))}, params=[TAG, PID], auth=True,
                          changes=True)},
        "/api/tokens": {
            "get": _op("Your API tokens (names and dates, never the secrets)", {"200": _json({"type": "object"})},
                       auth=True),
            "post": _op("Create an API token; the secret is shown once", {"201": _json({"type": "object"})},
                        auth=True, changes=True)},
        "/api/tokens/{token_id}": {"delete": _op("Revoke a token", {"200": OK}, params=[
            {"name": "token_id", "in": "path", "required": True, "schema": {"type": "integer"}}], auth=True,
            changes=True)},
        "/api/openapi.json": {"get": _op("This document", {"200": _json({"type": "object"})})},
    },
    "components": {
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            "bearer": {"type": "http", "scheme": "bearer"},
        },
        "schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
            "Credentials": {"type": "object", "required": ["username", "password"], "properties": {
                "username": {"type": "string"}, "password": {"type": "string", "minLength": 8}}},
            "Session": {"type": "object", "properties": {"username": {"type": "string"},
                                                         "csrf_token": {"type": "string"}}},
            "PaperCard": {"type": "object", "properties": {
                "id": {"type": "string"}, "title": {"type": "string"},
                "authors": {"type": "array", "items": {"type": "string"}},
                "categories": {"type": "array", "items": {"type": "string"}},
                "date": {"type": "string", "format": "date"}, "score": {"type": "number"}}},
            "Feed": {"type": "object", "properties": {
                "papers": {"type": "array", "items": _ref("PaperCard")}, "total": {"type": "integer"},
                "mode": {"type": "string"}, "notice": {"type": ["string", "null"]}, "offset": {"type": "integer"}}},
            "Paper": {"type": "object", "properties": {
                "why": {"type": ["object", "null"], "description": "logged in, with a model: the best model (tag), "
                        "its score, and the terms, authors and categories that raised it (authors and categories "
                        "with how many of your papers share them)"}}},
            "TagChange": {"type": "object", "properties": {
                "tag": {"type": "string"}, "id": {"type": "string"}, "changed": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}}}},
        },
    },
}
