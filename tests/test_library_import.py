"""Importing libraries: buckets, tags, collections, fetch by id on recorded arXiv responses, the CLI, and `tag`.

The store holds the real papers the fixtures cite (from the 10k sample). Papers outside it are fetched
from recorded arXiv API responses (../shared/arxiv/fixtures/arxiv_api) through test_arxiv_api's FakeArxiv;
``ID_BATCH`` is set to 1 so each id is one recorded request, exactly as recorded.
"""
from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError

from jobs import library_import, users as users_job
from recommender.accounts.users import LimitExceeded, Limits, UserError, UserStore
from recommender.corpus.ingest import parse_line
from recommender.corpus.store import PaperStore
from recommender.harvest import arxiv_api
from recommender.library import formats, importing
from test_arxiv_api import FakeArxiv, recorded
from tests.conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "library"
ID_1605 = "id_1605.08386_s0_m100_199195aa31ad.json"
ID_ASTRO = "id_astro-ph_0601001_s0_m100_3150dca9dc76.json"
EMPTY = "id_0000.0000_s0_m100_8b51d9633a68.json"
NOT_ON_ARXIV = "2501.99999"
IN_SAMPLE = {"2503.15783", "2503.17662", "2503.18432", "2503.19213", "2503.19693", "2503.20953", "2504.15237",
             "2503.20417", "2503.20623", "2503.20978", "2503.21679", "2503.21911", "2503.22746", "2503.22877",
             "2504.04736", "2505.08867", "2505.10441", "2506.08427"}


@pytest.fixture(scope="module")
def sample_papers(sample10k):
    papers = []
    with gzip.open(sample10k, "rb") as lines:
        for line in lines:
            if json.loads(line)["id"] in IN_SAMPLE:
                papers.append(parse_line(line))
    assert len(papers) == len(IN_SAMPLE)
    return papers


@pytest.fixture
def stores(settings, sample_papers):
    with PaperStore(settings.papers_path) as papers, UserStore(settings.users_path, settings.limits) as users:
        papers.upsert_many(sample_papers)
        users.add_user("alice", "x")
        yield papers, users


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(arxiv_api, "ID_BATCH", 1)
    adapter = FakeArxiv()
    yield adapter
    adapter.assert_all_used()


@pytest.fixture
def session(fake):
    s = requests.Session()
    s.mount("https://", fake)
    return s


def answer(fake, folder: Path, name: str) -> None:
    rec = recorded(folder, name)
    fake.add(rec["url"], rec)


def answer_not_on_arxiv(fake, folder: Path, pid: str = NOT_ON_ARXIV) -> None:
    """arXiv's real answer for an id it lacks (the recorded empty feed of id 0000.0000), asked for ``pid``."""
    rec = recorded(folder, EMPTY)
    fake.add(rec["url"].replace("0000.0000", pid), {**rec, "body": rec["body"].replace("0000.0000", pid)})


def offline(fake, folder: Path, name: str) -> None:
    rec = recorded(folder, name)
    fake.add(rec["url"], requests.ConnectionError(MaxRetryError(None, rec["url"], NameResolutionError(
        "export.arxiv.org", None, "Name or service not known"))))


def do_import(stores, data, settings, session=None, **kw):
    papers, users = stores
    parsed = data if isinstance(data, formats.Parsed) else formats.parse(data)
    fetch = importing.arxiv_fetch(papers, settings, session=session, sleep=lambda s: None) if session else None
    return importing.import_entries(papers, users, users.get_user("alice"), parsed, fetch=fetch, **kw)


def fixture(name: str) -> formats.Parsed:
    return formats.parse((FIXTURES / name).read_bytes(), filename=name)


def assert_buckets_add_up(report):
    assert sum(report.counts.values()) == report.entries
    keys = [i["key"] for b in importing.BUCKETS for i in getattr(report, b)]
    assert len(keys) == report.entries


# --- each real-world export, end to end ---------------------------------------------------------------
@pytest.mark.parametrize("name,matched,not_on_arxiv,collections", [
    ("zotero.bib", 3, 2, {}),
    ("zotero-better-bibtex.bib", 4, 1, {}),
    ("mendeley.bib", 3, 1, {"LLM": 3, "Humor": 1}),
    ("google-scholar.bib", 4, 1, {}),
    ("arxiv.bib", 3, 0, {}),
    ("zotero-csl.json", 3, 2, {}),
    ("zotero.rdf", 2, 2, {"LLM agents": 1, "Games - RL": 1, "Galaxies": 1}),
])
def test_each_export_tags_every_arxiv_paper_and_lists_the_rest(stores, settings, name, matched, not_on_arxiv,
                                                              collections):
    report = do_import(stores, fixture(name), settings, tag="reading")
    assert (len(report.matched), len(report.not_on_arxiv), report.malformed, report.not_fetched) == \
        (matched, not_on_arxiv, [], [])
    assert report.tagged == {"reading": matched, **collections}
    assert all(i["title"] for i in report.not_on_arxiv)  # the user sees what was skipped, by title
    assert_buckets_add_up(report)
    papers, users = stores
    tags = users.tags(users.get_user("alice").id)
    assert len(tags["reading"]) == matched and all(pid in papers for pid in tags["reading"])


