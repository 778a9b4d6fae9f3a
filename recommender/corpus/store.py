"""The paper store: one JSON value per versionless arXiv id in SQLite (never pickles).

The file keeps the layout sqlitedict used (table ``papers``, ``key TEXT PRIMARY
KEY, value BLOB``, WAL), so stores written by earlier releases open unchanged,
but it is read with the plain ``sqlite3`` module in the caller's own thread.
sqlitedict ran every query on a worker thread that died on an undecodable row
and left the caller waiting on its queue for ever; here every failure raises in
the caller, at once:

- A damaged **row** (not UTF-8, not JSON, not a paper record) never stops a scan.
  Values are fetched as bytes and decoded here, row by row. :meth:`PaperStore.iter_papers`
  and :meth:`PaperStore.get_many` skip the row and report it (a :class:`CorruptRow`)
  to ``on_corrupt`` (default: a logged warning); :meth:`PaperStore.get`, asked for
  that one paper, raises :class:`CorruptRow` (a ``ValueError``) naming it.
  :meth:`PaperStore.upsert_many` overwrites a damaged row with the new record.
  ``paperfeed check --repair`` moves damaged rows to the ``papers_quarantine`` table.
- A damaged **file** (not a database, malformed pages, no ``papers`` table)
  raises :class:`CorruptStore`, an ``sqlite3.DatabaseError`` naming the file.
- A **locked** database waits ``BUSY_TIMEOUT_S`` seconds, then raises
  ``sqlite3.OperationalError`` ("database is locked", with the path).

User data lives in :mod:`recommender.accounts.users`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from recommender.corpus.ids import is_valid_id, normalize_id, parse_arxiv_id
from recommender.corpus.papers import Paper

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30  # read when a connection opens, so tests may lower it
TABLE = "papers"
QUARANTINE_TABLE = "papers_quarantine"
SQLITE_HEADER = b"SQLite format 3\x00"
_SCAN_BATCH = 2000


class CorruptRow(ValueError):
    """One stored value that cannot be read back as a paper; ``key`` names it, ``reason`` says why."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"paper {key} in the paper store is unreadable ({reason}): "
                         "run `paperfeed check --repair`, then import or fetch it again")
        self.key = key
        self.reason = reason


class CorruptStore(sqlite3.DatabaseError):
    """The database file itself is damaged or is not a paper store."""


@dataclasses.dataclass
class UpsertResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.updated


