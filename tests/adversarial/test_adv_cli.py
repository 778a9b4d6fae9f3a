"""The CLI under damage and contention: one line on stderr and exit 2, never a traceback or a hang.

Covers corrupt and locked databases, a read-only data directory, a full disk, an
unexpected bug, two runs of one job, and what a killed run leaves behind.
"""
import contextlib
import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from recommender.storage import artifacts
from recommender.corpus import store as store_module
from recommender.accounts import users as users_module
from recommender.storage.locks import job_lock
from recommender.settings import load_settings
from recommender.accounts.users import UserStore
from tests.conftest import REPO, run_cli
from tests.helpers import build_index

BAD = "2504.00003"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _one_line_error(code, err, command):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"paperfeed {command}: error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def built(settings):
    build_index(settings)
    with UserStore(settings.users_path) as users:
        alice = users.add_user("alice", "x")
        users.add_tags(alice.id, "qec", ["2504.00001", "2504.00003", "2504.00005"])
    return settings


def _cli(settings, *argv, timeout=60):
    """The real ``paperfeed`` in a subprocess; a hang fails the test after ``timeout`` seconds."""
    argv = [sys.executable, "-m", "jobs.cli", *argv, "--data-dir", str(settings.data_dir),
            "--models-dir", str(settings.models_dir)]
    try:
        return subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`paperfeed {argv[3]}` hung for over {timeout} s")


def _damage_row(settings, expression="CAST(x'ff00' AS TEXT)"):
    conn = sqlite3.connect(settings.papers_path)
    conn.execute(f"UPDATE papers SET value = {expression} WHERE key = ?", (BAD,))
    conn.commit()
    conn.close()


def test_compute_skips_and_reports_a_corrupt_row_instead_of_hanging(built):
    _damage_row(built)
    done = _cli(built, "compute")
    assert done.returncode == 0, done.stderr
    assert f"skipped 1 unreadable paper row(s) ({BAD})" in done.stderr and "check --repair" in done.stderr
    assert "15 papers" in done.stdout and "Traceback" not in done.stderr
    search = _cli(built, "similar", "2504.00001")  # the damaged row is skipped in the results' titles too
    assert search.returncode == 0, search.stderr


def _garbage(path):
    path.write_bytes(b"\x00garbage, not a database\n" * 100)
    for side in path.parent.glob(path.name + "-*"):
        side.unlink()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("target,argv", [
    ("papers", ["compute"]), ("papers", ["stats"]), ("papers", ["search", "surface code"]),
    ("papers", ["tag", "alice", "qec", "2504.00002"]),
    ("users", ["useradd", "bob", "--password-stdin"]), ("users", ["recommend", "alice"]), ("users", ["stats"]),
    ("users", ["train"]),
])
def test_a_corrupt_database_ends_in_one_line(built, capsys, monkeypatch, target, argv):
    _garbage(built.papers_path if target == "papers" else built.users_path)
    monkeypatch.setattr(users_module, "_INITIALISED", set())
    code, _, err = run_cli(argv, built, capsys, stdin="correct horse battery staple\n", monkeypatch=monkeypatch)
    line = _one_line_error(code, err, argv[0])
    assert "not" in line and "database" in line and f"{target}.sqlite" in line or "damaged" in line, line


@pytest.mark.timeout(60)
def test_locked_databases_fail_fast_with_a_hint(built, capsys, monkeypatch, kaggle_sample):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.3)
    monkeypatch.setattr(users_module, "BUSY_TIMEOUT_S", 0.3)
    for path, argv in ((built.papers_path, ["import", str(kaggle_sample)]),
                       (built.users_path, ["useradd", "bob", "--password-stdin"])):
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            code, _, err = run_cli(argv, built, capsys, stdin="correct horse battery staple\n",
                                   monkeypatch=monkeypatch)
            line = _one_line_error(code, err, argv[0])
            assert "database is locked" in line and "another process is writing" in line
            assert time.monotonic() - started < 10
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    code, out, err = run_cli(["stats"], built, capsys)  # and nothing was left half-done
    assert code == 0 and "papers: 16" in out


