"""Streaming import of arXiv Kaggle-snapshot files (JSON lines, optionally gz/xz/bz2).

Memory stays constant: lines are parsed one at a time and committed in batches.
A bad line is recorded with its number and reason and never aborts the import:

- a line longer than ``MAX_LINE_BYTES`` (1 MiB, newline included) is skipped; past its first
  MiB it is read in chunks and thrown away, never held in memory or parsed;
- a line that is not UTF-8 (a lone surrogate written as raw bytes is not), not JSON, nested
  too deeply for the JSON parser, or not a valid record (see :func:`~.papers.paper_from_kaggle`
  and :class:`~.papers.Paper`) is skipped with the reason;
- blank (whitespace-only) lines are not records: they are neither counted nor reported.

So ``added + updated + unchanged + bad == lines``, where ``lines`` counts the non-blank lines.
Only a file that cannot be read at all (missing, corrupt compression) stops an import.
"""
from __future__ import annotations

import bz2
import dataclasses
import gzip
import json
import lzma
import os
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from recommender.corpus.papers import Paper, paper_from_kaggle
from recommender.corpus.store import PaperStore

BATCH = 5000
MAX_REPORTED_BAD = 1000
MAX_LINE_BYTES = 1 << 20
_SKIP_CHUNK = 1 << 16

_OPENERS = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}


class UnreadableFile(OSError):
    """A snapshot file that cannot be opened or decompressed."""


class UnreadableLine(ValueError):
    """A line that is not one JSON value in UTF-8; the message says why."""


@dataclasses.dataclass
class BadLine:
    path: str
    line: int
    reason: str


@dataclasses.dataclass
class ImportSummary:
    """Counts of one import: ``added + updated + unchanged + bad == lines`` (non-blank lines read).

    ``bad_lines`` lists the first ``MAX_REPORTED_BAD`` bad lines; ``bad`` counts them all.
    """

    lines: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: int = 0
    bad_lines: list[BadLine] = dataclasses.field(default_factory=list)

    def record_bad(self, path: str, line: int, reason: str) -> None:
        self.bad += 1
        if len(self.bad_lines) < MAX_REPORTED_BAD:
            self.bad_lines.append(BadLine(path, line, reason))

    def to_dict(self) -> dict:
        return {"lines": self.lines, "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "bad": self.bad, "bad_lines": [dataclasses.asdict(b) for b in self.bad_lines]}


def parse_line(raw: bytes) -> Paper:
    """One snapshot line (at most ``MAX_LINE_BYTES``) -> Paper, or ``ValueError`` with a short reason."""
    if len(raw) > MAX_LINE_BYTES:
        raise UnreadableLine(f"line longer than {MAX_LINE_BYTES:,} bytes, the limit")
    return paper_from_kaggle(_json(_decode(raw)))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableLine(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None


def _json(text: str):
    try:
        return json.loads(text)
    except RecursionError:
        raise UnreadableLine("broken JSON: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise UnreadableLine(f"broken JSON: {exc.msg} at column {exc.colno}") from None
    except ValueError:  # the only other one: int() refuses numbers of over 4,300 digits
        raise UnreadableLine("broken JSON: a number with too many digits") from None


def _bounded_lines(stream) -> Iterator[bytes]:
    """The stream's lines, but of a line over ``MAX_LINE_BYTES`` only its first ``MAX_LINE_BYTES + 1`` bytes."""
    while line := stream.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES:
            _skip_rest_of_line(stream, line)
        yield line


def _skip_rest_of_line(stream, head: bytes) -> None:
    chunk = head
    while chunk and not chunk.endswith(b"\n"):
        chunk = stream.readline(_SKIP_CHUNK)


def read_snapshot(path: Path, on_bytes: Callable[[int], None] | None = None
                  ) -> Iterator[tuple[int, Paper | None, str | None]]:
    """Yield ``(line_number, paper, None)`` or ``(line_number, None, reason)`` for each non-blank line.

    ``on_bytes`` is called with the compressed bytes consumed so far, for a progress bar.
    Raises :class:`UnreadableFile` if the file cannot be opened or its compression is corrupt.
    """
    path = Path(path)
    opener = _OPENERS.get(path.suffix.lower())
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise UnreadableFile(f"cannot open {path}: {exc.strerror or exc}") from None
    with raw:
        stream = opener(raw) if opener else raw
        try:
            for number, line in enumerate(_bounded_lines(stream), start=1):
                if on_bytes is not None and number % 1000 == 0:
                    on_bytes(raw.tell())
                if len(line) <= MAX_LINE_BYTES and not line.strip():
                    continue
                try:
                    yield number, parse_line(line), None
                except ValueError as exc:
                    yield number, None, str(exc)
        except (EOFError, lzma.LZMAError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise UnreadableFile(f"{path}: cannot decompress ({exc})") from None
        if on_bytes is not None:
            on_bytes(raw.tell())


def import_snapshots(store: PaperStore, paths: list[Path],
                     progress: Callable[[str, int, int], None] | None = None) -> ImportSummary:
    """Import snapshot files into ``store``; returns the summary.

    ``progress(path, bytes_done, bytes_total)`` is called as the import advances.
    An :class:`UnreadableFile` propagates after the batches already read are committed.
    """
    summary = ImportSummary()
    for path in paths:
        total = os.path.getsize(path) if os.path.exists(path) else 0
        report = (lambda done, p=str(path): progress(p, done, total)) if progress else None
        batch: list[Paper] = []
        try:
            for number, paper, reason in read_snapshot(path, report):
                summary.lines += 1
                if paper is None:
                    summary.record_bad(str(path), number, reason)
                    continue
                batch.append(paper)
                if len(batch) >= BATCH:
                    _commit(store, batch, summary)
        finally:
            _commit(store, batch, summary)
    return summary


def _commit(store: PaperStore, batch: list[Paper], summary: ImportSummary) -> None:
    if not batch:
        return
    result = store.upsert_many(batch)
    summary.added += result.added
    summary.updated += result.updated
    summary.unchanged += result.unchanged
    batch.clear()
