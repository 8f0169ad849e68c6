"""What the screen shows, computed from a comparison: pure, no widgets, so it is cheap to diff.

Mismatched cells carry a marker (``≠``, ``!``) as well as a style, so they read with NO_COLOR.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.text import Text

from vditui.core import present
from vditui.core.acks import AckRule
from vditui.core.drift import DriftStatus
from vditui.core.models import ConnState, DriftKind, HostRow, Severity, VmRow, host_status_label

# The drift column comes right after the name, and the first five columns fit an 80-column
# terminal (78 cells inside the table's border, cell padding included), so every row's drift
# status is on screen there; vCPU and memory follow, reached by scrolling right when narrow.
COLUMNS = (("name", "VM", 18), ("drift", "drift", 17), ("host", "host", 11),
           ("vdi", "VDI state", 11), ("virt", "libvirt", 11), ("vcpu", "vCPU", 7),
           ("mem", "memory MiB", 13))
#: Where a column's cell sits in a row's cells.
COLUMN_INDEX = {key: i for i, (key, _label, _width) in enumerate(COLUMNS)}
BAD = "bold red"
WARN = "yellow"
PENDING = "italic yellow"
#: Acknowledged drift: known and meant, shown but not counted.
ACKED = "dim"
Acked = Mapping[tuple[str, str], AckRule]
NO_ACKS: Acked = {}
"""No drift acknowledged (a default argument)."""


@dataclass(frozen=True, slots=True)
class Filter:
    """What the VM table shows: a pool, a host, text, drift only."""

    pool_id: str = ""
    host_id: str = ""
    text: str = ""
    drift_only: bool = False

    def matches(self, row: VmRow, pool_of: dict[str, str]) -> bool:
        # Drift only keeps the rows that cannot be checked (their host is down) too: their
        # drift is unknown, and hiding them would hide the hosts that cannot be read.
        if self.drift_only and not row.drifts and row.checked:
            return False
        if self.host_id and self.host_id not in (row.host_id, row.virt_host_id):
            return False
        if self.pool_id and pool_of.get(row.host_id) != self.pool_id:
            return False
        if self.text:
            t = self.text.lower()
            return t in row.name.lower() or t in row.key.lower()
        return True


#: Put before a marked row's name (a character, so a mark reads with NO_COLOR too).
ROW_MARK = "■ "
MARK_STYLE = "bold magenta"


def marked(cells: tuple[Text | str, ...]) -> tuple[Text | str, ...]:
    """A marked row's cells: the same, the name led by :data:`ROW_MARK`."""
    return (Text.assemble((ROW_MARK, MARK_STYLE), cells[0]), *cells[1:])


def _mark(text: str, bad: bool, style: str = BAD) -> Text | str:
    return Text(f"{text} ≠", style=style) if bad else text


