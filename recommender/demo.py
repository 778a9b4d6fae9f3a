"""A demo account with a small library, so a new install shows a personal feed at once."""
from __future__ import annotations

import secrets
from pathlib import Path

from recommender.learning import ranking
from recommender.accounts.passwords import hash_password
from recommender.features.index import FeatureIndex
from recommender.settings import Settings
from recommender.accounts.users import UserStore

DEMO_USER = "demo"
# 2,500 real recent papers shipped with the package (CC0 metadata; see data/README.md), so the demo needs no network.
SAMPLE = Path(__file__).with_name("data") / "arxiv-sample-2026.jsonl.gz"
# Each seed tag is filled with the top search hits for its query in whatever corpus was loaded.
SEED_TAGS = {"llm reasoning": "large language model reasoning", "diffusion": "diffusion models image generation"}
PER_TAG = 6


def seed_demo_user(settings: Settings) -> tuple[str, str] | None:
    """Create ``demo`` with a random password and seed tags; None if it already exists."""
    index = FeatureIndex.load(settings.models_dir)
    with UserStore(settings.users_path, settings.limits) as users:
        if users.get_user(DEMO_USER) is not None:
            return None
        password = secrets.token_urlsafe(12)
        user = users.add_user(DEMO_USER, hash_password(password, DEMO_USER))
        for tag, query in SEED_TAGS.items():
            ids, _ = ranking.search(index, query, n=PER_TAG)
            if ids:
                users.add_tags(user.id, tag, ids)
    return DEMO_USER, password
