"""The simulated platform's action endpoints against a real lab: start, close and reboot change
the hosts' libvirt domains (a real KVM guest on hv-kvm, test-driver domains elsewhere) and the
platform's record follows; sync-status adopts libvirt's real state; every action fault.

One lab for the module (the default scenario's hv-kvm beside five test-driver hosts), put back
after each test. Every request body sent here and every answer is checked against the vendor
spec. "Meanwhile" (status 5) is observed without racing the clock: a test holds the platform's
actions with a long ``action_delay`` and lets them go by shortening it (it is read live).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.lab.vendor_spec import Spec, check, check_request
from vditui.lab.action_faults import E_ACTION
from vditui.lab.console import run_console
from vditui.lab.lab import Lab
from vditui.lab.platform_actions import MSG_BUSY, MSG_UPGRADING
from vditui.lab.scenario import load_default

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

HOSTS = ["hv-kvm", "hv-t1", "hv-t2", "hv-t3", "hv-o3", "hv-refuse"]
HOLD = 600.0  # an action_delay no test outlives: the action waits until released
SYNC = "/ocloud/v1/domain/{id}/sync-status"
HOST_SYNC = "/ocloud/v1/host/{id}/sync-status"


def _domains(lab: Lab, host: str) -> dict[str, tuple[str, int]]:
    return {d.UUIDString(): (d.name(), d.state()[0]) for d in lab.host(host).conn.listAllDomains()}


@pytest.fixture(scope="module")
def _alab(subset: Callable[..., Any]) -> Iterator[tuple[Lab, dict[str, Any]]]:
    with Lab(subset(load_default(), HOSTS, "actions")) as lab:
        yield lab, {h: _domains(lab, h) for h in lab.hosts}


@pytest.fixture
def alab(_alab: tuple[Lab, dict[str, Any]]) -> Iterator[Lab]:
    """The module's lab, platform acting after 0.2 s; put back as declared after each test."""
    lab, declared = _alab
    assert lab.vdi is not None
    lab.vdi.action_delay = 0.2
    lab.vdi.actions.close_timeout = 1.0
    yield lab
    lab.vdi.reset_records()  # clears the fault, waits for actions under way
    for name, h in lab.hosts.items():
        lab.set_fault(name, h.spec.fault if h.spec.fault != "none" else "pass")
        if _domains(lab, name) != declared[name]:
            with h.lock:
                lab._populate(h)
    lab.vdi.reset_counters()


class Platform:
    """A logged-in client of the lab's platform that checks every body it sends and every
    answer it gets against the spec."""

    def __init__(self, lab: Lab, spec: Spec, timeout: float = 10) -> None:
        self.lab, self.spec = lab, spec
        self.http = httpx.Client(base_url=lab.vdi_url, timeout=timeout)
        resp = self.http.post("/ocloud/v1/login", json={
            "username": lab.username, "client": "",
            "password": hashlib.md5(lab.password.encode()).hexdigest()})
        self.http.headers["Token"] = resp.json()["data"]["token"]

    @property
    def srv(self) -> Any:
        assert self.lab.vdi is not None
        return self.lab.vdi

    def id(self, name: str) -> str:
        side = self.lab.vm(name).vdi
        assert side is not None, name
        return side.id

    def post(self, template: str, body: Any, ok: bool = True, **path: str) -> dict[str, Any]:
        assert check_request(self.spec, "POST", template, body) == [], body
        resp = self.http.post(template.format(**path), json=body)
        return check(self.spec, resp, "POST", template, ok=ok)

    def batch(self, action: str, names: list[str], ok: bool = True,
              **extra: Any) -> dict[str, Any]:
        body = {"idList": [self.id(n) for n in names], **extra}
        return self.post(f"/ocloud/v1/domain/{action}", body, ok=ok)

    def record(self, name: str) -> dict[str, Any]:
        template = "/ocloud/v1/domain/{id}"
        resp = self.http.get(template.format(id=self.id(name)))
        data: dict[str, Any] = check(self.spec, resp, "GET", template)["data"]
        return data

    def status(self, name: str) -> int:
        return int(self.record(name)["status"])

    def host_status(self, host: str) -> int:
        template = "/ocloud/v1/host/{id}"
        resp = self.http.get(template.format(id=self.lab.scenario.host(host).id))
        return int(check(self.spec, resp, "GET", template)["data"]["status"])

    def hold(self) -> None:
        self.srv.action_delay = HOLD

    def release(self) -> None:
        self.srv.action_delay = 0
        assert self.srv.wait_actions(60)

    def outcomes(self, name: str) -> list[tuple[str, bool, str]]:
        return [(o.action, o.ok, o.message) for o in self.srv.actions.outcomes
                if o.vm_name == name]


