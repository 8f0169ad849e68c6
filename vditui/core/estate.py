"""The estate: the one owner, and only writer, of what vditui knows of the world.

It holds the platform's inventory, every host's libvirt session (and so the host views), the
last comparison, the drift tracker and the acknowledgements, and it is the only code that
changes them. The engine's loops drive it (read the platform, reconcile); the actor reaches it
through :class:`vditui.core.port.EstatePort`, which it implements.

Freshness: a platform read asked for at time T is a read begun after T. Reads are serialised;
a request that arrives while one is in flight waits for it and then runs one more, shared by
every request that arrived meanwhile (coalesced, never dropped). Every read is stamped with a
generation taken when it began, and the inventory keeps, per VM, the newest read's record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace
from datetime import date
from types import MappingProxyType

from vditui.core.acks import AckBook, AckRule
from vditui.core.drift import DriftTracker
from vditui.core.events import (
    AckExpired,
    DomainChanged,
    DomainEvent,
    DriftChanged,
    EngineEvent,
    HostChanged,
    HostLink,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.history import History, monotonic_time
from vditui.core.history_db import DriftEpisode
from vditui.core.incremental import carry_over, row_index, update_rows
from vditui.core.models import Comparison, ConnState, HostView, VdiHost, VdiInventory, VdiVm, VmRow
from vditui.core.platform_reads import WarningLog, keep_missing, read_vms
from vditui.core.port import EngineStats, HostStats, PlatformRead
from vditui.core.present import ack_expired_sentence
from vditui.core.reconcile import reconcile
from vditui.core.session import HostSession
from vditui.core.settings import EngineSettings
from vditui.core.shard import read_inventory
from vditui.core.uris import UriError, candidates
from vditui.core.vdi import VdiError
from vditui.core.vdi_actions import BatchAnswer, Request, VdiActionClient
from vditui.core.vdi_errors import platform_message
from vditui.core.vdi_parse import TaskEvent

log = logging.getLogger("vditui.engine")

Listener = Callable[[EngineEvent], None]

def link(s: HostSession, view: HostView) -> HostLink:
    """The host's connection as the faces see it."""
    connecting = s.state in (ConnState.CONNECTING, ConnState.RECONNECTING)
    return HostLink(view, s.name, s.connecting_since if connecting else 0.0, tuple(s.uris),
                    s.settled)


