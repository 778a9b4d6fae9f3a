"""The paper store: one JSON value per versionless arXiv id, in sqlitedict (never pickles).

User data lives in :mod:`recommender.users`.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlitedict import SqliteDict

from .ids import is_valid_id, normalize_id, parse_arxiv_id
from .papers import Paper

BUSY_TIMEOUT_S = 30


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


class PaperStore:
    """Paper metadata keyed by versionless id. Use as a context manager.

    Values are JSON text, never pickles, so any process may read them safely.
    """

    def __init__(self, path: Path, readonly: bool = False):
        path = Path(path)
        if readonly and not path.exists():
            raise FileNotFoundError(f"no paper store at {path}: run `paperfeed import` or `paperfeed fetch` first")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = SqliteDict(
            str(path), tablename="papers", flag="r" if readonly else "c", autocommit=False,
            journal_mode="WAL", encode=_encode, decode=json.loads, timeout=BUSY_TIMEOUT_S, outer_stack=False,
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        return len(self._db)

    def __contains__(self, pid: str) -> bool:
        return pid in self._db

    def get(self, pid: str) -> Paper | None:
        """The paper, or None. ``pid`` may carry a version; it is stripped."""
        try:
            return Paper.from_dict(self._db[normalize_id(pid)], trusted=True)
        except KeyError:
            return None

    def get_many(self, pids: Iterable[str]) -> dict[str, Paper]:
        """Papers for the ids that exist, read in one query per 500 ids; malformed ids are skipped."""
        wanted = {parse_arxiv_id(pid)[0] for pid in pids if is_valid_id(pid)}
        return {pid: Paper.from_dict(value, trusted=True) for pid, value in self._get_raw(wanted).items()}

    def _get_raw(self, pids: set[str]) -> dict[str, dict]:
        """Stored JSON values for many ids in a few queries (one round trip per 500 ids)."""
        found, ids = {}, sorted(pids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            sql = f'SELECT key, value FROM "{self._db.tablename}" WHERE key IN ({",".join("?" * len(chunk))})'
            found.update((k, json.loads(v)) for k, v in self._db.conn.select(sql, chunk))
        return found

    def iter_papers(self) -> Iterator[Paper]:
        """Every paper, read in one SELECT: a consistent snapshot even while an import runs (WAL)."""
        for _, value in self._db.iteritems():
            yield Paper.from_dict(value, trusted=True)

    def upsert_many(self, papers: Iterable[Paper]) -> UpsertResult:
        """Insert or replace papers in one transaction.

        A paper replaces the stored one only if it is a newer version, or the
        same version with different metadata. Older versions and identical
        records leave the store unchanged, so re-importing is a no-op.
        """
        result = UpsertResult()
        papers = list(papers)
        stored = self._get_raw({p.id for p in papers})
        pending: dict[str, dict] = {}
        for paper in papers:
            new = paper.to_dict()
            old = pending.get(paper.id) or stored.get(paper.id)
            if old is None:
                result.added += 1
            elif old == new or Paper.from_dict(old).newer_than(paper):
                result.unchanged += 1
                continue
            else:
                result.updated += 1
            pending[paper.id] = new
        if pending:
            self._db.update(pending)
            self._db.commit()
        return result
