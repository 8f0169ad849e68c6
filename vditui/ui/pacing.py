"""Pacing for widgets whose redraw is costly: at most once per interval, never dropped.

A group summary counts thousands of rows, and every write to the event log changes its size and
so re-lays out the whole screen; under an event storm each would otherwise run hundreds of times
a second. Each such widget owns one :class:`Pacer`: the first request runs at once, those that
follow within the interval are folded into one run when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.widget import Widget


class Pacer:
    """Runs ``run`` at most once every ``interval`` seconds, on ``widget``'s timers."""

    def __init__(self, widget: Widget, interval: float, run: Callable[[], None]) -> None:
        self._widget, self._interval, self._run = widget, interval, run
        self._last = 0.0
        self._waiting = False

    @property
    def pending(self) -> bool:
        """A run is waiting for the interval to end."""
        return self._waiting

    def request(self) -> None:
        """Run now if the last run is ``interval`` old, else once when it is."""
        if self._waiting:
            return
        wait = self._last + self._interval - time.monotonic()
        if wait <= 0:
            self.now()
        else:
            self._waiting = True
            self._widget.set_timer(wait, self.now)

    def later(self) -> None:
        """Run once a whole interval from now (more work is queued behind this run's)."""
        if not self._waiting:
            self._waiting = True
            self._widget.set_timer(self._interval, self.now)

    def now(self) -> None:
        """Run at once (a waiting timer then runs it again, harmlessly)."""
        self._waiting = False
        self._last = time.monotonic()
        self._run()
