"""What the operator notes about a drift, and what vditui remembers of it: ``k`` acknowledges the
selected VM's drift (a reason, an optional expiry; saved to the config with its comments kept,
then applied live), ``i`` shows its timeline from the drift history. The app derives from
:class:`NotingApp`, which derives from :class:`~vditui.ui.acting.ActingApp`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from textual import work

from vditui.core.acks import AckRule
from vditui.core.events import SnapshotReady
from vditui.ui.acting import ActingApp
from vditui.ui.screens.ack import AckScreen, notice, rules_for, save_rules, unacknowledged
from vditui.ui.screens.timeline import TimelineScreen
from vditui.ui.widgets.vm_table import VmTable


class NotingApp(ActingApp):
    """Acknowledging drift and the drift timeline: their keys, screens and the saving worker."""

    # Its keys are in the key table (vditui.ui.keys).

    # Set by the app.
    snapshot: SnapshotReady | None
    config_path: Path | None
    profile_name: str

    def action_timeline(self) -> None:
        """The selected VM's drift history (and its host's incidents), read in a thread."""
        table = self.query_one("#vms", VmTable)
        key = table.selected_key
        row = table.rows_by_key.get(key) if key is not None else None
        if row is None:
            self.notify("select a VM first", severity="warning")
            return
        s = self.settings
        if s is None or s.history_path is None:
            self.notify("no history is kept in this session", severity="warning")
            return
        names = {h.host.id: h.host.name for h in self.snapshot.comparison.hosts} if (
            self.snapshot is not None) else {}
        host = names.get(row.virt_host_id or row.host_id, "")
        self.push_screen(TimelineScreen(s.history_path, s.url, row.name, host, self.clock))

    def action_acknowledge(self) -> None:
        """Acknowledge the selected VM's drift: ask why and until when, save, apply."""
        table, snap = self.query_one("#vms", VmTable), self.snapshot
        row = table.rows_by_key.get(table.selected_key or "")
        drifts = unacknowledged(row, snap.acknowledged) if row and snap else []
        if self.engine is None or row is None or snap is None or not drifts:
            self.notify("select a VM with a drift that is not acknowledged yet", severity="warning")
            return
        names = {h.host.id: h.host.name for h in snap.comparison.hosts}

        def then(answer: tuple[str, date | None] | None) -> None:
            if answer is not None:
                self._save_acks(rules_for(row, names, snap.acknowledged, *answer))

        today = date.fromtimestamp(self.clock())
        self.push_screen(AckScreen(row.name, drifts, today), then)

    @work(group="ack", exclusive=True, exit_on_error=False, thread=True)
    def _save_acks(self, rules: list[AckRule]) -> None:
        """Save ``rules`` to the config file (if there is one), then apply them live."""
        where = save_rules(self.config_path, self.profile_name, rules,
                           date.fromtimestamp(self.clock()))
        self.call_from_thread(self._apply_acks, rules, where)

    def _apply_acks(self, rules: list[AckRule], where: str) -> None:
        if self.engine is not None:
            for rule in rules:
                self.engine.acknowledge(rule)
        text, severity = notice(rules, where)
        self.notify(text, severity=severity)
