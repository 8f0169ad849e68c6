"""What is wrong now, counted once from a snapshot: the header's counts and the worst-first order.

Both faces of "the drifts now" live here, so the rule that selects them (confirmed after grace,
unreachable hosts, acknowledged apart) can be changed in one place: :func:`tally` counts,
:func:`worst_first` ranks a row. Pure: no Textual, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from vditui.core.drift import DriftStatus
from vditui.core.events import SnapshotReady
from vditui.core.models import ConnState, Severity, VmRow

#: How many down hosts the header names; more are counted only.
NAMED_DOWN = 3


@dataclass(frozen=True, slots=True)
class Tally:
    """The counts the header shows."""

    #: Confirmed drifts that are not acknowledged (``critical`` of them critical).
    confirmed: int = 0
    critical: int = 0
    #: Drifts seen but not yet confirmed (within the grace period).
    pending: int = 0
    #: Confirmed drifts a rule acknowledges (known and meant: shown apart, not counted).
    acknowledged: int = 0
    #: Every host the platform lists, and the names of those whose libvirt cannot be read.
    hosts: int = 0
    down: tuple[str, ...] = ()
    #: Hosts whose first read has not ended yet (start-up).
    reading: int = 0
    #: VMs with no verdict: their host's libvirt could not be read.
    unchecked: int = 0

    @property
    def down_text(self) -> str:
        """``2 of 12 hosts down: hv-hang, hv-refuse`` (names only when few), "" when none."""
        if not self.down:
            return ""
        names = f": {', '.join(self.down)}" if len(self.down) <= NAMED_DOWN else ""
        return f"{len(self.down)} of {self.hosts} hosts down{names}"


def _host_down(state: ConnState, settled: bool) -> bool:
    return settled and state in (ConnState.FAILED, ConnState.RECONNECTING, ConnState.CLOSED)


def tally(snap: SnapshotReady) -> Tally:
    """Count what is wrong in ``snap``: drifts by status (acknowledged apart), hosts down (their
    first read ended without a connection, or the connection dropped), VMs unchecked."""
    confirmed = critical = pending = acked = 0
    for d in snap.comparison.drifts:
        status = snap.status(d)
        if status is DriftStatus.PENDING:
            pending += 1
        elif status is DriftStatus.CONFIRMED:
            if snap.ack(d) is not None:
                acked += 1
            else:
                confirmed += 1
                critical += d.severity is Severity.CRITICAL
    down: list[str] = []
    reading = 0
    names = {h.host.id: h.host.name for h in snap.comparison.hosts}
    for host_id, link in snap.hosts.items():
        if not link.settled:
            reading += 1
        elif _host_down(link.state, link.settled):
            down.append(names.get(host_id, link.name))
    unchecked = sum(1 for r in snap.comparison.vms if not r.checked)
    return Tally(confirmed, critical, pending, acked, len(snap.comparison.hosts),
                 tuple(sorted(down)), reading, unchecked)


def worst_first(row: VmRow, snap: SnapshotReady) -> tuple[int, str]:
    """The sort key that puts the worst rows first: confirmed critical drift, other confirmed
    drift, pending drift, unchecked (host down), acknowledged drift, then the rest; by name
    within each."""
    rank = 5
    for d in row.drifts:
        status = snap.status(d)
        if status is DriftStatus.CONFIRMED and snap.ack(d) is None:
            rank = min(rank, 0 if d.severity is Severity.CRITICAL else 1)
        elif status is DriftStatus.PENDING:
            rank = min(rank, 2)
        else:
            rank = min(rank, 4)
    if not row.checked:
        rank = min(rank, 3)
    return (rank, row.name.lower())
