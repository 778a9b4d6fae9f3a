"""OpenAPI 3.1 description of the JSON API, served at ``/api/openapi.json``.

Every status code an operation can answer is listed, and every error body is ``{error, message}``.
``tests/adversarial/test_adv_schemathesis.py`` fuzzes the API against this document.
"""
from __future__ import annotations

from .feeds import MAX_JSON_DEPTH


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _object(properties: dict, required=None, **extra) -> dict:
    return {"type": "object", "required": list(properties) if required is None else list(required),
            "properties": properties, **extra}


def _query(name: str, description: str, schema: dict | None = None, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def _path(name: str, description: str, schema: dict | None = None, example=None) -> dict:
    param = {"name": name, "in": "path", "required": True, "description": description,
             "schema": schema or {"type": "string"}}
    if example is not None:
        param["example"] = example
    return param


def _error(description: str, headers: dict | None = None) -> dict:
    response = _json(_ref("Error"), description)
    if headers:
        response["headers"] = headers
    return response


ERROR_RESPONSES = {
    "400": _error("Bad input: a parameter or body field is malformed or out of range, the URL is not valid "
                  "UTF-8, or (session clients) the CSRF token is missing or wrong"),
    "401": _error("Not logged in, or the bearer token is invalid or revoked"),
    "404": _error("No such paper, tag or token"),
    "409": _error("A per-user limit (tags, papers per tag, tokens) would be exceeded"),
    "413": _error("The body is larger than 64 KiB (a library import: 16 MiB)"),
    "429": _error("Too many password attempts for this account or from this address", headers={
        "Retry-After": {"description": "seconds until the next attempt is allowed",
                        "schema": {"type": "integer", "minimum": 1}}}),
    "502": _error("arXiv could not be reached or failed to answer; nothing was saved"),
    "503": _error("The server cannot serve this now: no papers indexed yet, or its storage is damaged, "
                  "locked, read-only or full"),
}
ALWAYS = ("400", "401", "503")  # any request: a malformed URL, a bad bearer token, storage trouble
BODY = ("413",)  # any request with a body: too large (also state-changing requests, which may carry a form)
PASSWORD = ("429",)  # requests that check or set a password share one budget per account and per address

PAPER_ID = {"type": "string", "pattern": r"^([0-9]{4}\.[0-9]{4,5}|[a-z]+(-[a-z]+)*(\.[A-Z]{2})?/[0-9]{7})(v[0-9]+)?$"}
PID = _path("id", "arXiv id, e.g. 2504.13999 or hep-th/9901001 (a version suffix is ignored)", PAPER_ID,
            example="2504.13999")
TAG = _path("tag", "tag name", example="mine")
LIMIT = _query("limit", "results (1-200)", {"type": "integer", "minimum": 1, "maximum": 200})
PAPERS = _json(_object({"papers": {"type": "array", "items": _ref("PaperCard")}}))
ABSTRACTS = _query("abstracts", "1 to include each paper's abstract in the list (default 0: it triples the size)",
                   {"type": "string", "enum": ["0", "1", "true", "false"]})
CATEGORY = {"type": "string", "maxLength": 40}
OK = _json(_object({"ok": {"type": "boolean"}}))


RETRY_AFTER = {"Retry-After": {"description": "seconds until the next attempt is allowed",
                               "schema": {"type": "integer", "minimum": 1}}}
EXPORT_TYPES = {"application/x-bibtex": {"schema": {"type": "string"}},
                "application/vnd.citationstyles.csl+json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "text/csv": {"schema": {"type": "string"}}}


def _fetch_op() -> dict:
    op = _op("Fetch a paper the store lacks from arXiv (at most 20 an hour per user and 30 per address)",
             {"200": _json(_ref("Fetched"))}, ("404", "429", "502"), params=[PID], auth="required", changes=True)
    op["responses"]["404"] = _error("arXiv has no such paper")
    op["responses"]["429"] = _error("Too many fetches from arXiv by this user or from this address",
                                    headers=RETRY_AFTER)
    return op


def _body(schema: dict) -> dict:
    return {"required": True, "description": f"a JSON object, nested at most {MAX_JSON_DEPTH} levels deep",
            "content": {"application/json": {"schema": schema}}}


def _op(summary: str, responses: dict, errors=(), *, params=(), body=None, auth=None, changes=False) -> dict:
    """``auth``: None (anyone), "optional" (more when logged in) or "required"."""
    codes = sorted(set(ALWAYS) | set(errors) | (set(BODY) if body or changes else set()))
    op = {"summary": summary, "parameters": list(params),
          "responses": {**responses, **{code: ERROR_RESPONSES[code] for code in codes}}}
    if body:
        op["requestBody"] = body
    session = {"session": [], "csrf": []} if changes else {"session": []}
    if auth == "required":
        op["security"] = [session, {"bearer": []}]
    elif auth == "optional":
        op["security"] = [{}, session, {"bearer": []}]
    return op


FEED_PARAMS = [  # GET /api/feed and POST /api/seen/all
    _query("mode", "rec (default when logged in; 401 when not), recent, random, or popular: the papers "
                   "the most readers tagged in the window (day, week (default) or month, counted back "
                   "from now; at least 2 readers each; only counts, in `readers`). Popular ignores tag, "
                   "category and hide_tagged, and answers 400 to since, until or another window "
                   "(short name: m)",
           {"type": "string", "enum": ["rec", "recent", "random", "popular"]}),
    _query("tag", "rank for this tag (404 if you have no such tag); repeat to combine; none means the "
                  "whole library (short name: t)"),
    _query("since", "YYYY-MM-DD, inclusive", {"type": "string", "format": "date"}),
    _query("until", "YYYY-MM-DD, inclusive", {"type": "string", "format": "date"}),
    _query("window", "new (since your previous visit to the web feed, else the past week), day, week, "
                     "month, year or all (default), counted back from the newest paper (short name: w)",
           {"type": "string", "enum": ["new", "day", "week", "month", "year", "all"]}),
    _query("category", "an arXiv category such as cs.LG (short name: c)"),
    _query("hide_tagged", "0 or 1 (default 1 for rec; short name: h)"),
    _query("hide_seen", "1 leaves out papers you were shown or opened before as_of (default now; short name: s)",
           {"type": "string", "enum": ["0", "1"]}),
    _query("as_of", "with hide_seen: only papers marked before this time (unix seconds) count as seen",
           {"type": "integer", "minimum": 0, "maximum": 2**40}),
    LIMIT, _query("offset", "skip this many", {"type": "integer", "minimum": 0, "maximum": 99800})]
SEEN_IDS = {"type": "array", "items": PAPER_ID, "minItems": 1, "maxItems": 200}


SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Paperfeed API", "version": "1",
             "description": "Personalized arXiv feeds. Session-cookie clients send X-CSRFToken (from GET /api/csrf) "
                            "on every POST, PUT and DELETE; bearer-token clients need no CSRF token. Every error "
                            "is a JSON object {error, message}. Login, registration and password change share "
                            "one attempt budget per account and per client address (429 with Retry-After)."},
    "paths": {
        "/api/csrf": {"get": _op("A CSRF token for this session", {"200": _json(
            _object({"csrf_token": {"type": "string"}}))})},
        "/api/register": {"post": _op("Create an account and log in", {"201": _json(_ref("Session"))},
                                      PASSWORD, body=_body(_ref("NewAccount")))},
        "/api/login": {"post": _op("Log in (attempts are limited per account and per address)",
                                   {"200": _json(_ref("Session"))}, PASSWORD, body=_body(_ref("Credentials")))},
        "/api/logout": {"post": _op("End this session", {"200": OK}, changes=True)},
        "/api/password": {"post": _op("Change password; ends every other session",
                                      {"200": _json(_object({"ok": {"type": "boolean"},
                                                             "csrf_token": {"type": "string"}}))},
                                      PASSWORD, auth="required", changes=True, body=_body(_object({
                                          "old": {"type": "string"}, "new": {"type": "string"}})))},
        "/api/me": {"get": _op("The current user, tag counts and model status", {"200": _json(_ref("Me"))},
                               auth="required")},
        "/api/feed": {"get": _op("A ranked feed", {"200": _json(_ref("Feed"))}, ("404",), auth="optional",
                                 params=[*FEED_PARAMS, ABSTRACTS])},
        "/api/seen": {
            "post": _op("Record papers as shown or opened (upgrades only: opened is never turned back into shown)",
                        {"200": _json(_object({"marked": {"type": "integer"},
                                               "state": {"type": "string", "enum": ["shown", "opened"]},
                                               "unknown": {"type": "array", "items": {"type": "string"},
                                                           "description": "ids not in the store (not marked)"}}))},
                        auth="required", changes=True, body=_body(_object({
                            "ids": {**SEEN_IDS, "description": "arXiv ids (1-200)"},
                            "state": {"type": "string", "enum": ["shown", "opened"], "default": "shown"},
                            "via": {"type": "string", "enum": ["api", "atom"], "default": "api"}},
                            required=["ids"]))),
            "get": _op("Which of these papers you were shown or opened", {"200": _json(_object({"states": {
                "type": "object", "additionalProperties": {"type": "string", "enum": ["shown", "opened"]}}}))},
                auth="required", params=[_query("ids", "comma-separated arXiv ids (1-200)", required=True)])},
        "/api/seen/all": {"post": _op(
            "Mark all as read: the first 500 papers of the feed these parameters describe (as GET /api/feed) "
            "count as shown", {"200": _json(_object({"marked": {"type": "integer"}, "limit": {"type": "integer"},
                                                     "as_of": {"type": "integer"}}))},
            ("404",), auth="required", changes=True, params=FEED_PARAMS)},
        "/api/papers/{id}": {"get": _op("One paper with its top terms (and your tags, and why your model scores it)",
                                        {"200": _json(_ref("Paper"))}, ("404",), params=[PID], auth="optional")},
        "/api/papers/{id}/similar": {"get": _op("Similar papers", {"200": PAPERS}, ("404",),
                                                 params=[PID, LIMIT, ABSTRACTS])},
        "/api/papers/{id}/not-interested": {
            "post": _op("Mark not interested (a negative for your models)", {"200": _json(_ref("NotInterested"))},
                        ("404", "409"), params=[PID], auth="required", changes=True),
            "delete": _op("Undo not interested", {"200": _json(_ref("NotInterested"))}, ("404",), params=[PID],
                          auth="required", changes=True)},
        "/api/papers/{id}/fetch": {"post": _fetch_op()},
        "/api/library/export": {"get": _op(
            "Your library, or one tag, as BibTeX, CSL JSON or CSV (the file, with Content-Disposition: attachment)",
            {"200": {"description": "The export; X-Paperfeed-Missing counts papers exported with id and URL only "
                                    "(tagged, but not in the paper store)", "content": EXPORT_TYPES}},
            ("404",), auth="required", params=[
                _query("format", "bibtex, csljson or csv", {"type": "string", "enum": ["bibtex", "csljson", "csv"]},
                       required=True),
                _query("tag", "export only this tag (404 if you have no such tag); none means every paper of "
                              "every tag, once")])},
        "/api/search": {"get": _op("Search by keywords or arXiv id", {"200": _json(_object({
            "papers": {"type": "array", "items": _ref("PaperCard")}, "query": {"type": "string"},
            "message": {"type": ["string", "null"], "description": "why nothing was found, and what to search "
                        "for instead (a query of only LaTeX math, which the index leaves out)"},
            "suggestion": {"type": ["string", "null"], "description": "words to search for instead of LaTeX"}},
            required=["papers", "query"]))}, params=[
            _query("q", "keywords or an arXiv id (1-1000 characters)", {"type": "string", "maxLength": 1000},
                   required=True), LIMIT,
            _query("offset", "skip this many", {"type": "integer", "minimum": 0, "maximum": 10000}),
            _query("from", "YYYY-MM-DD, published on or after", {"type": "string", "format": "date"}),
            _query("to", "YYYY-MM-DD, published on or before", {"type": "string", "format": "date"}),
            _query("c", "an arXiv category such as cs.CV (400 if unknown)", CATEGORY), ABSTRACTS])},
        "/api/tags": {"get": _op("Your tags and their papers", {"200": _json(_object({"tags": {
            "type": "array", "items": _object({"name": {"type": "string"}, "count": {"type": "integer"},
                                               "papers": {"type": "array", "items": {"type": "string"}}})}}))},
            auth="required")},
        "/api/tags/{tag}": {"delete": _op("Delete a tag", {"200": OK}, ("404",), params=[TAG], auth="required",
                                          changes=True)},
        "/api/tags/{tag}/rename": {"post": _op("Rename (or merge into) a tag", {"200": OK}, ("404", "409"),
                                               params=[TAG], auth="required", changes=True,
                                               body=_body(_object({"name": {"type": "string"}})))},
        "/api/tags/{tag}/papers/{id}": {
            "put": _op("Tag a paper (creates the tag if new)", {"200": _json(_ref("TagChange"))}, ("404", "409"),
                       params=[TAG, PID], auth="required", changes=True),
            "delete": _op("Untag a paper", {"200": _json(_ref("TagChange"))}, ("404", "409"), params=[TAG, PID],
                          auth="required", changes=True)},
        "/api/library/import": {"post": _op(
            "Import a library (BibTeX, CSL JSON, Zotero RDF or arXiv ids): tag every paper found, fetch missing "
            "ones from arXiv (at most import_web_fetch per import), and report every entry",
            {"200": _json(_ref("ImportReport"))}, ("409", "429"), auth="required", changes=True, body={
                "required": True, "description": "an export as JSON text, or a multipart upload (at most 16 MiB)",
                "content": {
                    "application/json": {"schema": _object({
                        "text": {"type": "string", "minLength": 1,
                                 "description": "the export's text, or arXiv ids or links one a line"},
                        "tag": {"type": "string", "description": "gets every paper found (default: imported)"},
                        "format": {"type": "string", "enum": ["bibtex", "csl-json", "zotero-rdf", "ids"]},
                        "collections": {"type": "boolean", "description": "collections and groups become tags "
                                                                          "(default true)"}}, required=["text"])},
                    "multipart/form-data": {"schema": _object({
                        "file": {"type": "string", "format": "binary"}, "text": {"type": "string"},
                        "tag": {"type": "string"}, "format": {"type": "string"},
                        "collections": {"type": "string", "enum": ["0", "1"]}}, required=[])}}})},
        "/api/tokens": {
            "get": _op("Your API tokens (names and dates, never the secrets)", {"200": _json(_object({
                "tokens": {"type": "array", "items": _ref("Token")}}))}, auth="required"),
            "post": _op("Create an API token; the secret is shown once", {"201": _json(_object({
                "id": {"type": "integer"}, "token": {"type": "string"}}))}, ("409",), auth="required",
                changes=True, body=_body(_object({"name": {"type": "string", "minLength": 1, "maxLength": 60}})))},
        "/api/tokens/{token_id}": {"delete": _op("Revoke a token", {"200": OK}, ("404",), params=[
            _path("token_id", "the token's id (from GET /api/tokens)", {"type": "integer"})], auth="required",
            changes=True)},
        "/api/feed-tokens": {
            "get": _op("Your private Atom feeds (names, tags and dates, never the secrets)", {"200": _json(_object({
                "feeds": {"type": "array", "items": _ref("FeedToken")}}))}, auth="required"),
            "post": _op("Create a private Atom feed for the whole library or one tag; its URL (the secret) is "
                        "shown once", {"201": _json(_object({
                            "id": {"type": "integer"}, "tag": {"type": ["string", "null"]},
                            "url": {"type": "string", "description": "/feeds/<token>.atom, absolute"}}))},
                ("404", "409"), auth="required", changes=True, body=_body(_object({
                    "name": {"type": "string", "minLength": 1, "maxLength": 60},
                    "tag": {"type": ["string", "null"], "description": "one of your tags (404 if you have no "
                            "such tag); missing, null or empty: the whole library"}}, required=["name"])))},
        "/api/feed-tokens/{token_id}": {"delete": _op("Revoke a feed (its URL answers 404 from then on)",
                                                      {"200": OK}, ("404",), params=[
            _path("token_id", "the feed's id (from GET /api/feed-tokens)", {"type": "integer"})], auth="required",
            changes=True)},
        "/api/digest": {
            "get": _op("Your email digest settings, the address's state and the last send",
                       {"200": _json(_ref("Digest"))}, auth="required"),
            "put": _op("Change some digest settings (the others stay). A new address is unconfirmed: a "
                       "confirmation message goes to it now if the server can send email, else with the next "
                       "digest run (at most one a day); no digest goes to it until its link is followed",
                       {"200": _json(_ref("Digest"))}, auth="required", changes=True, body=_body(_object({
                           "email": {"type": ["string", "null"], "maxLength": 254,
                                     "description": "one plain address (name@example.org); null or empty "
                                                    "removes it"},
                           "frequency": {"type": "string", "enum": ["off", "daily", "weekly"]},
                           "size": {"type": "integer", "minimum": 1, "maximum": 50,
                                    "description": "papers per digest (default 10)"},
                           "tags": {"type": ["array", "null"], "items": {"type": "string"}, "maxItems": 50,
                                    "description": "some of your tags (400 if you have no such tag); null or "
                                                   "[]: the whole library"},
                           "popular": {"type": "boolean", "description": "add papers popular with other readers"},
                           "nothing_new": {"type": "boolean",
                                           "description": "send a short notice when nothing is new"}},
                           required=[], additionalProperties=False)))},
        "/api/openapi.json": {"get": _op("This document", {"200": _json({"type": "object"})})},
    },
    "components": {
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            "bearer": {"type": "http", "scheme": "bearer"},
        },
        "schemas": {
            "Error": _object({"error": {"type": "string", "description": "the HTTP status name"},
                              "message": {"type": "string", "description": "what went wrong, for people"}},
                             additionalProperties=False),
            "Credentials": _object({"username": {"type": "string"}, "password": {"type": "string"}}),
            "NewAccount": _object({
                "username": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$"},
                "password": {"type": "string", "minLength": 8, "maxLength": 1024,
                             "description": "at least 8 characters; common, guessable or username-based "
                                            "passwords and control characters are refused (400 says why)"}}),
            "Session": _object({"username": {"type": "string"}, "csrf_token": {"type": "string"}}),
            "Me": _object({
                "username": {"type": "string"},
                "tags": {"type": "object", "additionalProperties": {"type": "integer"}},
                "model": _object({"trained_at": {"type": ["number", "null"]}, "up_to_date": {"type": "boolean"},
                                  "retraining": {"type": "boolean"}, "carried_over": {"type": "boolean"},
                                  "error": {"type": ["string", "null"]}, "retry_in": {"type": ["number", "null"]}})}),
            "PaperCard": _object({
                "id": {"type": "string"}, "title": {"type": "string"},
                "authors": {"type": "array", "items": {"type": "string"}},
                "categories": {"type": "array", "items": {"type": "string"}},
                "date": {"type": "string", "format": "date"},
                "score": {"type": "number", "description": "the raw ranking score (model margin, relevance, or day "
                          "number); compare within one list only"},
                "percentile": {"type": ["number", "null"], "description": "recommended feed: the share of the "
                               "papers your model scored with these filters that this one ranks above (99.5: "
                               "top 0.5%); null where no model scored the list"},
                "code_url": {"type": ["string", "null"], "description": "the code repository named in the "
                             "abstract or comments (GitHub, GitLab, Bitbucket, Codeberg)"},
                "links": {"type": "array", "items": _object({
                    "url": {"type": "string"},
                    "kind": {"type": "string", "enum": ["github", "gitlab", "bitbucket", "codeberg", "huggingface",
                                                        "project", "web"]}})},
                "abstract": {"type": "string", "description": "with abstracts=1"},
                "readers": {"type": "integer", "minimum": 2, "description": "popular feed: how many different "
                            "readers tagged the paper in the window (never who)"}},
                required=["id", "title", "authors", "categories", "date", "score", "percentile", "code_url",
                          "links"]),
            "Feed": _object({
                "papers": {"type": "array", "items": _ref("PaperCard")}, "total": {"type": "integer"},
                "mode": {"type": "string", "enum": ["rec", "recent", "random", "popular"]},
                "notice": {"type": ["string", "null"]}, "offset": {"type": "integer"},
                "since": {"type": ["string", "null"], "format": "date",
                          "description": "window=new: the first day shown (your previous visit, or a week back)"}}),
            "Paper": _object({
                "id": {"type": "string"}, "version": {"type": "integer"}, "title": {"type": "string"},
                "abstract": {"type": "string"}, "authors": {"type": "array", "items": {"type": "string"}},
                "categories": {"type": "array", "items": {"type": "string"}},
                "comments": {"type": ["string", "null"]}, "journal_ref": {"type": ["string", "null"]},
                "doi": {"type": ["string", "null"]}, "license": {"type": ["string", "null"]},
                "published": {"type": "string", "format": "date"}, "updated": {"type": "string", "format": "date"},
                "top_terms": {"type": "array", "items": _object({"term": {"type": "string"},
                                                                 "weight": {"type": "number"}})},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "logged in: your tags"},
                "not_interested": {"type": "boolean", "description": "logged in"},
                "why": {"type": ["object", "null"], "description": "logged in, with a model: the best model (tag), "
                        "its score, its percentile among every indexed paper, and the terms, authors and categories that raised it (authors and categories "
                        "with how many of your papers share them)"}},
                required=["id", "version", "title", "abstract", "authors", "categories", "published", "updated",
                          "top_terms"]),
            "Fetched": _object({"id": {"type": "string"}, "fetched": {"type": "boolean", "description":
                                "false when the paper was in the store already (nothing was asked of arXiv)"},
                                "added": {"type": "integer"}, "updated": {"type": "integer"}}),
            "NotInterested": _object({"id": {"type": "string"}, "not_interested": {"type": "boolean"}}),
            "TagChange": _object({
                "tag": {"type": "string"}, "id": {"type": "string"}, "changed": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}}}),
            "ImportReport": _object({
                "format": {"type": "string"}, "tag": {"type": "string"}, "entries": {"type": "integer"},
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "tagged": {"type": "object", "additionalProperties": {"type": "integer"},
                           "description": "papers newly added, per tag (all 0 on a re-import)"},
                "tag_sizes": {"type": "object", "additionalProperties": {"type": "integer"}},
                "fetch_error": {"type": ["string", "null"]}, "complete": {"type": "boolean"},
                "unindexed": {"type": "integer", "description": "fetched papers not in the features until the "
                                                                "next compute"},
                **{bucket: {"type": "array", "items": _ref("ImportItem")} for bucket in (
                    "matched", "fetched", "not_found", "not_fetched", "not_on_arxiv", "malformed")}}),
            "ImportItem": _object({"key": {"type": "string"}, "title": {"type": "string"}, "id": {"type": "string"},
                                   "reason": {"type": "string"},
                                   "collections": {"type": "array", "items": {"type": "string"}}},
                                  required=["key", "title"]),
            "FeedToken": _object({"id": {"type": "integer"}, "name": {"type": "string"},
                                  "tag": {"type": ["string", "null"], "description": "null: the whole library"},
                                  "created_at": {"type": "number"}, "last_used": {"type": ["number", "null"]}}),
            "Digest": _object({
                "email": {"type": ["string", "null"]},
                "email_confirmed": {"type": "boolean", "description": "false until the link in the confirmation "
                                    "message is followed; no digest goes to an unconfirmed address"},
                "frequency": {"type": "string", "enum": ["off", "daily", "weekly"]},
                "size": {"type": "integer", "minimum": 1, "maximum": 50},
                "tags": {"type": ["array", "null"], "items": {"type": "string"}, "description": "null: the whole "
                         "library"},
                "popular": {"type": "boolean"}, "nothing_new": {"type": "boolean"},
                "last_sent": {"type": ["number", "null"], "description": "unix seconds of the last digest"},
                "last_error": {"type": ["string", "null"], "description": "why the last attempt failed"},
                "failures": {"type": "integer", "description": "consecutive failed attempts"},
                "confirmation": {"type": ["object", "null"], "description": "after a PUT that set a new address: "
                                 "status sent (now), later (by the next digest run) or waiting (one was sent "
                                 "in the last day), and a sentence for people", "properties": {
                                     "status": {"type": "string", "enum": ["sent", "later", "waiting"]},
                                     "message": {"type": "string"}}}}),
            "Token": _object({"id": {"type": "integer"}, "name": {"type": "string"},
                              "created_at": {"type": "number"}, "last_used": {"type": ["number", "null"]}}),
        },
    },
}
