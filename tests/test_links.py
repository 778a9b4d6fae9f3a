"""Links mined from abstracts and comments (recommender.corpus.links): real arXiv text and known answers."""
from __future__ import annotations

import gzip
import json

import pytest

from recommender.corpus.links import Link, classify, code_url, find_links, split_urls

# Real papers of the 10k sample, each showing one way links are written, with the answer read by hand.
REAL = {
    # \url{...} followed by the sentence's full stop
    "2504.04704": ("abstract", "github", "https://github.com/AI-Lab-China-Merchants-Bank/LagKV"),
    # a closing parenthesis and a full stop after the URL: "(... https://github.com/cerai-iitm/LExT). Apply"
    "2504.06227": ("abstract", "github", "https://github.com/cerai-iitm/LExT"),
    # "repository(https://github.com/eai-lab/On-device-Sora)."
    "2503.23796": ("abstract", "github", "https://github.com/eai-lab/On-device-Sora"),
    # \href{url}{url}: one link, not two
    "2503.13946": ("abstract", "github", "https://github.com/sidiangongyuan/ACCO"),
    # a space after the scheme: "https:// github.com/DeepLearnXMU/Faithful-RAG"
    "2506.08938": ("abstract", "github", "https://github.com/DeepLearnXMU/Faithful-RAG"),
    # GitLab on its own host, with a trailing slash and full stop
    "2601.01939": ("abstract", "gitlab", "https://gitlab.inria.fr/robotlearn/OpenSocInt/"),
    "2505.09858": ("abstract", "gitlab", "https://gitlab.com/nct_tso_public/surgvgen"),
    # in the comments, after an arXiv link that is left out
    "2510.20233": ("comments", "github", "http://github.com/svenbuder/golden_thread_II"),
}


@pytest.fixture(scope="module")
def real_papers(sample10k):
    wanted, found = set(REAL) | {"2503.20417", "2503.12369", "2503.13477", "2503.13740"}, {}
    with gzip.open(sample10k, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["id"] in wanted:
                found[record["id"]] = record
    assert set(found) == wanted
    return found


@pytest.mark.parametrize("pid", sorted(REAL))
def test_code_links_in_real_abstracts(real_papers, pid):
    field, kind, url = REAL[pid]
    paper = real_papers[pid]
    links = find_links(paper["abstract"], paper.get("comments"))
    assert Link(url, kind) in links
    assert code_url(links) == url
    assert url in (paper[field] or "").replace(":// ", "://")
    assert all("arxiv.org" not in link.url for link in links)


def test_bitbucket():  # 2510.25824 of the full 2025-2026 corpus (not in the 10k sample)
    text = "The code is available at https://bitbucket.org/pbehroozi/ray-tracing-sampler/src ."
    assert code_url(find_links(text)) == "https://bitbucket.org/pbehroozi/ray-tracing-sampler/src"


def test_real_model_hub_project_page_and_anonymous_links(real_papers):
    hub = find_links(real_papers["2503.20417"]["abstract"])  # two Hugging Face links and a video, no code
    assert [link.kind for link in hub] == ["huggingface", "huggingface", "web"] and code_url(hub) is None
    assert hub[2].url == "https://youtu.be/MOsISOJ66Ms"
    page = find_links(real_papers["2503.12369"]["abstract"])
    assert Link("https://studyingfufu.github.io/L2COcc/", "project") in page
    anonymous = find_links(real_papers["2503.13477"]["abstract"])  # "https:// anonymous.4open.science/..."
    assert anonymous[0] == Link("https://anonymous.4open.science/r/Bone-Loss-Keypoint-Detection-Code", "web")
    # "available at www.github.com." is GitHub's front page, not a repository
    assert code_url(find_links(real_papers["2503.13740"]["abstract"])) is None


def test_split_urls_gives_the_text_back(real_papers):
    for paper in real_papers.values():
        for text in (paper["abstract"], paper.get("comments") or ""):
            assert "".join(piece for piece, _ in split_urls(text)) == text


@pytest.mark.parametrize("text, url", [
    ("see https://en.wikipedia.org/wiki/Foo_(bar)).", "https://en.wikipedia.org/wiki/Foo_(bar)"),
    ("code: https://github.com/a/b,", "https://github.com/a/b"),
    ("[https://github.com/a/b]", "https://github.com/a/b"),
    ("\"https://github.com/a/b\"; more", "https://github.com/a/b"),
    ("wrapped https://\ngithub.com/a/b here", "https://github.com/a/b"),
    ("at www.example.org/page.", "https://www.example.org/page"),
])
def test_trailing_punctuation_and_breaks(text, url):
    assert [link.url for link in find_links(text)] == [url]


@pytest.mark.parametrize("text", [
    "javascript:alert(1)", "ftp://example.org/file", "mail me at someone@www.example.org",
    "data:text/html,<script>", "https://", "https://localhost/x", "http://<script>.org",
])
def test_no_link_that_is_not_http_to_a_host(text):
    assert find_links(text) == []
    assert split_urls(text) == [(text, None)]


def test_classify_and_preference():
    assert classify("https://arxiv.org/abs/2501.00001") is None
    assert classify("https://export.arxiv.org/abs/2501.00001") is None
    assert classify("https://github.com/org") == "web"
    assert classify("https://huggingface.co/datasets/x/y") == "huggingface"
    links = find_links("page https://x.github.io/p and https://gitlab.com/a/b", "code https://github.com/c/d")
    assert [link.kind for link in links] == ["project", "gitlab", "github"]
    assert code_url(links) == "https://github.com/c/d"  # GitHub first, as Papers with Code did
    assert find_links("https://github.com/a/b and https://github.com/a/b/") == [Link("https://github.com/a/b", "github")]


def test_a_url_followed_by_thousands_of_brackets_is_trimmed_once():
    """The bracket balance is kept while trimming (a quadratic recount took seconds on such a tail)."""
    text = "Code: https://github.com/a/b" + ")" * 30000 + "]" * 30000 + "."
    assert [link.url for link in find_links(text, "")] == ["https://github.com/a/b"]
    assert code_url(find_links("(see https://github.com/a/b_(c)).", "")) == "https://github.com/a/b_(c)"
