"""recommender.harvest.arxiv_api against recorded arXiv API responses, fully offline.

Responses are served by ``FakeArxiv``, a requests adapter mounted on the
session, keyed by the request's query parameters. Every registered response
must be consumed: the ``fake`` fixture fails the test otherwise.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import arxiv
import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from recommender.harvest import arxiv_api
from recommender.harvest.arxiv_api import ArxivFetcher, FetchError, RateLimiter, retry_after_seconds
from recommender.corpus.papers import Paper
from recommender.corpus.store import PaperStore

ERRORS = Path(__file__).parent / "fixtures" / "arxiv_api_errors"
ATOM = "application/atom+xml; charset=utf-8"

S0 = "q_testing_s0_m10_bc5a6c384fe9.json"
S10 = "q_testing_s10_m10_34e56e15aaac.json"
S20 = "q_testing_s20_m10_348a237fecab.json"
S0_M100 = "q_testing_s0_m100_cfe7536492ca.json"
ID_1605 = "id_1605.08386_s0_m100_199195aa31ad.json"
ID_ABC = "id_abc_s0_m100_b79c8dcf6bc3.json"


# --- fake transport ---------------------------------------------------------------------------
def _key(url: str) -> tuple:
    parts = urlsplit(url)
    return parts.netloc, parts.path, frozenset(parse_qsl(parts.query, keep_blank_values=True))


def recorded(folder: Path, name: str) -> dict:
    """A shared recorded response ``{url, status_code, body}``."""
    return json.loads((folder / name).read_text(encoding="utf-8"))


def derived_body(spec: dict, folder: Path) -> str:
    """The body of an error fixture, deriving it from a shared response when it says so."""
    if "body" in spec:
        return spec["body"]
    body = recorded(folder, spec["body_from"])["body"]
    for old, new in spec.get("replace", []):
        assert body.count(old) == 1, f"{old!r} must occur once in {spec['body_from']}"
        body = body.replace(old, new)
    if "keep_entries" in spec:
        cut = body.index("<entry>")
        for _ in range(spec["keep_entries"]):
            cut = body.index("<entry>", cut + 1)
        body = body[:cut].rstrip() + "\n</feed>\n"
    if "truncate_bytes" in spec:
        body = body.encode("utf-8")[:spec["truncate_bytes"]].decode("utf-8", "ignore")
    return body


def error_fixture(name: str, folder: Path) -> dict:
    spec = json.loads((ERRORS / f"{name}.json").read_text(encoding="utf-8"))
    return {"status_code": spec["status_code"], "headers": spec.get("headers", {}), "body": derived_body(spec, folder)}


class FakeArxiv(BaseAdapter):
    """Answers registered URLs in order; anything unregistered fails the test."""

    def __init__(self):
        super().__init__()
        self.routes: dict[tuple, list] = {}
        self.calls: list[dict] = []

    def add(self, url: str, *responses) -> None:
        """Queue responses (dicts with status_code/body/headers, or exceptions to raise) for ``url``."""
        self.routes.setdefault(_key(url), []).extend(responses)

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.calls.append({"url": request.url, "timeout": timeout, "headers": dict(request.headers)})
        queue = self.routes.get(_key(request.url))
        if not queue:
            raise AssertionError(f"unexpected request (unregistered or used up): {request.url}")
        item = queue.pop(0)
        if isinstance(item, BaseException):
            raise item
        resp = requests.Response()
        resp.status_code = item["status_code"]
        resp._content = item["body"].encode("utf-8")
        resp.headers = CaseInsensitiveDict(item.get("headers") or {"Content-Type": ATOM})
        resp.url, resp.request, resp.encoding = request.url, request, "utf-8"
        return resp

    def close(self):
        pass

    def unused(self) -> list[str]:
        return [f"{dict(params)} x{len(q)}" for (_, _, params), q in self.routes.items() if q]

    def assert_all_used(self) -> None:
        assert not self.unused(), f"registered responses never requested: {self.unused()}"


class FakeClock:
    """Monotonic time that only moves when slept on; records every sleep."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the limiter must not sleep for nothing"
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake():
    adapter = FakeArxiv()
    yield adapter
    adapter.assert_all_used()


@pytest.fixture
def session(fake):
    s = requests.Session()
    s.mount("https://", fake)
    s.mount("http://", fake)
    return s


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(settings):
    with PaperStore(settings.papers_path) as s:
        yield s


