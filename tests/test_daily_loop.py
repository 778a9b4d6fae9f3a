"""The whole daily loop, as cron runs it: ``paperfeed daily`` = fetch, compute, train, digest (issue 11, part 5).

On the 10k sample, with two readers, arXiv played by a real HTTP server on loopback that answers with a
recorded arXiv API response, and a real SMTP server (aiosmtpd):

- day 1: the fetch brings papers, they are computed and ranked, and each reader gets a message with
  their own papers;
- the same day again: nothing is sent twice;
- day 2: more papers arrive, and the next digest holds only those.
"""
from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from recommender.corpus.store import PaperStore
from recommender.delivery import digest
from tests.httpserver import LoopbackServer
from tests.conftest import run_cli
from tests.smtpserver import SMTPServer, parts

pytestmark = pytest.mark.slow

S0_M100 = "q_testing_s0_m100_cfe7536492ca.json"  # a recorded arXiv API page of 100 real entries
PASSWORD = "correct horse battery staple 42\n"


class RecordedArxiv(LoopbackServer):
    """Answers every category query (``cat:...``) with one recorded arXiv API response; the fetch takes as
    many of its entries as ``--max-results`` asks, so a larger number the next day brings new papers."""

    def __init__(self, body: str):
        def answer(path: str) -> tuple[int, str]:
            query = parse_qs(urlsplit(path).query)
            ok = "cat:" in query.get("search_query", [""])[0] and query.get("start") == ["0"]
            return (200, body) if ok else (404, "no recording for this query")

        super().__init__(answer, "/api/query", "application/atom+xml; charset=utf-8")


@pytest.fixture
def arxiv(arxiv_api_fixtures):
    server = RecordedArxiv(json.loads((arxiv_api_fixtures / S0_M100).read_text(encoding="utf-8"))["body"])
    yield server
    server.close()


@pytest.fixture
def smtp():
    server = SMTPServer().start()
    yield server
    server.stop()


def _store_ids(settings) -> set[str]:
    with PaperStore(settings.papers_path, readonly=True) as store:
        return {p.id for p in store.iter_papers()}


def _digest_ids(message) -> list[str]:
    return list(dict.fromkeys(re.findall(r"/papers/([^\s<>\"]+)", parts(message)[0])))


def test_the_daily_loop_mails_each_reader_their_new_papers_once(web_settings, arxiv, smtp, monkeypatch, capsys):
    for key, value in {**smtp.env(), "PAPERFEED_ARXIV_API_URL": arxiv.url, "PAPERFEED_FETCH_DELAY": "0",
                       "PAPERFEED_N_JOBS": "1"}.items():
        monkeypatch.setenv(key, value)
    s = web_settings  # day 0: the 10k sample, imported and computed
    from recommender.features.index import FeatureIndex
    index = FeatureIndex.load(s.models_dir)
    libraries = {"alice": ("galaxies", "astro-ph.GA"), "bob": ("vision", "cs.CV")}
    for name, (tag, category) in libraries.items():
        assert run_cli(["useradd", name, "--password-stdin"], s, capsys, PASSWORD, monkeypatch)[0] == 0
        ids = [index.ids[r] for r in index.category_rows[category][:12]]
        assert run_cli(["tag", name, tag, *ids, "--no-fetch"], s, capsys)[0] == 0
        code, out, _ = run_cli(["account", name, "--email", f"{name}@example.org", "--digest", "daily", "--json"],
                               s, capsys)
        assert code == 0
        assert json.loads(out)["digest"] | {} == {**json.loads(out)["digest"], "email": f"{name}@example.org",
                                                  "email_confirmed": True, "frequency": "daily", "size": 10}
    day0 = _store_ids(s)

    # Day 1: new papers are fetched, computed, ranked and mailed.
    daily = ["daily", "-c", "cs.LG", "--since", "1990-01-01"]
    code, out, err = run_cli([*daily, "--max-results", "40", "--json"], s, capsys)
    report = json.loads(out)
    assert code == 0 and report["exit"] == 0, (out, err)
    assert [step["step"] for step in report["steps"]] == ["fetch", "compute", "train", "digest"]
    assert report["steps"][0]["output"]["added"] > 20
    day1 = _store_ids(s) - day0
    first = {name: smtp.to(f"{name}@example.org") for name in libraries}
    assert all(len(messages) == 1 for messages in first.values()), [m["To"] for m in smtp.parsed()]
    got = {name: _digest_ids(messages[0]) for name, messages in first.items()}
    for name, ids in got.items():
        assert len(ids) == 10 and set(ids) <= day1, name  # only papers that arrived today
    assert got["alice"] != got["bob"]  # each reader's own ranking

    # The same day again: fetch finds nothing new, compute is skipped, nothing is mailed twice.
    code, out, _ = run_cli([*daily, "--max-results", "40"], s, capsys)
    assert code == 0 and "fetch: ok, nothing new" in out and "skipped: fetch found nothing new" in out
    assert len(smtp.parsed()) == 2

    # Day 2: more papers arrive; the next digest holds only them.
    monkeypatch.setattr(digest, "clock", lambda: time.time() + 86400)
    code, out, err = run_cli([*daily, "--max-results", "70"], s, capsys)
    assert code == 0, (out, err)
    day2 = _store_ids(s) - day0 - day1
    assert len(day2) > 10
    for name in libraries:
        messages = smtp.to(f"{name}@example.org")
        assert len(messages) == 2
        ids = _digest_ids(messages[1])
        assert ids and set(ids) <= day2 and not set(ids) & set(got[name])
        assert messages[1]["Message-ID"] != messages[0]["Message-ID"]


def test_daily_exit_codes_for_a_scheduler(web_settings, smtp, monkeypatch, capsys):
    """arXiv unreachable: the loop still computes, trains and mails, and exits 2 naming the step.
    The SMTP server down: the digest is pending, exit 1; the next run sends it, exit 0."""
    for key, value in {**smtp.env(), "PAPERFEED_ARXIV_API_URL": "http://127.0.0.1:9/api/query",
                       "PAPERFEED_FETCH_DELAY": "0", "PAPERFEED_FETCH_RETRIES": "0", "PAPERFEED_N_JOBS": "1"}.items():
        monkeypatch.setenv(key, value)
    s = web_settings
    assert run_cli(["useradd", "carol", "--password-stdin"], s, capsys, PASSWORD, monkeypatch)[0] == 0
    assert run_cli(["tag", "carol", "t", "2504.04704", "2504.13999", "--no-fetch"], s, capsys)[0] == 0
    assert run_cli(["account", "carol", "--email", "carol@example.org", "--digest", "daily"], s, capsys)[0] == 0
    from recommender.accounts.users import UserStore
    with UserStore(s.users_path) as users:  # carol subscribed before the sample arrived: all of it is new to her
        users.conn.execute("UPDATE digest_settings SET since = 0")
    smtp.stop()
    code, out, err = run_cli(["daily", "--max-results", "5"], s, capsys)
    assert code == 2 and "== fetch: FAILED" in out and "== compute: ok" in out and "== train: ok" in out
    assert "== digest: ok, with notes" in out and "carol: pending" in out
    assert "paperfeed daily: error: fetch:" in err and "Traceback" not in err
    smtp.start()
    code, out, err = run_cli(["daily", "--no-fetch"], s, capsys)
    assert code == 0 and "carol: resent" in out, (out, err)
    assert "skipped: the paper store has not changed since the current features" in out  # nothing was imported
    (message,) = smtp.to("carol@example.org")
    assert len(_digest_ids(message)) == 10
