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
certtool), the lab serves that host over tcp instead and says so, once, in a log warning, in
:attr:`Lab.fallbacks` and in :meth:`Lab.describe`; never silently.

Drivers: a host with ``driver = "qemu"`` is a real privileged libvirtd with the QEMU driver and
real diskless guests (:mod:`vditui.lab.qemu`). A real site runs one driver everywhere; in a lab
mixing both, a test-driver URI would open the stock test driver that every libvirtd also
carries, so qemu hosts answer on a port of their own, :data:`QEMU_PORT`, and
:attr:`Lab.uri_templates` lists one template per driver in use, qemu first (a test host
refuses the qemu port at once, and the other way round; a hanging qemu host then reports the
test port's refusal, the price of mixing drivers in one lab). Where QEMU cannot run, those
hosts are served by the test driver instead, said in one log line and kept in
:attr:`Lab.fallbacks`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import libvirt

from vditui.lab.daemon import LabError, LibvirtDaemon, free_port
from vditui.lab.proxy import FaultProxy, ProxyHub
from vditui.lab.qemu import QemuDaemon, domain_type, guest_xml, unavailable
from vditui.lab.scenario import HostSpec, Scenario, VmSpec
from vditui.lab.sshd import LabSshd, find_sshd
from vditui.lab.sshd import _tool as ssh_tool
from vditui.lab.tls import LabPki
from vditui.lab.vdi_server import VdiServer

log = logging.getLogger("vditui.lab")

LIBVIRT_PORT = 16509
LIBVIRT_TLS_PORT = 16514
QEMU_PORT = 16510
VDI_PORT = 8088
URI_TEMPLATE = "test+tcp://{ip}/default"
QEMU_URI_TEMPLATE = f"qemu+tcp://{{ip}}:{QEMU_PORT}/system"
#: Guests started at once across the lab: each start keeps a core busy for a moment.
GUEST_STARTS = threading.Semaphore(2)
#: libvirt state name -> VDI DomainVO.status the platform would record for it
VDI_STATUS_FOR = {"running": 1, "shutoff": 0, "paused": 2}


def _quiet_libvirt() -> None:
    # libvirt's default handler prints every error to stderr; the lab reports through exceptions.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def domain_xml(vm: VmSpec) -> str:
    v = vm.virt
    assert v is not None
    cur_kib = (v.current_memory_mb or v.memory_mb) * 1024
    return (f"<domain type='test'><name>{escape(vm.name)}</name><uuid>{vm.uuid}</uuid>"
            f"<memory unit='KiB'>{v.memory_mb * 1024}</memory>"
            f"<currentMemory unit='KiB'>{cur_kib}</currentMemory>"
            f"<vcpu current='{v.vcpu}'>{v.vcpu_max or v.vcpu}</vcpu>"
            "<os><type>hvm</type></os></domain>")


@dataclass
class LabHost:
    """One simulated hypervisor: its scenario entry, address, daemon and fault proxy."""

    spec: HostSpec
    ip: str
    daemon: LibvirtDaemon
    proxy: FaultProxy | None = None
    sshd: LabSshd | None = None  # only when the scenario lists "ssh" for this host
    pki: LabPki | None = None  # only when the scenario lists "tls" for this host
    tls_proxy: FaultProxy | None = None
    conn: Any = None  # the lab's own libvirt connection (libvirt.virConnect)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: What the host really serves: the scenario's transports, or ("tcp",) after a fallback.
    transports: tuple[str, ...] = ()
    fallback: str = ""  # one line saying why the host is served over tcp instead, or ""

    def __post_init__(self) -> None:
        self.transports = self.transports or self.spec.transports

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def proxies(self) -> list[FaultProxy]:
        return [p for p in (self.proxy, self.tls_proxy) if p is not None]

    @property
    def client_uri(self) -> str:
        """The URI that reaches this host with what it really serves: tcp, else tls with the
        lab's certificates, else ssh with the lab's key."""
        if "tcp" in self.transports:
            return self.uri
        return self.tls_uri if "tls" in self.transports else self.ssh_uri

    def _need_pki(self) -> LabPki:
        if self.pki is None:
            raise LabError(f"host {self.name!r} is not served over tls (it serves: "
                           f"{', '.join(self.transports)}){self._why_not()}")
        return self.pki

    def _why_not(self) -> str:
        return f"; {self.fallback}" if self.fallback else ""

    @property
    def tls_uri(self) -> str:
        """``driver+tls://IP/path?pkipath=DIR``, DIR holding the lab's CA and a client
        certificate the host accepts."""
        return self.tls_uri_with(self._need_pki().client_dir)

    def tls_uri_with(self, pkipath: str | Path | None) -> str:
        """The TLS URI with another pkipath: a :meth:`LabPki.variant` name, a directory, or
        None for none at all (libvirt then looks in /etc/pki)."""
        pki = self._need_pki()
        if isinstance(pkipath, str) and "/" not in pkipath:
            pkipath = pki.variant(pkipath)
        query = f"pkipath={quote(str(pkipath), safe='/')}" if pkipath is not None else ""
        return self.daemon.uri_for("tls", self.ip, query=query)

    @property
    def driver(self) -> str:
        """The driver really serving this host (``test`` where a qemu host fell back)."""
        return self.daemon.driver

    @property
    def port(self) -> int:
        """Where its fault proxy listens: libvirt's default port, or :data:`QEMU_PORT`."""
        return QEMU_PORT if self.driver == "qemu" else LIBVIRT_PORT

    @property
    def uri(self) -> str:
        """The URI a client uses: through the fault proxy."""
        return (QEMU_URI_TEMPLATE if self.driver == "qemu" else URI_TEMPLATE).format(ip=self.ip)

    def xml(self, vm: VmSpec) -> str:
        """``vm``'s domain XML for this host's driver."""
        return guest_xml(vm, domain_type()) if self.driver == "qemu" else domain_xml(vm)

    def _need_sshd(self) -> LabSshd:
        if self.sshd is None:
            raise LabError(f"host {self.name!r} is not served over ssh (its transports: "
                           f"{', '.join(self.spec.transports)}); add \"ssh\" to them"
                           f"{self._why_not()}")
        return self.sshd

    @property
    def socket_path(self) -> Path:
        """The host's libvirtd unix socket, which the ssh transport relays to (``nc -U``)."""
        return self.daemon.dir / "run" / "libvirt-sock"

    @property
    def ssh_uri(self) -> str:
        """``test+ssh://USER@IP:PORT/default?keyfile=...&socket=...&proxy=netcat&no_tty=1&
        command=...``: the lab's key, and an ssh wrapper that verifies the lab's host key."""
        return self._need_sshd().uri(self.socket_path, self.daemon.uri_path, self.driver)

    @property
    def ssh_uri_without_key(self) -> str:
        """:attr:`ssh_uri` without ``keyfile=`` and with a wrapper offering no identity at all
        (no default keys, no agent): fails with ssh's "Permission denied (publickey)"."""
        return self._need_sshd().uri(self.socket_path, self.daemon.uri_path, self.driver,
                                     keyfile=False)


def _ssh_unavailable() -> str:
    """Why the lab cannot serve ssh here ("" when it can): the tools it runs are missing."""
    try:
        find_sshd()
        for tool, package in (("ssh", "openssh-client"), ("ssh-keygen", "openssh-client"),
                              ("nc", "netcat-openbsd")):
            ssh_tool(tool, package)
    except LabError as exc:
        return str(exc)
    return ""


def _claim_subnet(hosts: int, fixed: str | None = None) -> tuple[str, socket.socket]:
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


class Lab:
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
        self._chaos: Any = None
        #: host name -> the line saying what the lab could not serve as asked (empty: all)
        self.fallbacks: dict[str, str] = {}
        self._qemu_missing: dict[str, str] = {}  # qemu host -> why not

    # ------------------------------------------------------------------ addresses and secrets
    @property
    def vdi_url(self) -> str:
        return f"http://{self.prefix}.1:{VDI_PORT}"

    @property
    def username(self) -> str:
        return self.scenario.vdi.username

    @property
    def password(self) -> str:
        return self.scenario.vdi.password

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
        third = int(self.prefix.rsplit(".", 1)[1]) + index // 240
        return f"{self.prefix.rsplit('.', 1)[0]}.{third}.{10 + index % 240}"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Lab:
        _quiet_libvirt()
        self.prefix, claim = _claim_subnet(len(self.scenario.hosts), self.subnet)
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

    def _make_host(self, spec: HostSpec, ip: str, why_not_qemu: str | None) -> LabHost:
        qemu = spec.driver == "qemu" and why_not_qemu is None
        if spec.driver == "qemu" and why_not_qemu is not None:
            self._fall_back(spec.name, why_not_qemu)
        daemon_class = QemuDaemon if qemu else LibvirtDaemon
        missing = {"ssh": _ssh_unavailable, "tls": self._tls_unavailable}
        lacking = [f"{t} ({why})" for t in spec.transports if t in missing
                   if (why := missing[t]())]
        if lacking:
            line = (f"{spec.name}: cannot serve {', '.join(lacking)}; serving it over tcp "
                    "instead")
            log.warning("lab: %s", line)
            self._note_fallback(spec.name, line)
            return LabHost(spec, ip, daemon_class(spec.name, self.workdir, ip),
                           transports=("tcp",), fallback=line)
        files = None
        if "tls" in spec.transports:
            assert self.pki is not None
            files = self.pki.server(spec.name, ip)
        h = LabHost(spec, ip, daemon_class(spec.name, self.workdir, ip, tls=files))
        h.pki = self.pki if files is not None else None
        return h

    def _note_fallback(self, host: str, line: str) -> None:
        """Keep one line per host in :attr:`fallbacks`, joining a host's several causes."""
        old = self.fallbacks.get(host)
        self.fallbacks[host] = f"{old}; {line}" if old else line

    def _tls_unavailable(self) -> str:
        """Why the lab cannot serve TLS ("" when it can); makes the lab's CA the first time."""
        if self.pki is None:
            try:
                self.pki = LabPki(self.workdir / "pki").make()
            except LabError as exc:
                return str(exc)
        return ""

    def _try_bring_up(self, h: LabHost) -> LabError | None:
        """Bring a host up; a qemu host that cannot start is handed back for the fallback."""
        try:
            self._bring_up(h)
        except LabError as exc:
            if h.driver != "qemu":
                raise
            h.daemon.stop()
            self._fall_back(h.name, f"its QEMU libvirtd failed ({exc})")
            return exc
        return None

    def _serve_with_test_driver(self, h: LabHost) -> None:
        h.conn = None
        h.daemon = LibvirtDaemon(h.name, self.workdir, h.ip, tls=h.daemon.tls)
        h.daemon.start()
        self._bring_up(h)

    def _fall_back(self, host: str, why: str) -> None:
        self._qemu_missing[host] = why
        self._note_fallback(host, f"{host}: QEMU unavailable ({why}); served by the test driver")

    def fallback_line(self) -> str:
        """Which qemu hosts the test driver serves, and why, in one line ('' if none)."""
        hosts = [n for n in self.hosts if n in self._qemu_missing]
        reasons = dict.fromkeys(self._qemu_missing[n] for n in hosts)
        return f"{', '.join(hosts)}: {'; '.join(reasons)}" if reasons else ""

    def _bring_up(self, h: LabHost) -> None:
        h.daemon.wait_ready()
        if h.sshd is not None:
            try:
                h.sshd.wait_ready()
            except LabError as exc:
                raise LabError(f"{h.name}: {exc}") from None
        h.conn = self._connect(h)
        self._populate(h)
        try:
            h.proxy = self.hub.add((h.ip, h.port), (h.ip, h.daemon.port), name=h.name)
        except OSError as exc:
            raise LabError(f"{h.name}: cannot listen on {h.ip}:{h.port}: {exc}") from None
        if h.daemon.tls_port is not None:
            try:
                h.tls_proxy = self.hub.add((h.ip, LIBVIRT_TLS_PORT), (h.ip, h.daemon.tls_port),
                                           name=f"{h.name}-tls")
            except OSError as exc:
                raise LabError(f"{h.name}: cannot listen on {h.ip}:{LIBVIRT_TLS_PORT}: "
                               f"{exc}") from None
        self._set_mode(h, h.spec.fault if h.spec.fault != "none" else "pass")

    @staticmethod
    def _set_mode(h: LabHost, mode: str) -> None:
        # A transport the host does not serve stays refused, whatever fault comes and goes.
        assert h.proxy is not None
        h.proxy.set_mode(mode if mode != "pass" or "tcp" in h.transports else "refuse")
        if h.tls_proxy is not None:
            h.tls_proxy.set_mode(mode)

    def _connect(self, h: LabHost) -> Any:
        try:
            conn = libvirt.open(h.daemon.uri)
        except libvirt.libvirtError as exc:
            raise LabError(f"{h.name}: cannot connect to its libvirtd at {h.daemon.uri}: "
                           f"{exc.get_error_message()}") from None
        return conn

    def _populate(self, h: LabHost) -> None:
        """Replace the test driver's stock domain with the scenario's domains for this host."""
        conn = h.conn
        for dom in conn.listAllDomains():
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        for vm in self.scenario.vms_on(h.name):
            dom = conn.defineXML(h.xml(vm))
            assert vm.virt is not None
            if vm.virt.state in ("running", "paused"):
                with GUEST_STARTS:
                    dom.create()
            if vm.virt.state == "paused":
                dom.suspend()

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
    def host(self, name: str) -> LabHost:
        try:
            return self.hosts[name]
        except KeyError:
            raise LabError(f"no host {name!r} in scenario {self.scenario.name!r}") from None

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
        h._need_pki()
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

    def crash(self, host: str, vm_uuid: str) -> str:
        """Kill a running guest's QEMU process from outside libvirt, as a crash would end it;
        libvirt records it as shut off (crashed). Returns the new state."""
        h = self.host(host)
        if not isinstance(h.daemon, QemuDaemon):
            raise LabError(f"host {host!r} runs no real guests (driver: {h.driver}); "
                           "only a qemu host's guests can crash")
        try:
            h.daemon.kill_guest(self.domain(host, vm_uuid).name())
        except ProcessLookupError as exc:
            raise LabError(str(exc)) from None
        deadline = time.monotonic() + 10
        while (state := self.virt_state(host, vm_uuid)) == "running" \
                and time.monotonic() < deadline:
            time.sleep(0.02)  # libvirt notices the monitor's EOF a moment later
        return state

    # ------------------------------------------------------------------ changing VMs
    def vm(self, name: str) -> VmSpec:
        for v in self.scenario.vms:
            if v.name == name:
                return v
        raise LabError(f"no VM {name!r} in scenario {self.scenario.name!r}")

    def domain(self, host: str, vm_uuid: str) -> Any:
        h = self.host(host)
        return h.conn.lookupByUUIDString(vm_uuid)

    def virt_state(self, host: str, vm_uuid: str) -> str:
        """libvirt's state of a VM right now, by the lab's own connection."""
        code = self.domain(host, vm_uuid).state()[0]
        return {1: "running", 3: "paused", 5: "shutoff"}.get(code, f"state-{code}")

    def act(self, host: str, vm_uuid: str, action: str) -> str:
        """Change a VM through libvirt: start, destroy, suspend, resume. Returns the new state."""
        dom = self.domain(host, vm_uuid)
        ops = {"start": dom.create, "destroy": dom.destroy, "suspend": dom.suspend,
               "resume": dom.resume, "crash": lambda: self.crash(host, vm_uuid)}
        try:
            op = ops[action]
        except KeyError:
            raise LabError(f"unknown action {action!r}; use {sorted(ops)}") from None
        with GUEST_STARTS if action == "start" else contextlib.nullcontext():
            op()
        return self.virt_state(host, vm_uuid)

    def define(self, host: str, vm: VmSpec, start: bool = False) -> None:
        h = self.host(host)
        dom = h.conn.defineXML(h.xml(vm))
        if start:
            with GUEST_STARTS:
                dom.create()

    def undefine(self, host: str, vm_uuid: str) -> None:
        dom = self.domain(host, vm_uuid)
        if dom.isActive():
            dom.destroy()
        dom.undefine()

    def follow_vdi(self, vm_uuid: str, state: str) -> None:
        """Make the platform record ``state`` (a libvirt state name) for a VM."""
        assert self.vdi is not None
        self.vdi.set_vm_status(vm_uuid, VDI_STATUS_FOR.get(state, 5))

    def chaos(self, rate: float = 1.0, lag: float | None = None, seed: int | None = None) -> Any:
        """Start changing VM states at ``rate`` per second; the platform follows after ``lag``
        seconds (the scenario's lag by default), or never when ``lag`` is negative."""
        from vditui.lab.chaos import Chaos

        if self._chaos is not None:
            self._chaos.stop()
        self._chaos = Chaos(self, rate=rate,
                            lag=self.scenario.vdi.lag if lag is None else lag, seed=seed)
        self._chaos.start()
        return self._chaos

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
            if h.driver == "qemu":
                extra += "  [qemu]"
            if not extra and "tcp" not in h.transports:
                extra = "  [no tcp: refused]"
            n = len(self.scenario.vms_on(h.name))
            lines.append(f"  {h.name:<12} {h.uri:<{width}} {n:>4} domains{extra}")
            if h.sshd is not None:
                lines.append(f"  {'':<12} ssh: {h.ssh_uri}")
            if h.pki is not None:
                lines.append(f"  {'':<12} tls: {h.tls_uri}")
            if h.fallback:
                lines.append(f"  {'':<12} FALLBACK: {h.fallback}")
        return "\n".join(lines)
