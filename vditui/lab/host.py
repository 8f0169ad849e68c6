"""One lab host as a client sees it: its address, daemon, proxies and the URIs that reach it.

Ports: a test-driver host's tcp proxy answers on libvirt's default port, :data:`LIBVIRT_PORT`;
a qemu host's on :data:`QEMU_PORT`, because every libvirtd also carries libvirt's built-in test
driver and a lab mixing drivers must not let a test-driver URI open the stock test driver of a
qemu host (see :mod:`vditui.lab.lab`). TLS has one port for both, :data:`LIBVIRT_TLS_PORT`: the
URI's driver picks the driver there, so ``qemu+tls://IP/system?pkipath=...`` (what
:attr:`LabHost.tls_uri` gives for a qemu host) opens QEMU's, and a ``test+tls://IP/default`` URI
to the same host would open the stock test driver, with its one ``test`` domain.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from vditui.lab.daemon import LabError, LibvirtDaemon
from vditui.lab.proxy import FaultProxy
from vditui.lab.qemu import domain_type, guest_xml
from vditui.lab.scenario import HostSpec, VmSpec
from vditui.lab.sshd import LabSshd
from vditui.lab.tls import LabPki

LIBVIRT_PORT = 16509
LIBVIRT_TLS_PORT = 16514
QEMU_PORT = 16510
URI_TEMPLATE = "test+tcp://{ip}/default"
QEMU_URI_TEMPLATE = f"qemu+tcp://{{ip}}:{QEMU_PORT}/system"


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
    mode: str = "pass"  # the fault the lab gives it: pass, refuse or hang

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

    def need_pki(self) -> LabPki:
        """The host's PKI; LabError naming the host when it is not served over TLS."""
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
        return self.tls_uri_with(self.need_pki().client_dir)

    def tls_uri_with(self, pkipath: str | Path | None) -> str:
        """The TLS URI with another pkipath: a :meth:`LabPki.variant` name, a directory, or
        None for none at all (libvirt then looks in /etc/pki)."""
        pki = self.need_pki()
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
        """``DRIVER+ssh://USER@IP:PORT/PATH?keyfile=...&socket=...&proxy=netcat&no_tty=1&
        command=...``: the lab's key, and an ssh wrapper that verifies the lab's host key."""
        return self._need_sshd().uri(self.socket_path, self.daemon.uri_path, self.driver)

    @property
    def ssh_uri_without_key(self) -> str:
        """:attr:`ssh_uri` without ``keyfile=`` and with a wrapper offering no identity at all
        (no default keys, no agent): fails with ssh's "Permission denied (publickey)"."""
        return self._need_sshd().uri(self.socket_path, self.daemon.uri_path, self.driver,
                                     keyfile=False)

