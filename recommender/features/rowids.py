"""A generation's paper ids without a Python object per paper.

``ids.npy`` holds the id of each row as fixed-width ASCII bytes (as wide as the longest id of the
generation, e.g. ``S16`` for ``math.GT/0309136``), ``ids_order.npy`` the rows in id order. Both are
memory-mapped, so N web processes share one copy in the page cache; a ``list[str]`` and a ``dict``
of 2.7M ids would cost each process a few hundred MB of heap and seconds of load. :class:`IdList`
reads like the list (``ids[row]``), :class:`RowOf` like the dict (``row_of[pid]``, a binary search).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from recommender.storage import artifacts

IDS, ORDER, OLD_IDS = "ids.npy", "ids_order.npy", "ids.json"
_CHUNK = 65536


def encode(ids: Iterable[str]) -> np.ndarray:
    """Ids as a fixed-width ASCII bytes array (arXiv ids are ASCII: ``corpus.ids`` accepts nothing else)."""
    out = np.array([pid.encode("ascii") for pid in ids], dtype=np.bytes_)
    return out if out.size else np.empty(0, dtype="S1")


def id_order(ids: np.ndarray) -> np.ndarray:
    """The rows in id order, as ``intp``: ``np.searchsorted`` converts any other ``sorter`` to it, which
    would copy the whole array on every lookup."""
    return np.argsort(ids, kind="stable").astype(np.intp, copy=False)


def write(folder: Path, ids: list[str]) -> None:
    encoded = encode(ids)
    artifacts.write_npy(folder / IDS, encoded)
    artifacts.write_npy(folder / ORDER, id_order(encoded))


def ids_file(folder: Path) -> Path:
    """The file that lists a generation's ids: ``ids.npy``, or ``ids.json`` in an older generation."""
    return folder / IDS if (folder / IDS).exists() or not (folder / OLD_IDS).exists() else folder / OLD_IDS


def load(folder: Path, mapped: bool = True) -> tuple["IdList", "RowOf"]:
    """The ids of a generation directory, mapped (or read into memory); an older generation's ``ids.json``
    is converted (in this process's memory)."""
    if ids_file(folder).name == OLD_IDS:
        encoded = encode(artifacts.read_json(folder / OLD_IDS))
        order = id_order(encoded)
    else:
        encoded = artifacts.map_npy(folder / IDS, mapped)
        order = artifacts.map_npy(folder / ORDER, mapped)
        if encoded.dtype.kind != "S" or encoded.ndim != 1 or order.shape != encoded.shape or order.dtype != np.intp:
            raise ValueError(f"{folder.name}: {IDS} ({encoded.dtype}, {encoded.shape}) and {ORDER} "
                             f"({order.dtype}, {order.shape}) do not match")
    return IdList(encoded), RowOf(encoded, order)


def problems(ids: np.ndarray, order: np.ndarray) -> list[str]:
    """What is wrong with an id array and its order (O(N), vectorised): the order must be a permutation
    that sorts the ids strictly ascending, which also proves the ids distinct."""
    n = len(ids)
    if len(order) != n or (n and not 0 <= int(order.min()) <= int(order.max()) < n):
        return [f"{ORDER} is not a permutation of the {n} rows"]
    ordered = ids[order]
    if n > 1 and not bool(np.all(ordered[1:] > ordered[:-1])):
        return [f"{IDS} holds duplicate ids or {ORDER} does not sort them"]
    if n and not bool(np.all(np.char.str_len(ordered) > 0)):
        return [f"{IDS} holds an empty id"]
    return []


class IdList(Sequence[str]):
    """The id of each row, read-only: ``ids[row]``, ``ids[lo:hi]`` (a list), ``len``, iteration."""

    def __init__(self, encoded: np.ndarray):
        self._ids = encoded

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return _decode(self._ids[key])
        return self._ids[key].decode("ascii")

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self._ids), _CHUNK):
            yield from _decode(self._ids[start:start + _CHUNK])

    def __repr__(self) -> str:
        return f"IdList({len(self)} ids)"


class RowOf(Mapping[str, int]):
    """Id -> row, read-only, by binary search over the ids in id order: O(log N) per lookup, no per-id
    object. Anything that is not an id of the generation (another type, non-ASCII text) is simply absent."""

    def __init__(self, encoded: np.ndarray, order: np.ndarray):
        self._ids, self._order = encoded, order

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(IdList(self._ids))

    def __getitem__(self, pid) -> int:
        rows = self.rows([pid], keep_missing=True)
        if rows[0] < 0:
            raise KeyError(pid)
        return int(rows[0])

    def __contains__(self, pid) -> bool:
        return self.get(pid) is not None

    def rows(self, pids: Iterable, keep_missing: bool = False) -> np.ndarray:
        """The rows of many ids in one vectorised search (int64), in the order given: unknown ids are
        dropped, or with ``keep_missing`` kept as -1."""
        keys = [_key(pid, self._ids.dtype.itemsize) for pid in pids]
        out = np.full(len(keys), -1, dtype=np.int64)
        valid = np.flatnonzero([k is not None for k in keys])
        if len(valid) and len(self._ids):
            wanted = np.array([keys[i] for i in valid], dtype=self._ids.dtype)
            pos = np.minimum(np.searchsorted(self._ids, wanted, sorter=self._order), len(self._ids) - 1)
            rows = self._order[pos]
            hit = self._ids[rows] == wanted
            out[valid[hit]] = rows[hit]
        return out if keep_missing else out[out >= 0]


def _key(pid, width: int) -> bytes | None:
    """``pid`` as the bytes stored for it, or None if no stored id can equal it (a fixed-width bytes
    array drops trailing NULs and cannot hold a longer value)."""
    if not isinstance(pid, str) or len(pid) > width or "\0" in pid or not pid.isascii():
        return None
    return pid.encode("ascii")


def _decode(encoded: np.ndarray) -> list[str]:
    return [b.decode("ascii") for b in encoded.tolist()]