def make_fetcher(session, clock, settings, **kw) -> ArxivFetcher:
    kw.setdefault("delay", settings.fetch_delay)
    kw.setdefault("retries", settings.fetch_retries)
    return ArxivFetcher(session, timeout=settings.fetch_timeout, sleep=clock.sleep, clock=clock.monotonic, **kw)


def query_testing(max_results) -> arxiv.Search:
    return arxiv.Search(query="testing", max_results=max_results)


def stored_ids(store) -> set[str]:
    return {p.id for p in store.iter_papers()}


def entry_ids(body: str) -> set[str]:
    """Versionless ids of a recorded feed's entries, read without our code."""
    feed = arxiv._feed.parse(body.encode("utf-8"))
    return {r.get_short_id().rsplit("v", 1)[0] for r in feed.results}


# --- the fake itself --------------------------------------------------------------------------
def test_fake_transport_flags_unused_and_unregistered(arxiv_api_fixtures, session, fake):
    rec = recorded(arxiv_api_fixtures, ID_1605)
    fake.add(rec["url"], rec)
    with pytest.raises(AssertionError, match="never requested"):
        fake.assert_all_used()
    with pytest.raises(AssertionError, match="unexpected request"):
        session.get(rec["url"].replace("1605.08386", "1605.08387"), timeout=1)
    assert session.get(rec["url"], timeout=1).status_code == 200


# --- query building ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,search,start,size", [
    (ID_1605, arxiv.Search(id_list=["1605.08386"]), 0, 100),
    ("id_astro-ph_0601001_s0_m100_3150dca9dc76.json", arxiv.Search(id_list=["astro-ph/0601001"]), 0, 100),
    (S10, arxiv.Search(query="testing"), 10, 10),
])
def test_page_url_is_the_url_the_arxiv_client_recorded(arxiv_api_fixtures, name, search, start, size):
    assert arxiv_api.page_url(search, start, size) == recorded(arxiv_api_fixtures, name)["url"]


def test_category_search_sorts_by_submission_newest_first():
    params = dict(parse_qsl(urlsplit(arxiv_api.page_url(arxiv_api.category_search(["cs.LG", "stat.ML"]), 0, 50)).query,
                            keep_blank_values=True))
    assert params == {"search_query": "cat:cs.LG OR cat:stat.ML", "id_list": "", "sortBy": "submittedDate",
                      "sortOrder": "descending", "start": "0", "max_results": "50"}
    default = arxiv_api.category_search().query
    assert default == "cat:cs.LG OR cat:cs.CL OR cat:cs.CV OR cat:cs.AI OR cat:cs.NE OR cat:stat.ML"


@pytest.mark.parametrize("cats", [[], ["cs.LG) OR (all:x"], ["cs LG"], ["cat:cs.LG"]])
def test_category_search_rejects_bad_categories(cats):
    with pytest.raises(ValueError, match="category"):
        arxiv_api.category_search(cats)


# --- rate limiting and Retry-After ------------------------------------------------------------
def test_rate_limiter_spaces_requests_on_the_monotonic_clock(clock):
    limiter = RateLimiter(3.0, clock=clock.monotonic, sleep=clock.sleep)
    limiter.wait()
    assert clock.sleeps == []
    clock.now += 1.0  # a request that took one second
    limiter.wait()
    assert clock.sleeps == [2.0]
    clock.now += 5.0
    limiter.wait()
    assert clock.sleeps == [2.0]
    limiter.defer(10.0)
    limiter.wait()
    assert clock.sleeps == [2.0, 10.0]


@pytest.mark.parametrize("value,expected", [
    ("7", 7.0), ("0", 0.0), ("100000", 300.0),
    ("Thu, 01 Jan 2026 00:01:30 GMT", 90.0), ("Wed, 31 Dec 2025 23:00:00 GMT", 0.0),
    ("soon", None), ("", None), (None, None), ("\u0663", None), ("-5", None),
])
def test_retry_after_seconds(value, expected):
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    assert retry_after_seconds(value, now=now) == expected


# --- parsing known answers --------------------------------------------------------------------
def fetch_ids(arxiv_api_fixtures, session, fake, clock, settings, store, name, ids):
    rec = recorded(arxiv_api_fixtures, name)
    fake.add(rec["url"], rec)
    return make_fetcher(session, clock, settings).fetch(store, arxiv.Search(id_list=ids))


