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

from vditui.core.models import Drift, DriftKind
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


@dataclass(frozen=True, slots=True)
class DriftState:
    """Where a tracked drift stands: PENDING or CONFIRMED, and since when it has been seen."""

    status: DriftStatus
    first_seen: float


@dataclass(slots=True)
class _Entry:
    drift: Drift
    state: DriftState


class DriftTracker:
    """Follows drifts across successive comparisons, by :attr:`Drift.ident` (key, kind)."""

    def __init__(self, grace: float) -> None:
        """``grace`` is how many seconds a drift must persist before it is confirmed."""
        if grace < 0:
            raise ValueError(f"grace must be >= 0, not {grace}")
        self.grace = grace
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._seeds: dict[tuple[str, str], DriftState] = {}

    def seed(self, ident: tuple[str, str], first_seen: float, confirmed: bool) -> None:
        """Remember that drift ``ident`` was first seen at ``first_seen`` (and confirmed, or
        not) before this tracker existed: a restart's history. When the drift next shows up its
        clock carries on from then instead of starting again (a confirmed one is confirmed at
        once); a seed that never shows up is dropped by :meth:`drop_seeds`."""
        status = DriftStatus.CONFIRMED if confirmed else DriftStatus.PENDING
        self._seeds[ident] = DriftState(status, first_seen)

    def drop_seeds(self) -> list[tuple[str, str]]:
        """Forget the seeds not seen yet (call once every source has been read); their
        idents."""
        gone, self._seeds = list(self._seeds), {}
        return gone

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
                seed = self._seeds.pop(ident, None)
                first = now if seed is None else min(seed.first_seen, now)
                status = (DriftStatus.CONFIRMED if self.grace <= 0 or now - first >= self.grace
                          or (seed is not None and seed.status is DriftStatus.CONFIRMED)
                          else DriftStatus.PENDING)
                self._entries[ident] = _Entry(drift, DriftState(status, first))
                changes.append(DriftChange(drift, status, first))
                continue
            entry.drift = drift
            st = entry.state
            if st.status is DriftStatus.PENDING and now - st.first_seen >= self.grace:
                entry.state = DriftState(DriftStatus.CONFIRMED, st.first_seen)
                changes.append(DriftChange(drift, DriftStatus.CONFIRMED, st.first_seen))
        for ident in [i for i in self._entries if i not in current]:
            entry = self._entries.pop(ident)
            if entry.state.status is DriftStatus.CONFIRMED:
                changes.append(DriftChange(entry.drift, DriftStatus.RESOLVED, now))
        changes.sort(key=lambda c: drift_sort_key(c.drift))
        return changes

    def states(self) -> dict[tuple[str, str], DriftState]:
        """Every tracked drift's state, by ident: a new dict the caller may keep (its values
        are frozen, and shared until a status changes)."""
        return {ident: e.state for ident, e in self._entries.items()}

    def next_deadline(self) -> float | None:
        """The earliest time at which a pending drift would be confirmed, None if none pend.

        A caller schedules its next comparison no later than this, so confirmation is not
        delayed by a long refresh interval.
        """
        deadlines = [
            e.state.first_seen + self.grace
            for e in self._entries.values()
            if e.state.status is DriftStatus.PENDING
        ]
        return min(deadlines, default=None)


def would_count(drift: Drift, status: DriftStatus | None) -> bool:
    """Whether ``drift``, in ``status``, counts unless acknowledged (the rule of
    :mod:`vditui.core.selection`): confirmed, or a host that could not be read (grace or
    not)."""
    return status is DriftStatus.CONFIRMED or (
        drift.kind is DriftKind.HOST_UNREACHABLE and status is not None)
