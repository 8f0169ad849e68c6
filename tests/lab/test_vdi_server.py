"""The simulated OCloudView server: every answer is checked against the vendor's OpenAPI spec,
strictly (tests/lab/vendor_spec.py)."""

from __future__ import annotations

import hashlib
import json
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.lab.vendor_spec import Spec, assert_declared, check, check_request
from vditui.lab import scenario as sc
from vditui.lab.vdi_server import VdiServer

LOGIN = "/ocloud/v1/login"

# --------------------------------------------------------------------------- the server


def host_ips(scen: sc.Scenario) -> dict[str, str]:
    return {h.name: f"127.0.0.{10 + i}" for i, h in enumerate(scen.hosts)}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def login(client: httpx.Client, scen: sc.Scenario) -> str:
    vdi = scen.vdi
    resp = client.post(LOGIN, json={"username": vdi.username, "password": md5(vdi.password),
                                    "client": ""})
    body = resp.json()
    assert body["status"] == 0, body
    return body["data"]["token"]


@pytest.fixture(scope="module")
def default() -> sc.Scenario:
    return sc.load_default().without_driver("qemu")


@pytest.fixture(scope="module")
def server(default: sc.Scenario) -> Iterator[VdiServer]:
    srv = VdiServer(default, host_ips(default))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: VdiServer, default: sc.Scenario) -> Iterator[httpx.Client]:
    """A logged-in client on the shared (never mutated) default server."""
    with httpx.Client(base_url=server.url, timeout=10) as c:
        c.headers["Token"] = login(c, default)
        yield c


@pytest.fixture(scope="module")
def big() -> sc.Scenario:
    return sc.generate(hosts=5, vms_per_host=40)


@pytest.fixture(scope="module")
def big_client(big: sc.Scenario) -> Iterator[httpx.Client]:
    srv = VdiServer(big, host_ips(big))
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        c.headers["Token"] = login(c, big)
        yield c
    srv.stop()


Fresh = Callable[..., tuple[VdiServer, httpx.Client]]


@pytest.fixture
def fresh(default: sc.Scenario) -> Iterator[Fresh]:
    """Private servers for tests that change state: ``fresh(scenario=None, login=True, **vdi)``."""
    made: list[tuple[VdiServer, httpx.Client]] = []

    def make(scenario: sc.Scenario | None = None, logged_in: bool = True,
             **vdi: Any) -> tuple[VdiServer, httpx.Client]:
        scen = scenario or default
        if vdi:
            scen = scen.with_vdi(**vdi)
        srv = VdiServer(scen, host_ips(scen))
        srv.start()
        c = httpx.Client(base_url=srv.url, timeout=10)
        made.append((srv, c))
        if logged_in:
            c.headers["Token"] = login(c, scen)
        return srv, c

    yield make
    for srv, c in made:
        c.close()
        srv.stop()


def vdi_vms(scen: sc.Scenario) -> list[sc.VmSpec]:
    return [v for v in scen.vms if v.vdi is not None]


def first_running(scen: sc.Scenario) -> sc.VmSpec:
    return next(v for v in vdi_vms(scen) if v.vdi is not None and v.vdi.status == 1)


# --------------------------------------------------------------------------- the checker itself


def test_validation_is_strict(spec: Spec) -> None:
    good = {"id": "x", "cpu": 2, "memory": 4096, "createTime": {"time": 1}}
    assert spec.errors("DomainVO", good) == []
    for bad in ({"cpu": 1.0}, {"cpu": "2"}, {"cpu": True}, {"invented": 1},
                {"createTime": 1709251440000}, {"createTime": {"time": 1, "zone": "x"}}):
        assert spec.errors("DomainVO", {**good, **bad}), bad
    assert spec.errors("HostVO", {"createTime": {"time": 1}})  # a string in HostVO
    assert spec.errors("ResponseVO«DomainVO»", {"status": 0, "msg": "", "data": None})
    assert spec.response_schema("GET", "/ocloud/v1/domain") == "ResponseVO«PageResult«DomainVO»»"


# --------------------------------------------------------------------------- login and tokens


def test_login_ok(spec: Spec, server: VdiServer, default: sc.Scenario) -> None:
    with httpx.Client(base_url=server.url) as c:
        resp = c.post(LOGIN, json={"username": "admin", "password": md5(default.vdi.password),
                                   "client": ""})
    body = check(spec, resp, "POST", LOGIN)
    data = body["data"]
    assert_declared(spec, "LoginVO", data)
    assert data["username"] == "admin" and len(data["token"]) >= 16
    assert {"roleLevel", "userPri", "resourcePri"} <= set(data)


@pytest.mark.parametrize("payload", [
    {"username": "admin", "password": md5("wrong"), "client": ""},
    {"username": "root", "password": md5("lab-Pa55word!"), "client": ""},
    {"username": "admin", "password": "lab-Pa55word!", "client": ""},  # not md5-hashed
], ids=["password", "username", "plain-password"])
def test_login_wrong(spec: Spec, server: VdiServer, payload: dict[str, str]) -> None:
    with httpx.Client(base_url=server.url) as c:
        body = check(spec, c.post(LOGIN, json=payload), "POST", LOGIN, ok=False)
    assert body["status"] == 1001
    assert body["msg"] == "用户名或密码错误 (wrong username or password)"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'{"username": 5}'],
                         ids=["broken", "array", "empty", "bad-types"])
