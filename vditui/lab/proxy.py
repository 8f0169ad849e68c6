"""Fault-injecting loopback TCP proxies for the lab.

One asyncio loop in a daemon thread (:class:`ProxyHub`) serves every :class:`FaultProxy`, so the
lab can front hundreds of libvirtd hosts without a thread per connection. Each proxy passes
traffic, refuses connections or hangs, adds round-trip latency, drips answers a byte at a time
and cuts live connections, all switchable while the lab runs.

Hang keeps streams intact (a stalled host that recovers gets its bytes in order); connections
accepted during a hang are closed when it ends. How, in :mod:`vditui.lab.relay`, which holds a
connection's sockets and pipes.

Stdlib only; like the rest of the lab, nothing here imports ``vditui.core``.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from vditui.lab.relay import _Conn

log = logging.getLogger("vditui.lab.proxy")

MODES = ("pass", "refuse", "hang")
_CALL_TIMEOUT = 30.0
_hub_ids = itertools.count(1)
_T = TypeVar("_T")


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
        self._drip_s = 0.0
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()

    def __repr__(self) -> str:
        return f"<FaultProxy {self.name} {self.listen}->{self.target} {self._mode}>"

    def track(self, conn: _Conn, live: bool) -> None:
        """Count ``conn`` among this proxy's live connections (``live``), or no longer."""
        if live:
            self._conns.add(conn)
        else:
            self._conns.discard(conn)

    @property
    def mode(self) -> str:
        """The current mode: "pass", "refuse" or "hang"."""
        return self._mode

    @property
    def delay_ms(self) -> float:
        """The added round-trip delay in milliseconds."""
        return self._delay_ms

    @property
    def drip_s(self) -> float:
        """Seconds between the bytes of what the target sends back (0: no drip)."""
        return self._drip_s

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

    def set_drip(self, seconds: float) -> None:
        """Deliver what the target sends from now on one byte every ``seconds`` (0 stops it):
        a peer that is never silent for long, yet never done."""
        if seconds < 0:
            raise ValueError(f"drip must be >= 0 s, got {seconds}")
        self._drip_s = float(seconds)  # a float store is atomic; the loop reads it per chunk

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