def test_known_answer_heat_bath_paper(arxiv_api_fixtures, session, fake, clock, settings, store):
    result = fetch_ids(arxiv_api_fixtures, session, fake, clock, settings, store, ID_1605, ["1605.08386"])
    assert (result.pages, result.added, result.updated, result.unchanged, result.skipped) == (1, 1, 0, 0, [])
    paper = store.get("1605.08386")
    assert paper.id == "1605.08386" and paper.version == 1
    assert paper.title == "Heat-bath random walks with Markov bases"
    assert paper.categories == ("math.CO", "math.ST")
    assert paper.authors == ("Caprice Stanley", "Tobias Windisch")
    assert paper.comments == "20 pages, 3 figures"
    assert paper.abstract.startswith("Graphs on lattice points are studied") and paper.abstract.endswith("fixed dimension.")
    assert (paper.published, paper.updated, paper.journal_ref, paper.doi) == ("2016-05-26", "2016-05-26", None, None)


def test_refetching_the_same_paper_changes_nothing(arxiv_api_fixtures, session, fake, clock, settings, store):
    fetch_ids(arxiv_api_fixtures, session, fake, clock, settings, store, ID_1605, ["1605.08386"])
    again = fetch_ids(arxiv_api_fixtures, session, fake, clock, settings, store, ID_1605, ["1605.08386"])
    assert (again.added, again.updated, again.unchanged, again.changed) == (0, 0, 1, 0)


def test_old_style_id_with_journal_ref(arxiv_api_fixtures, session, fake, clock, settings, store):
    fetch_ids(arxiv_api_fixtures, session, fake, clock, settings, store,
              "id_astro-ph_0601001_s0_m100_3150dca9dc76.json", ["astro-ph/0601001"])
    paper = store.get("astro-ph/0601001")
    assert (paper.id, paper.version, paper.categories) == ("astro-ph/0601001", 1, ("astro-ph",))
    assert paper.journal_ref == "ActaAstron.56:1-50,2006"
    assert paper.authors == ("Andrew Gould", "Susan Dorsher", "B. Scott Gaudi", "Andrzej Udalski")
    assert paper.abstract.startswith("We derive the frequencies")  # leading spaces cleaned


@pytest.mark.parametrize("name,ids,pid,title", [
    ("id_quant-ph_0201082v1_s0_m100_86989fe779ef.json", ["quant-ph/0201082v1"], "quant-ph/0201082", None),
    ("id_2104.12255v1_s0_m100_6ae69987ffe1.json", ["2104.12255v1"], "2104.12255", "0"),
])
def test_versioned_ids_are_stored_without_version(arxiv_api_fixtures, session, fake, clock, settings, store,
                                                  name, ids, pid, title):
    fetch_ids(arxiv_api_fixtures, session, fake, clock, settings, store, name, ids)
    assert stored_ids(store) == {pid}
    paper = store.get(pid)
    assert paper.version == 1
    if title is not None:
        assert paper.title == title and paper.categories == ("cs.CR",)


def test_id_list_with_a_missing_paper(arxiv_api_fixtures, session, fake, clock, settings, store):
    result = fetch_ids(arxiv_api_fixtures, session, fake, clock, settings, store,
                       "id_0808.05394_1707.08567_s0_m100_42e5aa0ec3af.json", ["0808.05394", "1707.08567"])
    assert (result.pages, result.added) == (1, 1)
    paper = store.get("1707.08567")
    assert len(paper.authors) == 34 and paper.authors[0] == "Kees A. Schouhamer Immink"


def test_empty_feed_is_a_finished_fetch(arxiv_api_fixtures, session, fake, clock, settings, store):
    result = fetch_ids(arxiv_api_fixtures, session, fake, clock, settings, store,
                       "id_0000.0000_s0_m100_8b51d9633a68.json", ["0000.0000"])
    assert (result.pages, result.added, len(store)) == (1, 0, 0)


def test_api_error_feed_fails_at_once_with_arxivs_message(arxiv_api_fixtures, session, fake, clock, settings, store):
    with pytest.raises(FetchError, match="HTTP 400: incorrect id format for abc") as info:
        fetch_ids(arxiv_api_fixtures, session, fake, clock, settings, store, ID_ABC, ["abc"])
    assert len(fake.calls) == 1 and clock.sleeps == []  # a refused query is not retried
    assert info.value.result.pages == 0


