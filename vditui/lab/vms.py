"""Changing a lab's VMs through libvirt, as an operator or a crash would: start, destroy,
suspend, resume, a qemu guest's QEMU killed from outside libvirt, domains defined and
undefined, the platform made to follow, and chaos doing all that over time; and the platform's
own actions (:class:`vditui.lab.platform_actions.Hypervisors`: what the simulated platform
does to libvirt when asked to start, close, reboot or sync a VM)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import libvirt

from vditui.lab.bringup import GUEST_STARTS
from vditui.lab.chaos import Chaos
from vditui.lab.daemon import LabError
from vditui.lab.host import LabHost
from vditui.lab.platform_actions import VDI_STATUS_FOR, HypervisorError
from vditui.lab.qemu import QemuDaemon
from vditui.lab.scenario import Scenario, VmSpec
from vditui.lab.vdi_server import VdiServer

__all__ = ["VDI_STATUS_FOR", "VmOps"]
_STATE_NAMES = {1: "running", 3: "paused", 5: "shutoff"}


class VmOps:
    """The part of :class:`vditui.lab.lab.Lab` that changes VMs, by the lab's own connections
    (straight to each daemon, not through the fault proxies)."""

    scenario: Scenario
    hosts: dict[str, LabHost]
    vdi: VdiServer | None
    _chaos: Chaos | None

    def host(self, name: str) -> LabHost:
        try:
            return self.hosts[name]
        except KeyError:
            raise LabError(f"no host {name!r} in scenario {self.scenario.name!r}") from None

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
        return _state_name(self.domain(host, vm_uuid))

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

    def stop_chaos(self) -> None:
        """Stop the chaos started by :meth:`chaos`, if any."""
        if self._chaos is not None:
            self._chaos.stop()
            self._chaos = None

    def chaos(self, rate: float = 1.0, lag: float | None = None, seed: int | None = None) -> Chaos:
        """Start changing VM states at ``rate`` per second; the platform follows after ``lag``
        seconds (the scenario's lag by default), or never when ``lag`` is negative."""
        if self._chaos is not None:
            self._chaos.stop()
        self._chaos = Chaos(self, rate=rate,
                            lag=self.scenario.vdi.lag if lag is None else lag, seed=seed)
        self._chaos.start()
        return self._chaos

    # ------------------------------------------------------------------ the platform's hands
    def _platform_host(self, name: str) -> LabHost:
        """A host as the platform reaches it: not when its libvirt is down or made to refuse or
        hang (the platform sits on the same network as vditui)."""
        h = self.hosts.get(name)
        if h is None:
            raise HypervisorError(f"主机不存在 (no host {name!r} in the lab)")
        if h.conn is None or not h.daemon.alive or h.mode != "pass":
            raise HypervisorError(f"主机连接失败 (cannot reach {name}'s libvirt)")
        return h

    def platform_op(self, host: str, vm_uuid: str, op: str) -> str:
        """What the platform does to a VM's libvirt domain: start (resume when paused),
        shutdown, destroy, reboot, reset. A start on a host that lacks the (shut-off) domain
        moves its definition there, as a start with ``hostId`` does. Returns libvirt's state
        afterwards."""
        h = self._platform_host(host)
        try:
            try:
                dom = h.conn.lookupByUUIDString(vm_uuid)
            except libvirt.libvirtError:
                if op != "start":
                    raise HypervisorError(f"虚机不在主机上 ({host}'s libvirt has no domain "
                                          f"{vm_uuid})") from None
                dom = self._move_to(h, vm_uuid)
            if op == "start" and _state_name(dom) == "paused":
                op = "resume"  # the platform's start of a suspended VM resumes it
            calls = {"start": dom.create, "resume": dom.resume, "shutdown": dom.shutdown,
                     "destroy": dom.destroy, "reboot": lambda: dom.reboot(0),
                     "reset": lambda: dom.reset(0)}
            with GUEST_STARTS if op == "start" else contextlib.nullcontext():
                calls[op]()
            return _state_name(dom)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{host}: {exc.get_error_message()}") from None

    def _move_to(self, h: LabHost, vm_uuid: str) -> Any:
        for other in self.hosts.values():
            if other is h or other.conn is None:
                continue
            try:
                old = other.conn.lookupByUUIDString(vm_uuid)
            except libvirt.libvirtError:
                continue
            if old.isActive():
                raise HypervisorError(f"虚机正在{other.name}上运行 (it runs on {other.name}; "
                                      "shut it down before starting it elsewhere)")
            spec = next((v for v in self.scenario.vms if v.uuid == vm_uuid), None)
            xml = h.xml(spec) if spec is not None and spec.virt is not None else old.XMLDesc()
            dom = h.conn.defineXML(xml)
            old.undefine()
            return dom
        raise HypervisorError(f"虚机不存在 (no libvirt host has domain {vm_uuid})")

    def platform_locate(self, vm_uuid: str, hint: str) -> tuple[str, str]:
        """(host, state) where libvirt has the VM, ``hint`` first; hosts the platform cannot
        reach are skipped (and named when the VM is found nowhere)."""
        order = [hint, *(n for n in self.hosts if n != hint)] if hint in self.hosts \
            else list(self.hosts)
        unreachable = []
        for name in order:
            try:
                h = self._platform_host(name)
            except HypervisorError:
                unreachable.append(name)
                continue
            try:
                return name, _state_name(h.conn.lookupByUUIDString(vm_uuid))
            except libvirt.libvirtError:
                continue
        also = f"; cannot reach {', '.join(unreachable)}" if unreachable else ""
        raise HypervisorError(f"虚机不存在 (no reachable libvirt host has domain {vm_uuid}"
                              f"{also})")

    def platform_host_domains(self, host: str) -> dict[str, str]:
        """UUID -> state of every domain on ``host``'s libvirt."""
        h = self._platform_host(host)
        try:
            return {d.UUIDString(): _state_name(d) for d in h.conn.listAllDomains()}
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{host}: {exc.get_error_message()}") from None


def _state_name(dom: Any) -> str:
    code = dom.state()[0]
    return _STATE_NAMES.get(code, f"state-{code}")
