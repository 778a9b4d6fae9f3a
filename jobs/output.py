"""Printing results for people (text) or scripts (``--json``)."""
from __future__ import annotations

import json
import sys


def emit(args, data, text: str | None = None) -> None:
    """Print ``data`` as JSON when ``--json`` was given, else ``text`` (or a plain rendering)."""
    if getattr(args, "json", False):
        json.dump(data, sys.stdout, ensure_ascii=False, indent=None)
        sys.stdout.write("\n")
    elif text is not None:
        print(text)
    else:
        print(json.dumps(data, ensure_ascii=False, indent=2))


def warn(message: str) -> None:
    print(message, file=sys.stderr)
