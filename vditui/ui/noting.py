"""What the operator notes about a drift, and what vditui remembers of it: ``k`` acknowledges the
selected VM's drift (a reason, an optional expiry; saved to the config with its comments kept,
then applied live), ``i`` shows its timeline from the drift history.

:class:`Noting` is a controller the app holds: the app's key bindings call into it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import App

from vditui.core.acks import AckRule
from vditui.core.events import SnapshotReady
from vditui.core.face import EngineFace
from vditui.core.settings import EngineSettings
from vditui.ui.screens.ack import AckScreen, notice, rules_for, save_rules, unacknowledged
from vditui.ui.screens.timeline import TimelineScreen
from vditui.ui.widgets.vm_table import VmTable


class Noting:
    """Acknowledging drift and the drift timeline: their screens and the saving worker."""

    def __init__(self, app: App[Any], table: VmTable, *, engine: Callable[[], EngineFace | None],
                 snapshot: Callable[[], SnapshotReady | None],
                 settings: EngineSettings | None, clock: Callable[[], float],
                 config_path: Path | None, profile_name: str) -> None:
        self.app, self.table = app, table
        self._engine, self._snapshot = engine, snapshot
        self.settings, self.clock = settings, clock
        self.config_path, self.profile_name = config_path, profile_name

    def timeline(self) -> None:
        """The selected VM's drift history (and its host's incidents), read in a thread."""
        table, snap = self.table, self._snapshot()
        key = table.selected_key
        row = table.rows_by_key.get(key) if key is not None else None
        if row is None:
            self.app.notify("select a VM first", severity="warning")
            return
        s = self.settings
        if s is None or s.history_path is None:
            self.app.notify("no history is kept in this session", severity="warning")
            return
        names = {h.host.id: h.host.name for h in snap.comparison.hosts} if (
            snap is not None) else {}
        host = names.get(row.virt_host_id or row.host_id, "")
        self.app.push_screen(TimelineScreen(s.history_path, s.url, row.name, host, self.clock))

    def acknowledge(self) -> None:
        """Acknowledge the selected VM's drift: ask why and until when, save, apply."""
        table, snap = self.table, self._snapshot()
        row = table.rows_by_key.get(table.selected_key or "")
        drifts = unacknowledged(row, snap.acknowledged) if row and snap else []
        if self._engine() is None or row is None or snap is None or not drifts:
            self.app.notify("select a VM with a drift that is not acknowledged yet",
                            severity="warning")
            return
        names = {h.host.id: h.host.name for h in snap.comparison.hosts}

        def then(answer: tuple[str, date | None] | None) -> None:
            if answer is not None:
                self._save_acks(rules_for(row, names, snap.acknowledged, *answer))

        today = date.fromtimestamp(self.clock())
        self.app.push_screen(AckScreen(row.name, drifts, today), then)

    def _save_acks(self, rules: list[AckRule]) -> None:
        self.app.run_worker(partial(self._save, rules), name="_save_acks", group="ack",
                            exclusive=True, exit_on_error=False, thread=True)

    def _save(self, rules: list[AckRule]) -> None:
        """Save ``rules`` to the config file (if there is one), then apply them live (in a
        thread: the file is locked and written)."""
        where = save_rules(self.config_path, self.profile_name, rules,
                           date.fromtimestamp(self.clock()))
        self.app.call_from_thread(self._apply_acks, rules, where)

    def _apply_acks(self, rules: list[AckRule], where: str) -> None:
        engine = self._engine()
        if engine is not None:
            for rule in rules:
                engine.acknowledge(rule)
        text, severity = notice(rules, where)
        self.app.notify(text, severity=severity)
