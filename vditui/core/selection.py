"""The drifts now: which drifts of a snapshot count, computed once, for every face.

``check`` (its list, its counts, its exit code), ``report`` (every format), ``baseline``,
``serve``'s gauges and the TUI's header all read :func:`select`, so the same snapshot gives
the same drifts wherever they are read. The rule:

- a drift **counts** when it is confirmed (it outlasted the grace period) and no
  acknowledgement rule covers it; a host that could not be read (``unreachable``) counts at
  once, grace or not: the grace is for the two sides read at different moments, and a host
  that does not answer is not one of those (it also makes the verdict "incomplete");
- an **acknowledged** drift is kept apart, with its rule: confirmed, covered, not counted;
- a **pending** drift (within its grace) is kept apart too: not counted, not alerted on;
- the verdict (:attr:`Selection.exit_code`): FAILED when a host could not be read (unless an
  acknowledgement covers its unreachable drift), else DIFFERS when a drift counts, else OK.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from vditui.core.acks import AckRule
from vditui.core.drift import DriftStatus, would_count
from vditui.core.exitcodes import ExitCode
from vditui.core.models import Comparison, ConnState, Drift, DriftKind, Severity

Ident = tuple[str, str]

if TYPE_CHECKING:  # events.SnapshotReady is only named here: no import at run time
    from vditui.core.events import SnapshotReady


@dataclass(frozen=True, slots=True)
class DriftNow:
    """One drift as every face names it: the drift (VM or host, kind, both values, message),
    its host's name, its status, since when (wall clock; None when untracked) and the rule
    that acknowledges it, if any."""

    drift: Drift
    host: str
    status: DriftStatus | None
    since: float | None
    ack: AckRule | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """A snapshot's drifts sorted into those that count, the acknowledged and the pending
    (each in the comparison's order: most severe first), with the estate's figures."""

    counted: tuple[DriftNow, ...]
    acknowledged: tuple[DriftNow, ...]
    pending: tuple[DriftNow, ...]
    hosts: int
    vms: int
    vms_unchecked: int
    hosts_unreachable: tuple[str, ...]
    """Hosts not read now (failed, not tried yet), apart from those whose unreachable drift
    is acknowledged."""

    @property
    def exit_code(self) -> ExitCode:
        """The verdict, as ``check`` and ``report`` return it."""
        if self.hosts_unreachable:
            return ExitCode.FAILED
        return ExitCode.DIFFERS if self.counted else ExitCode.OK

    @property
    def critical(self) -> int:
        """How many of the drifts that count are critical."""
        return sum(1 for d in self.counted if d.drift.severity is Severity.CRITICAL)

    def only(self, keys: Collection[str]) -> Selection:
        """The same selection with only the drifts of the rows ``keys`` (``check
        --user-facing``); the hosts that could not be read stay (the verdict stays
        incomplete: their VMs could not be judged)."""

        def keep(group: tuple[DriftNow, ...]) -> tuple[DriftNow, ...]:
            return tuple(d for d in group if d.drift.key in keys)

        return replace(self, counted=keep(self.counted), acknowledged=keep(self.acknowledged),
                       pending=keep(self.pending))

    def by_kind(self) -> dict[str, int]:
        """The drifts that count, by kind (only kinds present, sorted by name)."""
        return dict(sorted(Counter(d.drift.kind.value for d in self.counted).items()))

    def summary(self) -> dict[str, Any]:
        """The figures every JSON face gives (``check --json``, ``report``): computed from
        the same lists the faces print, so a count never disagrees with its list."""
        return {"hosts": self.hosts, "hosts_unreachable": list(self.hosts_unreachable),
                "vms": self.vms, "vms_unchecked": self.vms_unchecked,
                "drifts": len(self.counted), "critical": self.critical,
                "acknowledged": len(self.acknowledged), "pending": len(self.pending),
                "by_kind": self.by_kind()}


def select(snap: SnapshotReady) -> Selection:
    """The drifts of ``snap`` that count, those acknowledged and those pending (see the
    module's docstring for the rule)."""
    return _sort(snap.comparison, snap.status, snap.ack, snap.first_seen_at)


def everything(cmp: Comparison, acked: Mapping[Ident, AckRule] | None = None) -> Selection:
    """A comparison without a drift tracker (no grace): every drift counts, apart from
    those ``acked`` covers."""
    rules = acked or {}
    return _sort(cmp, lambda _d: DriftStatus.CONFIRMED, lambda d: rules.get(d.ident),
                 lambda _i: None)


def _sort(cmp: Comparison, status_of: Callable[[Drift], DriftStatus | None],
          ack_of: Callable[[Drift], AckRule | None],
          since_of: Callable[[Ident], float | None]) -> Selection:
    names = {h.host.id: h.host.name for h in cmp.hosts}
    counted: list[DriftNow] = []
    acked: list[DriftNow] = []
    pending: list[DriftNow] = []
    for d in cmp.drifts:
        status = status_of(d)
        rule = ack_of(d)
        now = DriftNow(d, names.get(d.host_id, ""), status, since_of(d.ident), rule)
        if would_count(d, status):
            (counted if rule is None else acked).append(now)
        elif status is DriftStatus.PENDING:
            pending.append(now)
    known = {d.drift.host_id for d in acked if d.drift.kind is DriftKind.HOST_UNREACHABLE}
    unreachable = tuple(h.host.name for h in cmp.hosts
                        if (h.view is None or h.view.state is not ConnState.CONNECTED)
                        and h.host.id not in known)
    return Selection(tuple(counted), tuple(acked), tuple(pending), len(cmp.hosts), len(cmp.vms),
                     sum(1 for r in cmp.vms if not r.checked), unreachable)
