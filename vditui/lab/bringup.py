"""Bringing a lab's hosts up: each host's daemon for its driver and transports, the fallbacks
where the machine cannot serve what the scenario asks, and the scenario's domains defined on it.

Fallbacks: where the machine cannot serve a host's ssh (no sshd, ssh or nc) or tls (no
certtool), the host is served over tcp instead; where QEMU cannot run (or a qemu host's daemon
fails to start), the test driver serves it, keeping the host's transports and TLS files. Either
way the lab says so, never silently: one line per host in :attr:`HostSetup.fallbacks` (a host's
several causes joined with "; "), a log warning, and :meth:`vditui.lab.lab.Lab.describe`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

import libvirt

from vditui.lab.daemon import LabError, LibvirtDaemon
from vditui.lab.host import LIBVIRT_TLS_PORT, LabHost
from vditui.lab.proxy import ProxyHub
from vditui.lab.qemu import QemuDaemon
from vditui.lab.scenario import HostSpec, Scenario
from vditui.lab.sshd import _tool as ssh_tool
from vditui.lab.sshd import find_sshd
from vditui.lab.tls import LabPki

log = logging.getLogger("vditui.lab")

#: Guests started at once across the lab: each start keeps a core busy for a moment.
GUEST_STARTS = threading.Semaphore(2)


class _NotTheHypervisor(LabError):
    """A host failed to come up for a reason the test driver would not fix (its sshd, its
    proxies' addresses): no fallback, the lab stops and says why."""


def quiet_libvirt() -> None:
    # libvirt's default handler prints every error to stderr; the lab reports through exceptions.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


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


class HostSetup:
    """The part of :class:`vditui.lab.lab.Lab` that makes and brings up hosts."""

    scenario: Scenario
    workdir: Path
    hosts: dict[str, LabHost]
    hub: ProxyHub
    pki: LabPki | None
    #: host name -> the line saying what the lab could not serve as asked (empty: all)
    fallbacks: dict[str, str]
    _qemu_missing: dict[str, str]  # qemu host -> why not

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
        """Bring a host up; a qemu host that cannot start (its daemon, or a guest) is handed back
        for the fallback."""
        try:
            self._bring_up(h)
        except (LabError, libvirt.libvirtError) as exc:
            if h.driver != "qemu" or isinstance(exc, _NotTheHypervisor):
                raise
            if h.conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    h.conn.close()
                h.conn = None
            h.daemon.stop()
            why = exc.get_error_message() if isinstance(exc, libvirt.libvirtError) else str(exc)
            self._fall_back(h.name, f"its QEMU libvirtd failed ({why})")
            return LabError(why)
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
                raise _NotTheHypervisor(f"{h.name}: {exc}") from None
        h.conn = self._connect(h)
        self._populate(h)
        try:
            h.proxy = self.hub.add((h.ip, h.port), (h.ip, h.daemon.port), name=h.name)
        except OSError as exc:
            raise _NotTheHypervisor(f"{h.name}: cannot listen on {h.ip}:{h.port}: {exc}") \
                from None
        if h.daemon.tls_port is not None:
            try:
                h.tls_proxy = self.hub.add((h.ip, LIBVIRT_TLS_PORT), (h.ip, h.daemon.tls_port),
                                           name=f"{h.name}-tls")
            except OSError as exc:
                raise _NotTheHypervisor(f"{h.name}: cannot listen on {h.ip}:"
                                        f"{LIBVIRT_TLS_PORT}: {exc}") from None
        self._set_mode(h, h.spec.fault if h.spec.fault != "none" else "pass")

    @staticmethod
    def _set_mode(h: LabHost, mode: str) -> None:
        # A transport the host does not serve stays refused, whatever fault comes and goes.
        assert h.proxy is not None
        h.mode = mode
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
