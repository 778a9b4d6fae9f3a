"""``paperfeed check``: verify everything the jobs and the web app read, and repair what can be.

What is checked (:func:`check`):

- **papers**: ``papers.sqlite`` passes ``PRAGMA integrity_check`` (``quick_check`` with
  ``quick``), and every row decodes to a valid paper stored under its own id.
- **users**: ``users.sqlite`` passes the integrity check.
- **features**: ``features/CURRENT`` names a complete generation; every generation's files
  load (``allow_pickle=False``; a missing or truncated ``.npy`` is named) and their shapes agree,
  ``XT`` holding as many entries per row and column as ``X`` (with ``quick``, the current one only).
- **models**: every ``models/users/<id>.npz`` loads.
- **temp**: no temp file or generation left by a killed run (see :func:`artifacts.is_stale`).

What ``repair`` does (it keeps everything that can be read):

- damaged paper rows move to the ``papers_quarantine`` table of the same database
  (``key, value, reason, quarantined_at``), in one transaction; import or fetch them again.
- an index-only fault in a database is fixed with ``REINDEX``; a paper store with damaged
  pages is rebuilt from every row that can still be read, and the damaged file is kept as
  ``<data_dir>/quarantine/papers.sqlite.<stamp>`` (restart the web server afterwards: it
  still has the old file open). A file that is not a database at all is moved there too.
  A damaged user database is never moved or rebuilt: that needs a person (and a backup).
- an unreadable generation moves to ``<models_dir>/quarantine/features/``, and CURRENT is
  repointed to the newest complete one (or removed if none is left: run ``compute``).
- an unreadable user model (and its ``.json`` record) moves to ``<models_dir>/quarantine/users/``;
  the next ``train`` retrains that user.
- stale temp files are deleted.

The library never prints; ``jobs/check.py`` renders the :class:`Report`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recommender.storage import artifacts
from recommender.features import AUTHORS, TEXT, Block, rowids
from recommender.corpus.papers import Paper
from recommender.settings import Settings
from recommender.corpus.store import QUARANTINE_TABLE, TABLE, CorruptRow, CorruptStore, check_header, connect, decode_row

PAPERS, USERS, FEATURES, MODELS, TEMP = "papers", "users", "features", "models", "temp"
SALVAGE_FAILURES = 20000


@dataclasses.dataclass
class Problem:
    item: str                  # a paper id, a file or a generation
    problem: str
    action: str | None = None  # what the repair did; None: not repaired


@dataclasses.dataclass
class Section:
    area: str
    path: str
    summary: str = ""
    problems: list[Problem] = dataclasses.field(default_factory=list)

    def add(self, item: str, problem: str) -> Problem:
        found = Problem(item, problem)
        self.problems.append(found)
        return found


@dataclasses.dataclass
class Report:
    sections: list[Section]
    repair: bool

    @property
    def problems(self) -> list[Problem]:
        return [p for s in self.sections for p in s.problems]

    @property
    def unrepaired(self) -> list[Problem]:
        return [p for p in self.problems if p.action is None]

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        """0: healthy, or every problem repaired; 1: problems remain."""
        return 1 if self.unrepaired else 0

    def to_dict(self) -> dict:
        return {"healthy": self.healthy, "repair": self.repair, "problems": len(self.problems),
                "repaired": len(self.problems) - len(self.unrepaired), "unrepaired": len(self.unrepaired),
                "sections": [dataclasses.asdict(s) for s in self.sections]}


class DamagedGeneration(ValueError):
    """The current feature generation cannot be loaded."""


def load_index(models_dir: Path):
    """``FeatureIndex.load`` for the jobs, with a damaged generation turned into one clear error."""
    from recommender.features.index import FeatureIndex, NoGeneration

    try:
        return FeatureIndex.load(models_dir)
    except (NoGeneration, MemoryError):
        raise
    except Exception as exc:  # zipfile, numpy, JSON and shape errors alike
        name = artifacts.Generations(models_dir).current()
        raise DamagedGeneration(f"feature generation {name} cannot be loaded ({type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:200]}): run `paperfeed check --repair` (it returns to "
                                "the newest complete generation) or `paperfeed compute`") from exc


def check(settings: Settings, repair: bool = False, quick: bool = False,
          progress: Callable[[str], None] | None = None) -> Report:
    """Check (and with ``repair``, repair) the data and models directories. See the module docstring."""
    step = progress or (lambda _msg: None)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    step("paper store")
    sections = [_check_papers(settings, repair, quick, stamp)]
    step("user database")
    sections.append(_check_users(settings, repair, quick))
    step("feature generations")
    sections.append(_check_features(settings.models_dir, repair, quick, stamp))
    step("user models")
    sections.append(_check_models(settings.models_dir, repair, stamp))
    step("temp files")
    sections.append(_check_temps([settings.models_dir, settings.data_dir], repair))
    return Report(sections, repair)


# databases -------------------------------------------------------------------------------------------------------
def _integrity(conn: sqlite3.Connection, quick: bool) -> list[str]:
    """SQLite's integrity faults (empty: none). A check too damaged to finish is one fault."""
    try:
        rows = conn.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    messages = [r[0].decode("utf-8", "replace") if isinstance(r[0], bytes) else str(r[0]) for r in rows]
    return [] if messages == ["ok"] else messages


