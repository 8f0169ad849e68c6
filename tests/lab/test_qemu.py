"""The read path on real hypervisors: qemu hosts (a privileged libvirtd with the QEMU driver and
real diskless KVM guests) instead of libvirt's test driver.

One lab for the module (two qemu hosts, three running guests); tests that change guests put
them back. On a machine where QEMU cannot run the lab serves these hosts with the test driver,
and every test here is skipped with the lab's own reason (this suite is meant to run them).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.live import live_host, live_hosts
from vditui.core import virt
from vditui.core.events import DomainChanged
from vditui.core.models import ConnState, Domain, VirtState
from vditui.core.virt import probe
from vditui.lab import qemu
from vditui.lab.console import run_console
from vditui.lab.lab import Lab
from vditui.lab.scenario import Scenario, ScenarioError, load_default, parse
from vditui.lab.waiting import eventually

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

SCENARIO = """
name = "qemu"
[[pool]]
id = "p"
name = "Real"

[[host]]
name = "kvm-a"
pool = "p"
driver = "qemu"

[[host]]
name = "kvm-b"
pool = "p"
driver = "qemu"
transports = ["tcp", "ssh"]

# consistent guests: the platform records what `virsh dominfo` shows
[[vm]]
name = "hot"
host = "kvm-a"
state = "running"
vcpu = 1
vcpu_max = 2
memory_mb = 128

[[vm]]
name = "balloon"
host = "kvm-a"
state = "running"
vcpu = 1
memory_mb = 128
current_memory_mb = 64

[[vm]]
name = "napping"
host = "kvm-a"
state = "suspended"
vcpu = 1
memory_mb = 64

[[vm]]
name = "hot-off"
host = "kvm-a"
state = "off"
vcpu = 2
vcpu_max = 4
memory_mb = 4096
current_memory_mb = 1024

[[vm]]
name = "spare"
host = "kvm-b"
state = "off"
vcpu = 1
memory_mb = 64

# every kind of drift, on shut-off guests (they cost nothing)
[[vm]]
name = "d-state"
host = "kvm-a"
state = "running"
vcpu = 1
memory_mb = 64
virt = { state = "shutoff" }
expect = ["state"]

[[vm]]
name = "d-vcpu"
host = "kvm-b"
state = "off"
vcpu = 2
memory_mb = 64
virt = { vcpu = 1, vcpu_max = 2 }
expect = ["vcpu"]
note = "the platform recorded the maximum, the guest runs with 1"

[[vm]]
name = "d-memory"
host = "kvm-b"
state = "off"
vcpu = 1
memory_mb = 64
virt = { memory_mb = 256, current_memory_mb = 64 }
expect = ["memory"]
note = "the platform recorded the balloon's level, the guest is configured with 256"

[[vm]]
name = "d-only-vdi"
host = "kvm-b"
state = "off"
vcpu = 1
memory_mb = 64
virt = false
expect = ["only_in_vdi"]

[[vm]]
name = "d-only-libvirt"
host = "kvm-b"
state = "off"
vcpu = 1
memory_mb = 64
vdi = false
expect = ["only_in_libvirt"]

[[vm]]
name = "d-placement"
host = "kvm-a"
state = "off"
vcpu = 1
memory_mb = 64
virt = { host = "kvm-b" }
expect = ["placement"]

[[vm]]
name = "d-dup"
host = "kvm-a"
state = "off"
vcpu = 1
memory_mb = 64
vdi_id = "d-1"
expect = ["duplicate"]

[[vm]]
name = "d-dup"
host = "kvm-b"
state = "off"
vcpu = 1
memory_mb = 64
vdi_id = "d-2"
expect = ["duplicate"]
"""


def scenario() -> Scenario:
    return parse(SCENARIO, "tests/lab/test_qemu.py")


def domains_now(lab: Lab, host: str) -> dict[str, tuple[str, int, int, int]]:
    """uuid -> (name, state code, current vCPUs, maximum memory KiB) by the lab's connection."""
    out = {}
    for dom in lab.host(host).conn.listAllDomains():
        state, max_kib, _cur, vcpus, _t = dom.info()
        out[dom.UUIDString()] = (dom.name(), state, vcpus, max_kib)
    return out


