"""tqdm progress bars on stderr; silent when stderr is not a terminal (cron logs stay clean)."""
from __future__ import annotations

import contextlib

from tqdm import tqdm


@contextlib.contextmanager
def bar(desc: str, total: int | None = None, unit: str = "it", unit_scale: bool = False):
    with tqdm(desc=desc, total=total, unit=unit, unit_scale=unit_scale, disable=None, leave=False,
              dynamic_ncols=True) as handle:
        yield handle


def steps(desc: str):
    """A callback that shows each named step of a long job."""
    handle = tqdm(desc=desc, bar_format="{desc}: {postfix} [{elapsed}]", disable=None, leave=False)

    def step(message: str) -> None:
        handle.set_postfix_str(message)

    return step
