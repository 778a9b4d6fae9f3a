"""The first run: `paperfeed demo` works offline on the sample shipped in the package (issue 10, part 1)."""
from __future__ import annotations

import json

import pytest

from conftest import run_cli
from recommender.demo import SAMPLE
from recommender.corpus.ingest import read_snapshot

OFFLINE_HINTS = ("--from", "shipped with Paperfeed")


def test_the_embedded_sample_is_real_recent_and_licensed():
    rows = list(read_snapshot(SAMPLE))
    papers = [paper for _, paper, _ in rows if paper is not None]
    bad = [(n, reason) for n, paper, reason in rows if paper is None]
    assert len(papers) == 2500 and bad == []
    assert min(p.published for p in papers) >= "2026-06-23"
    assert len({p.id for p in papers}) == 2500
    assert SAMPLE.stat().st_size < 3_000_000  # a few MB at most
    readme = (SAMPLE.parent / "README.md").read_text(encoding="utf-8")
    assert "CC0" in readme and "Rebuilt with" in readme


@pytest.mark.slow
def test_demo_with_no_arguments_works_offline(settings, capsys):
    """The autouse no_network fixture refuses every outbound connection: the demo must not need one."""
    code, _, err = run_cli(["demo", "--no-serve"], settings, capsys)
    assert code == 0, err
    assert "shipped with Paperfeed" in err and "created user 'demo'" in err
    code, out, _ = run_cli(["stats", "--json"], settings, capsys)
    stats = json.loads(out)
    assert stats["papers"] == stats["indexed_papers"] == 2500 and stats["users"] == 1
    code, out, _ = run_cli(["recommend", "demo", "--json", "--limit", "5"], settings, capsys)
    assert code == 0 and len(json.loads(out)) == 5
    code, _, err = run_cli(["demo", "--no-serve"], settings, capsys)  # a second run is a no-op, not an error
    assert code == 0, err


@pytest.mark.parametrize("argv", [["fetch"], ["demo", "--fetch", "--no-serve"]])
def test_offline_fetch_fails_at_once_with_one_line_and_leaves_no_store(argv, settings, capsys, monkeypatch):
    sleeps = []
    monkeypatch.setattr("time.sleep", sleeps.append)
    code, _, err = run_cli(argv, settings, capsys)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert "cannot reach the arXiv API" in line and all(h in line for h in OFFLINE_HINTS)
    assert sum(sleeps) == 0  # no retry with backoff: the network is not there
    assert not settings.papers_path.exists()
    code, _, err = run_cli(["demo", "--no-serve"], settings, capsys)  # and a later run succeeds
    assert code == 0, err
