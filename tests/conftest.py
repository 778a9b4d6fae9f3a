"""Shared fixtures: the real data in ../shared, temporary settings, and no network.

``PAPERFEED_SHARED`` names the shared folder (default: ``../shared`` beside the
repo). In CI (``CI=true``) missing data fails the run; elsewhere it skips with
the reason.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from recommender.settings import load_settings

REPO = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    return Path(os.environ.get("PAPERFEED_SHARED", REPO.parent / "shared")).resolve()


def require_shared(relative: str) -> Path:
    """Path of a file under the shared folder, or fail (CI) / skip (elsewhere)."""
    path = shared_root() / relative
    if not path.exists():
        reason = f"shared data missing: {path} (set PAPERFEED_SHARED to the folder that holds arxiv/)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def sample10k() -> Path:
    return require_shared("arxiv/corpus/arxiv-metadata-2025-2026-sample10k.jsonl.gz")


@pytest.fixture(scope="session")
def kaggle_sample() -> Path:
    return require_shared("arxiv/fixtures/kaggle_format/arxiv-metadata-snapshot-sample.jsonl")


@pytest.fixture(scope="session")
def arxiv_api_fixtures() -> Path:
    return require_shared("arxiv/fixtures/arxiv_api")


@pytest.fixture
def settings(tmp_path):
    """Settings on fresh temporary directories, small enough for unit tests."""
    return load_settings(
        environ={},
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        n_jobs=1,
        fetch_delay=0.0,
    )


class _NoNetwork(socket.socket):
    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")) or self.family == socket.AF_UNIX:
            return super().connect(address)
        raise OSError(f"tests run without a network: refused connection to {address!r}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Patch outbound connections away: only loopback and unix sockets are allowed."""
    monkeypatch.setattr(socket, "socket", _NoNetwork)
    yield


def run_cli(argv, settings, capsys=None, stdin: str | None = None, monkeypatch=None):
    """Run ``paperfeed`` in-process on ``settings``' directories; returns (exit code, stdout, stderr)."""
    import io
    import sys

    from jobs.cli import main

    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    argv = [*argv, "--data-dir", str(settings.data_dir), "--models-dir", str(settings.models_dir)]
    code = main(argv)
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


@pytest.fixture(scope="session")
def built10k(tmp_path_factory, sample10k):
    """The 10k real sample imported and computed once per test session (read-only for tests)."""
    from recommender.features import FeatureParams
    from recommender.features.index import compute_generation
    from recommender.corpus.ingest import import_snapshots
    from recommender.corpus.store import PaperStore

    root = tmp_path_factory.mktemp("built10k")
    s = load_settings(environ={}, data_dir=root / "data", models_dir=root / "models", n_jobs=1)
    with PaperStore(s.papers_path) as store:
        import_snapshots(store, [sample10k])
        compute_generation(store, s.models_dir, FeatureParams())
    return s


@pytest.fixture
def web_settings(built10k, tmp_path):
    """A private, writable copy of the 10k sample's store and artifacts for one web test."""
    import shutil

    shutil.copytree(built10k.data_dir, tmp_path / "data")
    shutil.copytree(built10k.models_dir, tmp_path / "models")
    return load_settings(environ={}, data_dir=tmp_path / "data", models_dir=tmp_path / "models", n_jobs=1)


@pytest.fixture
def make_app(web_settings):
    """Build the Flask app on the 10k copy; keyword arguments become config. CSRF is ON unless turned off."""
    from webapp import create_app

    apps = []

    def build(**config):
        app = create_app({"PRODUCTION": False, "TESTING": True, "RATELIMIT_ENABLED": False, **config},
                         settings=web_settings)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["paperfeed"].close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()
