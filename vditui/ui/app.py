"""The vditui application: host tree, VM table, diff panel and event log over one engine.

The app owns the layout, the key bindings, the screens and the command palette. The engine runs
in a worker on the app's loop (its libvirt calls are in threads); a second worker, the bridge
(:mod:`vditui.ui.bridge`), turns its events into messages for the widgets, each of which follows
them and paces its own redraws. The app sends the engine commands (refresh, probe, use a URI).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Tree
from textual.worker import Worker, WorkerState

from vditui.core.engine import Engine, EngineSettings
from vditui.core.events import SnapshotReady
from vditui.core.models import Comparison
from vditui.core.report import ReportMeta, render
from vditui.core.vdi import VdiAuthError, VdiError
from vditui.tuning import tune_gc
from vditui.ui import keys
from vditui.ui.bridge import Bridge
from vditui.ui.messages import Snapshot
from vditui.ui.noting import NotingApp
from vditui.ui.screens.reconnect import ReconnectScreen
from vditui.ui.screens.simple import (
    ExportScreen,
    HelpScreen,
    ProblemScreen,
    export_format,
    export_problem,
)
from vditui.ui.view import COLUMNS, NO_ACKS, Acked, Filter
from vditui.ui.widgets.diff_panel import DiffPanel, Selection
from vditui.ui.widgets.event_log import EventLog
from vditui.ui.widgets.host_tree import HostTree, NodeRef
from vditui.ui.widgets.top_bar import TopBar
from vditui.ui.widgets.vm_table import VmTable

_log = logging.getLogger(__name__)

NARROW = 110
FILTER_DELAY = 0.15  # typing pauses this long before the table is filtered again


class VdiApp(NotingApp):  # NotingApp: acknowledging and the timeline; ActingApp: actions
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "vditui"
    BINDINGS = keys.bindings()  # every key of the main screen, from one table

    def __init__(self, settings: EngineSettings | None, warnings: list[str] | None = None,
                 problem: tuple[str, str, str] | None = None, config_path: Path | None = None,
                 profile_name: str = "default",
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.settings = settings
        self.warnings = warnings or []
        self.problem = problem
        self.config_path, self.profile_name = config_path, profile_name
        self.clock = clock
        #: The engine, for commands; None until it runs (and after the platform refused it).
        self.engine: Engine | None = None
        #: The newest snapshot the engine sent.
        self.snapshot: SnapshotReady | None = None
        self.bridge: Bridge | None = None
        self._filter_timer: Timer | None = None
        self._frozen = False
        self._quit_asked = False

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        s = self.settings
        yield TopBar(s.url if s else "", s.username if s else "", self.warnings, id="top",
                     read_only=bool(s and s.read_only))
        with Horizontal(id="main"):
            yield HostTree(id="hosts")
            with Vertical(id="right"):
                yield Input(placeholder="filter VMs by name (esc clears)", id="filter")
                yield VmTable(id="vms")
                with Horizontal(id="bottom"):
                    with VerticalScroll(id="diff-scroll"):
                        yield DiffPanel(id="diff")
                    yield EventLog(self.clock, id="events")
        yield Footer()

    def on_mount(self) -> None:
        tune_gc()  # see vditui.tuning (cli.main does the same for the headless commands)
        self.query_one("#top", TopBar).clock = self.clock
        self.query_one("#hosts", HostTree).clock = self.clock
        self.query_one("#diff", DiffPanel).clock = self.clock
        self.query_one("#events", EventLog).border_title = "events"
        self.query_one("#diff-scroll").border_title = "diff (tab here to scroll)"
        self._apply_width(self.size.width)
        table = self.query_one("#vms", VmTable)
        table.border_title = "VMs"
        self.query_one("#filter", Input).display = False
        if self.problem is not None or self.settings is None:
            title, detail, fix = self.problem or ("No platform", "nothing to connect to", "")
            self.push_screen(ProblemScreen(title, detail, fix))
            return
        table.focus()
        tree, panel = self.query_one("#hosts", HostTree), self.query_one("#diff", DiffPanel)
        top = self.query_one("#top", TopBar)
        self.bridge = Bridge(snapshot_to=(self, table, tree, panel, top),
                             events_to=(table, self.query_one("#events", EventLog), top, self))
        self.run_worker(self.bridge.run(), name="bridge", group="bridge", exit_on_error=False)
        self.run_engine()

    def on_resize(self, event: Resize) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        self.set_class(width < NARROW, "narrow")

    @work(group="engine", exclusive=True, exit_on_error=False)
    async def run_engine(self) -> None:
        assert self.settings is not None and self.bridge is not None
        engine = Engine(self.settings)
        self.engine = engine
        engine.listen(self.bridge.listen)
        try:
            await engine.start(watch=True)
        except VdiError as exc:
            await engine.stop()
            self.engine = None
            self.push_screen(ProblemScreen(*_vdi_problem(exc, self.settings)))

    async def on_unmount(self) -> None:
        if self.engine is not None:
            await self.engine.stop()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that failed is said on screen and in the log, never lost (every worker
        runs with ``exit_on_error=False``; screens forward theirs here)."""
        worker = event.worker
        if event.state is not WorkerState.ERROR:
            return
        err = worker.error
        _log.error("worker %s (%s) failed", worker.name, worker.group, exc_info=err)
        what = f"{worker.group} failed: {type(err).__name__}: {err}"
        self.notify(what, title="internal error", severity="error", timeout=10)
        log = self.query("#events").first(EventLog) if self.is_running else None
        if log is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime(self.clock()))
            log.note(Text(f"{stamp} {what}", style="bold red"))

    def on_snapshot(self, message: Snapshot) -> None:
        snap = self.snapshot = message.snapshot
        if not self._frozen and snap.settled and snap.hosts:
            # Every host read: move the loaded objects out of the collector's generations
            # (gc.freeze), so later collections only walk what changed.
            self._frozen = True
            gc.collect()
            gc.freeze()

    @property
    def comparison(self) -> Comparison | None:
        """The newest snapshot's comparison."""
        return self.snapshot.comparison if self.snapshot is not None else None

    @property
    def filter(self) -> Filter:
        return self.query_one("#vms", VmTable).filter

    @property
    def display_pending(self) -> bool:
        """Something the engine sent is not on screen yet (queued in the bridge, or a widget's
        redraw still due)."""
        if self.bridge is not None and self.bridge.pending:
            return True
        return any(w.pending for w in (self.query_one("#vms", VmTable),
                                       self.query_one("#events", EventLog),
                                       self.query_one("#hosts", HostTree),
                                       self.query_one("#diff", DiffPanel)))

    def clear_event_log(self) -> None:
        """Forget every event line, shown or still queued."""
        self.query_one("#events", EventLog).clear()

    # ------------------------------------------------------------------ selection
    @on(DataTable.RowHighlighted, "#vms")
    def _vm_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        panel = self.query_one("#diff", DiffPanel)
        key = self.query_one("#vms", VmTable).selected_key
        panel.select(Selection(key, panel.selection.node))

    @on(Tree.NodeHighlighted, "#hosts")
    def _node_highlighted(self, event: Tree.NodeHighlighted[NodeRef]) -> None:
        panel = self.query_one("#diff", DiffPanel)
        panel.select(Selection(None, event.node.data or NodeRef("all")))

    @on(Tree.NodeSelected, "#hosts")
    def _node_selected(self, event: Tree.NodeSelected[NodeRef]) -> None:
        ref = event.node.data or NodeRef("all")
        f = self.filter
        self._set_filter(Filter(pool_id=ref.id if ref.kind == "pool" else "",
                                host_id=ref.id if ref.kind == "host" else "",
                                text=f.text, drift_only=f.drift_only))

    def _set_filter(self, flt: Filter) -> None:
        self.query_one("#vms", VmTable).set_filter(flt)

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
        return self.filter.host_id or None

    # ------------------------------------------------------------------ actions
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, _event: Input.Changed) -> None:
        # A rebuild per key stroke is wasted work on a large table: wait for a pause in typing.
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DELAY, self._apply_filter_text)

    def _apply_filter_text(self) -> None:
        self._filter_timer = None
        f = self.filter
        text = self.query_one("#filter", Input).value.strip()
        if text != f.text:
            self._set_filter(Filter(f.pool_id, f.host_id, text, f.drift_only))

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
        self._set_filter(Filter(f.pool_id, f.host_id, f.text, not f.drift_only))

    def action_sort_next(self) -> None:
        label = self.query_one("#vms", VmTable).sort_next()
        self.notify(f"sorted by {label}", timeout=2)

    def action_sort_reverse(self) -> None:
        table = self.query_one("#vms", VmTable)
        table.sort_by(table.sort_column or COLUMNS[0][0])

    @on(DataTable.HeaderSelected, "#vms")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.query_one("#vms", VmTable).sort_by(str(event.column_key.value))

    def action_refresh(self) -> None:
        if self.engine is not None:
            self._refresh(self.engine)
            self.notify("refreshing the platform and every host", timeout=2)

    @work(group="refresh", exclusive=True, exit_on_error=False)
    async def _refresh(self, engine: Engine) -> None:
        await engine.refresh()

    def action_toggle_hosts(self) -> None:
        """Show or hide the host tree (hidden by default below 110 columns)."""
        if self.has_class("narrow"):
            self.toggle_class("show-hosts")
            if self.has_class("show-hosts"):
                self.query_one("#hosts", HostTree).focus()
        else:
            tree = self.query_one("#hosts", HostTree)
            tree.display = not tree.display

    def action_quit_now(self) -> None:
        """ctrl+c or ctrl+q: leave now, from any screen; while an action is being followed up,
        the first press only asks (the platform goes on with it either way)."""
        run = self.action_run
        if run is not None and not run.done and not self._quit_asked:
            self._quit_asked = True
            self.notify("an action is being followed up (p shows it): press ctrl+c again to "
                        "quit; the platform goes on with it", severity="warning", timeout=6)
            return
        problem = next((s for s in self.screen_stack if isinstance(s, ProblemScreen)), None)
        self.exit(problem.exit_code if problem is not None else 0)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_reconnect(self) -> None:
        engine, snap, host_id = self.engine, self.snapshot, self.selected_host_id()
        link = snap.hosts.get(host_id) if snap is not None and host_id is not None else None
        row = next((h for h in snap.comparison.hosts if h.host.id == host_id), None) if (
            snap is not None) else None
        if engine is None or link is None or row is None:
            self.notify("select a host (in the tree, or a VM on it) first", severity="warning")
            return
        self.push_screen(ReconnectScreen.for_host(engine, row.host, link, self.config_path,
                                                  self.profile_name))

    def action_export(self) -> None:
        if self.snapshot is None:
            self.notify("nothing to export yet", severity="warning")
            return
        default = time.strftime("vditui-report-%Y%m%d-%H%M%S.md", time.localtime(self.clock()))
        self.push_screen(ExportScreen(default), self._export_to)

    def _export_to(self, path: str | None) -> None:
        if path and self.snapshot is not None and self.settings is not None:
            meta = ReportMeta(self.settings.url, self.settings.username, self.clock(),
                              tuple(self.warnings + list(self.snapshot.platform_warnings)))
            self._write_export(path, self.snapshot.comparison, meta, self.snapshot.acknowledged)

    @work(group="export", exclusive=True, exit_on_error=False, thread=True)
    def _write_export(self, path: str, cmp: Comparison, meta: ReportMeta,
                      acked: Acked = NO_ACKS) -> None:
        from vditui.config.write import write_private

        fmt, problem = export_format(path), export_problem(path)
        if fmt is None or problem:  # the dialog checked; the directory may have gone since
            self.call_from_thread(self.notify, problem, severity="error")
            return
        try:
            write_private(Path(path).expanduser(), render(cmp, meta, fmt, acked))
        except OSError as exc:
            self.call_from_thread(self.notify, f"could not write {path}: {exc.strerror}",
                                  severity="error")
            return
        self.call_from_thread(self.notify, f"report written to {path}")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for k in keys.KEYS:  # the palette offers what the key table says, nothing else
            if k.palette and not (k.acts and self.read_only):
                yield SystemCommand(k.palette, f"{k.help} ({k.label})",
                                    getattr(self, f"action_{k.action}"))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The main screen's keys do nothing over a dialog (and leave its footer); the keys
        that act are shown disabled in read-only mode."""
        if action in keys.MAIN_ONLY and len(self.screen_stack) > 1:
            return False
        if action in keys.ACTING and self.read_only:
            return None
        return True

    def _fatal_error(self) -> None:
        """An unhandled exception ends the app. Textual's own report prints every frame's
        local variables, and those can hold the password or the platform token: report the
        traceback without them (the same, in full, goes to the log file)."""
        import rich
        from rich.segment import Segments
        from rich.traceback import Traceback

        _log.error("internal error; vditui exits", exc_info=True)
        self.bell()
        report = Traceback(show_locals=False, width=None, suppress=[rich])
        self._exit_renderables.append(Segments(self.console.render(report,
                                                                   self.console.options)))
        self._close_messages_no_wait()


def _vdi_problem(exc: VdiError, s: EngineSettings) -> tuple[str, str, str]:
    if isinstance(exc, VdiAuthError):
        return ("Login refused", str(exc),
                f"Check the user name ({s.username}) and the password (VDITUI_PASSWORD, "
                "password_env or password_command in the config).")
    return ("Cannot reach the platform", str(exc),
            f"Check the URL ({s.url}), the network, and --insecure if it uses a self-signed "
            "certificate.")