def _reindex(conn, quick: bool, faults: list, found) -> list:
    """Rebuild the indexes when they are all that is wrong; the faults left afterwards."""
    if _index_only(faults):
        conn.execute("REINDEX")
        if not _integrity(conn, quick):
            found.action = "rebuilt the indexes (REINDEX)"
            return []
    return faults


def _index_only(messages: list[str]) -> bool:
    """Faults REINDEX rebuilds: entries missing from or extra in an index, never in a table."""
    return all(" index " in m or m.startswith("wrong # of entries in index") for m in messages)


def _first(messages: list[str]) -> str:
    """The first fault SQLite reports, on one line."""
    lines = [line for m in messages for line in m.splitlines() if line.strip() and not line.startswith("***")]
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    return f"{(lines or messages)[0][:200]}{more}"


def _quarantine_dir(root: Path, *parts: str) -> Path:
    folder = Path(root).joinpath("quarantine", *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _move_database(path: Path, stamp: str) -> Path:
    """Move a database and its -wal/-shm beside it into ``<its dir>/quarantine/``."""
    dest = _quarantine_dir(path.parent) / f"{path.name}.{stamp}"
    for suffix in ("-wal", "-shm", ""):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, dest.with_name(dest.name + suffix))
    return dest


def _check_papers(settings: Settings, repair: bool, quick: bool, stamp: str) -> Section:
    path = settings.papers_path
    section = Section(PAPERS, str(path))
    if not path.exists():
        section.summary = "no paper store yet (run `paperfeed import` or `paperfeed fetch`)"
        return section
    try:
        conn = connect(path, readonly=not repair)
    except CorruptStore as exc:
        found = section.add(path.name, str(exc))
        if repair:
            dest = _move_database(path, stamp)
            found.action = f"moved to {dest}; nothing could be read: import or fetch again"
        section.summary = "not readable"
        return section
    try:
        faults = _integrity(conn, quick)
        if faults:
            found = section.add(path.name, f"integrity check failed: {_first(faults)}")
            if repair:
                faults = _reindex(conn, quick, faults, found)
            if repair and faults:
                conn.close()
                kept, lost, dest = _salvage_papers(path, stamp)
                lost_text = f"{lost} lost" if lost is not None else "how many were lost is unknown"
                found.action = (f"rebuilt from the {kept} readable rows ({lost_text}); the damaged file is "
                                f"kept as {dest}; restart the web server")
                conn, faults = connect(path, readonly=False), []
        if not faults:  # a damaged file is not scanned row by row until it is repaired
            _check_rows(conn, section, repair)
        quarantined = _count(conn, QUARANTINE_TABLE)
        total = _count(conn, TABLE)
    except sqlite3.DatabaseError as exc:
        section.add(path.name, f"cannot be read: {exc}")
        section.summary = "not readable"
        return section
    finally:
        conn.close()
    bad = sum(1 for p in section.problems if p.item != path.name)
    section.summary = (f"{total} papers" + (f", {bad} damaged rows" if bad else "")
                       + (f", {quarantined} rows in {QUARANTINE_TABLE}" if quarantined else ""))
    return section


def _count(conn: sqlite3.Connection, table: str) -> int:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] if exists else 0


