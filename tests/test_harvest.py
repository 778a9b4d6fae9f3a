"""recommender.harvest.oaipmh and ``paperfeed harvest``, offline.

Responses are OAI-PMH 2.0 ``ListRecords`` pages built by tests/oaipmh.py from real arXiv records
(../shared/arxiv: the Kaggle-format sample with real licenses and versions, and .abs files with full
version histories). The library tests use test_arxiv_api's fake transport and fake clock (sleeps are
recorded, never slept); the CLI tests run ``jobs.cli.main`` against a real HTTP server on 127.0.0.1
reached through the ``oai_base_url`` setting.
"""
from __future__ import annotations

import dataclasses
import json
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from recommender.corpus.papers import paper_from_kaggle
from recommender.corpus.store import PaperStore
from recommender.harvest import oaipmh
from recommender.harvest.arxiv_api import MAX_WAIT_S
from tests import oaipmh as build
from tests.httpserver import LoopbackServer
from tests.conftest import require_shared, run_cli
from test_arxiv_api import FakeArxiv, FakeClock

DAY1 = "2026-07-02T12:00:00Z"
DAY2 = "2026-07-09T08:30:00Z"
ABS = ["math/papers/0202/0202001.abs", "physics/papers/9707/9707012.abs", "ao-sci/papers/9502/9502001.abs"]


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def records():
    return build.load_records(require_shared("arxiv/fixtures/kaggle_format/arxiv-metadata-snapshot-sample.jsonl"))


@pytest.fixture(scope="module")
def abs_records():
    root = require_shared("arxiv/fixtures/abs")
    return [build.record_from_abs(root / name) for name in ABS]


@pytest.fixture
def fake():
    adapter = FakeArxiv()
    yield adapter
    adapter.assert_all_used()


@pytest.fixture
def session(fake):
    s = requests.Session()
    s.mount("https://", fake)
    return s


@pytest.fixture
def clock():
    return FakeClock()


def url(**params) -> str:
    return f"{oaipmh.OAI_URL}?{urlencode(params)}"


def first(spec="cs", fmt="arXiv", **extra) -> str:
    return url(verb="ListRecords", metadataPrefix=fmt, **({"set": spec} if spec else {}), **extra)


def resume(token: str) -> str:
    return url(verb="ListRecords", resumptionToken=token)


def pages(records, size=20, fmt="arXiv", date=DAY1, prefix="t"):
    """The records as consecutive ListRecords pages: (token that asks for page i or None, body)."""
    chunks = [records[i:i + size] for i in range(0, len(records), size)]
    out = []
    for i, chunk in enumerate(chunks):
        token = f"{prefix}{i + 1}" if i + 1 < len(chunks) else None
        out.append(build.ok(build.page([build.record(r, fmt) for r in chunk], token=token, cursor=i * size,
                                       complete=len(records), last=token is None and len(chunks) > 1,
                                       response_date=date)))
    return out


def register(fake, bodies, spec="cs", fmt="arXiv", prefix="t", **extra):
    fake.add(first(spec, fmt, **extra), bodies[0])
    for i, body in enumerate(bodies[1:], start=1):
        fake.add(resume(f"{prefix}{i}"), body)


def harvest(settings, session, clock, sets=("cs",), **kw):
    with PaperStore(settings.papers_path) as store:
        return oaipmh.harvest(store, settings, sets, session=session, sleep=clock.sleep, clock=clock.monotonic,
                              **kw)


def stored(settings) -> dict:
    with PaperStore(settings.papers_path, readonly=True) as store:
        return {p.id: p for p in store.iter_papers()}


def state(settings) -> dict:
    return json.loads((settings.data_dir / oaipmh.STATE_FILE).read_text(encoding="utf-8"))["sets"]


def expected(rec, fmt="arXiv"):
    """What import makes of the same record; the arXiv format carries no version numbers (v2 at most)."""
    if fmt == "arXivRaw":
        return paper_from_kaggle({**rec, "authors_parsed": None})  # arXivRaw has the author string only
    paper = paper_from_kaggle(rec)
    return dataclasses.replace(paper, version=min(paper.version, 2))


