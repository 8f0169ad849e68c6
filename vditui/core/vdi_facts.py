"""What the platform knows beyond VMs, brought to a comparison: who is affected by a drift
(users and sessions), the platform's own alarms, desktop pools' usage and hosts' capacity.

Pure functions over a :class:`~vditui.core.models.Comparison` (which carries the alarms and pools
read with its inventory); every face (TUI, check, report, watch, metrics) asks these, so each
fact is worded and decided in one place.

A user is named by login and display name only: the platform's national ID, phone and mail are
dropped when its answer is parsed (:func:`vditui.core.vdi_parse.parse_user`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vditui.core.models import (
    Comparison,
    Drift,
    HostRow,
    PlatformAlarm,
    Severity,
    VdiVm,
    VirtState,
    VmRow,
)
from vditui.core.present import duration

# ----------------------------------------------------------------------------- who is affected


def user_facing(row: VmRow) -> bool:
    """True when ``row`` has a drift (above INFO) and a user is connected to it right now: an
    outage someone is living through, which goes first."""
    vm = row.vdi
    return (vm is not None and vm.connected is True
            and any(d.severity > Severity.INFO for d in row.drifts))


def user_name(vm: VdiVm | None) -> str:
    """The bound user as shown: the login (else the platform's user id, else "")."""
    if vm is None:
        return ""
    return vm.user_login or vm.user_id


def user_line(vm: VdiVm | None, now: float) -> str:
    """The VM's user and session in a line for the diff panel and reports:
    "user zhang.wei (Zhang Wei) connected 2 h ago", "user li.na disconnected 30 min ago",
    "user li.na, not connected"; "" when no user is bound and nobody is connected."""
    if vm is None:
        return ""
    who = user_name(vm)
    if not who and vm.connected is not True:
        return ""
    shown = f"user {who}" if who else "a user"
    if vm.user_name and vm.user_name != vm.user_login:
        shown += f" ({vm.user_name})"
    if vm.connected is True:
        since = (f" {duration(vm.connect_time, now)} ago" if vm.connect_time is not None
                 else "")
        return f"{shown} connected{since}"
    if vm.disconnect_time is not None:
        return f"{shown} disconnected {duration(vm.disconnect_time, now)} ago"
    return f"{shown}, not connected"


def affected_users(rows: Iterable[VmRow]) -> list[str]:
    """The users connected to a drifting VM now (:func:`user_facing`), sorted, each once; a
    connected session without a known user counts as its VM's key."""
    return sorted({user_name(r.vdi) or f"(session on {r.name})" for r in rows
                   if user_facing(r)})


def user_facing_drifts(cmp: Comparison, drifts: Iterable[Drift]) -> list[Drift]:
    """Those of ``drifts`` on a user-facing VM (``check --user-facing``)."""
    keys = {r.key for r in cmp.vms if user_facing(r)}
    return [d for d in drifts if d.key in keys]


def people_summary(cmp: Comparison) -> dict[str, object]:
    """What the JSON faces' summaries add about people and the platform's alarms: VMs with a
    user-facing drift, the users affected, the alarms by level."""
    return {"user_facing": sum(1 for r in cmp.vms if user_facing(r)),
            "affected_users": affected_users(cmp.vms),
            "alarms_by_level": alarm_counts(cmp.alarms)}


def user_facing_first(cmp: Comparison) -> list[VmRow]:
    """The comparison's VM rows with the user-facing ones first (otherwise in order): the sort
    key a face puts before its own worst-first key."""
    return sorted(cmp.vms, key=lambda r: not user_facing(r))


# ----------------------------------------------------------------------------- the platform's voice


def alarm_line(alarm: PlatformAlarm) -> str:
    """An alarm in a line: "platform alarm (critical, host): CPU usage above 90%"."""
    what = ", ".join(x for x in (alarm.level, alarm.module) if x)
    return f"platform alarm ({what}): {alarm.content}" if what else \
        f"platform alarm: {alarm.content}"


def vm_alarms(cmp: Comparison, row: VmRow) -> list[PlatformAlarm]:
    """The alarms that concern ``row``: AlarmVO names no VM, so those whose text names it (a
    whole word) or its IP."""
    out = []
    ip = row.vdi.ip if row.vdi is not None else ""
    for a in cmp.alarms:
        words = set(a.content.replace(":", " ").replace(",", " ").split())
        if row.name in words or (ip and ip in words):
            out.append(a)
    return out


def alarm_counts(alarms: Iterable[PlatformAlarm]) -> dict[str, int]:
    """How many alarms per level ("" as "unknown"), sorted by level."""
    out: dict[str, int] = {}
    for a in alarms:
        level = a.level or "unknown"
        out[level] = out.get(level, 0) + 1
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------- pools


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """A desktop pool's usage and the drifts of its desktops."""

    id: str
    name: str
    amount: int | None
    used: int | None
    switching: bool
    vms: int
    drifts: int


def pool_usage(cmp: Comparison) -> list[PoolUsage]:
    """Every desktop pool: the platform's amount and used amount, how many of the compared VMs
    belong to it, and how many drifts they have."""
    vms: dict[str, int] = {}
    drifts: dict[str, int] = {}
    for r in cmp.vms:
        pool = r.vdi.desktop_pool_id if r.vdi is not None else ""
        if pool:
            vms[pool] = vms.get(pool, 0) + 1
            drifts[pool] = drifts.get(pool, 0) + len(r.drifts)
    return [PoolUsage(p.id, p.name, p.amount, p.used_amount, p.switching, vms.get(p.id, 0),
                      drifts.get(p.id, 0)) for p in sorted(cmp.pools, key=lambda p: p.name)]


def pool_line(p: PoolUsage) -> str:
    """"Teaching: 7/12 used, 1 drift" (", switching template" while it does)."""
    used = f"{'-' if p.used is None else p.used}/{'-' if p.amount is None else p.amount} used"
    line = f"{p.name}: {used}, {p.drifts} drift{'s' if p.drifts != 1 else ''}"
    return line + (", switching template" if p.switching else "")


# ----------------------------------------------------------------------------- host capacity

_RUNNING = frozenset({VirtState.RUNNING, VirtState.BLOCKED, VirtState.PAUSED})


@dataclass(frozen=True, slots=True)
class Capacity:
    """A host's capacity as the platform and libvirt see it, and what its running VMs take."""

    vdi_cpus: int | None
    node_cpus: int | None
    vdi_memory_gb: float | None
    node_memory_gb: float | None
    running: int | None  # guests libvirt runs (None: not read)
    limit: int | None  # domainLimit
    vcpus: int  # the running guests' vCPUs
    memory_gb: float  # the running guests' memory


def capacity(host: HostRow, rows: Iterable[VmRow]) -> Capacity:
    """``host``'s capacity: platform figures, libvirt's node info (when read), and the sum of
    the vCPUs and memory of the guests libvirt runs there."""
    view = host.view
    running = [r.virt for r in rows if r.virt is not None and r.virt_host_id == host.host.id
               and r.virt.state in _RUNNING]
    node_mem = view.node_memory_kib if view is not None else None
    return Capacity(
        host.host.cpus, view.node_cpus if view is not None else None, host.host.memory_gb,
        None if node_mem is None else round(node_mem / 1024 / 1024, 2),
        len(running) if host.virt_vms is not None else None, host.host.domain_limit,
        sum(d.vcpu or 0 for d in running),
        round(sum(d.memory_kib or 0 for d in running) / 1024 / 1024, 2))


def capacity_line(c: Capacity) -> str:
    """"CPU 12/32 vCPU (node 32), memory 40.0/125.5 GB (node 125.5), 5/200 VMs"."""
    cpus = f"CPU {c.vcpus}/{'-' if c.vdi_cpus is None else c.vdi_cpus} vCPU"
    if c.node_cpus is not None and c.node_cpus != c.vdi_cpus:
        cpus += f" (node {c.node_cpus})"
    mem = f"memory {c.memory_gb:g}/{'-' if c.vdi_memory_gb is None else f'{c.vdi_memory_gb:g}'} GB"
    if c.node_memory_gb is not None:
        mem += f" (node {c.node_memory_gb:g})"
    vms = f"{'-' if c.running is None else c.running}/{'-' if c.limit is None else c.limit} VMs"
    return f"{cpus}, {mem}, {vms}"
