"""Issue 9: no Kaggle-snapshot line, however hostile, aborts ``paperfeed import``.

Every line either becomes a valid, storable :class:`Paper` or is skipped with its line
number and a one-line reason (a ``ValueError`` from :func:`recommender.corpus.ingest.parse_line`);
nothing else may escape. Counts add up: ``added + updated + unchanged + bad == lines``,
where ``lines`` counts the non-blank lines.

Hypothesis starts from the real records of the shared Kaggle fixture and replaces fields
with arbitrary JSON or arbitrary text (lone surrogates and NUL included), odd ids, dates
and version lists; it also writes whole arbitrary JSON values, deep nesting, huge numbers
and byte-level damage (cuts, stray bytes, raw surrogates). The examples are fixed
(``derandomize``), so CI runs the same few thousand every time.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import functools
import gzip
import itertools
import json
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.cli import build_parser
from recommender.corpus.ingest import MAX_LINE_BYTES, import_snapshots, parse_line
from recommender.corpus.papers import MAX_DATE, MIN_DATE, Paper, paper_from_kaggle
from recommender.corpus.store import PaperStore
from tests.conftest import run_cli

LINE_EXAMPLES = 2000
FILE_EXAMPLES = 300
PROPERTY = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- strategies -------------------------------------------------------------------------------
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=24)  # surrogates and NUL included
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)
OFFSETS = st.integers(-1439, 1439).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
RFC_DATES = st.builds(lambda when, tz: email.utils.format_datetime(when.replace(tzinfo=tz)), st.datetimes(), OFFSETS)
ISO_DATES = st.dates().map(dt.date.isoformat) | st.from_regex(r"\A[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}\Z")
IDS = (st.from_regex(r"\A[0-9]{4}\.[0-9]{4,6}(v[0-9]{1,6})?\Z")
       | st.from_regex(r"\A[a-z-]{1,9}(\.[A-Z]{2})?/[0-9]{6,8}(v[0-9]{1,4})?\Z")
       | ANY_TEXT | JSON)
VERSION_LABELS = st.from_regex(r"\Av[0-9]{1,6}\Z") | JSON
VERSIONS = st.lists(st.fixed_dictionaries({"version": VERSION_LABELS, "created": RFC_DATES | ANY_TEXT | JSON}) | JSON,
                    max_size=3)
AUTHORS_PARSED = st.lists(st.lists(st.none() | ANY_TEXT | JSON, max_size=4) | JSON, max_size=3)
CATEGORIES = st.lists(st.from_regex(r"\A[a-z-]{1,8}(\.[A-Za-z-]{1,4})?\Z"), max_size=3).map(" ".join)
FIELD_VALUES = {
    "id": IDS, "versions": VERSIONS, "update_date": ISO_DATES | ANY_TEXT, "authors_parsed": AUTHORS_PARSED,
    "categories": CATEGORIES | ANY_TEXT, "authors": ANY_TEXT | st.lists(ANY_TEXT, max_size=3),
}
FIELDS = ("id", "submitter", "authors", "title", "comments", "journal-ref", "doi", "report-no", "categories",
          "license", "abstract", "versions", "update_date", "authors_parsed")


@functools.cache
def real_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def records(real: list[dict]) -> st.SearchStrategy[dict]:
    """A real record with up to five fields deleted or replaced by shaped or arbitrary values."""
    changes = st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from(("delete", "any", "shaped"))),
                       max_size=5, unique_by=lambda change: change[0])

    @st.composite
    def build(draw) -> dict:
        record = dict(draw(st.sampled_from(real)))
        for key, action in draw(changes):
            if action == "delete":
                record.pop(key, None)
            else:
                record[key] = draw(FIELD_VALUES.get(key, ANY_TEXT) if action == "shaped" else JSON)
        return record

    return build()


def _with_field(record: dict, raw_value: str) -> str:
    return json.dumps(record)[:-1] + ', "extra": ' + raw_value + "}"


@functools.cache
def hostile_lines(sample: Path) -> st.SearchStrategy[bytes]:
    """One line (no newline): a mutated real record, any JSON, deep nesting or a huge number; maybe damaged."""
    real = real_records(sample)
    texts = st.one_of(
        st.tuples(records(real), st.booleans()).map(lambda r: json.dumps(r[0], ensure_ascii=r[1])),
        st.tuples(JSON, st.booleans()).map(lambda r: json.dumps(r[0], ensure_ascii=r[1])),
        st.tuples(st.sampled_from(real), st.integers(1, 5000))
        .map(lambda r: _with_field(r[0], "[" * r[1] + "]" * r[1])),
        st.tuples(st.sampled_from(real), st.integers(4000, 6000)).map(lambda r: _with_field(r[0], "9" * r[1])),
    )

    @st.composite
    def line(draw) -> bytes:
        raw = draw(texts).encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid bytes (ED A0 80...)
        if draw(st.integers(0, 3)) == 0:
            at = draw(st.integers(0, len(raw)))
            raw = raw[:at] + draw(st.binary(max_size=4)) + raw[at + draw(st.integers(0, 8)):]
        return raw.replace(b"\n", b" ")

    return line()


@functools.cache
def file_lines(sample: Path) -> st.SearchStrategy[list[bytes]]:
    """The lines of a snapshot file: real records, hostile lines and blank lines, mixed."""
    good = st.sampled_from([json.dumps(r).encode() for r in real_records(sample)])
    blank = st.sampled_from([b"", b"   ", b"\t\r"])
    return st.lists(good | hostile_lines(sample) | blank, max_size=12)


# --- checks -----------------------------------------------------------------------------------
def assert_storable(paper: Paper) -> None:
    """Valid on its own terms, and survives the store's JSON-in-UTF-8 round trip unchanged."""
    stored = json.dumps(paper.to_dict(), ensure_ascii=False).encode("utf-8")
    assert Paper.from_dict(json.loads(stored)) == paper
    assert MIN_DATE.isoformat() <= paper.published <= MAX_DATE.isoformat()
    assert MIN_DATE.isoformat() <= paper.updated <= MAX_DATE.isoformat()


