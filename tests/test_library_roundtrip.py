"""Export, then import: a library survives the trip through our own BibTeX and CSL JSON, on real papers.

The export's own tests read it back with bibtexparser and pylatexenc; these read it back with Paperfeed's
importer (recommender.library.formats), the path a user takes to move a library between two accounts
or two Paperfeed sites.
"""
from __future__ import annotations

import gzip
import itertools
import json

import pytest

from recommender.accounts.users import UserStore
from recommender.corpus.papers import paper_from_kaggle
from recommender.corpus.store import PaperStore
from recommender.library import export, formats
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def real_papers(sample10k):
    out = {}
    with gzip.open(sample10k, "rt", encoding="utf-8") as handle:
        for line in itertools.islice(handle, 3000):
            try:
                paper = paper_from_kaggle(json.loads(line))
            except ValueError:
                continue
            out[paper.id] = paper
    return out


def _plain(title: str) -> bool:
    """A title with no TeX in it reads back character for character (TeX is decoded, so it may differ)."""
    return not any(ch in title for ch in "\\$^_{}~")


@pytest.mark.parametrize("fmt, parse_as", [("bibtex", "bibtex"), ("csljson", "csl-json")])
def test_every_exported_paper_comes_back_with_its_id_and_title(real_papers, fmt, parse_as):
    ids = sorted(real_papers)
    tags = {"reading": ids[::2], "vision": ids[1::2] + ids[:10]}  # papers in two tags are exported once
    text = export.export_library(fmt, tags, real_papers)
    parsed = formats.parse(text, fmt=parse_as, max_bytes=64 * 2**20, max_entries=len(ids))
    assert parsed.format == parse_as
    assert [e.error for e in parsed.entries if e.error] == []
    assert sorted(e.arxiv_id for e in parsed.entries) == ids
    plain = [(e, real_papers[e.arxiv_id].title) for e in parsed.entries if _plain(real_papers[e.arxiv_id].title)]
    assert len(plain) > 0.8 * len(ids)
    wrong = [(e.arxiv_id, e.title, title) for e, title in plain if " ".join(e.title.split()) != " ".join(title.split())]
    assert wrong == []


def test_a_library_moves_between_accounts_through_the_cli(kaggle_sample, settings, capsys, monkeypatch, tmp_path):
    assert run_cli(["import", str(kaggle_sample)], settings, capsys)[0] == 0
    for name in ("alice", "bob"):
        code, _, err = run_cli(["useradd", name, "--password-stdin"], settings, capsys,
                               stdin="correct horse battery staple 42\n", monkeypatch=monkeypatch)
        assert code == 0, err
    with PaperStore(settings.papers_path) as store:
        ids = sorted(p.id for p in store.iter_papers())[:12]
    assert len(ids) == 12
    assert run_cli(["tag", "alice", "theory", *ids[:8]], settings, capsys)[0] == 0
    assert run_cli(["tag", "alice", "to-read", *ids[6:]], settings, capsys)[0] == 0

    for fmt, suffix in (("bibtex", "bib"), ("csljson", "json")):
        path = tmp_path / f"alice.{suffix}"
        code, _, err = run_cli(["library", "export", "alice", "--format", fmt, "-o", str(path)], settings, capsys)
        assert code == 0, err
        code, out, err = run_cli(["library", "import", "bob", str(path), "--tag", f"from-{suffix}", "--no-fetch",
                                  "--json"], settings, capsys)
        assert code == 0, err
        report = json.loads(out)
        assert report["counts"]["matched"] == 12 and report["entries"] == 12
        assert report["tagged"] == {f"from-{suffix}": 12}
        with UserStore(settings.users_path) as users:
            bob = users.get_user("bob")
            assert sorted(users.tags(bob.id)[f"from-{suffix}"]) == ids
            version = bob.tags_version
        # the same file again changes nothing: no new tags, no retrain
        code, out, _ = run_cli(["library", "import", "bob", str(path), "--tag", f"from-{suffix}", "--no-fetch",
                                "--json"], settings, capsys)
        assert code == 0 and json.loads(out)["tagged"] == {f"from-{suffix}": 0}
        with UserStore(settings.users_path) as users:
            assert users.get_user("bob").tags_version == version
