"""Issue 9: no arXiv API page, however hostile, escapes the Atom parser as anything but a clean error.

:func:`recommender.harvest.arxiv_api.parse_feed` turns a body into (totalResults, entries) or raises a
``ValueError`` (``BrokenPage``, ``QueryRejected``); :func:`~recommender.harvest.arxiv_api.papers_from_entries`
turns every entry into a valid, storable paper or skips it with a reason. Through
``ArxivFetcher.fetch`` the only failure is a ``FetchError``.

Hypothesis mutates the real recorded responses of the shared fixtures: field text replaced by
arbitrary text (raw or as character references, lone surrogates and NUL included), odd dates
(years 1 to 9999, any UTC offset), wrong ids and counts, deleted elements, entity tricks
(billion laughs, external and parameter entities, undefined entities) and byte damage. The
examples are fixed (``derandomize``).
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import re
from pathlib import Path
from xml.sax.saxutils import escape

import arxiv
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from recommender.harvest.arxiv_api import (MAX_SHOWN_ID, ArxivFetcher, BrokenPage, FetchError, QueryRejected, parse_feed,
                                   papers_from_entries)
from recommender.corpus.papers import MAX_DATE, MIN_DATE, Paper
from recommender.corpus.store import PaperStore

PAGE_EXAMPLES = 2500
FETCH_EXAMPLES = 300
PROPERTY = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SECRET = "paperfeed-secret-marker-7d1f"  # the content of a local file that entities try to pull in
EMPTY_FEED = ('<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
              'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">'
              '<opensearch:totalResults>0</opensearch:totalResults></feed>')


@functools.cache
def recorded_bodies(folder: Path) -> tuple[str, ...]:
    """Every recorded feed but the 230 kB one (100 entries: slow, and nothing the 10-entry pages lack).

    Checked first, so that no property holds vacuously: each parses whole, or is arXiv's error feed.
    """
    bodies = []
    for path in sorted(folder.iterdir()):
        body = path.read_text(encoding="utf-8") if path.suffix == ".xml" else json.loads(path.read_text())["body"]
        if len(body) < 100_000:
            parsed = parse_page(body.encode("utf-8"))
            assert ("arxiv.org/api/errors" in body) if parsed is None else \
                (len(parsed[0]), parsed[1]) == (body.count("<entry>"), []), path.name
            bodies.append(body)
    assert len(bodies) > 20
    return tuple(bodies)


# --- strategies -------------------------------------------------------------------------------
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=24)  # surrogates, NUL, U+FFFE included
OFFSETS = st.integers(-1439, 1439).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
DATES = (st.builds(lambda when, tz: when.replace(tzinfo=tz).isoformat(), st.datetimes(), OFFSETS)
         | st.datetimes().map(lambda when: when.isoformat() + "Z")
         | st.from_regex(r"\A[0-9]{1,5}-[0-9]{1,2}-[0-9]{1,2}(T[0-9:]{1,8})?Z?\Z") | ANY_TEXT)
IDS = (st.from_regex(r"\A[0-9]{4}\.[0-9]{4,6}(v[0-9]{1,6})?\Z")
       | st.from_regex(r"\A[a-z-]{1,9}(\.[A-Z]{2})?/[0-9]{6,8}(v[0-9]{1,4})?\Z")
       | ANY_TEXT).map(lambda pid: "http://arxiv.org/abs/" + pid) | ANY_TEXT
COUNTS = st.integers(-5, 10**30).map(str) | st.just("9" * 5000) | ANY_TEXT
TAGS = {"published": DATES, "updated": DATES, "id": IDS, "opensearch:totalResults": COUNTS, "title": ANY_TEXT,
        "summary": ANY_TEXT, "name": ANY_TEXT, "arxiv:comment": ANY_TEXT, "arxiv:journal_ref": ANY_TEXT,
        "arxiv:doi": ANY_TEXT}


def _as_xml_text(text: str, char_refs: bool) -> str:
    """Escaped text; with ``char_refs`` every non-ASCII or control character as ``&#x...;``, valid in XML or not."""
    text = escape(text)
    if char_refs:
        text = "".join(c if " " <= c <= "~" else f"&#x{ord(c):x};" for c in text)
    return text


