"""The lab: real libvirtd hosts and a simulated VDI platform on loopback, built from a scenario.

Addressing: each lab claims a loopback /24 of its own (127.A.B.0, chosen at random and checked
free), so a second lab can run beside the first. The VDI platform answers at 127.A.B.1:8088 as
the real one does on port 8088; host *n* is 127.A.B.(10+n) and its libvirt answers on libvirt's
default TCP port 16509, through a fault proxy, so URIs look like a real site's:
``test+tcp://127.A.B.10/default``. Behind each proxy the host's own libvirtd listens on a free
port of the same address.

The lab holds one libvirt connection per host of its own (straight to the daemon, not through the
proxy): the test driver keeps its state only while a connection is open, and the lab changes VMs
through it (chaos, tests) without being affected by the faults it injects.

SSH: a host whose scenario ``transports`` list ``"ssh"`` also gets a private ``sshd`` on its own
address (port 2222, or a free one), letting the current user in with a lab-generated key only
(:mod:`vditui.lab.sshd`); libvirt's ssh transport then relays to the host's libvirtd socket with
``nc -U``. Its URIs are :attr:`LabHost.ssh_uri` (with the key) and
:attr:`LabHost.ssh_uri_without_key` (which fails as a host without the operator's key does). A
host without ``"tcp"`` keeps its TCP proxy refusing.

TLS: a host whose ``transports`` list ``"tls"`` gets a server certificate from the lab's CA
(:mod:`vditui.lab.tls`) and its libvirtd listens for TLS too, behind a second fault proxy on
libvirt's TLS port 16514: :attr:`LabHost.tls_uri` (``...+tls://IP/...?pkipath=DIR``) works,
:meth:`LabHost.tls_uri_with` gives the failing pkipaths, :meth:`Lab.tls_uri_wrong_name` a name
the certificate does not carry.

Fallbacks: where the machine cannot serve a host's ssh (no sshd, ssh or nc) or tls (no
certtool), the lab serves that host over tcp instead; where QEMU cannot run, the test driver
serves a qemu host. Either way it says so, in a log warning, in :attr:`Lab.fallbacks` (one line
per host) and in :meth:`Lab.describe`; never silently (:mod:`vditui.lab.bringup`).

Drivers: a host with ``driver = "qemu"`` is a real privileged libvirtd with the QEMU driver and
real diskless guests (:mod:`vditui.lab.qemu`). A real site runs one driver everywhere; in a lab
mixing both, a test-driver URI would open the stock test driver that every libvirtd also
carries, so qemu hosts answer on a port of their own, :data:`QEMU_PORT`, and
:attr:`Lab.uri_templates` lists one template per driver in use, qemu first (a test host
refuses the qemu port at once, and the other way round; a hanging qemu host then reports the
test port's refusal, the price of mixing drivers in one lab). Where QEMU cannot run, those
hosts are served by the test driver instead, said in one log line and kept in
:attr:`Lab.fallbacks`. TLS has no such port of its own: qemu and test hosts share 16514, and
the URI's driver picks the driver behind it, so a qemu host's :attr:`LabHost.tls_uri`,
``qemu+tls://IP/system?pkipath=DIR``, opens QEMU's driver, while a ``test+tls://IP/default`` URI
to the same host would open its stock test driver (one domain, ``test``), not its guests.

Platform actions: the simulated platform's start, close, reboot and sync-status change the
hosts' real libvirt domains through the lab's own connections (the lab hands itself to the
platform as its :class:`~vditui.lab.platform_actions.Hypervisors`), after
:attr:`VdiServer.action_delay <vditui.lab.vdi_server.VdiServer.action_delay>` seconds; faults on
request with :meth:`VdiServer.set_action_fault <vditui.lab.vdi_server.VdiServer.set_action_fault>`
(:mod:`vditui.lab.platform_actions`, :mod:`vditui.lab.action_faults`). A host made to refuse or
hang (:meth:`Lab.set_fault`) is out of the platform's reach too.

Modules: :mod:`vditui.lab.host` (a host's URIs and proxies), :mod:`vditui.lab.bringup` (making
hosts, fallbacks, domains defined), :mod:`vditui.lab.vms` (changing VMs, chaos, the platform's
hands on libvirt); this one starts, stops and breaks the whole.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt

from vditui.lab.bringup import HostSetup, quiet_libvirt
from vditui.lab.chaos import Chaos
from vditui.lab.daemon import LabError, free_port
from vditui.lab.front import VDI_PORT, PlatformFront
from vditui.lab.host import (
    LIBVIRT_PORT,
    LIBVIRT_TLS_PORT,
    QEMU_PORT,
    QEMU_URI_TEMPLATE,
    URI_TEMPLATE,
    LabHost,
)
from vditui.lab.proxy import FaultProxy, ProxyHub
from vditui.lab.qemu import unavailable
from vditui.lab.scenario import Scenario
from vditui.lab.sshd import LabSshd
from vditui.lab.tls import LabPki
from vditui.lab.vdi_server import VdiServer
from vditui.lab.vms import VDI_STATUS_FOR, VmOps

__all__ = ["LIBVIRT_PORT", "LIBVIRT_TLS_PORT", "QEMU_PORT", "VDI_PORT", "VDI_STATUS_FOR", "Lab",
           "LabHost"]

log = logging.getLogger("vditui.lab")


def claim_subnet(hosts: int, fixed: str | None = None) -> tuple[str, socket.socket]:
    """Pick a free loopback /24 (more for > 240 hosts) and hold the VDI port as the claim.
    ``fixed`` (e.g. "127.77.1") asks for one subnet, for reproducible screenshots."""
    rnd = random.SystemRandom()
    for _ in range(1 if fixed else 200):
        a, b = rnd.randint(20, 250), rnd.randint(0, 250 - hosts // 240)
        if fixed:
            a, b = (int(x) for x in fixed.split(".")[1:3])
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((f"127.{a}.{b}.1", VDI_PORT))
        except OSError:
            probe.close()
            continue
        return f"127.{a}.{b}", probe
    if fixed:
        raise LabError(f"subnet {fixed}.0/24 is in use (port {VDI_PORT} on {fixed}.1): "
                       "is another lab with the same fixed subnet running?")
    raise LabError("no free loopback subnet found for the lab (tried 200); is another lab running?")


def host_ip(prefix: str, index: int) -> str:
    """Host ``index``'s address in the lab claimed as ``prefix`` (127.A.B): 240 hosts per /24,
    from .10 up."""
    third = int(prefix.rsplit(".", 1)[1]) + index // 240
    return f"{prefix.rsplit('.', 1)[0]}.{third}.{10 + index % 240}"


class Lab(HostSetup, VmOps, PlatformFront):
    """Everything a scenario needs, started together and stopped together."""

    def __init__(self, scenario: Scenario, workdir: Path | None = None,
                 subnet: str | None = None) -> None:
        self.scenario = scenario
        self.subnet = subnet
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="vditui-lab-"))
        self.hosts: dict[str, LabHost] = {}
        self.hub = ProxyHub()
        self.vdi: VdiServer | None = None
        self.vdi_proxy: FaultProxy | None = None
        self.prefix = ""
        self.pki: LabPki | None = None
        self._started = False
        self._chaos: Chaos | None = None
        #: host name -> the line saying what the lab could not serve as asked (empty: all)
        self.fallbacks: dict[str, str] = {}
        self._qemu_missing: dict[str, str] = {}  # qemu host -> why not

    # ------------------------------------------------------------------ addresses
    @property
    def uri_template(self) -> str:
        """The first of :attr:`uri_templates`: the only one unless qemu and test hosts mix
        (then pass them all)."""
        return self.uri_templates[0]

    @property
    def uri_templates(self) -> tuple[str, ...]:
        """One URI template per driver the lab really serves; give them all to vditui, which
        tries a host's URIs in order. qemu comes first, as in vditui's own defaults; test last,
        so a test host that fails says why in its own URI's terms (a hanging host: timeout)."""
        drivers = {h.driver for h in self.hosts.values()} or {"test"}
        return tuple(t for d, t in (("qemu", QEMU_URI_TEMPLATE), ("test", URI_TEMPLATE))
                     if d in drivers)

    def host_ip(self, index: int) -> str:
        return host_ip(self.prefix, index)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Lab:
        quiet_libvirt()
        self.prefix, claim = claim_subnet(len(self.scenario.hosts), self.subnet)
        self._started = True
        try:
            self.hub.start()
            why_not_qemu = unavailable() if any(
                s.driver == "qemu" for s in self.scenario.hosts) else None
            for i, spec in enumerate(self.scenario.hosts):
                self.hosts[spec.name] = self._make_host(spec, self.host_ip(i),
                                                        why_not_qemu)
            for h in self.hosts.values():
                h.daemon.start()
                if "ssh" in h.transports:
                    # Started here, not in the pool below: a child dies with the thread that
                    # started it (PR_SET_PDEATHSIG), and pool threads end before the lab does.
                    h.sshd = LabSshd(h.daemon.dir / "ssh", h.ip)
                    try:
                        h.sshd.start()
                    except LabError as exc:
                        raise LabError(f"{h.name}: {exc}") from None
            workers = min(16, max(1, len(self.hosts)))
            with ThreadPoolExecutor(workers, thread_name_prefix="lab-start") as pool:
                hosts = list(self.hosts.values())
                errors = list(pool.map(self._try_bring_up, hosts))
            failed = [h for h, err in zip(hosts, errors, strict=True) if err is not None]
            for h in failed:  # started here, not in the pool: see the sshd above
                self._serve_with_test_driver(h)
            self.fallbacks = {n: self.fallbacks[n] for n in self.hosts if n in self.fallbacks}
            if self.fallback_line():
                log.warning("QEMU unavailable, test driver instead for %s", self.fallback_line())
            self.vdi = VdiServer(self.scenario, {n: h.ip for n, h in self.hosts.items()},
                                 address=f"{self.prefix}.1", port=0)
            self.vdi.actions.hypervisors = self  # the platform's actions change real libvirt
            self.vdi.start()
            claim.close()
            self.vdi_proxy = self.hub.add((f"{self.prefix}.1", VDI_PORT),
                                          (f"{self.prefix}.1", self.vdi.port), name="vdi")
        except BaseException:
            claim.close()
            self.stop()
            raise
        log.info("lab up: %s hosts at %s.x, VDI at %s", len(self.hosts), self.prefix, self.vdi_url)
        return self

    def stop(self) -> None:
        """Stop everything; safe to call twice and after a failed start."""
        if self._chaos is not None:
            self._chaos.stop()
            self._chaos = None
        self.hub.stop()
        if self.vdi is not None:
            self.vdi.stop()
        for h in self.hosts.values():
            if h.sshd is not None:
                h.sshd.stop()
            if h.conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    h.conn.close()
                h.conn = None
            h.daemon.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ faults
    def set_fault(self, host: str, mode: str) -> None:
        """``pass`` | ``refuse`` | ``hang`` for one host's libvirt (tcp and tls; a transport it
        does not serve stays refused), or ``vdi`` for the platform."""
        if host != "vdi":
            self._set_mode(self.host(host), mode)
            return
        assert self.vdi_proxy is not None
        self.vdi_proxy.set_mode(mode)

    def set_delay(self, ms: float, host: str | None = None) -> None:
        """Added round-trip delay for one host (``vdi`` for the platform), or everything."""
        if host is not None:
            proxies = [self.vdi_proxy] if host == "vdi" else self.host(host).proxies
            for p in proxies:
                assert p is not None
                p.set_delay(ms)
            return
        for p in [self.vdi_proxy, *(p for h in self.hosts.values() for p in h.proxies)]:
            if p is not None:
                p.set_delay(ms)

    def cut(self, host: str) -> None:
        proxies = [self.vdi_proxy] if host == "vdi" else self.host(host).proxies
        for p in proxies:
            assert p is not None
            p.cut()

    def tls_uri_wrong_name(self, host: str) -> str:
        """A TLS URI with the working pkipath that names the host ``localhost`` (through a
        proxy on 127.0.0.1): its certificate names only its IP, so the client refuses it."""
        h = self.host(host)
        h.need_pki()
        assert h.daemon.tls_port is not None
        port = free_port("127.0.0.1")
        self.hub.add(("127.0.0.1", port), (h.ip, h.daemon.tls_port), name=f"{h.name}-byname")
        return h.tls_uri.replace(f"://{h.ip}/", f"://localhost:{port}/", 1)

    def client_uris(self) -> dict[str, str]:
        """Host name -> the URI that reaches it, for every host not served over tcp (the tcp
        ones answer at :attr:`uri_template`)."""
        return {n: h.client_uri for n, h in self.hosts.items() if "tcp" not in h.transports}

    def kill_daemon(self, host: str) -> None:
        """Kill a host's libvirtd abruptly (its VMs' test-driver state goes with it)."""
        h = self.host(host)
        with h.lock:
            h.conn = None
            h.daemon.kill()

    def restart_daemon(self, host: str) -> None:
        """Start a host's daemon again on the same port (killing it first if it still runs).
        A test-driver host gets the scenario's domains again (its state died with it); a qemu
        host finds its guests as it left them, running ones still running, as a real one does."""
        h = self.host(host)
        with h.lock:
            h.conn = None
            h.daemon.kill()
            h.daemon.start()
            h.daemon.wait_ready()
            h.conn = self._connect(h)
            if h.driver != "qemu":
                self._populate(h)

    def describe(self) -> str:
        """What the lab serves, for `vditui lab up` (the password is the lab's own, on purpose:
        it is a throwaway credential an operator needs to log in to the simulator)."""
        lines = [f"VDI platform: {self.vdi_url}",
                 f"  user: {self.username}   password: {self.password}",
                 f"libvirt URI templates: {' '.join(self.uri_templates)}", "hosts:"]
        if self.fallback_line():
            lines.insert(3, f"QEMU unavailable, test driver instead for {self.fallback_line()}")
        width = max((len(h.uri) for h in self.hosts.values()), default=34)
        for h in self.hosts.values():
            extra = "" if h.spec.fault == "none" else f"  [fault: {h.spec.fault}]"
            if not extra and "tcp" not in h.transports:
                extra = "  [no tcp: refused]"
            if h.driver == "qemu":
                extra += "  [qemu]"
            elif h.name in self._qemu_missing:
                extra += "  [qemu: test driver instead]"
            n = len(self.scenario.vms_on(h.name))
            lines.append(f"  {h.name:<12} {h.uri:<{width}} {n:>4} domains{extra}")
            if h.sshd is not None:
                lines.append(f"  {'':<12} ssh: {h.ssh_uri}")
            if h.pki is not None:
                lines.append(f"  {'':<12} tls: {h.tls_uri}")
            if h.fallback:
                lines.append(f"  {'':<12} FALLBACK: {h.fallback}")
        return "\n".join(lines)
