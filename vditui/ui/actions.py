"""The operator's commands on the main screen: filter, drift only, sort, refresh, reconnect,
export, theme, host tree, help, and the command palette's entries for them.

:class:`~vditui.ui.app.VdiApp` builds on this class; what the commands read and change (the
engine, the comparison, the filter) is its state, declared here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Input

from vditui.core.engine import Engine, EngineSettings
from vditui.core.models import Comparison, ConnState
from vditui.core.probe import ProbeResult
from vditui.core.report import ReportMeta, render
from vditui.ui.screens.reconnect import ReconnectScreen
from vditui.ui.screens.simple import ExportScreen, HelpScreen
from vditui.ui.view import COLUMNS, Filter
from vditui.ui.widgets.host_tree import HostTree
from vditui.ui.widgets.vm_table import VmTable

FILTER_DELAY = 0.15  # typing pauses this long before the table is filtered again


class OperatorActions(App[int]):
    """Key bindings and the actions behind them."""

    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("r", "refresh", "refresh"),
        Binding("slash", "filter", "filter"),
        Binding("d", "drift_only", "drift"),
        Binding("s", "sort_next", "sort"),
        Binding("S", "sort_reverse", "reverse", show=False),
        Binding("c", "reconnect", "reconnect"),
        Binding("e", "export", "export"),
        Binding("t", "toggle_theme", "theme", show=False),
        Binding("h", "toggle_hosts", "hosts", show=False),
        Binding("question_mark", "help", "help"),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    settings: EngineSettings | None
    warnings: list[str]
    engine: Engine | None
    comparison: Comparison | None
    filter: Filter
    config_path: Path | None
    profile_name: str
    clock: Callable[[], float]
    _filter_timer: Timer | None

    def _refilter(self) -> None:
        """Show the table again under the current filter (the app implements it)."""
        raise NotImplementedError

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        # A rebuild per key stroke is wasted work on a large table: wait for a pause in typing.
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DELAY, self._apply_filter_text)

    def _apply_filter_text(self) -> None:
        self._filter_timer = None
        f = self.filter
        text = self.query_one("#filter", Input).value.strip()
        if text != f.text:
            self.filter = Filter(f.pool_id, f.host_id, text, f.drift_only)
            self._refilter()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, _event: Input.Submitted) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._apply_filter_text()
        self.query_one("#vms", VmTable).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self._apply_filter_text()
            self.query_one("#vms", VmTable).focus()

    def action_drift_only(self) -> None:
        f = self.filter
        self.filter = Filter(f.pool_id, f.host_id, f.text, not f.drift_only)
        self._refilter()

    def action_sort_next(self) -> None:
        table = self.query_one("#vms", VmTable)
        keys = [c[0] for c in COLUMNS]
        cur = table.sort_column
        nxt = keys[(keys.index(cur) + 1) % len(keys)] if cur in keys else keys[0]
        table.sort_column, table.sort_reverse = None, False
        table.sort_by(nxt)
        self.notify(f"sorted by {dict((k, label) for k, label, _ in COLUMNS)[nxt]}", timeout=2)

    def action_sort_reverse(self) -> None:
        table = self.query_one("#vms", VmTable)
        table.sort_by(table.sort_column or COLUMNS[0][0])

    @on(DataTable.HeaderSelected, "#vms")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.query_one("#vms", VmTable).sort_by(str(event.column_key.value))

    def action_refresh(self) -> None:
        if self.engine is not None:
            self._refresh()
            self.notify("refreshing the platform and every host", timeout=2)

    @work(group="refresh", exclusive=True, exit_on_error=False)
    async def _refresh(self) -> None:
        if self.engine is not None:
            await self.engine.refresh()

    def action_toggle_hosts(self) -> None:
        """Show or hide the host tree (hidden by default below 110 columns)."""
        if self.has_class("narrow"):
            self.toggle_class("show-hosts")
            if self.has_class("show-hosts"):
                self.query_one("#hosts", HostTree).focus()
        else:
            tree = self.query_one("#hosts", HostTree)
            tree.display = not tree.display

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def selected_host_id(self) -> str | None:
        tree = self.query_one("#hosts", HostTree)
        table = self.query_one("#vms", VmTable)
        if tree.has_focus and tree.cursor_node and tree.cursor_node.data:
            ref = tree.cursor_node.data
            if ref.kind == "host":
                return ref.id
        key = table.selected_key
        if key is not None and key in table.rows_by_key:
            return table.rows_by_key[key].host_id or None
        if self.filter.host_id:
            return self.filter.host_id
        return None

    def action_reconnect(self) -> None:
        engine = self.engine
        host_id = self.selected_host_id()
        if engine is None or host_id is None or host_id not in engine.sessions:
            self.notify("select a host (in the tree, or a VM on it) first", severity="warning")
            return
        host = next(h for h in (engine.inventory.hosts if engine.inventory else ())
                    if h.id == host_id)
        s = engine.sessions[host_id]
        status = s.state.value + (f": {s.error.kind.value}" if s.error and
                                  s.state is not ConnState.CONNECTED else "")

        async def prober(uris: list[str]) -> list[ProbeResult]:
            from vditui.core.virt import probe

            return await probe(uris, engine.settings.connect_timeout)

        async def adopter(uri: str) -> None:
            await engine.use_uri(host_id, uri)

        saver = None
        if self.config_path is not None:
            from vditui.config.write import save_host_uri

            path, profile = self.config_path, self.profile_name

            def saver(uri: str) -> None:
                save_host_uri(path, profile, host.name, uri)

        from vditui.core.uris import alternatives

        uris = [*s.uris, *(a for u in s.uris for a in alternatives(u))]
        self.push_screen(ReconnectScreen(host, s.uri, status, uris, prober, adopter, saver,
                                         self.config_path))

    def action_export(self) -> None:
        if self.comparison is None:
            self.notify("nothing to export yet", severity="warning")
            return
        default = time.strftime("vditui-report-%Y%m%d-%H%M%S.md", time.localtime(self.clock()))
        self.push_screen(ExportScreen(default), self._export_to)

    def _export_to(self, path: str | None) -> None:
        if path:
            self._write_export(path)

    @work(group="export", exclusive=True, exit_on_error=False, thread=True)
    def _write_export(self, path: str) -> None:
        from vditui.config.write import write_private

        ext = Path(path).suffix.lower().lstrip(".")
        fmt = {"md": "md", "markdown": "md", "json": "json", "csv": "csv"}.get(ext)
        if fmt is None or self.comparison is None or self.settings is None:
            self.call_from_thread(self.notify, f"{path}: use a .md, .json or .csv name",
                                  severity="error")
            return
        platform_warnings = list(self.engine.client.warnings) if self.engine else []
        meta = ReportMeta(self.settings.url, self.settings.username, self.clock(),
                          tuple(self.warnings + platform_warnings))
        try:
            write_private(Path(path).expanduser(), render(self.comparison, meta, fmt))
        except OSError as exc:
            self.call_from_thread(self.notify, f"could not write {path}: {exc.strerror}",
                                  severity="error")
            return
        self.call_from_thread(self.notify, f"report written to {path}")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in (
            ("Refresh", "Re-read the platform and every host now", self.action_refresh),
            ("Filter VMs", "Filter the VM table by name", self.action_filter),
            ("Drift only", "Show only VMs with drift (toggle)", self.action_drift_only),
            ("Sort", "Sort the VM table by the next column", self.action_sort_next),
            ("Reconnect host", "Probe URIs for the selected host", self.action_reconnect),
            ("Export report", "Write the report as md, json or csv", self.action_export),
            ("Toggle theme", "Light or dark", self.action_toggle_theme),
            ("Host tree", "Show or hide the host tree", self.action_toggle_hosts),
            ("Help", "Keys and markers", self.action_help),
        ):
            yield SystemCommand(title, help_text, action)
