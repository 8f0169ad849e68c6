"""What is wrong now, for the TUI's header and its worst-first order, from the one selection.

The counts are :func:`vditui.core.selection.select`'s, the rule ``check``, ``report``,
``baseline`` and ``serve``'s gauges read (confirmed after the grace or a host that cannot be
read, acknowledged and pending apart), so the header says what ``check`` says of the same
snapshot; this module adds only what a screen needs beside them (hosts still being read, the
users affected) and ranks rows. Pure: no Textual, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from vditui.core.drift import DriftStatus
from vditui.core.events import SnapshotReady
from vditui.core.models import Severity, VmRow
from vditui.core.selection import select
from vditui.core.vdi_facts import affected_users, user_facing

#: How many down hosts the header names; more are counted only.
NAMED_DOWN = 3


@dataclass(frozen=True, slots=True)
class Tally:
    """The counts the header shows."""

    #: Drifts that count (the selection's), ``critical`` of them critical.
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
    #: Users connected right now to a desktop with a drift (user-facing drift).
    users: int = 0

    @property
    def down_text(self) -> str:
        """``2 of 12 hosts down: hv-hang, hv-refuse`` (names only when few), "" when none."""
        if not self.down:
            return ""
        names = f": {', '.join(self.down)}" if len(self.down) <= NAMED_DOWN else ""
        return f"{len(self.down)} of {self.hosts} hosts down{names}"


def tally(snap: SnapshotReady) -> Tally:
    """Count what is wrong in ``snap``: the selection's drifts (acknowledged and pending
    apart), its unreachable hosts once their first read has ended (before that they are being
    read, and said so), VMs unchecked, users affected."""
    sel = select(snap)
    names = {h.host.id: h.host.name for h in snap.comparison.hosts}
    reading = {names.get(hid, link.name) for hid, link in snap.hosts.items() if not link.settled}
    down = tuple(sorted(h for h in sel.hosts_unreachable if h not in reading))
    return Tally(len(sel.counted), sel.critical, len(sel.pending), len(sel.acknowledged),
                 sel.hosts, down, len(reading), sel.vms_unchecked,
                 len(affected_users(snap.comparison.vms)))


def worst_first(row: VmRow, snap: SnapshotReady) -> tuple[int, str]:
    """The sort key that puts the worst rows first: a confirmed drift on a desktop a user is
    connected to now (an outage someone lives through), other confirmed critical drift, other
    confirmed drift, pending drift, unchecked (host down), acknowledged drift, then the rest;
    by name within each."""
    rank = 6
    for d in row.drifts:
        status = snap.status(d)
        if status is DriftStatus.CONFIRMED and snap.ack(d) is None:
            rank = min(rank, 0 if user_facing(row) else
                       1 if d.severity is Severity.CRITICAL else 2)
        elif status is DriftStatus.PENDING:
            rank = min(rank, 3)
        else:
            rank = min(rank, 5)
    if not row.checked:
        rank = min(rank, 4)
    return (rank, row.name.lower())
