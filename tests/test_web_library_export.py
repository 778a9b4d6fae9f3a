"""Library export downloads (/library/export.*, GET /api/library/export) and removing one paper from a tag on
/library, on the real 10k sample with CSRF on."""
from __future__ import annotations

import csv
import html
import io
import json

import bibtexparser
import pytest

from tests.webhelpers import bearer, message, page_csrf, private_app, register, send, tag

pytestmark = pytest.mark.slow

AMP = "2503.20953"   # "Clean & Clear: Feasibility of Safe LLM Clinical Guidance"
ANGLE = "2505.19875"  # "Impact of <3D> NLTE on GCE of oxygen with the RAdial Velocity Experiment"
PID = "2504.13999"


@pytest.fixture(scope="module")
def app(built10k, tmp_path_factory):
    app = private_app(built10k, tmp_path_factory, "export_app")
    yield app
    app.extensions["paperfeed"].close()


@pytest.fixture(scope="module")
def alice(app):
    client = app.test_client()
    token = register(client, "alice")
    tag(client, token, "to read", AMP, ANGLE)
    tag(client, token, "html", ANGLE, PID)
    secret = send(client, "POST", "/api/tokens", token, json={"name": "script"}).json["token"]
    app.extensions["paperfeed"].wait_for_retrains()
    return client, token, secret


def bib_ids(text: str) -> list[str]:
    library = bibtexparser.parse_string(text)
    assert library.failed_blocks == []
    return sorted(e["eprint"] for e in library.entries)


def test_anonymous_cannot_export(app):
    anon = app.test_client()
    response = anon.get("/library/export.bib")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert anon.get("/api/library/export?format=bibtex").status_code == 401


def test_whole_library_as_bibtex(alice):
    client, _, _ = alice
    response = client.get("/library/export.bib")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-bibtex; charset=utf-8"
    assert response.headers["Content-Disposition"] == "attachment; filename=paperfeed-library.bib"
    text = response.get_data(as_text=True)
    assert bib_ids(text) == sorted([AMP, ANGLE, PID])  # every paper once
    entry = next(e for e in bibtexparser.parse_string(text).entries if e["eprint"] == ANGLE)
    assert entry["keywords"] == "html, to read" and "<3D>" in entry["title"]
    assert response.headers["X-Paperfeed-Missing"] == "0"


def test_one_tag_in_every_format(alice):
    client, _, _ = alice
    response = client.get("/library/export.csv", query_string={"tag": "to read"})
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == "attachment; filename=paperfeed-to-read.csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert sorted(r["id"] for r in rows) == sorted([AMP, ANGLE])
    assert next(r for r in rows if r["id"] == AMP)["title"].startswith("Clean & Clear")
    response = client.get("/library/export.json", query_string={"tag": "html"})
    assert response.headers["Content-Type"] == "application/vnd.citationstyles.csl+json; charset=utf-8"
    assert sorted(i["number"] for i in json.loads(response.get_data(as_text=True))) == sorted([ANGLE, PID])


def test_api_export_with_a_token_and_its_errors(app, alice):
    _, _, secret = alice
    client = app.test_client()
    response = client.get("/api/library/export?format=bibtex&tag=html", headers=bearer(secret))
    assert response.status_code == 200 and bib_ids(response.get_data(as_text=True)) == sorted([ANGLE, PID])
    for spelling in ("csl-json", "CSLJSON", "json"):  # the importer's name for the format works too
        response = client.get(f"/api/library/export?format={spelling}&tag=html", headers=bearer(secret))
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(
            "application/vnd.citationstyles.csl+json")
    bad = client.get("/api/library/export?format=ris", headers=bearer(secret))
    assert bad.status_code == 400 and "format must be one of" in bad.json["message"]
    assert client.get("/api/library/export?format=csv&tag=nope", headers=bearer(secret)).status_code == 404


def test_no_user_sees_another_users_library(app, alice):
    bob = app.test_client()
    token = register(bob, "bob")
    tag(bob, token, "mine", PID)
    assert bib_ids(bob.get("/library/export.bib").get_data(as_text=True)) == [PID]
    assert bob.get("/library/export.bib", query_string={"tag": "to read"}).status_code == 404  # alice's tag
    assert bob.get("/api/library/export?format=csv&tag=html").status_code == 404
    assert "user" not in bob.get("/api/library/export?format=csv&user=alice").get_data(as_text=True)


def test_library_page_links_and_escapes(alice):
    client, _, _ = alice
    page = client.get("/library").get_data(as_text=True)
    assert 'href="/library/export.bib"' in page and 'href="/library/export.csv?tag=to+read"' in page
    assert "Impact of &lt;3D&gt; NLTE" in page and "<3D>" not in page  # autoescaped


def test_remove_one_paper_from_a_tag(app):
    client = app.test_client()
    token = register(client, "carol")
    tag(client, token, "a", AMP, PID)
    tag(client, token, "b", PID)
    page = client.get("/library").get_data(as_text=True)
    form = page_csrf(page)
    # without a CSRF token nothing changes
    assert client.post("/library/tags/a/remove", data={"id": PID}).status_code == 400
    assert client.get("/api/tags").json["tags"][0]["papers"] == [PID, AMP]
    response = client.post("/library/tags/a/remove", data={"id": PID, "csrf_token": form})
    assert response.status_code == 302 and response.headers["Location"].endswith("/library")
    tags = {t["name"]: t["papers"] for t in client.get("/api/tags").json["tags"]}
    assert tags == {"a": [AMP], "b": [PID]}  # only that paper, only that tag
    page = client.get("/library").get_data(as_text=True)
    assert f"Removed {PID} from" in html.unescape(page)
    missing = client.post("/library/tags/a/remove", data={"id": PID, "csrf_token": form})
    assert missing.status_code == 404 and f"{PID} is not in your tag" in message(missing)
    assert client.post("/library/tags/a/remove", data={"id": "nonsense", "csrf_token": form}).status_code == 400
    app.extensions["paperfeed"].wait_for_retrains()


def test_one_user_cannot_remove_from_anothers_tag(app, alice):
    client, _, _ = alice
    mallory = app.test_client()
    token = register(mallory, "mallory")
    response = send(mallory, "POST", "/library/tags/html/remove", token, data={"id": PID})
    assert response.status_code == 404  # mallory has no tag "html": her own library is the only one she reaches
    tags = {t["name"]: t["papers"] for t in client.get("/api/tags").json["tags"]}
    assert sorted(tags["html"]) == sorted([ANGLE, PID])
