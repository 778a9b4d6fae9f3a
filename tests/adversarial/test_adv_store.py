"""A damaged paper store never hangs a process: a bad row is skipped and reported, a bad file is a clear error.

Every store call here runs on a helper thread with a deadline, so code that hangs
(sqlitedict's worker thread died on a decode error, and the caller waited for ever)
fails the test instead of stopping the run.
"""
import contextlib
import dataclasses
import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest

from recommender.corpus import store as store_module
from recommender.corpus.store import CorruptRow, CorruptStore, PaperStore
from tests.helpers import make_papers

DEADLINE_S = 20
BAD = "2504.00003"

# Ways one stored value can be unreadable; the second to last is what made `compute` and `serve` hang.
CORRUPTIONS = {
    "blob": "x'ff00'",
    "not-utf8-text": "CAST(x'ff00' AS TEXT)",
    "not-json": "'not json'",
    "json-list": "'[1, 2]'",
    "wrong-record": """'{"id": 5}'""",
    "null": "NULL",
}


def bounded(fn, *args):
    """``fn(*args)`` on a daemon thread; fails the test if it has not returned within the deadline."""
    box = {}

    def work():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 -- handed to the test
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} hung for over {DEADLINE_S} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


@contextlib.contextmanager
def opened(*args):
    """A store opened and closed under the deadline (closing waited on a dead thread, too)."""
    store = bounded(PaperStore, *args)
    try:
        yield store
    finally:
        bounded(store.close)


def _store_with(path, expression: str | None = None):
    """A store as earlier releases wrote it (through sqlitedict), so these tests also show it still opens."""
    from sqlitedict import SqliteDict

    with SqliteDict(str(path), tablename="papers", journal_mode="WAL", encode=store_module._encode,
                    decode=json.loads) as old:
        old.update({p.id: p.to_dict() for p in make_papers()})
        old.commit()
    if expression is not None:
        conn = sqlite3.connect(path)
        conn.execute(f"UPDATE papers SET value = {expression} WHERE key = ?", (BAD,))
        conn.commit()
        conn.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_damaged_row_is_skipped_reported_and_replaced(tmp_path, kind):
    path = tmp_path / "papers.sqlite"
    _store_with(path, CORRUPTIONS[kind])
    seen = []
    with opened(path, True, seen.append) as store:
        ids = [p.id for p in bounded(lambda: list(store.iter_papers()))]
        assert len(ids) == 15 and BAD not in ids
        assert [b.key for b in seen] == [BAD] and store.corrupt_rows == 1
        found = bounded(store.get_many, [BAD, "2504.00001"])
        assert list(found) == ["2504.00001"]
        with pytest.raises(CorruptRow, match=BAD):
            bounded(store.get, BAD)
        assert bounded(store.get, "2504.00004").id == "2504.00004"
        assert bounded(len, store) == 16 and bounded(store.__contains__, BAD)
        # A shared store (the web app's) answers from several threads at once.
        results = [None] * 8
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, len(store.get_many(ids))))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE_S)
        assert results == [15] * 8
    # Importing the paper again replaces the damaged row.
    with opened(path) as store:
        result = bounded(store.upsert_many, make_papers())
        assert (result.added, result.updated, result.unchanged) == (0, 1, 15)
        assert bounded(store.get, BAD).id == BAD


@pytest.mark.parametrize("damage", ["garbage", "truncated-header", "zero-page", "empty-readonly"])
def test_a_damaged_file_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "papers.sqlite"
    _store_with(path)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not a database\n" * 200)
    elif damage == "truncated-header":
        path.write_bytes(data[:10])
    elif damage == "zero-page":  # the header page wiped: the file is no longer recognisable
        path.write_bytes(bytes(4096) + data[4096:])
    else:
        path.write_bytes(b"")
    for side in tmp_path.glob("papers.sqlite-*"):
        side.unlink()
    for readonly in (True, False) if damage != "empty-readonly" else (True,):
        with pytest.raises(sqlite3.DatabaseError) as raised:
            with opened(path, readonly) as store:
                bounded(lambda: list(store.iter_papers()))
        assert isinstance(raised.value, CorruptStore) and str(path) in str(raised.value)


def test_damaged_pages_raise_instead_of_hanging(tmp_path):
    path = tmp_path / "papers.sqlite"
    base = make_papers()
    with PaperStore(path) as store:
        store.upsert_many([dataclasses.replace(base[i % 16], id=f"2504.{10000 + i:05d}") for i in range(400)])
    pages = path.stat().st_size // 4096
    with open(path, "r+b") as handle:  # scribble over the middle of the table's leaf pages
        handle.seek(pages // 2 * 4096 + 100)
        handle.write(b"\xa5" * 2000)
    with opened(path, True) as store:
        with pytest.raises(CorruptStore, match="papers.sqlite is damaged"):
            bounded(lambda: list(store.iter_papers()))


def test_a_locked_store_fails_within_its_busy_timeout(tmp_path, monkeypatch):
    path = tmp_path / "papers.sqlite"
    _store_with(path)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.3)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with opened(path) as store:
            assert bounded(len, store) == 16  # WAL: readers are not blocked by the writer
            started = time.monotonic()
            with pytest.raises(sqlite3.OperationalError, match="locked") as raised:
                bounded(store.upsert_many, [dataclasses.replace(make_papers()[0], title="changed")])
            assert time.monotonic() - started < 5
            assert str(path) in str(raised.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_read_only_directory_is_read_or_refused_clearly(tmp_path):
    """A WAL database needs its -shm index beside it. On a read-only file system (nothing can write there)
    the store opens the file immutable; a directory only this user cannot write is a clear error."""
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "papers.sqlite"
    _store_with(path)
    if os.geteuid() == 0:  # root ignores permissions: a read-only bind mount instead
        for cmd in (["mount", "--bind", str(folder), str(folder)], ["mount", "-o", "remount,bind,ro", str(folder)]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                subprocess.run(["umount", str(folder)], capture_output=True)
                pytest.skip(f"running as root and cannot mount read-only here: {done.stderr.strip()}")
        try:
            with opened(path, True) as store:
                assert len(bounded(lambda: list(store.iter_papers()))) == 16
        finally:
            if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    else:
        folder.chmod(0o555)
        try:
            with pytest.raises(sqlite3.OperationalError, match="not writable by this user"):
                with opened(path, True) as store:
                    bounded(lambda: list(store.iter_papers()))
        finally:
            folder.chmod(0o755)
