"""The engine: the platform and every host's libvirt, fetched concurrently, reconciled live.

One stream of events serves both faces (the TUI and the headless commands): listeners get the
frozen events of :mod:`vditui.core.events` on the event loop, and send commands through the
engine's public methods; nothing else of it is public. A reconcile runs after every change, at
most once per ``debounce`` seconds, so an event storm costs one reconcile per tick, not one per
event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import MappingProxyType

from vditui.core.acks import AckBook, AckRule
from vditui.core.act import Actor
from vditui.core.actions import Action, ActionError, ActionPlan, ActionResult
from vditui.core.drift import DriftTracker
from vditui.core.events import (
    AckExpired,
    DomainChanged,
    DriftChanged,
    EngineEvent,
    HostChanged,
    HostLink,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.history import History, monotonic_time
from vditui.core.history_db import HistoryError
from vditui.core.incremental import carry_over, row_index, update_rows
from vditui.core.models import Comparison, ConnState, HostView, VdiHost, VdiInventory, VmRow
from vditui.core.probe import ProbeResult
from vditui.core.reconcile import reconcile
from vditui.core.session import DomainEvent, HostSession, cancel_and_wait
from vditui.core.settings import EngineSettings as EngineSettings
from vditui.core.uris import UriError, candidates
from vditui.core.vdi import VdiError
from vditui.core.vdi_actions import VdiActionClient
from vditui.core.vdi_errors import platform_message
from vditui.core.virt import probe

log = logging.getLogger("vditui.engine")


Listener = Callable[[EngineEvent], None]


class _WarningLog(list[str]):
    """The client's warning list, counting every append (the list itself is kept short, so its
    length cannot tell how many warnings a refresh added)."""

    appended = 0

    def append(self, item: str) -> None:
        self.appended += 1
        super().append(item)


def _keep_missing(new: VdiInventory, old: VdiInventory) -> tuple[VdiInventory, int, int]:
    """``new`` plus the hosts, VMs and pools of ``old`` it lacks: an answer whose page totals
    disagree may have lost items, and must not make a host or a VM vanish."""
    hosts = {h.id for h in new.hosts}
    vms = {v.id for v in new.vms}
    pools = {p.id for p in new.pools}
    kept_hosts = tuple(h for h in old.hosts if h.id not in hosts)
    kept_vms = tuple(v for v in old.vms if v.id not in vms)
    kept_pools = tuple(p for p in old.pools if p.id not in pools)
    merged = replace(new, hosts=new.hosts + kept_hosts, vms=new.vms + kept_vms,
                     pools=new.pools + kept_pools)
    return merged, len(kept_hosts), len(kept_vms)


class Engine:
    """Runs the VDI refresh loop and one :class:`HostSession` per host."""

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._client = VdiActionClient(settings.url, settings.username, settings.password,
                                verify_ssl=settings.verify_ssl,
                                connect_timeout=settings.connect_timeout,
                                timeout=settings.call_timeout, page_size=settings.page_size,
                                page_concurrency=settings.page_concurrency)
        self._client_warnings = _WarningLog()
        self._client.warnings = self._client_warnings
        self._inventory: VdiInventory | None = None
        self._vdi_error: VdiError | None = None
        #: Warnings raised by the last successful platform refresh (empty when it was clean).
        self._vdi_warnings: tuple[str, ...] = ()
        self._sessions: dict[str, HostSession] = {}
        self._comparison: Comparison | None = None
        self._where: tuple[Comparison, dict[tuple[str, str], int]] | None = None
        self._tracker = DriftTracker(settings.grace)
        self._reconciles = 0
        self._incremental = 0
        self._event_seq = 0
        self._need_full = True
        self._changed_domains: set[tuple[str, str]] = set()
        self._shapes: dict[str, tuple[object, ...]] = {}
        self._listeners: list[Listener] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = asyncio.Event()
        self._vdi_kick = asyncio.Event()
        self._host_states: dict[str, ConnState] = {}
        self._stopping = False
        self._history: History | None = None
        self._seeded = False
        self._actor = Actor(self)
        #: Acknowledgement rules: the profile's, then those added live (see acknowledge()).
        self._acks = AckBook(settings.ack)

    # ------------------------------------------------------------------ listeners
    def listen(self, listener: Listener) -> None:
        """Call ``listener`` with every event, on the event loop (it must be quick)."""
        self._listeners.append(listener)

    def _emit(self, event: EngineEvent) -> None:
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:
                log.exception("update listener failed")

    # ------------------------------------------------------------------ lifecycle
    async def start(self, watch: bool = True) -> None:
        """Fetch the platform once (raises :class:`VdiError` if that fails) and open every
        host's session. With ``watch``, keep refreshing the platform and reconciling.
        With ``history_path`` set, the history is opened first (see :meth:`_open_history`)."""
        if self._settings.history_path is not None:
            await self._open_history(self._settings.history_path)
        await self._fetch_vdi()
        if self._vdi_error is not None:
            raise self._vdi_error
        self._tasks.append(asyncio.create_task(self._reconcile_loop(), name="reconcile"))
        if watch:
            self._tasks.append(asyncio.create_task(self._vdi_loop(), name="vdi-refresh"))

    async def stop(self) -> None:
        """Stop every task and session, close the platform client, and write out and close
        the history."""
        self._stopping = True
        await asyncio.gather(*(cancel_and_wait(t) for t in self._tasks))
        await asyncio.gather(*(s.stop() for s in self._sessions.values()),
                             return_exceptions=True)
        await self._client.aclose()
        history, self._history = self._history, None
        if history is not None:
            await asyncio.to_thread(history.close)

    async def _open_history(self, path: Path) -> None:
        """Open the history (in a thread: SQLite may wait on another process) and record
        every event from now on; drifts it holds open seed the tracker, so a drift still
        there keeps its first-seen time across a restart. A history that cannot be opened is
        logged and done without: monitoring goes on."""
        history = History(path, self._settings.url, self._settings.history_days)
        try:
            episodes = await asyncio.to_thread(history.open)
        except HistoryError as exc:
            log.warning("history: %s; running without history", exc)
            return
        for ep in episodes:
            self._tracker.seed((ep.key, ep.kind), monotonic_time(ep.first_seen),
                               ep.confirmed is not None)
        self._history = history
        # First of all listeners: an event is queued for the file before any face hears of
        # it, so a face that ends the process on an event (SIGTERM after a watch line) cannot
        # lose its row.
        self._listeners.insert(0, history.record)

    async def wait_settled(self, timeout: float | None = None) -> bool:
        """Wait until every host has been read or has failed once; then reconcile (a
        :class:`SnapshotReady` goes to the listeners). False if some host had not settled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._settled():
            if deadline is not None and time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        self.reconcile_now()
        return self._settled()

    def _settled(self) -> bool:
        return all(s.settled for s in self._sessions.values())

    async def check(self) -> SnapshotReady | None:
        """One pass under the grace period, for a one-shot command: reconcile now; if a drift is
        pending (grace > 0), wait until its grace has run out, re-read the platform and every
        host, and reconcile again. The drift tracker is the live faces' own, so a drift
        :meth:`SnapshotReady.confirmed` here lasted ``grace`` seconds (0: at once), exactly
        as on the TUI. Call after :meth:`wait_settled`."""
        snap = self.reconcile_now()
        deadline = self._tracker.next_deadline()
        if snap is None or deadline is None:
            return snap
        # A little past the deadline, as the reconcile loop waits: the loop's timers may fire a
        # hair early, and a drift judged 1 ms before its grace ends is still pending.
        await asyncio.sleep(max(0.0, deadline - time.monotonic()) + 0.01)
        before = {hid: s.read_at for hid, s in self._sessions.items()}
        await self.refresh()
        until = time.monotonic() + self._settings.call_timeout + 5
        while time.monotonic() < until and any(
                s.state is ConnState.CONNECTED and s.read_at <= before.get(hid, 0.0)
                for hid, s in self._sessions.items()):
            await asyncio.sleep(0.02)
        return self.reconcile_now()

    # ------------------------------------------------------------------ the platform
    async def _fetch_vdi(self) -> None:
        wlog = self._client_warnings
        mark = wlog.appended
        try:
            # Sessions start as soon as the host list is in; only the whole answer (below) may
            # stop one: a list cut short must not end a host's session.
            inv = await self._client.inventory(
                on_hosts=lambda hosts: self._sync_sessions(tuple(hosts), remove=False))
        except VdiError as exc:
            self._vdi_error = exc
            message = platform_message(exc)
            log.warning("platform: %s", message)
            self._emit(PlatformFailed(time.time(), message))
            return
        added = wlog.appended - mark
        warnings = list(dict.fromkeys(wlog[len(wlog) - min(added, len(wlog)):])) if added else []
        if warnings and self._inventory is not None:
            inv, hosts, vms = _keep_missing(inv, self._inventory)
            if hosts or vms:
                warnings.append(f"{self._client.base_url}: the answer looks incomplete; kept "
                                f"{hosts} hosts and {vms} VMs it lacks from the last refresh")
        previous, self._vdi_warnings = self._vdi_warnings, tuple(warnings)
        recovered = self._vdi_error is not None and self._inventory is not None
        self._vdi_error = None
        self._inventory = inv
        self._need_full = True
        self._sync_sessions(inv.hosts)
        self._emit(PlatformRefreshed(time.time(), inv, self._vdi_warnings,
                                     tuple(w for w in self._vdi_warnings if w not in previous),
                                     recovered))
        self._dirty.set()

    async def _vdi_loop(self) -> None:
        while True:
            self._vdi_kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._vdi_kick.wait(), self._settings.refresh_interval)
            try:
                await self._fetch_vdi()
            except Exception as exc:  # the refresh loop must outlive any bug
                log.exception("platform refresh failed")
                self._emit(PlatformFailed(time.time(), f"{self._settings.url}: refresh "
                                          f"failed: {type(exc).__name__}: {exc}"))

    async def refresh(self) -> None:
        """Re-read the platform now and ask every host for a full re-read."""
        await self._fetch_vdi()
        for s in self._sessions.values():
            s.refresh()

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

    # ------------------------------------------------------------------ libvirt side
    def _session_changed(self, s: HostSession) -> None:
        # Anything but a lifecycle event (a read, a connection change, a domain added or gone)
        # changes this shape, and then only a full pass is right.
        shape = (s.state, s.read_at, s.uri, len(s.domains or ()), s.error)
        if self._shapes.get(s.host_id) != shape:
            self._shapes[s.host_id] = shape
            self._need_full = True
        if self._host_states.get(s.host_id) != s.state:
            self._host_states[s.host_id] = s.state
            self._emit(HostChanged(time.time(), _link(s, s.view())))
        self._dirty.set()

    def _domain_event(self, ev: DomainEvent) -> None:
        if ev.old is not None and ev.new is not None and ev.old.name == ev.new.name:
            self._changed_domains.add((ev.host_id, ev.new.uuid))
        else:
            self._need_full = True
        self._event_seq += 1
        s = self._sessions.get(ev.host_id)
        self._emit(DomainChanged(ev.at, self._event_seq, ev,
                                 s.name if s is not None else ev.host_id[:8]))

    # ------------------------------------------------------------------ commands
    async def probe_host(self, host_id: str, extra: list[str] | None = None) -> list[ProbeResult]:
        """Try ``extra`` then every URI the host's session tries, each on its own."""
        s = self._sessions[host_id]
        return await self.probe_uris([*(extra or []), *s.uris])

    async def probe_uris(self, uris: list[str]) -> list[ProbeResult]:
        """Try each of ``uris`` (once each, in parallel) with the connect timeout."""
        return await probe(list(dict.fromkeys(uris)), self._settings.connect_timeout)

    async def use_uri(self, host_id: str, uri: str) -> None:
        """Make the host's session connect with ``uri`` first, now."""
        await self._sessions[host_id].use_uri(uri)

    def acknowledge(self, rule: AckRule) -> None:
        """Apply ``rule`` from now on, as if the profile had it: the next snapshot (within the
        debounce) marks the drifts it covers acknowledged. Saving it is the caller's business."""
        self._acks.add(rule)
        self._dirty.set()

    def find_host(self, name_or_ip: str) -> VdiHost | None:
        """The platform's host with this name, IP or id, from the last refresh."""
        for h in self._inventory.hosts if self._inventory else ():
            if name_or_ip in (h.name, h.ip, h.id):
                return h
        return None

    # ------------------------------------------------------------------ actions
    # The commands of vditui.core.act (which documents them): ActionError when read-only or
    # without an audit trail; act() re-reads, re-checks, sends once and follows up.
    def actions_for(self, keys: Sequence[str]) -> tuple[Action, ...]:
        """The actions that apply to these VM rows (keys); () in read-only mode."""
        return self._actor.actions_for(keys)

    def plan(self, action: Action, keys: Sequence[str], force: bool = False) -> ActionPlan:
        """What ``action`` would send for these rows, from the last snapshot (no I/O)."""
        return self._actor.plan(action, keys, force)

    async def act(self, plan: ActionPlan, *, wait: bool = False,
                  on_wait: Callable[[ActionError], None] | None = None) -> ActionResult:
        """Send ``plan`` (re-checked on fresh reads) once and follow each VM to agreement;
        another action on the platform refuses it, or with ``wait`` holds it back."""
        return await self._actor.act(plan, wait=wait, on_wait=on_wait)

    # ------------------------------------------------------------------ reconcile
    def _snapshot(self) -> tuple[int, dict[str, HostView], dict[str, HostLink]]:
        self._need_full, self._changed_domains = False, set()
        views = {hid: s.view() for hid, s in self._sessions.items()}
        links = {hid: _link(s, views[hid]) for hid, s in self._sessions.items()}
        return self._event_seq, views, links

    def reconcile_now(self) -> SnapshotReady | None:
        """Reconcile on the calling thread, now, in full; the snapshot also goes to the
        listeners. None before the platform was first read."""
        if self._inventory is None:
            return None
        seq, views, links = self._snapshot()
        started = time.perf_counter()
        return self._publish(reconcile(self._inventory, views), seq, links, started=started)

    async def _reconcile_in_thread(self) -> None:
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
        self._reconciles += 1
        mono = time.monotonic()
        changes = self._tracker.update(cmp.drifts, mono)
        now = time.time()
        settled = all(lk.settled for lk in links.values())
        acked = self._acknowledged(cmp, now)
        snap = SnapshotReady(now, seq, cmp, MappingProxyType(self._tracker.states()),
                             MappingProxyType(links), rows, settled, self._vdi_warnings,
                             incremental,
                             0.0 if started is None else time.perf_counter() - started,
                             MappingProxyType(acked), monotonic=mono)
        self._emit(snap)
        for ch in changes:
            self._emit(DriftChanged(now, ch, self._acks.rule_for(ch.drift, acked)))
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
            log.warning("acknowledgement expired on %s, no longer applied: %s (%s)",
                        rule.expires, rule.describe(), rule.reason)
            self._emit(AckExpired(now, rule))
        return acked

    async def _reconcile_loop(self) -> None:
        while True:
            deadline = self._tracker.next_deadline()
            wait = None if deadline is None else max(0.0, deadline - time.monotonic()) + 0.01
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), wait)
            self._dirty.clear()
            started = time.perf_counter()
            await self._reconcile_in_thread()
            cost = time.perf_counter() - started
            # Pace by cost: a pass over 5,000 VMs takes tens of ms on the loop; under an event
            # storm, reconciling back to back would leave no time for the UI or the events
            # themselves (which each face shows at once, ahead of the next pass).
            await asyncio.sleep(max(self._settings.debounce, 3 * cost))


def _link(s: HostSession, view: HostView) -> HostLink:
    connecting = s.state in (ConnState.CONNECTING, ConnState.RECONNECTING)
    return HostLink(view, s.name, s.connecting_since if connecting else 0.0, tuple(s.uris),
                    s.settled)