def test_login_malformed(spec: Spec, server: VdiServer, raw: bytes) -> None:
    with httpx.Client(base_url=server.url) as c:
        resp = c.post(LOGIN, content=raw, headers={"Content-Type": "application/json"})
    body = check(spec, resp, "POST", LOGIN, ok=False)
    assert body["status"] == 400


def _authed_calls(default: sc.Scenario) -> list[tuple[str, str, str, Any]]:
    host_id = default.hosts[0].id
    side = vdi_vms(default)[0].vdi
    assert side is not None
    vm_id = side.id
    return [
        ("GET", "/ocloud/v1/host", "/ocloud/v1/host", None),
        ("GET", "/ocloud/v1/host/{id}", f"/ocloud/v1/host/{host_id}", None),
        ("POST", "/ocloud/v1/host/{id}/sync-status", f"/ocloud/v1/host/{host_id}/sync-status",
         None),
        ("GET", "/ocloud/v1/domain", "/ocloud/v1/domain", None),
        ("GET", "/ocloud/v1/domain/{id}", f"/ocloud/v1/domain/{vm_id}", None),
        ("POST", "/ocloud/v1/domain/{id}/sync-status", f"/ocloud/v1/domain/{vm_id}/sync-status",
         {"syncType": 1}),
        ("POST", "/ocloud/v1/domain/start", "/ocloud/v1/domain/start", {"idList": [vm_id]}),
        ("POST", "/ocloud/v1/domain/close", "/ocloud/v1/domain/close", {"idList": [vm_id]}),
        ("POST", "/ocloud/v1/domain/reboot", "/ocloud/v1/domain/reboot", {"idList": [vm_id]}),
        ("GET", "/ocloud/v1/desk-pool", "/ocloud/v1/desk-pool", None),
    ]


@pytest.mark.parametrize("token", [None, "", "0123456789abcdef0123456789abcdef"],
                         ids=["missing", "empty", "unknown"])
def test_every_endpoint_needs_a_token(spec: Spec, server: VdiServer, default: sc.Scenario,
                                      token: str | None) -> None:
    headers = {} if token is None else {"Token": token}
    with httpx.Client(base_url=server.url, headers=headers) as c:
        for method, template, path, payload in _authed_calls(default):
            resp = c.request(method, path, json=payload)
            body = check(spec, resp, method, template, ok=False)
            assert body["status"] == 401 and "token" in body["msg"], (template, body)


def test_token_expires_after_ttl(spec: Spec, fresh: Fresh) -> None:
    srv, c = fresh(token_ttl=0.2)
    check(spec, c.get("/ocloud/v1/domain"), "GET", "/ocloud/v1/domain")
    time.sleep(0.35)
    body = check(spec, c.get("/ocloud/v1/domain"), "GET", "/ocloud/v1/domain", ok=False)
    assert body["status"] == 401
    assert body["msg"] == "token已过期，请重新登录 (token expired, log in again)"
    c.headers["Token"] = login(c, srv.scenario)
    check(spec, c.get("/ocloud/v1/domain"), "GET", "/ocloud/v1/domain")


def test_expire_tokens(spec: Spec, fresh: Fresh) -> None:
    srv, c = fresh()
    check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host")
    srv.expire_tokens()
    body = check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host", ok=False)
    assert body["status"] == 401 and "token" in body["msg"]
    c.headers["Token"] = login(c, srv.scenario)
    check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host")


# --------------------------------------------------------------------------- hosts


def test_host_list(spec: Spec, client: httpx.Client, default: sc.Scenario) -> None:
    body = check(spec, client.get("/ocloud/v1/host", params={"pageSize": 100}),
                 "GET", "/ocloud/v1/host")
    data = body["data"]
    in_vdi = [h for h in default.hosts if h.in_vdi]
    assert data["total"] == len(in_vdi) == len(data["list"])
    assert (data["pageNum"], data["pageSize"], data["pages"]) == (1, 100, 1)
    ips, pools = host_ips(default), {p.id: p.name for p in default.pools}
    by_name = {h["name"]: h for h in data["list"]}
    for spec_host in in_vdi:
        rec = by_name[spec_host.name]
        assert_declared(spec, "HostVO", rec)
        running = spec_host.running_skew + sum(
            1 for v in vdi_vms(default)
            if v.vdi and v.vdi.host == spec_host.name and v.vdi.status == 1)
        assert rec["id"] == spec_host.id
        assert rec["ip"] == ips[spec_host.name]
        assert rec["cpu"] == spec_host.cpu_model and rec["cpuSize"] == spec_host.cpus
        assert rec["memory"] == spec_host.memory_gb
        assert rec["status"] == spec_host.vdi_status
        assert rec["poolId"] == spec_host.pool and rec["poolName"] == pools[spec_host.pool]
        assert rec["runningDomainCount"] == running
        assert rec["arch"] == "x86_64" and isinstance(rec["createTime"], str)
    assert by_name["hv-o3"]["status"] == 3  # declared offline in the scenario
    names = [h["name"] for h in data["list"]]
    assert names == sorted(names)


