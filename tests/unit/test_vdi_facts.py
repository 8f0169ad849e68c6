"""Who is affected, the platform's alarms, pools and host capacity (core/vdi_facts.py), the
parsing that keeps personal data out (core/vdi_parse.py), the host running-count rule, the
task verdicts (core/vdi_tasks.py) and their metrics (issue 20)."""

from __future__ import annotations

import asyncio
from types import MappingProxyType

import pytest

from tests.unit.test_metrics import LINKS, scrape
from vditui.core.actions import ActionTarget
from vditui.core.events import SnapshotReady
from vditui.core.metrics import MetricsState
from vditui.core.models import (
    ConnState,
    DesktopPool,
    Domain,
    DriftKind,
    HostView,
    PlatformAlarm,
    Severity,
    VdiHost,
    VdiInventory,
    VdiVm,
    VirtState,
)
from vditui.core.reconcile import reconcile
from vditui.core.vdi_errors import VdiStatusError
from vditui.core.vdi_facts import (
    affected_users,
    alarm_counts,
    alarm_line,
    capacity,
    capacity_line,
    pool_line,
    pool_usage,
    user_facing,
    user_facing_drifts,
    user_facing_first,
    user_line,
    vm_alarms,
)
from vditui.core.vdi_parse import (
    ShapeProblem,
    attach_users,
    merge_vms,
    parse_alarm,
    parse_event,
    parse_pool,
    parse_user,
    parse_vm,
)
from vditui.core.vdi_tasks import TaskWatch

NOW = 1_800_000_000.0
HOST = VdiHost("h1", "hv-1", "10.0.0.1", 1, pool_name="p", cpus=32, memory_gb=125.5,
               running_count=2, domain_limit=200)
VIEW = HostView("h1", "test+tcp://hv-1/default", ConnState.CONNECTED, (
    Domain("u-down", "down", VirtState.SHUTOFF, 2, 4 * 1024 * 1024),
    Domain("u-idle", "idle", VirtState.SHUTOFF, 2, 4 * 1024 * 1024),
    Domain("u-ok", "ok", VirtState.RUNNING, 4, 8 * 1024 * 1024),
    Domain("u-gone", "gone-user", VirtState.SHUTOFF, 2, 4 * 1024 * 1024),
), node_cpus=32, node_memory_kib=int(125.5 * 1024 * 1024))


def vm(uuid: str, name: str, status: int = 1, **kw: object) -> VdiVm:
    base = {"vcpu": 2, "memory_mb": 4096, "host_id": "h1", "desktop_pool_id": "dp1"}
    base.update(kw)
    return VdiVm(uuid, name, status, **base)  # type: ignore[arg-type]


VMS = (
    vm("u-down", "down", user_login="zhang.wei", user_name="Zhang Wei", connected=True,
       connect_time=NOW - 7200),
    vm("u-idle", "idle", user_login="li.na", connected=False, disconnect_time=NOW - 1800),
    vm("u-ok", "ok", vcpu=4, memory_mb=8192, user_login="wang.fang", connected=True,
       connect_time=NOW - 60),
    vm("u-gone", "gone-user", status=0, connected=True),
)
POOLS = (DesktopPool("dp1", "Teaching", amount=12, used_amount=7),
         DesktopPool("dp2", "Office", amount=3, used_amount=0, status=1))
ALARMS = (PlatformAlarm("1", "critical", "host", "CPU above 90%", "10.0.0.1"),
          PlatformAlarm("2", "major", "domain", "down: agent not answering"),
          PlatformAlarm("3", "critical", "storage", "pool almost full"))


def comparison():
    inv = VdiInventory((HOST,), VMS, POOLS, alarms=ALARMS)
    return reconcile(inv, {"h1": VIEW})


# --------------------------------------------------------------------------- who is affected


def test_a_drift_with_a_connected_user_is_user_facing_and_nothing_else_is():
    cmp = comparison()
    rows = {r.name: r for r in cmp.vms}
    assert rows["down"].drifts and user_facing(rows["down"])
    assert rows["idle"].drifts and not user_facing(rows["idle"])  # disconnected
    assert not rows["ok"].drifts and not user_facing(rows["ok"])  # connected, no drift
    assert not user_facing(rows["gone-user"])  # platform off, libvirt off: no drift
    assert affected_users(cmp.vms) == ["zhang.wei"]
    # The user-facing row goes first even where its name sorts last.
    swapped = (VMS[0].__class__(**{**_fields(VMS[0]), "connected": False}),
               VMS[1].__class__(**{**_fields(VMS[1]), "connected": True}), *VMS[2:])
    cmp2 = reconcile(VdiInventory((HOST,), swapped), {"h1": VIEW})
    assert [r.name for r in user_facing_first(cmp2)] == ["idle", "down", "gone-user", "ok"]
    counted = [d for d in cmp.drifts if d.key in ("u-down", "u-idle")]
    assert [d.key for d in user_facing_drifts(cmp, counted)] == ["u-down"]


