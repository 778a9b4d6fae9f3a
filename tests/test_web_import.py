"""Library import on the web: the /library upload form and POST /api/library/import, on the real 10k sample.

Missing papers are fetched from recorded arXiv responses through test_arxiv_api's FakeArxiv, handed to the
app as ``IMPORT_ARXIV_SESSION``; every other outbound connection is refused (conftest).
"""
from __future__ import annotations

import dataclasses
import html
import io
import re
from pathlib import Path

import pytest
import requests

from recommender.harvest import arxiv_api
from test_arxiv_api import FakeArxiv, recorded
from tests.webhelpers import bearer, page_csrf, register, send

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures" / "library"
ID_1605 = "id_1605.08386_s0_m100_199195aa31ad.json"
ID_ASTRO = "id_astro-ph_0601001_s0_m100_3150dca9dc76.json"


def text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split()).replace(" :", ":")


def flashes(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<p class="flash \w+">(.*?)</p>', page)]


def upload(client, name: str, data: bytes, **fields):
    page = client.get("/library").get_data(as_text=True)
    form = {"csrf_token": page_csrf(page), "tag": "imported", "collections": "1", **fields}
    if name:
        form["file"] = (io.BytesIO(data), name)
    return client.post("/library/import", data=form, content_type="multipart/form-data")


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(arxiv_api, "ID_BATCH", 1)
    adapter = FakeArxiv()
    yield adapter
    adapter.assert_all_used()


@pytest.fixture
def fetching_app(web_settings, fake):
    """An app whose arXiv session is the fake transport; no delay between requests."""
    from webapp import create_app

    session = requests.Session()
    session.mount("https://", fake)
    settings = dataclasses.replace(web_settings, fetch_delay=0.0, import_web_fetch=1)
    app = create_app({"PRODUCTION": False, "TESTING": True, "RATELIMIT_ENABLED": False,
                      "IMPORT_ARXIV_SESSION": session}, settings=settings)
    yield app
    app.extensions["paperfeed"].close()


# --- the upload form ------------------------------------------------------------------------------
def test_upload_a_bib_file_tags_its_papers_and_shows_the_report(client, app):
    register(client, "alice")
    response = upload(client, "mendeley.bib", (FIXTURES / "mendeley.bib").read_bytes(), tag="reading")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, flashes(page)
    shown = text(page)
    assert "4 entries read (bibtex): 3 matched, 0 fetched from arXiv" in shown
    assert "1 without an arXiv id" in shown and "Deep residual learning for image recognition" in shown
    assert "reading: 3 new of 3" in shown and "LLM: 3 new of 3" in shown and "Humor: 1 new of 1" in shown
    tags = client.get("/api/tags").json["tags"]
    assert {t["name"]: t["count"] for t in tags} == {"reading": 3, "LLM": 3, "Humor": 1}
    # a re-import changes nothing and says so
    again = text(upload(client, "mendeley.bib", (FIXTURES / "mendeley.bib").read_bytes(), tag="reading")
                 .get_data(as_text=True))
    assert "reading: 0 new of 3" in again and "nothing changed" in again
    app.extensions["paperfeed"].wait_for_retrains()
    me = client.get("/api/me").json
    assert me["model"]["trained_at"] is not None


def test_paste_ids_into_the_box(client):
    register(client, "alice")
    page = upload(client, "", b"", ids="2503.15783v2\nhttps://arxiv.org/pdf/2503.17662\nnot an id\n", tag="pasted")
    shown = text(page.get_data(as_text=True))
    assert page.status_code == 200 and "3 entries read (ids): 2 matched" in shown and "1 malformed" in shown
    assert "'not an id' is not an arXiv id" in shown


@pytest.mark.parametrize("name,data,status,message", [
    ("notes.docx", b"PK\x03\x04\x14\x00\x06\x00", 400, "binary file"),
    ("refs.bib", b"Dear colleague, my thoughts on the paper.\n", 400, "holds no BibTeX entries"),
    ("refs.bib", b"@article{a, title={Caf\xe9}, journal={arXiv preprint arXiv:2503.15783}}", 400, "not valid UTF-8"),
    ("big.txt", "".join(f"2503.{i:05d}\n" for i in range(10_000)).encode(), 400, "holds 10,000 entries"),
    ("", b"", 400, "Choose a file to upload"),
])
def test_bad_uploads_get_a_clear_message_not_a_500(client, name, data, status, message):
    register(client, "alice")
    response = upload(client, name, data)
    page = response.get_data(as_text=True)
    assert response.status_code == status and any(message in f for f in flashes(page)), flashes(page)
    assert 'id="import-form"' in page  # the form is there to try again


def test_latex_titles_are_shown_readably(client):
    register(client, "alice")
    bib = rb"""@misc{ok, title={Coronal Gas: Insights from the \textsc{HESTIA} Simulations}, eprint={2504.15237},
archivePrefix={arXiv}}
@book{knuth, title={The {\TeX}book and Sch{\"o}nhage's {$\alpha$}-method \& more}}"""
    shown = text(upload(client, "x.bib", bib).get_data(as_text=True))
    assert "Schönhage's α-method & more" in shown


def test_a_50_mb_upload_is_refused_up_front(client):
    register(client, "alice")
    response = upload(client, "huge.bib", b"@misc{a, title={x}}\n" * 2_700_000)
    assert response.status_code == 413
    assert "a library import takes at most 16.0 MiB" in response.get_data(as_text=True)


def test_other_routes_keep_the_64_kib_limit(client):
    token = register(client, "alice")
    response = send(client, "POST", "/api/tokens", token, json={"name": "x" * 70_000})
    assert response.status_code == 413


def test_the_form_needs_csrf_and_a_login(client):
    response = client.post("/library/import", data={"ids": "2503.15783"})
    assert response.status_code in (302, 400)
    register(client, "alice")
    response = client.post("/library/import", data={"ids": "2503.15783"})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)