@pytest.mark.parametrize(("params", "expected"), [
    ({"name": "hv-t"}, {"hv-t1", "hv-t2", "hv-t3"}),
    ({"name": "HV-T"}, {"hv-t1", "hv-t2", "hv-t3"}),
    ({"status": "3"}, {"hv-o3"}),
    ({"status": "0,3"}, {"hv-o3"}),
    ({"poolId": "pool-default"}, {"ocloud"}),
    ({"poolId": "pool-office", "name": "o1"}, {"hv-o1"}),
    ({"arch": "aarch64"}, set()),
])
def test_host_filters(spec: Spec, client: httpx.Client, params: dict[str, str],
                      expected: set[str]) -> None:
    body = check(spec, client.get("/ocloud/v1/host", params={**params, "pageSize": 100}),
                 "GET", "/ocloud/v1/host")
    assert {h["name"] for h in body["data"]["list"]} == expected
    assert body["data"]["total"] == len(expected)


def test_host_detail(spec: Spec, client: httpx.Client, default: sc.Scenario) -> None:
    host = default.host("hv-t3")
    body = check(spec, client.get(f"/ocloud/v1/host/{host.id}"), "GET", "/ocloud/v1/host/{id}")
    data = body["data"]
    assert_declared(spec, "HostDetailVO", data)
    assert (data["id"], data["name"], data["cpuSize"], data["memory"]) == (
        host.id, "hv-t3", 64, 251.2)
    assert data["ip"] == host_ips(default)["hv-t3"]
    missing = client.get("/ocloud/v1/host/no-such-host")
    body = check(spec, missing, "GET", "/ocloud/v1/host/{id}", ok=False)
    assert "no-such-host" in body["msg"]


def test_host_sync(spec: Spec, client: httpx.Client, default: sc.Scenario) -> None:
    template = "/ocloud/v1/host/{id}/sync-status"
    body = check(spec, client.post(f"/ocloud/v1/host/{default.hosts[0].id}/sync-status"),
                 "POST", template)
    assert body == {"status": 0, "msg": "操作成功"}
    check(spec, client.post("/ocloud/v1/host/nope/sync-status"), "POST", template, ok=False)


# --------------------------------------------------------------------------- domains


def test_domain_list(spec: Spec, client: httpx.Client, default: sc.Scenario) -> None:
    body = check(spec, client.get("/ocloud/v1/domain", params={"pageSize": 100}),
                 "GET", "/ocloud/v1/domain")
    rows = body["data"]["list"]
    vms = vdi_vms(default)
    assert body["data"]["total"] == len(vms) == len(rows)
    by_id = {r["id"]: r for r in rows}
    pool_names = {p.id: p.name for p in default.pools}
    for vm in vms:
        assert vm.vdi is not None
        rec = by_id[vm.vdi.id]
        assert_declared(spec, "DomainVO", rec)
        host = default.host(vm.vdi.host)
        assert rec["name"] == vm.name and rec["status"] == vm.vdi.status
        assert rec["cpu"] == vm.vdi.vcpu and rec["memory"] == vm.vdi.memory_mb
        assert rec["cores"] * rec["sockets"] * rec["threads"] == rec["cpu"]
        assert rec["hostId"] == host.id and rec["hostName"] == host.name
        assert rec["poolId"] == host.pool and rec["poolName"] == pool_names[host.pool]
        assert isinstance(rec["createTime"]["time"], int)
        assert rec["isConnected"] in (0, 1) and rec["ip"].count(".") == 3
    # The default scenario's two "office-dup" VMs and the non-UUID platform ids survive.
    assert {"d-1001", "d-1002", "d-2002"} <= set(by_id)
    assert all(v.name != "stray-build" for v in vms) and "stray-build" not in {
        r["name"] for r in rows}
    keys = [(r["name"], r["id"]) for r in rows]
    assert keys == sorted(keys)


def _expected_vms(scen: sc.Scenario, pred: Callable[[sc.VmSpec, sc.VdiSide], bool]) -> set[str]:
    return {v.vdi.id for v in vdi_vms(scen) if v.vdi is not None and pred(v, v.vdi)}


def test_domain_filters(spec: Spec, client: httpx.Client, default: sc.Scenario) -> None:
    def ids(**params: str) -> set[str]:
        body = check(spec, client.get("/ocloud/v1/domain", params={**params, "pageSize": 100}),
                     "GET", "/ocloud/v1/domain")
        assert body["data"]["total"] == len(body["data"]["list"])
        return {r["id"] for r in body["data"]["list"]}

    def pool_of(side: sc.VdiSide) -> str:
        return default.host(side.host).pool

    t1 = default.host("hv-t1")
    assert ids(hostId=t1.id) == _expected_vms(default, lambda _, d: d.host == "hv-t1")
    assert ids(status="0") == _expected_vms(default, lambda _, d: d.status == 0)
    assert ids(status="2,5,6") == _expected_vms(default, lambda _, d: d.status in (2, 5, 6))
    assert ids(keyword="office-dup") == {"d-1001", "d-1002"}
    assert ids(keyword="CLASS-A") == _expected_vms(default, lambda v, _: "class-a" in v.name)
    assert ids(poolId="pool-teach", status="1") == _expected_vms(
        default, lambda _, d: pool_of(d) == "pool-teach" and d.status == 1)
    assert len(ids(poolId="pool-teach", status="1")) > 3
    assert ids(hostId="no-such-host") == set()
    bad = client.get("/ocloud/v1/domain", params={"status": "running"})
    assert check(spec, bad, "GET", "/ocloud/v1/domain", ok=False)["status"] == 400
    bad = client.get("/ocloud/v1/domain", params={"pageNum": "two"})
    check(spec, bad, "GET", "/ocloud/v1/domain", ok=False)


