"""Hostile library files never crash the importers; every entry ends in exactly one report bucket.

Hypothesis builds BibTeX, CSL JSON, Zotero RDF and id lists from real fixture entries (tests/fixtures/library)
cut, spliced and sprinkled with arbitrary text (lone surrogates, NUL, unbalanced braces, LaTeX, odd ids and
URLs), plus arbitrary bytes. The only exception :func:`formats.parse` may raise is :class:`FormatError`
(one clear message for the whole file); otherwise every entry has a key and exactly one of an arXiv id
(valid by :func:`parse_arxiv_id`), an error, or neither (not on arXiv). :func:`import_entries` on what was
parsed files each entry in exactly one bucket, and the counts add up. Examples are fixed (``derandomize``).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recommender.accounts.users import UserStore
from recommender.corpus.ids import parse_arxiv_id
from recommender.corpus.store import PaperStore
from recommender.library import formats, importing
from recommender.library.formats import FormatError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "library"
PROPERTY = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
EXAMPLES = 300

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)  # surrogates and NUL included
NASTY = st.sampled_from(["{", "}", "@", "\\", "\"", ",", "=", "$", "%", "#", "\x00", "\ud800", "\\\"{o}", "\\&",
                         "{\\em x}", "$\\alpha$", "\\textsc{", "@string{a = \"b\"}", "@comment{", "arXiv:",
                         "arxiv.org/abs/", "10.48550/arXiv.", "2503.15783", "2503.1578", "hep-th/9901001v3",
                         "9999.99999", "1605.08386v" + "9" * 30, "\n", "\r\n", "<", "&", "]]>", "\ufeff"])
PIECES = st.lists(NASTY | ANY_TEXT, max_size=12).map("".join)
IDS = (st.from_regex(r"\A[0-9]{4}\.[0-9]{4,6}(v[0-9]{1,6})?\Z")
       | st.from_regex(r"\A[a-z-]{1,9}(\.[A-Z]{2})?/[0-9]{6,8}(v[0-9]{1,4})?\Z") | ANY_TEXT)
FIELD_NAMES = st.sampled_from(["title", "eprint", "archivePrefix", "eprinttype", "arxivId", "url", "doi", "journal",
                               "note", "howpublished", "number", "groups", "mendeley-groups", "author", "x"])


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


BIB_SOURCES = [fixture(n) for n in ("zotero.bib", "zotero-better-bibtex.bib", "mendeley.bib", "google-scholar.bib",
                                    "arxiv.bib")]


@st.composite
def bibtex(draw) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 3))
        if kind == 0:  # a real entry, cut or spliced
            source = draw(st.sampled_from(BIB_SOURCES))
            a, b = sorted(draw(st.lists(st.integers(0, len(source)), min_size=2, max_size=2)))
            parts.append(source[a:b] if draw(st.booleans()) else source)
        elif kind == 1:  # a generated entry with hostile fields
            fields = draw(st.lists(st.tuples(FIELD_NAMES, IDS | PIECES), max_size=6))
            body = ", ".join(f"{k} = {{{v}}}" if draw(st.booleans()) else f'{k} = "{v}"' for k, v in fields)
            parts.append(f"@{draw(st.sampled_from(['misc', 'article', 'online', 'book', 'x']))}"
                         f"{{{draw(PIECES)}, {body}}}")
        else:
            parts.append(draw(PIECES))
    return "\n".join(parts)


@st.composite
def csl_json(draw) -> str:
    items = draw(st.lists(st.dictionaries(
        st.sampled_from(["id", "title", "URL", "DOI", "number", "note", "citation-key", "type", "arxiv"]) | ANY_TEXT,
        IDS | PIECES | st.integers() | st.none() | st.lists(ANY_TEXT, max_size=2), max_size=6)
        | st.integers() | st.none() | ANY_TEXT, max_size=6))
    text = json.dumps(items, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        text = fixture("zotero-csl.json")
    cut = draw(st.integers(0, len(text)))
    return text if draw(st.integers(0, 3)) else text[:cut]


@st.composite
def rdf(draw) -> str:
    source = fixture("zotero.rdf")
    if draw(st.booleans()):
        title = draw(PIECES).replace("<", "&lt;").replace("&", "&amp;") if draw(st.booleans()) else draw(PIECES)
        source = source.replace("Galaxies", title).replace("2504.15237", draw(IDS).replace("<", "&lt;"))
    cut = draw(st.integers(0, len(source)))
    return source if draw(st.booleans()) else source[:cut] + draw(PIECES)


ID_LIST = st.lists(IDS | PIECES | IDS.map(lambda i: f"https://arxiv.org/pdf/{i}.pdf"), max_size=15).map("\n".join)
FILES = (bibtex() | csl_json() | rdf() | ID_LIST).map(lambda t: t.encode("utf-8", "surrogatepass")) | st.binary()


def check_entries(parsed: formats.Parsed) -> None:
    assert parsed.format in formats.FORMATS
    for entry in parsed.entries:
        assert isinstance(entry.key, str) and entry.key and isinstance(entry.title, str)
        assert not (entry.arxiv_id and entry.error), entry
        if entry.arxiv_id:
            assert parse_arxiv_id(entry.arxiv_id) == (entry.arxiv_id, None)
        for text in (entry.key, entry.title, entry.error or "", *entry.collections):
            text.encode("utf-8")  # no lone surrogate reaches a report or a page
        json.dumps(entry.to_dict())


@given(data=FILES, name=st.sampled_from([None, "x.bib", "x.json", "x.rdf", "x.txt", "x.pdf"]),
       fmt=st.sampled_from([None, None, *formats.FORMATS]))
@settings(max_examples=EXAMPLES * 3, **PROPERTY)
def test_hostile_files_parse_or_fail_with_one_clear_error(data, name, fmt):
    try:
        parsed = formats.parse(data, filename=name, fmt=fmt, max_entries=50)
    except FormatError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message
        message.encode("utf-8")
        return
    check_entries(parsed)


@pytest.fixture
def stores(tmp_path):
    with PaperStore(tmp_path / "papers.sqlite") as papers, UserStore(tmp_path / "users.sqlite") as users:
        yield papers, users, users.add_user("alice", "x")


@given(data=bibtex() | csl_json() | rdf() | ID_LIST, tag=st.sampled_from([None, "t", "reading list"]))
@settings(max_examples=EXAMPLES, **PROPERTY)
def test_every_entry_ends_in_exactly_one_bucket_and_counts_add_up(stores, data, tag):
    papers, users, user = stores
    try:
        parsed = formats.parse(data.encode("utf-8", "surrogatepass"), max_entries=50)
    except FormatError:
        return

    def offline(ids):
        from recommender.harvest.arxiv_api import Offline
        raise Offline("no network in this test")

    report = importing.import_entries(papers, users, user, parsed, tag=tag, fetch=offline)
    assert report.entries == len(parsed.entries) == sum(report.counts.values())
    with_id = sum(1 for e in parsed.entries if e.arxiv_id)
    assert len(report.not_fetched) == with_id  # the store is empty and arXiv unreachable
    assert len(report.malformed) == sum(1 for e in parsed.entries if e.error)
    assert report.tagged == {} and users.tags(user.id) == {}
    json.dumps(report.to_dict())
