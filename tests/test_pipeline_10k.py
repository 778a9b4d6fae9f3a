"""End to end on the real 10k sample through the CLI: import, compute, tag, train, recommend."""
import json
import shutil

import pytest

from recommender.features.index import FeatureIndex
from recommender.corpus.store import PaperStore
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

TOPIC = "astro-ph"


def _topic_papers(settings):
    """Papers whose primary category is in astrophysics, in date order (categories are not features)."""
    index = FeatureIndex.load(settings.models_dir)
    with PaperStore(settings.papers_path, readonly=True) as store:
        papers = store.get_many(index.ids)
    return [pid for pid in index.ids if papers[pid].categories and papers[pid].categories[0].startswith(TOPIC)]


@pytest.fixture(scope="module")
def imported(tmp_path_factory, sample10k):
    """Import and compute through the CLI once for this module."""
    import io
    from contextlib import redirect_stdout

    from jobs.cli import main
    from recommender.settings import load_settings

    root = tmp_path_factory.mktemp("pipeline")
    s = load_settings(environ={}, data_dir=root / "data", models_dir=root / "models", n_jobs=1)
    dirs = ["--data-dir", str(s.data_dir), "--models-dir", str(s.models_dir)]
    for argv, key, expected in ((["import", str(sample10k)], "added", 10000), (["compute"], "papers", 10000)):
        out = io.StringIO()
        with redirect_stdout(out):
            assert main([*argv, "--json", *dirs]) == 0
        assert json.loads(out.getvalue())[key] == expected
    return s


@pytest.fixture
def pipeline(imported, tmp_path, capsys, monkeypatch):
    """A private copy of the imported data with one user, so tests cannot affect each other."""
    from recommender.settings import load_settings

    shutil.copytree(imported.data_dir, tmp_path / "data")
    shutil.copytree(imported.models_dir, tmp_path / "models")
    s = load_settings(environ={}, data_dir=tmp_path / "data", models_dir=tmp_path / "models", n_jobs=1)
    code, _, _ = run_cli(["useradd", "astro", "--password-stdin"], s, capsys, stdin="a long passphrase\n",
                         monkeypatch=monkeypatch)
    assert code == 0
    return s


def test_tagged_topic_dominates_recommendations(pipeline, capsys):
    s = pipeline
    topic = _topic_papers(s)
    assert len(topic) > 300  # the sample has ~900 astro-ph papers
    tagged = topic[::len(topic) // 10][:10]
    code, out, _ = run_cli(["tag", "astro", "stars", *tagged, "--json"], s, capsys)
    assert code == 0 and json.loads(out)["tagged"] == 10
    code, out, _ = run_cli(["train", "--json"], s, capsys)
    assert code == 0 and json.loads(out)["trained"] == ["astro"]
    code, out, _ = run_cli(["recommend", "astro", "--limit", "20", "--json"], s, capsys)
    results = json.loads(out)
    assert code == 0 and len(results) == 20
    assert not {r["id"] for r in results} & set(tagged)
    held_out = set(topic) - set(tagged)
    hits = sum(r["id"] in held_out for r in results)
    # Astrophysics is ~9% of the sample; a working model fills the top with it.
    assert hits >= 16, [r["title"] for r in results]
    assert all({"id", "title", "score"} <= set(r) for r in results)
    # Per-tag model and a date window give the same topic.
    code, out, _ = run_cli(["recommend", "astro", "--tag", "stars", "--since", "2026-01-01", "--json"], s, capsys)
    windowed = json.loads(out)
    assert code == 0 and all(r["date"] >= "2026-01-01" for r in windowed)
    assert sum(r["id"] in held_out for r in windowed) >= 8


def test_train_is_incremental(pipeline, capsys):
    s = pipeline
    topic = _topic_papers(s)
    run_cli(["tag", "astro", "stars", *topic[:5]], s, capsys)
    code, out, _ = run_cli(["train", "--json"], s, capsys)
    first = json.loads(out)
    assert first["trained"] == ["astro"] and 0 < first["max_bytes_per_model"] <= 64 * 1024  # compact models
    code, out, _ = run_cli(["train", "--json"], s, capsys)
    assert json.loads(out) | {"generation": None} == {"trained": [], "skipped": 1, "empty": [], "generation": None,
                                                      "passes": 1, "max_bytes_per_model": 0}
    run_cli(["untag", "astro", "stars", topic[0]], s, capsys)
    code, out, _ = run_cli(["train", "--json"], s, capsys)
    assert json.loads(out)["trained"] == ["astro"]
    code, out, _ = run_cli(["train", "--all", "--json"], s, capsys)
    assert json.loads(out)["trained"] == ["astro"]


def test_similar_search_and_stats(pipeline, capsys):
    s = pipeline
    code, out, _ = run_cli(["similar", "2503.11893", "--limit", "5", "--json"], s, capsys)
    results = json.loads(out)
    assert code == 0 and len(results) == 5
    assert sum("underwater" in r["title"].lower() for r in results) >= 3
    code, out, _ = run_cli(["search", "underwater image enhancement", "--json"], s, capsys)
    results = json.loads(out)
    assert code == 0 and "underwater" in results[0]["title"].lower()
    code, out, _ = run_cli(["search", "2503.11893v1", "--json"], s, capsys)
    assert [r["id"] for r in json.loads(out)] == ["2503.11893"]
    code, out, _ = run_cli(["stats", "--json"], s, capsys)
    stats = json.loads(out)
    assert code == 0 and stats["papers"] == 10000 and stats["users"] == 1
    assert (stats["first_date"], stats["last_date"]) == ("2025-03-18", "2026-07-01")


@pytest.mark.parametrize("argv, message", [
    (["similar", "abc"], "is not an arXiv id"),
    (["similar", "2101.00001"], "not in the feature index"),
    (["tag", "nobody", "t", "2503.11893"], "no user 'nobody'"),
    (["tag", "astro", "bad/tag", "2503.11893"], "tag must be"),
    (["recommend", "astro"], "no model for the current features"),
    (["search", "   "], "empty search query"),
])
def test_bad_input_is_a_clear_error_not_a_traceback(pipeline, capsys, argv, message):
    code, out, err = run_cli(argv, pipeline, capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("argv", [["recommend", "astro", "--since", "2026-13-01"], ["search", "x", "--limit", "0"],
                                  ["search", "x", "--limit", "-5"], ["search", "x", "--limit", "10000"]])
def test_bad_arguments_exit_2(pipeline, argv):
    from jobs.cli import main

    with pytest.raises(SystemExit) as exc:
        main([*argv, "--data-dir", str(pipeline.data_dir)])
    assert exc.value.code == 2