def test_domain_detail(spec: Spec, client: httpx.Client, default: sc.Scenario) -> None:
    vm = next(v for v in default.vms if v.vdi is not None and v.vdi.id == "d-2002")
    body = check(spec, client.get("/ocloud/v1/domain/d-2002"), "GET", "/ocloud/v1/domain/{id}")
    assert_declared(spec, "DomainVO", body["data"])
    assert (body["data"]["name"], body["data"]["hostName"]) == (vm.name, "hv-o1")
    missing = client.get("/ocloud/v1/domain/no-such-vm")
    assert "no-such-vm" in check(spec, missing, "GET", "/ocloud/v1/domain/{id}", ok=False)["msg"]


def test_domain_sync(spec: Spec, client: httpx.Client) -> None:
    template = "/ocloud/v1/domain/{id}/sync-status"
    for payload in ({"syncType": 1}, {"syncType": 0}, None):
        check(spec, client.post("/ocloud/v1/domain/d-2002/sync-status", json=payload),
              "POST", template)
    for path, kwargs in [("/ocloud/v1/domain/nope/sync-status", {"json": {"syncType": 1}}),
                         ("/ocloud/v1/domain/d-2002/sync-status", {"json": {"syncType": 7}}),
                         ("/ocloud/v1/domain/d-2002/sync-status", {"content": b"{oops"})]:
        check(spec, client.post(path, **kwargs), "POST", template, ok=False)


@pytest.mark.parametrize("action", ["start", "close", "reboot"])
def test_batch_actions(spec: Spec, fresh: Fresh, default: sc.Scenario, action: str) -> None:
    """Without the lab's hosts behind it the platform flips its own record, after the delay
    (tests/lab/test_platform_actions.py covers the real thing)."""
    srv, c = fresh()
    srv.action_delay = 0.2
    template = f"/ocloud/v1/domain/{action}"
    running = first_running(default)
    off = next(v for v in vdi_vms(default) if v.vdi is not None and v.vdi.status == 0)
    assert running.vdi is not None and off.vdi is not None
    ids = [running.vdi.id, off.vdi.id, "no-such-vm"]
    body = check(spec, c.post(template, json={"idList": ids, "isForce": 0}), "POST", template)
    data = body["data"]
    assert [e["domainId"] for e in data["errorList"]] == ["no-such-vm"]
    assert "no-such-vm" in data["errorList"][0]["errorMsg"]
    assert len(data["eventIdList"]) == 2 and len(set(data["eventIdList"])) == 2
    for vm_id in (running.vdi.id, off.vdi.id):  # an operation in progress meanwhile
        got = check(spec, c.get(f"/ocloud/v1/domain/{vm_id}"), "GET", "/ocloud/v1/domain/{id}")
        assert got["data"]["status"] == 5, (action, vm_id)
    assert srv.wait_actions(10)
    want = {"start": (1, 1), "close": (0, 0), "reboot": (1, 0)}[action]
    for vm_id, status in zip([running.vdi.id, off.vdi.id], want, strict=True):
        got = check(spec, c.get(f"/ocloud/v1/domain/{vm_id}"), "GET", "/ocloud/v1/domain/{id}")
        assert got["data"]["status"] == status, (action, vm_id)
    for bad in ({}, {"idList": "x"}, {"idList": []}, {"idList": [1]},
                {"idList": ["a"], "hostId": 3}):
        check(spec, c.post(template, json=bad), "POST", template, ok=False)
    check(spec, c.post(template, content=b"not json"), "POST", template, ok=False)


def test_start_on_host_moves_the_vm(spec: Spec, fresh: Fresh, default: sc.Scenario) -> None:
    srv, c = fresh()
    srv.action_delay = 0
    vm = next(v for v in vdi_vms(default) if v.vdi is not None and v.vdi.host == "hv-t1"
              and v.vdi.status == 0)
    assert vm.vdi is not None
    target = default.host("hv-t2")
    check(spec, c.post("/ocloud/v1/domain/start", json={"idList": [vm.vdi.id],
                                                         "hostId": target.id}),
          "POST", "/ocloud/v1/domain/start")
    assert srv.wait_actions(10)
    got = c.get(f"/ocloud/v1/domain/{vm.vdi.id}").json()["data"]
    assert (got["hostId"], got["hostName"], got["status"]) == (target.id, "hv-t2", 1)
    bad = c.post("/ocloud/v1/domain/start", json={"idList": [vm.vdi.id], "hostId": "nope"})
    check(spec, bad, "POST", "/ocloud/v1/domain/start", ok=False)