def assert_clean_reason(reason: str) -> None:
    assert reason and reason.isprintable() and len(reason) < 300, reason
    reason.encode("utf-8")


def outcome(raw: bytes) -> Paper | None:
    """The paper of a line, or None for a clean skip; any other exception fails the test."""
    try:
        paper = parse_line(raw)
    except ValueError as exc:
        assert_clean_reason(str(exc))
        return None
    assert_storable(paper)
    return paper


# --- properties -------------------------------------------------------------------------------
@settings(max_examples=LINE_EXAMPLES, **PROPERTY)
@given(data=st.data())
def test_any_line_becomes_a_valid_paper_or_a_clean_skip(kaggle_sample, data):
    outcome(data.draw(hostile_lines(kaggle_sample), label="line"))


@settings(max_examples=FILE_EXAMPLES, **PROPERTY)
@given(data=st.data())
def test_import_counts_add_up_and_reimport_is_a_no_op(kaggle_sample, tmp_path_factory, data):
    lines = data.draw(file_lines(kaggle_sample), label="lines")
    expected = {n: outcome(line) for n, line in enumerate(lines, start=1) if line.strip()}
    papers = {paper for paper in expected.values() if paper is not None}
    folder = tmp_path_factory.getbasetemp() / "import_property"  # one store for all examples: creating one is slow
    folder.mkdir(exist_ok=True)
    path = folder / "snap.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    with PaperStore(folder / "papers.sqlite") as store:
        first = import_snapshots(store, [path])
        second = import_snapshots(store, [path])
        stored = store.get_many(paper.id for paper in papers)
    bad = sorted(n for n, paper in expected.items() if paper is None)
    assert first.lines == len(expected) == first.added + first.updated + first.unchanged + first.bad
    assert [b.line for b in first.bad_lines] == bad and all(b.path == str(path) for b in first.bad_lines)
    assert set(stored) == {paper.id for paper in papers}
    assert second.lines == first.lines and (second.added, second.bad) == (0, first.bad)
    if len(papers) == len({paper.id for paper in papers}):  # else same-version twins overwrite each other
        assert (second.updated, second.unchanged) == (0, first.lines - first.bad)


