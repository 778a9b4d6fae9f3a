"""Template helpers for paper text: links made clickable safely."""
from __future__ import annotations

import math

from markupsafe import Markup, escape

from recommender.corpus.links import split_urls

LINK_REL = "noopener noreferrer nofollow"


def linkify(text: str | None) -> Markup:
    """``text`` escaped, with every http(s) link in it wrapped in an anchor.

    Each piece is escaped on its own and only the anchors are markup, so nothing of the raw text is ever
    marked safe; :func:`~recommender.corpus.links.split_urls` only yields http and https URLs to a host.
    """
    out = []
    for piece, url in split_urls(text or ""):
        if url is None:
            out.append(escape(piece))
        else:
            out.append(Markup('<a href="{}" rel="{}" class="ext">{}</a>').format(url, LINK_REL, piece))
    return Markup("").join(out)


def top_percent(percentile: float) -> str:
    """How near the top a paper ranks, as a person says it: ranked above 97.2% of the papers is "top 3%"."""
    share = max(0.0, 100.0 - float(percentile))
    return f"top {max(1, math.ceil(share - 1e-9))}%"