@contextlib.contextmanager
def read_only(*folders):
    """A read-only bind mount of each folder (needs root); else chmod 0o555. Yields whether the file
    system is really read-only (only then may the stores be read without SQLite's -shm index)."""
    if os.geteuid() != 0:
        for folder in folders:
            folder.chmod(0o555)
        try:
            yield False
        finally:
            for folder in folders:
                folder.chmod(0o755)
        return
    mounted = []
    try:
        for folder in folders:
            for cmd in (["mount", "--bind", str(folder), str(folder)],
                        ["mount", "-o", "remount,bind,ro", str(folder)]):
                done = subprocess.run(cmd, capture_output=True, text=True)
                if cmd[1] == "--bind" and not done.returncode:
                    mounted.append(folder)
                if done.returncode:
                    pytest.skip(f"running as root and cannot mount read-only here: {done.stderr.strip()}")
        yield True
    finally:
        for folder in reversed(mounted):
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_read_commands_work_on_a_read_only_data_dir(built, capsys, monkeypatch):
    assert run_cli(["train"], built, capsys)[0] == 0
    with read_only(built.data_dir, built.models_dir) as read_only_fs:
        with pytest.raises(OSError):
            (built.data_dir / "probe").write_text("x")
        for argv in (["stats"], ["search", "surface code"], ["similar", "2504.00001"], ["recommend", "alice"]):
            code, out, err = run_cli(argv, built, capsys)
            if read_only_fs:
                assert code == 0, (argv, err)
                assert out.strip() and "Traceback" not in err
            else:  # a directory only this user cannot write: said clearly (another user may be writing)
                assert "not writable by this user" in _one_line_error(code, err, argv[0])
        for argv in (["compute"], ["useradd", "bob", "--password-stdin"]):
            code, _, err = run_cli(argv, built, capsys, stdin="correct horse battery staple\n", monkeypatch=monkeypatch)
            line = _one_line_error(code, err, argv[0])
            assert "read-only" in line or "ermission" in line or "not writable" in line, line


@contextlib.contextmanager
def full_disk(folder, monkeypatch):
    """``folder`` on a tiny tmpfs with two free pages (as root), else ENOSPC faked at the npz writes."""
    mounted, keep = False, folder.with_name(folder.name + ".orig")
    if os.geteuid() == 0:
        shutil.move(folder, keep)
        folder.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                                 capture_output=True).returncode == 0
        if not mounted:
            folder.rmdir()
            shutil.move(keep, folder)
    try:
        if mounted:
            shutil.copytree(keep, folder, dirs_exist_ok=True)
            with open(folder / "filler", "wb", buffering=0) as handle:  # fill the disk, then free two pages
                with contextlib.suppress(OSError):
                    while True:
                        handle.write(b"\0" * 4096)
            os.truncate(folder / "filler", max(0, (folder / "filler").stat().st_size - 8192))
        else:
            real = np.savez

            def no_space(file, *args, **kwargs):
                real(file, *args, **kwargs)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(np, "savez", no_space)
        yield
    finally:
        if mounted:
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(folder)], capture_output=True)
            folder.rmdir()
            shutil.move(keep, folder)


def test_a_full_disk_keeps_the_current_generation(built, capsys, monkeypatch):
    before = artifacts.Generations(built.models_dir).current()
    with full_disk(built.models_dir, monkeypatch):
        code, _, err = run_cli(["compute"], built, capsys)
        line = _one_line_error(code, err, "compute")
        assert "No space left on device" in line and "the disk is full" in line, line
        assert artifacts.Generations(built.models_dir).current() == before
        assert not artifacts.find_temps(built.models_dir)
        code, out, err = run_cli(["search", "surface code"], built, capsys)
        assert code == 0 and out.strip(), err


