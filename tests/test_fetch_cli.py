"""jobs.fetch: argument validation, output and exit codes, offline.

``run`` is called directly (not through ``jobs.cli.main``) with the fake
transport of test_arxiv_api mounted on the session it is given.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json

import pytest
import requests

from jobs import fetch
from recommender.harvest import arxiv_api
from recommender.corpus.store import PaperStore
from test_arxiv_api import FakeArxiv, error_fixture, recorded

S0_M100 = "q_testing_s0_m100_cfe7536492ca.json"
LONG_AGO = dt.date(1990, 1, 1)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="paperfeed fetch")
    parser.add_argument("--json", action="store_true")  # as jobs.cli's common options do
    fetch.add_arguments(parser)
    return parser.parse_args(argv)


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
def sleeps():
    return []


def cs_lg_url(start: int = 0) -> str:
    return arxiv_api.page_url(arxiv_api.category_search(["cs.LG"]), start, arxiv_api.PAGE_SIZE)


def run(args, settings, session, sleeps) -> int:
    return fetch.run(args, settings, session=session, sleep=sleeps.append)


# --- arguments --------------------------------------------------------------------------------
def test_arguments_parse():
    args = parse("-c", "cs.LG", "--category", "stat.ML", "--since", "2025-03-18", "--max-results", "40")
    assert (args.category, args.since, args.max_results) == (["cs.LG", "stat.ML"], dt.date(2025, 3, 18), 40)
    assert (parse().category, parse().since, parse().max_results) == (None, None, None)


@pytest.mark.parametrize("argv,message", [
    (["--since", "2025-13-01"], "is not a date like 2025-03-18"),
    (["--since", "18/03/2025"], "is not a date like 2025-03-18"),
    (["--since", "20250318"], "is not a date like 2025-03-18"),
    (["--max-results", "0"], "is not a positive whole number"),
    (["--max-results", "-3"], "is not a positive whole number"),
    (["--max-results", "ten"], "is not a positive whole number"),
    (["-c", "cs LG"], "is not an arXiv category"),
])
def test_bad_arguments_exit_2_with_a_clear_message(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        parse(*argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# --- exit codes and output --------------------------------------------------------------------
def test_new_papers_exit_0_with_json(arxiv_api_fixtures, settings, session, fake, sleeps, capsys):
    fake.add(cs_lg_url(), recorded(arxiv_api_fixtures, S0_M100))
    args = argparse.Namespace(category=["cs.LG"], since=LONG_AGO, max_results=5, json=True)
    assert run(args, settings, session, sleeps) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {"added": 5, "updated": 0, "unchanged": 0, "pages": 1, "skipped": [], "not_found": []}
    with PaperStore(settings.papers_path, readonly=True) as store:
        assert len(store) == 5
    assert fake.calls[0]["timeout"] == settings.fetch_timeout and sleeps == []


def test_nothing_new_exits_1_with_a_summary(arxiv_api_fixtures, settings, session, fake, sleeps, capsys):
    rec = recorded(arxiv_api_fixtures, S0_M100)
    fake.add(cs_lg_url(), rec, rec)
    args = argparse.Namespace(category=["cs.LG"], since=LONG_AGO, max_results=5, json=False)
    assert run(args, settings, session, sleeps) == 0
    capsys.readouterr()
    assert run(args, settings, session, sleeps) == 1
    assert capsys.readouterr().out.strip() == "fetched 1 page(s): 0 added, 0 updated, 5 unchanged, 0 skipped"


def test_unavailable_api_exits_2_with_one_line(arxiv_api_fixtures, settings, session, fake, sleeps, capsys):
    fake.add(cs_lg_url(), *[error_fixture("503_service_unavailable", arxiv_api_fixtures)] * 5)
    args = argparse.Namespace(category=["cs.LG"], since=LONG_AGO, max_results=5, json=True)
    assert run(args, settings, session, sleeps) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paperfeed fetch: error: arXiv API failed 5 times (HTTP 503)")
    assert captured.out == "" and "Traceback" not in captured.err
    assert sleeps == pytest.approx([5.0, 10.0, 20.0, 40.0], abs=0.5)  # injected, so nothing really slept


def test_broken_second_page_exits_2_and_reports_what_was_kept(arxiv_api_fixtures, settings, session, fake, sleeps,
                                                               capsys):
    fake.add(cs_lg_url(), recorded(arxiv_api_fixtures, S0_M100))
    fake.add(cs_lg_url(100), *[error_fixture("truncated_atom", arxiv_api_fixtures)] * 5)
    args = argparse.Namespace(category=["cs.LG"], since=LONG_AGO, max_results=150, json=False)
    assert run(args, settings, session, sleeps) == 2
    err = capsys.readouterr().err
    assert "probably truncated" in err and err.rstrip().endswith("(kept 1 earlier page(s): 100 added, 0 updated)")
    with PaperStore(settings.papers_path, readonly=True) as store:
        assert len(store) == 100


def test_defaults_reach_the_library(monkeypatch, settings, capsys):
    seen = {}

    def fake_fetch_new(store, settings_, categories, since, max_results, **kw):
        seen.update(categories=tuple(categories), since=since, max_results=max_results, session=kw["session"])
        return arxiv_api.FetchResult(pages=1)

    monkeypatch.setattr(arxiv_api, "fetch_new", fake_fetch_new)
    assert fetch.run(parse(), settings) == 1
    today = dt.datetime.now(dt.timezone.utc).date()
    assert seen == {"categories": arxiv_api.DEFAULT_CATEGORIES, "since": today - dt.timedelta(days=7),
                    "max_results": None, "session": None}
    assert "0 added" in capsys.readouterr().out


# --- fetch by id (issue 10) ---------------------------------------------------------------------
def test_fetch_by_id_adds_the_papers_in_batches(arxiv_api_fixtures, fake, session, sleeps, settings, capsys,
                                               monkeypatch):
    monkeypatch.setattr(arxiv_api, "ID_BATCH", 1)  # two ids, two requests: the batching is exercised
    for name in ("id_1605.08386_s0_m100_199195aa31ad.json", "id_1707.08567_s0_m100_6a1afebfc6a3.json"):
        rec = recorded(arxiv_api_fixtures, name)
        fake.add(rec["url"], rec)
    args = parse("--json", "--id", "1605.08386", "https://arxiv.org/abs/1707.08567v2")
    assert args.ids == ["1605.08386", "1707.08567"]
    assert run(args, settings, session, sleeps) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["added"], out["pages"], out["not_found"]) == (2, 2, [])
    with PaperStore(settings.papers_path) as store:
        assert {p.id for p in store.iter_papers()} == {"1605.08386", "1707.08567"}


def test_an_id_arxiv_does_not_know_is_reported_not_fatal(arxiv_api_fixtures, fake, session, sleeps, settings, capsys):
    # arXiv's recorded answer to an id it does not have (an empty feed), served for a well-formed unknown id.
    empty = recorded(arxiv_api_fixtures, "id_0000.0000_s0_m100_8b51d9633a68.json")
    fake.add(arxiv_api.page_url(arxiv_api.arxiv.Search(id_list=["2612.99999"]), 0, arxiv_api.PAGE_SIZE), empty)
    assert run(parse("--id", "2612.99999"), settings, session, sleeps) == 1  # nothing new
    assert "not on arXiv (1): 2612.99999" in capsys.readouterr().out


def test_a_malformed_id_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        parse("--id", "not-an-id")
    assert "not-an-id" in capsys.readouterr().err
