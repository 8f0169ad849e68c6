"""reconcile(): matching, every drift rule, checked/unchecked, ordering."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid as uuidlib

import pytest

from vditui.core.models import (
    Comparison,
    ConnState,
    Domain,
    Drift,
    DriftKind,
    HostStatus,
    HostView,
    Severity,
    VdiHost,
    VdiInventory,
    VdiVm,
    VdiVmStatus,
    VirtError,
    VirtErrorKind,
    VirtState,
    VmRow,
)
from vditui.core.reconcile import normalize_uuid, reconcile

# --------------------------------------------------------------------------- factories

POOLS = {"h1": "default", "h2": "Teaching", "h3": "Teaching", "h4": "Office"}
NAMES = {"h1": "ocloud", "h2": "hv-t2", "h3": "hv-t3", "h4": "hv-o1"}


def uid(name: str) -> str:
    """A stable libvirt-style UUID for a test domain."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, name))


def host(hid: str = "h1", status: int | None = HostStatus.ENABLED, **kw: object) -> VdiHost:
    return VdiHost(
        id=hid,
        name=str(kw.pop("name", NAMES.get(hid, hid))),
        ip=f"10.0.0.{len(hid)}",
        status=status,
        pool_id="pool-" + str(kw.get("pool_name", POOLS.get(hid, "p"))),
        pool_name=str(kw.pop("pool_name", POOLS.get(hid, "p"))),
    )


def vm(
    name: str,
    host_id: str = "h1",
    *,
    id: str | None = None,
    status: int | None = VdiVmStatus.RUNNING,
    vcpu: int | None = 4,
    memory_mb: int | None = 8192,
) -> VdiVm:
    return VdiVm(
        id=uid(name) if id is None else id,
        name=name,
        status=status,
        vcpu=vcpu,
        memory_mb=memory_mb,
        host_id=host_id,
        host_name=NAMES.get(host_id, ""),
    )


def dom(
    name: str,
    state: VirtState = VirtState.RUNNING,
    *,
    uuid: str | None = None,
    vcpu: int | None = 4,
    memory_kib: int | None = 8192 * 1024,
) -> Domain:
    return Domain(
        uuid=uid(name) if uuid is None else uuid,
        name=name,
        state=state,
        vcpu=vcpu,
        memory_kib=memory_kib,
    )


def view(host_id: str, *domains: Domain) -> HostView:
    return HostView(
        host_id=host_id,
        uri=f"test+tcp://127.0.3.{len(host_id)}/default",
        state=ConnState.CONNECTED,
        domains=tuple(domains),
    )


def failed(host_id: str, message: str = "Connection refused") -> HostView:
    uri = "test+tcp://127.0.3.9/default"
    return HostView(
        host_id=host_id,
        uri=uri,
        state=ConnState.FAILED,
        error=VirtError(kind=VirtErrorKind.REFUSED, uri=uri, message=message),
    )


def inv(vms: list[VdiVm], hosts: list[VdiHost] | None = None) -> VdiInventory:
    if hosts is None:
        hosts = [host(h) for h in sorted({v.host_id for v in vms} | {"h1"})]
    return VdiInventory(hosts=tuple(hosts), vms=tuple(vms))


def run(vms: list[VdiVm], *views: HostView, hosts: list[VdiHost] | None = None) -> Comparison:
    if hosts is None:
        hosts = [host(h) for h in sorted({v.host_id for v in vms} | {v.host_id for v in views})]
    return reconcile(inv(vms, hosts), {v.host_id: v for v in views})


def row(cmp: Comparison, name: str) -> VmRow:
    rows = [r for r in cmp.vms if r.name == name]
    assert len(rows) == 1, f"{len(rows)} rows named {name!r}"
    return rows[0]


def kinds(r: VmRow) -> list[DriftKind]:
    return [d.kind for d in r.drifts]


def only(r: VmRow) -> Drift:
    assert len(r.drifts) == 1, r.drifts
    return r.drifts[0]


# --------------------------------------------------------------------------- the field report

FIELD = [("lic", 4, 8192), ("ocloud01", 16, 24576), ("ocloud02", 16, 24576)]
FIELD += [("win10_22h2001", 16, 32768)]


