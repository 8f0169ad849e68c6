"""The event log under a burst: written in batches of at most LOG_BATCH lines, a few times a
second, so one burst never holds the screen; what the log cannot keep is said, not silently cut."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from vditui.ui.app import LOG_BATCH, LOG_INTERVAL, MAX_LOG_LINES, VdiApp


async def test_a_burst_is_written_in_batches_and_the_cut_is_said() -> None:
    app = VdiApp(None, problem=("Test", "no platform in this test", ""))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        app.pop_screen()  # the main screen, under the problem screen
        await pilot.pause()
        log = app.query_one("#events", RichLog)
        sizes: list[int] = []
        write = log.write

        def counting(content: Text, *a: object, **k: object) -> RichLog:
            sizes.append(len(content.plain.split("\n")))
            return write(content, *a, **k)  # type: ignore[arg-type]

        log.write = counting  # type: ignore[method-assign]
        burst = MAX_LOG_LINES + 500
        app._queued = [Text(f"line {i}") for i in range(burst)]
        app._flush_log()
        assert sizes == [LOG_BATCH] and app.display_pending
        await pilot.pause(LOG_INTERVAL * (MAX_LOG_LINES // LOG_BATCH + 2))
        assert not app._queued and not app.display_pending
        assert max(sizes) <= LOG_BATCH and sum(sizes) == MAX_LOG_LINES
        assert log.lines[0].text.startswith(f"… {burst - MAX_LOG_LINES + 1} earlier lines")
        assert log.lines[-1].text == f"line {burst - 1}"
        assert len(log.lines) == MAX_LOG_LINES
