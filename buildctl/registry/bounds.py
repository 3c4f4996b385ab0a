"""Bounds on what one verification may cost, whatever a registry sends: a deadline covering every
request of an image, and the limit errors that say which bound was hit.

A registry read only returns between chunks, so every streaming loop calls ``Deadline.check()``
per chunk, and every request's socket timeout is cut to the time left. ``check()`` also ends
work in threads other than the main one once SIGINT/SIGTERM arrived (buildctl.interrupts).
"""

from __future__ import annotations

import math
import time
from typing import Any

from buildctl import interrupts, jsonsafe
from buildctl.errors import OperationError

DEFAULT_DEADLINE_SECONDS = 120.0
MIN_TIMEOUT = 0.05  # httpx treats 0 as "no timeout"; never pass it


class LimitError(OperationError):
    """A bound was hit: the message names the limit and its value; exit 1, never a traceback."""


class Deadline:
    """One monotonic end time, shared by every request made for one image."""

    def __init__(self, seconds: float = DEFAULT_DEADLINE_SECONDS, *, what: str = "verification") -> None:
        if not (math.isfinite(seconds) and seconds > 0):  # nan would never expire
            raise ValueError(f"deadline must be a positive number of seconds, not {seconds}")
        self.seconds = seconds
        self.what = what
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def cut(self, seconds: float) -> None:
        """End at most ``seconds`` from now (never later than before): work that is no longer
        wanted (a prefetch once the builds ended) stops at its next check."""
        self._end = min(self._end, time.monotonic() + seconds)

    def timeout(self, cap: float) -> float:
        """A socket timeout for the next read: at most ``cap``, never past the deadline."""
        return max(min(cap, self.remaining()), MIN_TIMEOUT)

    def check(self) -> None:
        """Raise when interrupted (KeyboardInterrupt, in any thread) or past the deadline."""
        if interrupts.interrupted.is_set():
            raise KeyboardInterrupt
        if self.expired:
            raise LimitError(f"{self.what}: deadline of {self.seconds:g} s exceeded (verify.deadline_seconds, --deadline)")




def parse_json(content: bytes, *, what: str, max_depth: int = jsonsafe.MAX_DEPTH) -> Any:
    """json.loads for registry documents with nesting bounded (jsonsafe: the C decoder would raise
    RecursionError, a crash rather than an answer); ValueError when malformed."""
    try:
        return jsonsafe.loads(content, max_depth=max_depth)
    except jsonsafe.JSONTooDeep:
        raise LimitError(f"{what} nests JSON deeper than {max_depth} levels (limit)") from None