def test_unparseable_entries_are_skipped_and_reported(arxiv_api_fixtures, session, fake, clock, settings, store):
    rec = recorded(arxiv_api_fixtures, S0)
    fake.add(rec["url"], error_fixture("bad_entries", arxiv_api_fixtures))
    result = make_fetcher(session, clock, settings, page_size=10).fetch(store, query_testing(10))
    assert result.added == 8
    assert [s.entry_id for s in result.skipped] == ["http://arxiv.org/abs/1213.4527v1", "http://arxiv.org/abs/1205.1866v1"]
    assert "month 13" in result.skipped[0].reason and "<published>" in result.skipped[1].reason
    assert stored_ids(store) == entry_ids(rec["body"]) - {"1202.4527", "1205.1866"}
    assert result.to_dict()["skipped"][1] == {"id": "http://arxiv.org/abs/1205.1866v1", "reason": "entry has no <published>"}


def test_primary_category_comes_first(arxiv_api_fixtures, session, fake, clock, settings, store):
    # arXiv happens to list the primary first; the Paper must not depend on that.
    rec = recorded(arxiv_api_fixtures, ID_1605)
    body = derived_body({"body_from": ID_1605, "replace": [
        ['<arxiv:primary_category term="math.CO"/>', '<arxiv:primary_category term="math.ST"/>']]}, arxiv_api_fixtures)
    fake.add(rec["url"], {"status_code": 200, "body": body})
    make_fetcher(session, clock, settings).fetch(store, arxiv.Search(id_list=["1605.08386"]))
    assert store.get("1605.08386").categories == ("math.ST", "math.CO")


def test_error_feed_with_status_200_is_refused_too(arxiv_api_fixtures, session, fake, clock, settings, store):
    rec = recorded(arxiv_api_fixtures, ID_ABC)
    fake.add(rec["url"], {**rec, "status_code": 200})  # how the API answered errors before it used 400
    with pytest.raises(FetchError, match="rejected the query: incorrect id format for abc"):
        make_fetcher(session, clock, settings).fetch(store, arxiv.Search(id_list=["abc"]))
    assert len(fake.calls) == 1 and len(store) == 0


def test_snapshot_license_survives_a_refetch(arxiv_api_fixtures, session, fake, clock, settings, store):
    store.upsert_many([Paper(id="1605.08386", version=1, title="Heat-bath random walks with Markov bases",
                             abstract="old", published="2016-05-26", updated="2016-05-26",
                             license="http://arxiv.org/licenses/nonexclusive-distrib/1.0/")])
    result = fetch_ids(arxiv_api_fixtures, session, fake, clock, settings, store, ID_1605, ["1605.08386"])
    paper = store.get("1605.08386")
    assert result.updated == 1 and paper.abstract.startswith("Graphs on lattice")
    assert paper.license == "http://arxiv.org/licenses/nonexclusive-distrib/1.0/"


# --- paging -----------------------------------------------------------------------------------
def register_pages(fake, folder, *names):
    bodies = []
    for name in names:
        rec = recorded(folder, name)
        fake.add(rec["url"], rec)
        bodies.append(rec["body"])
    return bodies


def test_pages_are_fetched_in_order_rate_limited_with_timeouts(arxiv_api_fixtures, session, fake, clock, settings, store):
    bodies = register_pages(fake, arxiv_api_fixtures, S0, S10, S20)
    seen = []
    result = make_fetcher(session, clock, settings, page_size=10, delay=3.0).fetch(
        store, query_testing(30), progress=lambda done, total: seen.append((done, total)))
    assert [dict(parse_qsl(urlsplit(c["url"]).query))["start"] for c in fake.calls] == ["0", "10", "20"]
    assert clock.sleeps == [3.0, 3.0]
    assert [c["timeout"] for c in fake.calls] == [settings.fetch_timeout] * 3
    assert all(c["headers"]["User-Agent"].startswith("paperfeed") for c in fake.calls)
    assert seen == [(10, 30), (20, 30), (30, 30)]
    assert (result.pages, result.added) == (3, 30)
    assert stored_ids(store) == set().union(*map(entry_ids, bodies))
    assert (store.get("2409.05654").version, store.get("2005.14124").version) == (9, 2)
    assert store.get("2409.05654").updated == "2025-05-08" and store.get("2409.05654").published == "2024-09-09"


