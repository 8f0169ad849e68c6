"""One host's libvirt session: connect, read, follow events, notice drops, reconnect.

Runs as an asyncio task; every libvirt call goes through :mod:`vditui.core.virt` in a thread with
a timeout. Events that arrive while a full read is in flight are replayed on top of its result,
so a read never rolls a newer state back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from vditui.core import virt
from vditui.core.events import DomainEvent as DomainEvent
from vditui.core.models import ConnState, Domain, HostView, VirtError, VirtState
from vditui.core.probe import invalid_uri_error, timeout_error
from vditui.core.settings import SessionSettings
from vditui.core.uris import UriError, prepare

log = logging.getLogger("vditui.session")

# virConnectCloseReason, as libvirt hands it to a close callback.
_CLOSE_ERROR, _CLOSE_EOF, _CLOSE_KEEPALIVE, _CLOSE_CLIENT = 0, 1, 2, 3


class HostSession:
    """Keeps one host's domains current. ``on_change`` fires after every change of view;
    ``on_event`` after every lifecycle event applied."""

    def __init__(self, host_id: str, name: str, uris: list[str], settings: SessionSettings,
                 on_change: Callable[[HostSession], None],
                 on_event: Callable[[DomainEvent], None] | None = None) -> None:
        self.host_id, self.name = host_id, name
        self.uris = list(uris)
        self.settings = settings
        self._on_change, self._on_event = on_change, on_event
        self.uri = self.uris[0] if self.uris else ""
        self.state = ConnState.IDLE
        self.error: VirtError | None = None
        self.domains: dict[str, Domain] | None = None
        self.read_at = 0.0
        self.connecting_since = 0.0
        self.round_trips = 0
        self.last_read_trips = 0
        self.libvirt_version = ""
        self.hostname = ""
        self.node_cpus: int | None = None
        self.node_memory_kib: int | None = None
        self.reconnects = 0
        #: Full reads begun, and the number of the last one that completed: a read numbered at
        #: least what :meth:`refresh` returned began after that call.
        self.reads_begun = 0
        self.reads_done = 0
        #: When this session was created (time.monotonic()): a new session, a new value.
        self.created = time.monotonic()
        #: Seconds the last full read took.
        self.last_read_s = 0.0
        self._sub: virt.Subscription | None = None
        self._stuck: asyncio.Future[object] | None = None
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._close_reason: int | None = None
        self._stopping = False
        self._reading = False
        self._buffer: list[tuple[str, str, int, int]] = []
        self._task: asyncio.Task[None] | None = None
        self._identify_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ public
    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._run(), name=f"host:{self.name}")
        return self._task

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await cancel_and_wait(self._task)
        if self._identify_task is not None:
            await cancel_and_wait(self._identify_task)
        await self._drop()

    def view(self) -> HostView:
        doms = tuple(self.domains.values()) if self.domains is not None else None
        return HostView(host_id=self.host_id, uri=self.uri, state=self.state, domains=doms,
                        error=self.error, read_at=self.read_at, round_trips=self.last_read_trips,
                        libvirt_version=self.libvirt_version, hostname=self.hostname,
                        node_cpus=self.node_cpus, node_memory_kib=self.node_memory_kib)

    @property
    def settled(self) -> bool:
        """True once the first attempt ended: read, or failed."""
        return self.read_at > 0 or self.state is ConnState.FAILED

    def refresh(self) -> int:
        """Ask for a full re-read (or a reconnect attempt now, if disconnected). Returns the
        ticket: once :attr:`reads_done` reaches it, a read begun after this call is in (a read
        in flight now does not count: it may have missed what the caller wants seen)."""
        self._wake.set()
        return self.reads_begun + 1

    async def use_uri(self, uri: str) -> None:
        """Adopt ``uri`` for this session: drop the connection and connect with it first."""
        self.uris = [uri, *[u for u in self.uris if u != uri]]
        await self._drop()
        self._closed.set()
        self._wake.set()

    # ------------------------------------------------------------------ loop
    async def _run(self) -> None:
        backoff = self.settings.min_backoff
        while not self._stopping:
            ok = await self._connect()
            if not ok:
                self._changed()
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff)
                continue
            backoff = self.settings.min_backoff
            await self._connected_loop()
            if not self._stopping:
                self.reconnects += 1

    async def _connected_loop(self) -> None:
        lanes = self.settings.info_concurrency
        while not self._stopping:
            # Cleared before the read, not after: a refresh asked while it runs must get a read
            # of its own (see refresh()), not be answered by this one.
            self._wake.clear()
            if not await self._read_all(lanes):
                return
            lanes = self.settings.reread_info_concurrency
            if self._stopping:
                return
            waiters = [asyncio.create_task(self._wake.wait()),
                       asyncio.create_task(self._closed.wait())]
            # reread_interval 0 turns the safety-net re-read off (events only).
            every = self.settings.reread_interval if self.settings.reread_interval > 0 else None
            try:
                await asyncio.wait(waiters, timeout=every, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Also when this task is cancelled: a waiter left behind pends forever.
                for w in waiters:
                    w.cancel()
            if self._closed.is_set():
                await self._lost("libvirt closed the connection", self._close_error())
                return

    def _close_error(self) -> VirtError | None:
        """Why libvirt closed the connection, from the close callback's reason."""
        reason, s = self._close_reason, self.settings
        if reason == _CLOSE_KEEPALIVE:
            # libvirt gives up after `count` unanswered probes sent every `interval` seconds.
            return timeout_error(self.uri, s.keepalive_interval * (s.keepalive_count + 1),
                                 "keepalive: the host stopped answering")
        if reason == _CLOSE_EOF:
            return virt.lost(self.uri, "the connection was closed by the other end (end of file)")
        if reason == _CLOSE_ERROR:
            return virt.lost(self.uri, "the connection failed (I/O error)")
        return None

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _connect(self) -> bool:
        s = self.settings
        if self._stuck is not None and not self._stuck.done():
            # The previous open never returned: don't stack another thread on this host.
            self.state = ConnState.FAILED
            self._changed()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._stuck), s.connect_timeout)
            if not self._stuck.done():
                return False
        if self.state is not ConnState.FAILED:
            # A failed host stays "failed" while it is retried in the background: flipping it
            # to "connecting" on every retry would resolve and re-raise its drift each time.
            self.state = ConnState.CONNECTING if self.domains is None else ConnState.RECONNECTING
            self.connecting_since = time.monotonic()
            self._changed()
        for uri in self.uris:
            conn = await self._open(uri)
            if conn is None:
                continue
            self.uri = uri
            loop = asyncio.get_running_loop()
            self._closed, self._close_reason = asyncio.Event(), None
            sub = virt.Subscription(conn, loop, self._event, self._close_cb)
            try:
                await virt.blocking(sub.register, s.keepalive_interval, s.keepalive_count,
                                    timeout=s.call_timeout)
            except Exception as exc:  # noqa: BLE001 - any failure becomes a typed VirtError
                self.error = (
                    virt.to_error(exc, uri) if not isinstance(exc, TimeoutError)
                    else timeout_error(uri, s.call_timeout, "subscribe"))
                virt.submit(sub.close)  # may block on a silent peer: never wait on it
                continue
            self._sub = sub
            self.round_trips += 2  # registerCloseCallback, domainEventRegisterAny
            # The version and hostname are for display: off the critical path of the first read.
            self._identify_task = asyncio.create_task(self._identify(sub))
            return True
        self.state = ConnState.FAILED
        if self.error is not None and self.error.uri:
            # The view shows one URI and one error: the URI must be the one that failed so,
            # not the first of the list (or the last that worked).
            self.uri = self.error.uri
        return False

    async def _identify(self, sub: virt.Subscription) -> None:
        try:
            self.libvirt_version, self.hostname = await virt.blocking(
                virt.identify, sub.conn, timeout=self.settings.call_timeout)
        except Exception as exc:  # noqa: BLE001 - display only; a real drop is noticed elsewhere
            log.debug("%s: identify failed: %s", self.name, exc)
            return
        self.round_trips += 2
        try:
            # Capacity, read once per connection beside the identity (issue 20 item 3).
            self.node_cpus, self.node_memory_kib = await virt.blocking(
                virt.node_info, sub.conn, timeout=self.settings.call_timeout)
            self.round_trips += 1
        except Exception as exc:  # noqa: BLE001 - display only, like the identity
            log.debug("%s: node info failed: %s", self.name, exc)
        self._changed()

    async def _open(self, uri: str) -> object | None:
        try:
            prepared = prepare(uri)
        except UriError as exc:
            self.error = invalid_uri_error(uri, exc)
            return None
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def open_now() -> object:
            loop.call_soon_threadsafe(started.set)
            return virt.open_connection(prepared)

        fut = loop.run_in_executor(virt.EXECUTOR, open_now)
        try:
            # The timeout runs from the open's start, not from its queueing: with more hosts
            # than the pool has threads (1,000 hosts), later opens wait for a thread, and that
            # wait is not the host's slowness (measured: 488 of 1,000 hosts failed at 10 s).
            # Bounded all the same: a pool whose every thread is held by stuck opens (each
            # bounded by virt's stuck-open limit) frees one in time; nothing waits forever.
            await asyncio.wait_for(started.wait(), max(60.0, 10 * self.settings.connect_timeout))
            conn: object = await asyncio.wait_for(asyncio.shield(fut),
                                                  self.settings.connect_timeout)
        except TimeoutError:
            self._stuck = fut
            fut.add_done_callback(_close_late)
            self.error = timeout_error(
                uri, self.settings.connect_timeout)
            return None
        except asyncio.CancelledError:
            # The session stops while the open runs on: the open is left to finish on its own,
            # and what it opened (or its error, which asyncio would otherwise report as "never
            # retrieved" when the future is collected) is dealt with then.
            fut.add_done_callback(_close_late)
            raise
        except Exception as exc:  # noqa: BLE001 - any failure becomes a typed VirtError
            self.error = virt.to_error(exc, uri)
            return None
        self.round_trips += 1
        return conn

    async def _read_all(self, lanes: int) -> bool:
        sub = self._sub
        if sub is None:
            return False
        n = len(self.domains or ())
        # One call's time, plus 0.4 s per domain shared among the lanes (50 ms a domain at 8
        # lanes, 200 ms at 2): a slow link fails a big host's read only when truly stuck.
        timeout = self.settings.call_timeout + 0.4 * n / max(1, lanes)
        self._reading, self._buffer = True, []
        self.reads_begun += 1
        number, started = self.reads_begun, time.perf_counter()
        try:
            result = await virt.blocking(virt.read_domains, sub.conn, lanes, timeout=timeout)
        except TimeoutError:
            self._reading = False
            self.error = timeout_error(self.uri, timeout, "reading domains")
            await self._lost(self.error.message, self.error)
            return False
        except Exception as exc:  # noqa: BLE001 - any failure becomes a typed VirtError
            self._reading = False
            self.error = virt.to_error(exc, self.uri)
            await self._lost(self.error.message, self.error)
            return False
        self.domains = {d.uuid: d for d in result.domains}
        self._reading = False
        self.round_trips += result.round_trips
        # What reading this host cost, connect included: open, the two subscriptions, the read.
        self.last_read_trips = result.round_trips + 3
        self.read_at = time.time()
        self.reads_done, self.last_read_s = number, time.perf_counter() - started
        self.state, self.error = ConnState.CONNECTED, None
        for item in self._buffer:
            self._apply(*item)
        self._buffer = []
        self._changed()
        return True

    async def _lost(self, why: str, error: VirtError | None = None) -> None:
        await self._drop()
        if self._stopping:
            return
        self.error = error or virt.lost(self.uri, why)
        self.state = ConnState.RECONNECTING
        log.info("%s: connection lost: %s", self.name, why)
        self._changed()

    async def _drop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            sub.active = False
            # close() can block on a dead peer: give it a thread and a bound, never the loop.
            with contextlib.suppress(Exception):
                await virt.blocking(sub.close, timeout=self.settings.call_timeout)

    # ------------------------------------------------------------------ callbacks (on the loop)
    def _close_cb(self, reason: int) -> None:
        self._close_reason = reason
        self._closed.set()
        self._wake.set()

    def _event(self, uuid: str, name: str, event: int, detail: int) -> None:
        if self._reading:
            self._buffer.append((uuid, name, event, detail))
            return
        self._apply(uuid, name, event, detail)
        self._changed()

    def _apply(self, uuid: str, name: str, event: int, detail: int) -> None:
        if self.domains is None:
            return
        old = self.domains.get(uuid)
        if virt.start_prelude(event, old.state if old else None):
            return
        kind = virt.event_kind(event, detail)
        target = virt.EVENT_STATE.get(event)
        if target is None:
            # defined / undefined: the event alone does not say vCPU or memory; look it up.
            asyncio.get_running_loop().create_task(self._reread_one(uuid, name, kind))
            return
        new = replace(old, state=target) if old else Domain(uuid, name, target)
        self.domains[uuid] = new
        if old is None:
            asyncio.get_running_loop().create_task(self._reread_one(uuid, name, kind))
        self._emit(uuid, name, kind, old, new)

    async def _reread_one(self, uuid: str, name: str, kind: str) -> None:
        sub = self._sub
        if sub is None:
            return
        try:
            dom = await virt.blocking(virt.read_one, sub.conn, uuid,
                                      timeout=self.settings.call_timeout)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a typed VirtError
            log.debug("%s: re-reading %s failed: %s", self.name, name, exc)
            return
        self.round_trips += 2
        if self.domains is None:
            return
        old = self.domains.get(uuid)
        if dom is None:
            if old is not None and old.state in (VirtState.SHUTOFF, VirtState.NOSTATE):
                del self.domains[uuid]
                self._emit(uuid, name, kind, old, None)
                self._changed()
            return
        if old != dom:
            self.domains[uuid] = dom
            self._emit(uuid, name, kind, old, dom)
            self._changed()

    def _emit(self, uuid: str, name: str, kind: str, old: Domain | None,
              new: Domain | None) -> None:
        if self._on_event is not None:
            self._on_event(DomainEvent(self.host_id, uuid, name, kind, old, new, time.time()))

    def _changed(self) -> None:
        try:
            self._on_change(self)
        except Exception:
            log.exception("%s: change handler failed", self.name)


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has ended. Python 3.11's ``asyncio.wait_for`` loses a
    cancellation that lands just as its inner future completes (fixed in 3.12); the task then
    goes on as if never cancelled, so cancel again until it is really done."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    if not task.cancelled() and task.exception() is not None:
        log.debug("task %s ended with %r", task.get_name(), task.exception())


def _close_late(fut: asyncio.Future[object]) -> None:
    # An open that outlived its timeout may still succeed later: close what it opened.
    if fut.cancelled() or fut.exception() is not None:
        return
    conn = fut.result()
    virt.close_quietly(conn)
