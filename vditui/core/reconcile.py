"""Pure comparison of the platform's inventory with what each host's libvirt really has.

No I/O and no clock: :func:`reconcile` takes two snapshots and returns a :class:`Comparison`.

Matching, across all hosts at once
----------------------------------
1. By UUID: a platform VM whose id equals a libvirt domain's UUID (case-insensitive, hyphens and
   braces ignored) is that domain, whatever either side calls it.
2. By name, for what is left: a name held by exactly one unmatched platform VM and exactly one
   unmatched domain pairs them, even across hosts (then placement is compared). When a name is
   held by more than one on either side and at least one on the other, nothing under that name is
   paired and each gets a DUPLICATE drift: guessing would invent drift, or hide it.
   Several platform VMs (or domains) sharing a name with nothing on the other side are not
   ambiguous, so they are plain only-in-platform (only-in-libvirt) rows.
3. The same UUID defined on several hosts (a migration that left the source's definition
   behind) is one VM: the active copy, else the one on the platform's host, is matched; every
   other copy becomes its own row, keyed ``<uuid>@<host id>``, with a DUPLICATE drift — CRITICAL
   if that copy is active too (two instances of one VM), INFO if it is only defined, and INFO
   whenever the platform says busy or upgrading (a live migration holds both for a moment).

A host's libvirt counts as read when its view has a domain list and is not FAILED (a view that
is reconnecting keeps the last list it read). Domains of unread hosts are ignored; a platform VM
left unmatched on an unread host is ``checked=False`` with no presence drift, since no verdict
is possible.

State mapping (platform DomainVO.status ↔ libvirt virDomainState)
-----------------------------------------------------------------
=====================  ==========================================  ============================
platform               libvirt states that agree                   notes
=====================  ==========================================  ============================
0 off                  shutoff, crashed, shutting-down             crashed: no process runs
1 running              running, blocked, shutting-down             blocked: running, waiting
2 suspended            paused, pmsuspended
5 busy                 any — never a drift                         an operation in progress
6 upgrading            any — never a drift                         the platform is mid-change
other / missing code   not compared — INFO drift
any                    nostate — never a drift                     libvirt itself does not know
=====================  ==========================================  ============================

shutting-down agrees with both off and running because it is the moment between them; the two
sides are seconds apart by nature. A mismatch is a STATE drift, CRITICAL when one side says
running (running, blocked) and the other shut off (off, shutoff, crashed), WARNING otherwise.

vCPU and memory: which of libvirt's figures the platform's are compared with
-----------------------------------------------------------------------------
A guest has two vCPU counts (the vCPUs it runs with, ``<vcpu current='N'>``, and the most it
may be hot-plugged to) and two memory figures (its configured size, ``<memory>``, and the
balloon's current level, ``<currentMemory>``, which the host may lower under pressure).

* ``cpu`` is compared with the vCPUs the guest runs with: what ``virsh dominfo`` shows as
  CPU(s), ``dom.info()``'s count and ``getAllDomainStats``' ``vcpu.current`` (for a shut-off
  guest, the configured current count). That is what an operator means by "the VM has 1 vCPU";
  comparing with the maximum would report a false vCPU drift on every guest set up for
  hot-plug, the first day the tool runs.
* ``memory`` is compared with the configured size: ``<memory>``, ``dom.info()``'s maximum and
  ``balloon.maximum``. The balloon's level moves on its own (the host takes memory back, the
  guest's driver gives it up), so comparing with it would report drift that nobody made and
  that comes and goes.

Both read paths in ``virt.py`` (one ``getAllDomainStats`` for QEMU, ``info()`` per domain for
drivers without bulk stats) give exactly these figures, proven on real QEMU guests in
``tests/lab/test_qemu.py``.

What kind of VM the platform says it is (rules in :mod:`vditui.core.vm_kinds`)
-----------------------------------------------------------------------------
=======================  =================================================  ==================
platform record          no drift                                           drift
=======================  =================================================  ==================
template (isModel)       libvirt lacks it, has it off, defines it on any    libvirt runs it
                         host(s); vCPU/memory not compared                  while the platform
                                                                            says off: WARNING,
                                                                            CRITICAL with
                                                                            linked clones
recycle bin (isRecycle)  libvirt lacks it or defines it (off): matched,     libvirt runs it:
                         never "only in libvirt"                            WARNING
restore point (freeze)   platform off, libvirt lacks it (transient domain)  platform running,
                                                                            libvirt off/absent:
                                                                            INFO (a reset)
linked clone (motherId)  compared in full, as any desktop                   as any desktop
pool switching template  state/presence/size differences are INFO while     -
(DesktopPoolVO.status 1) the switch lasts
=======================  =================================================  ==================

A host's own counter: a platform ``runningDomainCount`` that differs from the guests libvirt
runs there (running, blocked) *and* from the VMs the platform's own list has running there is a
``running_count`` host drift (WARNING); a difference the VMs' own rows already explain is not
reported twice.

The platform's domain list may include or omit templates and the recycle bin (the spec does not
say): the client also reads ``GET /ocloud/v1/model`` and ``GET /ocloud/v1/recycle`` and merges
them by id (:func:`vditui.core.vdi_parse.merge_vms`), so both kinds of platform compare alike.

Active domains (running, blocked, paused, shutting-down, pmsuspended: a QEMU process exists)
decide severities elsewhere: placement (runs elsewhere: CRITICAL; only defined elsewhere:
WARNING; either, while the platform says busy or upgrading: INFO) and only-in-libvirt (active:
WARNING; not: INFO). Only-in-platform is CRITICAL when the platform says running, else WARNING.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from vditui.core.models import (
    Comparison,
    ConnState,
    Domain,
    Drift,
    DriftKind,
    HostRow,
    HostStatus,
    HostView,
    PlatformAlarm,
    Severity,
    VdiHost,
    VdiInventory,
    VdiVm,
    VdiVmStatus,
    VirtState,
    VmRow,
    host_status_label,
    vdi_status_label,
)
from vditui.core.present import mib
from vditui.core.vm_kinds import Spec as _Spec
from vditui.core.vm_kinds import clone_counts, compared_as_desktop, judge

_V = VirtState
STATE_MAP: Mapping[VdiVmStatus, frozenset[VirtState]] = MappingProxyType(
    {
        VdiVmStatus.OFF: frozenset({_V.SHUTOFF, _V.CRASHED, _V.SHUTDOWN}),
        VdiVmStatus.RUNNING: frozenset({_V.RUNNING, _V.BLOCKED, _V.SHUTDOWN}),
        VdiVmStatus.SUSPENDED: frozenset({_V.PAUSED, _V.PMSUSPENDED}),
    }
)
"""For each comparable platform status, the libvirt states that agree with it."""

NEVER_MISMATCH: frozenset[VdiVmStatus] = frozenset({VdiVmStatus.BUSY, VdiVmStatus.UPGRADING})
"""Platform statuses that are transitional: any libvirt state is accepted."""

ACTIVE_STATES: frozenset[VirtState] = frozenset(
    {_V.RUNNING, _V.BLOCKED, _V.PAUSED, _V.SHUTDOWN, _V.PMSUSPENDED}
)
"""libvirt states in which the domain has a live process on its host."""

_RUNNING_SIDE = frozenset({_V.RUNNING, _V.BLOCKED})
_OFF_SIDE = frozenset({_V.SHUTOFF, _V.CRASHED})
_ABSENT = "absent"

_Located = tuple[str, Domain]  # (host id, domain)


def normalize_uuid(value: str) -> str:
    """A UUID (or platform id) in the one spelling used for comparison: lower case, no hyphens,
    no braces, no surrounding space."""
    return value.strip().strip("{}").replace("-", "").lower()


def host_was_read(view: HostView | None) -> bool:
    """True when ``view`` holds a domain list that can be trusted for a verdict."""
    return view is not None and view.domains is not None and view.state is not ConnState.FAILED


def drift_sort_key(drift: Drift) -> tuple[int, str, str, str]:
    """Most severe first, then by subject and kind; the key breaks ties between namesakes."""
    return (-int(drift.severity), drift.subject, drift.kind.value, drift.key)


def state_drift(
    vdi_status: int | None, virt_state: VirtState
) -> tuple[Severity, str, str, str] | None:
    """The state verdict for one matched pair: ``(severity, message, vdi value, virt value)``,
    or None when the two states agree (see the module's table)."""
    vdi_label = vdi_status_label(vdi_status)
    code = None
    if vdi_status is not None:
        with contextlib.suppress(ValueError):  # a status the spec does not list
            code = VdiVmStatus(vdi_status)
    if code is None:
        message = f"platform reports {vdi_label}, libvirt says {virt_state.value}: not compared"
        return (Severity.INFO, message, vdi_label, virt_state.value)
    if code in NEVER_MISMATCH or virt_state is _V.NOSTATE or virt_state in STATE_MAP[code]:
        return None
    hard = (code is VdiVmStatus.RUNNING and virt_state in _OFF_SIDE) or (
        code is VdiVmStatus.OFF and virt_state in _RUNNING_SIDE
    )
    severity = Severity.CRITICAL if hard else Severity.WARNING
    message = f"platform says {vdi_label}, libvirt says {virt_state.value}"
    return (severity, message, vdi_label, virt_state.value)


class RowBuilder:
    """Holds the lookups one reconcile pass needs, and makes its rows."""

    def __init__(self, vdi: VdiInventory, views: Mapping[str, HostView]) -> None:
        self.hosts: dict[str, VdiHost] = {h.id: h for h in vdi.hosts}
        self.views = views
        self.read = {hid for hid, view in views.items() if host_was_read(view)}
        self.rows: list[VmRow] = []
        self.paired: dict[_Located, VdiVm] = {}
        self._keys: set[str] = set()
        self.shown_stale: set[tuple[str, str]] = set()
        self.clones = clone_counts(vdi.vms)
        self.switching = {p.id: p.name for p in vdi.pools if p.switching}
        self.alarms: dict[str, list[PlatformAlarm]] = {}
        for a in vdi.alarms:
            if a.host_ip:
                self.alarms.setdefault(a.host_ip, []).append(a)
        self.listed_running: dict[str, int] = {}
        for vm in vdi.vms:
            if vm.status == VdiVmStatus.RUNNING:
                self.listed_running[vm.host_id] = self.listed_running.get(vm.host_id, 0) + 1

    def by_kind(self, vm: VdiVm, dom: Domain | None, specs: list[_Spec]) -> list[_Spec]:
        """``specs`` once the rule for what the platform says ``vm`` is applies (vm_kinds)."""
        state = dom.state if dom is not None else None
        return judge(vm, state, state in ACTIVE_STATES, specs, clones=self.clones.get(vm.id, 0),
                     switching_pool=self.switching.get(vm.desktop_pool_id, ""))

    def host_name(self, host_id: str, fallback: str = "") -> str:
        host = self.hosts.get(host_id)
        if host is not None:
            return host.name
        view = self.views.get(host_id)
        return fallback or (view.hostname if view is not None else "") or host_id

    def vm_host_name(self, vm: VdiVm) -> str:
        return self.host_name(vm.host_id, vm.host_name)

    def row(
        self,
        wanted_key: str,
        vm: VdiVm | None,
        located: _Located | None,
        *specs: _Spec,
        checked: bool = True,
    ) -> None:
        # Row keys must stay unique for the UI and the tracker even if a source repeats an id.
        key, n = wanted_key, 1
        while key in self._keys:
            n += 1
            key = f"{wanted_key}#{n}"
        self._keys.add(key)
        hid, dom = located if located is not None else (None, None)
        name = vm.name if vm is not None else dom.name if dom is not None else ""
        host_id = vm.host_id if vm is not None else hid or ""
        drifts = [Drift(k, sev, key, name, host_id, msg, a, b) for k, sev, msg, a, b in specs]
        drifts.sort(key=drift_sort_key)
        self.rows.append(VmRow(key, name, vm, dom, hid, tuple(drifts), checked))

    def pair(self, vm: VdiVm, located: _Located) -> None:
        hid, dom = located
        specs: list[_Spec] = []
        verdict = state_drift(vm.status, dom.state)
        if verdict is not None:
            specs.append((DriftKind.STATE, *verdict))
        if vm.vcpu is not None and dom.vcpu is not None and vm.vcpu != dom.vcpu:
            message = f"platform says {vm.vcpu} vCPU, libvirt has {dom.vcpu}"
            specs.append((DriftKind.VCPU, Severity.WARNING, message, str(vm.vcpu), str(dom.vcpu)))
        kib = dom.memory_kib
        if vm.memory_mb is not None and kib is not None and vm.memory_mb * 1024 != kib:
            ours, theirs = f"{vm.memory_mb} MiB", f"{mib(kib)} MiB"
            message = f"platform says {ours}, libvirt has {theirs}"
            specs.append((DriftKind.MEMORY, Severity.WARNING, message, ours, theirs))
        if hid != vm.host_id:
            here, there = self.host_name(hid), self.vm_host_name(vm)
            active = dom.state in ACTIVE_STATES
            message = f"{'runs' if active else 'defined'} on {here}, platform says {there}"
            if vm.host_id not in self.read:
                message += f" (libvirt on {there} not read)"
            severity = Severity.CRITICAL if active else Severity.WARNING
            if vm.status in NEVER_MISMATCH:
                # A migration in progress looks exactly like this; report it, never alarm.
                severity = Severity.INFO
                message += f" ({vdi_status_label(vm.status)}: an operation is in progress)"
            specs.append((DriftKind.PLACEMENT, severity, message, there, here))
        self.paired[located] = vm
        self.row(dom.uuid or vm.id, vm, located, *self.by_kind(vm, dom, specs))

    def vdi_only(self, vm: VdiVm) -> None:
        checked = vm.host_id in self.read
        specs: list[_Spec] = []
        if checked:
            label = vdi_status_label(vm.status)
            running = vm.status == VdiVmStatus.RUNNING
            message = (
                f"platform lists it on {self.vm_host_name(vm)} ({label}), "
                "libvirt has no such domain"
            )
            severity = Severity.CRITICAL if running else Severity.WARNING
            specs.append((DriftKind.ONLY_IN_VDI, severity, message, label, _ABSENT))
            specs = self.by_kind(vm, None, specs)
        else:
            last = self.last_known(vm)
            if last is not None:
                # Keep showing what libvirt last said (the UI marks it stale), judge nothing.
                self.row(last[1].uuid or vm.id, vm, last, checked=False)
                return
        self.row(vm.id, vm, None, *specs, checked=checked)

    def last_known(self, vm: VdiVm) -> _Located | None:
        """The domain an unreadable host had for ``vm`` before its connection failed."""
        view = self.views.get(vm.host_id)
        if view is None or not view.domains:
            return None
        norm = normalize_uuid(vm.id)
        found = next((d for d in view.domains if normalize_uuid(d.uuid) == norm), None)
        if found is None:
            named = [d for d in view.domains if d.name == vm.name]
            found = named[0] if len(named) == 1 else None
        if found is not None:
            self.shown_stale.add((vm.host_id, found.uuid))
        return (vm.host_id, found) if found is not None else None

    def unread_leftovers(self) -> None:
        """Domains an unreadable host had that no platform VM claimed: still shown (stale,
        unchecked), so a VM only libvirt knew does not vanish while its host is down."""
        for hid, view in sorted(self.views.items()):
            if hid in self.read or not view.domains:
                continue
            for d in view.domains:
                if (hid, d.uuid) not in self.shown_stale and d.uuid not in self._keys:
                    self.row(d.uuid, None, (hid, d), checked=False)

    def virt_only(self, located: _Located) -> None:
        hid, dom = located
        active = dom.state in ACTIVE_STATES
        message = (
            f"libvirt has it on {self.host_name(hid)} ({dom.state.value}), "
            "the platform does not know it"
        )
        severity = Severity.WARNING if active else Severity.INFO
        spec = (DriftKind.ONLY_IN_LIBVIRT, severity, message, _ABSENT, dom.state.value)
        self.row(_domain_key(located), None, located, spec)

    def ambiguous(self, name: str, vms: list[VdiVm], domains: list[_Located]) -> None:
        counts = (str(len(vms)), str(len(domains)))
        message = (
            f"{len(vms)} VM{'s' if len(vms) > 1 else ''} named {name!r} on the platform and "
            f"{len(domains)} in libvirt: cannot pair them by name"
        )
        spec = (DriftKind.DUPLICATE, Severity.WARNING, message, *counts)
        for vm in vms:
            self.row(vm.id, vm, None, spec, checked=vm.host_id in self.read)
        for located in domains:
            self.row(_domain_key(located), None, located, spec)

    def uuid_copy(self, copy: _Located, primary: _Located) -> None:
        hid, dom = copy
        active = dom.state in ACTIVE_STATES
        where, here = self.host_name(primary[0]), self.host_name(hid)
        message = (
            f"also {'active' if active else 'defined'} on {here} ({dom.state.value}), "
            f"with the same UUID as the domain on {where}"
        )
        severity = Severity.CRITICAL if active else Severity.INFO
        vm = self.paired.get(primary)
        if vm is not None and not active and not compared_as_desktop(vm):
            # A template (or recycled VM) defined on several hosts is storage, not a guest.
            self.row(f"{dom.uuid}@{hid}", None, copy)
            return
        if vm is not None and vm.status in NEVER_MISMATCH:
            # Mid-migration both hosts hold the domain for a moment.
            severity = Severity.INFO
            message += f" ({vdi_status_label(vm.status)}: an operation is in progress)"
        spec = (DriftKind.DUPLICATE, severity, message, where, here)
        self.row(f"{dom.uuid}@{hid}", None, copy, spec)

    def row_order(self, row: VmRow) -> tuple[str, str, str]:
        host = self.vm_host_name(row.vdi) if row.vdi is not None else self.host_name(row.host_id)
        return (row.name, host, row.key)

    def host_row(self, host: VdiHost, vm_counts: Mapping[str, int]) -> HostRow:
        view = self.views.get(host.id)
        label = host_status_label(host.status)
        spec: _Spec | None = None
        if view is not None and view.state is ConnState.FAILED:
            # A FAILED view without an error is a caller's slip, but still a host we cannot see.
            error = view.error
            detail = str(error) if error is not None else f"{view.uri}: no error given"
            enabled = host.status == HostStatus.ENABLED
            spec = (
                DriftKind.HOST_UNREACHABLE,
                Severity.CRITICAL if enabled else Severity.WARNING,
                f"libvirt unreachable at {detail}",
                label,
                error.kind.value if error is not None else "failed",
            )
        elif (
            view is not None
            and view.state is ConnState.CONNECTED
            and host.status in (HostStatus.OFFLINE, HostStatus.SHUTDOWN)
        ):
            message = f"platform says {label}, but libvirt answers at {view.uri}"
            spec = (
                DriftKind.HOST_OFFLINE_BUT_REACHABLE,
                Severity.WARNING,
                message,
                label,
                "connected",
            )
        specs = [spec] if spec is not None else []
        virt_vms = None
        if host.id in self.read and view is not None and view.domains is not None:
            virt_vms = len(view.domains)
            running = sum(1 for d in view.domains if d.state in _RUNNING_SIDE)
            listed = self.listed_running.get(host.id, 0)
            if host.running_count is not None and host.running_count != running \
                    and host.running_count != listed:
                # Only what the VMs' own rows do not explain: a count that differs from the
                # platform's own list (a stale counter, or VMs it does not list at all).
                specs.append((DriftKind.HOST_RUNNING_COUNT, Severity.WARNING,
                              f"platform counts {host.running_count} running, libvirt runs "
                              f"{running} (the platform's VM list has {listed} running)",
                              str(host.running_count), str(running)))
        drifts = tuple(Drift(s[0], s[1], host.id, host.name, host.id, *s[2:]) for s in specs)
        alarms = tuple(self.alarms.get(host.ip, ())) if host.ip else ()
        return HostRow(host, view, drifts, vm_counts.get(host.id, 0), virt_vms, alarms)


def _domain_key(located: _Located) -> str:
    hid, dom = located
    return dom.uuid or f"{hid}:{dom.name}"  # a domain without a UUID is unusual, never keyless


def _group_by_uuid(
    located: Iterable[_Located], vdi_hosts: Mapping[str, str]
) -> tuple[list[_Located], list[tuple[_Located, _Located]]]:
    """Split domains into one primary per UUID and the leftover copies ``(copy, primary)``.
    ``vdi_hosts`` maps a normalised platform id to the host the platform puts it on."""
    groups: dict[str, list[_Located]] = {}
    primaries: list[_Located] = []
    for item in located:
        norm = normalize_uuid(item[1].uuid)
        if norm:
            groups.setdefault(norm, []).append(item)
        else:
            primaries.append(item)  # no UUID to share, so no copies to find
    copies: list[tuple[_Located, _Located]] = []
    for norm, members in groups.items():
        home = vdi_hosts.get(norm)
        members.sort(key=lambda m: (m[1].state not in ACTIVE_STATES, m[0] != home, m[0]))
        primaries.append(members[0])
        copies.extend((m, members[0]) for m in members[1:])
    return primaries, copies


def reconcile(vdi: VdiInventory, views: Mapping[str, HostView]) -> Comparison:
    """Compare the platform's inventory with the libvirt views, keyed by platform host id.

    A host missing from ``views`` is one not read yet. Returns every VM row (sorted by name,
    host name, key), one row per platform host (sorted by pool name, host name) and all drifts
    (most severe first). See the module docstring for the matching rules and the state table.
    """
    b = RowBuilder(vdi, views)
    located = [(hid, dom) for hid in sorted(b.read) for dom in (views[hid].domains or ())]
    vdi_hosts: dict[str, str] = {}
    for vm in vdi.vms:
        vdi_hosts.setdefault(normalize_uuid(vm.id), vm.host_id)
    primaries, copies = _group_by_uuid(located, vdi_hosts)

    by_uuid = {normalize_uuid(d.uuid): i for i, (_, d) in enumerate(primaries) if d.uuid}
    taken: set[int] = set()
    rest_vms: list[VdiVm] = []
    for vm in vdi.vms:
        norm = normalize_uuid(vm.id)
        index = by_uuid.get(norm) if norm else None
        if index is not None and index not in taken:
            taken.add(index)
            b.pair(vm, primaries[index])
        else:
            rest_vms.append(vm)

    vms_by_name: dict[str, list[VdiVm]] = {}
    for vm in rest_vms:
        vms_by_name.setdefault(vm.name, []).append(vm)
    doms_by_name: dict[str, list[_Located]] = {}
    for i, item in enumerate(primaries):
        if i not in taken:
            doms_by_name.setdefault(item[1].name, []).append(item)
    for name in sorted(vms_by_name.keys() | doms_by_name.keys()):
        vms, doms = vms_by_name.get(name, []), doms_by_name.get(name, [])
        if len(vms) == 1 and len(doms) == 1:
            b.pair(vms[0], doms[0])
        elif vms and doms:
            b.ambiguous(name, vms, doms)
        else:
            for vm in vms:
                b.vdi_only(vm)
            for item in doms:
                b.virt_only(item)
    for copy, primary in copies:
        b.uuid_copy(copy, primary)
    b.unread_leftovers()

    vm_counts: dict[str, int] = {}
    for vm in vdi.vms:
        vm_counts[vm.host_id] = vm_counts.get(vm.host_id, 0) + 1
    hosts = tuple(
        b.host_row(h, vm_counts)
        for h in sorted(vdi.hosts, key=lambda h: (h.pool_name, h.name, h.id))
    )
    rows = tuple(sorted(b.rows, key=b.row_order))
    drifts = [d for row in rows for d in row.drifts] + [d for h in hosts for d in h.drifts]
    return Comparison(rows, hosts, tuple(sorted(drifts, key=drift_sort_key)), vdi.alarms,
                      vdi.pools)

