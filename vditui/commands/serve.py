"""``vditui serve``: the engine running headless for as long as it is left, with ``/metrics``
(Prometheus) and ``/healthz`` served over HTTP from a thread of their own.

The HTTP server never touches the engine: the engine's listener (on the event loop) keeps a
:class:`~vditui.core.metrics.MetricsState`, which scrapes read under its lock. Logs go to the
log file; the terminal gets one line saying where it listens. SIGTERM, SIGINT and SIGHUP stop it
cleanly: the HTTP server closes, then the engine stops (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import ipaddress
import logging
import re
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, TextIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from vditui.commands.serve_metrics import registry
from vditui.config.paths import display_path, log_dir
from vditui.core.engine import Engine
from vditui.core.exitcodes import ExitCode
from vditui.core.metrics import MetricsState
from vditui.core.settings import EngineSettings
from vditui.core.shard import Shard
from vditui.core.vdi import VdiAuthError, VdiError, VdiTlsError
from vditui.core.vdi_errors import platform_message
from vditui.launch import Launch

log = logging.getLogger("vditui.serve")

DEFAULT_LISTEN = "127.0.0.1:9464"
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


# --------------------------------------------------------------------------- --listen


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 address in brackets: ``[::1]:9464``) as (host, port); port 0
    takes any free port. Raises :class:`argparse.ArgumentTypeError` saying what is expected."""
    expected = f"expected HOST:PORT such as {DEFAULT_LISTEN}, 0.0.0.0:9464 or [::1]:9464"
    m = re.fullmatch(r"\[([^\]]*)\]:(\d{1,5})|([^:\[\]]*):(\d{1,5})", text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r}: {expected}")
    host = m.group(1) if m.group(1) is not None else m.group(3)
    port = int(m.group(2) or m.group(4))
    if not host:
        raise argparse.ArgumentTypeError(f"{text!r}: no host; {expected} (0.0.0.0 for every "
                                         "address)")
    if port > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: port {port} is above 65535")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        if m.group(1) is not None or not _HOSTNAME.fullmatch(host):
            raise argparse.ArgumentTypeError(
                f"{text!r}: {host!r} is neither an IP address nor a host name; "
                f"{expected}") from None
        return host, port
    if addr.version == 6 and m.group(1) is None:
        raise argparse.ArgumentTypeError(f"{text!r}: write an IPv6 address in brackets, "
                                         f"[{host}]:{port}")
    return host, port


def beyond_loopback(host: str) -> bool:
    """Whether listening on ``host`` lets other machines connect (anything but a loopback
    address or ``localhost``)."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: it may resolve to anything


def show(host: str, port: int) -> str:
    """``host:port`` as typed, brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------- HTTP


class ServeError(Exception):
    """Why the server could not listen, in one line for the operator."""


class _LogStream:
    """wsgiref writes a failed request's traceback to ``wsgi.errors`` (stderr): the log file
    takes it instead."""

    def write(self, text: str) -> int:
        if text.strip():
            log.error("http: %s", text.rstrip())
        return len(text)

    def flush(self) -> None:
        pass


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http %s: " + format, self.address_string(), *args)

    def get_stderr(self) -> Any:
        return _LogStream()


class _Server(ThreadingWSGIServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints these (a scraper hanging up mid-answer) to stderr.
        log.debug("http: request from %s failed", client_address, exc_info=True)


def app(state: MetricsState, metrics: WsgiApp) -> WsgiApp:
    """``/metrics`` (prometheus-client's own app), ``/healthz``, a short index at ``/``."""

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            try:
                return metrics(environ, start_response)
            except Exception:
                log.exception("collecting the metrics failed")
                return _text(start_response, "500 Internal Server Error",
                             "collecting the metrics failed; see vditui's log")
        if path == "/healthz":
            h = state.health()
            return _text(start_response, "200 OK" if h.ok else "503 Service Unavailable",
                         h.reason)
        if path == "/":
            return _text(start_response, "200 OK",
                         "vditui exporter: /metrics (Prometheus), /healthz")
        return _text(start_response, "404 Not Found", f"no {path}; try /metrics or /healthz")

    return serve


def _text(start_response: StartResponse, status: str, line: str) -> list[bytes]:
    body = (line + "\n").encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body)))])
    return [body]


