"""Paperfeed's library: papers, storage, features, models and ranking.

Nothing here imports flask, argparse or prints: the web app (``webapp``) and the
batch jobs (``jobs``) are thin edges over these functions.
"""

__version__ = "0.2.0"
