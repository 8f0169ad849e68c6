"""The lab itself: real libvirtd daemons behind fault proxies and the simulated platform come up,
serve what the scenario declares, misbehave on request, and go away without a trace."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest

from vditui.core import virt
from vditui.lab import daemon as lab_daemon
from vditui.lab.daemon import LabError
from vditui.lab.lab import LIBVIRT_PORT, VDI_PORT, Lab
from vditui.lab.scenario import Scenario, ScenarioError, parse

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

VDITUI = Path(sys.executable).with_name("vditui")
STATE_NAMES = {1: "running", 3: "paused", 5: "shutoff"}
VDI_STATUS = {"running": 1, "shutoff": 0, "paused": 2}


# --------------------------------------------------------------------------- helpers


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it no longer runs.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _libvirtd_pids_under(path: Path) -> list[int]:
    """PIDs of libvirtd processes whose command line mentions ``path`` (a lab's work dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "libvirtd" in cmd and str(path) in cmd and _pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _wait(pred: Any, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def _open(uri: str) -> Any:
    return libvirt.open(uri)


def _domains_seen(uri: str) -> dict[str, tuple[str, str, int, int]]:
    """uuid -> (name, state, vCPU, memory MiB) as a plain libvirt client sees them at ``uri``."""
    conn = _open(uri)
    try:
        out = {}
        for dom in conn.listAllDomains():
            state, max_kib, _cur, vcpus, _t = dom.info()
            out[dom.UUIDString()] = (dom.name(), STATE_NAMES.get(state, str(state)), vcpus,
                                     max_kib // 1024)
        return out
    finally:
        conn.close()


def _declared(scenario: Scenario, host: str) -> dict[str, tuple[str, str, int, int]]:
    out = {}
    for vm in scenario.vms_on(host):
        assert vm.virt is not None
        out[vm.uuid] = (vm.name, vm.virt.state, vm.virt.vcpu, vm.virt.memory_mb)
    return out


def _vdi_domains(lab: Lab) -> dict[str, int]:
    """The platform's VM statuses by platform id, read over HTTP like any client."""
    md5 = hashlib.md5(lab.password.encode()).hexdigest()
    with httpx.Client(base_url=lab.vdi_url, timeout=5) as c:
        login = c.post("/ocloud/v1/login", json={"username": lab.username, "password": md5})
        doc = login.json()
        assert doc["status"] == 0, doc
        token = doc["data"]["token"]
        out: dict[str, int] = {}
        page = 1
        while True:
            resp = c.get("/ocloud/v1/domain", params={"pageNum": page, "pageSize": 100},
                         headers={"Token": token}).json()
            assert resp["status"] == 0, resp
            rows = resp["data"]["list"]
            out.update({r["id"]: r["status"] for r in rows})
            if page >= resp["data"]["pages"] or not rows:
                return out
            page += 1


def _lab_threads(lab: Lab, vdi_port: int) -> list[str]:
    names = {lab.hub.thread_name, f"vdi-server:{vdi_port}"}
    return [t.name for t in threading.enumerate()
            if t.is_alive() and (t.name in names or t.name.startswith("lab-"))]


# --------------------------------------------------------------------------- up and down


def test_lab_comes_up_and_goes_down_leaving_nothing(fresh_lab):
    lab = fresh_lab()
    pids = {n: h.daemon.proc.pid for n, h in lab.hosts.items()}
    assert len(pids) == len(lab.scenario.hosts) == 11
    assert all(_pid_alive(p) for p in pids.values())
    workdir = lab.workdir
    assert workdir.is_dir()
    assert sorted(_libvirtd_pids_under(workdir)) == sorted(pids.values())
    vdi_port = lab.vdi.port
    lab.chaos(rate=5, lag=0.1)  # its thread must go too
    assert "lab-chaos" in _lab_threads(lab, vdi_port)
    assert lab.hub.thread_name in _lab_threads(lab, vdi_port)

    lab.stop()

    assert [n for n, p in pids.items() if _pid_alive(p)] == []
    assert _libvirtd_pids_under(workdir) == []
    assert not workdir.exists()
    assert _lab_threads(lab, vdi_port) == []
    # Nothing listens any more: not the platform, not a proxy, not a daemon.
    for addr in [(f"{lab.prefix}.1", VDI_PORT), (f"{lab.prefix}.1", vdi_port),
                 *((h.ip, LIBVIRT_PORT) for h in lab.hosts.values())]:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(addr, timeout=1).close()
    lab.stop()  # a second stop is harmless


def test_lab_as_context_manager_stops_on_error(default_scenario):
    lab = Lab(default_scenario)
    with pytest.raises(RuntimeError, match="boom"), lab:
        pids = [h.daemon.proc.pid for h in lab.hosts.values()]
        raise RuntimeError("boom")
    assert [p for p in pids if _pid_alive(p)] == []
    assert not lab.workdir.exists()


# --------------------------------------------------------------------------- serving


def test_libvirt_client_sees_each_hosts_scenario_domains(lab):
    healthy = [h for h in lab.scenario.hosts if h.fault == "none" and "tcp" in h.transports]
    assert len(healthy) == 7
    for spec in healthy:
        seen = _domains_seen(lab.hosts[spec.name].uri)
        assert seen == _declared(lab.scenario, spec.name), spec.name
    # The placement VM runs where libvirt has it, not where the platform says.
    gpu2 = lab.vm("lab-gpu-02")
    assert gpu2.uuid in _domains_seen(lab.hosts["hv-t2"].uri)
    assert gpu2.uuid not in _domains_seen(lab.hosts["hv-t3"].uri)


def test_state_change_reaches_another_connection_as_event(fresh_lab):
    lab = fresh_lab()
    virt.ensure_runtime()
    uri = lab.hosts["hv-t1"].uri
    vm = lab.vm("class-a-01")
    events: list[tuple[str, int]] = []
    got = threading.Event()

    def on_event(_conn: Any, dom: Any, event: int, _detail: int, _opaque: Any) -> None:
        events.append((dom.UUIDString(), event))
        got.set()

    watcher = _open(uri)
    actor = _open(uri)
    try:
        cb = watcher.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                            on_event, None)
        actor.lookupByUUIDString(vm.uuid).suspend()
        assert got.wait(3), "no lifecycle event within 3 s"
        assert events[0] == (vm.uuid, libvirt.VIR_DOMAIN_EVENT_SUSPENDED)
        got.clear()
        actor.lookupByUUIDString(vm.uuid).resume()
        assert got.wait(3)
        assert events[-1] == (vm.uuid, libvirt.VIR_DOMAIN_EVENT_RESUMED)
        watcher.domainEventDeregisterAny(cb)
    finally:
        actor.close()
        watcher.close()


def test_two_labs_run_side_by_side(fresh_lab, subset, default_scenario):
    small = subset(default_scenario, ["ocloud", "hv-t1"])
    a, b = fresh_lab(small), fresh_lab(small)
    assert a.prefix != b.prefix
    assert a.vdi_url != b.vdi_url
    assert a.hosts["ocloud"].uri != b.hosts["ocloud"].uri
    # Both serve, and each its own world: a change in one is not seen in the other.
    vm = a.vm("lic")
    a.act("ocloud", vm.uuid, "destroy")
    for one, state in ((a, "shutoff"), (b, "running")):
        assert _domains_seen(one.hosts["ocloud"].uri)[vm.uuid][1] == state
        assert _domains_seen(one.hosts["hv-t1"].uri) == _declared(small, "hv-t1")
        statuses = _vdi_domains(one)
        assert len(statuses) == len([v for v in small.vms if v.vdi is not None])
        assert statuses[vm.vdi.id] == 1


def test_refusing_host_refuses(lab):
    ip = lab.hosts["hv-refuse"].ip
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ip, LIBVIRT_PORT), timeout=2).close()
    with pytest.raises(libvirt.libvirtError, match="Connection refused"):
        _open(lab.hosts["hv-refuse"].uri)
    # Its daemon is alive behind the proxy: the refusal is the fault, not a crash.
    assert lab.hosts["hv-refuse"].daemon.alive


