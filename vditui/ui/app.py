"""The vditui application: host tree, VM table, diff panel and event log over one engine.

The engine runs as an async worker on the app's loop; its libvirt calls are in threads. Engine
updates only mark the screen dirty and queue log lines; one flush, at most every
``FLUSH_DELAY`` seconds, applies them in a single batch, so an event storm never floods Textual.
"""

from __future__ import annotations

import contextvars
import gc
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, RichLog, Tree

from vditui.core.drift import DriftStatus
from vditui.core.engine import Engine, EngineSettings, Update
from vditui.core.models import Comparison, ConnState, Drift, VmRow
from vditui.core.present import stale_hosts, stale_since
from vditui.core.vdi import VdiAuthError, VdiError
from vditui.tuning import tune_gc
from vditui.ui.actions import OperatorActions
from vditui.ui.screens.simple import ProblemScreen
from vditui.ui.view import Filter
from vditui.ui.widgets.diff_panel import DiffPanel
from vditui.ui.widgets.host_tree import HostTree, NodeRef
from vditui.ui.widgets.top_bar import TopBar
from vditui.ui.widgets.vm_table import VmTable

_log = logging.getLogger(__name__)

FLUSH_DELAY = 0.03
LOG_INTERVAL = 0.25  # the event log is written at most this often (see _flush_log)
LOG_BATCH = 200  # ... and at most this many lines at a time
SUMMARY_INTERVAL = 0.5  # the tree, group summary and title follow an event storm this often
NARROW = 110
MAX_LOG_LINES = 2000


