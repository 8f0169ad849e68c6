"""A made-up estate for the scripted engine (:mod:`vditui.core.fake_engine`): what the platform
records and what each host's libvirt has, built in a few lines.

    estate = Estate()
    estate.host("hv-1", pool="Teaching")
    estate.vm("vm-a", "hv-1")                                  # both sides agree
    estate.vm("vm-b", "hv-1", vdi_status=VdiVmStatus.OFF)      # the platform says off
    estate.vm("stray", "hv-1", in_platform=False)              # only in libvirt
    estate.host("hv-2", state=ConnState.FAILED, error=refused("qemu+tcp://hv-2/system"))

Nothing is judged here: the engine compares these with the real rules
(:func:`vditui.core.reconcile.reconcile`), so drifts come out exactly as in production.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field, replace

from vditui.core.models import (
    ConnState,
    DesktopPool,
    Domain,
    HostView,
    VdiHost,
    VdiInventory,
    VdiVm,
    VdiVmStatus,
    VirtError,
    VirtErrorKind,
    VirtState,
)

_NS = uuidlib.UUID("0b7f8a52-63c4-4a43-9d7e-5f1b1f7e3a90")
_VDI_STATUS = {VirtState.RUNNING: VdiVmStatus.RUNNING, VirtState.PAUSED: VdiVmStatus.SUSPENDED}


def stable_id(*parts: str) -> str:
    """The same id for the same names, every run (screenshots and keys stay put)."""
    return str(uuidlib.uuid5(_NS, "/".join(parts)))


def refused(uri: str, message: str = "Connection refused") -> VirtError:
    """The error of a host whose libvirtd refuses connections."""
    return VirtError(VirtErrorKind.REFUSED, uri, f"unable to connect to server: {message}")


@dataclass
class Estate:
    """Pools, hosts (platform record + libvirt view) and VMs (either side, or both)."""

    pools: list[DesktopPool] = field(default_factory=list)
    hosts: list[VdiHost] = field(default_factory=list)
    vms: list[VdiVm] = field(default_factory=list)
    #: Host id -> its libvirt session's state, URI and error (domains: see :meth:`view`).
    links: dict[str, HostView] = field(default_factory=dict)
    #: Host id -> the domains its libvirt has (read when the session is connected).
    domains: dict[str, list[Domain]] = field(default_factory=dict)
    #: Host id -> its name (also for hosts the platform does not list).
    names: dict[str, str] = field(default_factory=dict)
    #: Host id -> the URIs its session tries, in order.
    uris: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Host id -> when its libvirt was last read, and what it had then (see :meth:`view`).
    read_at: dict[str, float] = field(default_factory=dict)
    last_read: dict[str, tuple[Domain, ...]] = field(default_factory=dict)

    def pool(self, name: str, pool_id: str = "") -> DesktopPool:
        """The pool called ``name`` (made on first use)."""
        for p in self.pools:
            if p.name == name:
                return p
        made = DesktopPool(pool_id or stable_id("pool", name), name)
        self.pools.append(made)
        return made

    def host(self, name: str, *, pool: str = "default", ip: str = "", host_id: str = "",
             status: int | None = 1, state: ConnState = ConnState.CONNECTED,
             error: VirtError | None = None, uri: str = "", in_platform: bool = True,
             cpus: int | None = 32, memory_gb: float | None = 125.47) -> str:
        """Add a host (enabled on the platform, its libvirt connected unless ``state`` says
        otherwise); its id."""
        hid = host_id or stable_id("host", name)
        ip = ip or f"10.0.{len(self.names) // 250}.{len(self.names) % 250 + 1}"
        uri = uri or f"qemu+tcp://{ip}/system"
        if in_platform:
            p = self.pool(pool)
            self.hosts.append(VdiHost(hid, name, ip, status, p.id, p.name, "Fake CPU", cpus,
                                      memory_gb))
        self.names[hid] = name
        self.uris[hid] = (uri,)
        self.domains[hid] = []
        self.links[hid] = HostView(hid, uri, state, None, error)
        return hid

    def view(self, host_id: str, now: float) -> HostView:
        """What the host's session shows, as a real session does: while connected, its
        domains, read when it connected (at ``now`` the first time); after a failure, the
        domains and time of its last read (the faces mark them stale); never read, none."""
        link = self.links[host_id]
        if link.state is ConnState.CONNECTED:
            at = self.read_at.setdefault(host_id, now)
            self.last_read[host_id] = tuple(self.domains[host_id])
            return HostView(host_id, link.uri, link.state, self.last_read[host_id], None, at, 1,
                            "10.0.0", self.names[host_id])
        if host_id not in self.last_read:
            return link
        return replace(link, domains=self.last_read[host_id], read_at=self.read_at[host_id],
                       libvirt_version="10.0.0", hostname=self.names[host_id])

    def host_id(self, name: str) -> str:
        for hid, n in self.names.items():
            if n == name:
                return hid
        raise KeyError(f"no host {name!r} in the estate")

    def vm(self, name: str, host: str, *, state: VirtState = VirtState.RUNNING,
           vdi_status: int | None = None, vcpu: int = 2, memory_mb: int = 2048,
           virt_host: str | None = None, virt_vcpu: int | None = None,
           virt_memory_mb: int | None = None, in_platform: bool = True,
           in_libvirt: bool = True, vm_uuid: str = "") -> str:
        """Add a VM on ``host``: the platform's record (status from ``state`` unless
        ``vdi_status`` says otherwise) and libvirt's domain on ``virt_host`` (default the
        same host); its uuid."""
        u = vm_uuid or stable_id("vm", host, name)
        hid = self.host_id(host)
        if in_platform:
            status = vdi_status if vdi_status is not None else _VDI_STATUS.get(state,
                                                                               VdiVmStatus.OFF)
            pool = next((h.pool_id for h in self.hosts if h.id == hid), "")
            self.vms.append(VdiVm(u, name, int(status), vcpu, memory_mb, hid, host, pool))
        if in_libvirt:
            self.domains[self.host_id(virt_host or host)].append(
                Domain(u, name, state, virt_vcpu if virt_vcpu is not None else vcpu,
                       (virt_memory_mb if virt_memory_mb is not None else memory_mb) * 1024))
        return u

    def inventory(self) -> VdiInventory:
        return VdiInventory(tuple(self.hosts), tuple(self.vms), tuple(self.pools))
