"""recommender.library.formats on real-world exports (tests/fixtures/library, see its README) and bad files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.corpus.ids import InvalidArxivId, find_arxiv_id, parse_arxiv_id
from recommender.library import formats
from recommender.library.formats import FormatError

FIXTURES = Path(__file__).parent / "fixtures" / "library"


def parse_fixture(name: str, **kw) -> formats.Parsed:
    return formats.parse((FIXTURES / name).read_bytes(), filename=name, **kw)


def summary(parsed: formats.Parsed) -> list[tuple]:
    return [(e.key, e.arxiv_id, e.error is not None) for e in parsed.entries]


# --- ids in every form reference managers write ---------------------------------------------------
@pytest.mark.parametrize("raw,expected", [
    ("https://arxiv.org/pdf/1706.03762v5", ("1706.03762", 5)),
    ("https://arxiv.org/pdf/1706.03762v5.pdf", ("1706.03762", 5)),
    ("http://arxiv.org/pdf/hep-th/9901001", ("hep-th/9901001", None)),
    ("arxiv.org/abs/hep-th/9901001v2", ("hep-th/9901001", 2)),
    ("http://export.arxiv.org/abs/1605.08386?context=cs", ("1605.08386", None)),
    ("https://www.arxiv.org/abs/1605.08386/", ("1605.08386", None)),
    ("ARXIV:2503.01234", ("2503.01234", None)),
    ("arXiv: 2503.01234v3", ("2503.01234", 3)),
])
def test_parse_arxiv_id_takes_pdf_urls_and_label_variants(raw, expected):
    assert parse_arxiv_id(raw) == expected


@pytest.mark.parametrize("text,expected", [
    ("arXiv preprint arXiv:1706.03762", ("1706.03762", None)),          # Google Scholar's journal
    ("arXiv preprint astro-ph/0601001", ("astro-ph/0601001", None)),  # Google Scholar, old style
    ("10.48550/arXiv.2106.09685", ("2106.09685", None)),              # arXiv's DataCite DOI
    ("https://doi.org/10.48550/ARXIV.2106.09685", ("2106.09685", None)),
    ("arXiv:1706.03762 [cs]", ("1706.03762", None)),                  # Zotero's note
    ("arXiv e-prints, arXiv:2301.00001", ("2301.00001", None)),        # ADS
    ("see https://arxiv.org/abs/2301.00001v2 for details", ("2301.00001", 2)),
    ("Nature", None), ("published on arXiv and elsewhere", None), ("", None),
])
def test_find_arxiv_id_in_free_text(text, expected):
    assert find_arxiv_id(text) == expected


@pytest.mark.parametrize("text", ["https://arxiv.org/abs/banana", "arXiv:2301.0000", "10.48550/arXiv.12"])
def test_text_that_points_at_arxiv_with_a_broken_id_is_an_error(text):
    with pytest.raises(InvalidArxivId):
        find_arxiv_id(text)


# --- each tool's export -----------------------------------------------------------------------------
def test_zotero_bibtex_url_doi_and_number():
    parsed = parse_fixture("zotero.bib")
    assert parsed.format == "bibtex"
    assert summary(parsed) == [("tanaka_grammar_2025", "2503.15783", False), ("ji_enhancing_2025", "2503.17662", False),
                               ("li_teaching_2025", "2503.18432", False), ("lecun_deep_2015", None, False),
                               ("sutton_reinforcement_2018", None, False)]
    assert parsed.entries[0].title == "Grammar and Gameplay-aligned RL for Game Description Generation with LLMs"
    assert parsed.entries[4].title == "Reinforcement learning: an introduction"


def test_zotero_better_bibtex_eprint_with_versions_and_latex_titles():
    parsed = parse_fixture("zotero-better-bibtex.bib")
    entries = {e.key: e for e in parsed.entries}
    assert entries["nakashAdaptiVocabEnhancingLLM2025"].arxiv_id == "2503.19693"
    assert entries["nakashAdaptiVocabEnhancingLLM2025"].version == 1
    assert entries["iveCleanClearFeasibility2025"].title == "Clean & Clear: Feasibility of Safe LLM Clinical Guidance"
    assert entries["chisholmCoronalGasMagellanicAnalog2025"].title == \
        "Coronal Gas in Magellanic-Analog Dwarfs: Insights from the HESTIA Simulations"
    assert entries["silverMasteringGameGo2016"].arxiv_id is None


def test_mendeley_arxivid_and_groups_become_collections():
    parsed = parse_fixture("mendeley.bib")
    assert summary(parsed) == [("Yu2025", "2503.20417", False), ("Maisto2025", "2503.20623", False),
                               ("Jin2025", "2503.20978", False), ("He2016", None, False)]
    assert parsed.entries[0].collections == ("LLM", "Humor")
    assert parsed.entries[3].collections == ("Vision",)
    assert parsed.entries[0].title.startswith('CFunModel: A "Funny" Language Model')


def test_google_scholar_journal_field():
    parsed = parse_fixture("google-scholar.bib")
    assert [e.arxiv_id for e in parsed.entries] == ["2503.21679", "2503.21911", "2503.22746", "2503.22877", None]
    assert parsed.entries[1].title.endswith("with Large Language Models")
    assert "Müller" not in parsed.entries[1].title  # authors are not titles; Pöpper is decoded only if asked


def test_arxiv_export_bibtex_with_math_in_the_title():
    parsed = parse_fixture("arxiv.bib")
    assert [e.arxiv_id for e in parsed.entries] == ["2504.04736", "2505.08867", "2505.10441"]
    assert parsed.entries[1].title == "GA-NIFS: Mapping z≃3.5 AGN-driven ionized outflows in the COSMOS field"
    assert parsed.entries[0].title == "Synthetic Data Generation & Multi-Step RL for Reasoning & Tool Use"


def test_zotero_csl_json():
    parsed = parse_fixture("zotero-csl.json")
    assert parsed.format == "csl-json"
    assert [e.arxiv_id for e in parsed.entries] == ["2503.15783", "2503.19213", "2506.08427", None, None]
    assert parsed.entries[2].version == 1
    assert [e.title for e in parsed.entries[3:]] == ["Deep learning", "Reinforcement learning: an introduction"]


def test_zotero_rdf_items_and_collections():
    parsed = parse_fixture("zotero.rdf")
    assert parsed.format == "zotero-rdf"
    by_id = {e.arxiv_id: e for e in parsed.entries}
    assert set(by_id) == {"2503.15783", "2504.15237", None}
    assert len(parsed.entries) == 4  # two preprints, a journal article, a book; no attachment, note or journal
    assert set(by_id["2503.15783"].collections) == {"LLM agents", "Games / RL"}
    assert by_id["2504.15237"].collections == ("Galaxies",)
    book = next(e for e in parsed.entries if e.title.startswith("Reinforcement"))
    assert book.arxiv_id is None and book.collections == ("Games / RL",)


def test_id_list_with_old_style_versions_urls_comments_and_a_bad_line():
    parsed = parse_fixture("ids.txt")
    assert parsed.format == "ids"
    assert [(e.key, e.arxiv_id) for e in parsed.entries] == [
        ("line 2", "2506.08427"), ("line 3", "2503.15783"), ("line 4", "2503.17662"), ("line 5", "2503.18432"),
        ("line 6", "2504.04736"), ("line 8", None), ("line 9", "1605.08386"), ("line 10", "astro-ph/0601001")]
    assert "is not an arXiv id" in parsed.entries[5].error


# --- detection ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,fmt", [("zotero.bib", "bibtex"), ("zotero-csl.json", "csl-json"),
                                      ("zotero.rdf", "zotero-rdf"), ("ids.txt", "ids")])
def test_format_is_judged_by_content_not_the_name(name, fmt):
    assert formats.parse((FIXTURES / name).read_bytes(), filename="export.dat").format == fmt


def test_pasted_ids_without_a_name():
    assert [e.arxiv_id for e in formats.parse("1605.08386\n  https://arxiv.org/abs/2503.15783v1 \n").entries] == \
        ["1605.08386", "2503.15783"]


def test_utf16_with_a_byte_order_mark_is_read():
    data = "\ufeff@misc{k, title={Caf\u00e9}, eprint={1605.08386}, archivePrefix={arXiv}}".encode("utf-16-le")
    assert [(e.title, e.arxiv_id) for e in formats.parse(data).entries] == [("Café", "1605.08386")]


def test_forcing_a_format():
    with pytest.raises(FormatError, match="no BibTeX entries"):
        formats.parse(b"1605.08386\n", fmt="bibtex")
    with pytest.raises(FormatError, match="unknown format"):
        formats.parse(b"1605.08386\n", fmt="endnote")


# --- bad files and bad entries --------------------------------------------------------------------------
@pytest.mark.parametrize("data,message", [
    (b"Dear colleague,\nplease find attached my thoughts.\n", "not BibTeX, CSL JSON, Zotero RDF or a list"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "binary file"),
    (b"PK\x03\x04\x14\x00", "binary file"),
    (b"@article{a, title={Caf\xe9}}", "not valid UTF-8"),
    (b"[1, 2", "not valid JSON"),
    (b"{\"a\": " * 50 + b"1" + b"}" * 50, "nested deeper"),
    (b'"just a string"', "not BibTeX"),
    (b"<html><body>Not found</body></html>", "no Zotero items"),
    (b"<rdf:RDF><unclosed>", "not a readable RDF/XML"),
    (b"<!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]><rdf:RDF>&a;</rdf:RDF>", "declares a DOCTYPE"),
    (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a0 "lol">' + b"".join(
        b'<!ENTITY a%d "' % i + b"&a%d;" % (i - 1) * 10 + b'">' for i in range(1, 10)) + b"]><r>&a9;</r>",
     "declares a DOCTYPE"),  # billion laughs
])
def test_a_bad_file_is_one_clear_error(data, message):
    with pytest.raises(FormatError, match=message):
        formats.parse(data)


def test_braces_nested_thousands_deep_are_refused_quickly():
    with pytest.raises(FormatError, match=r"braces nest \d+ deep in the entry at line 2"):
        formats.parse(b"@misc{ok, title={x}}\n@misc{a, title={" + b"{x" * 100_000 + b"}")


def test_a_file_over_the_size_limit_is_refused_before_parsing():
    data = b"@misc{a, title={x}}\n" * 3_000_000  # 60 MB
    with pytest.raises(FormatError, match=r"larger than 16\.0 MiB, the most an import takes"):
        formats.parse(data)


@pytest.mark.parametrize("make", [
    lambda n: "".join(f"@misc{{k{i}, eprint={{2503.{i:05d}}}, archivePrefix={{arXiv}}}}\n" for i in range(n)),
    lambda n: json.dumps([{"id": str(i), "title": "t"} for i in range(n)]),
    lambda n: "".join(f"2503.{i:05d}\n" for i in range(n)),
])
def test_ten_thousand_entries_are_refused_with_the_limit(make):
    with pytest.raises(FormatError, match="holds 10,000 entries; one import takes at most 5,000"):
        formats.parse(make(10_000), max_bytes=50 * 2**20)


def test_malformed_entries_get_their_key_and_reason_and_the_rest_still_parse():
    text = r"""@misc{good, title={Heat-bath random walks}, eprint={1605.08386}, archivePrefix={arXiv}}
