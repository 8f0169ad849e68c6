"""The engine: the platform and every host's libvirt, fetched concurrently, reconciled live.

One stream of updates serves both faces (the TUI and the headless commands): listeners get
:class:`Update` objects on the event loop. A reconcile runs after every change, at most once per
``debounce`` seconds, so an event storm costs one reconcile per tick, not one per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from vditui.core.drift import DriftChange, DriftTracker
from vditui.core.models import Comparison, ConnState, HostView, VdiHost, VdiInventory, VmRow
from vditui.core.probe import ProbeResult
from vditui.core.reconcile import carry_over, reconcile, row_index, update_rows
from vditui.core.session import DomainEvent, HostSession, cancel_and_wait
from vditui.core.settings import EngineSettings as EngineSettings
from vditui.core.uris import UriError, candidates
from vditui.core.vdi import VdiClient, VdiError, VdiUnreachable
from vditui.core.virt import probe

log = logging.getLogger("vditui.engine")


@dataclass(frozen=True)
class Update:
    """Something changed. ``kind``: inventory | vm | drift | host | vdi | warning.

    ``vdi``: a platform refresh ended; ``message`` is empty on success, else the failure (naming
    the platform URL and the cause). ``warning``: a platform answer was inconsistent (e.g. a page
    total that disagrees with the items returned); sent once, when the warning first appears.
    """

    kind: str
    at: float
    comparison: Comparison | None = None
    event: DomainEvent | None = None
    drift: DriftChange | None = None
    host_id: str = ""
    message: str = ""
    #: Events counted so far: a ``vm`` update's own number, and for ``inventory`` the number
    #: the comparison includes (a comparison built in a thread can be older than an event).
    seq: int = 0
    #: ``inventory``: the only rows that differ from the previous comparison, the others
    #: being equal and in the same places; None when rows came, went or moved.
    rows: tuple[VmRow, ...] | None = None


Listener = Callable[[Update], None]


class _WarningLog(list[str]):
    """The client's warning list, counting every append (the list itself is kept short, so its
    length cannot tell how many warnings a refresh added)."""

    appended = 0

    def append(self, item: str) -> None:
        self.appended += 1
        super().append(item)


def platform_message(exc: VdiError) -> str:
    """The one line shown for a platform failure: the client's (platform URL and cause), made
    explicit when the transport error names no reason (httpx's ``ReadError`` says nothing by
    itself; the system's "Connection reset by peer" behind it does)."""
    text = str(exc)
    bare = re.search(r": ([A-Z][A-Za-z]*)$", text) if isinstance(exc, VdiUnreachable) else None
    if bare is None:
        return text
    cur: BaseException | None = exc
    for _ in range(20):
        if cur is None:
            break
        if isinstance(cur, OSError) and cur.strerror:
            return (f"{text[:bare.start()]}: the platform dropped the connection "
                    f"({bare.group(1)}: {cur.strerror})")
        cur = cur.__cause__ or cur.__context__
    return f"{text[:bare.start()]}: the platform dropped the connection ({bare.group(1)})"


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
        self.settings = settings
        self.client = VdiClient(settings.url, settings.username, settings.password,
                                verify_ssl=settings.verify_ssl,
                                connect_timeout=settings.connect_timeout,
                                timeout=settings.call_timeout, page_size=settings.page_size,
                                page_concurrency=settings.page_concurrency)
        self._client_warnings = _WarningLog()
        self.client.warnings = self._client_warnings
        self.inventory: VdiInventory | None = None
        self.vdi_error: VdiError | None = None
        #: Warnings raised by the last successful platform refresh (empty when it was clean).
        self.vdi_warnings: tuple[str, ...] = ()
        self.sessions: dict[str, HostSession] = {}
        self.comparison: Comparison | None = None
        self._where: tuple[Comparison, dict[tuple[str, str], int]] | None = None
        self.tracker = DriftTracker(settings.grace)
        self.reconciles = 0
        self.incremental = 0
        self.event_seq = 0
        self._need_full = True
        self._changed_domains: set[tuple[str, str]] = set()
        self._shapes: dict[str, tuple[object, ...]] = {}
        self._listeners: list[Listener] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = asyncio.Event()
        self._vdi_kick = asyncio.Event()
        self._host_states: dict[str, ConnState] = {}
        self._stopping = False

    # ------------------------------------------------------------------ listeners
    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, update: Update) -> None:
        for fn in list(self._listeners):
            try:
                fn(update)
            except Exception:
                log.exception("update listener failed")

    # ------------------------------------------------------------------ lifecycle
    async def start(self, watch: bool = True) -> None:
        """Fetch the platform once (raises :class:`VdiError` if that fails) and open every
        host's session. With ``watch``, keep refreshing the platform and reconciling."""
        await self._fetch_vdi()
        if self.vdi_error is not None:
            raise self.vdi_error
        self._tasks.append(asyncio.create_task(self._reconcile_loop(), name="reconcile"))
        if watch:
            self._tasks.append(asyncio.create_task(self._vdi_loop(), name="vdi-refresh"))

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.gather(*(cancel_and_wait(t) for t in self._tasks))
        await asyncio.gather(*(s.stop() for s in self.sessions.values()),
                             return_exceptions=True)
        await self.client.aclose()

    async def wait_settled(self, timeout: float | None = None) -> bool:
        """Wait until every host has been read or has failed once; then reconcile."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not all(s.settled for s in self.sessions.values()):
            if deadline is not None and time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        self.reconcile_now()
        return all(s.settled for s in self.sessions.values())

    # ------------------------------------------------------------------ the platform
    async def _fetch_vdi(self) -> None:
        wlog = self._client_warnings
        mark = wlog.appended
        try:
            # Sessions start as soon as the host list is in; only the whole answer (below) may
            # stop one: a list cut short must not end a host's session.
            inv = await self.client.inventory(
                on_hosts=lambda hosts: self._sync_sessions(tuple(hosts), remove=False))
        except VdiError as exc:
            self.vdi_error = exc
            message = platform_message(exc)
            log.warning("platform: %s", message)
            self._emit(Update("vdi", time.time(), message=message))
            return
        added = wlog.appended - mark
        warnings = list(dict.fromkeys(wlog[len(wlog) - min(added, len(wlog)):])) if added else []
        if warnings and self.inventory is not None:
            inv, hosts, vms = _keep_missing(inv, self.inventory)
            if hosts or vms:
                warnings.append(f"{self.client.base_url}: the answer looks incomplete; kept "
                                f"{hosts} hosts and {vms} VMs it lacks from the last refresh")
        previous, self.vdi_warnings = self.vdi_warnings, tuple(warnings)
        self.vdi_error = None
        self.inventory = inv
        self._need_full = True
        self._sync_sessions(inv.hosts)
        for w in warnings:
            if w not in previous:
                self._emit(Update("warning", time.time(), message=w))
        self._emit(Update("vdi", time.time(), message=""))
        self._dirty.set()

    async def _vdi_loop(self) -> None:
        while True:
            self._vdi_kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._vdi_kick.wait(), self.settings.refresh_interval)
            try:
                await self._fetch_vdi()
            except Exception as exc:  # the refresh loop must outlive any bug
                log.exception("platform refresh failed")
                self._emit(Update("vdi", time.time(), message=f"{self.settings.url}: refresh "
                                  f"failed: {type(exc).__name__}: {exc}"))

    async def refresh(self) -> None:
        """Re-read the platform now and ask every host for a full re-read."""
        await self._fetch_vdi()
        for s in self.sessions.values():
            s.refresh()

    def uris_for(self, host: VdiHost) -> list[str]:
        override = self.settings.host_uris.get(host.name) or self.settings.host_uris.get(host.ip)
        try:
            return candidates(self.settings.uri_templates, host.ip, host.name, override)
        except UriError as exc:
            log.warning("host %s: %s", host.name, exc)
            return [override] if override else []

    def _sync_sessions(self, hosts: tuple[VdiHost, ...], remove: bool = True) -> None:
        wanted = {h.id: h for h in hosts}
        for host_id in [k for k in self.sessions if k not in wanted and remove]:
            s = self.sessions.pop(host_id)
            asyncio.get_running_loop().create_task(s.stop())
        for h in hosts:
            if h.id in self.sessions:
                continue
            s = HostSession(h.id, h.name, self.uris_for(h), self.settings.session_settings(),
                            self._session_changed, self._domain_event)
            self.sessions[h.id] = s
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
            msg = f"{s.name}: {s.state.value} {s.uri}"
            if s.error is not None and s.state is not ConnState.CONNECTED:
                msg += f": {s.error.kind.value}: {s.error.message}"
            self._emit(Update("host", time.time(), host_id=s.host_id, message=msg))
        self._dirty.set()

    def _domain_event(self, ev: DomainEvent) -> None:
        if ev.old is not None and ev.new is not None and ev.old.name == ev.new.name:
            self._changed_domains.add((ev.host_id, ev.new.uuid))
        else:
            self._need_full = True
        self.event_seq += 1
        self._emit(Update("vm", ev.at, event=ev, host_id=ev.host_id, seq=self.event_seq))

    async def probe_host(self, host_id: str, extra: list[str] | None = None) -> list[ProbeResult]:
        s = self.sessions[host_id]
        uris = list(dict.fromkeys([*(extra or []), *s.uris]))
        return await probe(uris, self.settings.connect_timeout)

    async def use_uri(self, host_id: str, uri: str) -> None:
        await self.sessions[host_id].use_uri(uri)

    def find_host(self, name_or_ip: str) -> VdiHost | None:
        for h in self.inventory.hosts if self.inventory else ():
            if name_or_ip in (h.name, h.ip, h.id):
                return h
        return None

    # ------------------------------------------------------------------ reconcile
    def _snapshot(self) -> tuple[int, dict[str, HostView]]:
        self._need_full, self._changed_domains = False, set()
        return self.event_seq, {hid: s.view() for hid, s in self.sessions.items()}

    def reconcile_now(self) -> Comparison | None:
        """Reconcile on the calling thread, now, in full."""
        if self.inventory is None:
            return None
        seq, views = self._snapshot()
        return self._publish(reconcile(self.inventory, views), seq)

    async def _reconcile_in_thread(self) -> None:
        if self.inventory is None:
            return
        if not self._need_full and self.comparison is not None:
            # Only lifecycle events since the last pass: re-judge just those rows (see
            # reconcile.update_rows), a few rows instead of thousands under an event storm.
            # With none at all (a drift's grace period ended, a host identified itself), the
            # rows stand and only the drift statuses and host views move.
            changed = self._changed_domains
            seq, views = self._snapshot()
            if self._where is None or self._where[0] is not self.comparison:
                self._where = (self.comparison, row_index(self.comparison))
            where = self._where[1]
            cmp = update_rows(self.comparison, self.inventory, views, changed, where)
            if cmp is not None:
                self.incremental += 1
                self._where = (cmp, where)  # an incremental pass keeps every row in place
                self._publish(cmp, seq, tuple(cmp.vms[where[c]] for c in changed))
                return
        # A full pass over thousands of VMs takes tens of ms of pure Python: in a worker thread
        # the loop keeps delivering libvirt events and key presses while it runs.
        seq, views = self._snapshot()
        inventory, previous = self.inventory, self.comparison

        def full() -> tuple[Comparison, tuple[VmRow, ...] | None]:
            cmp = reconcile(inventory, views)
            # Which rows differ, found here rather than by each face on the loop: after a
            # refresh that changed a few VMs, the TUI then redraws those few.
            return carry_over(previous, cmp) if previous is not None else (cmp, None)

        fresh, rows = await asyncio.to_thread(full)
        self._publish(fresh, seq, rows)

    def _publish(self, cmp: Comparison, seq: int,
                 rows: tuple[VmRow, ...] | None = None) -> Comparison:
        self.comparison = cmp
        self.reconciles += 1
        changes = self.tracker.update(cmp.drifts, time.monotonic())
        self._emit(Update("inventory", time.time(), comparison=cmp, seq=seq, rows=rows))
        for ch in changes:
            self._emit(Update("drift", time.time(), drift=ch))
        return cmp

    async def _reconcile_loop(self) -> None:
        while True:
            deadline = self.tracker.next_deadline()
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
            await asyncio.sleep(max(self.settings.debounce, 3 * cost))
