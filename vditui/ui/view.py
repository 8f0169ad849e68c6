"""What the screen shows, computed from a comparison: pure, no widgets, so it is cheap to diff.

Mismatched cells carry a marker (``≠``, ``!``) as well as a style, so they read with NO_COLOR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text

from vditui.core.drift import DriftStatus
from vditui.core.models import (
    ConnState,
    DriftKind,
    HostRow,
    Severity,
    VmRow,
    host_status_label,
    vdi_status_label,
)

COLUMNS = (("name", "VM", 20), ("host", "host", 12), ("vdi", "VDI state", 11),
           ("virt", "libvirt", 11), ("vcpu", "vCPU", 7), ("mem", "memory MB", 13),
           ("drift", "drift", 18))
BAD = "bold red"
WARN = "yellow"
PENDING = "italic yellow"


@dataclass(frozen=True, slots=True)
class Filter:
    """What the VM table shows: a pool, a host, text, drift only."""

    pool_id: str = ""
    host_id: str = ""
    text: str = ""
    drift_only: bool = False

    def matches(self, row: VmRow, pool_of: dict[str, str]) -> bool:
        if self.drift_only and not row.drifts:
            return False
        if self.host_id and self.host_id not in (row.host_id, row.virt_host_id):
            return False
        if self.pool_id and pool_of.get(row.host_id) != self.pool_id:
            return False
        if self.text:
            t = self.text.lower()
            return t in row.name.lower() or t in row.key.lower()
        return True


def _mark(text: str, bad: bool, style: str = BAD) -> Text | str:
    return Text(f"{text} ≠", style=style) if bad else text


def vm_cells(row: VmRow, host_names: dict[str, str],
             status: dict[tuple[str, str], DriftStatus],
             stale: frozenset[str] = frozenset()) -> tuple[Text | str, ...]:
    """The seven cells of a VM row. ``stale``: hosts whose libvirt data is the last known, not
    current (the connection dropped); their rows say so."""
    kinds = {d.kind for d in row.drifts}
    pending = bool(row.drifts) and all(
        status.get(d.ident) is DriftStatus.PENDING for d in row.drifts)
    style = PENDING if pending else BAD
    vdi, virt = row.vdi, row.virt
    host = host_names.get(row.host_id, row.host_id[:8])
    if DriftKind.PLACEMENT in kinds and row.virt_host_id:
        host_cell: Text | str = Text(f"{host}≠{host_names.get(row.virt_host_id, '?')}",
                                     style=style)
    else:
        host_cell = host
    vdi_state = vdi_status_label(vdi.status) if vdi else "—"
    virt_state = virt.state.value if virt else ("?" if not row.checked else "—")
    is_stale = (row.virt_host_id or row.host_id) in stale
    state_bad = bool(kinds & {DriftKind.STATE, DriftKind.ONLY_IN_VDI, DriftKind.ONLY_IN_LIBVIRT})
    cpu_a = vdi.vcpu if vdi else None
    cpu_b = virt.vcpu if virt else None
    mem_a = vdi.memory_mb if vdi else None
    mem_b = (virt.memory_kib // 1024) if virt and virt.memory_kib is not None else None
    drift = ", ".join(sorted(k.value for k in kinds))
    if not row.checked:
        drift_cell: Text | str = Text("unchecked", style="dim")
    elif drift:
        drift_cell = Text(("… " if pending else "! ") + drift, style=style)
    else:
        drift_cell = "ok"
    if is_stale:
        drift_cell = Text.assemble(("stale ", "dim italic"), drift_cell)
        virt_state += "*"
    return (
        Text(row.name, style=style) if row.drifts else row.name,
        host_cell,
        _mark(vdi_state, state_bad, style),
        _mark(virt_state, state_bad, style),
        _pair(cpu_a, cpu_b, DriftKind.VCPU in kinds, style),
        _pair(mem_a, mem_b, DriftKind.MEMORY in kinds, style),
        drift_cell,
    )


def _pair(a: int | None, b: int | None, bad: bool, style: str) -> Text | str:
    if not bad:
        v = a if a is not None else b
        return "—" if v is None else str(v)
    return Text(f"{'—' if a is None else a}≠{'—' if b is None else b}", style=style)


def host_label(row: HostRow, vm_drifts: int, now: float, connecting_since: float = 0.0) -> Text:
    """A host line in the tree: status, connection and transport, VM counts, drift count."""
    view = row.view
    t = Text()
    t.append(row.host.name, style="bold")
    state = view.state if view else ConnState.IDLE
    if state is ConnState.CONNECTED:
        t.append(f" ● {view.transport}" if view else "", style="green")
    elif state in (ConnState.CONNECTING, ConnState.RECONNECTING):
        secs = f" ({now - connecting_since:.0f} s)" if connecting_since else ""
        t.append(f" ◌ {state.value}…{secs}", style="yellow")
        _data_age(t, row)
    elif state is ConnState.FAILED:
        kind = view.error.kind.value if view and view.error else "failed"
        t.append(f" ✗ {kind}", style=BAD)
        _data_age(t, row)
    else:
        t.append(" ○ idle", style="dim")
    vdi = host_status_label(row.host.status)
    if vdi != "enabled":
        t.append(f" [{vdi}]", style=WARN)
    virt = "-" if row.virt_vms is None else str(row.virt_vms)
    t.append(f" {row.vdi_vms}/{virt}")
    total = len(row.drifts) + vm_drifts
    if total:
        worst = max((d.severity for d in row.drifts), default=Severity.WARNING)
        t.append(f" !{total}", style=BAD if worst is Severity.CRITICAL else WARN)
    return t


def _data_age(t: Text, row: HostRow) -> None:
    """The age of the domains a host no longer connected still shows (its last read)."""
    view = row.view
    if view is not None and view.domains is not None and view.read_at:
        t.append(f" data {data_age(view.read_at)} old", style="dim")


def data_age(read_at: float) -> str:
    """How old data read at ``read_at`` (wall clock) is: "12 s", "3 min"."""
    s = max(0, int(time.time() - read_at))
    return f"{s} s" if s < 120 else f"{s // 60} min"


def stale_hosts(hosts: list[HostRow]) -> frozenset[str]:
    """Hosts whose libvirt data is kept from before a dropped connection."""
    return frozenset(h.host.id for h in hosts if h.view is not None
                     and h.view.domains is not None and h.view.state is not ConnState.CONNECTED)


def drift_count_label(name: str, count: int) -> Text:
    t = Text(name, style="bold")
    if count:
        t.append(f" !{count}", style=BAD)
    return t