@misc{unclosed, title={Never closed
@misc{badurl, title={Sch{\"o}n \& {B}ig}, url={https://arxiv.org/abs/banana}}
@misc{badeprint, eprint={2301.0000}, archivePrefix={arXiv}}
@article{book-ish, title={{\em Emphasis} and $\alpha$-stable laws}, journal={J. Appl. Prob.}}
@misc{good, title={Duplicate key}, url={https://arxiv.org/pdf/2503.15783v1.pdf}}
"""
    entries = formats.parse(text.encode()).entries
    assert [(e.key, e.arxiv_id) for e in entries] == [
        ("good", "1605.08386"), ("unclosed", None), ("badurl", None), ("badeprint", None), ("book-ish", None),
        ("good", "2503.15783")]
    assert "line 2" in entries[1].error and "closing" in entries[1].error
    assert entries[2].title == "Schön & Big" and "points at arXiv" in entries[2].error
    assert "is not an arXiv id" in entries[3].error
    assert entries[4].error is None and entries[4].title == "Emphasis and α-stable laws"


def test_csl_items_that_are_not_objects_are_malformed():
    entries = formats.parse(b'[{"title": "ok", "URL": "https://arxiv.org/abs/1605.08386"}, 3, null]').entries
    assert [(e.key, e.arxiv_id, bool(e.error)) for e in entries] == [
        ("item 1", "1605.08386", False), ("item 2", None, True), ("item 3", None, True)]