def test_the_users_line():
    assert user_line(VMS[0], NOW) == "user zhang.wei (Zhang Wei) connected 2 h ago"
    assert user_line(VMS[1], NOW) == "user li.na disconnected 30 min ago"
    assert user_line(vm("x", "x", user_login="a"), NOW) == "user a, not connected"
    assert user_line(vm("x", "x"), NOW) == ""
    assert user_line(VMS[3], NOW) == "a user connected"
    assert user_line(None, NOW) == ""


def test_an_info_drift_is_not_user_facing():
    frozen = vm("u-down", "down", freeze=1, connected=True, user_login="z")
    cmp = reconcile(VdiInventory((HOST,), (frozen,)), {"h1": VIEW})
    (row,) = [r for r in cmp.vms if r.name == "down"]
    assert [d.severity for d in row.drifts] == [Severity.INFO] and not user_facing(row)


# --------------------------------------------------------------------------- alarms, pools


def test_alarms_are_placed_beside_their_host_and_vm_and_counted_by_level():
    cmp = comparison()
    assert [a.id for a in cmp.hosts[0].alarms] == ["1"]
    rows = {r.name: r for r in cmp.vms}
    assert [a.id for a in vm_alarms(cmp, rows["down"])] == ["2"]
    assert vm_alarms(cmp, rows["ok"]) == []
    assert alarm_counts(cmp.alarms) == {"critical": 2, "major": 1}
    assert alarm_line(ALARMS[0]) == "platform alarm (critical, host): CPU above 90%"


def test_pool_usage_and_a_pool_switching_template_explains_its_drift():
    cmp = comparison()
    teaching, office = pool_usage(cmp)[::-1]
    assert (teaching.used, teaching.amount, teaching.vms) == (7, 12, 4)
    assert teaching.drifts == sum(len(r.drifts) for r in cmp.vms)
    assert pool_line(office) == "Office: 0/3 used, 0 drifts, switching template"
    moved = tuple(v if v.name != "down" else VdiVm(**{**_fields(v), "desktop_pool_id": "dp2"})
                  for v in VMS)
    cmp2 = reconcile(VdiInventory((HOST,), moved, POOLS), {"h1": VIEW})
    (row,) = [r for r in cmp2.vms if r.name == "down"]
    assert [d.severity for d in row.drifts] == [Severity.INFO]
    assert "switching template" in row.drifts[0].message


def _fields(v: VdiVm) -> dict[str, object]:
    return {f: getattr(v, f) for f in v.__slots__}  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- capacity


def test_capacity_sums_the_running_guests_against_both_sides():
    cmp = comparison()
    c = capacity(cmp.hosts[0], cmp.vms)
    assert (c.vdi_cpus, c.node_cpus, c.running, c.limit, c.vcpus) == (32, 32, 1, 200, 4)
    assert (c.memory_gb, c.node_memory_gb) == (8.0, 125.5)
    assert capacity_line(c) == "CPU 4/32 vCPU, memory 8/125.5 GB (node 125.5), 1/200 VMs"


@pytest.mark.parametrize(("counted", "drift"), [(2, True), (1, False), (3, False)])
def test_running_count_drift_only_when_neither_libvirt_nor_the_list_explains_it(counted,
                                                                                drift):
    # libvirt runs 1 (ok), the platform's list has 3 running (down, idle, ok).
    host = VdiHost(**{**{f: getattr(HOST, f) for f in HOST.__slots__},  # type: ignore[attr-defined]
                      "running_count": counted})
    cmp = reconcile(VdiInventory((host,), VMS), {"h1": VIEW})
    kinds = [d.kind for d in cmp.hosts[0].drifts]
    assert (DriftKind.HOST_RUNNING_COUNT in kinds) is drift
    if drift:
        assert cmp.hosts[0].drifts[0].message == (
            "platform counts 2 running, libvirt runs 1 (the platform's VM list has 3 running)")


# --------------------------------------------------------------------------- parsing


PII = {"idNumber": "110101199001010011", "mobile": "13800138000", "mail": "zhang@corp.example"}


def test_a_user_is_read_without_national_id_phone_or_mail():
    u = parse_user({"id": "u1", "sAMAccountName": "zhang.wei", "displayName": "Zhang Wei",
                    **PII}, "data.list[0]")
    assert (u.id, u.login, u.display_name) == ("u1", "zhang.wei", "Zhang Wei")
    assert not any(v in repr(u) for v in PII.values())
    assert parse_user({"id": "u2", "cn": "li.na"}, "x").login == "li.na"


