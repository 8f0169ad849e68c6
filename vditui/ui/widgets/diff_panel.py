"""The diff panel: the selected VM field by field, or a host's / pool's drifts by kind."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from vditui.core import present
from vditui.core.acks import AckRule
from vditui.core.drift import DriftStatus
from vditui.core.events import SnapshotReady
from vditui.core.models import (
    Drift,
    DriftKind,
    HostRow,
    PlatformAlarm,
    VmRow,
    host_status_label,
)
from vditui.core.vdi_facts import (
    alarm_line,
    capacity,
    capacity_line,
    user_facing,
    user_line,
    vm_alarms,
)
from vditui.core.vm_kinds import kind_label
from vditui.ui.messages import Snapshot
from vditui.ui.pacing import Pacer
from vditui.ui.view import ACKED, BAD, NO_ACKS, Acked
from vditui.ui.widgets.host_tree import SUMMARY_INTERVAL, NodeRef

_ALL = NodeRef("all")


@dataclass(frozen=True, slots=True)
class Selection:
    """What the panel shows: the VM ``vm_key`` if set (and still there), else ``node``."""

    vm_key: str | None = None
    node: NodeRef = _ALL


class DiffPanel(Static):
    DEFAULT_CSS = "DiffPanel { height: auto; padding: 0 1; }"

    def __init__(self, **kw: Any) -> None:
        super().__init__("Select a VM or a host.", **kw)
        #: The app's injected clock: ages of kept libvirt data are counted on it.
        self.clock: Callable[[], float] = time.time
        self._snap: SnapshotReady | None = None
        self._rows: dict[str, VmRow] | None = None  # the snapshot's rows by key, made on demand
        self._selection = Selection()
        # A group's summary counts thousands of rows: a few times a second.
        self._pacer = Pacer(self, SUMMARY_INTERVAL, self._show)

    @property
    def pending(self) -> bool:
        """A snapshot is not shown yet."""
        return self._pacer.pending

    @property
    def selection(self) -> Selection:
        return self._selection

    def select(self, selection: Selection) -> None:
        """Show ``selection`` now (the app calls this as the cursor moves)."""
        self._selection = selection
        self._pacer.now()

    def on_snapshot(self, message: Snapshot) -> None:
        self._snap = message.snapshot
        if message.rows is None:
            self._rows = None
        elif self._rows is not None:
            self._rows.update(message.rows)
        key = self._selection.vm_key
        if key is not None and (message.rows is None or key in message.rows):
            self._pacer.now()  # the selected VM changed: at once
        else:
            self._pacer.request()

    def _show(self) -> None:
        snap = self._snap
        if snap is None or not self.is_attached:
            return
        cmp = snap.comparison
        names = cmp.host_names()
        key = self._selection.vm_key
        if self._rows is None and key is not None:
            self._rows = {r.key: r for r in cmp.vms}
        row = self._rows.get(key) if self._rows is not None and key is not None else None
        if row is not None:
            hid = row.virt_host_id or row.host_id
            link = snap.hosts.get(hid)
            view = link.view if link is not None else None
            seen = [t for d in row.drifts if (t := snap.first_seen_at(d.ident)) is not None]
            self.show_vm(row, names, snap.statuses(row.drifts), present.stale_since(view),
                         min(seen, default=0.0), snap.acknowledged, tuple(vm_alarms(cmp, row)))
            return
        ref = self._selection.node
        if ref.kind == "host":
            hosts = [h for h in cmp.hosts if h.host.id == ref.id]
            title = hosts[0].host.name if hosts else "host"
        elif ref.kind == "pool":
            hosts = [h for h in cmp.hosts if h.host.pool_id == ref.id]
            title = f"pool {hosts[0].host.pool_name}" if hosts else "pool"
        else:
            hosts, title = list(cmp.hosts), "all hosts"
        ids = {h.host.id for h in hosts}
        self.show_group(title, hosts, [r for r in cmp.vms if r.host_id in ids], snap.statuses(),
                        snap.acknowledged)

    # An update re-lays out the screen (the panel's height follows its content), so it is
    # skipped when what the panel would show has not changed: under an event storm the
    # comparison changes many times a second while the selected VM mostly does not.
    _shown: object = None

    def _update_if_changed(self, sig: object, render: Callable[[], RenderableType]) -> None:
        if sig != self._shown:
            self._shown = sig
            self.update(render())

    def show_vm(self, row: VmRow, host_names: dict[str, str],
                status: dict[tuple[str, str], DriftStatus], stale_since: float = 0.0,
                first_seen: float = 0.0, acked: Acked = NO_ACKS,
                alarms: tuple[PlatformAlarm, ...] = ()) -> None:
        """Show ``row``; ``first_seen``: when its earliest drift was first seen (wall clock,
        0 if unknown); ``acked``: the acknowledged drifts' rules; ``alarms``: the platform's
        alarms about it."""
        now = self.clock()
        age = present.age(stale_since, now) if stale_since else ""
        since = _differs_since(first_seen, now)
        sig = ("vm", row, tuple((status.get(d.ident), acked.get(d.ident)) for d in row.drifts),
               age, since, alarms)
        self._update_if_changed(sig, lambda: vm_diff(row, host_names, status, stale_since, now,
                                                     first_seen, acked, alarms))

    def show_group(self, title: str, hosts: list[HostRow], vms: list[VmRow],
                   status: dict[tuple[str, str], DriftStatus], acked: Acked = NO_ACKS) -> None:
        now = self.clock()
        drifts = tuple((d, status.get(d.ident), d.ident in acked) for r in vms for d in r.drifts)
        ages = tuple(present.age(s, now) for h in hosts if (s := present.stale_since(h.view)))
        sig = ("group", title, tuple(hosts), drifts, ages, tuple(
            d.ident in acked for h in hosts for d in h.drifts))
        self._update_if_changed(sig, lambda: group_diff(title, hosts, vms, status, now, acked))


def _differs_since(first_seen: float, now: float) -> str:
    # Ages are on the app's clock; a first sighting that clock places in the future (a test's
    # fixed clock against the engine's real one) has no age to show.
    return present.differs_since(first_seen, now) if 0 < first_seen <= now else ""


def vm_diff(row: VmRow, host_names: dict[str, str],
            status: dict[tuple[str, str], DriftStatus], stale_since: float = 0.0,
            now: float = 0.0, first_seen: float = 0.0, acked: Acked = NO_ACKS,
            alarms: tuple[PlatformAlarm, ...] = ()) -> RenderableType:
    """The selected VM field by field; ``now`` (the injected clock) ages stale data and the
    drift, first seen at ``first_seen`` (wall clock; 0: not said); an acknowledged drift's
    line is dimmed and says its reason and expiry."""
    kinds = {d.kind for d in row.drifts}
    vdi, virt = row.vdi, row.virt
    t = Table(box=None, pad_edge=False, expand=True, show_edge=False)
    t.add_column("field", style="bold", no_wrap=True)
    t.add_column("platform")
    t.add_column("libvirt")
    t.add_column("", width=2)

    def line(field: str, a: object, b: object, bad: bool) -> None:
        mark = Text("≠", style=BAD) if bad else Text("=", style="dim")
        t.add_row(field, Text(str(a), style=BAD if bad else ""),
                  Text(str(b), style=BAD if bad else ""), mark)

    missing = present.MISSING
    line("present", "yes" if vdi else "no", "yes" if virt else
         ("unknown (host unreachable)" if not row.checked else "no"),
         bool({DriftKind.ONLY_IN_VDI, DriftKind.ONLY_IN_LIBVIRT} & kinds))
    line("host", host_names.get(vdi.host_id, vdi.host_id) if vdi else missing,
         host_names.get(row.virt_host_id or "", missing) if virt else missing,
         DriftKind.PLACEMENT in kinds)
    line("state", present.vdi_state(vdi) or missing, present.virt_state(virt) or missing,
         DriftKind.STATE in kinds)
    line("vCPU", vdi.vcpu if vdi and vdi.vcpu is not None else missing,
         virt.vcpu if virt and virt.vcpu is not None else missing, DriftKind.VCPU in kinds)
    line("memory MiB", present.vdi_memory(vdi) or missing, present.virt_memory(virt) or missing,
         DriftKind.MEMORY in kinds)
    line("id / uuid", vdi.id if vdi else missing, virt.uuid if virt else missing, False)
    # What differs first (kind, both sides, since when, any acknowledgement): a diff panel
    # at 80x24 shows five lines; the field-by-field table follows.
    head = Text(row.name, style="bold")
    if row.drifts and (since := _differs_since(first_seen, now)):
        head.append(f"  {since}  (i: timeline)", style="italic")
    parts: list[RenderableType] = [head]
    parts += [_drift_line(d, status, acked.get(d.ident)) for d in row.drifts]
    # What the platform says it is, and who is on it (issue 20).
    if kind := kind_label(vdi):
        parts.append(Text(f"platform: {kind}", style="dim"))
    if who := user_line(vdi, now):
        parts.append(Text(who, style=BAD if user_facing(row) else "dim"))
    parts += [Text(alarm_line(a), style=BAD) for a in alarms]
    if stale_since:
        parts.append(Text(f"libvirt data is {present.age(stale_since, now)} old (stale): the "
                          "host's connection dropped and vditui is reconnecting",
                          style="italic yellow"))
    if not row.drifts:
        parts.append(Text("no difference" if row.checked else
                          "not checked: this host's libvirt could not be read", style="dim"))
    parts.append(t)
    return Group(*parts)


def _drift_line(d: Drift, status: dict[tuple[str, str], DriftStatus],
                ack: AckRule | None = None) -> Text:
    if ack is not None:
        return Text.assemble(
            (f"{present.ACK_MARK} {present.kind_name(d.kind)}: {d.message}\n  ", ACKED),
            (present.ack_text(ack.reason, ack.expires), "italic"))
    st = status.get(d.ident)
    pending = st is DriftStatus.PENDING
    tag = "pending" if pending else d.severity.name.lower()
    mark = present.PENDING_MARK if pending else present.CONFIRMED_MARK
    return Text.assemble((f"{mark} ", BAD),
                         (f"{present.kind_name(d.kind)} [{tag}]: ", "bold"), d.message)


def group_diff(title: str, hosts: list[HostRow], vms: list[VmRow],
               status: dict[tuple[str, str], DriftStatus], now: float = 0.0,
               acked: Acked = NO_ACKS) -> RenderableType:
    """A host's or pool's connections and drifts by kind; ``now`` (the injected clock) ages
    stale data."""
    parts: list[RenderableType] = [Text(title, style="bold")]
    for h in hosts:
        v = h.view
        conn = v.state.value if v else "not tried"
        line = Text(f"{h.host.name}: VDI {host_status_label(h.host.status)}, libvirt {conn}")
        if v is not None and v.uri:
            line.append(f" via {v.uri}", style="dim")
        parts.append(line)
        if v is not None and v.error is not None and v.state.value != "connected":
            parts.append(Text(f"  {v.error.kind.value}: {v.error.message}", style=BAD))
            if v.error.hint:
                parts.append(Text(f"  hint: {v.error.hint}  (press c to reconnect)",
                                  style="italic"))
        if since := present.stale_since(v):
            parts.append(Text(f"  libvirt data is {present.age(since, now)} old (stale): the last "
                              "read before the connection dropped", style="italic yellow"))
        parts += [Text(f"  {alarm_line(a)}", style=BAD) for a in h.alarms]
        if len(hosts) == 1:
            parts.append(Text(f"  {capacity_line(capacity(h, vms))}", style="dim"))
    by_kind: dict[DriftKind, list[Drift]] = {}
    for d in [*(d for h in hosts for d in h.drifts), *(d for r in vms for d in r.drifts)]:
        by_kind.setdefault(d.kind, []).append(d)
    if not by_kind:
        parts.append(Text("no drift", style="dim"))
    for kind, items in ((k, by_kind[k]) for k in DriftKind if k in by_kind):
        parts.append(Text(f"{present.kind_name(kind)} ({len(items)})", style="bold"))
        parts += [Text(f"  {d.subject}: {d.message}" + (
            " [acknowledged]" if d.ident in acked else
            " [pending]" if status.get(d.ident) is DriftStatus.PENDING else ""),
            style=ACKED if d.ident in acked else "") for d in items[:20]]
        if len(items) > 20:
            parts.append(Text(f"  … {len(items) - 20} more", style="dim"))
    return Group(*parts)
