"""Import of Kaggle-snapshot files: the real fixtures, compressed forms, and every kind of bad line."""
import bz2
import gzip
import json
import lzma
import re

import pytest

from recommender.corpus.ingest import MAX_LINE_BYTES, UnreadableFile, import_snapshots, parse_line
from recommender.corpus.papers import InvalidPaper, Paper, paper_from_kaggle, split_authors
from recommender.corpus.store import PaperStore


def _records(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def _write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_kaggle_fixture_known_answer(kaggle_sample):
    records = {r["id"]: r for r in _records(kaggle_sample)}
    paper = paper_from_kaggle(records["2212.11867"])
    assert paper.title == "Zeros of a growing number of derivatives of random polynomials with independent roots"
    assert paper.authors == ("Marcus Michelen", "Xuan-Truong Vu")
    assert paper.categories == ("math.PR", "math.CA", "math.CV")
    assert paper.published == "2022-12-22" and paper.version == 1
    assert paper.license == "http://creativecommons.org/licenses/by/4.0/"
    assert paper.abstract.startswith("Let $X_1,X_2,\\ldots$ be independent")
    assert "\n" not in paper.abstract


def test_versions_give_latest_version_and_dates(kaggle_sample):
    multi = [r for r in _records(kaggle_sample) if len(r["versions"]) > 1][0]
    paper = paper_from_kaggle(multi)
    assert paper.version == len(multi["versions"])
    assert paper.published <= paper.updated


def test_import_real_fixture_then_reimport_is_unchanged(kaggle_sample, settings):
    with PaperStore(settings.papers_path) as store:
        first = import_snapshots(store, [kaggle_sample])
        second = import_snapshots(store, [kaggle_sample])
        assert (first.added, first.bad) == (49, 0)
        assert (second.added, second.updated, second.unchanged) == (0, 0, 49)
        assert len(store) == 49


@pytest.mark.parametrize("opener, suffix", [(gzip.open, ".gz"), (lzma.open, ".xz"), (bz2.open, ".bz2")])
def test_compressed_files(kaggle_sample, tmp_path, settings, opener, suffix):
    target = tmp_path / f"snap.jsonl{suffix}"
    with opener(target, "wb") as handle:
        handle.write(kaggle_sample.read_bytes())
    with PaperStore(settings.papers_path) as store:
        assert import_snapshots(store, [target]).added == 49


def test_bad_lines_are_reported_with_numbers_and_never_abort(kaggle_sample, tmp_path, settings):
    good = _records(kaggle_sample)
    missing_title = dict(good[2]); del missing_title["title"]
    missing_abstract = dict(good[3]); missing_abstract["abstract"] = None
    bad_id = dict(good[4], id="not-an-id")
    bad_version = dict(good[5], versions=[{"version": "v0", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}])
    bad_date = dict(good[6], versions=[{"version": "v1", "created": "yesterday"}])
    lines = [json.dumps(good[0]), '{"id": "2212.11867", "title": ', json.dumps(missing_title), "[1, 2, 3]",
             json.dumps(missing_abstract), json.dumps(bad_id), "", json.dumps(bad_version), json.dumps(bad_date),
             json.dumps(good[1])]
    path = _write_lines(tmp_path / "broken.jsonl", lines)
    with open(path, "ab") as handle:
        handle.write(b'{"id": "\xff\xfe"}\n')
    with PaperStore(settings.papers_path) as store:
        summary = import_snapshots(store, [path])
    assert summary.added == 2
    reasons = {b.line: b.reason for b in summary.bad_lines}
    assert summary.bad == 8 == len(reasons)
    assert summary.lines == 10 == summary.added + summary.bad  # line 7 is blank: not a record, not counted
    assert "broken JSON" in reasons[2]
    assert reasons[3] == "missing field 'title'"
    assert reasons[4] == "record is not a JSON object"
    assert reasons[5] == "missing field 'abstract'"
    assert "is not an arXiv id" in reasons[6]
    assert "bad entry in 'versions'" in reasons[8]
    assert "unreadable date" in reasons[9]
    assert "not UTF-8" in reasons[11]


def test_duplicate_ids_and_older_version_after_newer(kaggle_sample, tmp_path, settings):
    base = [r for r in _records(kaggle_sample) if len(r["versions"]) >= 2][0]
    v1 = dict(base, versions=base["versions"][:1], title="Old title")
    newest = dict(base)
    path = _write_lines(tmp_path / "dups.jsonl", [json.dumps(newest), json.dumps(v1), json.dumps(newest)])
    with PaperStore(settings.papers_path) as store:
        summary = import_snapshots(store, [path])
        assert (summary.added, summary.updated, summary.unchanged) == (1, 0, 2)
        assert store.get(base["id"]).version == len(base["versions"])
        assert store.get(base["id"]).title != "Old title"
        # A newer version arriving later replaces the stored one.
        older_store = _write_lines(tmp_path / "v1.jsonl", [json.dumps(v1)])
    with PaperStore(tmp_path / "other.sqlite") as other:
        import_snapshots(other, [older_store])
        assert other.get(base["id"]).title == "Old title"
        assert import_snapshots(other, [path]).updated == 1
        assert other.get(base["id"]).version == len(base["versions"])


def test_unreadable_and_corrupt_files_raise_clear_errors(tmp_path, settings):
    with PaperStore(settings.papers_path) as store:
        with pytest.raises(UnreadableFile, match="cannot open"):
            import_snapshots(store, [tmp_path / "missing.jsonl"])
        corrupt = tmp_path / "bad.jsonl.xz"
        corrupt.write_bytes(b"this is not xz data at all")
        with pytest.raises(UnreadableFile, match="cannot decompress"):
            import_snapshots(store, [corrupt])


def test_parse_line_rejects_non_text_fields():
    with pytest.raises(InvalidPaper, match="'categories'"):
        parse_line(json.dumps({"id": "2503.01234", "title": "t", "abstract": "a", "categories": ["cs.LG"],
                               "update_date": "2025-03-18"}).encode())


def test_line_cap_is_exact_and_a_long_line_does_not_shift_the_next(kaggle_sample, tmp_path, settings):
    first, second = (json.dumps(r).encode() for r in _records(kaggle_sample)[:2])
    at_cap = first + b" " * (MAX_LINE_BYTES - len(first) - 1)  # with its newline exactly MAX_LINE_BYTES
    path = tmp_path / "long.jsonl"
    path.write_bytes(at_cap + b"\n" + at_cap + b" \n" + second + b"\n")
    with PaperStore(settings.papers_path) as store:
        summary = import_snapshots(store, [path])
    assert (summary.lines, summary.added, summary.bad) == (3, 2, 1)
    assert [(b.line, b.reason) for b in summary.bad_lines] == [
        (2, f"line longer than {MAX_LINE_BYTES:,} bytes, the limit")]


PAPER = dict(id="2503.01234", version=1, title="T", abstract="A", authors=("A. One",), categories=("cs.LG",),
             published="2025-03-18", updated="2025-03-18")


@pytest.mark.parametrize("change, reason", [
    ({"title": "T \ud800"}, "title contains a lone surrogate"),
    ({"abstract": "a\x00b"}, "abstract contains a NUL character"),
    ({"comments": 3}, "comments must be text"),
    ({"authors": ("A. One", "\udc80")}, "authors contains a lone surrogate"),
    ({"authors": ["A. One"]}, "authors must be a list of names"),
    ({"categories": ("",)}, "a category is empty or contains whitespace"),
    ({"categories": ("cs LG",)}, "a category is empty or contains whitespace"),
    ({"version": True}, "version must be a whole number"),
    ({"version": 10_000}, "version must be a whole number from 1 to 9999"),
    ({"published": "9999-12-31"}, "published 9999-12-31 is outside 1980-01-01..2099-12-31"),
    ({"updated": "1979-12-31"}, "updated 1979-12-31 is outside"),
    ({"updated": "20250318"}, "updated must be a date like 2025-03-18"),
    ({"published": "2025-02-30"}, "published 2025-02-30 is not a calendar date"),
])
def test_paper_checks_every_field(change, reason):
    with pytest.raises(InvalidPaper, match=re.escape(reason)):
        Paper(**{**PAPER, **change})


@pytest.mark.parametrize("record, reason", [
    ([], "a paper must be an object, got a list"),
    ({k: v for k, v in PAPER.items() if k != "title"}, "missing field 'title'"),
    ({**PAPER, "authors": "A. One"}, "authors must be a list of names"),
    ({**PAPER, "categories": ["cs.LG", 5]}, "categories must be a list of names"),
])
def test_untrusted_from_dict_raises_invalid_paper_for_any_shape(record, reason):
    with pytest.raises(InvalidPaper, match=re.escape(reason)):
        Paper.from_dict(record)
    assert Paper.from_dict({**PAPER, "authors": ["A. One"], "categories": ["cs.LG"]}) == Paper(**PAPER)


def test_split_authors():
    assert split_authors("A. One, B. Two and C. Three") == ("A. One", "B. Two", "C. Three")
    assert split_authors("Solo Author") == ("Solo Author",)
    assert split_authors(None) == ()


def test_full_10k_sample_imports_cleanly(sample10k, settings):
    with PaperStore(settings.papers_path) as store:
        summary = import_snapshots(store, [sample10k])
        assert (summary.added, summary.bad) == (10000, 0)
        paper = store.get("2503.11893")
        assert paper.title.startswith("UStyle: Waterbody Style Transfer")
        assert paper.categories[0] == "cs.CV"