# --- paging and parsing -----------------------------------------------------------------------
def test_pages_with_resumption_tokens_import_every_record_as_import_would(records, settings, session, fake, clock):
    register(fake, pages(records))
    result = harvest(settings, session, clock)
    [cs] = result.sets
    assert (cs.pages, cs.added, cs.updated, cs.unchanged, cs.skipped, cs.deleted) == (3, 49, 0, 0, 0, 0)
    assert cs.complete and cs.next_from == "2026-07-02"
    papers = stored(settings)
    assert papers == {r["id"]: expected(r) for r in records}
    assert state(settings) == {"cs": {"datestamp": "2026-07-02"}}  # no token left behind
    assert [c["timeout"] for c in fake.calls] == [settings.fetch_timeout] * 3
    assert all("paperfeed" in c["headers"]["User-Agent"] for c in fake.calls)


def test_arxivraw_carries_every_version(records, abs_records, settings, session, fake, clock):
    recs = records[:10] + abs_records
    register(fake, pages(recs, size=7, fmt="arXivRaw"), fmt="arXivRaw")
    result = harvest(settings, session, clock, fmt="arXivRaw")
    assert result.sets[0].added == 13
    papers = stored(settings)
    assert papers == {r["id"]: expected(r, "arXivRaw") for r in recs}
    assert papers["math/0202001"].version == 4 and papers["math/0202001"].published == "2002-02-01"


def test_arxiv_format_never_lowers_a_known_version(abs_records, settings, session, fake, clock):
    rec = abs_records[0]  # math/0202001, v4
    with PaperStore(settings.papers_path) as store:
        store.upsert_many([paper_from_kaggle(rec)])
    changed = {**rec, "journal-ref": rec["journal-ref"] + " (corrected)"}
    fake.add(first("math"), build.ok(build.page([build.record(rec), build.record(changed)])))
    [math] = harvest(settings, session, clock, sets=["math"]).sets
    assert (math.unchanged, math.updated) == (1, 1)
    paper = stored(settings)["math/0202001"]
    assert paper.version == 4 and paper.journal_ref.endswith("(corrected)")


def test_several_sets_and_all_of_arxiv(records, settings, session, fake, clock):
    fake.add(first("cs"), build.ok(build.page([build.record(records[2])])))
    fake.add(first("physics:hep-th"), build.ok(build.error_page("noRecordsMatch")))
    fake.add(first(None), build.ok(build.page([build.record(r) for r in records[:5]])))
    result = harvest(settings, session, clock, sets=["cs", "physics:hep-th", oaipmh.ALL])
    assert [(s.set, s.added, s.unchanged) for s in result.sets] == [("cs", 1, 0), ("physics:hep-th", 0, 0),
                                                                    ("", 4, 1)]
    assert set(state(settings)) == {"cs", "physics:hep-th", ""}
    assert result.to_dict()["added"] == 5


@pytest.mark.parametrize("spec", ["cs", "math", "stat", "q-bio", "physics", "physics:hep-th", "physics:astro-ph"])
def test_set_names(spec):
    assert oaipmh.check_set(spec) == spec


@pytest.mark.parametrize("spec", ["", "cs LG", "CS", "cs;drop", "physics:hep-th:x:y", "cs\n"])
def test_bad_set_names(spec):
    with pytest.raises(ValueError, match="is not an arXiv OAI-PMH set"):
        oaipmh.check_set(spec)


# --- incremental ------------------------------------------------------------------------------
def test_rerun_starts_from_the_stored_date_and_from_overrides_it(records, settings, session, fake, clock):
    register(fake, pages(records[:10], size=5))
    harvest(settings, session, clock)
    changed = {**records[0], "comments": "v2 of the comments"}
    fake.add(first(**{"from": "2026-07-02"}),
             build.ok(build.page([build.record(changed), build.record(records[1])], response_date=DAY2)))
    [cs] = harvest(settings, session, clock).sets
    assert (cs.from_date, cs.updated, cs.unchanged, cs.next_from) == ("2026-07-02", 1, 1, "2026-07-09")
    assert stored(settings)[records[0]["id"]].comments == "v2 of the comments"
    fake.add(first(**{"from": "2025-01-01"}), build.ok(build.error_page("noRecordsMatch", "nothing", DAY2)))
    [cs] = harvest(settings, session, clock, from_date="2025-01-01").sets
    assert (cs.from_date, cs.pages, cs.changed) == ("2025-01-01", 1, 0)


