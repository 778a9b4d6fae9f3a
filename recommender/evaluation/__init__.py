"""Offline evaluation of ranking methods on real arXiv data.

Two protocols: author pseudo-users with a time split (:mod:`.authors`) and
similar papers against real citations (:mod:`.citations`). Both score every
method on the same candidates with the same metrics (:mod:`.metrics`).
"""
