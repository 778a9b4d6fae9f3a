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
import time

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
            n: int = 25, offset: int = 0, now: float | None = None) -> Popular:
    """The papers tagged by the most different users in ``window`` (``day``, ``week`` or ``month``).

    Parameters
    ----------
    users, papers : the user store (tags) and the paper store (a paper must be there to be listed).
    window : one of :data:`WINDOWS`.
    min_users : the fewest readers a paper needs; raised to :data:`MIN_USERS` if lower.
    n, offset : the page.
    now : unix seconds the window ends at (default: now).

    Returns
    -------
    Popular, ordered by readers (most first), then by the most recent tag.
    """
    if window not in WINDOWS:
        raise UserError(f"the popular feed covers the past {', '.join(WINDOWS)}; not {str(window)[:20]!r}")
    since = (time.time() if now is None else now) - WINDOWS[window] * DAY_S
    min_users = max(MIN_USERS, int(min_users))
    ids, readers, skip = [], [], offset
    rows = users.popular_rows(since, min_users)
    while len(ids) < n:
        chunk = rows.fetchmany(_CHUNK)
        if not chunk:
            break
        known = papers.get_many([r["paper_id"] for r in chunk])
        for row in chunk:
            if row["paper_id"] not in known:
                continue  # tagged, then gone from the store (or never in it): nothing to show
            if skip:
                skip -= 1
            elif len(ids) < n:
                ids.append(row["paper_id"])
                readers.append(int(row["readers"]))
    rows.close()
    return Popular(ids, readers, users.popular_count(since, min_users), window)
