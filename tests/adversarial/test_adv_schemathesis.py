"""The JSON API against its own OpenAPI document (``/api/openapi.json``), fuzzed by schemathesis.

Every operation gets schemathesis' examples, coverage and fuzzing phases (positive and negative data),
derandomized and bounded (``MAX_EXAMPLES`` generated cases per operation), on the real app over a copy of
the 10k sample with the production attempt budgets on (so 429 answers are exercised too), authenticated
with a bearer token of a user who has a tag. Four checks must hold for every response: no 5xx, the status
code is documented, the content type is documented, and the body matches the documented schema.
"""
from __future__ import annotations

import contextlib
import importlib
import pkgutil

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error


def _import_everything(package) -> None:
    """Import all of ``package`` now, at collection. schemathesis imports most of itself lazily, in the middle
    of a run, and pytest rewrites its modules (it is a pytest plugin) with ``ast.parse``. In CPython 3.11 the
    AST recursion counter is shared by all threads (gh-106905), so a compile racing the app's background
    retrain threads can fail with "AST constructor recursion depth mismatch". Seen twice in full runs."""
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        with contextlib.suppress(Exception):  # optional integrations whose extras are not installed
            importlib.import_module(info.name)


_import_everything(schemathesis)
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.webhelpers import bearer, register, send, tag

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PID = "2504.13999"


@pytest.fixture
def app(make_app):
    return make_app(RATELIMIT_ENABLED=True)


@pytest.fixture
def api_user(app):
    """A user with a tag and an API token; ``headers`` is replaced when a test case revokes the token."""
    client = app.test_client()
    token = register(client, "schemauser")
    tag(client, token, "mine", PID)
    state = {"client": client, "csrf": token}

    def new_token():
        response = send(client, "POST", "/api/tokens", state["csrf"], json={"name": "schemathesis"})
        assert response.status_code == 201, response.get_data(as_text=True)
        state["headers"] = bearer(response.json["token"])

    new_token()
    state["renew"] = new_token
    yield state
    app.extensions["paperfeed"].wait_for_retrains()


@pytest.fixture
def api_schema(app, api_user):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
def test_the_api_keeps_its_documented_contract(case, api_user):
    response = case.call(headers=api_user["headers"])
    case.validate_response(response, checks=CHECKS, headers=api_user["headers"])
    if case.method == "DELETE" and case.path == "/api/tokens/{token_id}" and response.status_code == 200:
        api_user["renew"]()  # the case revoked our own token: keep testing as a logged-in user


def test_the_document_lists_every_api_route(app):
    """Every /api/ route is documented with every method, so the fuzzing above reaches all of them."""
    spec = app.test_client().get("/api/openapi.json").json
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = rule.rule.replace("<path:raw_id>", "{id}").replace("<int:token_id>", "{token_id}") \
            .replace("<tag>", "{tag}")
        routes |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == documented