def test_field_report_all_consistent() -> None:
    vms = [vm(n, vcpu=c, memory_mb=m) for n, c, m in FIELD]
    doms = [dom(n, vcpu=c, memory_kib=m * 1024) for n, c, m in FIELD]
    cmp = run(vms, view("h1", *doms))
    assert cmp.drifts == ()
    assert [r.name for r in cmp.vms] == ["lic", "ocloud01", "ocloud02", "win10_22h2001"]
    assert all(r.checked and r.vdi and r.virt and r.drifts == () for r in cmp.vms)
    assert [r.key for r in cmp.vms] == [uid(n) for n, _, _ in FIELD]
    assert all(r.virt_host_id == "h1" for r in cmp.vms)
    (h,) = cmp.hosts
    assert (h.host.name, h.vdi_vms, h.virt_vms, h.drifts) == ("ocloud", 4, 4, ())


# --------------------------------------------------------------------------- matching


def test_uuid_match_even_when_names_differ() -> None:
    cmp = run([vm("lic-renamed", id=uid("lic"))], view("h1", dom("lic")))
    (r,) = cmp.vms
    assert r.vdi is not None and r.virt is not None
    assert (r.key, r.name, r.virt.name) == (uid("lic"), "lic-renamed", "lic")
    assert cmp.drifts == ()


@pytest.mark.parametrize(
    "spelling",
    [
        uid("lic").upper(),
        uid("lic").replace("-", ""),
        uid("lic").replace("-", "").upper(),
        "{" + uid("lic") + "}",
    ],
)
def test_uuid_match_ignores_case_hyphens_and_braces(spelling: str) -> None:
    cmp = run([vm("platform-name", id=spelling)], view("h1", dom("libvirt-name", uuid=uid("lic"))))
    (r,) = cmp.vms
    assert r.virt is not None and r.virt.name == "libvirt-name"
    assert r.key == uid("lic")  # libvirt's own spelling is the key
    assert cmp.drifts == ()


def test_normalize_uuid() -> None:
    assert normalize_uuid(" {AB-cd-EF} ") == "abcdef"


def test_name_match_when_platform_id_is_not_a_uuid() -> None:
    cmp = run([vm("office-02", id="d-2002")], view("h1", dom("office-02")))
    (r,) = cmp.vms
    assert r.vdi is not None and r.vdi.id == "d-2002"
    assert r.key == uid("office-02")
    assert cmp.drifts == ()


def test_uuid_matched_vms_are_not_reused_for_name_matching() -> None:
    # The platform's "beta" is libvirt's "alpha" by UUID; the platform's "alpha" must not then
    # steal libvirt's "alpha" by name, nor pair with libvirt's "beta".
    vms = [vm("beta", id=uid("alpha")), vm("alpha", id="d-1", status=VdiVmStatus.OFF)]
    cmp = run(vms, view("h1", dom("alpha"), dom("beta", VirtState.SHUTOFF)))
    paired = [r for r in cmp.vms if r.vdi and r.virt]
    assert [(r.vdi.name, r.virt.name) for r in paired if r.vdi and r.virt] == [("beta", "alpha")]
    assert kinds(row(cmp, "alpha")) == [DriftKind.ONLY_IN_VDI]
    libvirt_beta = [r for r in cmp.vms if r.vdi is None]
    assert len(libvirt_beta) == 1 and kinds(libvirt_beta[0]) == [DriftKind.ONLY_IN_LIBVIRT]


def test_matching_spans_hosts_by_uuid() -> None:
    cmp = run([vm("gpu", "h3")], view("h2", dom("gpu")), view("h3"))
    (r,) = cmp.vms
    assert r.virt_host_id == "h2" and r.host_id == "h3"
    assert kinds(r) == [DriftKind.PLACEMENT]


# --------------------------------------------------------------------------- duplicates


def test_duplicate_names_on_the_platform_are_never_paired() -> None:
    vms = [vm("office-dup", "h4", id="d-1001"), vm("office-dup", "h4", id="d-1002")]
    cmp = run(vms, view("h4", dom("office-dup")))
    assert len(cmp.vms) == 3
    assert all(r.vdi is None or r.virt is None for r in cmp.vms)
    for r in cmp.vms:
        d = only(r)
        assert (d.kind, d.severity) == (DriftKind.DUPLICATE, Severity.WARNING)
        assert d.message == (
            "2 VMs named 'office-dup' on the platform and 1 in libvirt: cannot pair them by name"
        )
        assert (d.vdi_value, d.virt_value) == ("2", "1")
        assert r.checked
    assert sorted(r.key for r in cmp.vms) == sorted(["d-1001", "d-1002", uid("office-dup")])