@pytest.fixture(scope="module")
def _qemu_lab() -> Iterator[Lab]:
    with Lab(scenario()) as lab:
        if lab.fallbacks:
            pytest.skip(f"QEMU cannot run here: {lab.fallback_line()}")
        yield lab


@pytest.fixture(scope="module")
def _declared(_qemu_lab: Lab) -> dict[str, Any]:
    return {h: domains_now(_qemu_lab, h) for h in _qemu_lab.hosts}


@pytest.fixture
def qlab(_qemu_lab: Lab, _declared: dict[str, Any]) -> Iterator[Lab]:
    """The module's qemu lab, put back as the scenario declares after each test."""
    yield _qemu_lab
    lab = _qemu_lab
    lab.set_fault("kvm-a", "pass")
    lab.set_fault("kvm-b", "pass")
    for name, h in lab.hosts.items():
        if not h.daemon.alive:
            lab.restart_daemon(name)
        if domains_now(lab, name) != _declared[name]:
            with h.lock:
                lab._populate(h)


def expected(scen: Scenario) -> Counter[tuple[str, str]]:
    want: Counter[tuple[str, str]] = Counter()
    for vm in scen.vms:
        for kind in vm.expect:
            want[(vm.name, kind)] += (vm.vdi is not None) + (vm.virt is not None) \
                if kind == "duplicate" else 1
    return want


# --------------------------------------------------------------------------- the two read paths


def test_the_lab_serves_real_guests(qlab: Lab) -> None:
    assert not qlab.fallbacks
    assert {h.driver for h in qlab.hosts.values()} == {"qemu"}
    assert qlab.uri_templates == ("qemu+tcp://{ip}:16510/system",)
    pids = qlab.host("kvm-a").daemon.guest_pids()  # type: ignore[attr-defined]
    assert sorted(pids) == ["balloon", "hot", "napping"]
    for pid in pids.values():
        assert Path(f"/proc/{pid}/comm").read_text().startswith("qemu")
    dom = qlab.domain("kvm-a", qlab.vm("hot").uuid)
    assert dom.XMLDesc().startswith(f"<domain type='{qemu.domain_type()}'")


@pytest.mark.parametrize("host", ["kvm-a", "kvm-b"])
def test_bulk_stats_and_per_domain_reads_agree_on_every_guest(qlab: Lab, host: str) -> None:
    conn = libvirt.open(qlab.host(host).uri)
    try:
        bulk = virt.read_domains(conn)
        # QEMU reports vCPU and balloon figures for running and shut-off guests alike: one call.
        assert bulk.round_trips == 1
        one_by_one = {d.uuid: virt.read_one(conn, d.uuid) for d in bulk.domains}
    finally:
        conn.close()
    assert {d.uuid: d for d in bulk.domains} == one_by_one
    assert len(bulk.domains) == len(qlab.scenario.vms_on(host))
    for vm in qlab.scenario.vms_on(host):
        assert vm.virt is not None
        (got,) = [d for d in bulk.domains if d.uuid == vm.uuid]
        # What the scenario calls vcpu is the count the guest runs with (virsh dominfo's), and
        # memory its configured size, whatever the maximum vCPUs or the balloon's level.
        state = {"running": VirtState.RUNNING, "paused": VirtState.PAUSED,
                 "shutoff": VirtState.SHUTOFF}[vm.virt.state]
        assert got == Domain(vm.uuid, vm.name, state, vm.virt.vcpu, vm.virt.memory_mb * 1024)