class Estate:
    """Inventory, sessions, comparison, drift tracker and acknowledgements; their only writer.
    Implements :class:`vditui.core.port.EstatePort`."""

    def __init__(self, settings: EngineSettings, client: VdiActionClient) -> None:
        self._settings = settings
        self._client = client
        self._client_warnings = WarningLog()
        client.warnings = self._client_warnings
        self._inventory: VdiInventory | None = None
        self._platform_error: VdiError | None = None
        #: Warnings raised by the last successful platform refresh (empty when it was clean).
        self._vdi_warnings: tuple[str, ...] = ()
        # Generations: one number per platform read, taken when it began. The inventory's is
        # that of the last full read; a VM merged from a later read keeps its own until a
        # full read begun after it replaces it.
        self._generation = 0
        self._inventory_gen = 0
        self._vm_gen: dict[str, int] = {}
        # Full platform reads, one at a time: begun, and the number of the last one ended.
        self._read_lock = asyncio.Lock()
        self._reads_begun = 0
        self._reads_ended = 0
        self._last_read_s = 0.0
        self._sessions: dict[str, HostSession] = {}
        self._comparison: Comparison | None = None
        self._where: tuple[Comparison, dict[tuple[str, str], int]] | None = None
        self._tracker = DriftTracker(settings.grace)
        #: Acknowledgement rules: the profile's, then those added live (see acknowledge()).
        self._acks = AckBook(settings.ack)
        self._passes = 0
        self._incremental = 0
        self._last_pass_s = 0.0
        self._max_pass_s = 0.0
        self._event_seq = 0
        self._need_full = True
        self._changed_domains: set[tuple[str, str]] = set()
        self._shapes: dict[str, tuple[object, ...]] = {}
        self._host_states: dict[str, ConnState] = {}
        self._listeners: list[Listener] = []
        self._dirty = asyncio.Event()
        self._history: History | None = None
        self._seeded = False

    # ------------------------------------------------------------------ listeners
    def listen(self, listener: Listener, first: bool = False) -> None:
        """Call ``listener`` with every event (``first``: before every other listener)."""
        if first:
            self._listeners.insert(0, listener)
        else:
            self._listeners.append(listener)

    def publish(self, event: EngineEvent) -> None:
        """Tell every listener, on the event loop; a failing listener is logged, not raised."""
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:
                log.exception("update listener failed")

    def attach_history(self, history: History, episodes: Iterable[DriftEpisode]) -> None:
        """Record every event in ``history`` from now on (before any face hears of it), and
        seed the drift tracker with the drifts it holds open, so that a drift still there keeps
        its first-seen time across a restart."""
        for ep in episodes:
            self._tracker.seed((ep.key, ep.kind), monotonic_time(ep.first_seen),
                               ep.confirmed is not None)
        self._history = history
        # First of all listeners: a face that ends the process on an event (SIGTERM after a
        # watch line) cannot lose its row.
        self.listen(history.record, first=True)

    def history(self) -> History | None:
        """The history being recorded to (None when there is none)."""
        return self._history

    def request_pass(self) -> None:
        """Ask the reconcile loop for a pass soon (within the debounce)."""
        self._dirty.set()

    def detach_history(self) -> History | None:
        """Stop recording; the history, for the caller to close."""
        history, self._history = self._history, None
        return history

    # ------------------------------------------------------------------ reading
    def inventory(self) -> VdiInventory | None:
        """The platform's inventory as last read and merged (None before the first read)."""
        return self._inventory

    def platform_error(self) -> VdiError | None:
        """Why the last platform read failed (None when it succeeded)."""
        return self._platform_error

    def comparison(self) -> Comparison | None:
        """The comparison of the last published snapshot (None before the first)."""
        return self._comparison

    def views(self) -> dict[str, HostView]:
        """Host id -> its session's view now (domains included)."""
        return {hid: s.view() for hid, s in self._sessions.items()}

    def host_names(self) -> dict[str, str]:
        """Host id -> name: every session's and the platform's (the platform's win)."""
        names = {hid: s.name for hid, s in self._sessions.items()}
        if self._inventory is not None:
            names.update(self._inventory.host_names())
        return names

    def find_host(self, name_or_ip: str) -> VdiHost | None:
        """The platform's host with this name, IP or id, from the last refresh."""
        for h in self._inventory.hosts if self._inventory else ():
            if name_or_ip in (h.name, h.ip, h.id):
                return h
        return None

    def uris(self, host_id: str) -> list[str]:
        """The URIs the host's session tries, in order (KeyError for an unknown host)."""
        return list(self._sessions[host_id].uris)

    async def use_uri(self, host_id: str, uri: str) -> None:
        """Make the host's session connect with ``uri`` first, now."""
        await self._sessions[host_id].use_uri(uri)

    def settled(self) -> bool:
        """Every host read or failed once."""
        return all(s.settled for s in self._sessions.values())

    def scrub(self, text: str) -> str:
        """``text`` without the password or a token of the platform client."""
        return self._client.scrub(text)

    def stats(self) -> EngineStats:
        """The statistics, now."""
        hosts = tuple(HostStats(s.host_id, s.name, s.uri, s.state, s.read_at, s.reads_done,
                                s.last_read_s, s.round_trips, s.last_read_trips, s.reconnects,
                                None if s.domains is None else len(s.domains), s.settled,
                                s.created)
                      for s in self._sessions.values())
        return EngineStats(hosts, self._client.requests, self._reads_ended, self._last_read_s,
                           self._vdi_warnings, tuple(self._client.warnings), self._passes,
                           self._incremental, self._last_pass_s, self._max_pass_s)

    # ------------------------------------------------------------------ the platform
    def _next_generation(self) -> int:
        self._generation += 1
        return self._generation

    async def refresh_platform(self) -> None:
        """Read the whole inventory, in a read begun after this call: if one is in flight, wait
        for it, then run one more (shared by every caller that waited meanwhile)."""
        wanted = self._reads_begun + 1
        async with self._read_lock:
            if self._reads_ended >= wanted:
                return  # a read begun after the call has ended while this one waited
            self._reads_begun += 1
            number = self._reads_begun
            try:
                await self._read_platform()
            finally:
                self._reads_ended = number

    async def _read_platform(self) -> None:
        gen = self._next_generation()
        wlog = self._client_warnings
        mark = wlog.appended
        started = time.perf_counter()
        began = time.time()
        try:
            # Sessions start as soon as the host list is in; only the whole answer (below) may
            # stop one: a list cut short must not end a host's session.
            inv = await read_inventory(
                self._client, self._settings.shard,
                on_hosts=lambda hosts: self._sync_sessions(tuple(hosts), remove=False))
        except VdiError as exc:
            self._last_read_s = time.perf_counter() - started
            self._platform_error = exc
            message = platform_message(exc)
            log.warning("platform: %s", message)
            self.publish(PlatformFailed(time.time(), message))
            return
        self._last_read_s = time.perf_counter() - started
        added = wlog.appended - mark
        warnings = list(dict.fromkeys(wlog[len(wlog) - min(added, len(wlog)):])) if added else []
        if warnings and self._inventory is not None:
            inv, hosts, vms = keep_missing(inv, self._inventory)
            if hosts or vms:
                warnings.append(f"{self._client.base_url}: the answer looks incomplete; kept "
                                f"{hosts} hosts and {vms} VMs it lacks from the last refresh")
        previous, self._vdi_warnings = self._vdi_warnings, tuple(warnings)
        recovered = self._platform_error is not None and self._inventory is not None
        self._platform_error = None
        self._install(inv, gen)
        self._sync_sessions(inv.hosts)
        assert self._inventory is not None
        self.publish(PlatformRefreshed(time.time(), self._inventory, self._vdi_warnings,
                                       tuple(w for w in self._vdi_warnings if w not in previous),
                                       recovered, began=began))

    def _install(self, inv: VdiInventory, gen: int) -> None:
        """Make ``inv`` (read at generation ``gen``) the inventory, keeping the records of VMs
        merged from reads begun after it."""
        newer = {vm_id for vm_id, g in self._vm_gen.items() if g > gen}
        if newer and self._inventory is not None:
            kept = {v.id: v for v in self._inventory.vms if v.id in newer}
            inv = replace(inv, vms=tuple(kept.pop(v.id, v) for v in inv.vms) + tuple(kept.values()))
        self._vm_gen = {vm_id: g for vm_id, g in self._vm_gen.items() if g > gen}
        self._inventory, self._inventory_gen = inv, gen
        self._need_full = True
        self._dirty.set()

    async def read_vms(self, ids: Sequence[str], strict: bool, label: str = "") -> PlatformRead:
        """The VMs ``ids`` as the platform has them now (see :func:`platform_reads.read_vms`),
        stamped with a generation taken before the first request."""
        gen = self._next_generation()
        return PlatformRead(await read_vms(self._client, self._inventory, ids, strict, label), gen)

    async def merge(self, read: PlatformRead) -> Comparison:
        """Put ``read`` into the inventory (per VM, only over a record from an older read; the
        faces see it at the next pass) and compare the two sides now."""
        inv = self._inventory
        assert inv is not None
        newer: dict[str, VdiVm] = {
            vm_id: vm for vm_id, vm in read.vms.items()
            if read.generation > self._vm_gen.get(vm_id, self._inventory_gen)}
        if newer:
            inv = replace(inv, vms=tuple(newer.get(v.id, v) for v in inv.vms))
            for vm_id in newer:
                self._vm_gen[vm_id] = read.generation
            self._inventory, self._need_full = inv, True
            self._dirty.set()
        views = self.views()
        return await asyncio.to_thread(reconcile, inv, views)

    async def send(self, request: Request) -> BatchAnswer:
        """Send one action request to the platform (once: never retried)."""
        return await self._client.send(request)

    async def event(self, event_id: str) -> TaskEvent:
        """One platform task, as it stands now."""
        return await self._client.event(event_id)

    # ------------------------------------------------------------------ libvirt
    def _uris_for(self, host: VdiHost) -> list[str]:
        fixed = self._settings.fixed_uris(host.name, host.ip)
        try:
            return candidates(self._settings.uri_templates, host.ip, host.name, fixed)
        except UriError as exc:
            log.warning("host %s: %s", host.name, exc)
            return list(dict.fromkeys(fixed))

    def _sync_sessions(self, hosts: tuple[VdiHost, ...], remove: bool = True) -> None:
        wanted = {h.id: h for h in hosts}
        for host_id in [k for k in self._sessions if k not in wanted and remove]:
            s = self._sessions.pop(host_id)
            asyncio.get_running_loop().create_task(s.stop())
        for h in hosts:
            if h.id in self._sessions:
                continue
            s = HostSession(h.id, h.name, self._uris_for(h), self._settings.session_settings(),
                            self._session_changed, self._domain_event)
            self._sessions[h.id] = s
            s.start()

    async def stop_sessions(self) -> None:
        """Stop every host's session."""
        await asyncio.gather(*(s.stop() for s in self._sessions.values()),
                             return_exceptions=True)

    async def reread_hosts(self, host_ids: Collection[str] | None = None,
                           wait: bool = True) -> set[str]:
        """Ask each host (None: every host) for a full read begun after this call; with
        ``wait``, wait for those reads (while the host stays connected; at most
        ``settings.reread_timeout``) and return the hosts that did not manage one."""
        sessions = [s for hid, s in self._sessions.items()
                    if host_ids is None or hid in host_ids]
        tickets = {s.host_id: s.refresh() for s in sessions}
        if not wait:
            return set()
        until = time.monotonic() + self._settings.reread_timeout
        while time.monotonic() < until and any(
                s.state is ConnState.CONNECTED and s.reads_done < tickets[s.host_id]
                for s in sessions):
            await asyncio.sleep(0.02)
        return {s.host_id for s in sessions if s.reads_done < tickets[s.host_id]}

    def _session_changed(self, s: HostSession) -> None:
        # Anything but a lifecycle event (a read, a connection change, a domain added or gone)
        # changes this shape, and then only a full pass is right.
        shape = (s.state, s.read_at, s.uri, len(s.domains or ()), s.error)
        if self._shapes.get(s.host_id) != shape:
            self._shapes[s.host_id] = shape
            self._need_full = True
        if self._host_states.get(s.host_id) != s.state:
            self._host_states[s.host_id] = s.state
            self.publish(HostChanged(time.time(), link(s, s.view())))
        self._dirty.set()

    def _domain_event(self, ev: DomainEvent) -> None:
        if ev.old is not None and ev.new is not None and ev.old.name == ev.new.name:
            self._changed_domains.add((ev.host_id, ev.new.uuid))
        else:
            self._need_full = True
        self._event_seq += 1
        s = self._sessions.get(ev.host_id)
        self.publish(DomainChanged(ev.at, self._event_seq, ev,
                                   s.name if s is not None else ev.host_id[:8]))

    # ------------------------------------------------------------------ acknowledgements
    def acknowledge(self, rule: AckRule) -> None:
        """Apply ``rule`` from now on; the next pass marks the drifts it covers."""
        self._acks.add(rule)
        self._dirty.set()

    # ------------------------------------------------------------------ reconcile
    def next_deadline(self) -> float | None:
        """When the next pending drift's grace period ends (monotonic), if any."""
        return self._tracker.next_deadline()

    async def wait_changed(self, timeout: float | None) -> None:
        """Wait until something changed since the last call (or ``timeout`` seconds)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._dirty.wait(), timeout)
        self._dirty.clear()

    def _snapshot(self) -> tuple[int, dict[str, HostView], dict[str, HostLink]]:
        self._need_full, self._changed_domains = False, set()
        views = self.views()
        links = {hid: link(s, views[hid]) for hid, s in self._sessions.items()}
        return self._event_seq, views, links

    def reconcile_now(self) -> SnapshotReady | None:
        """Reconcile on the calling thread, now, in full; the snapshot also goes to the
        listeners. None before the platform was first read."""
        if self._inventory is None:
            return None
        seq, views, links = self._snapshot()
        started = time.perf_counter()
        return self._publish(reconcile(self._inventory, views), seq, links, started=started)

    async def reconcile_pass(self) -> None:
        """One pass: incremental when only lifecycle events came in, else full in a thread."""
        if self._inventory is None:
            return
        if not self._need_full and self._comparison is not None:
            # Only lifecycle events since the last pass: re-judge just those rows (see
            # reconcile.update_rows), a few rows instead of thousands under an event storm.
            # With none at all (a drift's grace period ended, a host identified itself), the
            # rows stand and only the drift statuses and host views move.
            changed = self._changed_domains
            started = time.perf_counter()
            seq, views, links = self._snapshot()
            if self._where is None or self._where[0] is not self._comparison:
                self._where = (self._comparison, row_index(self._comparison))
            where = self._where[1]
            updated = update_rows(self._comparison, self._inventory, views, changed, where)
            if updated is not None:
                self._incremental += 1
                self._where = (updated, where)  # an incremental pass keeps every row in place
                self._publish(updated, seq, links,
                              tuple(updated.vms[where[c]] for c in changed), True, started)
                return
        # A full pass over thousands of VMs takes tens of ms of pure Python: in a worker thread
        # the loop keeps delivering libvirt events and key presses while it runs.
        started = time.perf_counter()
        seq, views, links = self._snapshot()
        inventory, previous = self._inventory, self._comparison

        def full() -> tuple[Comparison, tuple[VmRow, ...] | None]:
            cmp = reconcile(inventory, views)
            # Which rows differ, found here rather than by each face on the loop: after a
            # refresh that changed a few VMs, the TUI then redraws those few.
            return carry_over(previous, cmp) if previous is not None else (cmp, None)

        fresh, rows = await asyncio.to_thread(full)
        self._publish(fresh, seq, links, rows, started=started)

    def _publish(self, cmp: Comparison, seq: int, links: dict[str, HostLink],
                 rows: tuple[VmRow, ...] | None = None,
                 incremental: bool = False, started: float | None = None) -> SnapshotReady:
        """Track the drifts of ``cmp`` and tell the listeners; ``started``: when the pass
        began (``time.perf_counter``), for the snapshot's ``took``."""
        self._comparison = cmp
        took = 0.0 if started is None else time.perf_counter() - started
        self._passes += 1
        self._last_pass_s, self._max_pass_s = took, max(self._max_pass_s, took)
        mono = time.monotonic()
        changes = self._tracker.update(cmp.drifts, mono)
        now = time.time()
        settled = all(lk.settled for lk in links.values())
        acked = self._acknowledged(cmp, now)
        snap = SnapshotReady(now, seq, cmp, MappingProxyType(self._tracker.states()),
                             MappingProxyType(links), rows, settled, self._vdi_warnings,
                             incremental, took, MappingProxyType(acked), monotonic=mono)
        self.publish(snap)
        for ch in changes:
            self.publish(DriftChanged(now, ch, self._acks.rule_for(ch.drift, acked)))
        if settled and not self._seeded:
            # Every host read once: what the history held open and is not here any more
            # went while no vditui watched.
            self._seeded = True
            self._tracker.drop_seeds()
            if self._history is not None:
                self._history.forget_missing(snap.drifts, now)
        return snap

    def _acknowledged(self, cmp: Comparison, now: float) -> dict[tuple[str, str], AckRule]:
        """Drift ident -> the rule acknowledging it; a rule seen expired for the first time is
        said (the log, an :class:`AckExpired`)."""
        inv = self._inventory
        acked, expired = self._acks.apply(
            cmp.drifts, lambda: {h.id: (h.name, h.ip) for h in inv.hosts} if inv else {},
            date.fromtimestamp(now))
        for rule in expired:
            log.warning("%s", ack_expired_sentence(rule.expires, rule.describe(), rule.reason))
            self.publish(AckExpired(now, rule))
        return acked