def test_reimport_is_a_no_op(stores, settings):
    papers, users = stores
    first = do_import(stores, fixture("mendeley.bib"), settings, tag="reading")
    version = users.get_user("alice").tags_version
    again = do_import(stores, fixture("mendeley.bib"), settings, tag="reading")
    assert first.changed and not again.changed and set(again.tagged.values()) == {0}
    assert users.get_user("alice").tags_version == version
    assert again.counts == first.counts


def test_default_tag_and_no_collections(stores, settings):
    report = do_import(stores, fixture("mendeley.bib"), settings, collections=False)
    assert report.tag == importing.DEFAULT_TAG and report.tagged == {"imported": 3}


def test_a_bad_tag_name_is_refused_before_anything_changes(stores, settings):
    with pytest.raises(UserError, match="tag must be"):
        do_import(stores, fixture("arxiv.bib"), settings, tag="bad/tag")
    assert stores[1].tags(stores[1].get_user("alice").id) == {}


def test_a_limit_refuses_the_whole_import(settings, sample_papers):
    small = Limits(tags=2, papers_per_tag=10)
    with PaperStore(settings.papers_path) as papers, UserStore(settings.users_path, small) as users:
        papers.upsert_many(sample_papers)
        users.add_user("alice", "x")
        with pytest.raises(LimitExceeded, match="limit of 2 tags"):  # reading + LLM + Humor = 3 tags
            do_import((papers, users), fixture("mendeley.bib"), settings, tag="reading")
        assert users.tags(users.get_user("alice").id) == {} and users.get_user("alice").tags_version == 0


# --- fetching missing papers by id (recorded responses) ------------------------------------------------
def test_missing_papers_are_fetched_by_id(stores, settings, session, fake, arxiv_api_fixtures):
    answer(fake, arxiv_api_fixtures, ID_1605)
    answer(fake, arxiv_api_fixtures, ID_ASTRO)
    report = do_import(stores, fixture("ids.txt"), settings, session, tag="list")
    assert sorted(i["id"] for i in report.fetched) == ["1605.08386", "astro-ph/0601001"]
    assert len(report.matched) == 5 and len(report.malformed) == 1 and report.complete
    assert report.tagged == {"list": 7}
    fetched = {i["id"]: i["title"] for i in report.fetched}
    assert fetched["1605.08386"] == "Heat-bath random walks with Markov bases"  # the title comes from arXiv
    assert_buckets_add_up(report)


def test_an_id_arxiv_does_not_have_is_not_found_and_the_rest_is_tagged(stores, settings, session, fake,
                                                                      arxiv_api_fixtures):
    answer(fake, arxiv_api_fixtures, ID_1605)
    answer_not_on_arxiv(fake, arxiv_api_fixtures)
    data = f"1605.08386\n{NOT_ON_ARXIV}\n2503.15783\n".encode()
    report = do_import(stores, data, settings, session, tag="t")
    assert [i["id"] for i in report.not_found] == [NOT_ON_ARXIV]
    assert report.not_found[0]["reason"] == "arXiv has no paper with this id"
    assert report.tagged == {"t": 2} and report.complete


def test_offline_tags_what_resolves_and_a_later_run_completes_it(stores, settings, session, fake,
                                                                arxiv_api_fixtures):
    offline(fake, arxiv_api_fixtures, ID_1605)
    data = b"1605.08386\n2503.15783\n"
    report = do_import(stores, data, settings, session, tag="t")
    assert report.tagged == {"t": 1} and not report.complete
    assert report.not_fetched[0]["id"] == "1605.08386" and "offline" in report.not_fetched[0]["reason"]
    answer(fake, arxiv_api_fixtures, ID_1605)
    again = do_import(stores, data, settings, session, tag="t")
    assert again.tagged == {"t": 1} and again.complete and [i["id"] for i in again.fetched] == ["1605.08386"]