def test_hot_pluggable_and_ballooned_guests_are_what_the_test_reads(qlab: Lab) -> None:
    """The guests the agreement above is about really are what they claim: current vCPUs below
    the maximum, a balloon target below the size, running and shut off."""
    conn = qlab.host("kvm-a").conn
    stats = {d.name(): st for d, st in conn.getAllDomainStats(virt.STATS_FLAGS)}
    assert (stats["hot"]["vcpu.current"], stats["hot"]["vcpu.maximum"]) == (1, 2)
    assert (stats["hot-off"]["vcpu.current"], stats["hot-off"]["vcpu.maximum"]) == (2, 4)
    assert stats["hot-off"]["state.state"] == libvirt.VIR_DOMAIN_SHUTOFF
    assert (stats["hot-off"]["balloon.current"], stats["hot-off"]["balloon.maximum"]) == \
        (1024 * 1024, 4096 * 1024)
    balloon = conn.lookupByName("balloon")
    assert f"<currentMemory unit='KiB'>{64 * 1024}</currentMemory>" in balloon.XMLDesc(
        libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert stats["balloon"]["balloon.maximum"] == 128 * 1024


# --------------------------------------------------------------------------- the engine


async def test_every_declared_drift_is_found_and_nothing_else(qlab, engine_settings,
                                                              start_engine) -> None:
    engine = await start_engine(engine_settings(qlab), watch=False)
    assert await engine.wait_settled(20)
    cmp = engine.reconcile_now().comparison
    found = Counter((d.subject, d.kind.value) for d in cmp.drifts)
    assert found == expected(qlab.scenario)
    vcpu = next(d for d in cmp.drifts if d.kind.value == "vcpu")
    assert (vcpu.vdi_value, vcpu.virt_value) == ("2", "1")
    assert {s.uri for s in live_hosts(engine).values()} == {h.uri for h in qlab.hosts.values()}


async def test_capacity_figures_are_the_qemu_hosts_real_node_info(qlab, engine_settings,
                                                                   start_engine) -> None:
    """Issue 20 item 3: libvirt's node info (CPUs, memory) as read by the session, and the
    running guests' vCPUs and memory summed against it, on a real QEMU/KVM host."""
    import asyncio
    import os

    from vditui.core.vdi_facts import capacity

    engine = await start_engine(engine_settings(qlab), watch=False)
    assert await engine.wait_settled(20)
    for _ in range(100):  # read once per connection, beside the identity, off the first read
        names = engine.host_names()
        views = {names[hid]: v for hid, v in engine.host_views().items()}
        if all(v.node_cpus is not None for v in views.values()):
            break
        await asyncio.sleep(0.1)
    cmp = engine.reconcile_now().comparison
    for h in cmp.hosts:
        view = views[h.host.name]
        model, mem_mib, cpus, *_ = qlab.host(h.host.name).conn.getInfo()
        assert (view.node_cpus, view.node_memory_kib) == (cpus, mem_mib * 1024), model
        assert view.node_cpus == os.cpu_count()
        with open("/proc/meminfo") as f:
            total_kib = int(next(line for line in f if line.startswith("MemTotal:")).split()[1])
        assert abs(view.node_memory_kib - total_kib) < 1024  # getInfo rounds to a MiB
        running = [d.info() for d in qlab.host(h.host.name).conn.listAllDomains()
                   if d.isActive()]
        c = capacity(h, cmp.vms)
        assert c.running == len(running) and c.vcpus == sum(i[3] for i in running)
        assert c.memory_gb == round(sum(i[1] for i in running) / 1024 / 1024, 2)
        assert c.node_cpus == cpus and c.vdi_cpus == h.host.cpus


def _session(engine: Any, name: str) -> Any:
    return live_host(engine, name)


async def test_lifecycle_events_from_real_operations(qlab, engine_settings, start_engine):
    events: list[Any] = []
    engine = await start_engine(engine_settings(qlab),
                                listener=lambda u: events.append(u.event)
                                if isinstance(u, DomainChanged) else None)
    assert await engine.wait_settled(20)
    s = _session(engine, "kvm-b")
    spare = qlab.vm("spare")

    async def do(action: str, state: VirtState, kind: str) -> None:
        since = len(events)
        assert qlab.act("kvm-b", spare.uuid, action) == state.value
        await eventually(lambda: s.domains[spare.uuid].state is state
                         and any(e.event == kind for e in events[since:]), 10,
                         f"{kind} event leaving {spare.name} {state.value}")

    await do("start", VirtState.RUNNING, "started")
    await do("suspend", VirtState.PAUSED, "suspended")
    await do("resume", VirtState.RUNNING, "resumed")
    await do("destroy", VirtState.SHUTOFF, "stopped")
    # Real QEMU says more than the test driver: a start is RESUMED then STARTED (the first is
    # not shown: a shut-off guest does not resume), a destroy SHUTDOWN then STOPPED.
    kinds = [e.event for e in events if e.uuid == spare.uuid]
    assert kinds == ["started", "suspended", "resumed", "shutdown", "stopped"], kinds
    assert s.domains[spare.uuid] == virt.read_one(qlab.host("kvm-b").conn, spare.uuid)


async def test_a_vcpu_hot_plugged_live_shows_at_the_next_read(qlab, engine_settings,
                                                             start_engine):
    """QEMU hot-plugs a vCPU into a running guest without any event (lifecycle or other), so
    vditui sees it at its next full read (``reread_interval``, or a refresh), not at once."""
    engine = await start_engine(engine_settings(qlab))
    assert await engine.wait_settled(20)
    s = _session(engine, "kvm-a")
    hot = qlab.vm("hot")
    dom = qlab.domain("kvm-a", hot.uuid)
    dom.setVcpusFlags(2, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    assert dom.info()[3] == 2
    read_at = s.read_at
    await engine.refresh()
    await eventually(lambda: s.read_at > read_at and s.domains[hot.uuid].vcpu == 2, 20,
                     "the re-read to see 2 vCPUs")
    drift = await eventually(lambda: next((d for d in engine.reconcile_now().comparison.drifts
                                           if d.subject == "hot"), None), 10, "a vCPU drift")
    assert (drift.kind.value, drift.vdi_value, drift.virt_value) == ("vcpu", "1", "2")


async def test_a_crashed_guest(qlab, engine_settings, start_engine):
    events: list[Any] = []
    engine = await start_engine(engine_settings(qlab),
                                listener=lambda u: events.append(u.event)
                                if isinstance(u, DomainChanged) else None)
    assert await engine.wait_settled(20)
    s = _session(engine, "kvm-b")
    spare = qlab.vm("spare")
    qlab.act("kvm-b", spare.uuid, "start")
    await eventually(lambda: s.domains[spare.uuid].state is VirtState.RUNNING, 10, "running")
    assert qlab.crash("kvm-b", spare.uuid) == "shutoff"
    state, reason = qlab.domain("kvm-b", spare.uuid).state()
    assert (state, reason) == (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_CRASHED)
    ev = await eventually(lambda: next((e for e in events if e.uuid == spare.uuid
                                        and e.event == "crashed"), None), 10, "crashed event")
    assert ev.old.state is VirtState.RUNNING and ev.new.state is VirtState.SHUTOFF
    assert s.domains[spare.uuid].state is VirtState.SHUTOFF
    with pytest.raises(Exception, match="no running QEMU"):
        qlab.crash("kvm-b", spare.uuid)


async def test_daemon_restart_with_guests_running(qlab, engine_settings, start_engine):
    engine = await start_engine(engine_settings(qlab, keepalive_interval=1, keepalive_count=1))
    assert await engine.wait_settled(20)
    s = _session(engine, "kvm-a")
    before = dict(s.domains)
    daemon = qlab.host("kvm-a").daemon
    pids = daemon.guest_pids()  # type: ignore[attr-defined]
    read_at = s.read_at
    qlab.restart_daemon("kvm-a")
    # The guests never stopped: the same QEMU processes, found again by the new daemon.
    assert daemon.guest_pids() == pids  # type: ignore[attr-defined]
    await eventually(lambda: s.read_at > read_at and s.state is ConnState.CONNECTED, 20,
                     "kvm-a read again after its daemon restarted")
    assert s.domains == before
    assert qlab.virt_state("kvm-a", qlab.vm("hot").uuid) == "running"


async def test_a_cut_connection_is_read_again(qlab, engine_settings, start_engine):
    engine = await start_engine(engine_settings(qlab))
    assert await engine.wait_settled(20)
    s = _session(engine, "kvm-a")
    before, read_at = dict(s.domains), s.read_at
    qlab.cut("kvm-a")
    await eventually(lambda: s.read_at > read_at and s.state is ConnState.CONNECTED, 20,
                     "kvm-a read again after the cut")
    assert s.domains == before


async def test_ssh_to_a_qemu_host(qlab):
    h = qlab.host("kvm-b")
    assert h.ssh_uri.startswith("qemu+ssh://") and "/system?" in h.ssh_uri
    ok, no_key = await probe([h.ssh_uri, h.ssh_uri_without_key], 15)
    assert ok.ok, ok.error
    assert not no_key.ok and no_key.error is not None
    conn = virt.open_connection(h.ssh_uri)
    try:
        over_ssh = virt.read_domains(conn)
    finally:
        conn.close()
    assert over_ssh.round_trips == 1
    assert {d.uuid for d in over_ssh.domains} == {v.uuid for v in qlab.scenario.vms_on("kvm-b")}


# --------------------------------------------------------------------------- fallback


def test_without_qemu_the_test_driver_serves_and_says_so(monkeypatch, fresh_lab,
                                                         engine_settings) -> None:
    """Where QEMU cannot run, a qemu host is served by the test driver, in one line kept in
    ``Lab.fallbacks`` and shown by ``describe()``; never silently."""
    import vditui.lab.lab as lab_module

    monkeypatch.setattr(lab_module, "unavailable", lambda: "not root (simulated)")
    lab = fresh_lab(scenario())
    assert lab.fallbacks == {
        h: f"{h}: QEMU unavailable (not root (simulated)); served by the test driver"
        for h in ("kvm-a", "kvm-b")}
    assert {h.driver for h in lab.hosts.values()} == {"test"}
    assert lab.uri_templates == ("test+tcp://{ip}/default",)
    assert "QEMU unavailable, test driver instead for kvm-a, kvm-b: not root (simulated)" \
        in lab.describe()
    # The same guests, with their vCPUs and memory, read through the test driver.
    conn = libvirt.open(lab.host("kvm-a").uri)
    try:
        got = {d.uuid: d for d in virt.read_domains(conn).domains}
    finally:
        conn.close()
    hot = lab.vm("hot")
    assert got[hot.uuid].vcpu == 1 and got[hot.uuid].memory_kib == 128 * 1024


def test_a_qemu_daemon_that_fails_falls_back(monkeypatch, fresh_lab) -> None:
    monkeypatch.setattr(qemu.QemuDaemon, "_command",
                        lambda self, binary, conf: ["sh", "-c", "echo 'error: no QEMU here' >&2"])
    lab = fresh_lab(parse(SCENARIO.split("# consistent guests")[0], "two-hosts"))
    assert set(lab.fallbacks) == {"kvm-a", "kvm-b"}
    assert all("QEMU libvirtd failed" in line and "no QEMU here" in line
               for line in lab.fallbacks.values())
    assert lab.fallback_line().startswith("kvm-a, kvm-b: its QEMU libvirtd failed")
    assert {h.driver for h in lab.hosts.values()} == {"test"}


def test_console_drives_real_guests(qlab: Lab) -> None:
    out = io.StringIO()
    for line in ("vm spare start", "vm spare suspend", "vm spare resume", "vm spare crash",
                 "vm hot crash", "vm d-only-vdi start", "restart kvm-b"):
        assert run_console(qlab, line, out)
    lines = out.getvalue().splitlines()
    assert lines[:4] == ["spare: running", "ok", "spare: paused", "ok"]
    assert lines[4:8] == ["spare: running", "ok", "spare: shutoff", "ok"]
    assert lines[8:10] == ["hot: shutoff", "ok"]
    assert lines[10].startswith("error: VM 'd-only-vdi' is not on any host's libvirt")
    assert lines[11] == "ok"
    assert qlab.host("kvm-b").daemon.alive


# --------------------------------------------------------------------------- the demo's host


async def test_the_default_scenarios_qemu_host_has_no_drift(fresh_lab, subset, engine_settings,
                                                            start_engine) -> None:
    """``make demo``'s qemu host beside a test-driver host: the hot-pluggable guest (1 of 2
    vCPUs) and the ballooned one (64 of 128 MiB) agree with the platform, both read over the
    lab's two URI templates."""
    lab = fresh_lab(subset(load_default(), ["hv-kvm", "ocloud"], "demo-qemu"))
    if lab.fallbacks:
        pytest.skip(f"QEMU cannot run here: {lab.fallback_line()}")
    assert lab.uri_templates == ("qemu+tcp://{ip}:16510/system", "test+tcp://{ip}/default")
    assert lab.host("hv-kvm").driver == "qemu" and lab.host("ocloud").driver == "test"
    engine = await start_engine(engine_settings(lab), watch=False)
    assert await engine.wait_settled(20)
    cmp = engine.reconcile_now().comparison
    assert cmp.drifts == ()
    uris = {s.name: s.uri for s in live_hosts(engine).values()}
    assert uris == {"hv-kvm": lab.host("hv-kvm").uri, "ocloud": lab.host("ocloud").uri}
    rows = {r.name: r for r in cmp.vms}
    assert (rows["kvm-hotplug"].virt.vcpu, rows["kvm-hotplug"].vdi.vcpu) == (1, 1)
    assert (rows["kvm-balloon"].virt.memory_kib, rows["kvm-balloon"].vdi.memory_mb) == \
        (128 * 1024, 128)
    assert rows["kvm-hotplug"].checked and rows["kvm-balloon"].checked


# --------------------------------------------------------------------------- scenario fields


def _nth_line(text: str, needle: str, nth: int) -> int:
    return [n for n, line in enumerate(text.splitlines(), 1) if needle in line][nth - 1]


@pytest.mark.parametrize(("old", "new", "field", "needle", "nth", "reason"), [
    pytest.param('driver = "qemu"\ntransports', 'driver = "xen"\ntransports', "host[1].driver",
                 'driver = "xen"', 1, "expected one of ('test', 'qemu')", id="driver"),
    pytest.param("vcpu_max = 4", "vcpu_max = 1", "vm[3].vcpu_max", "vcpu_max = 1", 1,
                 "must be at least vcpu (2)", id="vcpu-max-below-current"),
    pytest.param("current_memory_mb = 64\n", "current_memory_mb = 256\n",
                 "vm[1].current_memory_mb", "current_memory_mb = 256", 1,
                 "must be at most memory_mb (128)", id="balloon-above-size"),
    pytest.param("vcpu = 1\nvcpu_max = 2\nmemory_mb = 128", "vcpu = 1\nvcpu_max = 2\n"
                 "memory_mb = 4096", "vm[0].memory_mb", "memory_mb = 4096", 1,
                 "32 to 128 MiB", id="running-guest-too-big"),
    pytest.param("virt = { vcpu = 1, vcpu_max = 2 }", "vdi = { vcpu_max = 2 }",
                 "vm[6].vdi.vcpu_max", "vdi = { vcpu_max", 1, "unknown field (known: host, "
                 "memory_mb, state, vcpu)", id="virt-only-field"),
])
def test_malformed_qemu_fields_name_file_line_and_field(old, new, field, needle, nth, reason):
    text = SCENARIO.replace(old, new, 1)
    assert text != SCENARIO
    with pytest.raises(ScenarioError) as info:
        parse(text, "q.toml")
    err = info.value
    assert (err.field_name, err.line) == (field, _nth_line(text, needle, nth)), str(err)
    assert reason in err.reason, str(err)


def test_old_scenarios_keep_their_meaning() -> None:
    """Without the new fields a VM's current vCPUs are its maximum and its balloon is full,
    and a host is served by the test driver."""
    s = load_default().without_driver("qemu")
    assert {h.driver for h in s.hosts} == {"test"}
    assert all(v.virt.vcpu_max is None and v.virt.current_memory_mb is None
               for v in s.vms if v.virt is not None)
    assert [h.name for h in load_default().hosts if h.driver == "qemu"] == ["hv-kvm"]
