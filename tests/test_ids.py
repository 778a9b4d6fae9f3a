import pytest

from recommender.corpus.ids import InvalidArxivId, is_valid_id, normalize_id, parse_arxiv_id


@pytest.mark.parametrize("raw, expected", [
    ("2503.01234", ("2503.01234", None)),
    ("2503.01234v2", ("2503.01234", 2)),
    ("0704.0001", ("0704.0001", None)),
    ("1412.9999v10", ("1412.9999", 10)),
    ("hep-th/9901001", ("hep-th/9901001", None)),
    ("math.GT/0309136v3", ("math.GT/0309136", 3)),
    ("cond-mat/0102536v1", ("cond-mat/0102536", 1)),
    ("https://arxiv.org/abs/1605.08386v1", ("1605.08386", 1)),
    ("arXiv:2503.01234", ("2503.01234", None)),
    ("  2503.01234 ", ("2503.01234", None)),
])
def test_valid_ids(raw, expected):
    assert parse_arxiv_id(raw) == expected


@pytest.mark.parametrize("raw, reason", [
    ("abc", "is not an arXiv id"),
    ("", "is not an arXiv id"),
    ("0000.0000", "month 00"),
    ("2513.01234", "month 13"),
    ("2503.1234", "five digits"),
    ("1412.00001", "five-digit numbers start in 1501"),
    ("2503.01234v0", "is not an arXiv id"),
    ("2503.01234v", "is not an arXiv id"),
    ("2503.0١234", "is not an arXiv id"),  # Arabic-Indic digit: str.isdigit() says yes, arXiv says no
    ("２５０３.01234", "is not an arXiv id"),  # full-width digits
    ("hep-th/990100", "is not an arXiv id"),
    ("HEP-TH/9901001", "is not an arXiv id"),
    ("2503.01234/../../etc", "is not an arXiv id"),
    ("<script>", "is not an arXiv id"),
])
def test_invalid_ids_give_clear_errors(raw, reason):
    with pytest.raises(InvalidArxivId, match=reason):
        parse_arxiv_id(raw)
    assert not is_valid_id(raw)


def test_non_string_is_rejected():
    with pytest.raises(InvalidArxivId, match="must be text"):
        parse_arxiv_id(2503.01234)


def test_normalize_strips_version():
    assert normalize_id("2104.12255v1") == "2104.12255"
