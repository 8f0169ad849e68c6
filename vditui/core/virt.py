"""The only module that imports libvirt: sessions to hosts, live events, and one-shot attempts.

libvirt calls block, and a host that accepts TCP and never answers blocks ``virConnectOpen``
forever (libvirt has no connect timeout). So every call runs in a worker thread under an asyncio
timeout, and a session never starts a second open while its previous one is still stuck: one bad
host holds at most one thread and never delays another host.

Events come from libvirt's default event loop, run in one daemon thread for the whole process;
callbacks hand their data to the asyncio loop with ``call_soon_threadsafe``. That loop also drives
keepalive, so a silent peer is noticed within ``interval * (count + 1)`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, TypeVar

import libvirt

from vditui.core.models import Domain, VirtError, VirtErrorKind, VirtState
from vditui.core.probe import ProbeResult, classify, invalid_uri_error, timeout_error
from vditui.core.tlscheck import explain
from vditui.core.uris import UriError, prepare

log = logging.getLogger("vditui.virt")
T = TypeVar("T")


class _DaemonPool(Executor):
    """A thread pool whose workers are daemon threads that nobody joins at exit.

    ``ThreadPoolExecutor`` joins its workers when the interpreter exits, so one call stuck for
    good (``virConnectOpen`` on a host that accepts TCP and never answers has no timeout) would
    keep vditui from ever exiting. Here a stuck worker is simply abandoned at exit."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        self._max, self._prefix = max_workers, thread_name_prefix
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...],
                                            dict[str, Any]]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads = 0
        self._ids = itertools.count()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        fut: Future[T] = Future()
        self._work.put((fut, fn, args, kwargs))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._threads < self._max:
                    self._threads += 1
                    threading.Thread(target=self._worker, daemon=True,
                                     name=f"{self._prefix}_{next(self._ids)}").start()
        return fut

    def _worker(self) -> None:
        while True:
            fut, fn, args, kwargs = self._work.get()
            if fut.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
            del fut, fn, args, kwargs
            self._idle.release()


_EXEC = _DaemonPool(max_workers=256, thread_name_prefix="libvirt-call")
_INFO_EXEC = _DaemonPool(max_workers=512, thread_name_prefix="libvirt-info")
#: The pool every libvirt call runs on (public for the session's opens, which it bounds itself).
EXECUTOR: Executor = _EXEC
_runtime_lock = threading.Lock()
_runtime_ready = False

STATS_FLAGS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_VCPU
               | libvirt.VIR_DOMAIN_STATS_BALLOON)
# Lifecycle event -> the state it leaves the domain in (None: look the domain up again).
EVENT_STATE: dict[int, VirtState | None] = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: None,
    libvirt.VIR_DOMAIN_EVENT_UNDEFINED: None,
    libvirt.VIR_DOMAIN_EVENT_STARTED: VirtState.RUNNING,
    libvirt.VIR_DOMAIN_EVENT_SUSPENDED: VirtState.PAUSED,
    libvirt.VIR_DOMAIN_EVENT_RESUMED: VirtState.RUNNING,
    libvirt.VIR_DOMAIN_EVENT_STOPPED: VirtState.SHUTOFF,
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: VirtState.SHUTDOWN,
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: VirtState.PMSUSPENDED,
    libvirt.VIR_DOMAIN_EVENT_CRASHED: VirtState.CRASHED,
}
EVENT_NAMES = {
    libvirt.VIR_DOMAIN_EVENT_DEFINED: "defined", libvirt.VIR_DOMAIN_EVENT_UNDEFINED: "undefined",
    libvirt.VIR_DOMAIN_EVENT_STARTED: "started", libvirt.VIR_DOMAIN_EVENT_SUSPENDED: "suspended",
    libvirt.VIR_DOMAIN_EVENT_RESUMED: "resumed", libvirt.VIR_DOMAIN_EVENT_STOPPED: "stopped",
    libvirt.VIR_DOMAIN_EVENT_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_EVENT_PMSUSPENDED: "pmsuspended",
    libvirt.VIR_DOMAIN_EVENT_CRASHED: "crashed",
}
# What real QEMU says in an event's detail that its name alone hides. A QEMU process killed from
# outside (a crash, the OOM killer) is a STOPPED event with detail FAILED, never a CRASHED one
# (QEMU sends that only for a guest panic with on_crash=preserve), and leaves the guest shut off.
EVENT_DETAIL_NAMES = {
    (libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_FAILED): "crashed",
    (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_IOERROR):
        "paused on I/O error",
    (libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG):
        "paused by watchdog",
}


def start_prelude(event: int, old: VirtState | None) -> bool:
    """True for the RESUMED event QEMU sends just before STARTED when a shut-off guest starts
    (QEMU is launched paused, then let run): not a resume, and STARTED follows at once."""
    return event == libvirt.VIR_DOMAIN_EVENT_RESUMED and old in (VirtState.SHUTOFF,
                                                                 VirtState.CRASHED)