def test_no_records_match_is_nothing_new_not_an_error(settings, session, fake, clock):
    fake.add(first(), build.ok(build.error_page("noRecordsMatch", "No records match", DAY2)))
    [cs] = harvest(settings, session, clock).sets
    assert cs.complete and cs.changed == 0 and cs.next_from == "2026-07-09"


def test_until_is_a_window_that_leaves_the_stored_date_alone(records, settings, session, fake, clock):
    fake.add(first(**{"from": "2022-01-01", "until": "2022-12-31"}),
             build.ok(build.page([build.record(records[0])])))
    [cs] = harvest(settings, session, clock, from_date="2022-01-01", until="2022-12-31").sets
    assert cs.added == 1 and cs.next_from is None
    assert state(settings) == {"cs": {}}


# --- resumable --------------------------------------------------------------------------------
def test_a_kill_mid_harvest_resumes_from_the_stored_token(records, settings, session, fake, clock):
    bodies = pages(records)
    fake.add(first(), bodies[0])
    fake.add(resume("t1"), bodies[1])
    fake.add(resume("t2"), KeyboardInterrupt())  # killed while asking for page 3
    with pytest.raises(KeyboardInterrupt):
        harvest(settings, session, clock)
    assert len(stored(settings)) == 40
    saved = state(settings)["cs"]["resume"]
    assert (saved["token"], saved["pages"], saved["format"], saved["from"]) == ("t2", 2, "arXiv", None)
    fake.add(resume("t2"), bodies[2])
    [cs] = harvest(settings, session, clock).sets
    assert cs.resumed and (cs.pages, cs.added, cs.unchanged) == (1, 9, 0)
    assert stored(settings) == {r["id"]: expected(r) for r in records}  # every record exactly once
    assert state(settings) == {"cs": {"datestamp": "2026-07-02"}}


