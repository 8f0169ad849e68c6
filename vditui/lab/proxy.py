"""Fault-injecting loopback TCP proxies for the lab.

One asyncio loop in a daemon thread (:class:`ProxyHub`) serves every :class:`FaultProxy`, so the
lab can front hundreds of libvirtd hosts without a thread per connection. Each proxy passes
traffic, refuses connections or hangs, adds round-trip latency and cuts live connections, all
switchable while the lab runs.

Hang keeps streams intact: connections live when the proxy enters "hang" stop *reading* both
sides, so their bytes wait (in kernel buffers and the delay queue) and are delivered, in order,
once the proxy is back to "pass" -- a stalled host that recovers. Bytes already handed to the
kernel before the switch may still arrive. Connections accepted *during* a hang get no upstream;
what they send is read and discarded, and they are closed when the proxy leaves "hang", because
their stream has a hole. A client that closes a stalled connection is noticed only on resume.

Stdlib only; like the rest of the lab, nothing here imports ``vditui.core``.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger("vditui.lab.proxy")

MODES = ("pass", "refuse", "hang")
_CONNECT_TIMEOUT = 10.0
_CALL_TIMEOUT = 30.0
# Bounds what one direction holds in the delay queue before its source stops reading, so a bulk
# transfer under latency is limited like a real bandwidth-delay product instead of eating memory.
_HIGH_WATER = 1 << 20
_LOW_WATER = 1 << 18
_EOF = b""  # data_received never yields empty bytes, so b"" can mark EOF in a queue
_hub_ids = itertools.count(1)
_T = TypeVar("_T")


class _Side(asyncio.Protocol):
    """One socket of a proxied connection: the client's or the upstream one."""

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.pauses: set[str] = set()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # a stream connection's transport
        self.transport = transport
        self.conn.made(self)

    def data_received(self, data: bytes) -> None:
        self.conn.received(self, data)

    def eof_received(self) -> bool:
        self.conn.received(self, _EOF)
        return True  # keep our write half open: the other direction may still carry data

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.lost(self)

    def pause_writing(self) -> None:
        self.conn.other(self).pause("wbuf", True)

    def resume_writing(self) -> None:
        self.conn.other(self).pause("wbuf", False)

    def pause(self, reason: str, on: bool) -> None:
        (self.pauses.add if on else self.pauses.discard)(reason)
        self.update_reading()

    def update_reading(self) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        want_pause = bool(self.pauses) or self.conn.stalled()
        if want_pause and t.is_reading():
            t.pause_reading()
        elif not want_pause and not t.is_reading():
            t.resume_reading()


class _Pipe:
    """One direction of a connection: every chunk is delivered delay/2 after it was read."""

    def __init__(self, conn: _Conn, src: _Side, dst: _Side) -> None:
        self.conn, self.src, self.dst = conn, src, dst
        self.queue: deque[tuple[float, bytes]] = deque()
        self.queued = 0
        self.timer: asyncio.TimerHandle | None = None
        self.eof_in = False  # EOF read from src (queued or delivered)
        self.done = False  # EOF delivered to dst, or dst is gone: nothing more goes this way

    def push(self, data: bytes) -> None:
        if self.eof_in or self.done:
            return
        self.eof_in = data == _EOF
        now = self.conn.loop.time()
        due = now + self.conn.proxy.delay_ms / 2000
        if not self.queue and due <= now and not self.conn.stalled():
            self.deliver(data)
            return
        if self.queue:
            due = max(due, self.queue[-1][0])  # a lowered delay must not let a chunk overtake
        self.queue.append((due, data))
        self.queued += len(data)
        if self.queued > _HIGH_WATER:
            self.src.pause("queue", True)
        self.arm()

    def arm(self) -> None:
        if self.timer is None and self.queue and not self.done and not self.conn.stalled():
            self.timer = self.conn.loop.call_at(self.queue[0][0], self.flush)

    def flush(self) -> None:
        self.timer = None
        if self.conn.stalled():
            return  # re-armed on resume
        now = self.conn.loop.time()
        first = True  # the timer fired for the head, whatever clock rounding says
        while self.queue and not self.done and (first or self.queue[0][0] <= now):
            first = False
            _, data = self.queue.popleft()
            self.queued -= len(data)
            self.deliver(data)
        if self.queued < _LOW_WATER:
            self.src.pause("queue", False)
        self.arm()

    def deliver(self, data: bytes) -> None:
        t = self.dst.transport
        if data != _EOF:
            # Writing to a closing transport makes asyncio log warnings to stderr; drop instead.
            if t is not None and not t.is_closing():
                t.write(data)
            return
        self.done = True
        self.conn.eof_delivered(self)

    def drop(self) -> None:
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.queued = 0