class HttpServer:
    """The WSGI server in a daemon thread: :meth:`bind` in the caller's thread (so a port in
    use is said at once), :meth:`close` from a worker thread (it waits for the loop to end)."""

    def __init__(self, server: WSGIServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="vditui-http",
                                        kwargs={"poll_interval": 0.2}, daemon=True)

    @classmethod
    def bind(cls, host: str, port: int, wsgi: WsgiApp) -> HttpServer:
        """Listen on ``host:port`` or raise :class:`ServeError` saying why not."""
        where = show(host, port)
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                      flags=socket.AI_PASSIVE)
        except socket.gaierror as exc:
            raise ServeError(f"cannot listen on {where}: cannot resolve {host!r} "
                             f"({exc.strerror}); give an IP address") from None
        family, _, _, _, addr = info[0]

        class Server(_Server):
            address_family = family

        try:
            server = Server((str(addr[0]), port), _Handler)
        except OSError as exc:
            raise ServeError(f"cannot listen on {where}: {_why(exc)}") from None
        server.set_app(wsgi)
        return cls(server)

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the port chosen, for port 0)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the socket; blocks until the serving thread is done."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


def _why(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return ("the port is in use (another vditui serve or exporter?); choose another with "
                "--listen HOST:PORT")
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no such address on this machine; use one of its own (or 0.0.0.0)"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need root); choose a port above 1024"
    return exc.strerror or str(exc)


# --------------------------------------------------------------------------- the command

#: The platform failures a restart would not mend: vditui serve stops and says so.
FATAL = (VdiAuthError, VdiTlsError)


async def start_engine(engine: Engine, retry: float) -> None:
    """Start ``engine``; while the platform cannot be read at all, keep trying every
    ``retry`` seconds (``/healthz`` says why meanwhile), except for a refused login or
    certificate, which raise."""
    said = False
    while True:
        try:
            await engine.start(watch=True)
            return
        except FATAL:
            raise
        except VdiError as exc:
            log.warning("platform not read at start, trying again in %.0f s: %s", retry,
                        platform_message(exc))
        finally:
            if engine.history_off and not said:  # once, even while the platform is down
                said = True
                print(f"vditui: warning: {engine.history_off}", file=sys.stderr, flush=True)
        await asyncio.sleep(retry)


async def run(args: argparse.Namespace, start: Launch) -> int:
    """The registry's entry: `cmd_serve` with the resolved settings."""
    return await cmd_serve(args, start.settings, list(start.warnings))


async def cmd_serve(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO | None = None) -> int:
    """Serve until a signal says stop; OK then, FAILED when it cannot listen or log in."""
    err = out or sys.stderr
    host, port = getattr(args, "listen", None) or parse_listen(DEFAULT_LISTEN)
    shard = Shard(tuple(getattr(args, "pool", ())), tuple(getattr(args, "hosts", ())))
    settings = replace(settings, shard=shard)
    state = MetricsState(2 * settings.refresh_interval + settings.call_timeout)
    engine = Engine(settings)
    engine.listen(state.on_event)
    try:
        http = HttpServer.bind(host, port, app(state, make_wsgi_app(registry(state))))
    except ServeError as exc:
        print(f"vditui: {exc}", file=err)
        return ExitCode.FAILED
    http.start()
    where = show(*http.address)
    log.info("serving on http://%s/metrics", where)
    print(f"vditui: serving http://{where}/metrics and /healthz for {settings.url} "
          f"({shard.describe()}); "
          f"log: {display_path(log_dir() / 'vditui.log')}", file=err, flush=True)
    if beyond_loopback(host):
        print(f"vditui: warning: listening on {where}, reachable from other machines: /metrics "
              "names the platform, hosts and VMs to whoever connects (firewall it, or "
              "--listen 127.0.0.1:PORT)", file=err, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    before = {s: signal.getsignal(s) for s in signals}
    for s in signals:
        loop.add_signal_handler(s, stop.set)
    runner = asyncio.create_task(start_engine(engine, settings.refresh_interval))
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            runner.result()  # a fatal platform failure raises here
            await waiter
        log.info("stopping")
    finally:
        for t in (runner, waiter):
            t.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await asyncio.to_thread(http.close)
        await engine.stop()
        for s in signals:
            loop.remove_signal_handler(s)
            signal.signal(s, before[s])
    return ExitCode.OK
