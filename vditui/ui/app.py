"""The vditui application: host tree, VM table, diff panel and event log over one engine.

The app owns the layout, the key bindings, the screens and the command palette; it holds two
controllers, :class:`~vditui.ui.acting.Acting` (marks and actions) and
:class:`~vditui.ui.noting.Noting` (acknowledgements and the timeline), which its keys call into,
and keeps a reference to each widget it composed. The engine runs
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
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Tree
from textual.worker import Worker, WorkerState

from vditui.core import present
from vditui.core import selection as drifts_now
from vditui.core.engine import Engine, EngineSettings
from vditui.core.events import SnapshotReady
from vditui.core.face import EngineFace
from vditui.core.models import Comparison
from vditui.core.report import ReportMeta, render
from vditui.core.vdi import VdiAuthError, VdiError
from vditui.tuning import tune_gc
from vditui.ui import keys
from vditui.ui.acting import Acting
from vditui.ui.bridge import Bridge
from vditui.ui.messages import EngineEvents, Snapshot
from vditui.ui.noting import Noting
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


class VdiApp(App[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "vditui"
    BINDINGS = keys.bindings()  # every key of the main screen, from one table

    # The widgets and the controllers, set once by compose.
    top_bar: TopBar
    host_tree: HostTree
    filter_box: Input
    vm_table: VmTable
    diff_scroll: VerticalScroll
    diff_panel: DiffPanel
    event_log: EventLog
    acting: Acting
    noting: Noting

    def __init__(self, settings: EngineSettings | None, warnings: list[str] | None = None,
                 problem: tuple[str, str, str] | None = None, config_path: Path | None = None,
                 profile_name: str = "default",
                 clock: Callable[[], float] = time.time,
                 engine_factory: Callable[[EngineSettings], EngineFace] = Engine) -> None:
        """``engine_factory`` makes the engine from the settings: the real one, or (tests,
        benchmarks) a :class:`~vditui.core.fake_engine.FakeEngine`."""
        super().__init__()
        self.settings = settings
        self.warnings = warnings or []
        self.problem = problem
        self.config_path, self.profile_name = config_path, profile_name
        self.clock = clock
        self.engine_factory = engine_factory
        #: The engine, for commands; None until it runs (and after the platform refused it).
        self.engine: EngineFace | None = None
        #: The newest snapshot the engine sent.
        self.snapshot: SnapshotReady | None = None
        self.bridge: Bridge | None = None
        self._filter_timer: Timer | None = None
        self._frozen = False
        self._quit_asked = False

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        s = self.settings
        self.top_bar = TopBar(s.url if s else "", s.username if s else "", self.warnings,
                              id="top", read_only=bool(s and s.read_only))
        self.host_tree = HostTree(id="hosts")
        self.filter_box = Input(placeholder="filter VMs by name (esc clears)", id="filter")
        self.vm_table = VmTable(id="vms")
        self.diff_scroll = VerticalScroll(id="diff-scroll")
        self.diff_panel = DiffPanel(id="diff")
        self.event_log = EventLog(self.clock, id="events")
        # The app's clock read at each call (a test may set another after construction).
        self.acting = Acting(self, self.vm_table, engine=lambda: self.engine,
                             settings=self.settings, clock=lambda: self.clock(), note=self.note,
                             busy=self.top_bar.set_busy)
        self.noting = Noting(self, self.vm_table, engine=lambda: self.engine,
                             snapshot=lambda: self.snapshot, settings=self.settings,
                             clock=lambda: self.clock(), config_path=self.config_path,
                             profile_name=self.profile_name)
        yield self.top_bar
        with Horizontal(id="main"):
            yield self.host_tree
            with Vertical(id="right"):
                yield self.filter_box
                yield self.vm_table
                with Horizontal(id="bottom"):
                    with self.diff_scroll:
                        yield self.diff_panel
                    yield self.event_log
        yield Footer()

    def on_mount(self) -> None:
        tune_gc()  # see vditui.tuning (cli.main does the same for the headless commands)
        self.top_bar.clock = self.clock
        self.host_tree.clock = self.clock
        self.diff_panel.clock = self.clock
        self.event_log.border_title = "events"
        self.diff_scroll.border_title = "diff (tab here to scroll)"
        self._apply_width(self.size.width)
        table = self.vm_table
        table.border_title = "VMs"
        self.filter_box.display = False
        if self.problem is not None or self.settings is None:
            title, detail, fix = self.problem or ("No platform", "nothing to connect to", "")
            self.push_screen(ProblemScreen(title, detail, fix))
            return
        table.focus()
        self.bridge = Bridge(snapshot_to=(self, table, self.host_tree, self.diff_panel,
                                          self.top_bar),
                             events_to=(table, self.event_log, self.top_bar, self))
        self.run_worker(self.bridge.run(), name="bridge", group="bridge", exit_on_error=False)
        self.run_engine()

    def on_resize(self, event: Resize) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        self.set_class(width < NARROW, "narrow")

    @work(group="engine", exclusive=True, exit_on_error=False)
    async def run_engine(self) -> None:
        assert self.settings is not None and self.bridge is not None
        engine = self.engine_factory(self.settings)
        self.engine = engine
        engine.listen(self.bridge.listen)
        try:
            await engine.start(watch=True)
        except VdiError as exc:
            await engine.stop()
            self.engine = None
            self.push_screen(ProblemScreen(*_vdi_problem(exc, self.settings)))
            return
        if engine.history_off:
            self.notify(engine.history_off, title="history", severity="warning", timeout=15)

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
        self.note(Text(what, style="bold red"))

    def note(self, line: Text) -> None:
        """Write ``line``, stamped with the time, to the event log (if it is on screen)."""
        if self.is_running and self.event_log.is_attached:
            stamp = present.log_stamp(self.clock())
            self.event_log.note(Text.assemble(f"{stamp} ", line))

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
        return self.vm_table.filter

    def on_engine_events(self, message: EngineEvents) -> None:
        self.acting.follow(message)

    # ------------------------------------------------------------------ selection
    @on(DataTable.RowHighlighted, "#vms")
    def _vm_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        panel = self.diff_panel
        key = self.vm_table.selected_key
        panel.select(Selection(key, panel.selection.node))

    @on(Tree.NodeHighlighted, "#hosts")
    def _node_highlighted(self, event: Tree.NodeHighlighted[NodeRef]) -> None:
        panel = self.diff_panel
        panel.select(Selection(None, event.node.data or NodeRef("all")))

    @on(Tree.NodeSelected, "#hosts")
    def _node_selected(self, event: Tree.NodeSelected[NodeRef]) -> None:
        ref = event.node.data or NodeRef("all")
        f = self.filter
        self._set_filter(Filter(pool_id=ref.id if ref.kind == "pool" else "",
                                host_id=ref.id if ref.kind == "host" else "",
                                text=f.text, drift_only=f.drift_only))

    def _set_filter(self, flt: Filter) -> None:
        self.vm_table.set_filter(flt)

    def selected_host_id(self) -> str | None:
        tree, table = self.host_tree, self.vm_table
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
        box = self.filter_box
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
        text = self.filter_box.value.strip()
        if text != f.text:
            self._set_filter(Filter(f.pool_id, f.host_id, text, f.drift_only))

    @on(Input.Submitted, "#filter")
    def _filter_done(self, _event: Input.Submitted) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._apply_filter_text()
        self.vm_table.focus()

    def action_clear_filter(self) -> None:
        box = self.filter_box
        if box.display:
            box.value = ""
            box.display = False
            self._apply_filter_text()
            self.vm_table.focus()

    def action_drift_only(self) -> None:
        f = self.filter
        self._set_filter(Filter(f.pool_id, f.host_id, f.text, not f.drift_only))

    def action_sort_next(self) -> None:
        label = self.vm_table.sort_next()
        self.notify(f"sorted by {label}", timeout=2)

    def action_sort_reverse(self) -> None:
        table = self.vm_table
        table.sort_by(table.sort_column or COLUMNS[0][0])

    @on(DataTable.HeaderSelected, "#vms")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        self.vm_table.sort_by(str(event.column_key.value))

    def action_refresh(self) -> None:
        if self.engine is not None:
            self._refresh(self.engine)
            self.notify("refreshing the platform and every host", timeout=2)

    @work(group="refresh", exclusive=True, exit_on_error=False)
    async def _refresh(self, engine: EngineFace) -> None:
        await engine.refresh()

    def action_toggle_hosts(self) -> None:
        """Show or hide the host tree (hidden by default below 110 columns). Only classes
        change, never the tree's own display: an inline style would outlive a resize and
        override the narrow layout (the tree stuck on an 80-column screen)."""
        if self.has_class("narrow"):
            self.toggle_class("show-hosts")
            if self.has_class("show-hosts"):
                self.host_tree.focus()
        else:
            self.toggle_class("hide-hosts")

    def action_quit_now(self) -> None:
        """ctrl+c or ctrl+q: leave now, from any screen; while an action is being followed up,
        the first press only asks (the platform goes on with it either way)."""
        run = self.acting.run
        if run is not None and not run.done and not self._quit_asked:
            self._quit_asked = True
            self.notify("an action is being followed up (p shows it): press ctrl+c again to "
                        "quit; the platform goes on with it", severity="warning", timeout=6)
            return
        problem = next((s for s in self.screen_stack if isinstance(s, ProblemScreen)), None)
        self.exit(return_code=problem.exit_code if problem is not None else 0)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # The controllers' keys.
    def action_timeline(self) -> None:
        self.noting.timeline()

    def action_acknowledge(self) -> None:
        self.noting.acknowledge()

    def action_toggle_mark(self) -> None:
        self.acting.toggle_mark()

    def action_mark_confirmed(self) -> None:
        self.acting.mark_confirmed()

    def action_clear_marks(self) -> None:
        self.acting.clear_marks()

    def action_act(self) -> None:
        self.acting.act()

    def action_last_action(self) -> None:
        self.acting.last_action()

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
            self._write_export(path, self.snapshot.comparison, meta, self.snapshot.acknowledged,
                               drifts_now.select(self.snapshot))

    @work(group="export", exclusive=True, exit_on_error=False, thread=True)
    def _write_export(self, path: str, cmp: Comparison, meta: ReportMeta,
                      acked: Acked = NO_ACKS, sel: drifts_now.Selection | None = None) -> None:
        from vditui.config.write import write_private

        fmt, problem = export_format(path), export_problem(path)
        if fmt is None or problem:  # the dialog checked; the directory may have gone since
            self.call_from_thread(self.notify, problem, severity="error")
            return
        try:
            write_private(Path(path).expanduser(), render(cmp, meta, fmt, acked, sel))
        except OSError as exc:
            self.call_from_thread(self.notify, f"could not write {path}: {exc.strerror or exc}",
                                  severity="error")
            return
        self.call_from_thread(self.notify, f"report written to {path}")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for k in keys.KEYS:  # the palette offers what the key table says, nothing else
            if k.palette and not (k.acts and self.read_only):
                yield SystemCommand(k.palette, f"{k.help} ({k.label})",
                                    getattr(self, f"action_{k.action}"))

    @property
    def read_only(self) -> bool:
        """Actions are disabled (``--read-only`` or the profile's ``read_only``)."""
        return self.settings is not None and self.settings.read_only

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The main screen's keys do nothing over a dialog (and leave its footer). The keys
        that act stay live in read-only mode, to say why nothing happens; the palette leaves
        them out."""
        return not (action in keys.MAIN_ONLY and len(self.screen_stack) > 1)

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