# --- end to end through the CLI ---------------------------------------------------------------
def _hostile_cases(base: dict) -> list[tuple[bytes, str]]:
    """(line, what its reason must contain): every input of the defect report, built on one real record."""
    def line(ensure_ascii: bool = True, **changes) -> bytes:
        return json.dumps({**base, **changes}, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")

    no_versions = {k: v for k, v in base.items() if k != "versions"}
    nest = "[" * 1000 + "]" * 1000
    return [
        (line(authors=42, authors_parsed=None), "field 'authors' must be text, got a number"),
        (line(authors=["A. One", "B. Two"], authors_parsed=None), "field 'authors' must be text, got a list"),
        (line(authors_parsed=[[1, 2, 3]]), "'authors_parsed' must hold text or null"),
        (line(authors_parsed={"last": "One"}), "field 'authors_parsed' must be a list"),
        (line(authors_parsed=["One, A."]), "entries of 'authors_parsed' must be [last, first, suffix] lists"),
        (json.dumps({**no_versions, "update_date": "9999-12-31"}).encode(), "update_date 9999-12-31 is outside"),
        (line(versions=[{"version": "v1", "created": "Fri, 31 Dec 9999 23:59:59 -0100"}]), "out of range"),
        (line(versions=[{"version": "v1", "created": "Fri, 31 Dec 9999 23:59:59 GMT"}]),
         "published 9999-12-31 is outside"),
        (line(update_date="20221223"), "update_date must be a date like 2025-03-18"),
        # Parsed or not (that depends on the stack depth), 1000-deep authors are never a paper.
        (json.dumps(base).replace('"authors": "', '"authors": ' + nest + ', "was": "', 1).encode(),
         "nested too deeply|field 'authors' must be text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (line(title="Broken \ud800 title"), "title contains a lone surrogate"),
        (line(ensure_ascii=False, title="Broken \ud800 title"), "not UTF-8"),
        (line(title="X").replace(b'"X"', b'"\xff\xfe"'), "not UTF-8"),
        (line(abstract="x" * 10 * 2**20), f"line longer than {MAX_LINE_BYTES:,} bytes"),
        (b" " * (2 * MAX_LINE_BYTES) + json.dumps(base).encode(), f"line longer than {MAX_LINE_BYTES:,} bytes"),
        (b"[]", "record is not a JSON object"),
        (b"3", "record is not a JSON object"),
        (b"null", "record is not a JSON object"),
        (b'"just text"', "record is not a JSON object"),
        (line()[:80], "broken JSON"),
        (line(title="X").replace(b'"X"', b'"a\x00b"'), "broken JSON: Invalid control character"),
        (line(title="a\x00b"), "title contains a NUL character"),
        (b"\x00" * 50, "broken JSON"),
        (line(id="2503." + "1" * 100_000), "is not an arXiv id"),
        (line(id="2513.01234"), "month 13"),
        (line(id="../../etc/passwd"), "is not an arXiv id"),
        (line(id="2503.01234v0"), "is not an arXiv id"),
        (line(id="2503.01234v" + "9" * 5000), "is not an arXiv id"),
        (line(id=2212.11867), "field 'id' must be text, got a number"),
        (line(versions=[{"version": "v" + "9" * 5000, "created": base["versions"][0]["created"]}]),
         "is not a version label"),
        (_with_field(base, "9" * 5000).encode(), "a number with too many digits"),
    ]


def _real_lines(sample10k: Path, count: int) -> list[bytes]:
    with gzip.open(sample10k, "rb") as handle:
        return [line.rstrip(b"\n") for line in itertools.islice(handle, count)]


def test_cli_imports_every_good_line_and_reports_every_bad_one(sample10k, kaggle_sample, settings, tmp_path, capsys):
    base = real_records(kaggle_sample)[0]
    assert paper_from_kaggle(base).id == "2212.11867"  # the hostile lines are bad only by what was changed
    good = _real_lines(sample10k, 200)
    good[5] += b"\r"  # a CRLF line is a good line
    cases = _hostile_cases(base)
    lines, expected_bad, blank = [], {}, 0
    for i, raw in enumerate(good):
        lines.append(raw)
        if i % 6 == 5 and cases:
            raw, reason = cases.pop(0)
            lines.append(raw)
            expected_bad[len(lines)] = reason
        if i % 50 == 7:
            lines += [b"", b"  \t"]
            blank += 2
    assert not cases, "every hostile case is in the file"
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))

    build_parser()  # import every command module first: only the import itself is measured
    tracemalloc.start()
    try:
        code, out, err = run_cli(["import", str(path), "--json"], settings, capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (code, err) == (0, "")
    first = json.loads(out)
    assert peak < 8 * 2**20, f"the 10 MB line was read into memory (peak {peak:,} bytes)"
    assert first["lines"] == len(lines) - blank == len(good) + len(expected_bad)
    assert (first["added"], first["updated"], first["unchanged"], first["bad"]) == (len(good), 0, 0, len(expected_bad))
    reported = {b["line"]: b["reason"] for b in first["bad_lines"]}
    assert sorted(reported) == sorted(expected_bad)
    for number, reason in expected_bad.items():
        assert any(part in reported[number] for part in reason.split("|")), (number, reported[number], reason)
        assert_clean_reason(reported[number])
    with PaperStore(settings.papers_path) as store:
        papers = {p.id: p for p in store.iter_papers()}
    assert papers == {p.id: p for p in map(paper_from_kaggle, map(json.loads, good))}

    code, out, err = run_cli(["import", str(path)], settings, capsys)
    assert (code, err) == (0, "")
    assert out.startswith(f"{first['lines']} lines: added 0, updated 0, unchanged {len(good)}, "
                          f"bad lines skipped {len(expected_bad)}\n")
    first_bad = min(expected_bad)
    assert f"  {path}:{first_bad}: {reported[first_bad]}\n" in out
    assert f"... and {len(expected_bad) - 20} more" in out