def test_duplicate_names_in_libvirt_are_never_paired() -> None:
    d2 = dom("web", uuid=uid("web-on-t2"))
    d3 = dom("web", uuid=uid("web-on-t3"))
    cmp = run([vm("web", "h2", id="d-7")], view("h2", d2), view("h3", d3))
    assert len(cmp.vms) == 3
    for r in cmp.vms:
        d = only(r)
        assert d.kind is DriftKind.DUPLICATE
        assert d.message.startswith("1 VM named 'web' on the platform and 2 in libvirt")
    assert {r.virt_host_id for r in cmp.vms if r.virt} == {"h2", "h3"}


def test_duplicate_names_on_both_sides() -> None:
    vms = [vm("office-dup", "h4", id="d-1001"), vm("office-dup", "h4", id="d-1002")]
    doms = [dom("office-dup", uuid=uid("a")), dom("office-dup", uuid=uid("b"))]
    cmp = run(vms, view("h4", doms[0]), view("h2", doms[1]))
    assert len(cmp.vms) == 4
    messages = {only(r).message for r in cmp.vms}
    assert messages == {
        "2 VMs named 'office-dup' on the platform and 2 in libvirt: cannot pair them by name"
    }
    assert all(only(r).severity is Severity.WARNING for r in cmp.vms)
    assert len([d for d in cmp.drifts if d.kind is DriftKind.DUPLICATE]) == 4


def test_duplicate_on_an_unread_host_is_unchecked_but_still_flagged() -> None:
    vms = [vm("dup", "h2", id="d-1"), vm("dup", "h3", id="d-2")]
    cmp = run(vms, view("h2", dom("dup")), failed("h3"))
    by_id = {r.vdi.id: r for r in cmp.vms if r.vdi}
    assert by_id["d-1"].checked and not by_id["d-2"].checked
    assert kinds(by_id["d-2"]) == [DriftKind.DUPLICATE]


def test_same_name_on_one_side_only_is_not_ambiguous() -> None:
    vms = [vm("twin", id="d-1"), vm("twin", id="d-2", status=VdiVmStatus.OFF)]
    cmp = run(vms, view("h1"))
    assert [kinds(r) for r in cmp.vms] == [[DriftKind.ONLY_IN_VDI]] * 2
    assert sorted(only(r).severity for r in cmp.vms) == [Severity.WARNING, Severity.CRITICAL]


def test_same_name_once_each_on_different_hosts_is_a_placement() -> None:
    cmp = run([vm("lab-gpu-02", "h3", id="d-9")], view("h2", dom("lab-gpu-02")), view("h3"))
    (r,) = cmp.vms
    assert r.vdi is not None and r.virt is not None and r.checked
    d = only(r)
    assert (d.kind, d.severity) == (DriftKind.PLACEMENT, Severity.CRITICAL)
    assert d.message == "runs on hv-t2, platform says hv-t3"
    assert (d.vdi_value, d.virt_value) == ("hv-t3", "hv-t2")
    assert d.key == uid("lab-gpu-02") and d.subject == "lab-gpu-02" and d.host_id == "h3"


# --------------------------------------------------------------------------- placement


@pytest.mark.parametrize(
    ("state", "severity", "verb"),
    [
        (VirtState.RUNNING, Severity.CRITICAL, "runs"),
        (VirtState.PAUSED, Severity.CRITICAL, "runs"),
        (VirtState.BLOCKED, Severity.CRITICAL, "runs"),
        (VirtState.SHUTOFF, Severity.WARNING, "defined"),
        (VirtState.CRASHED, Severity.WARNING, "defined"),
    ],
)
def test_placement_severity_follows_activity(
    state: VirtState, severity: Severity, verb: str
) -> None:
    # States chosen to agree with the platform's so placement is the only drift.
    status = VdiVmStatus.RUNNING if state in (VirtState.RUNNING, VirtState.BLOCKED) else None
    status = VdiVmStatus.SUSPENDED if state is VirtState.PAUSED else status
    status = VdiVmStatus.OFF if status is None else status
    cmp = run([vm("x", "h3", status=status)], view("h2", dom("x", state)), view("h3"))
    d = only(row(cmp, "x"))
    assert (d.kind, d.severity) == (DriftKind.PLACEMENT, severity)
    assert d.message == f"{verb} on hv-t2, platform says hv-t3"


