"""Library export (recommender.library.export, ``paperfeed library export``) on real arXiv metadata.

BibTeX is read back with bibtexparser 2 (an independent parser) and its values decoded with pylatexenc (an
independent LaTeX decoder): every entry parses, has its fields, and reads back as the paper's title and authors.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import re

import bibtexparser
import pytest
from bibtexparser.middlewares import SeparateCoAuthors, SplitNameParts
from pylatexenc.latex2text import LatexNodes2Text

from conftest import run_cli
from recommender.corpus.papers import Paper, paper_from_kaggle
from recommender.corpus.store import PaperStore
from recommender.library import export

DECODE = LatexNodes2Text(math_mode="verbatim").latex_to_text
BIB_FIELDS = {"title", "author", "year", "month", "eprint", "archivePrefix", "primaryClass", "url", "keywords"}


@pytest.fixture(scope="module")
def real_papers(sample10k) -> list[Paper]:
    out = []
    with gzip.open(sample10k, "rt", encoding="utf-8") as handle:
        for line in handle:
            try:
                out.append(paper_from_kaggle(json.loads(line)))
            except ValueError:
                pass
    return out


def parse_bib(text: str):
    library = bibtexparser.parse_string(text, append_middleware=[SeparateCoAuthors(), SplitNameParts()])
    assert library.failed_blocks == []
    return library


def spaces(text: str) -> str:
    """Whitespace collapsed; pylatexenc's renderings of \\textasciicircum and \\textasciitilde read as ^ and ~."""
    return " ".join(text.replace("\u00a0", " ").replace("\u02c6", "^").replace("\u02dc", "~").split())


MATH = re.compile(r"((?<!\\)\$[^$\n]+?(?<!\\)\$)")


def arxiv_reading(title: str) -> str:
    """How arXiv's TeX-like title reads: LaTeX, except that outside math a bare & % # ~ is the character itself
    ("z~3.6")."""
    parts = MATH.split(title)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"(?<!\\)~", r"\\textasciitilde{}", re.sub(r"(?<!\\)([&%#])", r"\\\1", parts[i]))
    return spaces(DECODE("".join(parts)))


def name_of(parts) -> str:
    return spaces(DECODE(" ".join(" ".join(p) for p in (parts.first, parts.von, parts.last, parts.jr) if p)))


# --- BibTeX on the 10k real sample ------------------------------------------------------------
def test_bibtex_of_10k_real_papers_round_trips_through_bibtexparser(real_papers):
    tags = {"all": [p.id for p in real_papers], "some": [p.id for p in real_papers[:50]]}
    by_id = {p.id: p for p in real_papers}
    text = export.export_library("bibtex", tags, by_id)
    library = parse_bib(text)
    assert len(library.entries) == len(real_papers)
    assert len({e.key for e in library.entries}) == len(real_papers)  # unique keys
    plain = exact = 0
    nested = []
    for entry in library.entries:
        paper = by_id[entry["eprint"]]
        assert entry.entry_type == "misc"
        fields = set(entry.fields_dict)
        assert BIB_FIELDS - {"author", "primaryClass"} <= fields, entry.key
        assert entry["archivePrefix"] == "arXiv" and entry["url"] == f"https://arxiv.org/abs/{paper.id}"
        assert entry["year"] == paper.published[:4]
        assert entry["month"] == export._MONTHS[int(paper.published[5:7]) - 1]
        assert entry["keywords"] == ("all, some" if paper.id in tags["some"] else "all")
        assert ("primaryClass" in fields) == bool(paper.categories)
        if paper.categories:
            assert entry["primaryClass"] == paper.primary_category
        got = spaces(DECODE(entry["title"]))
        if re.search(r"\{[^}]*\$", paper.title):  # math inside text inside math ($\textbf{AGT$^{AO}$}$)
            nested.append(paper.id)  # is escaped as text: it still parses, its field holds, but reads as typed
        else:
            assert got == arxiv_reading(paper.title), (paper.title, entry["title"])
        if not re.search(r"[\\${}~^`]|--|''", paper.title):  # no LaTeX in it: reads back character for character
            plain += 1
            exact += got == spaces(paper.title)
        if paper.authors:
            names = [name_of(n) for n in entry["author"]]
            assert names == [spaces(DECODE(export.clean_name(a))) for a in paper.authors], entry.key
        else:
            assert "author" not in fields
    assert plain > 9000 and exact == plain
    assert len(nested) <= 2


def test_titles_with_special_characters_are_escaped(real_papers):
    special = [p for p in real_papers if re.search(r"[<&$_%]", p.title)]
    assert len(special) > 250  # 285 real titles: 243 with $, 118 with _, 33 with &, 7 with <, 3 with %
    text = export.to_bibtex([export.Item(p.id, p, ()) for p in special])
    for line in text.splitlines():
        if line.startswith("  title = "):
            body = re.sub(r"(?<!\\)\$[^$]+?(?<!\\)\$", "", line)  # math is kept as LaTeX
            assert not re.search(r"(?<!\\)[&%#_]", body), line
    assert "<" in text  # not an HTML entity: BibTeX is not HTML


