"""Chaos: VM states change over time through libvirt, and the platform follows after a lag.

A single thread makes every change (start, destroy, suspend, resume, and on qemu hosts crash)
through the lab's own connections, at a steady rate, and schedules the platform's matching
update ``lag`` seconds later (or never, with a negative lag), which is how a real platform
trails its hypervisors. A crashed guest is shut off, so the platform follows with "off".
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Protocol

import libvirt

from vditui.lab.daemon import LabError

if TYPE_CHECKING:
    from vditui.lab.host import LabHost
    from vditui.lab.scenario import Scenario


class ChaosLab(Protocol):
    """What chaos needs of a lab (:class:`vditui.lab.lab.Lab` has it), so that this module does
    not import the lab that imports it."""

    scenario: Scenario
    hosts: dict[str, LabHost]

    def host(self, name: str) -> LabHost: ...
    def virt_state(self, host: str, vm_uuid: str) -> str: ...
    def act(self, host: str, vm_uuid: str, action: str) -> str: ...
    def follow_vdi(self, vm_uuid: str, state: str) -> None: ...

log = logging.getLogger("vditui.lab.chaos")

NEXT_ACTIONS = {
    "running": ("destroy", "suspend"),
    "paused": ("resume", "destroy"),
    "shutoff": ("start",),
}
#: On a qemu host a running guest may also crash (its QEMU killed from outside libvirt) ...
QEMU_NEXT_ACTIONS = {**NEXT_ACTIONS, "running": ("destroy", "suspend", "crash")}
#: ... and chaos starts no more real guests on one host than this (the machine has few cores).
QEMU_MAX_ACTIVE = 4


class Chaos:
    """Changes VM states at ``rate`` per second until stopped."""

    def __init__(self, lab: ChaosLab, rate: float, lag: float, seed: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("chaos rate must be positive (changes per second)")
        self.lab, self.rate, self.lag = lab, rate, lag
        self.rnd = random.Random(seed)
        self.changes = 0
        self.errors = 0
        self.states: dict[str, str] = {}
        self._vms = [(v.uuid, v.virt.host) for v in lab.scenario.vms
                     if v.virt is not None and lab.host(v.virt.host).spec.fault == "none"]
        self._qemu = {name for name, h in lab.hosts.items() if h.driver == "qemu"}
        self._pending: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-chaos", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> None:
        for vm_uuid, host in self._vms:
            self.states[vm_uuid] = self.lab.virt_state(host, vm_uuid)
        self._thread.start()

    def stop(self) -> None:
        """Stop changing VMs. Follow-ups still pending reach the platform now, so stopping never
        leaves the platform behind for good on the last changes (with a negative lag, none are
        pending)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._flush(float("inf"))

    def step(self) -> tuple[str, str] | None:
        """Make one change now; returns (vm uuid, new libvirt state), or None if none was made."""
        if not self._vms:
            return None
        vm_uuid, host = self.rnd.choice(self._vms)
        h = self.lab.host(host)
        with h.lock:
            if h.conn is None:
                return None
            qemu = host in self._qemu
            table = QEMU_NEXT_ACTIONS if qemu else NEXT_ACTIONS
            action = self.rnd.choice(table.get(self.states.get(vm_uuid, ""), ("start",)))
            if action == "start" and qemu and sum(
                    1 for u, host_ in self._vms if host_ == host
                    and self.states.get(u) in ("running", "paused")) >= QEMU_MAX_ACTIVE:
                return None
            try:
                new = self.lab.act(host, vm_uuid, action)
            except (libvirt.libvirtError, LabError) as exc:
                # The state moved under us (a test changed it): read it again and go on.
                self.errors += 1
                log.debug("chaos %s on %s failed: %s", action, vm_uuid, exc)
                with contextlib.suppress(libvirt.libvirtError):
                    self.states[vm_uuid] = self.lab.virt_state(host, vm_uuid)
                return None
        with self._lock:
            self.states[vm_uuid] = new
            self.changes += 1
            if self.lag >= 0:
                heapq.heappush(self._pending, (time.monotonic() + self.lag, vm_uuid, new))
        return vm_uuid, new

    def _flush(self, now: float) -> None:
        with self._lock:
            due = []
            while self._pending and self._pending[0][0] <= now:
                due.append(heapq.heappop(self._pending))
        for _, vm_uuid, state in due:
            self.lab.follow_vdi(vm_uuid, state)

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            self._flush(now)
            if now >= next_at:
                self.step()
                next_at += interval
                # Fall behind rather than burst forever if libvirt is slower than the rate.
                next_at = max(next_at, now - 1.0)
                continue
            wait = next_at - now
            if self._pending:
                wait = min(wait, max(0.0, self._pending[0][0] - now))
            self._stop.wait(min(wait, 0.1))
