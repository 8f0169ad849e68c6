"""The core engine against the lab: every declared drift found and nothing else, unreachable
hosts reported without holding anyone up, live events, reconnects, probes and the grace period.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tests.live import LiveHost, live_host, live_hosts
from vditui.core.drift import DriftStatus
from vditui.core.engine import Engine
from vditui.core.events import (
    DomainChanged,
    DriftChanged,
    EngineEvent,
    HostChanged,
    SnapshotReady,
)
from vditui.core.models import ConnState, DriftKind, VirtErrorKind, VirtState
from vditui.core.virt import probe
from vditui.lab.scenario import Scenario
from vditui.lab.waiting import eventually

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

VDI_STATUS_NAMES = {0: "off", 1: "running", 2: "suspended", 5: "busy", 6: "upgrading"}


# --------------------------------------------------------------------------- helpers




def session(engine: Engine, name: str) -> LiveHost:
    return live_host(engine, name)


def host_updates(updates: list[tuple[float, EngineEvent]]) -> list[tuple[float, str, str]]:
    """(monotonic time, host name, connection state) of every host update, in order."""
    return [(at, u.host.name, u.host.state.value) for at, u in updates
            if isinstance(u, HostChanged)]


def latest_snapshot(updates: list[tuple[float, EngineEvent]]) -> SnapshotReady:
    return next(u for _, u in reversed(updates) if isinstance(u, SnapshotReady))


def recorder() -> tuple[list[tuple[float, EngineEvent]], Callable[[EngineEvent], None]]:
    updates: list[tuple[float, EngineEvent]] = []
    return updates, lambda u: updates.append((time.monotonic(), u))


def expected_drifts(scenario: Scenario) -> Counter[tuple[str, str]]:
    """(subject, kind) -> how many drifts the scenario declares. A duplicate is reported on
    every side the VM has (each platform record and each libvirt domain of the name)."""
    want: Counter[tuple[str, str]] = Counter()
    for vm in scenario.vms:
        for kind in vm.expect:
            sides = (vm.vdi is not None) + (vm.virt is not None)
            want[(vm.name, kind)] += sides if kind == "duplicate" else 1
    for h in scenario.hosts:
        for kind in h.expect:
            want[(h.name, kind)] += 1
    return want


# --------------------------------------------------------------------------- drift


async def test_every_declared_drift_is_found_and_nothing_else(lab, engine_settings,
                                                              start_engine):
    scenario = lab.scenario
    engine = await start_engine(engine_settings(lab), watch=False)
    assert await engine.wait_settled(10)
    cmp = engine.latest_comparison()
    assert cmp is not None

    found = Counter((d.subject, d.kind.value) for d in cmp.drifts)
    want = expected_drifts(scenario)
    assert found == want
    assert len(cmp.drifts) == sum(want.values()) == 16

    by_name = {vm.name: vm for vm in scenario.vms}
    hosts = {h.name: h for h in scenario.hosts}
    host_ids = {h.id: h.name for h in scenario.hosts}
    for d in cmp.drifts:
        if d.kind in (DriftKind.HOST_UNREACHABLE, DriftKind.HOST_OFFLINE_BUT_REACHABLE,
                      DriftKind.HOST_RUNNING_COUNT):
            assert d.key == d.host_id == hosts[d.subject].id
            continue
        vm = by_name[d.subject]
        if d.kind is DriftKind.DUPLICATE:
            continue
        # The drift belongs to the VM (keyed by its libvirt UUID, or its platform id when
        # libvirt has none) and names what each side says.
        assert d.key == (vm.uuid if vm.virt is not None else vm.vdi.id), d
        if d.kind is DriftKind.STATE:
            assert (d.vdi_value, d.virt_value) == (VDI_STATUS_NAMES[vm.vdi.status],
                                                   vm.virt.state), d
        elif d.kind is DriftKind.VCPU:
            assert (d.vdi_value, d.virt_value) == (str(vm.vdi.vcpu), str(vm.virt.vcpu)), d
        elif d.kind is DriftKind.MEMORY:
            assert (d.vdi_value, d.virt_value) == (f"{vm.vdi.memory_mb} MiB",
                                                   f"{vm.virt.memory_mb} MiB"), d
        elif d.kind is DriftKind.PLACEMENT:
            assert (d.vdi_value, d.virt_value) == (vm.vdi.host, vm.virt.host), d
            assert host_ids[d.host_id] == vm.vdi.host
    unreachable = {d.subject: d.virt_value for d in cmp.drifts
                   if d.kind is DriftKind.HOST_UNREACHABLE}
    assert unreachable == {"hv-refuse": "refused", "hv-hang": "timeout"}

    rows = {}
    for row in cmp.vms:
        rows.setdefault(row.name, []).append(row)
    # Busy and upgrading VMs, and the field report's four VMs, are compared and agree.
    quiet = ["class-a-06", "lab-gpu-03", *(v.name for v in scenario.vms_on("ocloud"))]
    assert len(quiet) == 6
    for name in quiet:
        (row,) = rows[name]
        assert row.checked and row.drifts == () and row.virt is not None and row.vdi is not None
    assert {v.vdi.status for v in (by_name["class-a-06"], by_name["lab-gpu-03"])} == {5, 6}
    # VMs whose host cannot be read get no verdict at all.
    faulty = {h.name for h in scenario.hosts if h.fault != "none"}
    unchecked = sorted(r.name for r in cmp.vms if not r.checked)
    assert unchecked == sorted(v.name for v in scenario.vms
                               if v.vdi is not None and v.vdi.host in faulty)
    assert len(unchecked) == 4
    assert all(r.drifts == () for r in cmp.vms if not r.checked)
    # Every VM of the scenario has a row (office-dup: two platform records, two domains).
    want_rows: Counter[str] = Counter()
    for v in scenario.vms:
        want_rows[v.name] += (v.vdi is not None) + (v.virt is not None) \
            if "duplicate" in v.expect else 1
    assert Counter(r.name for r in cmp.vms) == want_rows
    assert want_rows["office-dup"] == 4
    # libvirt's side, as read, is exactly the scenario's.
    for h in scenario.hosts:
        s = session(engine, h.name)
        if h.name in faulty:
            assert s.state is ConnState.FAILED and s.domains is None
            continue
        assert s.state is ConnState.CONNECTED
        assert {u: (d.name, d.state.value, d.vcpu, d.memory_kib // 1024)
                for u, d in s.domains.items()} == {
            v.uuid: (v.name, v.virt.state, v.virt.vcpu, v.virt.memory_mb)
            for v in scenario.vms_on(h.name)}


async def test_unreachable_hosts_reported_while_the_others_complete(lab, engine_settings,
                                                                    start_engine):
    settings = engine_settings(lab, connect_timeout=2.0)
    updates, listener = recorder()
    t0 = time.monotonic()
    engine = await start_engine(settings, watch=False, listener=listener)
    assert await engine.wait_settled(20)
    elapsed = time.monotonic() - t0
    assert elapsed < settings.connect_timeout + 3.0

    hang, refuse = session(engine, "hv-hang"), session(engine, "hv-refuse")
    assert hang.state is ConnState.FAILED and hang.error.kind is VirtErrorKind.TIMEOUT
    assert refuse.state is ConnState.FAILED and refuse.error.kind is VirtErrorKind.REFUSED
    assert hang.error.hint and refuse.error.hint
    drifts = {d.subject: d for d in engine.latest_comparison().drifts
              if d.kind is DriftKind.HOST_UNREACHABLE}
    assert sorted(drifts) == ["hv-hang", "hv-refuse"]
    assert drifts["hv-hang"].virt_value == "timeout"
    assert drifts["hv-refuse"].virt_value == "refused"

    seen = host_updates(updates)
    connected: dict[str, float] = {}
    for at, name, state in seen:
        if state == "connected":
            connected.setdefault(name, at - t0)
    hang_failed = min(at - t0 for at, name, state in seen if name == "hv-hang"
                      and state == "failed")
    healthy = sorted(h.name for h in lab.scenario.hosts if h.fault == "none")
    assert sorted(connected) == healthy
    # Every healthy host was read long before the hanging one gave up ...
    assert max(connected.values()) < settings.connect_timeout
    assert max(connected.values()) < hang_failed
    # ... which took the whole connect timeout (it was a real hang, not an early error).
    assert settings.connect_timeout - 0.1 <= hang_failed < settings.connect_timeout + 1.0
    for name in healthy:
        s = session(engine, name)
        assert s.state is ConnState.CONNECTED and s.domains is not None


async def test_a_hung_host_never_holds_up_a_refresh(lab, engine_settings, start_engine):
    engine = await start_engine(engine_settings(lab), watch=False)
    await engine.wait_settled(10)
    hang = session(engine, "hv-hang")
    assert hang.state is not ConnState.CONNECTED
    healthy = [s for s in live_hosts(engine).values()
               if lab.host(s.name).spec.fault == "none"]
    before = {s.name: s.read_at for s in healthy}
    start = time.monotonic()
    await engine.refresh()
    assert time.monotonic() - start < 2.0
    # Every answering host is read again at once, while the hung one is still hung.
    await eventually(lambda: all(s.read_at > before[s.name] for s in healthy), 2.0,
                   "every healthy host re-read")
    assert time.monotonic() - start < 2.0
    assert hang.state is not ConnState.CONNECTED and hang.domains is None
    assert engine.platform_error() is None


async def test_expired_token_recovers_on_refresh(fresh_lab, healthy_scenario, engine_settings,
                                                 start_engine):
    lab = fresh_lab(healthy_scenario)
    engine = await start_engine(engine_settings(lab), watch=False)
    assert await engine.wait_settled(5)
    before = engine.inventory()
    assert before is not None
    assert len(before.vms) == sum(v.vdi is not None for v in healthy_scenario.vms) == 35
    logins = lab.vdi.requests["POST /ocloud/v1/login"]
    assert logins == 1

    lab.vdi.expire_tokens()
    await engine.refresh()

    assert engine.platform_error() is None
    assert lab.vdi.requests["POST /ocloud/v1/login"] == logins + 1
    after = engine.inventory()
    assert after is not before and after.fetched_at > before.fetched_at
    assert after.hosts == before.hosts and after.vms == before.vms
    cmp = engine.reconcile_now().comparison
    assert Counter((d.subject, d.kind.value) for d in cmp.drifts) == expected_drifts(
        healthy_scenario)


# --------------------------------------------------------------------------- live events


async def test_live_events_without_polling(fresh_lab, healthy_scenario, engine_settings,
                                           start_engine):
    lab = fresh_lab(healthy_scenario)
    updates, listener = recorder()
    settings = engine_settings(lab, reread_interval=3600.0, refresh_interval=3600.0)
    engine = await start_engine(settings, watch=True, listener=listener)
    assert await engine.wait_settled(5)
    t1, t2 = session(engine, "hv-t1"), session(engine, "hv-t2")
    read_at = {s.name: s.read_at for s in live_hosts(engine).values()}
    vdi_requests = lab.vdi.requests["GET /ocloud/v1/domain"]

    def vm_update(uuid: str, since: float) -> DomainChanged | None:
        for at, u in updates:
            if at >= since and isinstance(u, DomainChanged) and u.event.uuid == uuid:
                return u
        return None

    async def act_and_see(host: str, uuid: str, action: Callable[[], Any], event: str,
                          state: VirtState | None) -> DomainChanged:
        since = time.monotonic()
        action()
        u = await eventually(lambda: vm_update(uuid, since), 2.0, f"{event} event for {uuid}")
        assert time.monotonic() - since < 2.0
        assert u.event.event == event
        assert (u.event.new.state if u.event.new else None) is state
        assert u.event.host_id == session(engine, host).host_id
        return u

    a01, a02, a03 = lab.vm("class-a-01"), lab.vm("class-a-02"), lab.vm("class-a-03")
    await act_and_see("hv-t1", a03.uuid, lambda: lab.act("hv-t1", a03.uuid, "start"),
                      "started", VirtState.RUNNING)
    assert t1.domains[a03.uuid].state is VirtState.RUNNING
    u = await act_and_see("hv-t1", a01.uuid, lambda: lab.act("hv-t1", a01.uuid, "destroy"),
                          "stopped", VirtState.SHUTOFF)
    assert u.event.old.state is VirtState.RUNNING
    assert t1.domains[a01.uuid].state is VirtState.SHUTOFF
    await act_and_see("hv-t1", a02.uuid, lambda: lab.act("hv-t1", a02.uuid, "suspend"),
                      "suspended", VirtState.PAUSED)
    assert t1.domains[a02.uuid].state is VirtState.PAUSED

    new = replace(a01, name="class-a-new", uuid="44444444-4444-4444-8444-444444444444",
                  virt=replace(a01.virt, vcpu=3, memory_mb=3072))
    u = await act_and_see("hv-t1", new.uuid, lambda: lab.define("hv-t1", new),
                          "defined", VirtState.SHUTOFF)
    assert u.event.old is None
    assert (u.event.new.name, u.event.new.vcpu, u.event.new.memory_kib) == (
        "class-a-new", 3, 3072 * 1024)
    assert t1.domains[new.uuid] == u.event.new

    b04 = lab.vm("class-b-04")
    assert b04.uuid in t2.domains
    u = await act_and_see("hv-t2", b04.uuid, lambda: lab.undefine("hv-t2", b04.uuid),
                          "undefined", None)
    assert u.event.old is not None and u.event.new is None
    assert b04.uuid not in t2.domains

    # All of it came as events: no host was read again, the platform not asked again.
    assert {s.name: s.read_at for s in live_hosts(engine).values()} == read_at
    assert lab.vdi.requests["GET /ocloud/v1/domain"] == vdi_requests
    # The comparison follows the events: the new VM is unknown to the platform, and so on.
    # (Waiting for every one: the pass after the last event may still be running.)
    want = {("class-a-new", "only_in_libvirt"), ("class-a-01", "state"), ("class-a-02", "state"),
            ("class-a-03", "state"), ("class-b-04", "only_in_vdi")}
    await eventually(lambda: want <= {(d.subject, d.kind.value)
                                      for d in latest_snapshot(updates).comparison.drifts},
                     1.0, "the events' drifts in the comparison")


# --------------------------------------------------------------------------- reconnects


async def test_cut_connection_is_noticed_and_read_again(fresh_lab, subset, default_scenario,
                                                        engine_settings, start_engine):
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1"]))
    updates, listener = recorder()
    settings = engine_settings(lab, reread_interval=3600.0, refresh_interval=3600.0)
    engine = await start_engine(settings, listener=listener)
    assert await engine.wait_settled(5)
    s, other = session(engine, "hv-t1"), session(engine, "ocloud")
    read_at, reconnects, other_read = s.read_at, s.reconnects, other.read_at

    cut_at = time.monotonic()
    lab.cut("hv-t1")
    await eventually(lambda: s.reconnects > reconnects and s.state is ConnState.CONNECTED
                   and s.read_at > read_at, 5.0, "reconnect after the cut")
    assert time.monotonic() - cut_at < 5.0
    states = [st for at, name, st in host_updates(updates) if name == "hv-t1" and at >= cut_at]
    assert states[0] == "reconnecting" and states[-1] == "connected"
    assert {u: d.state.value for u, d in s.domains.items()} == {
        v.uuid: v.virt.state for v in lab.scenario.vms_on("hv-t1")}
    # The other host's connection was not touched.
    assert other.read_at == other_read and other.state is ConnState.CONNECTED

    # Live events flow on the new connection.
    vm = lab.vm("class-a-02")
    lab.act("hv-t1", vm.uuid, "suspend")
    await eventually(lambda: s.domains[vm.uuid].state is VirtState.PAUSED, 2.0,
                   "an event on the new connection")


async def test_killed_daemon_session_comes_back_by_itself(fresh_lab, subset, default_scenario,
                                                          engine_settings, start_engine):
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1"]))
    settings = engine_settings(lab, reread_interval=3600.0, refresh_interval=3600.0)
    engine = await start_engine(settings)
    assert await engine.wait_settled(5)
    s = session(engine, "hv-t1")
    vm = lab.vm("class-a-01")
    lab.act("hv-t1", vm.uuid, "destroy")
    await eventually(lambda: s.domains[vm.uuid].state is VirtState.SHUTOFF, 2.0, "the stop event")

    lab.kill_daemon("hv-t1")
    await eventually(lambda: s.state is not ConnState.CONNECTED, 5.0, "the loss to be noticed")
    assert s.error is not None
    await asyncio.sleep(1.0)
    assert s.state is not ConnState.CONNECTED
    lab.restart_daemon("hv-t1")
    back, back_wall = time.monotonic(), time.time()
    await eventually(lambda: s.state is ConnState.CONNECTED and s.read_at > back_wall, 5.0,
                   "the session to come back")
    assert time.monotonic() - back < 5.0
    # Read again from the new daemon: the scenario's states (the kill lost the stop).
    assert s.domains[vm.uuid].state is VirtState.RUNNING
    assert set(s.domains) == {v.uuid for v in lab.scenario.vms_on("hv-t1")}
    assert s.error is None
    assert session(engine, "ocloud").state is ConnState.CONNECTED


# --------------------------------------------------------------------------- probe


async def test_probe_classifies_each_outcome(lab):
    ok_uri = lab.hosts["hv-t1"].uri
    refuse_uri, hang_uri = lab.hosts["hv-refuse"].uri, lab.hosts["hv-hang"].uri
    bad = ["qemu+tcp://bad host/system", "nonsense"]
    timeout = 1.0
    start = time.monotonic()
    ok, refused, hung, *invalid = await probe([ok_uri, refuse_uri, hang_uri, *bad], timeout)
    assert time.monotonic() - start < timeout + 1.0

    conn = lab.host("hv-t1").conn
    n = conn.getLibVersion()
    assert ok.ok and ok.error is None and ok.uri == ok_uri
    assert ok.libvirt_version == f"{n // 1_000_000}.{n // 1000 % 1000}.{n % 1000}"
    assert ok.hostname == conn.getHostname() and ok.hostname
    assert ok.transport == "tcp"

    assert not refused.ok and refused.error.kind is VirtErrorKind.REFUSED
    assert lab.hosts["hv-refuse"].ip in refused.error.hint
    assert "Connection refused" in refused.error.message

    assert not hung.ok and hung.error.kind is VirtErrorKind.TIMEOUT
    assert timeout - 0.05 <= hung.latency < timeout + 1.0

    for r, uri in zip(invalid, bad, strict=True):
        assert r.uri == uri and not r.ok
        assert r.error.kind is VirtErrorKind.INVALID_URI, r.error
    for r in (refused, hung, *invalid):
        assert r.error.hint.strip()
        assert r.error.message.strip()


async def test_engine_probe_host_uses_the_hosts_uris(lab, engine_settings, start_engine):
    engine = await start_engine(engine_settings(lab, connect_timeout=1.0), watch=False)
    host = engine.find_host("hv-refuse")
    assert host is not None and host.ip == lab.hosts["hv-refuse"].ip
    (r,) = await engine.probe_host(host.id)
    assert r.uri == lab.hosts["hv-refuse"].uri and r.error.kind is VirtErrorKind.REFUSED
    # An extra URI is tried first, then the host's own.
    first, second = await engine.probe_host(engine.find_host("hv-t1").id,
                                            extra=[lab.hosts["hv-refuse"].uri])
    assert first.uri == lab.hosts["hv-refuse"].uri and first.error.kind is VirtErrorKind.REFUSED
    assert second.uri == lab.hosts["hv-t1"].uri and second.ok


# --------------------------------------------------------------------------- grace


async def test_grace_period_pending_then_confirmed_then_resolved(fresh_lab, subset,
                                                                 default_scenario,
                                                                 engine_settings,
                                                                 start_engine):
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1"]))
    updates, listener = recorder()
    grace = 1.0
    engine = await start_engine(engine_settings(lab, grace=grace), listener=listener)
    assert await engine.wait_settled(5)
    vm = lab.vm("class-a-01")
    assert vm.vdi.status == 1 and lab.virt_state("hv-t1", vm.uuid) == "running"

    def changes(status: DriftStatus) -> list[tuple[float, Any]]:
        return [(at, u.change) for at, u in updates if isinstance(u, DriftChanged)
                and u.change.drift.subject == vm.name and u.change.status is status]

    acted = time.monotonic()
    lab.act("hv-t1", vm.uuid, "destroy")  # the platform is not told
    (pending_at, pending), = await eventually(lambda: changes(DriftStatus.PENDING), 1.0,
                                            "the pending drift")
    assert pending.drift.kind is DriftKind.STATE
    assert (pending.drift.vdi_value, pending.drift.virt_value) == ("running", "shutoff")
    assert pending_at - acted < 1.0
    assert not changes(DriftStatus.CONFIRMED)

    (confirmed_at, confirmed), = await eventually(lambda: changes(DriftStatus.CONFIRMED),
                                                grace + 1.5, "the confirmation")
    assert confirmed_at - pending_at >= grace - 0.02
    assert confirmed_at - pending_at < grace + 1.0
    assert confirmed.since == pending.since
    assert confirmed.drift.ident == pending.drift.ident

    lab.follow_vdi(vm.uuid, "shutoff")
    await engine.refresh()
    (_, resolved), = await eventually(lambda: changes(DriftStatus.RESOLVED), 2.0, "the resolution")
    assert resolved.drift.ident == pending.drift.ident
    snap = latest_snapshot(updates)
    assert not any(d.subject == vm.name for d in snap.comparison.drifts)
    assert pending.drift.ident not in snap.drifts


async def test_drift_that_heals_within_grace_is_never_confirmed(fresh_lab, subset,
                                                                default_scenario,
                                                                engine_settings, start_engine):
    lab = fresh_lab(subset(default_scenario, ["hv-t1"]))
    updates, listener = recorder()
    engine = await start_engine(engine_settings(lab, grace=1.0), listener=listener)
    assert await engine.wait_settled(5)
    vm = lab.vm("class-a-02")
    lab.act("hv-t1", vm.uuid, "destroy")
    ident = (vm.uuid, "state")

    def status() -> DriftStatus | None:
        st = latest_snapshot(updates).drifts.get(ident)
        return st.status if st is not None else None

    await eventually(lambda: status() is DriftStatus.PENDING, 1.0, "the pending drift")
    first_seen = latest_snapshot(updates).drifts[ident].first_seen
    assert 0 < time.monotonic() - first_seen < 1.0
    lab.act("hv-t1", vm.uuid, "start")
    await eventually(lambda: status() is None, 1.0, "the drift to go")
    await asyncio.sleep(1.3)
    statuses = [u.change.status for _, u in updates
                if isinstance(u, DriftChanged) and u.change.drift.subject == vm.name]
    assert statuses == [DriftStatus.PENDING]


async def test_check_counts_only_drift_that_outlasts_grace(fresh_lab, subset, default_scenario,
                                                          engine_settings, start_engine):
    """``check`` (Engine.check) judges with the live faces' drift tracker: a drift counts once
    it has lasted ``grace`` seconds; one that heals within grace does not."""
    lab = fresh_lab(subset(default_scenario, ["hv-t1"]))
    updates, listener = recorder()
    grace = 1.0
    engine = await start_engine(engine_settings(lab, grace=grace), watch=False,
                                listener=listener)
    assert await engine.wait_settled(5)
    stays, heals = lab.vm("class-a-01"), lab.vm("class-a-02")
    for vm in (stays, heals):
        lab.act("hv-t1", vm.uuid, "destroy")  # the platform is not told
    idents = {(stays.uuid, "state"), (heals.uuid, "state")}

    def pending() -> bool:
        st = latest_snapshot(updates).drifts
        return all(i in st and st[i].status is DriftStatus.PENDING for i in idents)

    await eventually(pending, 2.0, "both drifts pending")
    started = time.monotonic()
    check = asyncio.create_task(engine.check())
    await asyncio.sleep(0.2)
    lab.act("hv-t1", heals.uuid, "start")  # healed within grace
    snap = await check
    # It waited for the grace to run out: the drift had lasted that long when judged.
    assert time.monotonic() - snap.drifts[(stays.uuid, "state")].first_seen >= grace
    assert time.monotonic() - started < grace + 5
    confirmed = {d.ident for d in snap.confirmed()}
    assert (stays.uuid, "state") in confirmed
    assert (heals.uuid, "state") not in confirmed
    assert not any(d.subject == heals.name for d in snap.comparison.drifts)


async def test_event_storm_uses_incremental_passes_that_match_a_full_one(
        fresh_lab, healthy_scenario, engine_settings, start_engine):
    """Under a storm of lifecycle events the engine re-judges only the changed rows; the result
    must be exactly what a full reconcile of the same views gives."""
    from vditui.core.reconcile import reconcile

    lab = fresh_lab(healthy_scenario)
    engine = await start_engine(engine_settings(lab, grace=0.0))
    assert await engine.wait_settled(10)
    chaos = await asyncio.to_thread(lab.chaos, 40.0, -1.0, 7)  # platform never follows
    await asyncio.sleep(1.5)
    await asyncio.to_thread(chaos.stop)
    await asyncio.sleep(1.0)  # quiet: every event delivered and reconciled
    assert engine.stats().incremental > 0, "events alone should have taken the incremental path"
    views = {hid: s.view() for hid, s in live_hosts(engine).items()}
    assert engine.inventory() is not None
    assert engine.latest_comparison() == reconcile(engine.inventory(), views)
    for vm_uuid, state in chaos.states.items():
        row = next(r for r in engine.latest_comparison().vms if r.virt and r.virt.uuid == vm_uuid)
        assert row.virt is not None and row.virt.state.value == state