def _row_problem(raw_key, raw_value) -> str | None:
    try:
        key, record = decode_row(raw_key, raw_value)
        Paper.from_dict(record)  # full validation, as on import
    except CorruptRow as bad:
        return bad.reason
    except (ValueError, TypeError) as exc:
        return f"not a valid paper: {' '.join(str(exc).split())[:160]}"
    return None


def _check_rows(conn: sqlite3.Connection, section: Section, repair: bool) -> None:
    if not _count_table(conn):
        section.add(Path(section.path).name, f"no {TABLE!r} table: not a Paperfeed paper store")
        return
    bad: list[tuple[int, str, Problem]] = []
    cursor = conn.execute(f'SELECT rowid, key, value FROM "{TABLE}" ORDER BY rowid')
    while rows := cursor.fetchmany(2000):
        for rowid, raw_key, raw_value in rows:
            reason = _row_problem(raw_key, raw_value)
            if reason:
                key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else str(raw_key)
                bad.append((rowid, reason, section.add(key, reason)))
    if bad and repair:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f'CREATE TABLE IF NOT EXISTS "{QUARANTINE_TABLE}" '
                         "(key TEXT, value BLOB, reason TEXT, quarantined_at REAL)")
            for rowid, reason, _ in bad:
                conn.execute(f'INSERT INTO "{QUARANTINE_TABLE}" (key, value, reason, quarantined_at) '
                             f'SELECT key, value, ?, ? FROM "{TABLE}" WHERE rowid = ?', (reason, now, rowid))
                conn.execute(f'DELETE FROM "{TABLE}" WHERE rowid = ?', (rowid,))
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        for _, _, found in bad:
            found.action = f"moved to table {QUARANTINE_TABLE}"


def _count_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone() is not None


def _salvage_papers(path: Path, stamp: str) -> tuple[int, int | None, Path]:
    """Copy every row of a damaged store that can still be read into a fresh file, and swap it in.

    The table is read forward and backward until each scan meets the damage, then the rowids in
    between by ranges, a failing range split in halves until the damaged rows are isolated (at most
    ``SALVAGE_FAILURES`` failed reads). A damaged page loses its rows, never the whole table.
    """
    fresh = path.with_name(f".{path.name}.{os.getpid()}.salvage.tmp")
    fresh.unlink(missing_ok=True)
    src = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    src.text_factory = bytes
    dst = sqlite3.connect(fresh, isolation_level=None)
    lost = 0
    try:
        try:
            before = src.execute(f'SELECT COUNT(*) FROM "{TABLE}"').fetchone()[0]
        except sqlite3.DatabaseError:
            before = None
        dst.execute(f'CREATE TABLE "{TABLE}" (key TEXT PRIMARY KEY, value BLOB)')
        dst.execute(f'CREATE TABLE "{QUARANTINE_TABLE}" (key TEXT, value BLOB, reason TEXT, quarantined_at REAL)')
        with contextlib.suppress(sqlite3.DatabaseError):  # the old quarantine, if it can be read
            dst.executemany(f'INSERT INTO "{QUARANTINE_TABLE}" VALUES (?, ?, ?, ?)',
                            src.execute(f'SELECT key, value, reason, quarantined_at FROM "{QUARANTINE_TABLE}"'))
        try:
            top = src.execute(f'SELECT MAX(rowid) FROM "{TABLE}"').fetchone()[0] or 0
        except sqlite3.DatabaseError:
            top = 1 << 40
        dst.execute("BEGIN")
        insert = f'INSERT OR REPLACE INTO "{TABLE}" (key, value) VALUES (?, ?)'
        # Forward from the start and backward from the end until each meets the damage ...
        low, high = 0, top + 1
        for order in ("ASC", "DESC"):  # no WHERE: a bounded seek can meet the damage first
            try:
                for rowid, key, value in src.execute(f'SELECT rowid, key, value FROM "{TABLE}" ORDER BY rowid {order}'):
                    if order == "DESC" and rowid <= low:
                        break
                    dst.execute(insert, (key, value))
                    if order == "ASC":
                        low = rowid
                    else:
                        high = rowid
                else:
                    if order == "ASC":
                        high = low  # the whole table was read
            except sqlite3.DatabaseError:
                pass
            if high <= low + 1:
                break
        # ... then what lies between, by ever smaller rowid ranges around the damaged rows.
        ranges = [(low + 1, high - 1)] if high - low > 1 else []
        failures = 0
        while ranges and failures < SALVAGE_FAILURES:
            lo, hi = ranges.pop()
            try:
                rows = src.execute(f'SELECT key, value FROM "{TABLE}" WHERE rowid BETWEEN ? AND ?', (lo, hi)).fetchall()
            except sqlite3.DatabaseError:
                failures += 1
                if lo == hi:
                    lost += 1
                else:
                    mid = (lo + hi) // 2
                    ranges += [(mid + 1, hi), (lo, mid)]
                continue
            dst.executemany(insert, rows)
        dst.execute("COMMIT")
        kept = dst.execute(f'SELECT COUNT(*) FROM "{TABLE}"').fetchone()[0]
        dst.execute("PRAGMA journal_mode = WAL")  # as the store uses it (set last: no -wal file is left behind)
    finally:
        src.close()
        dst.close()
    dest = _move_database(path, stamp)
    os.replace(fresh, path)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(fresh.with_name(fresh.name + suffix), path.with_name(path.name + suffix))
    return kept, (max(before - kept, lost) if before is not None else None), dest