def test_max_results_cuts_the_last_page(arxiv_api_fixtures, session, fake, clock, settings, store):
    bodies = register_pages(fake, arxiv_api_fixtures, S0, S10, S20)
    result = make_fetcher(session, clock, settings, page_size=10).fetch(store, query_testing(25))
    assert (result.pages, result.added, len(store)) == (3, 25, 25)
    assert entry_ids(bodies[0]) | entry_ids(bodies[1]) <= stored_ids(store)


def test_since_keeps_new_or_updated_papers_and_stops_paging(arxiv_api_fixtures, session, fake, clock, settings, store):
    register_pages(fake, arxiv_api_fixtures, S0)  # S10 is not registered: a second request would fail
    result = make_fetcher(session, clock, settings, page_size=10).fetch(
        store, query_testing(30), since=dt.date(2020, 6, 1))
    # 2005.14124 was submitted 2020-05-28 but updated 2020-07-16, so it is kept.
    assert stored_ids(store) == {"2202.12139", "2405.13786", "2005.14124", "2204.08348", "2302.03287",
                                 "2503.05378", "2502.07719"}
    assert result.pages == 1


def test_since_before_every_paper_on_the_page_keeps_paging(arxiv_api_fixtures, session, fake, clock, settings, store):
    register_pages(fake, arxiv_api_fixtures, S0, S10)
    result = make_fetcher(session, clock, settings, page_size=10).fetch(
        store, query_testing(20), since=dt.date(2012, 1, 1))
    assert (result.pages, result.added) == (2, 20)


# --- retries and broken pages -----------------------------------------------------------------
def test_429_honours_retry_after_seconds(arxiv_api_fixtures, session, fake, clock, settings, store):
    rec = recorded(arxiv_api_fixtures, ID_1605)
    fake.add(rec["url"], error_fixture("429_retry_after_seconds", arxiv_api_fixtures), rec)
    result = make_fetcher(session, clock, settings).fetch(store, arxiv.Search(id_list=["1605.08386"]))
    assert clock.sleeps == [7.0]  # Retry-After 7 beats the first 5 s backoff
    assert result.added == 1


def test_429_retry_after_http_date_is_capped(arxiv_api_fixtures, session, fake, clock, settings, store):
    rec = recorded(arxiv_api_fixtures, ID_1605)
    fake.add(rec["url"], error_fixture("429_retry_after_date", arxiv_api_fixtures), rec)
    make_fetcher(session, clock, settings).fetch(store, arxiv.Search(id_list=["1605.08386"]))
    assert clock.sleeps == [arxiv_api.MAX_WAIT_S]


def test_503_backs_off_exponentially_then_succeeds(arxiv_api_fixtures, session, fake, clock, settings, store):
    rec = recorded(arxiv_api_fixtures, ID_1605)
    fake.add(rec["url"], *[error_fixture("503_service_unavailable", arxiv_api_fixtures)] * settings.fetch_retries, rec)
    result = make_fetcher(session, clock, settings, delay=3.0).fetch(store, arxiv.Search(id_list=["1605.08386"]))
    assert settings.fetch_retries == 4
    assert clock.sleeps == [5.0, 10.0, 20.0, 40.0]
    assert result.added == 1 and len(fake.calls) == 5


def test_503_every_time_fails_with_a_clear_error(arxiv_api_fixtures, session, fake, clock, settings, store):
    rec = recorded(arxiv_api_fixtures, ID_1605)
    fake.add(rec["url"], *[error_fixture("503_service_unavailable", arxiv_api_fixtures)] * 5)
    with pytest.raises(FetchError, match=r"failed 5 times \(HTTP 503\).*try again later"):
        make_fetcher(session, clock, settings).fetch(store, arxiv.Search(id_list=["1605.08386"]))
    assert clock.sleeps == [5.0, 10.0, 20.0, 40.0] and len(store) == 0


def test_connection_errors_and_timeouts_are_retried(arxiv_api_fixtures, session, fake, clock, settings, store):
    rec = recorded(arxiv_api_fixtures, ID_1605)
    fake.add(rec["url"], requests.ConnectionError("reset"), requests.ReadTimeout("slow"), rec)
    result = make_fetcher(session, clock, settings).fetch(store, arxiv.Search(id_list=["1605.08386"]))
    assert clock.sleeps == [5.0, 10.0] and result.added == 1
    assert [c["timeout"] for c in fake.calls] == [settings.fetch_timeout] * 3


