"""The one pacing rule the host tree, the diff panel and the event log share: a first request
runs at once, the ones that follow within the interval fold into one run when it ends, none is
dropped."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

from vditui.ui.pacing import Pacer

INTERVAL = 0.2


class PacedApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Static(id="w")


async def test_requests_within_the_interval_fold_into_one_later_run() -> None:
    app = PacedApp()
    async with app.run_test() as pilot:
        runs: list[int] = []
        pacer = Pacer(app.query_one("#w"), INTERVAL, lambda: runs.append(len(runs)))
        pacer.request()
        assert runs == [0] and not pacer.pending  # the first: at once
        pacer.request()
        pacer.request()
        assert runs == [0] and pacer.pending  # folded, waiting
        await pilot.pause(INTERVAL * 2)
        assert runs == [0, 1] and not pacer.pending  # one run for both, none dropped
        await pilot.pause(INTERVAL * 1.5)
        pacer.request()
        assert runs == [0, 1, 2]  # an interval old: at once again
        pacer.later()
        assert pacer.pending and runs == [0, 1, 2]
        await pilot.pause(INTERVAL * 2)
        assert runs == [0, 1, 2, 3]