def _check_users(settings: Settings, repair: bool, quick: bool) -> Section:
    path = settings.users_path
    section = Section(USERS, str(path))
    if not path.exists():
        section.summary = "no user database yet (run `paperfeed useradd`)"
        return section
    advice = "restore users.sqlite from a backup (check never moves or rebuilds user data)"
    try:
        check_header(path, "user database")
        conn = connect(path, readonly=not repair)
    except CorruptStore as exc:
        section.add(path.name, f"not readable as a database ({str(exc.__cause__ or 'not SQLite')[:80]}); {advice}")
        section.summary = "not readable"
        return section
    try:
        faults = _integrity(conn, quick)
        if faults:
            found = section.add(path.name, f"integrity check failed: {_first(faults)}; {advice}")
            if repair:
                _reindex(conn, quick, faults, found)
        users = _count(conn, "users")
    except sqlite3.DatabaseError as exc:
        section.add(path.name, f"cannot be read: {exc}; {advice}")
        section.summary = "not readable"
        return section
    finally:
        conn.close()
    section.summary = f"{users} users" + (", damaged" if section.problems else "")
    return section


# features --------------------------------------------------------------------------------------------------------
def verify_generation(folder: Path) -> list[str]:
    """What is wrong with one generation directory (empty: it loads and its shapes agree)."""
    from recommender.features.index import MAPPED_FILES, OLD_FILES, is_old_layout

    old_layout = is_old_layout(folder)
    missing = [name for name in (OLD_FILES if old_layout else MAPPED_FILES) if not (folder / name).is_file()]
    if missing:
        return [f"missing {', '.join(missing)}"]
    if not old_layout:
        unreadable = [_npy_problem(folder / name) for name in MAPPED_FILES if name.endswith(".npy")]
        if any(unreadable):
            return [p for p in unreadable if p]
    try:
        meta = artifacts.read_json(folder / "meta.json")
        vocab = artifacts.read_json(folder / "vocab.json")
        if old_layout:
            ids = artifacts.read_json(folder / rowids.OLD_IDS)
            X = artifacts.read_csr(folder / "X.npz")
        else:
            ids = artifacts.map_npy(folder / rowids.IDS)
            X, XT = artifacts.map_csr(folder, "X"), artifacts.map_csr(folder, "XT")
            XT.check_format(full_check=True)
        X.check_format(full_check=True)
        rows = artifacts.read_npz(folder / "rows.npz")
        blocks = [Block(**b) for b in meta.get("blocks", [])] or [Block(TEXT, 0, len(vocab), 1.0)]
        authors = artifacts.read_json(folder / "authors.json") if any(b.name == AUTHORS for b in blocks) else None
    except Exception as exc:  # noqa: BLE001 -- whatever a damaged file raises
        return [f"unreadable ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})"]
    n, problems = X.shape[0], []
    if old_layout:
        if not isinstance(ids, list) or len(ids) != n or not all(isinstance(i, str) for i in ids) or len(set(ids)) != n:
            problems.append(f"ids.json does not list {n} distinct ids")
    else:
        problems += _mapped_problems(folder, n, X, XT, ids, len(meta.get("categories", [])))
    if not isinstance(vocab, list) or blocks[0].stop != len(vocab):
        problems.append("vocab.json does not match the text block")
    if blocks[-1].stop != X.shape[1]:
        problems.append(f"blocks end at column {blocks[-1].stop}, the matrix has {X.shape[1]}")
    if meta.get("papers") != n or meta.get("features") != X.shape[1]:
        problems.append("meta.json does not match the matrix shape")
    categories = meta.get("categories", [])
    try:
        if len(rows["dates"]) != n or (old_layout and len(rows["cat_indptr"]) != n + 1):
            problems.append("rows.npz does not have one entry per paper")
        elif old_layout and (rows["cat_indptr"][-1] != len(rows["cat_indices"]) or (
                len(rows["cat_indices"]) and not 0 <= int(np.min(rows["cat_indices"])) <= int(
                    np.max(rows["cat_indices"])) < len(categories))):
            problems.append("rows.npz category lists do not match meta.json")
        if len(rows["idf"]) != len(vocab):
            problems.append("rows.npz idf does not match the vocabulary")
        if "first_seen" in rows and (rows["first_seen"].shape != (n,) or rows["first_seen"].dtype.kind not in "if"):
            problems.append("rows.npz first_seen is not one time per paper")  # optional: older generations lack it
    except KeyError as exc:
        problems.append(f"rows.npz lacks {exc.args[0]}")
    if authors is not None:
        block = next(b for b in blocks if b.name == AUTHORS)
        if not isinstance(authors, dict) or len(authors.get("labels", ())) != block.stop - block.start:
            problems.append("authors.json does not match the author block")
    return problems


