"""Batch and command-line edge: each module is a thin CLI over ``recommender``."""
