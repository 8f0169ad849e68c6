"""The widgets on synthetic engine events, without the lab: what each does with a snapshot, a
lifecycle event, a drift change and a platform event, delivered the way the app delivers them
(through :class:`~vditui.ui.bridge.Bridge`); and the app's one handler of failed workers."""

from __future__ import annotations

import io
from types import MappingProxyType
from typing import Any

from rich.console import Console
from rich.text import Text
from textual.app import App, ComposeResult
from textual.message import Message

from vditui.core.drift import DriftStatus, DriftTracker
from vditui.core.events import (
    DomainChanged,
    DomainEvent,
    DriftChanged,
    HostLink,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.models import (
    Comparison,
    ConnState,
    Domain,
    HostStatus,
    HostView,
    VdiHost,
    VdiInventory,
    VdiVm,
    VdiVmStatus,
    VirtState,
)
from vditui.core.reconcile import reconcile
from vditui.ui.app import VdiApp
from vditui.ui.bridge import Bridge
from vditui.ui.messages import EngineEvents, Snapshot
from vditui.ui.screens.reconnect import ReconnectScreen
from vditui.ui.widgets.diff_panel import DiffPanel, Selection
from vditui.ui.widgets.event_log import LOG_INTERVAL, EventLog
from vditui.ui.widgets.host_tree import HostTree
from vditui.ui.widgets.top_bar import TopBar
from vditui.ui.widgets.vm_table import FLUSH_DELAY, VmTable

HOST = VdiHost("h1", "hv-1", "10.0.0.1", HostStatus.ENABLED, "p1", "pool-1")
URI = "qemu+tcp://10.0.0.1/system"
UUIDS = {"vm-a": "00000000-0000-4000-8000-00000000000a",
         "vm-b": "00000000-0000-4000-8000-00000000000b"}
INVENTORY = VdiInventory((HOST,), tuple(VdiVm(u, n, VdiVmStatus.RUNNING, 2, 2048, "h1", "hv-1")
                                        for n, u in UUIDS.items()))


def _view(states: dict[str, VirtState], state: ConnState = ConnState.CONNECTED) -> HostView:
    return HostView("h1", URI, state, tuple(Domain(UUIDS[n], n, st, 2, 2048 * 1024)
                                            for n, st in states.items()), read_at=1.0)


class World:
    """Comparisons as the engine makes them, with the engine's drift tracker."""

    def __init__(self, grace: float) -> None:
        self.tracker = DriftTracker(grace)

    def snapshot(self, states: dict[str, VirtState], now: float, seq: int,
                 rows: tuple[str, ...] | None = None) -> tuple[SnapshotReady, list[DriftChanged]]:
        view = _view(states)
        cmp: Comparison = reconcile(INVENTORY, {"h1": view})
        changes = self.tracker.update(cmp.drifts, now)
        links = {"h1": HostLink(view, "hv-1", 0.0, (URI,), True)}
        changed = None if rows is None else tuple(r for r in cmp.vms if r.name in rows)
        snap = SnapshotReady(now, seq, cmp, MappingProxyType(self.tracker.states()),
                             MappingProxyType(links), changed, True)
        return snap, [DriftChanged(now, ch) for ch in changes]


def stopped(seq: int, name: str = "vm-a") -> DomainChanged:
    u = UUIDS[name]
    ev = DomainEvent("h1", u, name, "stopped", Domain(u, name, VirtState.RUNNING, 2, 2048 * 1024),
                     Domain(u, name, VirtState.SHUTOFF, 2, 2048 * 1024), 0.0)
    return DomainChanged(0.0, seq, ev, "hv-1")


class Face(App[None]):
    def compose(self) -> ComposeResult:
        yield TopBar("https://vdi.example", "admin", [], id="top")
        yield HostTree(id="hosts")
        yield VmTable(id="vms")
        yield DiffPanel(id="diff")
        yield EventLog(lambda: 0.0, id="events")

    def bridge(self) -> Bridge:
        table = self.query_one(VmTable)
        return Bridge(snapshot_to=(table, self.query_one(HostTree), self.query_one(DiffPanel)),
                      events_to=(table, self.query_one(EventLog), self.query_one(TopBar)))


def cell(table: VmTable, name: str, column: str) -> str:
    value = table.get_cell(UUIDS[name], column)
    return value.plain if isinstance(value, Text) else str(value)


def log_text(log: EventLog) -> list[str]:
    return [line.text for line in log.lines]


async def test_table_follows_snapshots_events_and_drift_statuses() -> None:
    app, world = Face(), World(grace=10)
    running = {"vm-a": VirtState.RUNNING, "vm-b": VirtState.RUNNING}
    async with app.run_test(size=(160, 40)) as pilot:
        bridge, table = app.bridge(), app.query_one(VmTable)
        first, _ = world.snapshot(running, now=0, seq=0)
        bridge.deliver([first])
        await pilot.pause(FLUSH_DELAY * 3)
        assert table.row_count == 2 and cell(table, "vm-a", "virt") == "running"
        assert table.border_title == "VMs 2/2 · worst first"

        # A lifecycle event shows at once, ahead of the engine's next pass ...
        bridge.deliver([stopped(seq=1)])
        await pilot.pause(FLUSH_DELAY * 3)
        assert cell(table, "vm-a", "virt").startswith("shutoff")
        # ... and a snapshot that does not include it yet (seq 0) does not put the old state back.
        older, _ = world.snapshot(running, now=1, seq=0, rows=("vm-a",))
        bridge.deliver([older])
        await pilot.pause(FLUSH_DELAY * 3)
        assert cell(table, "vm-a", "virt").startswith("shutoff")
        assert log_text(app.query_one(EventLog))[-1].endswith(
            " hv-1 vm-a: stopped (running → shutoff)")

        # The pass that includes it: the drift is pending (within grace), then confirmed.
        shutoff = {**running, "vm-a": VirtState.SHUTOFF}
        snap, changes = world.snapshot(shutoff, now=2, seq=1, rows=("vm-a",))
        assert [c.change.status for c in changes] == [DriftStatus.PENDING]
        bridge.deliver([snap, *changes])
        await pilot.pause(FLUSH_DELAY * 3)
        drift = cell(table, "vm-a", "drift")
        assert drift.startswith("…") and "state" in drift
        assert cell(table, "vm-b", "drift") == "ok"
        snap, changes = world.snapshot(shutoff, now=12, seq=1, rows=())  # no row changed
        assert [c.change.status for c in changes] == [DriftStatus.CONFIRMED]
        bridge.deliver([snap, *changes])
        await pilot.pause(FLUSH_DELAY * 3)
        assert cell(table, "vm-a", "drift").startswith("!")
        styled = table.get_cell(UUIDS["vm-a"], "drift")
        assert isinstance(styled, Text) and "bold red" in str(styled.style)
        await pilot.pause(LOG_INTERVAL * 2)  # the log writes a few times a second
        lines = log_text(app.query_one(EventLog))
        assert any("drift pending: vm-a" in ln for ln in lines)
        assert any("drift confirmed: vm-a" in ln for ln in lines)
        assert not app.query_one(VmTable).pending and not bridge.pending


async def test_tree_and_diff_panel_follow_snapshots() -> None:
    app, world = Face(), World(grace=0)
    async with app.run_test(size=(160, 40)) as pilot:
        bridge = app.bridge()
        snap, changes = world.snapshot({"vm-a": VirtState.SHUTOFF, "vm-b": VirtState.RUNNING},
                                       now=0, seq=0)
        bridge.deliver([snap, *changes])
        await pilot.pause(FLUSH_DELAY * 3)
        tree = app.query_one(HostTree)
        (pool,) = tree.root.children
        (host,) = pool.children
        assert str(host.label).startswith("hv-1 ● tcp") and "!1" in str(host.label)
        panel = app.query_one(DiffPanel)
        assert panel.selection == Selection()  # nothing selected: all hosts
        assert "all hosts" in shown(panel) and "vm-a" in shown(panel)
        panel.select(Selection(UUIDS["vm-a"]))
        assert shown(panel).startswith("vm-a") and "shutoff" in shown(panel)
        # The selected VM's row changes: the panel follows at once.
        snap, changes = world.snapshot({"vm-a": VirtState.PAUSED, "vm-b": VirtState.RUNNING},
                                       now=1, seq=1, rows=("vm-a",))
        bridge.deliver([snap, *changes])
        await pilot.pause()
        assert "paused" in shown(panel) and "shutoff" not in shown(panel)


def shown(panel: DiffPanel) -> str:
    console = Console(width=100, file=io.StringIO())
    console.print(panel.content)
    return console.file.getvalue()  # type: ignore[attr-defined]


async def test_top_bar_and_log_follow_the_platform() -> None:
    app = Face()
    async with app.run_test(size=(160, 40)) as pilot:
        bridge = app.bridge()
        bar, log = app.query_one(TopBar), app.query_one(EventLog)
        bar.clock = lambda: 1_764_000_000.0
        bridge.deliver([PlatformFailed(0.0, "https://vdi.example: HTTP 500 Internal Server "
                                            "Error")])
        await pilot.pause(0.3)
        assert bar.vdi_error.endswith("HTTP 500 Internal Server Error")
        assert "platform: https://vdi.example: HTTP 500" in log_text(log)[-1]
        bridge.deliver([PlatformRefreshed(0.0, INVENTORY, ("page total 3, got 2",),
                                          ("page total 3, got 2",), recovered=True)])
        await pilot.pause(0.3)
        assert bar.vdi_error == "" and bar.data_warnings == ["page total 3, got 2"]
        assert bar.refreshed_at == 1_764_000_000.0
        assert [ln.split(" ", 1)[1] for ln in log_text(log)[-2:]] == [
            "platform warning: page total 3, got 2", "platform: reachable again"]


def test_a_newer_snapshot_replaces_a_queued_one_with_both_rows() -> None:
    world = World(grace=0)
    states = {"vm-a": VirtState.RUNNING, "vm-b": VirtState.RUNNING}
    s1, _ = world.snapshot(states, now=0, seq=1, rows=("vm-a",))
    s2, _ = world.snapshot(states, now=1, seq=2, rows=("vm-b",))
    s3, _ = world.snapshot(states, now=2, seq=3)
    m1 = Snapshot(s1, {r.key: r for r in s1.rows or ()})
    m2 = Snapshot(s2, {r.key: r for r in s2.rows or ()})
    assert m1.can_replace(m2) and m2.rows is not None
    assert set(m2.rows) == {UUIDS["vm-a"], UUIDS["vm-b"]}
    m3 = Snapshot(s3, None)
    assert m2.can_replace(m3) and m3.rows is None  # a full pass: any row
    assert not m3.can_replace(EngineEvents([stopped(4)]))

    class Target:
        def __init__(self) -> None:
            self.got: list[Message] = []

        def post_message(self, message: Message) -> bool:
            self.got.append(message)
            return True

    target = Target()
    bridge = Bridge(snapshot_to=[target], events_to=[target])  # type: ignore[list-item]
    event = stopped(5)
    bridge.deliver([s1, event, s2])
    snap_msg, events_msg = target.got
    assert isinstance(snap_msg, Snapshot) and snap_msg.snapshot is s2
    assert snap_msg.rows is not None and set(snap_msg.rows) == {UUIDS["vm-a"], UUIDS["vm-b"]}
    assert isinstance(events_msg, EngineEvents) and list(events_msg.events) == [event]


async def test_a_failed_worker_is_said_on_screen_and_in_the_log() -> None:
    app = VdiApp(None, problem=("Test", "no platform in this test", ""), clock=lambda: 0.0)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        app.pop_screen()
        await pilot.pause()

        async def boom() -> Any:
            raise RuntimeError("the refresh broke")

        app.run_worker(boom(), name="refresh", group="refresh", exit_on_error=False)
        for _ in range(50):
            await pilot.pause(0.05)
            if app._notifications:
                break
        assert [n.message for n in app._notifications] == [
            "refresh failed: RuntimeError: the refresh broke"]
        await pilot.pause(0.4)
        assert log_text(app.query_one(EventLog))[-1].endswith(
            "refresh failed: RuntimeError: the refresh broke")
        assert app.is_running


async def test_a_failed_worker_of_a_screen_reaches_the_same_handler() -> None:
    app = VdiApp(None, problem=("Test", "no platform in this test", ""), clock=lambda: 0.0)

    async def prober(uris: list[str]) -> list[Any]:
        raise RuntimeError("no probe today")

    async def adopter(uri: str) -> None:
        return None

    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        app.pop_screen()
        await app.push_screen(ReconnectScreen(HOST, URI, "failed: refused", [URI], prober,
                                              adopter, None, None))
        for _ in range(50):
            await pilot.pause(0.05)
            if app._notifications:
                break
        assert [n.message for n in app._notifications] == [
            "probe failed: RuntimeError: no probe today"]
        assert isinstance(app.screen, ReconnectScreen)  # the screen stays, usable