@pytest.mark.parametrize("title", [
    "x}, note = {pwned", "}{", "a { b", r"\}", "50% & #1 a_b $x$ ~ ^ \\", "$\\frac{a}{b$", "{\\it ok} }",
    "Tom & Jerry: <script>alert(1)</script>", "$a % b$ } {",
])
def test_hostile_titles_cannot_break_out_of_their_field(title):
    paper = Paper(id="2501.00001", version=1, title=title, abstract="", authors=("A} and {B", "C, D"),
                  categories=("cs.LG",), published="2025-01-02", updated="2025-01-02")
    text = export.to_bibtex([export.Item(paper.id, paper, ("mine",))])
    library = parse_bib(text)
    (entry,) = library.entries
    assert set(entry.fields_dict) == {"title", "author", "year", "month", "eprint", "archivePrefix", "primaryClass",
                                      "url", "keywords"}
    assert entry["eprint"] == "2501.00001"
    assert entry["title"] and entry["author"][1].last == ["{C, D}"]


def test_names_last_first_particles_suffixes_and_collaborations():
    assert export.bibtex_name("Ashish Vaswani") == "Vaswani, Ashish"
    assert export.bibtex_name("Ludwig van Beethoven") == "van Beethoven, Ludwig"
    assert export.bibtex_name("Martin Luther King Jr.") == "King, Jr., Martin Luther"
    assert export.bibtex_name("ATLAS Collaboration") == "{ATLAS Collaboration}"
    assert export.bibtex_name("Jürgen Müller") == "Müller, Jürgen"  # UTF-8 kept for biber
    assert export.bibtex_name("A. T. ~Bajkova") == "Bajkova, A. T."
    assert export.csl_name("Martin Luther King Jr.") == {"family": "King", "given": "Martin Luther", "suffix": "Jr."}
    assert export.csl_name("ATLAS Collaboration") == {"literal": "ATLAS Collaboration"}


def _paper(pid, title, authors=("Ashish Vaswani",), published="2017-06-12", **kw):
    return Paper(id=pid, version=1, title=title, abstract="An abstract.", authors=authors, categories=("cs.CL",),
                 published=published, updated=published, **kw)


def test_citation_keys_are_readable_unique_and_stable():
    a = _paper("1706.03762", "Attention Is All You Need")
    b = _paper("1706.09999", "Attention, again")
    c = _paper("1707.00001", "On the $\\alpha$ of Things", authors=("Jürgen Müller",))
    d = _paper("1708.00001", "Untitled", authors=())
    keys = export.citation_keys([export.Item(p.id, p, ()) for p in (b, c, a, d)])
    assert keys == {"1706.03762": "vaswani2017attention", "1706.09999": "vaswani2017attentionb",
                    "1707.00001": "muller2017things", "1708.00001": "anon2017untitled"}
    assert export.citation_keys([export.Item(a.id, a, ())]) == {a.id: "vaswani2017attention"}


def test_doi_keywords_and_missing_papers():
    paper = _paper("1706.03762", "Attention Is All You Need", doi="10.1000/a_b")
    tags = {"nlp": ["1706.03762", "2501.00002"], "to read": ["1706.03762"]}
    text = export.export_library("bibtex", tags, {paper.id: paper})
    entries = {e["eprint"]: e for e in parse_bib(text).entries}
    assert DECODE(entries["1706.03762"]["doi"]) == "10.1000/a_b"
    assert entries["1706.03762"]["keywords"] == "nlp, to read"
    missing = entries["2501.00002"]
    assert missing["url"] == "https://arxiv.org/abs/2501.00002" and "not in this Paperfeed" in missing["note"]
    assert missing.key == "arxiv250100002" and "title" not in missing.fields_dict


def test_one_tag_and_whole_library_selection():
    tags = {"a": ["2501.00003", "2501.00001"], "b": ["2501.00001", "2501.00002"]}
    assert export.select(tags) == {"2501.00001": ("a", "b"), "2501.00002": ("b",), "2501.00003": ("a",)}
    assert export.select(tags, "b") == {"2501.00001": ("a", "b"), "2501.00002": ("b",)}
    with pytest.raises(export.UnknownTag):
        export.select(tags, "c")
    with pytest.raises(ValueError, match="unknown export format"):
        export.export_library("ris", tags, {})


