"""``paperfeed check`` finds what is damaged; ``--repair`` sets it aside and keeps everything readable."""
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from recommender.storage import artifacts
from recommender.features import FeatureParams
from recommender.features.index import compute_generation
from recommender.storage.locks import job_lock
from recommender.corpus.store import PaperStore
from recommender.accounts.users import UserStore
from tests.conftest import run_cli
from tests.helpers import build_index, make_papers

BAD_ROWS = {"2504.00003": "CAST(x'ff00' AS TEXT)", "2504.00006": """'{"id": "2504.00006", "version": 1}'"""}


@pytest.fixture
def built(settings):
    """Two generations (the newer current), one user, one good user model."""
    build_index(settings)
    with PaperStore(settings.papers_path) as store:
        compute_generation(store, settings.models_dir, FeatureParams(min_df=1, max_df=1.0))
    with UserStore(settings.users_path) as users:
        users.add_user("alice", "x")
    np.savez(settings.models_dir / "spare.npz", x=np.arange(3))  # not a user model: left alone by check
    return settings


def _check(settings, capsys, *flags):
    code, out, err = run_cli(["check", *flags, "--json"], settings, capsys)
    return code, json.loads(out), err


def _problems(report, area):
    return next(s for s in report["sections"] if s["area"] == area)["problems"]


def test_a_healthy_install_checks_clean(built, capsys):
    code, out, err = run_cli(["check"], built, capsys)
    assert code == 0, out + err
    assert out.strip().endswith("healthy: no problems found")
    assert [line.split()[:2] for line in out.splitlines()[:5]] == [
        ["papers", "ok"], ["users", "ok"], ["features", "ok"], ["models", "ok"], ["temp", "ok"]]
    code, report, _ = _check(built, capsys)
    assert code == 0 and report["healthy"] and report["problems"] == 0


def test_check_finds_and_repair_sets_aside_each_kind_of_damage(built, capsys):
    conn = sqlite3.connect(built.papers_path)
    for key, value in BAD_ROWS.items():
        conn.execute(f"UPDATE papers SET value = {value} WHERE key = ?", (key,))
    conn.commit()
    conn.close()
    gens = artifacts.Generations(built.models_dir)
    older, newer = gens.complete()
    matrix = gens.path(newer) / "X.data.npy"
    matrix.write_bytes(matrix.read_bytes()[:200])  # cut short
    users = built.models_dir / "users"
    users.mkdir()
    (users / "7.npz").write_bytes(b"garbage")
    (users / "7.json").write_text("{}")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = users / f".8.npz.{int(dead.stdout)}.abcd1234.tmp"
    leftover.write_bytes(b"partial")

    code, report, _ = _check(built, capsys)
    assert code == 1 and not report["healthy"]
    assert sorted(p["item"] for p in _problems(report, "papers")) == sorted(BAD_ROWS)
    assert {p["item"] for p in _problems(report, "features")} == {"CURRENT", newer}
    assert [p["item"] for p in _problems(report, "models")] == ["7.npz"]
    assert [p["item"] for p in _problems(report, "temp")] == [str(leftover)]
    code, out, _ = run_cli(["check"], built, capsys)
    assert code == 1 and "run `paperfeed check --repair`" in out and "PROBLEM" in out

    code, report, _ = _check(built, capsys, "--repair")
    assert code == 0 and report["unrepaired"] == 0 and report["repaired"] == report["problems"] == 6
    # Paper rows: moved, exactly as they were, with the reason.
    conn = sqlite3.connect(built.papers_path)
    conn.text_factory = bytes
    moved = dict(conn.execute("SELECT key, value FROM papers_quarantine").fetchall())
    assert moved == {b"2504.00003": b"\xff\x00", b"2504.00006": b'{"id": "2504.00006", "version": 1}'}
    assert conn.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == 14
    conn.close()
    assert gens.current() == older and not gens.path(newer).exists()
    assert list((built.models_dir / "quarantine" / "features").iterdir())[0].name.startswith(newer)
    assert sorted(p.name.split(".")[1] for p in (built.models_dir / "quarantine" / "users").iterdir()) == ["json", "npz"]
    assert not leftover.exists() and (built.models_dir / "spare.npz").exists()

    code, report, _ = _check(built, capsys)
    assert code == 0 and report["healthy"]
    assert "2 rows in papers_quarantine" in report["sections"][0]["summary"]
    assert run_cli(["search", "surface code"], built, capsys)[0] == 0
    assert run_cli(["compute"], built, capsys)[0] == 0


def test_a_store_that_is_not_a_database_is_moved_aside(built, capsys):
    built.papers_path.write_bytes(b"not a database at all\n" * 50)
    code, report, _ = _check(built, capsys)
    assert code == 1 and "not an SQLite database" in _problems(report, "papers")[0]["problem"]
    code, report, _ = _check(built, capsys, "--repair")
    assert code == 0, report
    assert not built.papers_path.exists()
    assert [p.name.split(".")[0] for p in (built.data_dir / "quarantine").iterdir()] == ["papers"]


def test_damaged_pages_are_rebuilt_from_every_readable_row(settings, capsys):
    base = make_papers()
    with PaperStore(settings.papers_path) as store:
        store.upsert_many([dataclasses.replace(base[i % 16], id=f"2504.{10000 + i:05d}") for i in range(400)])
    pages = settings.papers_path.stat().st_size // 4096
    with open(settings.papers_path, "r+b") as handle:  # scribble over one leaf page in the middle
        handle.seek(pages // 2 * 4096 + 100)
        handle.write(b"\xa5" * 600)
    code, report, _ = _check(settings, capsys)
    assert code == 1 and "integrity check failed" in _problems(report, "papers")[0]["problem"]
    code, report, _ = _check(settings, capsys, "--repair")
    assert code == 0, report
    assert "readable rows" in _problems(report, "papers")[0]["action"]
    with PaperStore(settings.papers_path, readonly=True) as store:
        assert 380 <= len(list(store.iter_papers())) < 400  # one page of rows lost, the rest kept
    assert _check(settings, capsys)[0] == 0


def test_a_damaged_user_database_is_reported_never_moved(built, capsys):
    built.users_path.write_bytes(b"\x00" * 4096)
    code, report, _ = _check(built, capsys, "--repair")
    assert code == 1 and report["unrepaired"] == 1
    assert "restore users.sqlite from a backup" in _problems(report, "users")[0]["problem"]
    assert built.users_path.read_bytes() == b"\x00" * 4096
    code, out, _ = run_cli(["check", "--repair"], built, capsys)
    assert code == 1 and "need a person" in out


def test_repair_waits_for_no_job_but_refuses_to_run_beside_one(built, capsys):
    with job_lock(built.models_dir, "compute"):
        code, _, err = run_cli(["check", "--repair"], built, capsys)
        assert code == 2 and "another `paperfeed compute` is running" in err
        assert run_cli(["check"], built, capsys)[0] == 0  # checking alone takes no lock


def test_a_missing_current_pointer_is_restored(built, capsys):
    gens = artifacts.Generations(built.models_dir)
    newest = gens.current()
    gens.pointer.unlink()
    old = time.time() - 7200
    stray = gens.root / ".CURRENT.q1w2e3r4.tmp"  # an older release's temp name: no pid, two hours old
    stray.write_text("gen-x\n")
    os.utime(stray, (old, old))
    code, report, _ = _check(built, capsys)
    assert code == 1 and {p["item"] for p in _problems(report, "features")} == {"CURRENT"}
    assert _check(built, capsys, "--repair")[0] == 0
    assert gens.current() == newest and not stray.exists()
