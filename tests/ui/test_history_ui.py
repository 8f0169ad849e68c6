"""The drift history in the TUI: the diff panel says since when the selected VM has differed
(on the app's injected clock), and ``i`` shows its timeline read from the history file."""

from __future__ import annotations

import io
import os
import re
import time

import pytest
from rich.console import Console, RenderableType

from vditui.core import present
from vditui.ui.keys import markdown
from vditui.ui.screens.timeline import TimelineScreen
from vditui.ui.widgets.diff_panel import DiffPanel
from vditui.ui.widgets.vm_table import VmTable

AHEAD = 3 * 3600 + 60.0
# "14:02", or with its date ("2026-12-02 21:05") when the clock, three hours ahead, is on
# another day (the test runs at any time of day).
SINCE = r"differs since ((?:\d{4}-\d\d-\d\d )?\d\d:\d\d) \(3 h\)"
VM = "class-a-04"  # the default scenario's state drift on hv-t1


def text_of(renderable: RenderableType) -> str:
    console = Console(width=200, record=True, no_color=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


@pytest.mark.lab
@pytest.mark.timeout(60)
async def test_differs_since_and_the_timeline(lab, make_app, settle, wait_for, ui, tmp_path):
    app = make_app(lab, history_path=tmp_path / "history.sqlite3")
    app.clock = lambda: time.time() + AHEAD  # three hours after the drift was first seen
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        table.focus()
        key = ui.key_of(app, VM)
        table.move_cursor(row=table.get_row_index(key))
        panel = app.query_one("#diff", DiffPanel)
        await wait_for(pilot, lambda: re.search(SINCE,
                                                text_of(panel.content)),
                       "since when, in the diff panel", timeout=3)
        first_seen = app.snapshot.first_seen_at((key, "state"))
        assert first_seen is not None
        shown = re.search(SINCE, text_of(panel.content))
        assert shown is not None
        assert shown.group(1) == present.clock_time(first_seen, app.clock())

        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, TimelineScreen), "the timeline")
        screen = app.screen
        body = screen.query_one("#tl-body")
        await wait_for(pilot, lambda: "state drift first seen" in text_of(body.content),
                       "the timeline read from the history", timeout=5)
        lines = text_of(body.content).splitlines()
        assert any("state drift confirmed" in line for line in lines), lines
        assert not any("class-a-01" in line for line in lines)  # this VM's only
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TimelineScreen), "closed")
        assert app._exception is None
    assert "| i |" in markdown()


async def test_the_timeline_key_without_a_history(fake, make_fake_app, settle, wait_for, ui):
    app = make_fake_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(ui.key_of(app, VM)))
        await pilot.press("i")
        await wait_for(pilot, lambda: any("no history" in m for _, m in
                                          ui.notifications(app)), "the notice")
        assert not isinstance(app.screen, TimelineScreen)


async def test_a_history_that_cannot_be_opened_is_said_on_screen(lab, make_app, settle, ui,
                                                                  tmp_path):
    # A FIFO planted where the history belongs: the TUI runs on without it, and says so once.
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    path = state / "history.sqlite3"
    os.mkfifo(path, 0o600)
    app = make_app(lab, history_path=path)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        said = [m for sev, m in ui.notifications(app) if "history is off" in m]
        assert len(said) == 1 and sev_of(ui.notifications(app), said[0]) == "warning"
        assert f"{path}: is a FIFO (named pipe)" in said[0]
        assert app.query_one("#vms", VmTable).row_count > 0  # monitoring goes on


def sev_of(notes: list[tuple[str, str]], message: str) -> str:
    return next(sev for sev, m in notes if m == message)
