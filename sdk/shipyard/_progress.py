"""Progress bars for large transfers: only with tqdm installed and stderr on a terminal."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

#: Transfers smaller than this never show a progress bar.
MIN_PROGRESS_BYTES = 8 * 1024 * 1024


class Progress:
    """Counts transferred bytes; ``active`` is False when nothing is displayed."""

    def __init__(self, bar: Any = None) -> None:
        self._bar = bar
        self.active = bar is not None

    def update(self, amount: int) -> None:
        if self._bar is not None:
            self._bar.update(amount)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def interactive() -> bool:
    """True when stderr is a terminal and ``SDK_VERBOSE_LOG`` is not ``false``."""
    if os.environ.get("SDK_VERBOSE_LOG", "").lower() == "false":
        return False
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _tqdm_bar(total: int, description: str) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(
        total=total,
        desc=description,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=False,
    )


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, allowed: bool = True) -> Iterator[Progress]:
    """Yield a :class:`Progress`, displayed only for an interactive large transfer."""
    bar = None
    if allowed and total is not None and total >= MIN_PROGRESS_BYTES and interactive():
        bar = _tqdm_bar(total, description)
    progress = Progress(bar)
    try:
        yield progress
    finally:
        progress.close()