def test_imports_are_rate_limited_per_user(make_app):
    app = make_app(RATELIMIT_ENABLED=True, IMPORTS_PER_USER=(2, 3600))
    client = app.test_client()
    register(client, "alice")
    codes = [upload(client, "", b"", ids="2503.15783").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


# --- fetching missing papers ---------------------------------------------------------------------------------
def test_missing_papers_are_fetched_up_to_the_cap_and_the_rest_explained(fetching_app, fake, arxiv_api_fixtures):
    answer = recorded(arxiv_api_fixtures, ID_1605)
    fake.add(answer["url"], answer)
    client = fetching_app.test_client()
    register(client, "alice")
    page = upload(client, "ids.txt", b"2503.15783\n1605.08386\nastro-ph/0601001\n").get_data(as_text=True)
    shown = text(page)
    assert "1 matched, 1 fetched from arXiv" in shown and "1 not fetched" in shown
    assert "a web import fetches at most 1 missing papers at a time: import the same file again" in shown
    assert "1 fetched paper will appear in feeds" in shown
    assert "Heat-bath random walks with Markov bases" in shown  # the fetched paper's real title
    library = text(client.get("/library").get_data(as_text=True))
    assert "Heat-bath random walks with Markov bases" in library  # tagged, though not in the features yet


def test_api_import_json_and_multipart(fetching_app, fake, arxiv_api_fixtures):
    answer = recorded(arxiv_api_fixtures, ID_ASTRO)
    fake.add(answer["url"], answer)
    client = fetching_app.test_client()
    token = register(client, "alice")
    response = send(client, "POST", "/api/library/import", token,
                    json={"text": "astro-ph/0601001v1\n2503.15783\n", "tag": "list"})
    assert response.status_code == 200, response.json
    report = response.json
    assert report["counts"] == {"matched": 1, "fetched": 1, "not_found": 0, "not_fetched": 0, "not_on_arxiv": 0,
                                "malformed": 0}
    assert report["tagged"] == {"list": 2} and report["unindexed"] == 1 and report["complete"]
    secret = send(client, "POST", "/api/tokens", token, json={"name": "script"}).json["token"]
    response = client.post("/api/library/import", headers=bearer(secret), content_type="multipart/form-data",
                           data={"file": (io.BytesIO((FIXTURES / "zotero.rdf").read_bytes()), "My Library.rdf"),
                                 "tag": "zotero"})
    assert response.status_code == 200, response.json
    assert response.json["format"] == "zotero-rdf"
    assert response.json["tagged"] == {"zotero": 2, "LLM agents": 1, "Games - RL": 1, "Galaxies": 1}


@pytest.mark.parametrize("body,message", [
    ({}, "text is required"), ({"text": ""}, "text is required"), ({"text": "2503.15783", "tag": 3}, "tag must be"),
    ({"text": "2503.15783", "format": "endnote"}, "format one of"), ({"text": "x", "collections": "yes"}, "boolean"),
    ({"text": "2503.15783", "tag": "bad/tag"}, "tag must be"), ({"text": "[1, 2"}, "not valid JSON"),
])
def test_api_bad_input_is_400(client, body, message):
    token = register(client, "alice")
    response = send(client, "POST", "/api/library/import", token, json=body)
    assert response.status_code == 400 and message in response.json["message"]


def test_api_import_over_a_limit_is_409_and_changes_nothing(make_app):
    app = make_app()
    client = app.test_client()
    token = register(client, "alice")
    many = "\n".join(f"@misc{{k{i}, title={{t}}, eprint={{2503.15783}}, archivePrefix={{arXiv}}, groups={{g{i}}}}}"
                     for i in range(60))
    response = send(client, "POST", "/api/library/import", token, json={"text": many})
    assert response.status_code == 409 and "limit of 50 tags" in response.json["message"]
    assert client.get("/api/tags").json["tags"] == []