def test_placement_when_the_platform_host_was_not_read() -> None:
    cmp = run([vm("x", "h3")], view("h2", dom("x")), failed("h3"))
    r = row(cmp, "x")
    assert r.checked
    d = only(r)
    assert d.kind is DriftKind.PLACEMENT and d.severity is Severity.CRITICAL
    assert d.message == "runs on hv-t2, platform says hv-t3 (libvirt on hv-t3 not read)"


@pytest.mark.parametrize("status", [VdiVmStatus.BUSY, VdiVmStatus.UPGRADING])
def test_placement_while_busy_is_only_info(status: VdiVmStatus) -> None:
    cmp = run([vm("x", "h3", status=status)], view("h2", dom("x")), view("h3"))
    d = only(row(cmp, "x"))
    assert (d.kind, d.severity) == (DriftKind.PLACEMENT, Severity.INFO)
    assert "an operation is in progress" in d.message


# --------------------------------------------------------------------------- one UUID, two hosts


def test_stale_copy_of_a_migrated_vm() -> None:
    cmp = run(
        [vm("x", "h2")],
        view("h2", dom("x")),
        view("h3", dom("x", VirtState.SHUTOFF)),
    )
    assert len(cmp.vms) == 2
    live = next(r for r in cmp.vms if r.vdi is not None)
    assert live.virt_host_id == "h2" and live.key == uid("x") and live.drifts == ()
    stale = next(r for r in cmp.vms if r.vdi is None)
    assert stale.key == f"{uid('x')}@h3"
    d = only(stale)
    assert (d.kind, d.severity) == (DriftKind.DUPLICATE, Severity.INFO)
    assert d.message == "also defined on hv-t3 (shutoff), with the same UUID as the domain on hv-t2"


def test_active_copy_on_the_other_host_wins_the_match() -> None:
    # The platform still says h2, but the running instance is on h3: that is the VM.
    cmp = run(
        [vm("x", "h2")],
        view("h2", dom("x", VirtState.SHUTOFF)),
        view("h3", dom("x")),
    )
    live = next(r for r in cmp.vms if r.vdi is not None)
    assert live.virt_host_id == "h3"
    assert kinds(live) == [DriftKind.PLACEMENT]
    stale = next(r for r in cmp.vms if r.vdi is None)
    assert stale.key == f"{uid('x')}@h2" and only(stale).severity is Severity.INFO


def test_same_uuid_running_on_two_hosts_is_critical() -> None:
    cmp = run([vm("x", "h2")], view("h2", dom("x")), view("h3", dom("x")))
    copy = next(r for r in cmp.vms if r.vdi is None)
    assert copy.virt_host_id == "h3"
    d = only(copy)
    assert (d.kind, d.severity) == (DriftKind.DUPLICATE, Severity.CRITICAL)
    assert d.message.startswith("also active on hv-t3 (running)")


def test_same_uuid_on_two_hosts_while_busy_is_info() -> None:
    cmp = run(
        [vm("x", "h2", status=VdiVmStatus.BUSY)],
        view("h2", dom("x")),
        view("h3", dom("x", VirtState.PAUSED)),
    )
    copy = next(r for r in cmp.vms if r.vdi is None)
    assert only(copy).severity is Severity.INFO
    assert next(r for r in cmp.vms if r.vdi is not None).drifts == ()


# --------------------------------------------------------------------------- state mapping

S = VirtState
OK, INFO, WARN, CRIT = None, Severity.INFO, Severity.WARNING, Severity.CRITICAL
# Written out by hand, independently of reconcile.STATE_MAP, so a change there must show here.
STATE_TABLE: dict[int | None, dict[VirtState, Severity | None]] = {
    0: {S.SHUTOFF: OK, S.CRASHED: OK, S.SHUTDOWN: OK, S.NOSTATE: OK,
        S.RUNNING: CRIT, S.BLOCKED: CRIT, S.PAUSED: WARN, S.PMSUSPENDED: WARN},
    1: {S.RUNNING: OK, S.BLOCKED: OK, S.SHUTDOWN: OK, S.NOSTATE: OK,
        S.SHUTOFF: CRIT, S.CRASHED: CRIT, S.PAUSED: WARN, S.PMSUSPENDED: WARN},
    2: {S.PAUSED: OK, S.PMSUSPENDED: OK, S.NOSTATE: OK, S.RUNNING: WARN, S.BLOCKED: WARN,
        S.SHUTOFF: WARN, S.CRASHED: WARN, S.SHUTDOWN: WARN},
    5: dict.fromkeys(S, OK),
    6: dict.fromkeys(S, OK),
    9: dict.fromkeys(S, INFO),
    None: dict.fromkeys(S, INFO),
}  # fmt: skip
LABELS = {0: "off", 1: "running", 2: "suspended", 5: "busy", 6: "upgrading", 9: "status 9"}
CASES = [(code, st, exp) for code, row_ in STATE_TABLE.items() for st, exp in row_.items()]