def test_timeouts_every_time_say_so(arxiv_api_fixtures, session, fake, clock, settings, store):
    rec = recorded(arxiv_api_fixtures, ID_1605)
    fake.add(rec["url"], requests.ConnectTimeout("x"), requests.ReadTimeout("y"))
    with pytest.raises(FetchError, match=f"no answer within {settings.fetch_timeout:g} s"):
        make_fetcher(session, clock, settings, retries=1).fetch(store, arxiv.Search(id_list=["1605.08386"]))


@pytest.mark.parametrize("fixture,reason", [
    ("truncated_atom", "not well-formed XML, probably truncated"),
    ("short_page", "short page: 4 entries where 10 were expected"),
    ("html_error_page", "HTML page"),
    ("html_labelled_atom", "<html> document instead of an Atom feed"),
])
def test_a_broken_page_commits_nothing_and_keeps_earlier_pages(arxiv_api_fixtures, session, fake, clock, settings,
                                                               store, fixture, reason):
    first, = register_pages(fake, arxiv_api_fixtures, S0)
    fake.add(recorded(arxiv_api_fixtures, S10)["url"], *[error_fixture(fixture, arxiv_api_fixtures)] * 3)
    fetcher = make_fetcher(session, clock, settings, page_size=10, retries=2)
    with pytest.raises(FetchError, match="failed 3 times") as info:
        fetcher.fetch(store, query_testing(30))
    assert reason in str(info.value) and "nothing from that page was saved" in str(info.value)
    assert stored_ids(store) == entry_ids(first)
    assert (info.value.result.pages, info.value.result.added) == (1, 10)


def test_truncated_page_would_fool_the_arxiv_parser(arxiv_api_fixtures):
    # Why the strict check exists: arxiv's recover-mode parser returns the entries before the cut.
    body = error_fixture("truncated_atom", arxiv_api_fixtures)["body"].encode("utf-8")
    feed = arxiv._feed.parse(body)
    assert not feed.malformed and 0 < len(feed.results) < 10


def test_broken_pages_then_a_good_retry(arxiv_api_fixtures, session, fake, clock, settings, store):
    bodies = register_pages(fake, arxiv_api_fixtures, S0)
    bad = [error_fixture(n, arxiv_api_fixtures) for n in ("truncated_atom", "short_page", "html_error_page")]
    fake.add(recorded(arxiv_api_fixtures, S10)["url"], *bad)
    bodies += register_pages(fake, arxiv_api_fixtures, S10, S20)
    result = make_fetcher(session, clock, settings, page_size=10).fetch(store, query_testing(30))
    assert clock.sleeps == [5.0, 10.0, 20.0]
    assert (result.pages, result.added) == (3, 30)
    assert stored_ids(store) == set().union(*map(entry_ids, bodies))
    assert all(c["timeout"] == settings.fetch_timeout for c in fake.calls) and len(fake.calls) == 6


def test_fetch_new_creates_its_own_session_when_none_is_given(monkeypatch, arxiv_api_fixtures, fake, settings, store):
    created = []

    class Session(requests.Session):
        def __init__(self):
            super().__init__()
            self.mount("https://", fake)
            created.append(self)

        def close(self):
            created.append("closed")
            super().close()

    rec = recorded(arxiv_api_fixtures, S0_M100)
    url = arxiv_api.page_url(arxiv_api.category_search(["cs.LG"]), 0, arxiv_api.PAGE_SIZE)
    fake.add(url, rec)
    monkeypatch.setattr(arxiv_api.requests, "Session", Session)
    result = arxiv_api.fetch_new(store, settings, ["cs.LG"], max_results=5, sleep=pytest.fail)
    assert result.added == 5 and created[-1] == "closed" and len(created) == 2


def test_no_network_fails_at_once_without_retrying(arxiv_api_fixtures, session, fake, clock, settings, store):
    """Issue 10: offline, `fetch` fails within one attempt and says what to do instead."""
    from urllib3.exceptions import MaxRetryError, NameResolutionError

    from recommender.harvest.arxiv_api import Offline

    rec = recorded(arxiv_api_fixtures, ID_1605)
    refused = requests.ConnectionError(MaxRetryError(None, rec["url"], NameResolutionError("export.arxiv.org", None,
                                                                                           "Name or service not known")))
    fake.add(rec["url"], refused)
    with pytest.raises(Offline, match=r"cannot reach the arXiv API .*paperfeed import FILE.*shipped with Paperfeed"):
        make_fetcher(session, clock, settings, retries=3).fetch(store, arxiv.Search(id_list=["1605.08386"]))
    assert len(fake.calls) == 1 and len(store) == 0