def _element(tag: str) -> re.Pattern:
    return re.compile(rf"(<{tag}(?:\s[^>]*)?>)(.*?)(</{tag}>)", re.DOTALL)


@st.composite
def replace_text(draw, body: str) -> str:
    tag = draw(st.sampled_from(sorted(TAGS)))
    found = list(_element(tag).finditer(body))
    if not found:
        return body
    match = draw(st.sampled_from(found))
    text = _as_xml_text(draw(TAGS[tag]), draw(st.booleans()))
    return body[:match.start(2)] + text + body[match.end(2):]


@st.composite
def replace_term(draw, body: str) -> str:
    found = list(re.finditer(r'term="([^"]*)"', body))
    if not found:
        return body
    match = draw(st.sampled_from(found))
    return body[:match.start(1)] + _as_xml_text(draw(ANY_TEXT), draw(st.booleans())).replace('"', "&quot;") \
        + body[match.end(1):]


@st.composite
def delete_element(draw, body: str) -> str:
    tag = draw(st.sampled_from(sorted(TAGS)))
    found = list(_element(tag).finditer(body))
    if not found:
        return body
    match = draw(st.sampled_from(found))
    return body[:match.start()] + body[match.end():]


@st.composite
def entity_trick(draw, body: str, secret_file: str) -> str:
    """A DOCTYPE defining entities (nested expansion, external, parameter), used in a field or an attribute."""
    depth, fan, size = draw(st.integers(1, 9)), draw(st.integers(1, 12)), draw(st.integers(1, 64))
    defs = [f'<!ENTITY e0 "{"x" * size}">'] + [f'<!ENTITY e{i} "{f"&e{i - 1};" * fan}">' for i in range(1, depth + 1)]
    defs += [f'<!ENTITY file SYSTEM "file://{secret_file}">', '<!ENTITY net SYSTEM "http://127.0.0.1:9/x">',
             f'<!ENTITY % param SYSTEM "file://{secret_file}">']
    if draw(st.booleans()):
        defs.append("%param;")
    name = draw(st.sampled_from([f"e{depth}", "e0", "file", "net", "undefined"]))
    root = body.index("<feed")
    body = body[:root] + f"<!DOCTYPE feed [{''.join(defs)}]>" + body[root:]
    if draw(st.booleans()):
        return re.sub(r'term="[^"]*"', f'term="&{name};"', body, count=1)
    tag = draw(st.sampled_from(["title", "summary", "id", "published", "name"]))
    match = _element(tag).search(body)
    return body if match is None else body[:match.start(2)] + f"&{name};" + body[match.start(2):]


