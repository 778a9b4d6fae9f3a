"""Per-request access to the app state and the current user's library."""
from __future__ import annotations

import dataclasses

from flask import current_app, g
from flask_login import current_user

from recommender.features.index import FeatureIndex
from recommender.learning.models import UserModel

from . import feeds
from .auth import users
from .state import AppState


def state() -> AppState:
    return current_app.extensions["paperfeed"]


def index() -> FeatureIndex:
    """The generation this request uses, fixed at first use so a request never mixes two."""
    if "index" not in g:
        g.index = state().index()
    return g.index


@dataclasses.dataclass
class Library:
    tags: dict[str, list[str]]
    hidden: list[str]
    model: UserModel | None
    tags_version: int
    generation: str

    @property
    def papers(self) -> set[str]:
        return {p for ids in self.tags.values() for p in ids}

    def tags_of(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for tag, ids in self.tags.items():
            for pid in ids:
                out.setdefault(pid, []).append(tag)
        return out

    @property
    def model_fresh(self) -> bool:
        return (self.model is not None and self.model.tags_version == self.tags_version
                and self.model.generation == self.generation and not self.model.partial and not self.model.carried)

    @property
    def needs_retrain(self) -> bool:
        """The model lags the tags (changed elsewhere, or a retrain stopped at its cost bound), or is missing.
        A model only carried over to a new generation does not count: ``train`` refits those."""
        return bool(self.tags) and (self.model is None or self.model.tags_version != self.tags_version
                                    or self.model.partial)


def library() -> Library | None:
    """The logged-in user's tags, negatives and model; None when anonymous."""
    if not current_user.is_authenticated:
        return None
    if "library" not in g:
        store = users()
        uid = current_user.id
        state().wait_for_user(uid)  # a retrain queued by the last tag change takes ~0.65 s at 131k papers
        g.library = Library(store.tags(uid), store.not_interested(uid), state().model(uid),
                            store.get_user_by_id(uid).tags_version, index().generation)
        if g.library.needs_retrain:
            state().refresh_stale(uid, g.library.tags_version)
    return g.library


def feed_page(idx: FeatureIndex, q: feeds.FeedQuery, lib: Library | None) -> feeds.FeedPage:
    """The feed for a parsed query: Popular reads every reader's tags (counts only), the others the index."""
    if q.mode == "popular":
        return feeds.popular_feed(users(), state().papers, q, state().settings.popular_min_users,
                                  state().popular_cache)
    return feeds.build_feed(idx, q, lib)


def after_library_change() -> None:
    """Queue a background retrain of the current user."""
    g.pop("library", None)
    state().schedule_retrain(current_user.id)


MARK_ALL_MAX = 500  # "mark all as read" marks at most this many papers of the feed, from the top


def mark_all_seen(idx: FeatureIndex, q: feeds.FeedQuery, lib: Library, via: str = "feed") -> int:
    """Mark the first :data:`MARK_ALL_MAX` papers of the feed ``q`` describes as shown; returns how many."""
    page = feed_page(idx, dataclasses.replace(q, limit=MARK_ALL_MAX, offset=0), lib)
    return users().mark_shown(current_user.id, page.ids, via)