class _Conn:
    """A client connection and, unless accepted during a hang, its upstream connection."""

    def __init__(self, proxy: FaultProxy, loop: asyncio.AbstractEventLoop) -> None:
        self.proxy, self.loop = proxy, loop
        self.client, self.upstream = _Side(self), _Side(self)
        self.up = _Pipe(self, self.client, self.upstream)
        self.down = _Pipe(self, self.upstream, self.client)
        self.blackhole = proxy.mode == "hang"
        self.task: asyncio.Task[None] | None = None
        if self.blackhole:
            self.upstream.lost = True
            self.up.drop()
            self.down.drop()

    def stalled(self) -> bool:
        return self.proxy.mode == "hang" and not self.blackhole

    def other(self, side: _Side) -> _Side:
        return self.upstream if side is self.client else self.client

    def pipe_from(self, side: _Side) -> _Pipe:
        return self.up if side is self.client else self.down

    def made(self, side: _Side) -> None:
        if side is self.upstream:
            if self.client.lost and side.transport is not None:
                side.transport.abort()
            side.update_reading()
            return
        self.proxy._conns.add(self)
        self.proxy.accepted += 1
        if self.proxy.mode == "refuse":  # accepted just before the listener closed
            self.abort()
        elif not self.blackhole:
            self.client.pause("connecting", True)
            self.task = self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT):
                await self.loop.create_connection(lambda: self.upstream, *self.proxy.target)
        except (OSError, TimeoutError) as exc:
            log.debug("%s: upstream %s unreachable: %r", self.proxy.name, self.proxy.target, exc)
            self.task = None  # abort() must not cancel the task it is running in
            self.abort()
            return
        self.client.pause("connecting", False)

    def received(self, side: _Side, data: bytes) -> None:
        if not self.blackhole:
            self.pipe_from(side).push(data)
        elif data == _EOF:
            self.abort()

    def eof_delivered(self, pipe: _Pipe) -> None:
        t = pipe.dst.transport
        if (self.down if pipe is self.up else self.up).done or t is None or not t.can_write_eof():
            self.close()
        else:
            t.write_eof()

    def lost(self, side: _Side) -> None:
        side.lost = True
        peer = self.other(side)
        self.pipe_from(peer).drop()
        if side is self.client and self.task is not None:
            self.task.cancel()
        if peer.transport is None:
            peer.lost = True  # never connected, and the cancelled task will not connect it
        if not peer.lost:
            # What was read from the lost side still reaches the peer, then the peer is closed.
            pipe = self.pipe_from(side)
            if pipe.done:
                self.close()
            else:
                pipe.push(_EOF)
        if self.client.lost and self.upstream.lost:
            self.proxy._conns.discard(self)

    def close(self) -> None:
        """Close both sockets after their pending writes (FIN)."""
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()

    def abort(self) -> None:
        """Drop everything and close both sockets now."""
        if self.task is not None:
            self.task.cancel()
        self.up.drop()
        self.down.drop()
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.abort()
            elif side is self.upstream:
                side.lost = True

    def refresh(self) -> None:
        """Re-evaluate after a mode change: stall or resume reading and delivery."""
        for side in (self.client, self.upstream):
            side.update_reading()
        self.up.arm()
        self.down.arm()