@st.composite
def damage_bytes(draw, raw: bytes) -> bytes:
    choice = draw(st.sampled_from(("cut", "insert", "encoding")))
    at = draw(st.integers(0, len(raw)))
    if choice == "cut":
        return raw[:max(at, len(raw) // 3)]
    if choice == "insert":
        return raw[:at] + draw(st.binary(min_size=1, max_size=6)) + raw[at:]
    encoding = draw(st.sampled_from(["UTF-16", "ISO-8859-1", "bogus-encoding", "EBCDIC-US", "UTF-32"]))
    return re.sub(rb"encoding=['\"][^'\"]*['\"]", b'encoding="' + encoding.encode() + b'"', raw, count=1)


@functools.cache
def hostile_bodies(folder: Path, secret_file: str) -> st.SearchStrategy[bytes]:
    """A real recorded body with one to four mutations; encoded with lone surrogates kept as raw bytes."""
    @st.composite
    def body(draw) -> bytes:
        text = draw(st.sampled_from(recorded_bodies(folder)))
        for _ in range(draw(st.integers(1, 4))):
            mutate = draw(st.sampled_from((replace_text, replace_text, replace_term, delete_element, "entities")))
            text = draw(entity_trick(text, secret_file) if mutate == "entities" else mutate(text))
        raw = text.encode("utf-8", "surrogatepass")
        return draw(damage_bytes(raw)) if draw(st.integers(0, 4)) == 0 else raw

    return body()


# --- checks -----------------------------------------------------------------------------------
def assert_storable(paper: Paper) -> None:
    """Valid on its own terms, and survives the store's JSON-in-UTF-8 round trip unchanged."""
    stored = json.dumps(paper.to_dict(), ensure_ascii=False).encode("utf-8")
    assert Paper.from_dict(json.loads(stored)) == paper
    assert MIN_DATE.isoformat() <= paper.published <= MAX_DATE.isoformat()
    assert MIN_DATE.isoformat() <= paper.updated <= MAX_DATE.isoformat()
    assert SECRET not in stored.decode("utf-8"), "an external entity was resolved"


def parse_page(body: bytes) -> tuple[list[Paper], list] | None:
    """Papers and skips of one body, or None for a clean ``ValueError``; anything else fails the test."""
    try:
        total, entries = parse_feed(body)
    except (BrokenPage, QueryRejected) as exc:
        assert str(exc)
        return None
    assert 0 <= total < 10**9
    papers, skipped = papers_from_entries(entries)
    assert len(papers) + len(skipped) == len(entries)
    for paper in papers:
        assert_storable(paper)
    for skip in skipped:
        assert skip.reason and len(skip.entry_id) <= MAX_SHOWN_ID and SECRET not in skip.reason
    return papers, skipped


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(SECRET)
    return str(path)


# --- properties -------------------------------------------------------------------------------
@settings(max_examples=PAGE_EXAMPLES, **PROPERTY)
@given(data=st.data())
def test_any_page_gives_valid_papers_clean_skips_or_a_clean_value_error(arxiv_api_fixtures, secret_file, data):
    parse_page(data.draw(hostile_bodies(arxiv_api_fixtures, secret_file), label="body"))


class _Serve(BaseAdapter):
    """The given body for the first request, then an empty feed (so paging always ends)."""

    def __init__(self, body: bytes):
        super().__init__()
        self.bodies = [body]

    def send(self, request, **kwargs):
        resp = requests.Response()
        resp.status_code, resp._content = 200, self.bodies.pop(0) if self.bodies else EMPTY_FEED.encode()
        resp.headers = CaseInsensitiveDict({"Content-Type": "application/atom+xml; charset=utf-8"})
        resp.url, resp.request = request.url, request
        return resp

    def close(self):
        pass


def _fetch(body: bytes, store: PaperStore):
    session = requests.Session()
    session.mount("https://", _Serve(body))
    fetcher = ArxivFetcher(session, delay=0.0, retries=0, page_size=1000, sleep=pytest.fail)
    return fetcher.fetch(store, arxiv.Search(query="all:electron"))


HEAT_BATH = "id_1605.08386_s0_m100_199195aa31ad.json"
LAUGHS = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
NAMED_PAGES = {  # name: (replacements in the recorded body, what the skip reason or the FetchError says)
    "year 9999 west of UTC": ([("<published>2016-05-26T17:59:46Z", "<published>9999-12-31T23:59:59-01:00")],
                              "unreadable date in entry: date value out of range"),
    "year 1 east of UTC": ([("<updated>2016-05-26T17:59:46Z", "<updated>0001-01-01T00:00:00+01:00")],
                           "unreadable date in entry: date value out of range"),
    "year 9999": ([("<published>2016-05-26T17:59:46Z", "<published>9999-12-31T00:00:00Z")],
                  "published 9999-12-31 is outside 1980-01-01..2099-12-31"),
    "not a date": ([("<published>2016-05-26T17:59:46Z", "<published>yesterday")], "unreadable date in entry"),
    "no published": ([("<published>2016-05-26T17:59:46Z</published>", "")], "entry has no <published>"),
    "wrong id": ([("<id>http://arxiv.org/abs/1605.08386v1", "<id>http://arxiv.org/abs/hello")], "is not an arXiv id"),
    "5000-digit version": ([("<id>http://arxiv.org/abs/1605.08386v1",
                             "<id>http://arxiv.org/abs/1605.08386v" + "9" * 5000)], "is not an arXiv id"),
    "category with a space": ([('<category term="math.ST"', '<category term="math ST"')],
                              "a category is empty or contains whitespace"),
    "external entity only": ([("<?xml version='1.0' encoding='UTF-8'?>", "<?xml version='1.0' encoding='UTF-8'?>"
                               '<!DOCTYPE feed [<!ENTITY file SYSTEM "file://{secret}">]>'),
                              ("<title>Heat-bath", "<title>&file;")], "empty title"),
    "lone surrogate as a character reference": ([("<title>Heat-bath", "<title>Heat&#xD800;bath")],
                                                "not well-formed XML"),
    "lone surrogate as raw bytes": ([("<title>Heat-bath", "<title>Heat\ud800bath")], "not well-formed XML"),
    "NUL character reference": ([("<title>Heat-bath", "<title>Heat&#0;bath")], "not well-formed XML"),
    "billion laughs": ([("<?xml version='1.0' encoding='UTF-8'?>",
                         f"<?xml version='1.0' encoding='UTF-8'?><!DOCTYPE feed [<!ENTITY l0 \"lol\">{LAUGHS}]>"),
                        ("<title>Heat-bath", "<title>&l9;")], "amplification"),
    "1000-deep nesting": ([("<title>Heat-bath", "<title>" + "<x>" * 1000 + "</x>" * 1000)], "Excessive depth"),
    "11 MB text node": ([("<summary>Graphs", "<summary>" + "x" * 11_000_000)], "not well-formed XML"),
    "5000-digit totalResults": ([("<opensearch:totalResults>1<", "<opensearch:totalResults>" + "9" * 5000 + "<")],
                                "no opensearch:totalResults"),
    "not a feed": ([("<feed ", "<html "), ("</feed>", "</html>")], "<html> document instead of an Atom feed"),
}


@pytest.mark.parametrize("name", NAMED_PAGES)
def test_named_hostile_pages_are_skipped_or_refused_with_a_reason(arxiv_api_fixtures, secret_file, settings, name):
    replacements, reason = NAMED_PAGES[name]
    body = json.loads((arxiv_api_fixtures / HEAT_BATH).read_text())["body"]
    for old, new in replacements:
        assert body.count(old) == 1, old
        body = body.replace(old, new.replace("{secret}", secret_file))
    with PaperStore(settings.papers_path) as store:
        try:
            result = _fetch(body.encode("utf-8", "surrogatepass"), store)
        except FetchError as exc:
            assert reason in str(exc) and "failed 1 times" in str(exc)
            assert len(store) == 0
            return
        assert (result.added, len(store)) == (0, 0)
        skip, = result.skipped
        assert skip.entry_id.startswith("http://arxiv.org/abs/") and len(skip.entry_id) <= MAX_SHOWN_ID
        assert reason in skip.reason and SECRET not in skip.reason


@settings(max_examples=FETCH_EXAMPLES, **PROPERTY)
@given(data=st.data())
def test_fetch_commits_valid_papers_or_fails_with_a_fetch_error(arxiv_api_fixtures, secret_file, tmp_path_factory,
                                                                 data):
    body = data.draw(hostile_bodies(arxiv_api_fixtures, secret_file), label="body")
    expected = parse_page(body)
    folder = tmp_path_factory.getbasetemp() / "fetch_property"  # one store for all examples: creating one is slow
    folder.mkdir(exist_ok=True)
    with PaperStore(folder / "papers.sqlite") as store:
        try:
            result = _fetch(body, store)
        except FetchError as exc:
            assert expected is None or "short page" in str(exc), str(exc)
            return
    assert expected is not None
    papers, skipped = expected
    assert result.added + result.updated + result.unchanged == len(papers)
    assert result.skipped == skipped