_VALID_BATCH: list[dict[str, Any]] = [
    {"idList": ["d-2002"]}, {"idList": ["d-2002"], "isForce": 1},
    {"idList": ["d-2002", "d-1001"], "isForce": 0}, {"idList": ["d-2002"], "hostId": "HOST"}]
# Valid for the spec, refused by the platform: idList is required and not empty, isForce 0 or 1.
_REFUSED_BATCH: list[dict[str, Any]] = [{}, {"idList": []}, {"idList": ["d-2002"], "isForce": 2}]
_INVALID_BATCH: list[Any] = [
    {"idList": "d-2002"}, {"idList": [1]}, {"idList": ["d-2002"], "isForce": True},
    {"idList": ["d-2002"], "isForce": "1"}, {"idList": ["d-2002"], "isForce": 1.0},
    {"idList": ["d-2002"], "hostId": None}, {"idList": ["d-2002"], "hostId": 3},
    {"idList": ["d-2002"], "force": 1}, ["d-2002"]]


@pytest.mark.parametrize("action", ["start", "close", "reboot"])
def test_batch_bodies_are_refused_exactly_when_the_spec_refuses(
        spec: Spec, fresh: Fresh, default: sc.Scenario, action: str) -> None:
    """DomainBatchTaskDto as the spec types it (closed, Draft 4): what it accepts, the platform
    accepts (and answers DomainBatchTaskVO); what it refuses, the platform refuses."""
    srv, c = fresh()
    srv.action_delay = 0
    method, template = "POST", f"/ocloud/v1/domain/{action}"
    assert spec.request_schema(method, template) == "DomainBatchTaskDto"
    host_id = default.host("hv-o2").id
    for body in _VALID_BATCH + _REFUSED_BATCH:
        body = {k: host_id if v == "HOST" else v for k, v in body.items()}
        assert check_request(spec, method, template, body) == [], body
        ok = body not in _REFUSED_BATCH
        answer = check(spec, c.post(template, json=body), method, template, ok=ok)
        if ok:
            assert len(answer["data"]["eventIdList"]) + len(answer["data"]["errorList"]) \
                == len(body["idList"])
            assert srv.wait_actions(10)
        else:
            assert answer["status"] == 400
            assert "idList" in answer["msg"] or "isForce" in answer["msg"]
    for body in _INVALID_BATCH:
        assert check_request(spec, method, template, body), body
        check(spec, c.post(template, json=body), method, template, ok=False)
    assert len(srv.actions.requests) == len(_VALID_BATCH + _REFUSED_BATCH + _INVALID_BATCH)


def test_sync_bodies_are_refused_exactly_when_the_spec_refuses(spec: Spec, fresh: Fresh) -> None:
    srv, c = fresh()
    srv.action_delay = 0
    method, template = "POST", "/ocloud/v1/domain/{id}/sync-status"
    assert spec.request_schema(method, template) == "DomainSyncStatusDto"
    assert spec.request_schema(method, "/ocloud/v1/host/{id}/sync-status") is None
    path = "/ocloud/v1/domain/d-2002/sync-status"
    for body in ({"syncType": 1}, {"syncType": 0}, {}, None):
        assert check_request(spec, method, template, body) == []
        check(spec, c.post(path, json=body), method, template)
    assert check_request(spec, method, template, {"syncType": 7}) == []
    check(spec, c.post(path, json={"syncType": 7}), method, template, ok=False)
    for body in ({"syncType": "1"}, {"syncType": True}, {"syncType": 1.0}, {"sync": 1}):
        assert check_request(spec, method, template, body), body
        check(spec, c.post(path, json=body), method, template, ok=False)
    assert srv.wait_actions(10)


@pytest.mark.parametrize(("kind", "params", "ok"), [
    ("error_list", {"vms": ["d-2002"]}, True), ("status", {"code": 3001, "msg": "忙"}, False)])
def test_action_fault_answers_follow_the_spec(spec: Spec, fresh: Fresh, kind: str,
                                              params: dict[str, Any], ok: bool) -> None:
    srv, c = fresh()
    srv.action_delay = 0
    srv.set_action_fault(kind, **params)
    for template, path, body in [
            ("/ocloud/v1/domain/start", "/ocloud/v1/domain/start", {"idList": ["d-2002"]}),
            ("/ocloud/v1/domain/{id}/sync-status", "/ocloud/v1/domain/d-2002/sync-status",
             {"syncType": 1})]:
        answer = check(spec, c.post(path, json=body), "POST", template,
                       ok=ok and "{id}" not in template)
        if kind == "error_list" and "{id}" not in template:
            assert answer["data"]["errorList"][0]["domainId"] == "d-2002"
    assert srv.wait_actions(10)


def test_a_platform_that_stops_forgets_the_actions_it_had_not_taken(spec: Spec,
                                                                    fresh: Fresh) -> None:
    srv, c = fresh()
    srv.action_delay = 600  # held until the stop
    check(spec, c.post("/ocloud/v1/domain/close", json={"idList": ["d-2002"]}), "POST",
          "/ocloud/v1/domain/close")
    assert c.get("/ocloud/v1/domain/d-2002").json()["data"]["status"] == 5
    srv.stop()
    srv.start()
    c.headers["Token"] = login(c, srv.scenario)
    assert c.get("/ocloud/v1/domain/d-2002").json()["data"]["status"] == 1
    [outcome] = srv.actions.outcomes
    assert not outcome.ok and "stopped" in outcome.message


