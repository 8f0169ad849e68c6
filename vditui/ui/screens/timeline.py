"""The selected VM's timeline, read from the drift history: when each of its drifts was first
seen, confirmed, acknowledged and resolved, and when its host was unreachable."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from rich.console import Group, RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static
from textual.worker import Worker

from vditui.core import history_db as hdb
from vditui.core import present
from vditui.core.history_text import Moment, timeline
from vditui.ui.view import BAD


class TimelineScreen(ModalScreen[None]):
    """One VM's history (and its host's incidents), newest last; esc closes."""

    BINDINGS = [Binding("escape,q,i", "dismiss", "close")]

    def __init__(self, path: Path, platform: str, vm: str, host: str,
                 clock: Callable[[], float]) -> None:
        super().__init__()
        self.path, self.platform, self.vm, self.host, self.clock = path, platform, vm, host, clock

    def compose(self) -> ComposeResult:
        with Vertical(id="timeline"):
            yield Label(f"[b]{self.vm}[/b] on {self.host or '?'}: timeline from the history")
            with VerticalScroll():
                yield Static("reading the history…", id="tl-body")
        yield Footer()

    def on_mount(self) -> None:
        self._read()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app's one handler says what failed (a screen's workers report to the screen).
        self.app.post_message(Worker.StateChanged(event.worker, event.state))

    @work(group="timeline", exclusive=True, exit_on_error=False, thread=True)
    def _read(self) -> None:
        # SQLite may wait on another vditui process's transaction: never on the event loop.
        try:
            db = hdb.connect_readonly(self.path)
            try:
                drifts = hdb.drifts(db, vm=self.vm, platform=self.platform)
                incidents = hdb.incidents(db, host=self.host,
                                          platform=self.platform) if self.host else []
            finally:
                db.close()
        except (hdb.HistoryError, sqlite3.Error) as exc:
            self.app.call_from_thread(self._show, Text(str(exc), style=BAD))
            return
        self.app.call_from_thread(self._show, render(timeline(drifts, incidents), self.clock()))

    def _show(self, body: RenderableType) -> None:
        if self.is_attached:
            self.query_one("#tl-body", Static).update(body)


def render(moments: list[Moment], now: float) -> RenderableType:
    """The timeline's lines: local time, then what happened (bad news in the error colour)."""
    if not moments:
        return Text("nothing recorded for this VM", style="dim")
    return Group(*(Text.assemble((f"{present.clock_time(m.at, now)}  ", "dim"),
                                 (m.text, BAD if m.bad else "")) for m in moments))