def test_domain_kinds_sessions_and_timestamps():
    raw = {"id": "v1", "name": "t", "status": 0, "isModel": 1, "isRecycle": 0, "freeze": 2,
           "motherId": "m", "motherName": "tpl", "userId": "u1", "isConnected": 1,
           "connectTime": {"time": 1_700_000_000_123}}
    v = parse_vm(raw, "d")
    assert (v.template, v.recycled, v.freeze, v.frozen, v.mother_name) == (True, False, 2,
                                                                           True, "tpl")
    assert (v.user_id, v.connected, v.connect_time) == ("u1", True, 1_700_000_000.123)
    with pytest.raises(ShapeProblem, match=r"d.connectTime: expected an object"):
        parse_vm({**raw, "connectTime": 5}, "d")
    (named,) = attach_users([v], [parse_user({"id": "u1", "cn": "z", **PII}, "u")])
    assert named.user_login == "z"


def test_merge_marks_templates_and_recycled_whichever_list_had_them():
    listed = [VdiVm("a", "a", 0, 1, 1, "h"), VdiVm("t", "t", 0, 1, 1, "h")]
    tpl = [VdiVm("t", "t", 0, 1, 1, "h"), VdiVm("t2", "t2", 0, 1, 1, "h")]
    rec = [VdiVm("r", "r", 0, 1, 1, "h")]
    got = {v.id: v for v in merge_vms(listed, tpl, rec)}
    assert sorted(got) == ["a", "r", "t", "t2"]
    assert got["t"].template and got["t2"].template and got["r"].recycled
    assert not got["a"].template and not got["a"].recycled


def test_pools_alarms_and_events():
    p = parse_pool({"id": "d", "name": "n", "amount": 5, "usedAmount": 2, "status": 1}, "p")
    assert (p.used_amount, p.switching) == (2, True)
    a = parse_alarm({"id": 7, "level": "critical", "content": "x",
                     "alarmTime": "2024-03-01 08:00:00"}, "a")
    assert a.id == "7" and a.at == 1709251200.0  # 08:00 at UTC+8
    with pytest.raises(ShapeProblem, match="alarmTime"):
        parse_alarm({"id": 1, "alarmTime": "yesterday"}, "a")
    failed = parse_event({"id": "e", "isSuccess": 1, "errorReason": "no disk",
                          "domainId": "v"}, "data")
    assert (failed.failed, failed.done, failed.reason) == (True, True, "no disk")
    assert parse_event({"id": "e", "isSuccess": 1}, "d").failed is False  # ambiguous: not
    assert parse_event({"id": "e"}, "d").done is False


# --------------------------------------------------------------------------- task verdicts


class Events:
    def __init__(self, answers: dict[str, object]) -> None:
        self.answers, self.asked = answers, []

    async def event(self, event_id: str):
        self.asked.append(event_id)
        got = self.answers[event_id]
        if isinstance(got, Exception):
            raise got
        return got


def test_a_task_watch_reports_failures_and_stops_asking_about_finished_tasks():
    target = ActionTarget("k", "down", "v1", "h1", "hv-1")
    other = ActionTarget("k2", "up", "v2", "h1", "hv-1")
    src = Events({"e1": parse_event({"id": "e1", "domainId": "v1", "errorReason": "no disk"},
                                    "d"),
                  "e2": parse_event({"id": "e2", "domainName": "up"}, "d")})
    watch = TaskWatch(src)
    watch.add(["e1", "e2", "e1"])
    got = asyncio.run(watch.failures({"v1": target, "v2": other}))
    assert got == [(target, "no disk")]
    assert watch.open == ["e2"]  # e2 has no verdict yet: asked again next time
    asyncio.run(watch.failures({"v2": other}))
    assert src.asked == ["e1", "e2", "e2"]
    broken = TaskWatch(Events({"e": VdiStatusError("u", "m", 404, "no")}))
    broken.add(["e"])
    assert asyncio.run(broken.failures({})) == [] and broken.broken


# --------------------------------------------------------------------------- metrics


def test_metrics_count_affected_users_alarms_and_pools():
    cmp = comparison()
    snap = SnapshotReady(NOW, 0, cmp, MappingProxyType({}), MappingProxyType(LINKS),
                         settled=True)
    state = MetricsState(stale_after=70.0, clock=lambda: 100.0)
    state.on_event(snap)
    got = scrape(state)
    assert got["vditui_affected_users"] == {(): 1.0}
    assert got["vditui_platform_alarms"] == {(("level", "critical"),): 2.0,
                                             (("level", "major"),): 1.0}
    assert got["vditui_pool_desktops"][(("count", "used"), ("pool", "Teaching"))] == 7.0
    assert got["vditui_pool_drifts"][(("pool", "Office"),)] == 0.0