def test_a_hang_with_seconds_drops_the_request(fresh: Fresh) -> None:
    srv, c = fresh()
    srv.set_action_fault("hang", seconds=0.3, actions=["host_sync"])
    with pytest.raises(httpx.RemoteProtocolError):
        c.post(f"/ocloud/v1/host/{srv.scenario.hosts[0].id}/sync-status")
    assert srv.wait_actions(10) and srv.actions.outcomes == []
    assert srv.requests["POST /ocloud/v1/host/{id}/sync-status"] == 1


def test_desk_pools(spec: Spec, client: httpx.Client, default: sc.Scenario) -> None:
    body = check(spec, client.get("/ocloud/v1/desk-pool"), "GET", "/ocloud/v1/desk-pool")
    pools = body["data"]["list"]
    assert body["data"]["total"] == len(default.pools) == len(pools)
    for p in pools:
        assert_declared(spec, "DesktopPoolVO", p)
        assert (p["enabled"], p["type"], p["status"]) == (1, 0, 0)
    assert sum(p["amount"] for p in pools) == len(vdi_vms(default))
    domains = client.get("/ocloud/v1/domain", params={"pageSize": 100}).json()["data"]["list"]
    by_pool = Counter(d["desktopPoolId"] for d in domains)
    assert {p["id"]: p["amount"] for p in pools} == dict(by_pool)
    assert {p["name"] for p in pools} == {p.name for p in default.pools}
    one = client.get("/ocloud/v1/desk-pool", params={"pageSize": 1, "pageNum": 2}).json()["data"]
    assert (len(one["list"]), one["total"], one["pages"]) == (1, 3, 3)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("method", "path", "http"), [
    ("GET", "/ocloud/v1/nope", 404),
    ("GET", "/ocloud/v1/domain/d-2002/disk", 404),
    ("POST", "/", 404),
    ("GET", "/ocloud/v1/login", 405),
    ("DELETE", "/ocloud/v1/domain", 405),
])
def test_unknown_path(spec: Spec, client: httpx.Client, method: str, path: str,
                      http: int) -> None:
    resp = client.request(method, path)
    assert resp.status_code == http
    body = resp.json()
    assert spec.errors("BaseResponseVO", body) == []
    assert body["status"] == http and "Traceback" not in resp.text


def test_internal_error_is_wrapped_and_silent(spec: Spec, fresh: Fresh,
                                              capfd: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    srv, c = fresh()

    def boom(*_: Any) -> Any:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(srv._state, "domain_vo", boom)
    resp = c.get("/ocloud/v1/domain")
    assert resp.status_code == 500
    assert "Traceback" not in resp.text and "simulated bug" not in resp.text
    assert spec.errors("ResponseVO«PageResult«DomainVO»»", resp.json()) == []
    # Garbage on the wire and a client that hangs up mid-request: still nothing on stderr.
    for raw in (b"NOT HTTP AT ALL\r\n\r\n",
                b"POST /ocloud/v1/login HTTP/1.1\r\nContent-Length: 99\r\n\r\n{"):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            s.recv(4096)
    check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host")
    out, err = capfd.readouterr()
    assert err == "" and out == ""


# --------------------------------------------------------------------------- pagination


def walk(client: httpx.Client, path: str, size: int, expected_total: int,
         **params: str) -> list[dict[str, Any]]:
    """Read every page of a list concurrently, checking each page's header; return the rows."""
    eff = min(size, 100)
    pages = math.ceil(expected_total / eff)

    def fetch(n: int) -> dict[str, Any]:
        resp = client.get(path, params={**params, "pageNum": n, "pageSize": size})
        data = resp.json()["data"]
        assert (data["total"], data["pages"], data["pageNum"], data["pageSize"]) == (
            expected_total, pages, n, eff), data
        assert len(data["list"]) == min(eff, expected_total - (n - 1) * eff)
        return data

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fetch, range(1, pages + 1)))
    past = client.get(path, params={**params, "pageNum": pages + 1, "pageSize": size}).json()
    assert past["status"] == 0 and past["data"]["list"] == []
    assert (past["data"]["total"], past["data"]["pages"]) == (expected_total, pages)
    return [row for data in results for row in data["list"]]


@pytest.mark.parametrize("size", [7, 3, 100, 1000])
def test_domain_pages_cover_every_vm_once(client: httpx.Client, default: sc.Scenario,
                                          size: int) -> None:
    want = [v.vdi.id for v in vdi_vms(default) if v.vdi is not None]
    rows = walk(client, "/ocloud/v1/domain", size, len(want))
    assert Counter(r["id"] for r in rows) == Counter(want)