def test_state_table_covers_every_libvirt_state() -> None:
    assert all(set(r) == set(VirtState) for r in STATE_TABLE.values())
    assert len(CASES) == 7 * 8


@pytest.mark.parametrize(("code", "state", "expected"), CASES)
def test_state_mapping(code: int | None, state: VirtState, expected: Severity | None) -> None:
    cmp = run([vm("x", status=code)], view("h1", dom("x", state)))
    r = row(cmp, "x")
    if expected is None:
        assert r.drifts == ()
        return
    d = only(r)
    assert (d.kind, d.severity) == (DriftKind.STATE, expected)
    label = LABELS.get(code, "unknown") if code is not None else "unknown"
    assert (d.vdi_value, d.virt_value) == (label, state.value)
    if expected is INFO:
        assert d.message == f"platform reports {label}, libvirt says {state.value}: not compared"
    else:
        assert d.message == f"platform says {label}, libvirt says {state.value}"


def test_state_message_example() -> None:
    cmp = run([vm("class-a-04")], view("h1", dom("class-a-04", VirtState.SHUTOFF)))
    d = only(row(cmp, "class-a-04"))
    assert d.message == "platform says running, libvirt says shutoff"
    assert d.severity is Severity.CRITICAL


@pytest.mark.parametrize("code", [VdiVmStatus.BUSY, VdiVmStatus.UPGRADING])
@pytest.mark.parametrize("state", list(VirtState))
def test_busy_and_upgrading_are_never_a_state_drift(code: int, state: VirtState) -> None:
    cmp = run([vm("x", status=code)], view("h1", dom("x", state)))
    assert cmp.drifts == ()


# --------------------------------------------------------------------------- vCPU and memory


def test_vcpu_mismatch() -> None:
    cmp = run([vm("class-b-02", vcpu=4)], view("h1", dom("class-b-02", vcpu=8)))
    d = only(row(cmp, "class-b-02"))
    assert (d.kind, d.severity) == (DriftKind.VCPU, Severity.WARNING)
    assert d.message == "platform says 4 vCPU, libvirt has 8"
    assert (d.vdi_value, d.virt_value) == ("4", "8")


@pytest.mark.parametrize(("ours", "theirs"), [(None, 8), (4, None), (None, None)])
def test_vcpu_unknown_on_either_side_is_not_compared(ours: int | None, theirs: int | None) -> None:
    assert run([vm("x", vcpu=ours)], view("h1", dom("x", vcpu=theirs))).drifts == ()


def test_memory_mb_equals_kib_over_1024() -> None:
    cmp = run([vm("x", memory_mb=8192)], view("h1", dom("x", memory_kib=8388608)))
    assert cmp.drifts == ()


@pytest.mark.parametrize(
    ("kib", "shown"),
    [
        (16384 * 1024, "16384 MiB"),
        (8192, "8 MiB"),  # someone forgot the 1024 factor
        (8192 * 1024 + 512, "8192.5 MiB"),
        (8192 * 1024 - 1, "8191.999 MiB"),  # must not print as 8192
    ],
)
def test_memory_mismatch(kib: int, shown: str) -> None:
    cmp = run([vm("x", memory_mb=8192)], view("h1", dom("x", memory_kib=kib)))
    d = only(row(cmp, "x"))
    assert (d.kind, d.severity) == (DriftKind.MEMORY, Severity.WARNING)
    assert d.message == f"platform says 8192 MiB, libvirt has {shown}"
    assert (d.vdi_value, d.virt_value) == ("8192 MiB", shown)


def test_memory_unknown_is_not_compared() -> None:
    assert run([vm("x", memory_mb=None)], view("h1", dom("x", memory_kib=1))).drifts == ()
    assert run([vm("x")], view("h1", dom("x", memory_kib=None))).drifts == ()