def test_hanging_host_accepts_and_never_answers(lab):
    # A healthy daemon answers a malformed packet by closing at once ...
    garbage = b"\x00\x00\x00\x08\xff\xff\xff\xff"
    with socket.create_connection((lab.hosts["hv-t1"].ip, LIBVIRT_PORT), timeout=2) as s:
        s.settimeout(2)
        s.sendall(garbage)
        assert s.recv(100) == b""
    # ... the hanging one accepts the connection and then says nothing at all.
    with socket.create_connection((lab.hosts["hv-hang"].ip, LIBVIRT_PORT), timeout=2) as s:
        s.settimeout(0.7)
        s.sendall(garbage)
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            s.recv(100)
        assert time.monotonic() - start >= 0.6


def test_set_fault_switches_a_host_and_back(fresh_lab, subset, default_scenario):
    lab = fresh_lab(subset(default_scenario, ["ocloud"]))
    uri, ip = lab.hosts["ocloud"].uri, lab.hosts["ocloud"].ip
    lab.set_fault("ocloud", "refuse")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ip, LIBVIRT_PORT), timeout=2).close()
    lab.set_fault("ocloud", "pass")
    assert len(_domains_seen(uri)) == 4


# --------------------------------------------------------------------------- scenario files

SCENARIO = '''name = "t"

[[pool]]
id = "p"

[[host]]
name = "h1"
pool = "p"

[[host]]
name = "h2"
pool = "p"

[[vm]]
name = "a"
uuid = "11111111-1111-1111-1111-111111111111"
host = "h1"
state = "running"
vcpu = 2
memory_mb = 1024
'''

