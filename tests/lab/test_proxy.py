"""The lab's fault-injecting TCP proxy, driven with plain sockets against a threaded echo server."""

from __future__ import annotations

import errno
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from vditui.lab.proxy import FaultProxy, ProxyHub

pytestmark = [
    pytest.mark.timeout(15),
    # Unclosed sockets or loops in the hub would surface as these; they must not happen.
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

Addr = tuple[str, int]
TIMEOUT = 2.0


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


@pytest.fixture
def echo() -> Iterator[Addr]:
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()
    thread.join(TIMEOUT)


@pytest.fixture
def hub() -> Iterator[ProxyHub]:
    hub = ProxyHub()
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def proxy(hub: ProxyHub, echo: Addr) -> FaultProxy:
    return hub.add(("127.0.0.1", 0), echo, name="echo")


def connect(addr: Addr) -> socket.socket:
    return socket.create_connection(addr, timeout=TIMEOUT)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(65536, n - len(buf)))
        if not chunk:
            raise EOFError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def echo_ok(sock: socket.socket, payload: bytes = b"ping") -> bool:
    sock.sendall(payload)
    return recv_exact(sock, len(payload)) == payload


def assert_closed(sock: socket.socket, within: float = 1.0) -> None:
    """The proxy closed this connection: EOF or reset, not silence."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass


def assert_silent(sock: socket.socket, payload: bytes = b"anyone?") -> None:
    sock.sendall(payload)
    sock.settimeout(0.5)
    with pytest.raises(TimeoutError):
        sock.recv(65536)
    sock.settimeout(TIMEOUT)


def wait_until(pred: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.01)


def round_trip(sock: socket.socket) -> float:
    start = time.perf_counter()
    assert echo_ok(sock, b"x")
    return time.perf_counter() - start


def test_pass_forwards_both_ways_large_payload_intact(proxy: FaultProxy) -> None:
    assert proxy.mode == "pass" and proxy.listen[1] != 0 and proxy.name == "echo"
    payload = os.urandom(1 << 20)
    with connect(proxy.listen) as sock:
        assert echo_ok(sock, b"hello")
        # Send from a thread so neither side's socket buffers deadlock the echo.
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert recv_exact(sock, len(payload)) == payload
        sender.join(TIMEOUT)
        assert proxy.accepted == 1 and proxy.connections == 1
    wait_until(lambda: proxy.connections == 0)


def test_half_close_still_delivers_the_reply(proxy: FaultProxy) -> None:
    with connect(proxy.listen) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert recv_exact(sock, 10) == b"last words"
        assert sock.recv(10) == b""


def test_delay_adds_round_trip_latency(proxy: FaultProxy) -> None:
    with connect(proxy.listen) as sock:
        base = min(round_trip(sock) for _ in range(3))
        proxy.set_delay(100)
        assert proxy.delay_ms == 100
        delayed = min(round_trip(sock) for _ in range(3))
    assert 0.08 <= delayed - base <= 0.4


def test_delay_is_latency_not_serialization(proxy: FaultProxy) -> None:
    proxy.set_delay(100)
    with connect(proxy.listen) as sock:
        start = time.perf_counter()
        for i in range(20):
            sock.sendall(b"req%02d" % i)
            time.sleep(0.005)  # separate chunks, so each one is delayed on its own
        reply = recv_exact(sock, 20 * 5)
        elapsed = time.perf_counter() - start
    assert reply == b"".join(b"req%02d" % i for i in range(20))
    assert 0.1 <= elapsed < 1.5


def test_refuse_then_pass_rebinds_same_port(proxy: FaultProxy) -> None:
    live = connect(proxy.listen)
    assert echo_ok(live)
    proxy.set_mode("refuse")
    assert proxy.mode == "refuse"
    with live:
        assert_closed(live)
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.listen)
    addr = proxy.listen
    proxy.set_mode("pass")
    assert proxy.listen == addr
    with connect(proxy.listen) as sock:
        assert echo_ok(sock)


def test_hang_silences_new_and_live_connections_until_pass(proxy: FaultProxy) -> None:
    with connect(proxy.listen) as before:
        assert echo_ok(before)
        proxy.set_mode("hang")
        with connect(proxy.listen) as during:
            assert_silent(during)
            assert_silent(before, b"held")
            proxy.set_mode("pass")
            # The stalled connection resumes with its stream intact ...
            assert recv_exact(before, 4) == b"held"
            assert echo_ok(before)
            # ... while one born during the hang lost its bytes and is closed.
            assert_closed(during)
    with connect(proxy.listen) as after:
        assert echo_ok(after)
    wait_until(lambda: proxy.connections == 0)


def test_cut_closes_live_connections_and_keeps_mode(
    proxy: FaultProxy, capfd: pytest.CaptureFixture[str]
) -> None:
    socks = [connect(proxy.listen) for _ in range(3)]
    for sock in socks:
        assert echo_ok(sock)
    proxy.cut()
    for sock in socks:
        with sock:
            assert_closed(sock)
    wait_until(lambda: proxy.connections == 0)
    assert proxy.mode == "pass"
    with connect(proxy.listen) as sock:
        assert echo_ok(sock)
    assert capfd.readouterr() == ("", "")


def test_cut_a_hung_connection(proxy: FaultProxy) -> None:
    with connect(proxy.listen) as sock:
        assert echo_ok(sock)
        proxy.set_mode("hang")
        proxy.cut()
        assert_closed(sock)
    assert proxy.mode == "hang"


def test_upstream_down_closes_client_promptly(
    hub: ProxyHub, capfd: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[:2]
    proxy = hub.add(("127.0.0.1", 0), dead)
    with connect(proxy.listen) as sock:
        start = time.monotonic()
        assert_closed(sock)
        assert time.monotonic() - start < 1.0
    wait_until(lambda: proxy.connections == 0)
    assert capfd.readouterr() == ("", "")


def test_add_on_a_used_address_says_so(hub: ProxyHub, echo: Addr) -> None:
    with pytest.raises(OSError, match=r"127\.0\.0\.1:\d+ is already in use") as info:
        hub.add(echo, echo)
    assert info.value.errno == errno.EADDRINUSE


def test_bad_arguments(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError):
        proxy.set_mode("drop")
    with pytest.raises(ValueError):
        proxy.set_delay(-1)
    with pytest.raises(RuntimeError):
        ProxyHub().add(("127.0.0.1", 0), ("127.0.0.1", 1))


def test_stop_leaves_no_thread_and_refuses(echo: Addr) -> None:
    hub = ProxyHub()
    hub.start()
    proxy = hub.add(("127.0.0.1", 0), echo)
    live = connect(proxy.listen)
    assert echo_ok(live)
    assert any(t.name == hub.thread_name for t in threading.enumerate())
    hub.stop()
    hub.stop()
    assert not any(t.name == hub.thread_name for t in threading.enumerate())
    with live:
        assert_closed(live)
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.listen)


def test_two_hundred_proxies(hub: ProxyHub, echo: Addr) -> None:
    proxies = [hub.add(("127.0.0.1", 0), echo, name=f"h{i}") for i in range(200)]
    assert len({p.listen for p in proxies}) == 200
    for p in proxies:
        with connect(p.listen):
            pass
    hub.stop()
    assert all(p.connections == 0 for p in proxies)
