"""What a lab scenario is made of: pools, hosts, VMs with their platform side and libvirt side,
and the vocabulary a scenario file may use (states, transports, drivers, faults, drift kinds).

Read and checked by :mod:`vditui.lab.scenario`; nothing here imports ``vditui.core``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

HOST_STATUS = {"maintenance": 0, "enabled": 1, "shutdown": 2, "offline": 3}
VM_STATUS = {"off": 0, "shutoff": 0, "running": 1, "suspended": 2, "busy": 5, "upgrading": 6}
VIRT_STATES = ("running", "shutoff", "paused")
TRANSPORTS = ("tcp", "ssh", "tls")
#: How a host's libvirtd serves its VMs: libvirt's built-in test driver, or real QEMU/KVM guests.
DRIVERS = ("test", "qemu")
#: Memory (MiB) a real guest on a qemu host may have while running or paused: diskless guests
#: idle in firmware, so a little is enough, and the lab runs beside everything else.
QEMU_RUNNING_MB = (32, 128)
HOST_FAULTS = ("none", "refuse", "hang")
#: Drift kinds a scenario may declare in ``expect`` (VM level) ...
VM_DRIFTS = ("only_in_vdi", "only_in_libvirt", "state", "vcpu", "memory", "placement", "duplicate")
#: ... and at host level.
HOST_DRIFTS = ("unreachable", "offline_but_reachable", "running_count")
#: What the platform says a VM is (DomainVO.isModel / isRecycle); ``desktop`` is neither.
VM_KINDS = ("desktop", "template", "recycled")
#: A bound user's session: none, a client connected now, or one that disconnected.
SESSIONS = ("", "connected", "disconnected")

_NS = uuid.UUID("5b0d3b1e-8d0c-4c67-9a53-7d1f0e0c1a11")


class ScenarioError(ValueError):
    """A scenario file is malformed: names the file, the line and the field."""

    def __init__(self, path: str, line: int | None, field_name: str, message: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field_name}: {message}")
        self.path, self.line, self.field_name, self.reason = path, line, field_name, message


@dataclass(frozen=True)
class PoolSpec:
    """A resource pool, and the desktop pool of the same name. ``switching``: the desktop pool
    is switching template (DesktopPoolVO.status 1)."""

    id: str
    name: str
    switching: bool = False


@dataclass(frozen=True)
class UserSpec:
    """A platform user (UserListVo). The lab makes up a national ID, phone and mail for each,
    so tests can prove vditui never shows or stores them."""

    login: str
    display_name: str


@dataclass(frozen=True)
class AlarmSpec:
    """A live platform alarm (AlarmVO) about ``host`` (a host name; "" for none)."""

    level: str
    module: str
    content: str
    host: str = ""


@dataclass(frozen=True)
class HostSpec:
    """A hypervisor host: its VDI record and how its libvirt behaves."""

    name: str
    pool: str
    id: str
    vdi_status: int = 1
    transports: tuple[str, ...] = ("tcp",)
    fault: str = "none"
    cpu_model: str = "Intel(R) Core(TM) i9-14900K"
    cpus: int = 32
    memory_gb: float = 125.47
    in_vdi: bool = True
    expect: tuple[str, ...] = ()
    driver: str = "test"
    #: Added to the platform's runningDomainCount: a counter that is out of step with libvirt.
    running_skew: int = 0


@dataclass(frozen=True)
class VdiSide:
    """The VM as the platform records it (DomainVO)."""

    id: str
    host: str
    status: int
    vcpu: int
    memory_mb: int
    kind: str = "desktop"  # one of VM_KINDS
    freeze: int = 0  # restore point: 0 none, 1 every boot, 2 daily, 3 weekly, 4 monthly
    mother: str = ""  # a linked clone's template (a VM name in the scenario)
    user: str = ""  # the bound user's login
    session: str = ""  # one of SESSIONS
    session_minutes: int = 120  # how long ago the session began (or ended)


@dataclass(frozen=True)
class VirtSide:
    """The VM as libvirt has it. ``vcpu`` is the vCPUs it runs with (``virsh dominfo``'s count,
    libvirt's *current*); ``vcpu_max`` the most it may be hot-plugged to (None: the same).
    ``memory_mb`` is its configured size (libvirt's maximum memory); ``current_memory_mb`` the
    balloon's target (None: the same)."""

    host: str
    state: str
    vcpu: int
    memory_mb: int
    vcpu_max: int | None = None
    current_memory_mb: int | None = None


@dataclass(frozen=True)
class VmSpec:
    name: str
    uuid: str
    vdi: VdiSide | None
    virt: VirtSide | None
    expect: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class VdiSettings:
    username: str = "admin"
    password: str = "lab-Pa55word!"
    token_ttl: float = 3600.0
    max_page_size: int = 100
    lag: float = 2.0
    #: GET /ocloud/v1/domain leaves out templates and the recycle bin (served only by
    #: GET /ocloud/v1/model, /recycle and /domain/{id}); the spec allows either.
    list_omits: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    pools: tuple[PoolSpec, ...] = ()
    hosts: tuple[HostSpec, ...] = ()
    vms: tuple[VmSpec, ...] = ()
    vdi: VdiSettings = field(default_factory=VdiSettings)
    users: tuple[UserSpec, ...] = ()
    alarms: tuple[AlarmSpec, ...] = ()

    def host(self, name: str) -> HostSpec:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def vms_on(self, host: str) -> list[VmSpec]:
        """VMs libvirt has on ``host``."""
        return [v for v in self.vms if v.virt is not None and v.virt.host == host]

    def with_vdi(self, **changes: Any) -> Scenario:
        return replace(self, vdi=replace(self.vdi, **changes))

    def without_driver(self, driver: str) -> Scenario:
        """This scenario without the hosts served by ``driver`` and the VMs on them (either
        side), under the same name: e.g. the test-driver part of the default scenario, for
        tests that start it often and leave real guests to tests of their own."""
        gone = {h.name for h in self.hosts if h.driver == driver}
        hosts = tuple(h for h in self.hosts if h.name not in gone)
        pools = {h.pool for h in hosts}
        vms = tuple(v for v in self.vms if (v.vdi is None or v.vdi.host not in gone)
                    and (v.virt is None or v.virt.host not in gone))
        return replace(self, hosts=hosts, vms=vms,
                       pools=tuple(p for p in self.pools if p.id in pools),
                       alarms=tuple(a for a in self.alarms if a.host not in gone))


def stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "/".join(parts)))