def _encode(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _text(raw, what: str, key: str) -> str:
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptRow(key, f"{what} is not UTF-8 text (byte {exc.start})") from None
    if isinstance(raw, str):
        return raw
    raise CorruptRow(key, f"{what} is {'NULL' if raw is None else type(raw).__name__}, not text")


def decode_row(raw_key, raw_value) -> tuple[str, dict]:
    """``(id, record)`` from one stored row as fetched (bytes or text), or :class:`CorruptRow`.

    A cheap structural check, not full validation (``check`` does that): the value is a JSON
    object whose ``id`` is the key, with the fields and types :meth:`Paper.from_dict` relies on.
    """
    key = _text(raw_key, "the key", repr(raw_key)[:40])
    text = _text(raw_value, "the value", key)
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CorruptRow(key, f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(record, dict):
        raise CorruptRow(key, f"JSON {type(record).__name__}, not an object")
    if record.get("id") != key:
        raise CorruptRow(key, f"its id is {str(record.get('id'))[:40]!r}")
    version = record.get("version")
    if type(version) is not int or version < 1:
        raise CorruptRow(key, "no valid version")
    for name in ("title", "abstract", "published", "updated"):
        if not isinstance(record.get(name), str):
            raise CorruptRow(key, f"field {name!r} is missing or not text")
    for name in ("authors", "categories"):
        value = record.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CorruptRow(key, f"field {name!r} is not a list of text")
    return key, record


def _warn(bad: CorruptRow) -> None:
    log.warning("%s", bad)


def read_only_fs(path: Path) -> bool:
    """Whether ``path`` lies on a file system mounted read-only (where no process can write it)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_header(path: Path, what: str = "paper store") -> None:
    """Raise :class:`CorruptStore` unless ``path`` is empty or starts like an SQLite database.

    SQLite itself would only notice on the first query; this names the file and says what to do.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    if head and head != SQLITE_HEADER:
        raise CorruptStore(f"{path} is not an SQLite database (damaged or overwritten): the {what} cannot be read; "
                           "restore it from a backup or move it away and import again")


def not_writable(path: Path) -> sqlite3.OperationalError:
    """The error for a WAL database in a directory this user may read but not write."""
    return sqlite3.OperationalError(
        f"unable to open database file {path}: its directory is not writable by this user, and SQLite needs "
        "to create the -shm index beside a WAL database; run as the user that owns the data directory, or give "
        "its group write access")


def connect(path: Path, readonly: bool, timeout: float | None = None) -> sqlite3.Connection:
    """A plain sqlite3 connection (autocommit, usable from any thread under the caller's lock).

    ``readonly`` opens with ``mode=ro``. A WAL database also needs its ``-shm`` index beside it,
    which SQLite cannot create in a read-only directory: on a file system mounted read-only
    (where nothing can write the file) the database is then opened ``immutable``; a directory
    that is only not writable for this user (another user's jobs may be writing) gives an
    error saying so. TEXT comes back as bytes so that :func:`decode_row`, not the driver,
    decides what an undecodable value means.
    """
    path = Path(path)
    timeout = BUSY_TIMEOUT_S if timeout is None else timeout
    check_header(path)
    uri = path.resolve().as_uri()
    conn = None
    try:
        if readonly:
            conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=timeout, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            except sqlite3.OperationalError as exc:
                conn.close()
                conn = None
                if not read_only_fs(path.parent):
                    if os.access(path.parent, os.W_OK):
                        raise
                    raise not_writable(path) from exc
                conn = sqlite3.connect(uri + "?immutable=1", uri=True, timeout=timeout, isolation_level=None,
                                       check_same_thread=False)
        else:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        conn.text_factory = bytes
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, sqlite3.OperationalError):
            raise _located(exc, path) from exc
        raise CorruptStore(f"{path} cannot be read as a database ({exc}): "
                           "restore it from a backup or move it away and import again") from exc
    return conn


def _located(exc: sqlite3.OperationalError, path: Path) -> sqlite3.OperationalError:
    """The same error class with the file named (sqlite3's messages never say which database)."""
    if str(path) in str(exc):
        return exc
    located = sqlite3.OperationalError(f"{exc} ({path})")
    located.sqlite_errorname = getattr(exc, "sqlite_errorname", None)
    return located


class PaperStore:
    """Paper metadata keyed by versionless id. Use as a context manager; one instance may be
    shared by threads (each call takes the instance's lock).

    Values are JSON text, never pickles, so any process may read them safely. ``on_corrupt``
    receives each :class:`CorruptRow` skipped by :meth:`get_many` and :meth:`iter_papers`
    (default: logged as a warning); ``corrupt_rows`` counts them.
    """

    def __init__(self, path: Path, readonly: bool = False, on_corrupt: Callable[[CorruptRow], None] | None = None):
        path = Path(path)
        if readonly and not path.exists():
            raise FileNotFoundError(f"no paper store at {path}: run `paperfeed import` or `paperfeed fetch` first")
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.readonly = readonly
        self.on_corrupt = on_corrupt or _warn
        self.corrupt_rows = 0
        self._lock = threading.RLock()
        self._conn = connect(path, readonly)
        try:
            with self._guard():
                if readonly:
                    if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                              (TABLE,)).fetchone():
                        raise CorruptStore(f"{path} has no {TABLE!r} table: it is not a Paperfeed paper store")
                else:
                    if self._conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != b"wal":
                        self._conn.execute("PRAGMA journal_mode = WAL")
                    self._conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, never corrupt
                    self._conn.execute(f'CREATE TABLE IF NOT EXISTS "{TABLE}" (key TEXT PRIMARY KEY, value BLOB)')
        except BaseException:
            self._conn.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _guard(self):
        """Hold the lock; name the file in sqlite errors, and call damage :class:`CorruptStore`."""
        with self._lock:
            try:
                yield
            except CorruptStore:
                raise
            except sqlite3.OperationalError as exc:
                raise _located(exc, self.path) from exc
            except sqlite3.DatabaseError as exc:
                raise CorruptStore(f"{self.path} is damaged ({exc}): run `paperfeed check`; restore it from a "
                                   "backup or import again") from exc

    def _report(self, bad: CorruptRow) -> None:
        self.corrupt_rows += 1
        self.on_corrupt(bad)

    def __len__(self) -> int:
        """Stored rows, damaged ones included."""
        with self._guard():
            return self._conn.execute(f'SELECT COUNT(*) FROM "{TABLE}"').fetchone()[0]

    def __contains__(self, pid: str) -> bool:
        with self._guard():
            return self._conn.execute(f'SELECT 1 FROM "{TABLE}" WHERE key = ?', (pid,)).fetchone() is not None

    def get(self, pid: str) -> Paper | None:
        """The paper, or None. ``pid`` may carry a version; it is stripped.

        A damaged row raises :class:`CorruptRow`: asked for one paper, "it does not exist" would be wrong.
        """
        key = normalize_id(pid)
        with self._guard():
            row = self._conn.execute(f'SELECT key, value FROM "{TABLE}" WHERE key = ?', (key,)).fetchone()
        if row is None:
            return None
        return Paper.from_dict(decode_row(*row)[1], trusted=True)

    def get_many(self, pids: Iterable[str]) -> dict[str, Paper]:
        """Papers for the ids that exist, read in one query per 500 ids; malformed ids are skipped,
        and so are damaged rows (reported to ``on_corrupt``)."""
        wanted = {parse_arxiv_id(pid)[0] for pid in pids if is_valid_id(pid)}
        return {pid: Paper.from_dict(value, trusted=True) for pid, value in self._get_raw(wanted).items()}

    def _get_raw(self, pids: set[str], damaged: set[str] | None = None) -> dict[str, dict]:
        """Stored records for many ids in a few queries (one round trip per 500 ids).

        Damaged rows are reported and left out; their keys go to ``damaged`` when given.
        """
        found, ids = {}, sorted(pids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            with self._guard():
                rows = self._conn.execute(
                    f'SELECT key, value FROM "{TABLE}" WHERE key IN ({",".join("?" * len(chunk))})', chunk).fetchall()
            for raw_key, raw_value in rows:
                try:
                    key, record = decode_row(raw_key, raw_value)
                except CorruptRow as bad:
                    self._report(bad)
                    if damaged is not None:
                        damaged.add(bad.key)
                    continue
                found[key] = record
        return found

    def iter_papers(self, on_corrupt: Callable[[CorruptRow], None] | None = None) -> Iterator[Paper]:
        """Every readable paper, read in one SELECT: a consistent snapshot even while an import runs (WAL).

        The scan has a connection of its own, so a long scan never holds the shared one.
        Damaged rows are skipped and reported to ``on_corrupt`` (default: the store's).
        """
        report = on_corrupt or self.on_corrupt
        conn = connect(self.path, readonly=True)
        try:
            cursor = conn.execute(f'SELECT key, value FROM "{TABLE}" ORDER BY rowid')
            while True:
                try:
                    rows = cursor.fetchmany(_SCAN_BATCH)
                except sqlite3.OperationalError as exc:
                    raise _located(exc, self.path) from exc
                except sqlite3.DatabaseError as exc:
                    raise CorruptStore(f"{self.path} is damaged ({exc}): run `paperfeed check`") from exc
                if not rows:
                    return
                for raw_key, raw_value in rows:
                    try:
                        _, record = decode_row(raw_key, raw_value)
                    except CorruptRow as bad:
                        self.corrupt_rows += 1
                        report(bad)
                        continue
                    yield Paper.from_dict(record, trusted=True)
        finally:
            conn.close()

    def upsert_many(self, papers: Iterable[Paper]) -> UpsertResult:
        """Insert or replace papers in one transaction.

        A paper replaces the stored one only if it is a newer version, or the
        same version with different metadata. Older versions and identical
        records leave the store unchanged, so re-importing is a no-op. A damaged
        stored row is replaced by the new record (counted as updated).
        """
        if self.readonly:
            raise PermissionError(errno.EROFS, f"the paper store {self.path} was opened read-only")
        result = UpsertResult()
        papers = list(papers)
        with self._guard():
            self._conn.execute("BEGIN IMMEDIATE")  # the write lock first: no writer slips in between
            try:
                damaged: set[str] = set()
                stored = self._get_raw({p.id for p in papers}, damaged)
                pending: dict[str, dict] = {}
                for paper in papers:
                    new = paper.to_dict()
                    old = pending.get(paper.id) or stored.get(paper.id)
                    if old is None and paper.id not in damaged:
                        result.added += 1
                    elif old is None:
                        result.updated += 1
                    elif old == new or Paper.from_dict(old, trusted=True).newer_than(paper):
                        result.unchanged += 1
                        continue
                    else:
                        result.updated += 1
                    pending[paper.id] = new
                if pending:
                    self._conn.executemany(f'INSERT OR REPLACE INTO "{TABLE}" (key, value) VALUES (?, ?)',
                                           [(k, _encode(v)) for k, v in pending.items()])
                self._conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
        return result