SECOND_VM = '''
[[vm]]
name = "{name}"
uuid = "{uuid}"
host = "{host}"
state = "off"
vcpu = 2
memory_mb = 1024
'''


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def test_valid_scenario_parses():
    s = parse(SCENARIO, "x.toml")
    assert [h.name for h in s.hosts] == ["h1", "h2"]
    (vm,) = s.vms
    assert (vm.name, vm.virt.state, vm.vdi.status, vm.virt.vcpu) == ("a", "running", 1, 2)


@pytest.mark.parametrize(("text", "field", "needle", "nth", "reason"), [
    pytest.param(SCENARIO.replace('name = "h2"\n', 'name = "h2"\ncolour = "red"\n'),
                 "host[1].colour", "colour", 1, "unknown field", id="unknown-field"),
    pytest.param(SCENARIO.replace("vcpu = 2", 'vcpu = "two"'),
                 "vm[0].vcpu", "vcpu", 1, "positive integer", id="wrong-type-vm"),
    pytest.param(SCENARIO.replace('pool = "p"\n\n[[host]]\nname = "h2"',
                                  'pool = "p"\ncpus = "many"\n\n[[host]]\nname = "h2"'),
                 "host[0].cpus", "cpus", 1, "expected an integer, got str", id="wrong-type-host"),
    pytest.param(SCENARIO.replace('host = "h1"', 'host = "h9"'),
                 "vm[0].host", 'host = "h9"', 1, "unknown host 'h9'", id="unknown-host"),
    pytest.param(SCENARIO.replace("memory_mb = 1024", 'memory_mb = 1024\nvirt = { host = "zz" }'),
                 "vm[0].virt.host", "virt =", 1, "unknown host 'zz'", id="unknown-host-override"),
    pytest.param(SCENARIO + SECOND_VM.format(name="b", host="h2",
                                             uuid="11111111-1111-1111-1111-111111111111"),
                 "vm[1].uuid", "uuid =", 2, "already used by vm[0]", id="duplicate-uuid"),
    pytest.param(SCENARIO + SECOND_VM.format(name="a", host="h1",
                                             uuid="22222222-2222-2222-2222-222222222222"),
                 "vm[1].name", 'name = "a"', 2, "already has a domain named 'a'",
                 id="duplicate-name-on-host"),
    pytest.param(SCENARIO + "\n[[vm]\n", "toml", "[[vm]", 2, "", id="toml-syntax"),
])
def test_malformed_scenario_names_file_line_and_field(text, field, needle, nth, reason):
    with pytest.raises(ScenarioError) as info:
        parse(text, "x.toml")
    err = info.value
    line = _line_of(text, needle, nth)
    assert (err.path, err.line, err.field_name) == ("x.toml", line, field)
    assert str(err).startswith(f"x.toml:{line}: {field}: ")
    assert reason in err.reason


