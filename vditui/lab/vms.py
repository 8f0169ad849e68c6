"""Changing a lab's VMs through libvirt, as an operator or a crash would: start, destroy,
suspend, resume, a qemu guest's QEMU killed from outside libvirt, domains defined and
undefined, the platform made to follow, and chaos doing all that over time."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from vditui.lab.bringup import GUEST_STARTS
from vditui.lab.chaos import Chaos
from vditui.lab.daemon import LabError
from vditui.lab.host import LabHost
from vditui.lab.qemu import QemuDaemon
from vditui.lab.scenario import Scenario, VmSpec
from vditui.lab.vdi_server import VdiServer

#: libvirt state name -> VDI DomainVO.status the platform would record for it
VDI_STATUS_FOR = {"running": 1, "shutoff": 0, "paused": 2}


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

    def chaos(self, rate: float = 1.0, lag: float | None = None, seed: int | None = None) -> Chaos:
        """Start changing VM states at ``rate`` per second; the platform follows after ``lag``
        seconds (the scenario's lag by default), or never when ``lag`` is negative."""
        if self._chaos is not None:
            self._chaos.stop()
        self._chaos = Chaos(self, rate=rate,
                            lag=self.scenario.vdi.lag if lag is None else lag, seed=seed)
        self._chaos.start()
        return self._chaos