def event_kind(event: int, detail: int) -> str:
    """The name an event is shown by: its detail's where that matters, else the event's."""
    return EVENT_DETAIL_NAMES.get((event, detail)) or EVENT_NAMES.get(event, f"event-{event}")


_CRED_TYPES = [libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE, libvirt.VIR_CRED_ECHOPROMPT,
               libvirt.VIR_CRED_NOECHOPROMPT, libvirt.VIR_CRED_REALM, libvirt.VIR_CRED_EXTERNAL]


def _no_credentials(_creds: list[Any], _opaque: Any) -> int:
    # Refusing every credential request makes libvirt fail with "authentication required"
    # instead of prompting on the terminal behind the TUI.
    return -1


def ensure_runtime() -> None:
    """Silence libvirt's stderr error handler and start its event loop thread (once)."""
    global _runtime_ready
    with _runtime_lock:
        if _runtime_ready:
            return
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        libvirt.virEventRegisterDefaultImpl()
        threading.Thread(target=_event_loop, name="libvirt-events", daemon=True).start()
        _runtime_ready = True


def _event_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:
            log.exception("libvirt event loop iteration failed")
            time.sleep(0.1)


class ExplainedError(Exception):
    """A libvirt failure and what vditui found out about its cause (see :mod:`tlscheck`)."""

    def __init__(self, exc: libvirt.libvirtError, detail: str) -> None:
        super().__init__(f"{exc.get_error_message() or exc}: {detail}")
        self.exc, self.detail = exc, detail


def to_error(exc: BaseException, uri: str) -> VirtError:
    """A typed :class:`VirtError` from a libvirt exception, keeping libvirt's code and text."""
    if isinstance(exc, ExplainedError):
        return classify(uri, str(exc), exc.exc.get_error_code(), exc.exc.get_error_domain())
    if isinstance(exc, libvirt.libvirtError):
        return classify(uri, exc.get_error_message() or str(exc), exc.get_error_code(),
                        exc.get_error_domain())
    return classify(uri, f"{type(exc).__name__}: {exc}")


async def blocking(fn: Callable[..., T], *args: Any, timeout: float) -> T:
    """Run a blocking call in a worker thread; raise TimeoutError after ``timeout`` seconds
    (the thread may stay blocked: callers must not pile more work onto a stuck host)."""
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.run_in_executor(_EXEC, fn, *args), timeout)


def open_connection(uri: str) -> Any:
    """Open ``uri`` (blocking) without ever prompting for credentials. A TLS failure whose
    message hides its cause raises :class:`ExplainedError` with the cause found."""
    ensure_runtime()
    try:
        return libvirt.openAuth(uri, [_CRED_TYPES, _no_credentials, None], 0)
    except libvirt.libvirtError as exc:
        detail = explain(uri, exc.get_error_message() or "")
        if detail:
            raise ExplainedError(exc, detail) from exc
        raise


def _version_text(n: int) -> str:
    return f"{n // 1_000_000}.{n // 1000 % 1000}.{n % 1000}"


def identify(conn: Any) -> tuple[str, str]:
    """libvirt version and hypervisor hostname (two round trips)."""
    version = _version_text(conn.getLibVersion())
    try:
        hostname = conn.getHostname()
    except libvirt.libvirtError:
        hostname = ""
    return version, hostname


def node_info(conn: Any) -> tuple[int | None, int | None]:
    """The host's CPUs and memory (KiB) as libvirt's node info gives them (one round trip;
    ``getInfo`` reports memory in MiB)."""
    try:
        info = conn.getInfo()
    except libvirt.libvirtError:
        return None, None
    return int(info[2]), int(info[1]) * 1024


async def try_uri(uri: str, timeout: float) -> ProbeResult:
    """Open ``uri`` once, identify the host, close: the probe's one attempt."""
    start = time.monotonic()
    try:
        prepared = prepare(uri)
    except UriError as exc:
        return ProbeResult(uri, False, 0.0, error=invalid_uri_error(uri, exc))

    def attempt() -> tuple[str, str]:
        conn = open_connection(prepared)
        try:
            return identify(conn)
        finally:
            conn.close()

    try:
        version, hostname = await blocking(attempt, timeout=timeout)
    except TimeoutError:
        return ProbeResult(uri, False, time.monotonic() - start,
                           error=timeout_error(uri, timeout))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a typed result
        return ProbeResult(uri, False, time.monotonic() - start, error=to_error(exc, uri))
    return ProbeResult(uri, True, time.monotonic() - start, version, hostname)


async def probe(uris: list[str], timeout: float) -> list[ProbeResult]:
    """Try every URI at once, each bounded by ``timeout``; results in the order given."""
    return list(await asyncio.gather(*(try_uri(u, timeout) for u in uris)))


@dataclass
class ReadResult:
    domains: list[Domain]
    round_trips: int