@pytest.fixture
def platform(alab: Lab, spec: Spec) -> Iterator[Platform]:
    p = Platform(alab, spec)
    yield p
    p.http.close()


def virt(lab: Lab, name: str) -> str:
    vm = lab.vm(name)
    assert vm.virt is not None
    return lab.virt_state(vm.virt.host, vm.uuid)


def needs_qemu(lab: Lab) -> None:
    if lab.host("hv-kvm").driver != "qemu":
        pytest.skip(f"QEMU cannot run here: {lab.fallback_line()}")


# --------------------------------------------------------------------------- start, close, reboot


def test_close_force_and_start_change_a_real_kvm_guest(alab: Lab, platform: Platform) -> None:
    needs_qemu(alab)
    daemon: Any = alab.host("hv-kvm").daemon
    assert "kvm-hotplug" in daemon.guest_pids()
    platform.hold()
    data = platform.batch("close", ["kvm-hotplug"], isForce=1)["data"]
    assert data["errorList"] == [] and len(data["eventIdList"]) == 1
    assert platform.status("kvm-hotplug") == 5 and virt(alab, "kvm-hotplug") == "running"
    platform.release()
    assert virt(alab, "kvm-hotplug") == "shutoff" and "kvm-hotplug" not in daemon.guest_pids()
    assert platform.status("kvm-hotplug") == 0

    platform.hold()
    platform.batch("start", ["kvm-hotplug"])
    assert platform.status("kvm-hotplug") == 5 and virt(alab, "kvm-hotplug") == "shutoff"
    platform.release()
    assert virt(alab, "kvm-hotplug") == "running" and "kvm-hotplug" in daemon.guest_pids()
    assert platform.status("kvm-hotplug") == 1
    assert platform.outcomes("kvm-hotplug") == [("close", True, "ok"), ("start", True, "ok")]
    assert platform.srv.requests["POST /ocloud/v1/domain/close"] == 1
    assert platform.srv.requests["POST /ocloud/v1/domain/start"] == 1


def test_a_graceful_close_of_a_diskless_guest_never_completes(alab: Lab,
                                                              platform: Platform) -> None:
    """No OS answers the ACPI request: the platform gives up after close_timeout and records
    the guest as running again, noting why."""
    needs_qemu(alab)
    platform.batch("close", ["kvm-balloon"], isForce=0)
    assert platform.srv.wait_actions(30)
    assert virt(alab, "kvm-balloon") == "running" and platform.status("kvm-balloon") == 1
    [(action, ok, why)] = platform.outcomes("kvm-balloon")
    assert (action, ok) == ("close", False) and "ACPI" in why and "force" in why