def test_several_drifts_on_one_row_are_sorted() -> None:
    cmp = run(
        [vm("x", "h3", vcpu=2, memory_mb=1024)],
        view("h2", dom("x", VirtState.SHUTOFF, vcpu=4, memory_kib=2048 * 1024)),
        view("h3"),
    )
    r = row(cmp, "x")
    assert [(d.severity, d.kind) for d in r.drifts] == [
        (Severity.CRITICAL, DriftKind.STATE),
        (Severity.WARNING, DriftKind.MEMORY),
        (Severity.WARNING, DriftKind.PLACEMENT),
        (Severity.WARNING, DriftKind.VCPU),
    ]
    assert all(d.key == r.key for d in r.drifts)


# --------------------------------------------------------------------------- presence


@pytest.mark.parametrize(
    ("status", "severity"),
    [
        (VdiVmStatus.RUNNING, Severity.CRITICAL),
        (VdiVmStatus.OFF, Severity.WARNING),
        (VdiVmStatus.SUSPENDED, Severity.WARNING),
        (VdiVmStatus.BUSY, Severity.WARNING),
    ],
)
def test_only_in_vdi_on_a_read_host(status: VdiVmStatus, severity: Severity) -> None:
    cmp = run([vm("class-b-05", "h2", id="d-5", status=status)], view("h2"))
    r = row(cmp, "class-b-05")
    assert r.checked and r.virt is None and r.key == "d-5"
    d = only(r)
    assert (d.kind, d.severity) == (DriftKind.ONLY_IN_VDI, severity)
    label = status.name.lower()
    assert d.message == f"platform lists it on hv-t2 ({label}), libvirt has no such domain"
    assert (d.vdi_value, d.virt_value) == (label, "absent")


@pytest.mark.parametrize(
    "host_view",
    [
        None,  # never read
        failed("h2"),
        HostView("h2", "qemu+tcp://10.0.0.2/system", ConnState.CONNECTING),  # no list yet
        # A failed host's last list is not evidence.
        HostView("h2", "qemu+tcp://10.0.0.2/system", ConnState.FAILED, domains=()),
    ],
    ids=["missing", "failed", "connecting", "failed-with-stale-list"],
)
def test_vm_on_an_unread_host_is_unchecked(host_view: HostView | None) -> None:
    views = [host_view] if host_view is not None else []
    cmp = run([vm("office-30", "h2")], *views)
    r = row(cmp, "office-30")
    assert not r.checked and r.drifts == () and r.virt is None
    assert all(d.kind is not DriftKind.ONLY_IN_VDI for d in cmp.drifts)


def test_domains_of_a_failed_view_are_shown_but_not_judged() -> None:
    # A domain only libvirt knew stays visible while its host is down (stale, unchecked); it
    # is no evidence of anything, so it raises no only-in-libvirt drift.
    stale = HostView(
        "h2", "qemu+tcp://x/system", ConnState.FAILED, domains=(dom("ghost"),), error=None
    )
    cmp = run([], stale, hosts=[host("h2")])
    r = row(cmp, "ghost")
    assert not r.checked and r.drifts == () and r.vdi is None and r.virt_host_id == "h2"
    assert all(d.kind is not DriftKind.ONLY_IN_LIBVIRT for d in cmp.drifts)
    assert cmp.hosts[0].virt_vms is None


def test_reconnecting_view_with_a_list_counts_as_read() -> None:
    v = HostView("h2", "qemu+tcp://x/system", ConnState.RECONNECTING, domains=())
    cmp = run([vm("x", "h2")], v)
    r = row(cmp, "x")
    assert r.checked and kinds(r) == [DriftKind.ONLY_IN_VDI]


def test_vm_on_an_unread_host_found_on_another_host_is_checked() -> None:
    cmp = run([vm("office-30", "h2", id="d-30")], failed("h2"), view("h3", dom("office-30")))
    r = row(cmp, "office-30")
    assert r.checked and r.virt_host_id == "h3"
    assert kinds(r) == [DriftKind.PLACEMENT]


@pytest.mark.parametrize(
    ("state", "severity"),
    [
        (VirtState.RUNNING, Severity.WARNING),
        (VirtState.PAUSED, Severity.WARNING),
        (VirtState.SHUTOFF, Severity.INFO),
        (VirtState.CRASHED, Severity.INFO),
    ],
)
def test_only_in_libvirt(state: VirtState, severity: Severity) -> None:
    cmp = run([], view("h3", dom("stray-build", state)), hosts=[host("h3")])
    r = row(cmp, "stray-build")
    assert r.vdi is None and r.key == uid("stray-build") and r.virt_host_id == "h3"
    assert r.host_id == "h3" and r.checked
    d = only(r)
    assert (d.kind, d.severity, d.host_id) == (DriftKind.ONLY_IN_LIBVIRT, severity, "h3")
    assert d.message == f"libvirt has it on hv-t3 ({state.value}), the platform does not know it"
    assert (d.vdi_value, d.virt_value) == ("absent", state.value)