def _npy_problem(path: Path) -> str | None:
    """Why ``path`` cannot be mapped as an array (a truncated or foreign file), or None."""
    try:
        artifacts.map_npy(path)
    except Exception as exc:  # noqa: BLE001 -- numpy raises ValueError, OSError or EOFError for a damaged file
        return f"{path.name} is unreadable or truncated ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
    return None


def _mapped_problems(folder: Path, n: int, X, XT, ids: np.ndarray, categories: int) -> list[str]:
    """The mapped layout's own checks, each O(nnz) or O(N) and vectorised: XT holds X's entries (the same
    count per row and per column, the same sum), the ids are distinct and sorted by their order, the
    category row lists cover the categories with valid, ascending rows."""
    problems = []
    if XT.shape != X.shape[::-1] or XT.nnz != X.nnz:
        problems.append(f"XT is {XT.shape[0]} x {XT.shape[1]} with {XT.nnz} entries, X {X.shape[0]} x "
                        f"{X.shape[1]} with {X.nnz}: not its transpose")
    elif not (np.array_equal(np.bincount(XT.indices, minlength=n), np.diff(X.indptr))
              and np.array_equal(np.bincount(X.indices, minlength=X.shape[1]), np.diff(XT.indptr))
              and np.isclose(X.data.sum(dtype=np.float64), XT.data.sum(dtype=np.float64), rtol=1e-6, atol=1e-6)):
        problems.append("XT does not hold the entries of X: not its transpose")
    order = artifacts.map_npy(folder / rowids.ORDER)
    if ids.shape != (n,) or ids.dtype.kind != "S":
        problems.append(f"{rowids.IDS} does not list {n} ids")
    elif order.dtype != np.intp:
        problems.append(f"{rowids.ORDER} is {order.dtype}, not {np.dtype(np.intp)}")
    else:
        problems += rowids.problems(ids, order)
    rows, bounds = artifacts.map_npy(folder / "category_rows.npy"), artifacts.map_npy(folder / "category_bounds.npy")
    if (bounds.shape != (categories + 1,) or (len(bounds) and (bounds[0] != 0 or bounds[-1] != len(rows)))
            or np.any(np.diff(bounds) < 0) or (len(rows) and not 0 <= int(rows.min()) <= int(rows.max()) < n)):
        problems.append("category_rows.npy and category_bounds.npy do not match meta.json's categories")
    return problems


def _write_pointer(gens: artifacts.Generations, name: str) -> None:
    with artifacts.atomic_file(gens.pointer, "w") as handle:
        handle.write(name + "\n")