class Spy:
    """The lab's hands, recording every libvirt operation the platform asks of them."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.ops: list[tuple[str, str]] = []

    def platform_op(self, host: str, vm_uuid: str, op: str) -> str:
        self.ops.append((host, op))
        return self.lab.platform_op(host, vm_uuid, op)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lab, name)


@pytest.mark.parametrize(("force", "op"), [(1, "reset"), (0, "reboot")])
def test_reboot_of_a_real_guest_keeps_it_running(alab: Lab, platform: Platform, force: int,
                                                 op: str) -> None:
    """A reset restarts the guest inside the same QEMU process; a graceful reboot asks a guest
    that has no OS to answer: libvirt takes both, and the guest runs on."""
    needs_qemu(alab)
    daemon: Any = alab.host("hv-kvm").daemon
    pid = daemon.guest_pids()["kvm-hotplug"]
    spy = Spy(alab)
    platform.srv.actions.hypervisors = spy
    try:
        platform.hold()
        platform.batch("reboot", ["kvm-hotplug"], isForce=force)
        assert platform.status("kvm-hotplug") == 5
        platform.release()
    finally:
        platform.srv.actions.hypervisors = alab
    assert spy.ops == [("hv-kvm", op)]
    assert daemon.guest_pids()["kvm-hotplug"] == pid
    assert platform.status("kvm-hotplug") == 1 and virt(alab, "kvm-hotplug") == "running"
    assert platform.outcomes("kvm-hotplug") == [("reboot", True, "ok")]


def test_test_driver_vms_in_one_batch(alab: Lab, platform: Platform) -> None:
    platform.hold()
    platform.batch("close", ["class-a-01", "class-a-02", "class-b-01"])
    assert [platform.status(n) for n in ("class-a-01", "class-a-02", "class-b-01")] == [5] * 3
    platform.release()
    for name in ("class-a-01", "class-a-02", "class-b-01"):
        assert (virt(alab, name), platform.status(name)) == ("shutoff", 0), name
    platform.batch("reboot", ["class-b-02"])
    platform.batch("start", ["class-a-05"])  # suspended: a start resumes it
    platform.release()
    assert (virt(alab, "class-b-02"), platform.status("class-b-02")) == ("running", 1)
    assert (virt(alab, "class-a-05"), platform.status("class-a-05")) == ("running", 1)
    assert platform.srv.requests["POST /ocloud/v1/domain/close"] == 1


def test_a_failed_libvirt_operation_puts_the_status_back(alab: Lab, platform: Platform) -> None:
    platform.batch("start", ["class-a-01"])       # already running
    platform.batch("reboot", ["class-a-03"])      # shut off
    platform.batch("close", ["class-b-05"])       # the platform's only: libvirt has no domain
    platform.batch("close", ["office-30"])        # its host refuses libvirt connections
    platform.release()
    assert [platform.status(n) for n in ("class-a-01", "class-a-03", "class-b-05",
                                         "office-30")] == [1, 0, 1, 1]
    assert (virt(alab, "class-a-01"), virt(alab, "class-a-03")) == ("running", "shutoff")
    assert virt(alab, "office-30") == "running"
    want = {"class-a-01": "already running", "class-a-03": "not running",
            "class-b-05": "has no domain", "office-30": "cannot reach hv-refuse"}
    for name, needle in want.items():
        [(_, ok, why)] = platform.outcomes(name)
        assert not ok and needle in why, (name, why)


def test_start_on_another_host_moves_the_domain(alab: Lab, platform: Platform) -> None:
    vm = alab.vm("class-a-03")
    platform.batch("start", ["class-a-03"], hostId=alab.scenario.host("hv-t2").id)
    platform.release()
    assert vm.uuid not in _domains(alab, "hv-t1")
    assert alab.virt_state("hv-t2", vm.uuid) == "running"
    rec = platform.record("class-a-03")
    assert (rec["hostName"], rec["status"]) == ("hv-t2", 1)


def test_busy_upgrading_and_unknown_vms_get_an_error_entry(alab: Lab,
                                                           platform: Platform) -> None:
    platform.hold()
    platform.batch("close", ["class-a-01"])
    body = {"idList": [platform.id(n) for n in ("class-a-01", "class-a-06", "lab-gpu-03")]
            + ["no-such-vm"]}
    data = platform.post("/ocloud/v1/domain/start", body)["data"]
    assert data["eventIdList"] == []
    assert [(e["domainName"], e["errorMsg"]) for e in data["errorList"]][:3] == [
        ("class-a-01", MSG_BUSY), ("class-a-06", MSG_BUSY), ("lab-gpu-03", MSG_UPGRADING)]
    assert data["errorList"][3]["domainId"] == "no-such-vm"
    assert "no-such-vm" in data["errorList"][3]["errorMsg"]
    platform.release()
    assert platform.outcomes("class-a-01") == [("close", True, "ok")]  # once, not twice


# --------------------------------------------------------------------------- sync-status


def test_sync_adopts_libvirts_real_state_and_host(alab: Lab, platform: Platform) -> None:
    alab.act("hv-t1", alab.vm("class-a-01").uuid, "destroy")  # behind the platform's back
    platform.hold()
    for name in ("class-a-01", "class-a-04", "lab-gpu-02", "class-b-05", "office-30"):
        platform.post(SYNC, {"syncType": 1}, id=platform.id(name))
    assert platform.status("class-a-01") == 1  # a sync is a read: no "operation in progress"
    platform.release()
    assert (platform.status("class-a-01"), platform.status("class-a-04")) == (0, 0)
    rec = platform.record("lab-gpu-02")  # the platform said hv-t3; libvirt runs it on hv-t2
    assert (rec["hostName"], rec["status"]) == ("hv-t2", 1)
    assert platform.status("class-b-05") == 1 and platform.status("office-30") == 1
    [(_, ok, why)] = platform.outcomes("class-b-05")
    assert not ok and "no reachable libvirt host" in why
    [(_, ok, why)] = platform.outcomes("office-30")
    assert not ok and "cannot reach hv-refuse" in why
    assert platform.srv.requests["POST /ocloud/v1/domain/{id}/sync-status"] == 5


def test_host_sync_adopts_every_vm_there_and_the_hosts_status(alab: Lab,
                                                              platform: Platform) -> None:
    alab.act("hv-t2", alab.vm("class-b-04").uuid, "start")
    platform.hold()
    for host in ("hv-t1", "hv-t2", "hv-o3", "hv-refuse"):
        platform.post(HOST_SYNC, None, id=alab.scenario.host(host).id)
    assert platform.host_status("hv-o3") == 3
    platform.release()
    assert platform.status("class-a-04") == 0 and platform.status("class-b-04") == 1
    assert platform.record("lab-gpu-02")["hostName"] == "hv-t2"  # libvirt runs it there
    assert platform.host_status("hv-o3") == 1   # offline, and its libvirt answers: enabled
    assert platform.host_status("hv-refuse") == 3  # enabled, and it cannot be reached
    assert platform.status("office-30") == 1
    hosts = {o.host: o.ok for o in platform.srv.actions.outcomes if not o.vm_id}
    assert hosts == {"hv-t1": True, "hv-t2": True, "hv-o3": True, "hv-refuse": False}


# --------------------------------------------------------------------------- faults


def test_error_list_fault_for_chosen_vms(alab: Lab, platform: Platform) -> None:
    platform.srv.set_action_fault("error_list", vms=["class-a-01", alab.vm("class-a-02").uuid],
                                  msg="许可证已满 (licence limit)")
    data = platform.batch("close", ["class-a-01", "class-a-02", "class-b-01"])["data"]
    assert [(e["domainName"], e["errorMsg"]) for e in data["errorList"]] == [
        ("class-a-01", "许可证已满 (licence limit)"), ("class-a-02", "许可证已满 (licence limit)")]
    assert len(data["eventIdList"]) == 1
    body = platform.post(SYNC, {"syncType": 1}, ok=False, id=platform.id("class-a-01"))
    assert body["status"] == E_ACTION and "licence" in body["msg"]
    platform.release()
    assert [virt(alab, n) for n in ("class-a-01", "class-a-02", "class-b-01")] == [
        "running", "running", "shutoff"]
    assert [platform.status(n) for n in ("class-a-01", "class-a-02", "class-b-01")] == [1, 1, 0]


def test_status_fault_does_nothing_and_can_be_limited(alab: Lab, platform: Platform) -> None:
    platform.srv.set_action_fault("status", code=3001, msg="平台繁忙 (busy)", times=1,
                                  actions=["close"])
    body = platform.batch("close", ["class-a-01"], ok=False)
    assert (body["status"], body["msg"]) == (3001, "平台繁忙 (busy)")
    assert platform.status("class-a-01") == 1
    platform.batch("start", ["class-a-03"])  # not a close: untouched by the fault
    platform.release()
    assert virt(alab, "class-a-01") == "running" and platform.outcomes("class-a-01") == []
    platform.batch("close", ["class-a-01"])  # times=1: the fault is spent
    platform.release()
    assert (virt(alab, "class-a-01"), virt(alab, "class-a-03")) == ("shutoff", "running")


def test_hang_fault_answers_nothing_and_does_nothing(alab: Lab, spec: Spec) -> None:
    impatient = Platform(alab, spec, timeout=1.0)
    try:
        impatient.srv.set_action_fault("hang")
        with pytest.raises(httpx.ReadTimeout):
            impatient.http.post("/ocloud/v1/domain/close",
                                json={"idList": [impatient.id("class-a-01")]})
        assert impatient.status("class-a-01") == 1
        impatient.srv.set_action_fault(None)  # released: the held request is dropped
        impatient.release()
        assert impatient.srv.actions.outcomes == [] and virt(alab, "class-a-01") == "running"
        assert impatient.srv.requests["POST /ocloud/v1/domain/close"] == 1
    finally:
        impatient.http.close()


def test_hang_fault_that_acts_when_released(alab: Lab, platform: Platform) -> None:
    platform.srv.set_action_fault("hang", act=True)
    answers: list[dict[str, Any]] = []
    sender = threading.Thread(target=lambda: answers.append(
        platform.batch("close", ["class-a-01"])))
    sender.start()
    arrived = threading.Event()
    for _ in range(3000):  # the request reaches the platform, which holds it
        if platform.srv.actions.requests or arrived.wait(0.01):
            break
    assert platform.srv.actions.requests and platform.status("class-a-01") == 1
    platform.srv.set_action_fault(None)
    sender.join(30)
    assert answers and len(answers[0]["data"]["eventIdList"]) == 1
    platform.release()
    assert virt(alab, "class-a-01") == "shutoff" and platform.status("class-a-01") == 0


def test_drop_after_act_fault(alab: Lab, platform: Platform) -> None:
    platform.srv.set_action_fault("drop_after_act", times=1)
    platform.hold()
    with pytest.raises(httpx.RemoteProtocolError):
        platform.http.post("/ocloud/v1/domain/close",
                           json={"idList": [platform.id("class-a-01")], "isForce": 1})
    assert platform.status("class-a-01") == 5  # accepted before the connection went
    platform.release()
    assert virt(alab, "class-a-01") == "shutoff" and platform.status("class-a-01") == 0
    assert platform.srv.requests["POST /ocloud/v1/domain/close"] == 1


def test_fault_arguments_are_checked(alab: Lab) -> None:
    assert alab.vdi is not None
    for kind, params in [("bogus", {}), ("error_list", {}), ("status", {"actions": ["stop"]}),
                         ("hang", {"seconds": "x"}), ("status", {"times": 0})]:
        with pytest.raises(ValueError):
            alab.vdi.set_action_fault(kind, **params)


def test_console_sets_action_faults_and_delay(alab: Lab, platform: Platform) -> None:
    out = io.StringIO()
    for line in ("action-fault error_list vms=class-a-01 times=1", "action-delay 0.5",
                 "action-fault status code=x", "action-fault hang act=maybe-not",
                 "action-fault off", "action-fault bogus", "help"):
        run_console(alab, line, out)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["ok", "ok"] and lines[2].startswith("error:")
    assert lines[3:5] == ["ok", "ok"] and lines[5].startswith("error: unknown action fault")
    assert any(line.lstrip().startswith("action-fault") for line in lines[6:])
    assert platform.srv.action_delay == 0.5 and platform.srv.actions.faults.current is None