def test_unexpected_errors_are_one_line_unless_debugging(built, capsys, monkeypatch):
    import jobs.query

    def bug(*args):
        raise TypeError("an internal bug")

    monkeypatch.setattr(jobs.query, "_stats", bug)
    code, _, err = run_cli(["stats"], built, capsys)
    line = _one_line_error(code, err, "stats")
    assert "unexpected TypeError: an internal bug" in line and "PAPERFEED_DEBUG=1" in line
    monkeypatch.setenv("PAPERFEED_DEBUG", "1")
    code, _, err = run_cli(["stats"], built, capsys)
    assert code == 2 and "Traceback" in err and "an internal bug" in err

    def oom(*args):
        raise MemoryError

    monkeypatch.delenv("PAPERFEED_DEBUG")
    monkeypatch.setattr(jobs.query, "_stats", oom)
    code, _, err = run_cli(["stats"], built, capsys)
    assert "out of memory" in _one_line_error(code, err, "stats")


def test_stats_reports_the_store_when_the_generation_is_damaged(built, capsys):
    gens = artifacts.Generations(built.models_dir)
    (gens.path(gens.current()) / "meta.json").write_text("{broken")
    matrix = gens.path(gens.current()) / "X.data.npy"
    matrix.write_bytes(matrix.read_bytes()[:200])  # truncated
    code, out, err = run_cli(["stats"], built, capsys)
    assert code == 0, err
    assert "papers: 16" in out and "generation_error" in out
    code, _, err = run_cli(["search", "surface code"], built, capsys)
    assert "check --repair" in _one_line_error(code, err, "search")


def test_two_runs_of_one_job_never_overlap(built, capsys):
    with job_lock(built.models_dir, "compute"):
        code, _, err = run_cli(["compute"], built, capsys)
        line = _one_line_error(code, err, "compute")
        assert f"another `paperfeed compute` is running (pid {os.getpid()})" in line
        assert run_cli(["train"], built, capsys)[0] == 0  # another job is not blocked
    assert run_cli(["compute"], built, capsys)[0] == 0
    # A holder in another process: refused while it lives, free the moment it is killed.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from recommender.storage.locks import job_lock\n"
         f"with job_lock({str(built.models_dir)!r}, 'train'):\n    print('held', flush=True); time.sleep(120)"],
        env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run_cli(["train"], built, capsys)
        assert f"another `paperfeed train` is running (pid {holder.pid})" in _one_line_error(code, err, "train")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert run_cli(["train"], built, capsys)[0] == 0
    assert (built.models_dir / "locks" / "train.lock").exists()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_next_run_removes_what_a_killed_run_left(built, capsys):
    dead, old = _dead_pid(), time.time() - 2 * 3600
    features, users = built.models_dir / "features", built.models_dir / "users"
    users.mkdir(exist_ok=True)
    stale = [features / f".X.data.npy.{dead}.abcd1234.tmp", features / f".CURRENT.{dead}.k2j3h4g5.tmp",
             users / f".7.npz.{dead}.zz9y8x7w.tmp", users / ".8.npz.q1w2e3r4.tmp"]  # the last: no pid, 2 h old
    fresh = [users / f".9.npz.{os.getpid()}.live1234.tmp", users / ".10.npz.n0p1d234.tmp"]  # a live writer; recent
    for path in stale + fresh:
        path.write_bytes(b"partial")
    os.utime(stale[-1], (old, old))
    gen_dir = features / f".gen-20250101T000000-000001-{dead}.tmp"
    gen_dir.mkdir()
    (gen_dir / "X.data.npy").write_bytes(b"partial")
    assert run_cli(["compute"], built, capsys)[0] == 0
    assert not gen_dir.exists() and not any(p.exists() for p in stale[:2])
    assert run_cli(["train"], built, capsys)[0] == 0
    assert not any(p.exists() for p in stale) and all(p.exists() for p in fresh)