def test_a_kill_between_the_papers_and_the_token_refetches_one_page(records, settings, session, fake, clock,
                                                                     monkeypatch):
    bodies = pages(records)
    fake.add(first(), bodies[0])
    fake.add(resume("t1"), bodies[1])
    real_save, calls = oaipmh.HarvestState.save, []

    def dies_on_second_save(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_save(self)

    monkeypatch.setattr(oaipmh.HarvestState, "save", dies_on_second_save)
    with pytest.raises(KeyboardInterrupt):
        harvest(settings, session, clock)  # page 2's papers are in, its token is not
    monkeypatch.setattr(oaipmh.HarvestState, "save", real_save)
    assert len(stored(settings)) == 40 and state(settings)["cs"]["resume"]["token"] == "t1"
    fake.add(resume("t1"), bodies[1])  # page 2 again: already stored, so nothing changes twice
    fake.add(resume("t2"), bodies[2])
    [cs] = harvest(settings, session, clock).sets
    assert (cs.pages, cs.added, cs.unchanged) == (2, 9, 20)
    assert len(stored(settings)) == 49


def test_other_options_drop_an_unfinished_harvest(records, settings, session, fake, clock):
    bodies = pages(records)
    fake.add(first(), bodies[0])
    fake.add(resume("t1"), KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        harvest(settings, session, clock)
    fake.add(first(fmt="arXivRaw"), build.ok(build.error_page("noRecordsMatch")))
    [cs] = harvest(settings, session, clock, fmt="arXivRaw").sets
    assert not cs.resumed and "dropped an unfinished harvest" in cs.notes[0]
    assert "resume" not in state(settings)["cs"]


def test_a_refused_token_restarts_from_the_harvests_from_date(records, settings, session, fake, clock):
    bodies = pages(records)
    fake.add(first(**{"from": "2020-01-01"}), bodies[0])
    fake.add(resume("t1"), KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        harvest(settings, session, clock, from_date="2020-01-01")
    fake.add(resume("t1"), build.ok(build.error_page("badResumptionToken", "The token has expired")))
    register(fake, bodies, **{"from": "2020-01-01"})
    [cs] = harvest(settings, session, clock).sets
    assert cs.complete and cs.resumed and (cs.added, cs.unchanged) == (29, 20)
    assert any("refused the resumption token (The token has expired): restarted from 2020-01-01" in n
               for n in cs.notes)
    assert state(settings) == {"cs": {"datestamp": "2026-07-02"}}


def test_a_token_refused_twice_is_an_error(records, settings, session, fake, clock):
    bodies = pages(records)
    fake.add(first(), bodies[0])
    fake.add(resume("t1"), build.ok(build.error_page("badResumptionToken")))
    fake.add(first(), bodies[0])
    fake.add(resume("t1"), build.ok(build.error_page("badResumptionToken")))
    with pytest.raises(oaipmh.HarvestError, match="refused a resumption token again") as info:
        harvest(settings, session, clock)
    assert info.value.result.sets[0].pages == 2


# --- flow control, timeouts, broken pages -----------------------------------------------------
def test_503_retry_after_is_obeyed(records, settings, session, fake, clock):
    bodies = pages(records)
    fake.add(first(), bodies[0])
    fake.add(resume("t1"), {"status_code": 503, "body": "Retry after 120 seconds",
                            "headers": {"Retry-After": "120", "Content-Type": "text/plain"}}, bodies[1])
    fake.add(resume("t2"), {"status_code": 503, "body": "", "headers": {"Retry-After": "86400"}}, bodies[2])
    [cs] = harvest(settings, session, clock).sets
    assert cs.added == 49
    assert clock.sleeps == [120.0, MAX_WAIT_S]  # waited as told, capped; fetch_delay is 0 here


def test_503_for_ever_gives_up_keeping_earlier_pages(records, settings, session, fake, clock):
    bodies = pages(records)
    fake.add(first(), bodies[0])
    fake.add(resume("t1"), *[{"status_code": 503, "body": "", "headers": {"Retry-After": "10"}}] * 5)
    with pytest.raises(oaipmh.HarvestError, match=r"failed 5 times \(HTTP 503\)") as info:
        harvest(settings, session, clock)
    assert info.value.result.sets[0].added == 20 and len(stored(settings)) == 20
    assert state(settings)["cs"]["resume"]["token"] == "t1"
    assert clock.sleeps == [10.0, 10.0, 20.0, 40.0]  # Retry-After, or the backoff when that is longer


def test_a_timeout_is_retried_and_every_request_has_one(records, settings, session, fake, clock):
    fake.add(first(), requests.exceptions.ReadTimeout("read timed out"), *pages(records[:3]))
    [cs] = harvest(settings, session, clock).sets
    assert cs.added == 3 and clock.sleeps == [5.0]
    assert [c["timeout"] for c in fake.calls] == [settings.fetch_timeout] * 2


def test_requests_are_paced_by_fetch_delay(records, settings, session, fake, clock):
    settings = dataclasses.replace(settings, fetch_delay=3.0)
    register(fake, pages(records))
    harvest(settings, session, clock)
    assert clock.sleeps == [3.0, 3.0]


@pytest.mark.parametrize("broken", [
    pytest.param(lambda body: build.ok(body[:len(body) // 2]), id="truncated"),
    pytest.param(lambda body: {"status_code": 200, "body": "<html><body>Service maintenance</body></html>",
                               "headers": {"Content-Type": "text/html"}}, id="html"),
    pytest.param(lambda body: build.ok("<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'/>"),
                 id="wrong-root"),
    pytest.param(lambda body: build.ok(body.replace("<responseDate>2026-07-02T12:00:00Z</responseDate>",
                                                    "<responseDate>yesterday</responseDate>")), id="bad-date"),
])
def test_a_bad_page_commits_nothing_from_that_page(records, settings, session, fake, clock, broken):
    bodies = pages(records)
    fake.add(first(), bodies[0])
    fake.add(resume("t1"), *[broken(bodies[1]["body"])] * 5)
    with pytest.raises(oaipmh.HarvestError, match="failed 5 times") as info:
        harvest(settings, session, clock)
    assert "nothing from that page was saved" in str(info.value)
    assert set(stored(settings)) == {r["id"] for r in records[:20]}


def test_a_bad_page_once_is_retried(records, settings, session, fake, clock):
    bodies = pages(records)
    fake.add(first(), build.ok(bodies[0]["body"][:500]), bodies[0])
    fake.add(resume("t1"), bodies[1])
    fake.add(resume("t2"), bodies[2])
    assert harvest(settings, session, clock).sets[0].added == 49


@pytest.mark.parametrize("code", ["badArgument", "cannotDisseminateFormat", "noSetHierarchy"])
def test_an_oai_error_stops_at_once(settings, session, fake, clock, code):
    fake.add(first(), build.ok(build.error_page(code, "explained")))
    with pytest.raises(oaipmh.HarvestError, match=f"refused the request: {code}: explained"):
        harvest(settings, session, clock)
    assert len(fake.calls) == 1


def test_a_repeated_token_stops_the_loop(records, settings, session, fake, clock):
    fake.add(first(), build.ok(build.page([build.record(records[0])], token="same")))
    fake.add(resume("same"), build.ok(build.page([build.record(records[1])], token="same")))
    with pytest.raises(oaipmh.HarvestError, match="same resumption token twice"):
        harvest(settings, session, clock)


# --- deleted and bad records ------------------------------------------------------------------
def test_deleted_records_are_not_imported_and_stored_ones_are_kept(records, settings, session, fake, clock):
    with PaperStore(settings.papers_path) as store:
        store.upsert_many([paper_from_kaggle(records[0])])
    fake.add(first(), build.ok(build.page([build.deleted_record(records[0]["id"], "2026-07-01"),
                                           build.record(records[2]),
                                           build.deleted_record("2501.00001", "2026-07-01")])))
    [cs] = harvest(settings, session, clock).sets
    assert (cs.added, cs.deleted, cs.deleted_kept) == (1, 2, 1)
    assert cs.deleted_ids == [records[0]["id"], "2501.00001"] and cs.deleted_kept_ids == [records[0]["id"]]
    assert set(stored(settings)) == {records[0]["id"], records[2]["id"]}


def test_a_bad_record_is_skipped_and_reported_never_sinking_the_page(records, settings, session, fake, clock):
    ns = build.META_NS["arXiv"]
    no_title = build.arxiv_metadata(records[1])
    no_title.find(f"{{{ns}}}title").text = "  "
    bad_date = build.arxiv_metadata(records[3])
    bad_date.find(f"{{{ns}}}created").text = "2022-13-45"
    bad_id = build.arxiv_metadata(records[4])
    bad_id.find(f"{{{ns}}}id").text = "not-an-id"
    elements = [build.record(records[0]), build.record(records[1], metadata=no_title),
                build.record(records[2], metadata=False), build.record(records[3], metadata=bad_date),
                build.record(records[4], metadata=bad_id), build.record(records[6])]
    body = build.page(elements)
    fake.add(first(), build.ok(body))
    [cs] = harvest(settings, session, clock).sets
    assert (cs.added, cs.skipped) == (2, 4)
    reasons = {s.entry_id: s.reason for s in cs.skipped_records}
    assert reasons == {
        f"oai:arXiv.org:{records[1]['id']}": f"{records[1]['id']}: empty title",
        f"oai:arXiv.org:{records[2]['id']}": "record has no <arXiv> metadata",
        f"oai:arXiv.org:{records[3]['id']}": f"{records[3]['id']}: published 2022-13-45 is not a calendar date",
        f"oai:arXiv.org:{records[4]['id']}": reasons[f"oai:arXiv.org:{records[4]['id']}"],
    }
    assert "is not an arXiv id" in reasons[f"oai:arXiv.org:{records[4]['id']}"]
    assert set(stored(settings)) == {records[0]["id"], records[6]["id"]}


def test_a_corrupt_state_file_is_a_clear_error(settings):
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / oaipmh.STATE_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="harvest state .* is unreadable .* delete it"):
        oaipmh.HarvestState(settings.data_dir / oaipmh.STATE_FILE)


# --- the command, against a real HTTP server on 127.0.0.1 ------------------------------------
class OaiServer(LoopbackServer):
    """Answers ListRecords requests from a table keyed by the query; records every query it gets."""

    def __init__(self):
        self.answers: dict[tuple, tuple[int, str]] = {}
        self.queries: list[dict] = []
        super().__init__(self._answer, "/oai", "text/xml;charset=UTF-8")

    def _answer(self, path: str) -> tuple[int, str]:
        query = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
        self.queries.append(query)
        return self.answers.get(tuple(sorted(query.items())), (404, "no such page"))

    def add(self, body: str, status: int = 200, **query) -> None:
        self.answers[tuple(sorted(query.items()))] = (status, body)


@pytest.fixture
def oai_server(monkeypatch):
    server = OaiServer()
    monkeypatch.setenv("PAPERFEED_OAI_BASE_URL", server.url)
    monkeypatch.setenv("PAPERFEED_FETCH_DELAY", "0")
    monkeypatch.setenv("PAPERFEED_CONFIG", "/dev/null")  # no instance config file
    yield server
    server.close()


def test_cli_harvest_exit_codes_and_json(records, settings, oai_server, capsys):
    bodies = pages(records)
    oai_server.add(bodies[0]["body"], verb="ListRecords", metadataPrefix="arXiv", set="cs")
    oai_server.add(bodies[1]["body"], verb="ListRecords", resumptionToken="t1")
    oai_server.add(bodies[2]["body"], verb="ListRecords", resumptionToken="t2")
    code, out, err = run_cli(["harvest", "--set", "cs", "--json"], settings, capsys)
    assert code == 0, err
    report = json.loads(out)
    assert {k: report[k] for k in ("pages", "added", "updated", "unchanged", "deleted", "skipped")} == \
        {"pages": 3, "added": 49, "updated": 0, "unchanged": 0, "deleted": 0, "skipped": 0}
    assert report["sets"][0]["set"] == "cs" and report["sets"][0]["next_from"] == "2026-07-02"

    oai_server.add(build.error_page("noRecordsMatch", "none", DAY2), verb="ListRecords", metadataPrefix="arXiv",
                   set="cs", **{"from": "2026-07-02"})
    code, out, err = run_cli(["harvest", "--set", "cs"], settings, capsys)
    assert code == 1, err
    assert oai_server.queries[-1]["from"] == "2026-07-02"
    assert "cs (arXiv, from 2026-07-02): 1 page(s): 0 added" in out and "next harvest starts from 2026-07-09" in out


def test_cli_harvest_error_is_one_line_and_keeps_earlier_pages(records, settings, oai_server, capsys):
    bodies = pages(records)
    oai_server.add(bodies[0]["body"], verb="ListRecords", metadataPrefix="arXiv", set="math")
    oai_server.add(build.error_page("badArgument", "Illegal argument"), verb="ListRecords", resumptionToken="t1")
    code, out, err = run_cli(["harvest", "-s", "math", "--format", "arXiv"], settings, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paperfeed harvest: error: the OAI-PMH service refused the "
                                                   "request: badArgument: Illegal argument")
    assert "kept 1 earlier page(s): 20 added" in lines[0]


@pytest.mark.parametrize("argv,message", [
    ([], "one of the arguments -s/--set --all is required"),
    (["--set", "cs LG"], "is not an arXiv OAI-PMH set"),
    (["--all", "--set", "cs"], "not allowed with argument"),
    (["--set", "cs", "--from", "2025-13-01"], "is not a date like 2025-03-18"),
    (["--set", "cs", "--format", "oai_dc"], "invalid choice"),
])
def test_cli_bad_arguments_exit_2(settings, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        run_cli(["harvest", *argv], settings, capsys)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_cli_harvest_with_no_server_fails_at_once(settings, capsys, monkeypatch):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PAPERFEED_OAI_BASE_URL", f"http://127.0.0.1:{port}/oai")
    monkeypatch.setenv("PAPERFEED_CONFIG", "/dev/null")
    code, out, err = run_cli(["harvest", "--all"], settings, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paperfeed harvest: error: cannot reach the OAI-PMH service")