@pytest.mark.parametrize("size", [7, 3, 100, 1000])
def test_big_scenario_pages(spec: Spec, big_client: httpx.Client, big: sc.Scenario,
                            size: int) -> None:
    want = [v.vdi.id for v in vdi_vms(big) if v.vdi is not None]
    assert len(want) == 200
    rows = walk(big_client, "/ocloud/v1/domain", size, len(want))
    assert Counter(r["id"] for r in rows) == Counter(want)
    host = big.hosts[2]
    on_host = [v.vdi.id for v in vdi_vms(big) if v.vdi is not None and v.vdi.host == host.name]
    rows = walk(big_client, "/ocloud/v1/domain", size, len(on_host), hostId=host.id)
    assert Counter(r["id"] for r in rows) == Counter(on_host)
    hosts = walk(big_client, "/ocloud/v1/host", size, len(big.hosts))
    assert sorted(h["id"] for h in hosts) == sorted(h.id for h in big.hosts)
    if size == 1000:  # one full clamped page, validated once
        resp = big_client.get("/ocloud/v1/domain", params={"pageSize": size})
        body = check(spec, resp, "GET", "/ocloud/v1/domain")
        assert (body["data"]["pageSize"], len(body["data"]["list"])) == (100, 100)


def test_page_defaults_and_odd_values(client: httpx.Client, default: sc.Scenario) -> None:
    total = len(vdi_vms(default))
    data = client.get("/ocloud/v1/domain").json()["data"]
    assert (data["pageNum"], data["pageSize"], len(data["list"])) == (1, 10, 10)
    assert data["pages"] == math.ceil(total / 10)
    for odd in ({"pageNum": 0}, {"pageNum": -3}):
        assert client.get("/ocloud/v1/domain", params=odd).json()["data"]["pageNum"] == 1
    assert client.get("/ocloud/v1/domain", params={"pageSize": 0}).json()["data"]["pageSize"] == 10
    empty = client.get("/ocloud/v1/domain", params={"keyword": "zzz-none"}).json()["data"]
    assert (empty["total"], empty["pages"], empty["list"]) == (0, 0, [])


def test_max_page_size_comes_from_the_scenario(fresh: Fresh) -> None:
    _, c = fresh(max_page_size=5)
    data = c.get("/ocloud/v1/domain", params={"pageSize": 50}).json()["data"]
    assert (data["pageSize"], len(data["list"])) == (5, 5)


# --------------------------------------------------------------------------- chaos hooks


def test_chaos_setters(spec: Spec, fresh: Fresh, default: sc.Scenario) -> None:
    srv, c = fresh()
    vm = first_running(default)
    assert vm.vdi is not None
    host_name = vm.vdi.host

    def host_rec(name: str) -> dict[str, Any]:
        rows = c.get("/ocloud/v1/host", params={"name": name}).json()["data"]["list"]
        return next(h for h in rows if h["name"] == name)

    before = host_rec(host_name)["runningDomainCount"]
    srv.set_vm_status(vm.uuid, 0)
    got = check(spec, c.get(f"/ocloud/v1/domain/{vm.vdi.id}"), "GET", "/ocloud/v1/domain/{id}")
    assert got["data"]["status"] == 0
    assert got["data"]["updateTime"]["time"] > got["data"]["createTime"]["time"]
    assert host_rec(host_name)["runningDomainCount"] == before - 1
    srv.set_vm_status(vm.uuid, 1)
    srv.set_vm_host(vm.uuid, "hv-o2")
    got = c.get(f"/ocloud/v1/domain/{vm.vdi.id}").json()["data"]
    assert (got["hostId"], got["hostName"], got["poolId"]) == (
        default.host("hv-o2").id, "hv-o2", "pool-office")
    assert vm.vdi.id in {r["id"] for r in c.get(
        "/ocloud/v1/domain", params={"hostId": default.host("hv-o2").id}).json()["data"]["list"]}
    srv.set_host_status("hv-t2", 0)
    assert host_rec("hv-t2")["status"] == 0
    stray = next(v for v in default.vms if v.vdi is None)
    srv.set_vm_status(stray.uuid, 1)  # the platform does not know it: nothing changes
    total = c.get("/ocloud/v1/domain").json()["data"]["total"]
    assert total == len(vdi_vms(default))
    with pytest.raises(KeyError):
        srv.set_vm_status("00000000-0000-0000-0000-000000000000", 1)
    with pytest.raises(KeyError):
        srv.set_vm_host(vm.uuid, "no-such-host")
    with pytest.raises(KeyError):
        srv.set_host_status("no-such-host", 1)


def test_host_ips_must_cover_vdi_hosts(default: sc.Scenario) -> None:
    with pytest.raises(ValueError, match="ocloud"):
        VdiServer(default, {})


# --------------------------------------------------------------------------- faults


def test_fault_http500(fresh: Fresh, spec: Spec) -> None:
    srv, c = fresh()
    srv.set_fault("http500")
    for resp in (c.get("/ocloud/v1/domain"), c.post(LOGIN, json={})):
        assert resp.status_code == 500
        assert resp.text.startswith("<html") and "text/html" in resp.headers["content-type"]
    srv.set_fault(None)
    check(spec, c.get("/ocloud/v1/domain"), "GET", "/ocloud/v1/domain")


def test_fault_not_json(fresh: Fresh, spec: Spec) -> None:
    srv, c = fresh()
    srv.set_fault("not_json")
    resp = c.get("/ocloud/v1/host")
    assert resp.status_code == 200 and resp.text.startswith("<html")
    with pytest.raises(json.JSONDecodeError):
        resp.json()
    srv.set_fault(None)
    check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host")