def vm_cells(row: VmRow, host_names: dict[str, str],
             status: dict[tuple[str, str], DriftStatus],
             stale: frozenset[str] = frozenset(),
             acked: Acked = NO_ACKS) -> tuple[Text | str, ...]:
    """A VM row's cells, in :data:`COLUMNS` order. ``stale``: hosts whose libvirt data is the
    last known, not current (the connection dropped); their rows say so. ``acked``: drift
    ident -> its acknowledgement; a row whose every drift is acknowledged is dimmed, its drift
    cell ``~ KINDS: REASON`` (the ``≠`` marks stay: the sides still differ)."""
    kinds = {d.kind for d in row.drifts}
    live = [d for d in row.drifts if d.ident not in acked] if acked else list(row.drifts)
    pending = bool(live) and all(status.get(d.ident) is DriftStatus.PENDING for d in live)
    style = PENDING if pending else BAD if live or not row.drifts else ACKED
    vdi, virt = row.vdi, row.virt
    host = host_names.get(row.host_id, row.host_id[:8])
    if DriftKind.PLACEMENT in kinds and row.virt_host_id:
        host_cell: Text | str = Text(f"{host}≠{host_names.get(row.virt_host_id, '?')}",
                                     style=style)
    else:
        host_cell = host
    vdi_state = present.vdi_state(vdi) or present.MISSING
    virt_state = present.virt_state(virt) or ("?" if not row.checked else present.MISSING)
    is_stale = (row.virt_host_id or row.host_id) in stale
    state_bad = bool(kinds & {DriftKind.STATE, DriftKind.ONLY_IN_VDI, DriftKind.ONLY_IN_LIBVIRT})
    cpu_a = str(vdi.vcpu) if vdi and vdi.vcpu is not None else None
    cpu_b = str(virt.vcpu) if virt and virt.vcpu is not None else None
    if not row.checked:
        drift_cell: Text | str = Text("unchecked", style="dim")
    elif live:
        mark = present.PENDING_MARK if pending else present.CONFIRMED_MARK
        drift_cell = Text(f"{mark} {present.kinds_text(d.kind for d in live)}", style=style)
    elif kinds:
        drift_cell = Text(present.ack_cell(kinds, acked[row.drifts[0].ident].reason),
                          style=ACKED)
    else:
        drift_cell = "ok"
    if is_stale:
        drift_cell = Text.assemble(("stale ", "dim italic"), drift_cell)
        virt_state += "*"
    # In COLUMNS order (built directly: this runs for every changed row of an event storm).
    return (
        Text(row.name, style=style) if row.drifts else row.name,
        drift_cell,
        host_cell,
        _mark(vdi_state, state_bad, style),
        _mark(virt_state, state_bad, style),
        _pair(cpu_a, cpu_b, DriftKind.VCPU in kinds, style),
        _pair(present.vdi_memory(vdi), present.virt_memory(virt),
              DriftKind.MEMORY in kinds, style),
    )


def _pair(a: str | None, b: str | None, bad: bool, style: str) -> Text | str:
    text = present.pair(a, b, bad)
    return Text(text, style=style) if bad else text


def host_label(row: HostRow, vm_drifts: int, now: float, connecting_since: float = 0.0,
               wall_now: float = 0.0) -> Text:
    """A host line in the tree: status, connection and transport, VM counts, drift count.
    ``now`` is on the clock of ``connecting_since`` (monotonic); ``wall_now`` is the app's
    injected clock, for the age of kept data (read on the wall clock)."""
    view = row.view
    t = Text()
    t.append(row.host.name, style="bold")
    state = view.state if view else ConnState.IDLE
    if state is ConnState.CONNECTED:
        t.append(f" ● {present.transport(view.uri)}" if view else "", style="green")
    elif state in (ConnState.CONNECTING, ConnState.RECONNECTING):
        secs = f" ({present.age(connecting_since, now)})" if connecting_since else ""
        t.append(f" ◌ {state.value}…{secs}", style="yellow")
        _data_age(t, row, wall_now)
    elif state is ConnState.FAILED:
        kind = view.error.kind.value if view and view.error else "failed"
        t.append(f" ✗ {kind}", style=BAD)
        _data_age(t, row, wall_now)
    else:
        t.append(" ○ idle", style="dim")
    vdi = host_status_label(row.host.status)
    if vdi != "enabled":
        t.append(f" [{vdi}]", style=WARN)
    virt = "-" if row.virt_vms is None else str(row.virt_vms)
    t.append(f" {row.vdi_vms}/{virt}")
    total = len(row.drifts) + vm_drifts  # the caller leaves acknowledged drifts out
    if total:
        worst = max((d.severity for d in row.drifts), default=Severity.WARNING)
        t.append(f" !{total}", style=BAD if worst is Severity.CRITICAL else WARN)
    return t


def _data_age(t: Text, row: HostRow, now: float) -> None:
    """The age of the domains a host no longer connected still shows (its last read)."""
    since = present.stale_since(row.view)
    if since:
        t.append(f" data {present.age(since, now)} old", style="dim")


def drift_count_label(name: str, count: int) -> Text:
    t = Text(name, style="bold")
    if count:
        t.append(f" !{count}", style=BAD)
    return t