# --------------------------------------------------------------------------- hosts


@pytest.mark.parametrize(
    ("status", "severity"),
    [
        (HostStatus.ENABLED, Severity.CRITICAL),
        (HostStatus.MAINTENANCE, Severity.WARNING),
        (HostStatus.SHUTDOWN, Severity.WARNING),
        (HostStatus.OFFLINE, Severity.WARNING),
        (None, Severity.WARNING),
    ],
)
def test_host_unreachable(status: int | None, severity: Severity) -> None:
    cmp = run([], failed("h9", "Connection refused"), hosts=[host("h9", status, name="hv-refuse")])
    (h,) = cmp.hosts
    (d,) = h.drifts
    assert (d.kind, d.severity) == (DriftKind.HOST_UNREACHABLE, severity)
    assert d.message == (
        "libvirt unreachable at test+tcp://127.0.3.9/default: refused: Connection refused"
    )
    assert (d.key, d.subject, d.host_id) == ("h9", "hv-refuse", "h9")
    assert d.virt_value == "refused"
    assert h.virt_vms is None
    assert cmp.drifts == (d,)


def test_failed_view_without_an_error_is_still_unreachable() -> None:
    v = HostView("h2", "qemu+tcp://10.0.0.2/system", ConnState.FAILED)
    (d,) = run([], v, hosts=[host("h2")]).hosts[0].drifts
    assert d.kind is DriftKind.HOST_UNREACHABLE
    assert d.message == "libvirt unreachable at qemu+tcp://10.0.0.2/system: no error given"


@pytest.mark.parametrize("status", [HostStatus.OFFLINE, HostStatus.SHUTDOWN])
def test_offline_but_reachable(status: HostStatus) -> None:
    cmp = run([], view("h7"), hosts=[host("h7", status, name="hv-o3")])
    (d,) = cmp.hosts[0].drifts
    assert (d.kind, d.severity) == (DriftKind.HOST_OFFLINE_BUT_REACHABLE, Severity.WARNING)
    label = status.name.lower()
    assert (
        d.message == f"platform says {label}, but libvirt answers at test+tcp://127.0.3.2/default"
    )
    assert (d.vdi_value, d.virt_value) == (label, "connected")


@pytest.mark.parametrize("status", [HostStatus.ENABLED, HostStatus.MAINTENANCE])
def test_reachable_host_the_platform_counts_up_has_no_drift(status: HostStatus) -> None:
    assert run([], view("h7"), hosts=[host("h7", status)]).drifts == ()


def test_offline_host_not_yet_read_has_no_drift() -> None:
    assert run([], hosts=[host("h7", HostStatus.OFFLINE)]).drifts == ()


def test_host_rows_sorted_and_counted() -> None:
    hosts = [
        host("h4", name="hv-o1", pool_name="Office"),
        host("h3", name="hv-t3", pool_name="Teaching"),
        host("h2", name="hv-t2", pool_name="Teaching"),
        host("h1", name="ocloud", pool_name="default"),
    ]
    vms = [vm("a", "h2"), vm("b", "h2"), vm("c", "h3")]
    cmp = run(vms, view("h2", dom("a"), dom("b"), dom("z")), failed("h3"), hosts=hosts)
    assert [h.host.name for h in cmp.hosts] == ["hv-o1", "hv-t2", "hv-t3", "ocloud"]
    counts = {h.host.name: (h.vdi_vms, h.virt_vms) for h in cmp.hosts}
    assert counts == {"hv-o1": (0, None), "hv-t2": (2, 3), "hv-t3": (1, None), "ocloud": (0, None)}
    by_name = {h.host.name: h for h in cmp.hosts}
    assert by_name["hv-t3"].view is not None and by_name["ocloud"].view is None


# --------------------------------------------------------------------------- ordering and keys


def scenario() -> tuple[list[VdiVm], list[HostView], list[VdiHost]]:
    hosts = [host(h) for h in ("h1", "h2", "h3", "h4")]
    vms = [
        vm("b", "h2"),
        vm("a", "h3", status=VdiVmStatus.OFF),
        vm("a", "h2", id="d-a2"),  # a name twin on the platform, unmatched
        vm("c", "h2", vcpu=2),
        vm("gone", "h2"),
        vm("hidden", "h4"),
    ]
    views = [
        view("h2", dom("b"), dom("c"), dom("stray")),
        view("h3", dom("a", VirtState.RUNNING)),
        view("h1"),
        failed("h4"),
    ]
    return vms, views, hosts


