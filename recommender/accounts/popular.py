"""Popular across users: the papers the most readers tagged in the past day, week or month.

Anonymous by construction: only reader counts leave this module, and only for papers that at least
``min_users`` different readers tagged in the window (never fewer than :data:`MIN_USERS`), so a paper
one reader tagged is never shown. When a paper was tagged is the tag row's ``added_at``, which every
user database has had since the first release: older databases need no backfill, only the index that
:class:`~recommender.accounts.users.UserStore` creates when it opens them. Untagging deletes the row,
so that reader stops counting at once. A tag renamed keeps its time; an import counts as tagging then.

The web feed, the API, the CLI and (later) the digest call :func:`popular`.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Iterator

from recommender.corpus.store import PaperStore

from .users import UserError, UserStore

DAY_S = 86400
#: The windows, in days back from now (tags happen in real time, unlike papers' dates).
WINDOWS = {"day": 1, "week": 7, "month": 30}
#: The fewest readers a paper needs, whatever the setting says: one reader's tags stay private.
MIN_USERS = 2
_CHUNK = 100  # rows looked up in the paper store at a time


@dataclasses.dataclass(frozen=True)
class Popular:
    """One page of popular papers: ``ids`` and their ``readers`` (distinct users who tagged each in the
    window), and ``total``, the papers that qualify in the user store (a few may be missing from the
    paper store and are skipped on the page)."""

    ids: list[str]
    readers: list[int]
    total: int
    window: str


def popular(users: UserStore, papers: PaperStore, window: str = "week", *, min_users: int = MIN_USERS,
            n: int = 25, offset: int = 0, now: float | None = None, cache: PopularCache | None = None) -> Popular:
    """The papers tagged by the most different users in ``window`` (``day``, ``week`` or ``month``).

    Parameters
    ----------
    users, papers : the user store (tags) and the paper store (a paper must be there to be listed).
    window : one of :data:`WINDOWS`.
    min_users : the fewest readers a paper needs; raised to :data:`MIN_USERS` if lower.
    n, offset : the page.
    now : unix seconds the window ends at (default: now).
    cache : a :class:`PopularCache` to reuse the ranked list across calls (the web app's); None counts afresh.

    Returns
    -------
    Popular, ordered by readers (most first), then by the most recent tag.
    """
    if window not in WINDOWS:
        raise UserError(f"the popular feed covers the past {', '.join(WINDOWS)}; not {str(window)[:20]!r}")
    now = time.time() if now is None else now
    since = now - WINDOWS[window] * DAY_S
    min_users = max(MIN_USERS, int(min_users))
    if cache is not None:
        ranked = cache.ranked(users, window, min_users, now)
        return _page(papers, iter(ranked), n, offset, len(ranked), window)
    rows = users.popular_rows(since, min_users)
    try:
        found = _page(papers, ((r["paper_id"], int(r["readers"])) for r in rows), n, offset, 0, window)
    finally:
        rows.close()
    return dataclasses.replace(found, total=users.popular_count(since, min_users))


def _page(papers: PaperStore, ranked: Iterator[tuple[str, int]], n: int, offset: int, total: int,
          window: str) -> Popular:
    """Papers ``offset`` to ``offset + n`` of ``ranked`` that the paper store has (looked up ``_CHUNK`` at a time)."""
    ids, readers, skip = [], [], offset
    while len(ids) < n:
        chunk = [row for _, row in zip(range(_CHUNK), ranked)]
        if not chunk:
            break
        known = papers.get_many([pid for pid, _ in chunk])
        for pid, count in chunk:
            if pid not in known:
                continue  # tagged, then gone from the store (or never in it): nothing to show
            if skip:
                skip -= 1
            elif len(ids) < n:
                ids.append(pid)
                readers.append(count)
    return Popular(ids, readers, total, window)


class PopularCache:
    """The ranked ``(paper, readers)`` list of each window, shared by one process's requests.

    Counting groups every tag row of the window (110 ms for a week of 440k rows, docs/benchmarks.md), so the
    web app keeps the result: it is computed again when any user's tags change (the sum of the users'
    ``tags_version``, which every tag change bumps in its own transaction) and at least every ``max_age``
    seconds, as the window slides and old tags leave it. A page is then O(page).
    """

    def __init__(self, max_age: float = 60.0):
        self.max_age = max_age
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, int], tuple[tuple[int, int], float, list[tuple[str, int]]]] = {}

    def ranked(self, users: UserStore, window: str, min_users: int, now: float) -> list[tuple[str, int]]:
        version = users.tags_generation()
        with self._lock:
            hit = self._entries.get((window, min_users))
        if hit is not None and hit[0] == version and 0 <= now - hit[1] < self.max_age:
            return hit[2]
        since = now - WINDOWS[window] * DAY_S
        rows = users.popular_rows(since, min_users)
        try:
            ranked = [(row["paper_id"], int(row["readers"])) for row in rows]
        finally:
            rows.close()
        with self._lock:
            self._entries[(window, min_users)] = (version, now, ranked)
        return ranked