# --- CSL JSON and CSV ---------------------------------------------------------------------------
def test_csl_json_items_for_zotero(real_papers):
    papers = [p for p in real_papers if any(not a.isascii() for a in p.authors)][:20]
    tags = {"x": [p.id for p in papers]}
    items = json.loads(export.export_library("csljson", tags, {p.id: p for p in papers}))
    assert len(items) == 20 and len({i["id"] for i in items}) == 20
    for item in items:
        paper = next(p for p in papers if p.id == item["number"])
        assert item["type"] == "article" and item["archive"] == "arXiv" and item["keyword"] == "x"
        assert item["title"] == paper.title and item["abstract"] == paper.abstract
        assert item["URL"] == f"https://arxiv.org/abs/{paper.id}"
        assert item["issued"] == {"date-parts": [[int(x) for x in paper.published.split("-")]]}
        assert [" ".join(filter(None, (a.get("given"), a.get("family"), a.get("suffix")))) or a.get("literal")
                for a in item["author"]] == [export.clean_name(a) for a in paper.authors]
    assert "DOI" in json.loads(export.to_csl_json([export.Item("1", _paper("1706.03762", "T", doi="10.1/x"), ())]))[0]


def test_csv_quotes_properly_and_defuses_formulas(real_papers):
    hostile = _paper("2501.00001", '=HYPERLINK("http://evil","x"), "quoted"\nline', authors=("@Bob Smith", "Ann Lee"))
    rows = [hostile, real_papers[0]]
    text = export.export_library("csv", {"-x": [p.id for p in rows] + ["2501.99999"]}, {p.id: p for p in rows})
    table = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(table[0]) == list(export.CSV_COLUMNS) and len(table) == 3
    first = next(r for r in table if r["id"] == "2501.00001")
    assert first["title"] == "'" + hostile.title and first["authors"] == "'@Bob Smith; Ann Lee"
    assert first["tags"] == "'-x" and first["url"] == "https://arxiv.org/abs/2501.00001"
    real = next(r for r in table if r["id"] == real_papers[0].id)
    assert real["title"] == real_papers[0].title and real["published"] == real_papers[0].published
    missing = next(r for r in table if r["id"] == "2501.99999")
    assert missing["title"] == "" and missing["url"].endswith("2501.99999")


def test_filenames_are_safe():
    assert export.filename("bibtex") == "paperfeed-library.bib"
    assert export.filename("csv", "to read +x") == "paperfeed-to-read-x.csv"
    assert export.filename("csljson", "...") == "paperfeed-tag.json"


# --- the CLI ------------------------------------------------------------------------------------
@pytest.fixture
def cli_library(settings, kaggle_sample, capsys, monkeypatch):
    from recommender.corpus.ingest import import_snapshots

    with PaperStore(settings.papers_path) as store:
        import_snapshots(store, [kaggle_sample])
        ids = sorted(p.id for p in store.iter_papers())[:3]
    assert run_cli(["useradd", "ann", "--password-stdin"], settings, capsys, "long enough passphrase 7\n",
                   monkeypatch)[0] == 0
    assert run_cli(["tag", "ann", "reading", *ids[:2]], settings, capsys)[0] == 0
    assert run_cli(["tag", "ann", "other", ids[2]], settings, capsys)[0] == 0
    return ids


def test_cli_exports_bibtex_to_stdout(settings, cli_library, capsys):
    code, out, err = run_cli(["library", "export", "ann", "--format", "bibtex"], settings, capsys)
    assert code == 0 and err == ""
    assert sorted(e["eprint"] for e in parse_bib(out).entries) == cli_library
    code, out, _ = run_cli(["library", "export", "ann", "--tag", "reading", "--format", "csljson"], settings, capsys)
    assert code == 0 and sorted(i["number"] for i in json.loads(out)) == cli_library[:2]


def test_cli_writes_a_file_atomically(settings, cli_library, capsys, tmp_path):
    target = tmp_path / "out" / "lib.csv"
    code, out, _ = run_cli(["library", "export", "ann", "--format", "csv", "-o", str(target)], settings, capsys)
    assert code == 0 and out == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    assert sorted(r["id"] for r in rows) == cli_library
    assert [p.name for p in target.parent.iterdir()] == ["lib.csv"]  # no temp file left


@pytest.mark.parametrize("argv,message", [
    (["nobody", "--format", "bibtex"], "no user 'nobody'"),
    (["ann", "--tag", "nope", "--format", "bibtex"], "ann has no tag 'nope'"),
])
def test_cli_unknown_user_or_tag_is_one_line_exit_2(settings, cli_library, capsys, argv, message):
    code, out, err = run_cli(["library", "export", *argv], settings, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("paperfeed library: error: ") and message in err


def test_cli_reports_papers_missing_from_the_store(settings, cli_library, capsys):
    assert run_cli(["untag", "ann", "other", cli_library[2]], settings, capsys)[0] == 0
    from recommender.accounts.users import UserStore

    with UserStore(settings.users_path, settings.limits) as users:  # a tag kept from an older store
        users.conn.execute("INSERT INTO tags (user_id, tag, paper_id, added_at) VALUES (1, 'old', '2501.99999', 0)")
        users.conn.commit()
    code, out, err = run_cli(["library", "export", "ann", "--tag", "old", "--format", "bibtex"], settings, capsys)
    assert code == 0 and "1 paper(s) are not in the paper store" in err
    (entry,) = parse_bib(out).entries
    assert entry["eprint"] == "2501.99999"