def _check_features(models_dir: Path, repair: bool, quick: bool, stamp: str) -> Section:
    gens = artifacts.Generations(models_dir)
    section = Section(FEATURES, str(gens.root))
    names = gens.complete() if gens.root.is_dir() else []
    pointer_problem = None
    try:
        pointed = gens.pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pointed = None
    except (OSError, UnicodeDecodeError) as exc:
        pointed, pointer_problem = "", section.add("CURRENT", f"unreadable: {exc}")
    if not names and pointed is None:
        section.summary = "no generation yet (run `paperfeed compute`)"
        return section
    broken: dict[str, list[str]] = {}
    for name in reversed(names):  # newest first
        if quick and name != pointed:
            continue
        faults = verify_generation(gens.path(name))
        if faults:
            broken[name] = faults
    good = [n for n in reversed(names) if n not in broken and (not quick or n == pointed)]
    if pointer_problem is not None:
        pass
    elif pointed is None:
        pointer_problem = section.add("CURRENT", "missing, but generations exist")
    elif pointed not in names:
        pointer_problem = section.add("CURRENT", f"names {pointed!r}, which is not a complete generation")
    elif pointed in broken:
        pointer_problem = section.add("CURRENT", f"names {pointed}, which is damaged")
    problems = {name: section.add(name, "; ".join(faults)) for name, faults in broken.items()}
    if repair:
        if pointer_problem is not None:
            if quick and not good:  # quick looked at the current one only: look for a good one now
                good = [n for n in reversed(names) if n != pointed and not verify_generation(gens.path(n))]
            if good:
                _write_pointer(gens, good[0])
                pointer_problem.action = f"repointed to {good[0]}, the newest complete generation"
            else:
                gens.pointer.unlink(missing_ok=True)
                pointer_problem.action = "removed: no complete generation is left; run `paperfeed compute`"
        for name, found in problems.items():
            dest = _quarantine_dir(models_dir, "features") / f"{name}.{stamp}"
            os.replace(gens.path(name), dest)
            found.action = f"moved to {dest}"
    current = gens.current()
    section.summary = (f"current {current}" if current else "no current generation") + f", {len(names)} generations" \
        + (f", {len(broken)} damaged" if broken else "") + (" (quick: only the current one checked)" if quick else "")
    return section


# user models -----------------------------------------------------------------------------------------------------
def _check_models(models_dir: Path, repair: bool, stamp: str) -> Section:
    from recommender.learning.models import load_user_model

    folder = Path(models_dir) / "users"
    section = Section(MODELS, str(folder))
    files = sorted(p for p in folder.glob("*.npz") if not artifacts.is_temp(p.name)) if folder.is_dir() else []
    for path in files:
        if not (path.stem.isascii() and path.stem.isdigit()):
            section.add(path.name, "not a user model name (<user id>.npz); left alone")
            continue
        try:
            load_user_model(models_dir, int(path.stem))
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 -- CorruptModel (a ValueError), OSError, zipfile errors...
            found = section.add(path.name, f"unreadable ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})")
            if repair:
                dest = _quarantine_dir(models_dir, "users")
                for side in (path, path.with_suffix(".json")):
                    if side.exists():
                        os.replace(side, dest / f"{side.name}.{stamp}")
                found.action = f"moved to {dest}; the next `paperfeed train` retrains this user"
    damaged = sum(1 for p in section.problems if p.problem.startswith("unreadable"))
    section.summary = f"{len(files)} user models" + (f", {damaged} unreadable" if damaged else "")
    return section


# temp files ------------------------------------------------------------------------------------------------------
def _check_temps(roots: list[Path], repair: bool) -> Section:
    section = Section(TEMP, ", ".join(str(r) for r in roots))
    live = 0
    now = time.time()
    for root in roots:
        if not Path(root).is_dir():
            continue
        for path in artifacts.find_temps(root):
            if not artifacts.is_stale(path, now):
                live += 1
                continue
            pid = artifacts.temp_pid(path.name)
            found = section.add(str(path), "left by a killed run" + (f" (pid {pid}, no longer running)" if pid else ""))
            if repair:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                found.action = "removed"
    stale = len(section.problems)
    section.summary = (f"{stale} stale" if stale else "none stale") + (f", {live} in use by a running job" if live else "")
    return section