def read_domains(conn: Any, info_concurrency: int = 8) -> ReadResult:
    """Every domain with state, vCPU and memory, in as few round trips as the driver allows:
    one ``getAllDomainStats`` where it reports vCPU and balloon stats (QEMU does, for running
    and shut-off guests alike), else one ``info()`` per domain, issued concurrently over the
    same connection. Both give the same figures for the same guest: ``vcpu.current`` is
    ``info()``'s vCPU count, ``balloon.maximum`` its maximum memory."""
    stats = conn.getAllDomainStats(STATS_FLAGS)
    trips = 1
    out: list[Domain] = []
    missing: list[tuple[Any, VirtState]] = []
    for dom, st in stats:
        state = VirtState.from_code(int(st.get("state.state", 0)))
        # The figures dom.info() gives, so both paths agree (see reconcile's docstring): the
        # vCPUs the guest runs with, and its configured memory, not the balloon's level.
        vcpu = st.get("vcpu.current")
        mem = st.get("balloon.maximum")
        if vcpu is None or mem is None:
            missing.append((dom, state))
            continue
        out.append(Domain(dom.UUIDString(), dom.name(), state, int(vcpu), int(mem)))
    if missing:
        def one(item: tuple[Any, VirtState]) -> Domain | None:
            dom, _state = item
            try:
                st, max_kib, _cur, vcpus, _t = dom.info()
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return None  # undefined between the two calls
                raise
            return Domain(dom.UUIDString(), dom.name(), VirtState.from_code(st), vcpus, max_kib)

        if len(missing) == 1:
            results = [one(missing[0])]
        else:
            # ``info_concurrency`` lanes per host, each a pool thread working through its share
            # serially: a host never queues more than its lanes in the shared pool, so one big
            # or slow host cannot hold threads the other hosts are waiting for.
            lanes = max(1, min(info_concurrency, len(missing)))

            def lane(share: list[tuple[Any, VirtState]]) -> list[Domain | None]:
                return [one(item) for item in share]

            futures = [_INFO_EXEC.submit(lane, missing[i::lanes]) for i in range(lanes)]
            results = [d for f in futures for d in f.result()]
        trips += len(missing)
        out.extend(d for d in results if d is not None)
    return ReadResult(out, trips)


def read_one(conn: Any, uuid: str) -> Domain | None:
    """One domain by UUID (two round trips), or None when it no longer exists."""
    try:
        dom = conn.lookupByUUIDString(uuid)
        st, max_kib, _cur, vcpus, _t = dom.info()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise
    return Domain(dom.UUIDString(), dom.name(), VirtState.from_code(st), vcpus, max_kib)


class Subscription:
    """Lifecycle events and the close notification of one connection, delivered on ``loop``."""

    def __init__(self, conn: Any, loop: asyncio.AbstractEventLoop,
                 on_event: Callable[[str, str, int, int], None],
                 on_close: Callable[[int], None]) -> None:
        self.conn, self.loop = conn, loop
        self._on_event, self._on_close = on_event, on_close
        self._cb_id: int | None = None
        self.active = True

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        if not self.active:
            return
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed while libvirt still delivered
            self.active = False

    def _lifecycle(self, _conn: Any, dom: Any, event: int, detail: int, _opaque: Any) -> None:
        # name() and UUIDString() are local: no round trip from inside the event thread.
        self._post(self._on_event, dom.UUIDString(), dom.name(), event, detail)

    def _closed(self, _conn: Any, reason: int, _opaque: Any) -> None:
        self._post(self._on_close, reason)

    def register(self, keepalive_interval: int, keepalive_count: int) -> None:
        """Blocking: subscribe (one round trip) and turn keepalive on."""
        self.conn.registerCloseCallback(self._closed, None)
        self._cb_id = self.conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._lifecycle, None)
        if keepalive_interval > 0:
            self.conn.setKeepAlive(keepalive_interval, keepalive_count)

    def close(self) -> None:
        """Blocking: unsubscribe and close the connection; never raises."""
        self.active = False
        for step in (self._deregister, self.conn.unregisterCloseCallback, self.conn.close):
            with contextlib.suppress(libvirt.libvirtError):
                step()

    def _deregister(self) -> None:
        if self._cb_id is not None:
            self.conn.domainEventDeregisterAny(self._cb_id)


def submit(fn: Callable[[], object]) -> None:
    """Run ``fn`` on the libvirt pool and never wait for it (a close that may block)."""
    _EXEC.submit(fn)


def close_quietly(conn: Any) -> None:
    """Close a connection in a worker thread, ignoring errors (it may block on a dead peer)."""

    def close() -> None:
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    _EXEC.submit(close)


def lost(uri: str, why: str) -> VirtError:
    return VirtError(kind=VirtErrorKind.CONNECTION_LOST, uri=uri, message=why,
                     hint="the connection dropped; vditui reconnects by itself")
