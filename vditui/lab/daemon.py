"""One real ``libvirtd`` per simulated hypervisor, serving libvirt's test driver over TCP.

Each daemon gets its own config, socket dir, pid file and log under the lab's work dir, listens
unauthenticated on its own loopback address, and is told to die with its parent (Linux
``PR_SET_PDEATHSIG``) so a crashed test run leaves no daemon behind.

``LIBVIRT_DRIVER_DIR`` points at an empty directory: libvirtd then loads no hypervisor driver
module (the QEMU one fails without QEMU), leaving the built-in test driver, which serves
``test+tcp://IP:PORT/default``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vditui.lab.errors import LabError

if TYPE_CHECKING:
    from vditui.lab.tls import ServerFiles


def find_libvirtd() -> str:
    path = shutil.which("libvirtd") or next(
        (p for p in ("/usr/sbin/libvirtd", "/sbin/libvirtd") if os.access(p, os.X_OK)), None)
    if path is None:
        raise LabError(
            "libvirtd not found: install it with "
            "`sudo apt-get install --no-install-recommends libvirt-daemon` (or run `make setup`)")
    return path


def free_port(ip: str) -> int:
    """A TCP port free on ``ip`` now (the daemon binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setpgrp()  # a Ctrl-C meant for the lab's command is not delivered to the daemon too


class LibvirtDaemon:
    """A libvirtd process listening on ``ip:port`` (TCP, no auth), and with ``tls`` also on
    ``ip:tls_port`` (TLS: client certificates from the lab's CA, names on its allowed list);
    it serves the test driver (:class:`vditui.lab.qemu.QemuDaemon` serves QEMU's)."""

    #: The driver's URI scheme and path, for every URI to this daemon whatever the transport.
    driver = "test"
    uri_path = "/default"

    def __init__(self, name: str, workdir: Path, ip: str, port: int | None = None,
                 tls: ServerFiles | None = None, clients: int = 1000) -> None:
        self.name = name
        #: Connections it must accept at once: one daemon serving a whole fleet needs more.
        self.clients = clients
        self.dir = workdir / name
        self.ip = ip
        self.port = port or free_port(ip)
        self.tls = tls
        self.tls_port = free_port(ip) if tls is not None else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.dir / "libvirtd.log"

    @property
    def uri(self) -> str:
        return self.uri_for("tcp", self.ip, self.port)

    def uri_for(self, transport: str, host: str, port: int | None = None, query: str = "") -> str:
        """``driver+transport://host[:port]/path[?query]`` for this daemon's driver."""
        where = f"{host}:{port}" if port else host
        return f"{self.driver}+{transport}://{where}{self.uri_path}" + (f"?{query}" if query
                                                                       else "")

    def _tls_config(self) -> str:
        if self.tls is None:
            return "listen_tls = 0\n"
        allowed = ", ".join(f'"{dn}"' for dn in self.tls.allowed_dn)
        return ("listen_tls = 1\n"
                f'tls_port = "{self.tls_port}"\n'
                f'key_file = "{self.tls.key}"\n'
                f'cert_file = "{self.tls.cert}"\n'
                f'ca_file = "{self.tls.ca}"\n'
                f"tls_allowed_dn_list = [{allowed}]\n"
                'auth_tls = "none"\n')

    def _write_config(self) -> Path:
        for sub in ("run", "drivers", "config", "cache", "state"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        conf = self.dir / "libvirtd.conf"
        conf.write_text(
            self._tls_config() +
            "listen_tcp = 1\n"
            f'listen_addr = "{self.ip}"\n'
            f'tcp_port = "{self.port}"\n'
            'auth_tcp = "none"\n'
            'auth_unix_rw = "none"\n'
            'auth_unix_ro = "none"\n'
            f'unix_sock_dir = "{self.dir / "run"}"\n'
            f'log_outputs = "3:file:{self.log_path}"\n'
            f"max_clients = {max(5000, 2 * self.clients)}\n"
            f"max_anonymous_clients = {self.clients}\n"
            f"max_queued_clients = {self.clients}\n"
            "max_workers = 20\n"
            "max_client_requests = 50\n"
            "keepalive_interval = 5\n",
            encoding="utf-8")
        return conf

    def _command(self, binary: str, conf: Path) -> list[str]:
        return [binary, "--listen", "-f", str(conf), "-p", str(self.dir / "libvirtd.pid")]

    def start(self) -> None:
        binary = find_libvirtd()
        conf = self._write_config()
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(self.dir),
            "LIBVIRT_DRIVER_DIR": str(self.dir / "drivers"),
            "XDG_CONFIG_HOME": str(self.dir / "config"),
            "XDG_CACHE_HOME": str(self.dir / "cache"),
            "XDG_RUNTIME_DIR": str(self.dir / "run"),
            "XDG_STATE_HOME": str(self.dir / "state"),
            "LANG": "C",
        }
        out = open(self.dir / "stderr.log", "wb")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                self._command(binary, conf), env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=out, preexec_fn=_die_with_parent, close_fds=True)
        except OSError as exc:
            raise LabError(f"{self.name}: cannot run {binary}: {exc}") from None
        finally:
            out.close()

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Block until the daemon accepts TCP connections; on failure, say why and stop it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise LabError(f"{self.name}: libvirtd exited at start: {self._why()}")
            try:
                for port in (self.port, self.tls_port):
                    if port is not None:
                        socket.create_connection((self.ip, port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise LabError(f"{self.name}: libvirtd did not listen on {self.ip}:{self.port} within "
                       f"{timeout:.0f} s: {self._why()}")

    def _why(self) -> str:
        text = ""
        for f in (self.dir / "stderr.log", self.log_path):
            with contextlib.suppress(OSError):
                text += f.read_text(errors="replace")
        lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()]
        last = lines[-1] if lines else (text.strip().splitlines() or ["no message"])[-1]
        if "Address already in use" in text:
            return f"address {self.ip}:{self.port} already in use ({last})"
        if "Permission denied" in text:
            return f"permission denied ({last}); check that {self.dir} is writable"
        return last[-400:]

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Kill abruptly (SIGKILL), as a crashed daemon would go."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate a lab child, killing it if it has not gone within 5 s; None is fine."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
