"""What the engine tells its faces: a small union of frozen events, each self-contained.

A face (the TUI, ``watch``, ``check``) listens to :class:`~vditui.core.engine.Engine` and
dispatches on these classes (``match``); it never reads the engine's own state. Everything a face
draws is in an event: a :class:`SnapshotReady` carries the comparison, every drift's status and
first-seen time, and every host's live connection; commands (refresh, probe, use a URI) are
methods of the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vditui.core.acks import AckRule
from vditui.core.actions import Action, ActionPhase, ActionTarget
from vditui.core.drift import DriftChange, DriftState, DriftStatus, would_count
from vditui.core.models import (
    Comparison,
    ConnState,
    Domain,
    Drift,
    HostView,
    VdiInventory,
    VmRow,
)

Ident = tuple[str, str]


@dataclass(frozen=True, slots=True)
class HostLink:
    """One host's libvirt connection as it stands: the session's view (state, URI, transport,
    last error, when its data was read) plus what the view does not say."""

    view: HostView
    name: str
    #: Monotonic time the current (re)connection attempt began; 0 when not connecting.
    connecting_since: float
    #: The URIs the session tries, in order (the first that works is kept).
    uris: tuple[str, ...]
    #: True once the first attempt ended: read, or failed.
    settled: bool

    @property
    def host_id(self) -> str:
        return self.view.host_id

    @property
    def state(self) -> ConnState:
        return self.view.state

    def describe(self) -> str:
        """One line: name, state, URI, and the error while not connected."""
        v = self.view
        line = f"{self.name}: {v.state.value} {v.uri}"
        if v.error is not None and v.state is not ConnState.CONNECTED:
            line += f": {v.error.kind.value}: {v.error.message}"
        return line


@dataclass(frozen=True, slots=True)
class PlatformRefreshed:
    """A platform refresh succeeded. ``warnings``: what this answer got wrong (empty when it
    was clean), standing until the next refresh; ``new_warnings``: those not raised by the
    refresh before; ``recovered``: the refresh before had failed."""

    at: float
    inventory: VdiInventory
    warnings: tuple[str, ...] = ()
    new_warnings: tuple[str, ...] = ()
    recovered: bool = False
    #: When this read began (time.time()): it shows everything the platform had by then.
    began: float = 0.0


@dataclass(frozen=True, slots=True)
class PlatformFailed:
    """A platform refresh failed; ``message`` names the platform URL and the cause."""

    at: float
    message: str


@dataclass(frozen=True, slots=True)
class HostChanged:
    """A host's connection state changed (connecting, connected, reconnecting, failed)."""

    at: float
    host: HostLink


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """A libvirt lifecycle event as the host's session applied it (defined here, not in the
    session, so that the faces' contract loads without the libvirt binding)."""

    host_id: str
    uuid: str
    name: str
    event: str  # started, stopped, suspended, resumed, defined, undefined, ...
    old: Domain | None
    new: Domain | None
    at: float  # time.time()


@dataclass(frozen=True, slots=True)
class DomainChanged:
    """A libvirt lifecycle event as the host's session applied it. ``seq`` counts the events:
    a snapshot whose ``seq`` is lower does not include this one yet."""

    at: float
    seq: int
    event: DomainEvent
    host_name: str


@dataclass(frozen=True, slots=True)
class DriftChanged:
    """A drift became pending, confirmed or resolved. ``acknowledged``: the rule that
    acknowledges it (it then does not count: no alert), None when none does."""

    at: float
    change: DriftChange
    acknowledged: AckRule | None = None


@dataclass(frozen=True, slots=True)
class AckExpired:
    """An acknowledgement rule's expiry date has passed: it no longer applies, and the drifts
    it covered count again. Sent once per rule (and logged)."""

    at: float
    rule: AckRule