def test_rows_and_drifts_are_sorted() -> None:
    vms, views, hosts = scenario()
    cmp = run(vms, *views, hosts=hosts)
    assert [(r.name, r.host_id) for r in cmp.vms] == [
        ("a", "h2"),
        ("a", "h3"),
        ("b", "h2"),
        ("c", "h2"),
        ("gone", "h2"),
        ("hidden", "h4"),
        ("stray", "h2"),
    ]
    expected = [
        (Severity.CRITICAL, "a", DriftKind.ONLY_IN_VDI),
        (Severity.CRITICAL, "a", DriftKind.STATE),
        (Severity.CRITICAL, "gone", DriftKind.ONLY_IN_VDI),
        (Severity.CRITICAL, "hv-o1", DriftKind.HOST_UNREACHABLE),
        (Severity.WARNING, "c", DriftKind.VCPU),
        (Severity.WARNING, "stray", DriftKind.ONLY_IN_LIBVIRT),
    ]
    assert [(d.severity, d.subject, d.kind) for d in cmp.drifts] == expected
    assert not row_by_host(cmp, "hidden", "h4").checked


def row_by_host(cmp: Comparison, name: str, host_id: str) -> VmRow:
    (r,) = [r for r in cmp.vms if r.name == name and r.host_id == host_id]
    return r


def test_result_does_not_depend_on_input_order() -> None:
    vms, views, hosts = scenario()
    first = run(vms, *views, hosts=hosts)
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(vms)
        rng.shuffle(views)
        rng.shuffle(hosts)
        assert run(vms, *views, hosts=hosts) == first


def test_rows_with_one_name_sort_by_host_name_then_key() -> None:
    hosts = [host("h2", name="zeta"), host("h3", name="alpha")]
    vms = [vm("n", "h2", id="k2"), vm("n", "h3", id="k3"), vm("n", "h3", id="k1")]
    cmp = run(vms, view("h2"), view("h3"), hosts=hosts)
    assert [r.key for r in cmp.vms] == ["k1", "k3", "k2"]


def test_keys_stay_unique_when_the_platform_repeats_an_id() -> None:
    cmp = run([vm("p", id="d-1"), vm("q", id="d-1")], view("h1"))
    assert sorted(r.key for r in cmp.vms) == ["d-1", "d-1#2"]
    assert len({d.ident for d in cmp.drifts}) == 2


def test_comparison_drifts_are_the_rows_and_hosts_drifts() -> None:
    vms, views, hosts = scenario()
    cmp = run(vms, *views, hosts=hosts)
    from_rows = [d for r in cmp.vms for d in r.drifts]
    from_hosts = [d for h in cmp.hosts for d in h.drifts]
    assert sorted(cmp.drifts, key=str) == sorted(from_rows + from_hosts, key=str)
    assert len(cmp.drifts) == 6


def test_empty_inputs() -> None:
    cmp = reconcile(VdiInventory(hosts=(), vms=()), {})
    assert cmp == Comparison(vms=(), hosts=(), drifts=())


def test_core_imports_neither_textual_nor_the_lab() -> None:
    code = (
        "import sys, vditui.core.reconcile, vditui.core.drift, vditui.core.events, "
        "vditui.core.engine; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'textual' "
        "or m.startswith('vditui.lab')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("vdi_id", [None, "d-30"], ids=["by-uuid", "by-name"])
def test_failed_host_keeps_showing_its_last_known_domain_unjudged(vdi_id: str | None) -> None:
    # The platform and libvirt disagree in the last-known data, but a failed host's data is no
    # evidence: the row shows it (the UI marks it stale) and carries no drift.
    last = dom("office-30", VirtState.SHUTOFF, vcpu=8)
    stale = HostView("h2", "qemu+tcp://x/system", ConnState.FAILED, domains=(last,))
    cmp = run([vm("office-30", "h2", id=vdi_id)], stale)
    r = row(cmp, "office-30")
    assert not r.checked and r.drifts == ()
    assert r.virt == last and r.virt_host_id == "h2"
    assert r.key == last.uuid  # the key it had while the host was connected: no row churn
    assert cmp.drifts == () or all(d.kind is not DriftKind.STATE for d in cmp.drifts)