class FaultProxy:
    """A listening address that forwards to ``target`` and can be told to misbehave.

    Made by :meth:`ProxyHub.add`. Every method is safe to call from any thread but the hub's.
    """

    def __init__(
        self, hub: ProxyHub, listen: tuple[str, int], target: tuple[str, int], name: str
    ) -> None:
        self.name = name
        self.listen = listen
        self.target = target
        self.accepted = 0
        self._hub = hub
        self._mode = "pass"
        self._delay_ms = 0.0
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()

    def __repr__(self) -> str:
        return f"<FaultProxy {self.name} {self.listen}->{self.target} {self._mode}>"

    @property
    def mode(self) -> str:
        """The current mode: "pass", "refuse" or "hang"."""
        return self._mode

    @property
    def delay_ms(self) -> float:
        """The added round-trip delay in milliseconds."""
        return self._delay_ms

    @property
    def connections(self) -> int:
        """How many client connections are live now."""
        return sum(1 for c in list(self._conns) if not c.client.lost)

    def set_mode(self, mode: str) -> None:
        """Switch to "pass", "refuse" or "hang"; returns once the switch is in effect."""
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}; expected one of {MODES}")
        self._hub._call(self._set_mode(mode))

    def set_delay(self, ms: float) -> None:
        """Add ``ms`` of round-trip latency (half each way) to chunks read from now on."""
        if ms < 0:
            raise ValueError(f"delay must be >= 0 ms, got {ms}")
        self._delay_ms = float(ms)  # a float store is atomic; the loop reads it per chunk

    def cut(self) -> None:
        """Close every live connection now; the mode is unchanged."""
        self._hub._call(self._cut())

    async def _cut(self) -> None:
        for conn in list(self._conns):
            conn.abort()

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.listen
        try:
            self._server = await loop.create_server(
                lambda: _Conn(self, loop).client, host, port, reuse_address=True, backlog=1024
            )
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            what = "is already in use" if exc.errno == errno.EADDRINUSE else "cannot be bound"
            err = OSError(f"{host}:{port} {what}: {reason}")
            err.errno = exc.errno
            raise err from None
        self.listen = self._server.sockets[0].getsockname()[:2]

    async def _unbind(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        # Stop accepting, then let accepts already in flight attach to the server: closing it
        # under them trips an assertion inside asyncio (3.11) that leaks their sockets.
        loop = asyncio.get_running_loop()
        for sock in server.sockets:
            loop.remove_reader(sock.fileno())
        await asyncio.sleep(0)
        server.close()  # closes the listening socket at once: connects now get RST

    async def _set_mode(self, mode: str) -> None:
        old = self._mode
        if mode == old:
            return
        if mode == "refuse":
            self._mode = mode
            await self._unbind()
            await self._cut()
            return
        if old == "refuse":
            await self._bind()  # on failure the proxy stays in "refuse"
        self._mode = mode
        for conn in list(self._conns):
            if conn.blackhole and mode == "pass":
                conn.abort()
            else:
                conn.refresh()


def _log_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # The default handler prints tracebacks to stderr; peers vanishing is routine in the lab.
    log.debug("proxy hub: %s", context.get("message"), exc_info=context.get("exception"))


class ProxyHub:
    """One asyncio loop in a daemon thread hosting many :class:`FaultProxy` instances."""

    def __init__(self) -> None:
        self.thread_name = f"vditui-proxy-hub-{next(_hub_ids)}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._proxies: list[FaultProxy] = []
        self._lock = threading.Lock()

    def __enter__(self) -> ProxyHub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the loop thread; a no-op if it is running."""
        with self._lock:
            if self._thread is not None:
                return
            loop = asyncio.new_event_loop()
            # Under `python -X dev` asyncio's debug mode would print slow-callback warnings;
            # this loop is lab plumbing, not code under test.
            loop.set_debug(False)
            loop.set_exception_handler(_log_exception)
            ready = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(loop, ready), name=self.thread_name, daemon=True
            )
            thread.start()
            ready.wait()
            self._loop, self._thread = loop, thread

    def stop(self) -> None:
        """Close every proxy and connection and end the thread; idempotent."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                return
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_CALL_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - stopping must go on whatever went wrong
                log.debug("proxy hub shutdown: %r", exc)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CALL_TIMEOUT)
            self._loop = self._thread = None
            self._proxies.clear()

    def add(self, listen: tuple[str, int], target: tuple[str, int], name: str = "") -> FaultProxy:
        """Listen on ``listen`` (port 0 picks one) forwarding to ``target``; returns once listening.

        Raises OSError naming the address if it cannot be bound (e.g. already in use).
        """
        proxy = FaultProxy(self, listen, target, name)
        self._call(proxy._bind())
        proxy.name = name or f"{proxy.listen[0]}:{proxy.listen[1]}"
        with self._lock:
            self._proxies.append(proxy)
        return proxy

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        with self._lock:
            loop = self._loop
            if loop is None:
                coro.close()
                raise RuntimeError("the proxy hub is not running; call start() first")
            if threading.current_thread() is self._thread:
                coro.close()
                raise RuntimeError("proxy control calls would deadlock on the hub's own thread")
            return asyncio.run_coroutine_threadsafe(coro, loop).result(_CALL_TIMEOUT)

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            # Let cancelled connect tasks unwind (closing their sockets) before the loop closes.
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            for _ in range(10):  # their transports close their sockets in call_soon callbacks
                loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _shutdown(self) -> None:
        for proxy in self._proxies:
            proxy._mode = "refuse"
            await proxy._unbind()
        # Accepts and upstream connects still in flight land as connections a turn or two later,
        # and aborted transports close their sockets in callbacks: repeat until all is quiet.
        me = asyncio.current_task()
        for _ in range(200):
            for proxy in self._proxies:
                await proxy._cut()
            await asyncio.sleep(0)
            if not any(p._conns for p in self._proxies) and asyncio.all_tasks() == {me}:
                break
