"""The event log under a burst: written in batches of at most LOG_BATCH lines, a few times a
second, so one burst never holds the screen; what the log cannot keep is said, not silently cut.
Driven with synthetic engine events through the widget's message, without the lab."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from vditui.core.events import DomainChanged
from vditui.core.models import Domain, VirtState
from vditui.core.session import DomainEvent
from vditui.ui.app import VdiApp
from vditui.ui.messages import EngineEvents
from vditui.ui.widgets.event_log import LOG_BATCH, LOG_INTERVAL, MAX_LOG_LINES, EventLog


def _event(i: int) -> DomainChanged:
    old, new = Domain(f"u{i}", f"vm-{i}", VirtState.RUNNING), Domain(f"u{i}", f"vm-{i}",
                                                                       VirtState.SHUTOFF)
    return DomainChanged(0.0, i + 1, DomainEvent("h1", f"u{i}", f"vm-{i}", "stopped", old, new,
                                                 0.0), "hv-1")


async def test_a_burst_is_written_in_batches_and_the_cut_is_said(ui) -> None:
    app = VdiApp(None, problem=("Test", "no platform in this test", ""), clock=lambda: 0.0)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        app.pop_screen()  # the main screen, under the problem screen
        await pilot.pause()
        log = app.query_one("#events", EventLog)
        sizes: list[int] = []
        write = log.write

        def counting(content: Text, *a: object, **k: object) -> RichLog:
            sizes.append(len(content.plain.split("\n")))
            return write(content, *a, **k)  # type: ignore[arg-type]

        log.write = counting  # type: ignore[method-assign]
        burst = MAX_LOG_LINES + 500
        log.post_message(EngineEvents([_event(i) for i in range(burst)]))
        await pilot.pause()
        assert sizes == [LOG_BATCH] and ui.display_pending(app) and log.pending
        await pilot.pause(LOG_INTERVAL * (MAX_LOG_LINES // LOG_BATCH + 2))
        assert not log.pending and not ui.display_pending(app)
        assert max(sizes) <= LOG_BATCH and sum(sizes) == MAX_LOG_LINES
        assert log.lines[0].text.startswith(f"… {burst - MAX_LOG_LINES + 1} earlier lines")
        assert log.lines[-1].text.endswith(f"hv-1 vm-{burst - 1}: stopped (running → shutoff)")
        assert len(log.lines) == MAX_LOG_LINES