def test_fault_status(fresh: Fresh, spec: Spec) -> None:
    srv, c = fresh()
    srv.set_fault("status")
    body = check(spec, c.get("/ocloud/v1/domain"), "GET", "/ocloud/v1/domain", ok=False)
    assert body == {"status": 500, "msg": "系统内部错误 (internal error)"}
    srv.set_fault("status", code=503, msg="服务繁忙 (busy)")
    body = check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host", ok=False)
    assert body == {"status": 503, "msg": "服务繁忙 (busy)"}
    srv.set_fault(None)
    check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host")


def test_fault_slow(fresh: Fresh, spec: Spec) -> None:
    srv, c = fresh()
    srv.set_fault("slow", seconds=0.3)
    t0 = time.monotonic()
    check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host")
    assert time.monotonic() - t0 >= 0.3
    srv.set_fault(None)
    t0 = time.monotonic()
    check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host")
    assert time.monotonic() - t0 < 0.3


def test_fault_short_page(fresh: Fresh, spec: Spec, default: sc.Scenario) -> None:
    srv, c = fresh()
    total = len(vdi_vms(default))
    srv.set_fault("short_page")
    for path, count in (("/ocloud/v1/domain", total),
                        ("/ocloud/v1/host", sum(h.in_vdi for h in default.hosts))):
        body = check(spec, c.get(path, params={"pageSize": 7}), "GET", path)
        assert (len(body["data"]["list"]), body["data"]["total"]) == (6, count)
    srv.set_fault(None)
    assert len(c.get("/ocloud/v1/domain", params={"pageSize": 7}).json()["data"]["list"]) == 7


def test_fault_bad_total(fresh: Fresh, spec: Spec, default: sc.Scenario) -> None:
    srv, c = fresh()
    total = len(vdi_vms(default))
    srv.set_fault("bad_total")
    body = check(spec, c.get("/ocloud/v1/domain", params={"pageSize": 100}),
                 "GET", "/ocloud/v1/domain")
    assert (body["data"]["total"], len(body["data"]["list"])) == (total + 5, total)
    srv.set_fault("bad_total", extra=2)
    hosts = c.get("/ocloud/v1/host").json()["data"]
    assert hosts["total"] == sum(h.in_vdi for h in default.hosts) + 2
    srv.set_fault(None)
    assert c.get("/ocloud/v1/domain").json()["data"]["total"] == total


def test_fault_arguments_are_checked(fresh: Fresh) -> None:
    srv, _ = fresh(logged_in=False)
    with pytest.raises(ValueError, match="unknown fault"):
        srv.set_fault("teapot")
    with pytest.raises(ValueError, match="seconds"):
        srv.set_fault("slow")
    with pytest.raises(ValueError, match="code"):
        srv.set_fault("status", code="500")
    with pytest.raises(ValueError, match="extra"):
        srv.set_fault("bad_total", extra=1.5)


# --------------------------------------------------------------------------- counters, lifecycle


def test_counters(fresh: Fresh) -> None:
    srv, c = fresh()  # the login is one request
    assert srv.requests["POST /ocloud/v1/login"] == 1
    c.get("/ocloud/v1/domain")
    c.get("/ocloud/v1/domain", params={"pageNum": 2})
    c.get("/ocloud/v1/domain/d-2002")
    c.get("/ocloud/v1/nope")
    assert srv.requests["GET /ocloud/v1/domain"] == 2
    assert srv.requests["GET /ocloud/v1/domain/{id}"] == 1
    assert srv.requests["GET <unknown>"] == 1
    srv.reset_counters()
    assert sum(srv.requests.values()) == 0

    def hammer(_: int) -> None:
        for _ in range(25):
            c.get("/ocloud/v1/host")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(hammer, range(8)))
    assert srv.requests == Counter({"GET /ocloud/v1/host": 200})


def test_stop_and_restart(fresh: Fresh, spec: Spec) -> None:
    srv, c = fresh()
    port = srv.port
    assert srv.url == f"http://127.0.0.1:{port}"
    check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host")  # leaves a keep-alive
    srv.stop()
    srv.stop()  # idempotent
    with pytest.raises(httpx.TransportError):
        c.get("/ocloud/v1/host")
    srv.start()
    assert srv.port == port
    check(spec, c.get("/ocloud/v1/host"), "GET", "/ocloud/v1/host")  # tokens survive
    with pytest.raises(RuntimeError):
        srv.start()


def test_port_before_start(default: sc.Scenario) -> None:
    srv = VdiServer(default, host_ips(default))
    with pytest.raises(RuntimeError):
        _ = srv.url
    srv.stop()  # stopping a server that never ran is harmless


def test_concurrent_clients_see_consistent_pages(fresh: Fresh, default: sc.Scenario) -> None:
    srv, c = fresh()
    vm = first_running(default)
    total = len(vdi_vms(default))
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            srv.set_vm_status(vm.uuid, 0)
            srv.set_vm_status(vm.uuid, 1)

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    try:
        for _ in range(5):
            rows = walk(c, "/ocloud/v1/domain", 7, total)
            assert len({r["id"] for r in rows}) == total
    finally:
        stop.set()
        flipper.join()