def test_a_fetch_cap_lists_what_was_left_and_how_to_get_it(stores, settings, session, fake, arxiv_api_fixtures):
    answer(fake, arxiv_api_fixtures, ID_1605)
    report = do_import(stores, b"1605.08386\nastro-ph/0601001\n", settings, session, tag="t", max_fetch=1,
                       not_fetched_hint="import the file again")
    assert [i["id"] for i in report.fetched] == ["1605.08386"]
    assert report.not_fetched == [{"key": "line 2", "title": "astro-ph/0601001", "id": "astro-ph/0601001",
                                   "reason": "not fetched: import the file again"}]


# --- the CLI --------------------------------------------------------------------------------------------
def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    library_import.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_imports_and_reports_in_text_and_json(stores, settings, session, fake, arxiv_api_fixtures, capsys):
    answer(fake, arxiv_api_fixtures, ID_ASTRO)
    bib = FIXTURES / "google-scholar.bib"
    extra = settings.data_dir / "more.bib"
    extra.write_text(bib.read_text() + "@article{gould2006,\n  title={Frequency of Hot Jupiters},\n"
                     "  journal={arXiv preprint astro-ph/0601001},\n  year={2006}\n}\n@misc{x, title={{\\em Broken\n")
    stores[0].close()
    code = library_import.run(cli_args("alice", str(extra), "--tag", "scholar"), settings, session=session,
                              sleep=lambda s: None)
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == ("7 entries (bibtex): 4 matched, 1 fetched, 0 not found on arXiv, 0 not fetched, "
                                   "1 not on arXiv, 1 malformed")
    assert "tagged for alice: 'scholar' +5" in out and "after the next `paperfeed compute`" in out
    assert "devlin2019bert: 'Bert: Pre-training" in out and "x: -- line" in out
    code = library_import.run(cli_args("alice", str(extra), "--tag", "scholar", "--json"), settings)
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["tagged"] == {"scholar": 0} and data["counts"]["matched"] == 5


def test_cli_offline_exits_1_and_says_to_run_again(stores, settings, capsys):
    stores[0].close()
    code, out, err = run_cli(["library", "import", "alice", str(FIXTURES / "ids.txt")], settings, capsys)
    assert code == 1 and "2 not fetched" in out and "offline" in out and "run the same import again" in out
    assert "tagged for alice: 'imported' +5" in out


