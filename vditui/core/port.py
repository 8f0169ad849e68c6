"""The estate's public port: what the actor and the engine's loops may ask of the one owner of
the estate's state (:class:`vditui.core.estate.Estate`), and the statistics it keeps.

The actor depends on this protocol only, never on the engine or the estate's insides: re-read
hosts and wait, read VMs from the platform, merge what was read, the latest comparison, host
names, publish an event, send a request, statistics, redaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from vditui.core.events import EngineEvent
from vditui.core.models import Comparison, ConnState, VdiVm
from vditui.core.vdi_actions import BatchAnswer, Request
from vditui.core.vdi_parse import TaskEvent


@dataclass(frozen=True, slots=True)
class PlatformRead:
    """VMs as the platform answered them, stamped with the read's generation: a number taken
    when the read began, higher for every later read. A merge keeps, per VM, the record of the
    newest read, so an older read still in flight never rolls a fresher one back."""

    vms: Mapping[str, VdiVm]
    generation: int


@dataclass(frozen=True, slots=True)
class HostStats:
    """One host's libvirt session, counted."""

    host_id: str
    name: str
    uri: str
    state: ConnState
    #: When the last full read completed (time.time()); 0 before the first.
    read_at: float
    #: Full reads completed, and how long the last one took (seconds).
    reads: int
    last_read_s: float
    #: libvirt round trips since the session began, and those of the last read (connect
    #: included).
    round_trips: int
    last_read_trips: int
    reconnects: int
    #: Domains known (None before the first read).
    domains: int | None
    settled: bool
    #: When the host's session was created (time.monotonic()): it changes only when the
    #: session is replaced (the host left the platform and came back).
    created: float


@dataclass(frozen=True, slots=True)
class EngineStats:
    """What the engine has done so far: for benchmarks, scripts and tests, instead of its
    private attributes."""

    hosts: tuple[HostStats, ...]
    #: HTTP requests the platform client made.
    platform_requests: int
    #: Platform inventory reads completed (successful or not), and how long the last took.
    platform_reads: int
    platform_read_s: float
    #: What the last successful platform read got wrong (empty when it was clean), and the
    #: platform client's recent data-quality warnings (kept short).
    platform_warnings: tuple[str, ...]
    client_warnings: tuple[str, ...]
    #: Reconcile passes published, those that were incremental, and their durations.
    reconciles: int
    incremental: int
    last_pass_s: float
    max_pass_s: float

    def host(self, name: str) -> HostStats:
        """The host named ``name`` (KeyError if none)."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def by_id(self) -> dict[str, HostStats]:
        """Host id -> its statistics."""
        return {h.host_id: h for h in self.hosts}


class EstatePort(Protocol):
    """The estate as the actor and the engine's loops see it."""

    def comparison(self) -> Comparison | None:
        """The comparison of the last published snapshot (None before the first)."""
        ...

    def host_names(self) -> dict[str, str]:
        """Host id -> name: every session's and the platform's (the platform's win)."""
        ...

    def publish(self, event: EngineEvent) -> None:
        """Tell every listener, on the event loop."""
        ...

    def scrub(self, text: str) -> str:
        """``text`` without the password or a token of the platform client."""
        ...

    def stats(self) -> EngineStats:
        """The statistics, now."""
        ...

    async def reread_hosts(self, host_ids: Collection[str] | None = None,
                           wait: bool = True) -> set[str]:
        """Ask each host (None: every host) for a full read begun after this call; with
        ``wait``, wait for those reads (bounded by the call timeout plus 5 s) and return the
        hosts that did not manage one."""
        ...

    async def read_vms(self, ids: Sequence[str], strict: bool, label: str = "") -> PlatformRead:
        """The VMs ``ids`` as the platform has them now (one GET each for a few, their hosts'
        lists for many); a VM the platform no longer knows is left out. ``strict``: any other
        failure is raised (otherwise logged, and what was read is returned)."""
        ...

    async def merge(self, read: PlatformRead) -> Comparison:
        """Put ``read`` into the inventory (newest read wins per VM; the faces see it at the
        next pass) and compare the two sides now."""
        ...

    async def send(self, request: Request) -> BatchAnswer:
        """Send one action request to the platform (once: never retried)."""
        ...

    async def event(self, event_id: str) -> TaskEvent:
        """One platform task (an id of a batch answer's ``eventIdList``), as it stands now."""
        ...