class VdiApp(OperatorActions):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "vditui"

    def __init__(self, settings: EngineSettings | None, warnings: list[str] | None = None,
                 problem: tuple[str, str, str] | None = None, config_path: Path | None = None,
                 profile_name: str = "default", clock: Callable[[], float] = time.time,
                 engine_factory: Callable[[EngineSettings], Engine] = Engine) -> None:
        super().__init__()
        self.settings = settings
        self.warnings = warnings or []
        self.problem = problem
        self.config_path, self.profile_name = config_path, profile_name
        self.clock = clock
        self.engine_factory = engine_factory
        self.engine: Engine | None = None
        self.comparison: Comparison | None = None
        self.filter = Filter()
        self._dirty = False
        self._flush_pending = False
        self._queued: list[Text] = []
        self.flushes = 0
        self.last_flush_at = 0.0
        self._filter_timer: Timer | None = None
        self._fast_states: dict[str, tuple[int, str]] = {}
        self._log_flushed_at = 0.0
        self._log_timer_set = False
        self._comparison_dirty = False
        # Rows changed since the last render (key -> new row, or None: same row, its drift
        # status moved); None when a full pass may have changed any row.
        self._touched: dict[str, VmRow | None] | None = None
        self._summary_at = 0.0
        self._summary_timer_set = False
        self._stale_shown: frozenset[str] = frozenset()
        self._frozen = False

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        s = self.settings
        yield TopBar(s.url if s else "", s.username if s else "", self.warnings, id="top")
        with Horizontal(id="main"):
            yield HostTree(id="hosts")
            with Vertical(id="right"):
                yield Input(placeholder="filter VMs by name (esc clears)", id="filter")
                yield VmTable(id="vms")
                with Horizontal(id="bottom"):
                    with VerticalScroll(id="diff-scroll"):
                        yield DiffPanel(id="diff")
                    yield RichLog(id="events", max_lines=MAX_LOG_LINES, wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        tune_gc()  # see vditui.tuning (cli.main does the same for the headless commands)
        self.query_one("#top", TopBar).clock = self.clock
        self.query_one("#hosts", HostTree).clock = self.clock
        self.query_one("#diff", DiffPanel).clock = self.clock
        self.query_one("#events", RichLog).border_title = "events"
        self.query_one("#diff-scroll").border_title = "diff (tab here to scroll)"
        self._apply_width(self.size.width)
        self.query_one("#vms", VmTable).border_title = "VMs"
        self.query_one("#filter", Input).display = False
        if self.problem is not None or self.settings is None:
            title, detail, fix = self.problem or ("No platform", "nothing to connect to", "")
            self.push_screen(ProblemScreen(title, detail, fix))
            return
        self.set_interval(1.0, self._tick_connecting)
        self.query_one("#vms", VmTable).focus()
        self.run_engine()

    def on_resize(self, event: Resize) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        self.set_class(width < NARROW, "narrow")

    @work(group="engine", exclusive=True, exit_on_error=False)
    async def run_engine(self) -> None:
        assert self.settings is not None
        engine = self.engine_factory(self.settings)
        self.engine = engine
        # libvirt's events reach the loop by call_soon_threadsafe from libvirt's own thread, so
        # the engine can call listeners outside Textual's context (no active app), where the
        # flush timer would die at its first tick and the screen would stop updating. Deliver
        # every update in a copy of this (the app's) context.
        app_context = contextvars.copy_context()
        engine.listen(lambda u: app_context.copy().run(self.on_engine_update, u))
        try:
            await engine.start(watch=True)
        except VdiError as exc:
            await engine.stop()
            self.engine = None
            self.push_screen(ProblemScreen(*_vdi_problem(exc, self.settings)))

    async def on_unmount(self) -> None:
        if self.engine is not None:
            await self.engine.stop()

    # ------------------------------------------------------------------ engine updates
    def on_engine_update(self, u: Update) -> None:
        """Called on the app's loop for every engine update; cheap: queue and mark dirty."""
        if not self.is_running:  # closing: the widgets may already be gone
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(self.clock()))
        if u.kind == "inventory" and u.comparison is not None:
            self.comparison = u.comparison
            self._comparison_dirty = True
            if u.rows is None:
                self._touched = None  # a full pass: any row may have changed
            elif self._touched is not None:
                self._touched.update((r.key, r) for r in u.rows)
            # Events this comparison includes need no fast path any more; newer ones do.
            self._fast_states = {k: v for k, v in self._fast_states.items() if v[0] > u.seq}
        elif u.kind == "vm" and u.event is not None:
            e = u.event
            self._fast_states[e.uuid] = (u.seq, e.new.state.value if e.new else "—")
            old = e.old.state.value if e.old else "—"
            new = e.new.state.value if e.new else "gone"
            self._queued.append(Text(f"{stamp} {self._host_name(e.host_id)} {e.name}: {e.event} "
                                  f"({old} → {new})"))
        elif u.kind == "drift" and u.drift is not None:
            d, st = u.drift.drift, u.drift.status
            if self._touched is not None:  # its row's look follows the drift's status
                self._touched.setdefault(d.key, None)
                self._comparison_dirty = True
            style = {"pending": "yellow", "confirmed": "bold red", "resolved": "green"}[st.value]
            self._queued.append(Text(f"{stamp} drift {st.value}: {d.subject}: {d.message}",
                                  style=style))
        elif u.kind == "host":
            self._queued.append(Text(f"{stamp} {u.message}", style="cyan"))
        elif u.kind == "vdi":
            bar = self.query_one("#top", TopBar)
            was_failing, bar.vdi_error = bar.vdi_error, u.message
            if not u.message:
                bar.refreshed_at = self.clock()
                bar.data_warnings = list(self.engine.vdi_warnings) if self.engine else []
                if was_failing:
                    self._queued.append(Text(f"{stamp} platform: reachable again", style="green"))
            else:
                self._queued.append(Text(f"{stamp} platform: {u.message}", style="bold red"))
            bar.redraw()
        elif u.kind == "warning":
            self._queued.append(Text(f"{stamp} platform warning: {u.message}", style="bold yellow"))
        self._dirty = True
        if not self._flush_pending:
            self._flush_pending = True
            self.set_timer(FLUSH_DELAY, self.flush)

    @property
    def display_pending(self) -> bool:
        """Something the engine sent is not on screen yet (a flush, a throttled log write or
        summary is still due)."""
        return self._flush_pending or self._log_timer_set or self._summary_timer_set

    def _host_name(self, host_id: str) -> str:
        if self.engine is not None and host_id in self.engine.sessions:
            return self.engine.sessions[host_id].name
        return host_id[:8]

    def _status(self, drifts: Iterable[Drift] | None = None) -> dict[tuple[str, str],
                                                                      DriftStatus]:
        """The tracker's status of ``drifts`` (by default every drift of the comparison)."""
        if self.engine is None or self.comparison is None:
            return {}
        tr = self.engine.tracker
        return {d.ident: st for d in (self.comparison.drifts if drifts is None else drifts)
                if (st := tr.status(d.ident)) is not None}

    def flush(self) -> None:
        """Apply everything queued since the last flush, in one batch."""
        self._flush_pending = False
        if not self._dirty or not self.is_running:  # nothing new, or the app is closing
            return
        self._dirty = False
        self.flushes += 1
        with self.batch_update():
            if self._queued and time.monotonic() - self._log_flushed_at >= LOG_INTERVAL:
                self._flush_log()
            elif self._queued and not self._log_timer_set:
                self._log_timer_set = True
                self.set_timer(LOG_INTERVAL, self._flush_log)
            if self.comparison is not None and self._comparison_dirty:
                self._comparison_dirty = False
                touched, self._touched = self._touched, {}
                if touched is None or not self._render_rows(self.comparison, touched):
                    self._render_comparison(self.comparison)
                self._freeze_once()
            if self._fast_states:
                # Events newer than the comparison: show the new state now; the next reconcile
                # (which the engine paces by its own cost) restyles the row and its drift.
                # Kept until a comparison includes them: a re-render from an older comparison
                # must not put the old state back.
                self.query_one("#vms", VmTable).show_states(
                    {k: state for k, (_seq, state) in self._fast_states.items()})
        self.last_flush_at = time.monotonic()

    def clear_event_log(self) -> None:
        """Forget every event line, shown or still queued."""
        self._queued.clear()
        self.query_one("#events", RichLog).clear()

    def _flush_log(self) -> None:
        # Every write to the log changes its size, and that re-lays out the whole screen: so the
        # log is written a few times a second, while table cells follow events at once. Each
        # write is one batch of at most LOG_BATCH lines (a refresh that moves hundreds of
        # drifts queued 2,000 lines once, and their single write held the loop for 90 ms); the
        # rest follows LOG_INTERVAL later.
        self._log_timer_set = False
        self._log_flushed_at = time.monotonic()
        if not self._queued or not self.is_running:
            return
        if len(self._queued) > MAX_LOG_LINES:  # the log keeps no more: older lines could not show
            keep = MAX_LOG_LINES - 1
            self._queued = [Text(f"… {len(self._queued) - keep} earlier lines not shown (the event "
                              f"log keeps the last {MAX_LOG_LINES})", style="dim"),
                         *self._queued[-keep:]]
        batch, self._queued = self._queued[:LOG_BATCH], self._queued[LOG_BATCH:]
        self.query_one("#events", RichLog).write(Text("\n").join(batch))
        if self._queued and not self._log_timer_set:
            self._log_timer_set = True
            self.set_timer(LOG_INTERVAL, self._flush_log)

    def _freeze_once(self) -> None:
        """Once every host has been read, move the loaded objects out of the collector's
        generations (gc.freeze): later collections then only walk what changed."""
        if self._frozen or self.engine is None or not self.engine.sessions:
            return
        if all(s.settled for s in self.engine.sessions.values()):
            self._frozen = True
            gc.collect()
            gc.freeze()

    def _render_comparison(self, cmp: Comparison) -> None:
        names, pools = _host_maps(cmp)
        self._stale_shown = stale_hosts(list(cmp.hosts))
        self.query_one("#vms", VmTable).show(list(cmp.vms), self.filter, pools, names,
                                             self._status(), self._stale_shown)
        self._render_summary()

    def _render_rows(self, cmp: Comparison, touched: dict[str, VmRow | None]) -> bool:
        """Show only the rows the engine's passes changed (and those whose drift status moved):
        under an event storm or after a refresh, a few rows per flush instead of thousands.
        False when the table needs a full :meth:`_render_comparison` instead."""
        stale = stale_hosts(list(cmp.hosts))
        if stale != self._stale_shown:  # a host's rows all change their look
            return False
        table = self.query_one("#vms", VmTable)
        rows = [r for key, new in touched.items()
                if (r := new or table.rows_by_key.get(key)) is not None]
        status = self._status(d for r in rows for d in r.drifts)
        names, pools = _host_maps(cmp)
        if not table.show_rows(rows, self.filter, pools, names, status, stale):
            return False
        if table.selected_key in touched:
            self._update_diff()
        # The tree, the group summary and the title count thousands of rows: a few times a
        # second is enough for them, and it leaves the loop to the events.
        if time.monotonic() - self._summary_at >= SUMMARY_INTERVAL:
            self._render_summary()
        elif not self._summary_timer_set:
            self._summary_timer_set = True
            self.set_timer(SUMMARY_INTERVAL, self._render_summary)
        return True

    def _render_summary(self) -> None:
        """The host tree, the diff panel and the table's title, from the current comparison."""
        self._summary_timer_set = False
        self._summary_at = time.monotonic()
        cmp = self.comparison
        if cmp is None or not self.is_running:
            return
        self.query_one("#hosts", HostTree).update_from(cmp, time.monotonic(),
                                                        self._connecting())
        self._update_diff()
        table = self.query_one("#vms", VmTable)
        title = f"VMs {table.row_count}/{len(cmp.vms)}" + (
            " drift only" if self.filter.drift_only else "")
        if table.border_title != title:  # setting it, even unchanged, repaints the table
            table.border_title = title

    def _connecting(self) -> dict[str, float]:
        if self.engine is None:
            return {}
        return {hid: s.connecting_since for hid, s in self.engine.sessions.items()
                if s.state in (ConnState.CONNECTING, ConnState.RECONNECTING)}

    def _tick_connecting(self) -> None:
        # Also while a host shows kept data: its label says how old that data is.
        if self.comparison is not None and self.is_running and (
                self._connecting() or stale_hosts(list(self.comparison.hosts))):
            self.query_one("#hosts", HostTree).update_from(self.comparison, time.monotonic(),
                                                            self._connecting())

    # ------------------------------------------------------------------ selection
    @on(DataTable.RowHighlighted, "#vms")
    def _vm_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._update_diff(prefer_vm=True)

    @on(Tree.NodeHighlighted, "#hosts")
    def _node_highlighted(self, event: Tree.NodeHighlighted[NodeRef]) -> None:
        self._update_diff(prefer_vm=False, node=event.node.data)

    @on(Tree.NodeSelected, "#hosts")
    def _node_selected(self, event: Tree.NodeSelected[NodeRef]) -> None:
        ref = event.node.data or NodeRef("all")
        self.filter = Filter(pool_id=ref.id if ref.kind == "pool" else "",
                             host_id=ref.id if ref.kind == "host" else "",
                             text=self.filter.text, drift_only=self.filter.drift_only)
        self._refilter()

    def _update_diff(self, prefer_vm: bool | None = None, node: NodeRef | None = None) -> None:
        cmp = self.comparison
        if cmp is None:
            return
        panel = self.query_one("#diff", DiffPanel)
        table = self.query_one("#vms", VmTable)
        tree = self.query_one("#hosts", HostTree)
        names = _host_maps(cmp)[0]
        if prefer_vm is None:
            prefer_vm = not tree.has_focus
        key = table.selected_key
        if prefer_vm and key is not None and key in table.rows_by_key:
            row = table.rows_by_key[key]
            hid = row.virt_host_id or row.host_id
            view = next((h.view for h in cmp.hosts if h.host.id == hid), None)
            panel.show_vm(row, names, self._status(row.drifts), stale_since(view))
            return
        ref = node or (tree.cursor_node.data if tree.cursor_node else None) or NodeRef("all")
        if ref.kind == "host":
            hosts = [h for h in cmp.hosts if h.host.id == ref.id]
            title = hosts[0].host.name if hosts else "host"
        elif ref.kind == "pool":
            hosts = [h for h in cmp.hosts if h.host.pool_id == ref.id]
            title = f"pool {hosts[0].host.pool_name}" if hosts else "pool"
        else:
            hosts, title = list(cmp.hosts), "all hosts"
        ids = {h.host.id for h in hosts}
        vms = [r for r in cmp.vms if r.host_id in ids]
        panel.show_group(title, hosts, vms, self._status())

    # ------------------------------------------------------------------ actions
    def _refilter(self) -> None:
        self._dirty = self._comparison_dirty = True
        self._touched = None  # the filter changed: every row is judged again
        self.flush()

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

def _host_maps(cmp: Comparison) -> tuple[dict[str, str], dict[str, str]]:
    """Host id -> name, and host id -> pool id."""
    return ({h.host.id: h.host.name for h in cmp.hosts},
            {h.host.id: h.host.pool_id for h in cmp.hosts})


def _vdi_problem(exc: VdiError, s: EngineSettings) -> tuple[str, str, str]:
    if isinstance(exc, VdiAuthError):
        return ("Login refused", str(exc),
                f"Check the user name ({s.username}) and the password (VDITUI_PASSWORD, "
                "password_env or password_command in the config).")
    return ("Cannot reach the platform", str(exc),
            f"Check the URL ({s.url}), the network, and --insecure if it uses a self-signed "
            "certificate.")