@pytest.mark.parametrize("name,content,message", [
    ("x.bib", b"@article{a, title={Caf\xe9 au lait}, journal={arXiv preprint arXiv:2503.15783}}", "not valid UTF-8"),
    ("x.bib", b"Dear colleague, my thoughts.\n", "this .bib file holds no BibTeX entries"),
    ("notes.md", b"Dear colleague, my thoughts.\n", "not BibTeX, CSL JSON, Zotero RDF or a list"),
    ("x.txt", "".join(f"2503.{i:05d}\n" for i in range(10_000)).encode(), "holds 10,000 entries"),
    ("x.pdf", b"%PDF-1.5\n%\xb5\xed\xae\xfb\n", "binary file"),
], ids=["latin-1", "prose.bib", "prose.md", "10k-ids", "pdf"])
def test_cli_bad_file_is_one_line_exit_2(stores, settings, capsys, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = run_cli(["library", "import", "alice", str(path)], settings, capsys)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_a_file_past_the_byte_limit_is_refused_without_reading_it_all(stores, settings, capsys, tmp_path):
    path = tmp_path / "huge.bib"
    with open(path, "wb") as handle:
        handle.truncate(50 * 2**20)  # a sparse 50 MB file
    code, _, err = run_cli(["library", "import", "alice", str(path)], settings, capsys)
    assert code == 2 and "larger than 16.0 MiB, the most an import takes" in err


def test_cli_unknown_user_and_missing_file(stores, settings, capsys):
    code, _, err = run_cli(["library", "import", "nobody", str(FIXTURES / "arxiv.bib")], settings, capsys)
    assert code == 2 and "no user 'nobody'" in err
    code, _, err = run_cli(["library", "import", "alice", "/nonexistent.bib"], settings, capsys)
    assert code == 2 and "No such file" in err


def test_thousand_entry_bib_imports_quickly(stores, settings, capsys, tmp_path):
    ids = sorted(IN_SAMPLE)
    bib = "".join(f"@misc{{k{i}, title={{Paper {i} with {{\\\"o}} \\& more}}, eprint={{{ids[i % len(ids)]}}}, "
                  f"archivePrefix={{arXiv}}}}\n" if i % 4 else
                  f"@article{{j{i}, title={{Journal paper {i}}}, journal={{Nature}}, doi={{10.1038/{i}}}}}\n"
                  for i in range(1000))
    path = tmp_path / "big.bib"
    path.write_text(bib)
    stores[0].close()
    started = time.perf_counter()
    code, out, _ = run_cli(["library", "import", "alice", str(path), "--json"], settings, capsys)
    elapsed = time.perf_counter() - started
    data = json.loads(out)
    assert code == 0 and data["counts"]["matched"] == 750 and data["counts"]["not_on_arxiv"] == 250
    assert elapsed < 10, f"1,000 entries took {elapsed:.1f} s"


# --- `paperfeed tag` with good, unknown and malformed ids ------------------------------------------------
def tag_args(*argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    users_job.add_arguments(parser, "tag")
    return parser.parse_args(argv)


def test_tag_tags_the_valid_ids_fetches_the_missing_and_names_the_rest(stores, settings, session, fake,
                                                                      arxiv_api_fixtures, capsys):
    answer(fake, arxiv_api_fixtures, ID_1605)
    answer_not_on_arxiv(fake, arxiv_api_fixtures)
    stores[0].close()
    args = tag_args("alice", "mixed", "2503.15783", "1605.08386v1", NOT_ON_ARXIV, "banana")
    args.command = "tag"
    code = users_job.run(args, settings, session=session, sleep=lambda s: None)
    out = capsys.readouterr().out
    assert code == 1
    assert "tagged 2 paper(s) as 'mixed' for alice (1 fetched from arXiv)" in out
    assert f"not tagged: {NOT_ON_ARXIV}: arXiv has no paper with this id" in out
    assert "not tagged: banana: 'banana' is not an arXiv id" in out


def test_tag_with_only_known_ids_exits_0(stores, settings, capsys):
    stores[0].close()
    code, out, _ = run_cli(["tag", "alice", "t", "2503.15783", "2503.17662v2", "--json"], settings, capsys)
    assert code == 0 and json.loads(out)["tagged"] == 2 and json.loads(out)["not_tagged"] == []


def test_tag_offline_tags_the_known_and_exits_1(stores, settings, capsys):
    stores[0].close()
    code, out, err = run_cli(["tag", "alice", "t", "2503.15783", "2101.00001"], settings, capsys)
    assert code == 1 and "tagged 1 paper(s)" in out and "not tagged: 2101.00001: could not fetch (offline" in out


def test_add_tag_sets_is_one_transaction_across_tags(settings):
    with UserStore(settings.users_path, Limits(tags=5, papers_per_tag=2)) as users:
        uid = users.add_user("bob", "x").id
        assert users.add_tag_sets(uid, {"a": ["2503.15783"], " b ": ["2503.17662", "2503.18432"]}) == {"a": 1, "b": 2}
        version = users.get_user_by_id(uid).tags_version
        with pytest.raises(LimitExceeded, match="'a' would have 3"):
            users.add_tag_sets(uid, {"c": ["2503.15783"], "a": ["2503.17662", "2503.18432"]})
        assert {t: sorted(ids) for t, ids in users.tags(uid).items()} == {
            "a": ["2503.15783"], "b": ["2503.17662", "2503.18432"]}  # no "c", no more "a"
        assert users.get_user_by_id(uid).tags_version == version
        assert users.add_tag_sets(uid, {"a": ["2503.15783"]}) == {"a": 0}
        assert users.get_user_by_id(uid).tags_version == version  # nothing new: no bump


@pytest.mark.parametrize("name,tag", [("Games / RL", "Games - RL"), ("  ML: vision & language ", "ML- vision - language"),
                                      ("__all__", "all__"), ("///", None), ("x" * 80, "x" * 40), ("Übersicht", "Übersicht")])
def test_collection_names_become_valid_tags(name, tag):
    assert importing.collection_tag(name) == tag


def test_cli_reads_stdin_and_a_forced_format(stores, settings, capsys, monkeypatch):
    stores[0].close()
    code, out, _ = run_cli(["library", "import", "alice", "-", "--tag", "piped", "--no-fetch", "--json"], settings,
                           capsys, stdin="2503.15783\nhttps://arxiv.org/abs/2503.17662v2\n", monkeypatch=monkeypatch)
    data = json.loads(out)
    assert code == 0 and data["format"] == "ids" and data["tagged"] == {"piped": 2}
    code, _, err = run_cli(["library", "import", "alice", str(FIXTURES / "ids.txt"), "--format", "bibtex"],
                           settings, capsys)
    assert code == 2 and "no BibTeX entries" in err
