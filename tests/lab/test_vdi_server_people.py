"""The simulated platform's people and kinds (issue 20 item 6): users, sessions, templates, the
recycle bin, restore points, linked clones, pools switching template, host capacity, alarms and
task events, every answer checked against the vendor's spec (tests/lab/vendor_spec.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.lab.vendor_spec import Spec, assert_declared, check
from vditui.lab import scenario as sc
from vditui.lab.vdi_server import VdiServer

KINDS = "vditui/lab/scenarios/kinds.toml"


def serve(scen: sc.Scenario) -> tuple[VdiServer, httpx.Client]:
    srv = VdiServer(scen, {h.name: f"127.0.0.{10 + i}" for i, h in enumerate(scen.hosts)})
    srv.start()
    c = httpx.Client(base_url=srv.url, timeout=10)
    md5 = hashlib.md5(scen.vdi.password.encode()).hexdigest()
    token = c.post("/ocloud/v1/login", json={"username": scen.vdi.username, "password": md5,
                                             "client": ""}).json()["data"]["token"]
    c.headers["Token"] = token
    return srv, c


@pytest.fixture(params=[False, True], ids=["lists-them", "omits-them"])
def kinds(request: pytest.FixtureRequest) -> Iterator[tuple[sc.Scenario, httpx.Client,
                                                            VdiServer]]:
    scen = sc.load(KINDS).with_vdi(list_omits=request.param)
    srv, c = serve(scen)
    yield scen, c, srv
    c.close()
    srv.stop()


@pytest.fixture
def default() -> Iterator[tuple[sc.Scenario, httpx.Client, VdiServer]]:
    scen = sc.load_default().without_driver("qemu")
    srv, c = serve(scen)
    yield scen, c, srv
    c.close()
    srv.stop()


def names(body: dict[str, Any]) -> set[str]:
    return {r["name"] for r in body["data"]["list"]}


def test_templates_and_recycle_bin_both_ways(spec: Spec, kinds) -> None:
    scen, c, _ = kinds
    templates = {v.name for v in scen.vms if v.vdi and v.vdi.kind == "template"}
    recycled = {v.name for v in scen.vms if v.vdi and v.vdi.kind == "recycled"}
    every = {v.name for v in scen.vms if v.vdi}
    listed = names(check(spec, c.get("/ocloud/v1/domain", params={"pageSize": 100}),
                         "GET", "/ocloud/v1/domain"))
    assert listed == (every - templates - recycled if scen.vdi.list_omits else every)
    model = check(spec, c.get("/ocloud/v1/model", params={"pageSize": 100}),
                  "GET", "/ocloud/v1/model")
    assert names(model) == templates
    assert all(r["isModel"] == 1 for r in model["data"]["list"])
    by_name = {r["name"]: r for r in model["data"]["list"]}
    assert by_name["tpl-base"]["childCount"] == 2 and by_name["tpl-lonely"]["childCount"] == 0
    bin_ = check(spec, c.get("/ocloud/v1/recycle", params={"pageSize": 100}),
                 "GET", "/ocloud/v1/recycle")
    assert names(bin_) == recycled and all(r["isRecycle"] == 1 for r in bin_["data"]["list"])
    # The omitted ones still answer by id, as DomainVO.
    for vm in scen.vms:
        if vm.vdi is not None and vm.vdi.kind != "desktop":
            one = check(spec, c.get(f"/ocloud/v1/domain/{vm.vdi.id}"), "GET",
                        "/ocloud/v1/domain/{id}")
            assert one["data"]["name"] == vm.name
            assert_declared(spec, "DomainVO", one["data"])


def test_clones_restore_points_and_switching_pools(spec: Spec, kinds) -> None:
    scen, c, _ = kinds
    base = next(v for v in scen.vms if v.name == "tpl-base")
    assert base.vdi is not None
    clones = check(spec, c.get("/ocloud/v1/domain", params={"motherId": base.vdi.id}),
                   "GET", "/ocloud/v1/domain")
    assert names(clones) == {"clone-ok", "clone-down"}
    rec = clones["data"]["list"][0]
    assert rec["motherName"] == "tpl-base" and rec["isCloneDomain"] == 1
    rows = check(spec, c.get("/ocloud/v1/domain", params={"pageSize": 100}), "GET",
                 "/ocloud/v1/domain")["data"]["list"]
    frozen = {r["name"]: r["freeze"] for r in rows if r["freeze"]}
    assert frozen == {"frozen-resetting": 2, "frozen-rogue": 1, "frozen-off": 1}
    pools = check(spec, c.get("/ocloud/v1/desk-pool"), "GET", "/ocloud/v1/desk-pool")
    status = {p["name"]: p["status"] for p in pools["data"]["list"]}
    assert status == {"Kinds": 0, "Switching": 1}
    kinds_pool = next(p for p in pools["data"]["list"] if p["name"] == "Kinds")
    assert kinds_pool["curModelId"] and kinds_pool["amount"] >= kinds_pool["usedAmount"] > 0


def test_users_sessions_and_their_filters(spec: Spec, default) -> None:
    scen, c, _ = default
    users = check(spec, c.get("/ocloud/v1/user", params={"pageSize": 100}), "GET",
                  "/ocloud/v1/user")["data"]["list"]
    assert {u["sAMAccountName"] for u in users} == {u.login for u in scen.users}
    for u in users:
        assert_declared(spec, "UserListVo", u)
        # A real platform serves these; the lab does too, so vditui's dropping them is tested.
        assert u["idNumber"] and u["mobile"] and "@" in u["mail"]
    zhang = next(u for u in users if u["sAMAccountName"] == "zhang.wei")
    online = check(spec, c.get("/ocloud/v1/domain", params={"isConnected": 1}), "GET",
                   "/ocloud/v1/domain")
    assert names(online) == {"class-a-01", "class-a-04"}
    bound = check(spec, c.get("/ocloud/v1/domain", params={"isBindUser": 1}), "GET",
                  "/ocloud/v1/domain")
    assert names(bound) == {"class-a-01", "class-a-04", "office-10"}
    rows = {r["name"]: r for r in bound["data"]["list"]}
    assert rows["class-a-04"]["userId"] == zhang["id"] and rows["class-a-04"]["isConnected"] == 1
    assert "disconnectTime" not in rows["class-a-04"]
    gone = rows["office-10"]
    assert gone["isConnected"] == 0
    assert gone["disconnectTime"]["time"] > gone["connectTime"]["time"]
    active = check(spec, c.get("/ocloud/v1/domain/active-user"), "GET",
                   "/ocloud/v1/domain/active-user")
    assert names(active) == {"class-a-01", "class-a-04"}
    stat = check(spec, c.get("/ocloud/v1/domain/user-stat"), "GET", "/ocloud/v1/domain/user-stat")
    assert stat["data"] == {"in": 2, "out": 0, "offline": 1}
    check(spec, c.get("/ocloud/v1/domain", params={"isConnected": "x"}), "GET",
          "/ocloud/v1/domain", ok=False)


def test_hosts_carry_capacity_and_alarms_are_listed(spec: Spec, default) -> None:
    _scen, c, _ = default
    hosts = check(spec, c.get("/ocloud/v1/host", params={"pageSize": 100}), "GET",
                  "/ocloud/v1/host")["data"]["list"]
    for h in hosts:
        assert h["cpuSize"] > 0 and h["memory"] > 0 and h["physicalMemory"] >= h["memory"]
        assert h["domainLimit"] >= h["runningDomainCount"]
    alarms = check(spec, c.get("/ocloud/v1/alarm"), "GET", "/ocloud/v1/alarm")["data"]["list"]
    assert [(a["level"], a["hostIp"]) for a in alarms] == [
        ("critical", next(h["ip"] for h in hosts if h["name"] == "hv-o1"))]
    assert_declared(spec, "AlarmVO", alarms[0])


def test_batch_events_succeed_or_fail_with_the_platforms_reason(spec: Spec, default) -> None:
    scen, c, srv = default
    srv.action_delay = 0.1
    ids = {v.name: v.vdi.id for v in scen.vms if v.vdi is not None}
    srv.set_action_fault("task_fail", vms=["class-a-03"], msg="存储空间不足 (no storage)")
    body = check(spec, c.post("/ocloud/v1/domain/start",
                              json={"idList": [ids["class-a-03"], ids["class-b-04"]]}),
                 "POST", "/ocloud/v1/domain/start")
    events = body["data"]["eventIdList"]
    assert len(events) == 2 and body["data"]["errorList"] == []
    pending = check(spec, c.get(f"/ocloud/v1/event/{events[0]}"), "GET", "/ocloud/v1/event/{id}")
    assert "errorReason" not in pending["data"]
    assert srv.wait_actions(10)
    failed, done = (check(spec, c.get(f"/ocloud/v1/event/{e}"), "GET",
                          "/ocloud/v1/event/{id}")["data"] for e in events)
    assert (failed["isSuccess"], failed["errorReason"]) == (1, "存储空间不足 (no storage)")
    assert failed["domainName"] == "class-a-03"
    assert done["isSuccess"] == 0 and "errorReason" not in done
    # The failed task changed nothing; the other started.
    one = c.get(f"/ocloud/v1/domain/{ids['class-a-03']}").json()["data"]
    assert one["status"] == 0
    check(spec, c.get("/ocloud/v1/event/nope"), "GET", "/ocloud/v1/event/{id}", ok=False)


def test_sessions_connect_and_disconnect(spec: Spec, default) -> None:
    scen, c, srv = default
    vm = next(v for v in scen.vms if v.name == "office-10")
    assert vm.vdi is not None

    def rec() -> dict[str, Any]:
        return check(spec, c.get(f"/ocloud/v1/domain/{vm.vdi.id}"), "GET",
                     "/ocloud/v1/domain/{id}")["data"]

    before = rec()
    assert before["isConnected"] == 0 and "disconnectTime" in before
    srv.set_session(vm.uuid, True)
    now = rec()
    assert now["isConnected"] == 1 and "disconnectTime" not in now
    assert now["connectTime"]["time"] > before["disconnectTime"]["time"]
    online = check(spec, c.get("/ocloud/v1/domain/active-user"), "GET",
                   "/ocloud/v1/domain/active-user")
    assert "office-10" in names(online)
    srv.set_session(vm.uuid, False)
    gone = rec()
    assert gone["isConnected"] == 0 and gone["disconnectTime"]["time"] >= now["connectTime"]["time"]
    unbound = next(v for v in scen.vms if v.name == "class-b-01")
    with pytest.raises(ValueError, match="no user is bound"):
        srv.set_session(unbound.uuid, True)
