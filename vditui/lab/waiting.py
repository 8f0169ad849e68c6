"""Waiting on a live system: poll a condition on the event loop until it holds, with a deadline.

Shared by the lab's tests and the benchmarks, which watch real daemons and cannot know exactly
when an event lands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(pred: Callable[[], T], timeout: float, what: str = "the condition",
                     every: float = 0.01) -> T:
    """``pred()``'s first truthy value, polled every ``every`` s; ``TimeoutError`` naming
    ``what`` if none comes within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)