def test_same_name_on_different_hosts_is_fine():
    text = SCENARIO + SECOND_VM.format(name="a", host="h2",
                                       uuid="22222222-2222-2222-2222-222222222222")
    assert [v.virt.host for v in parse(text, "x.toml").vms] == ["h1", "h2"]


def _cli_env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "LANG": "C.UTF-8"}


def test_lab_up_with_missing_scenario_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([str(VDITUI), "lab", "up", "--scenario", "missing.toml"],
                          env=_cli_env(tmp_path), capture_output=True, text=True, timeout=30,
                          cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr == "vditui: missing.toml: file: no such file\n"


def test_lab_up_with_malformed_scenario_exits_2_naming_the_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(SCENARIO.replace("vcpu = 2", "vcpu = 0"), encoding="utf-8")
    proc = subprocess.run([str(VDITUI), "lab", "up", "--scenario", str(bad)],
                          env=_cli_env(tmp_path), capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    line = _line_of(SCENARIO, "vcpu")
    assert proc.stderr == (f"vditui: {bad}:{line}: vm[0].vcpu: expected a positive integer, "
                           "got 0\n")


# --------------------------------------------------------------------------- failing to start


def test_lab_that_cannot_find_libvirtd_says_why_and_leaves_nothing(monkeypatch, default_scenario):
    def missing() -> str:
        raise LabError("libvirtd not found: install it with `apt-get install libvirt-daemon`")

    monkeypatch.setattr(lab_daemon, "find_libvirtd", missing)
    before = {t.ident for t in threading.enumerate()}
    lab = Lab(default_scenario)
    with pytest.raises(LabError, match="libvirtd not found: install it"):
        lab.start()
    assert not lab.workdir.exists()
    assert all(h.daemon.proc is None for h in lab.hosts.values())
    assert _wait(lambda: {t.ident for t in threading.enumerate()
                          if t.is_alive()} <= before, 5)
    # The subnet claim (the platform's port) was let go.
    with socket.socket() as s:
        s.bind((f"{lab.prefix}.1", VDI_PORT))


def test_lab_whose_daemon_dies_at_start_says_why_and_leaves_nothing(monkeypatch,
                                                                    default_scenario):
    real = lab_daemon.find_libvirtd()
    calls = {"n": 0}

    def third_fails() -> str:
        # The first two hosts get a real libvirtd, the third one a program that exits at once.
        calls["n"] += 1
        return real if calls["n"] <= 2 else "/bin/false"

    monkeypatch.setattr(lab_daemon, "find_libvirtd", third_fails)
    started: list[int] = []
    orig_start = lab_daemon.LibvirtDaemon.start

    def recording_start(self: lab_daemon.LibvirtDaemon) -> None:
        orig_start(self)
        assert self.proc is not None
        started.append(self.proc.pid)

    monkeypatch.setattr(lab_daemon.LibvirtDaemon, "start", recording_start)
    lab = Lab(default_scenario)
    with pytest.raises(LabError) as info:
        lab.start()
    third = default_scenario.hosts[2].name
    assert str(info.value).startswith(f"{third}: libvirtd exited at start")
    assert len(started) == len(default_scenario.hosts)
    assert [p for p in started if _pid_alive(p)] == []
    assert _libvirtd_pids_under(lab.workdir) == []
    assert not lab.workdir.exists()
    assert all(h.daemon.proc is None for h in lab.hosts.values())
    assert _lab_threads(lab, 0) == []


def test_lab_with_unrunnable_libvirtd_says_why(monkeypatch, default_scenario, tmp_path):
    monkeypatch.setattr(lab_daemon, "find_libvirtd", lambda: str(tmp_path / "no-libvirtd"))
    lab = Lab(default_scenario)
    with pytest.raises(LabError, match=r"cannot run .*no-libvirtd"):
        lab.start()
    assert not lab.workdir.exists()
    assert _libvirtd_pids_under(lab.workdir) == []


# --------------------------------------------------------------------------- chaos


def test_chaos_changes_states_and_the_platform_follows(fresh_lab, monkeypatch):
    lab = fresh_lab()
    touched: list[str] = []
    real_act = lab.act

    def act(host: str, vm_uuid: str, action: str) -> str:
        touched.append(vm_uuid)
        return real_act(host, vm_uuid, action)

    monkeypatch.setattr(lab, "act", act)
    lag = 0.2
    chaos = lab.chaos(rate=50, lag=lag, seed=7)
    time.sleep(1.0)
    chaos.stop()
    stopped_at = time.monotonic()
    assert chaos.changes >= 20
    assert chaos.errors == 0
    # Chaos only touches hosts that answer.
    faulty = {h.name for h in lab.scenario.hosts if h.fault != "none"}
    by_uuid = {v.uuid: v for v in lab.scenario.vms}
    assert not {by_uuid[u].virt.host for u in touched} & faulty
    changed = [u for u in set(touched)
               if lab.virt_state(by_uuid[u].virt.host, u) != by_uuid[u].virt.state]
    assert changed, "chaos changed no VM's state"

    time.sleep(max(0.0, lag + 0.3 - (time.monotonic() - stopped_at)))
    platform = _vdi_domains(lab)
    checked = 0
    for u in sorted(set(touched)):
        vm = by_uuid[u]
        if vm.vdi is None:
            continue  # the platform does not know it
        state = lab.virt_state(vm.virt.host, u)
        assert platform[vm.vdi.id] == VDI_STATUS[state], (vm.name, state, platform[vm.vdi.id])
        checked += 1
    assert checked >= 10
    # Untouched VMs keep what the scenario declares for the platform.
    for vm in lab.scenario.vms:
        if vm.vdi is not None and vm.uuid not in touched:
            assert platform[vm.vdi.id] == vm.vdi.status, vm.name


def test_chaos_with_negative_lag_leaves_the_platform_behind(fresh_lab, subset, default_scenario):
    lab = fresh_lab(subset(default_scenario, ["ocloud"]))
    chaos = lab.chaos(rate=40, lag=-1, seed=3)
    time.sleep(0.4)
    chaos.stop()
    assert chaos.changes >= 5
    platform = _vdi_domains(lab)
    # The platform never followed: it still says what the scenario declares.
    assert platform == {v.vdi.id: v.vdi.status for v in lab.scenario.vms if v.vdi is not None}
    assert any(lab.virt_state("ocloud", v.uuid) != v.virt.state for v in lab.scenario.vms)


# --------------------------------------------------------------------------- daemon crash


def test_kill_and_restart_daemon_brings_the_host_back(fresh_lab, subset, default_scenario):
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1"]))
    h = lab.hosts["hv-t1"]
    vm = lab.vm("class-a-01")
    lab.act("hv-t1", vm.uuid, "destroy")
    old_pid = h.daemon.proc.pid

    lab.kill_daemon("hv-t1")
    assert not _pid_alive(old_pid)
    assert not h.daemon.alive
    with pytest.raises(libvirt.libvirtError):
        _domains_seen(h.uri)
    # The other host does not care.
    assert _domains_seen(lab.hosts["ocloud"].uri) == _declared(lab.scenario, "ocloud")

    lab.restart_daemon("hv-t1")
    assert h.daemon.alive and h.daemon.proc.pid != old_pid
    # Back on the same URI, with the scenario's domains (the kill lost the change above).
    assert _domains_seen(h.uri) == _declared(lab.scenario, "hv-t1")
    assert lab.virt_state("hv-t1", vm.uuid) == "running"
    assert lab.act("hv-t1", vm.uuid, "suspend") == "paused"


def test_define_and_undefine_through_the_lab(fresh_lab, subset, default_scenario):
    lab = fresh_lab(subset(default_scenario, ["hv-t1"]))
    base = lab.vm("class-a-01")
    new = replace(base, name="class-a-new", uuid="33333333-3333-4333-8333-333333333333",
                  virt=replace(base.virt, vcpu=3, memory_mb=3072))
    lab.define("hv-t1", new, start=True)
    seen = _domains_seen(lab.hosts["hv-t1"].uri)
    assert seen[new.uuid] == ("class-a-new", "running", 3, 3072)
    lab.undefine("hv-t1", new.uuid)
    lab.undefine("hv-t1", base.uuid)
    seen = _domains_seen(lab.hosts["hv-t1"].uri)
    assert new.uuid not in seen and base.uuid not in seen
    assert len(seen) == len(lab.scenario.vms_on("hv-t1")) - 1
