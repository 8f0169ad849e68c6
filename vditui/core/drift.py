"""The grace period: a drift is only believed once it has lasted.

The two sides are read at different moments and the platform trails libvirt by seconds, so a
single comparison shows drift that heals by itself. :class:`DriftTracker` holds each drift as
PENDING until it has been seen for ``grace`` seconds, then CONFIRMED; a confirmed drift that
disappears is RESOLVED. Pure: the caller passes the time in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from vditui.core.models import Drift
from vditui.core.reconcile import drift_sort_key


class DriftStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class DriftChange:
    """A drift whose status changed. ``since`` is when it was first seen (PENDING, CONFIRMED)
    or when it went away (RESOLVED)."""

    drift: Drift
    status: DriftStatus
    since: float


@dataclass(slots=True)
class _Entry:
    drift: Drift
    first_seen: float
    status: DriftStatus


class DriftTracker:
    """Follows drifts across successive comparisons, by :attr:`Drift.ident` (key, kind)."""

    def __init__(self, grace: float) -> None:
        """``grace`` is how many seconds a drift must persist before it is confirmed."""
        if grace < 0:
            raise ValueError(f"grace must be >= 0, not {grace}")
        self.grace = grace
        self._entries: dict[tuple[str, str], _Entry] = {}

    def update(self, drifts: Iterable[Drift], now: float) -> list[DriftChange]:
        """Take the drifts of a comparison made at ``now`` and return only what changed.

        A new drift is PENDING (CONFIRMED at once when grace is 0); a pending one seen for at
        least ``grace`` seconds becomes CONFIRMED; a confirmed one now absent is RESOLVED. A
        pending one that vanishes is forgotten without a word, so if it comes back its clock
        starts again. The latest drift replaces the stored one (its message may have changed)
        but keeps its first-seen time.
        """
        current = {d.ident: d for d in drifts}
        changes: list[DriftChange] = []
        for ident, drift in current.items():
            entry = self._entries.get(ident)
            if entry is None:
                status = DriftStatus.CONFIRMED if self.grace <= 0 else DriftStatus.PENDING
                self._entries[ident] = _Entry(drift, now, status)
                changes.append(DriftChange(drift, status, now))
                continue
            entry.drift = drift
            if entry.status is DriftStatus.PENDING and now - entry.first_seen >= self.grace:
                entry.status = DriftStatus.CONFIRMED
                changes.append(DriftChange(drift, DriftStatus.CONFIRMED, entry.first_seen))
        for ident in [i for i in self._entries if i not in current]:
            entry = self._entries.pop(ident)
            if entry.status is DriftStatus.CONFIRMED:
                changes.append(DriftChange(entry.drift, DriftStatus.RESOLVED, now))
        changes.sort(key=lambda c: drift_sort_key(c.drift))
        return changes

    def status(self, ident: tuple[str, str]) -> DriftStatus | None:
        """PENDING or CONFIRMED for a drift being tracked, None for one that is not."""
        entry = self._entries.get(ident)
        return entry.status if entry is not None else None

    def first_seen(self, ident: tuple[str, str]) -> float | None:
        """When a tracked drift was first seen (in this unbroken run), None if untracked."""
        entry = self._entries.get(ident)
        return entry.first_seen if entry is not None else None

    def confirmed(self) -> list[Drift]:
        """The confirmed drifts, most severe first."""
        return self._select(DriftStatus.CONFIRMED)

    def pending(self) -> list[Drift]:
        """The drifts still inside their grace period, most severe first."""
        return self._select(DriftStatus.PENDING)

    def next_deadline(self) -> float | None:
        """The earliest time at which a pending drift would be confirmed, None if none pend.

        A caller schedules its next comparison no later than this, so confirmation is not
        delayed by a long refresh interval.
        """
        deadlines = [
            e.first_seen + self.grace
            for e in self._entries.values()
            if e.status is DriftStatus.PENDING
        ]
        return min(deadlines, default=None)

    def _select(self, status: DriftStatus) -> list[Drift]:
        found = [e.drift for e in self._entries.values() if e.status is status]
        return sorted(found, key=drift_sort_key)