@dataclass(frozen=True, slots=True)
class ActionUpdate:
    """One VM's progress through an action the operator asked for (see
    :mod:`vditui.core.actions`): refused before sending, sent, accepted or failed by the
    platform, then resolved (the two sides agree) or still differing at the timeout.
    ``action_id`` ties the updates of one request together (and to its audit line)."""

    at: float
    action_id: str
    action: Action
    force: bool
    target: ActionTarget
    phase: ActionPhase
    message: str


@dataclass(frozen=True, slots=True)
class SnapshotReady:
    """A new comparison, with all a face needs to draw it.

    ``seq``: the domain events it includes (see :class:`DomainChanged`). ``rows``: the only rows
    that differ from the previous snapshot's (the others equal and in the same places); None
    when rows came, went or moved. ``drifts``: the status and first-seen time of every drift of
    the comparison. ``hosts``: every host's connection, read with the comparison's views.
    """

    at: float
    seq: int
    comparison: Comparison
    drifts: Mapping[Ident, DriftState]
    hosts: Mapping[str, HostLink]
    rows: tuple[VmRow, ...] | None = None
    #: Every host has been read or has failed once.
    settled: bool = False
    #: The standing warnings of the platform answer this comparison is built on.
    platform_warnings: tuple[str, ...] = ()
    #: Made by re-judging the rows of lifecycle events only (not a full pass).
    incremental: bool = False
    #: Seconds the pass that made this comparison took (reconcile and drift tracking).
    took: float = 0.0
    #: The acknowledged drifts of the comparison: ident -> the rule that acknowledges it.
    acknowledged: Mapping[Ident, AckRule] = field(default_factory=dict)
    #: ``time.monotonic()`` when the snapshot was made (``at`` on the wall clock), to turn the
    #: drifts' monotonic first-seen times into wall-clock ones: :meth:`first_seen_at`.
    monotonic: float = 0.0

    def first_seen_at(self, ident: Ident) -> float | None:
        """When drift ``ident`` was first seen, on the wall clock (kept across restarts when
        vditui keeps a history); None when the snapshot does not track it."""
        state = self.drifts.get(ident)
        if state is None:
            return None
        return self.at - (self.monotonic - state.first_seen) if self.monotonic else None

    def status(self, drift: Drift) -> DriftStatus | None:
        state = self.drifts.get(drift.ident)
        return state.status if state is not None else None

    def statuses(self, drifts: tuple[Drift, ...] | None = None) -> dict[Ident, DriftStatus]:
        """Drift ident -> status, for ``drifts`` (by default every drift of the comparison)."""
        got = self.drifts
        return {d.ident: st.status for d in (self.comparison.drifts if drifts is None else drifts)
                if (st := got.get(d.ident)) is not None}

    def confirmed(self) -> list[Drift]:
        """The comparison's confirmed drifts, in the comparison's order (most severe first),
        acknowledged or not."""
        return [d for d in self.comparison.drifts
                if self.status(d) is DriftStatus.CONFIRMED]

    def ack(self, drift: Drift) -> AckRule | None:
        """The rule that acknowledges ``drift``, None when none does."""
        return self.acknowledged.get(drift.ident) if self.acknowledged else None

    def counts(self, drift: Drift) -> bool:
        """Whether ``drift`` counts (the rule: :mod:`vditui.core.selection`): confirmed (an
        unreachable host: at once) and not acknowledged."""
        return would_count(drift, self.status(drift)) and self.ack(drift) is None

    def counted(self) -> list[Drift]:
        """The drifts that count (:meth:`counts`), in the comparison's order."""
        return [d for d in self.comparison.drifts if self.counts(d)]

    def confirmed_acknowledged(self) -> list[tuple[Drift, AckRule]]:
        """The confirmed drifts a rule acknowledges, with the rule, in the comparison's order."""
        got = self.acknowledged
        return [(d, r) for d in self.comparison.drifts
                if (r := got.get(d.ident)) is not None
                and self.status(d) is DriftStatus.CONFIRMED] if got else []


EngineEvent = (PlatformRefreshed | PlatformFailed | HostChanged | DomainChanged | DriftChanged
               | SnapshotReady | ActionUpdate | AckExpired)
