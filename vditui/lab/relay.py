"""The two sockets of one proxied connection and the delayed byte pipes between them, for
:mod:`vditui.lab.proxy`'s fault proxies.

Hang keeps streams intact: connections live when the proxy enters "hang" stop *reading* both
sides, so their bytes wait (in kernel buffers and the delay queue) and are delivered, in order,
once the proxy is back to "pass" -- a stalled host that recovers. Bytes already handed to the
kernel before the switch may still arrive. Connections accepted *during* a hang get no upstream;
what they send is read and discarded, and they are closed when the proxy leaves "hang", because
their stream has a hole. A client that closes a stalled connection is noticed only on resume.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

log = logging.getLogger("vditui.lab.proxy")

_CONNECT_TIMEOUT = 10.0
# Bounds what one direction holds in the delay queue before its source stops reading, so a bulk
# transfer under latency is limited like a real bandwidth-delay product instead of eating memory.
_HIGH_WATER = 1 << 20
_LOW_WATER = 1 << 18
_EOF = b""  # data_received never yields empty bytes, so b"" can mark EOF in a queue


class _Proxy(Protocol):
    """What a connection needs of its :class:`vditui.lab.proxy.FaultProxy`."""

    name: str
    target: tuple[str, int]
    accepted: int

    def track(self, conn: _Conn, live: bool) -> None: ...

    @property
    def mode(self) -> str: ...
    @property
    def delay_ms(self) -> float: ...
    @property
    def drip_s(self) -> float: ...


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
        drip = self.conn.proxy.drip_s if self is self.conn.down else 0.0
        if drip > 0 and data != _EOF:
            # One byte per ``drip`` seconds, each after the one before.
            at = max(due, self.queue[-1][0]) if self.queue else due
            for i in range(len(data)):
                self.queue.append((at + drip * (i + 1), data[i:i + 1]))
            self.queued += len(data)
            if self.queued > _HIGH_WATER:
                self.src.pause("queue", True)
            self.arm()
            return
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

    def __init__(self, proxy: _Proxy, loop: asyncio.AbstractEventLoop) -> None:
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
        self.proxy.track(self, True)
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
            self.proxy.track(self, False)

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
