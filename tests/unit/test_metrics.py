"""The exporter's collector on synthetic engine events: drift counts (acknowledged ones apart,
never in the firing metric), hosts, platform health, counters, and the text Prometheus reads."""

from __future__ import annotations

import platform
from types import MappingProxyType

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vditui.commands.serve_metrics import registry, version
from vditui.core.acks import AckRule
from vditui.core.drift import DriftState, DriftStatus
from vditui.core.events import (
    DomainChanged,
    DomainEvent,
    HostChanged,
    HostLink,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.metrics import MetricsState
from vditui.core.models import (
    Comparison,
    ConnState,
    Domain,
    Drift,
    DriftKind,
    HostRow,
    HostView,
    Severity,
    VdiHost,
    VdiInventory,
    VirtState,
)

HOSTS = (VdiHost("id-1", "hv-1", "10.0.0.1", 1), VdiHost("id-2", "hv-2", "10.0.0.2", 1))
STATE = Drift(DriftKind.STATE, Severity.CRITICAL, "uuid-a", "vm-a", "id-1",
              "platform says running, libvirt says shutoff", "running", "shutoff")
VCPU = Drift(DriftKind.VCPU, Severity.WARNING, "uuid-b", "vm-b", "id-1", "vCPU 2 vs 4", "2", "4")
LIC = Drift(DriftKind.ONLY_IN_LIBVIRT, Severity.WARNING, "uuid-lic", "lic", "id-1",
            "only in libvirt", "", "running")
DOWN = Drift(DriftKind.HOST_UNREACHABLE, Severity.CRITICAL, "id-2", "hv-2", "id-2", "refused")
ACK = AckRule(reason="licence server, kept out of the platform on purpose", vm="lic")


class Clock:
    def __init__(self) -> None:
        self.mono, self.wall = 100.0, 1_800_000_000.0

    def tick(self, s: float) -> None:
        self.mono += s
        self.wall += s


def link(host: VdiHost, state: ConnState, uri: str) -> HostLink:
    return HostLink(HostView(host.id, uri, state), host.name, 0.0, (uri,), True)


LINKS = {"id-1": link(HOSTS[0], ConnState.CONNECTED, "qemu+tls://10.0.0.1/system"),
         "id-2": link(HOSTS[1], ConnState.FAILED, "qemu+ssh://root@10.0.0.2/system")}


def snapshot(clock: Clock, *, incremental: bool = False, took: float = 0.25) -> SnapshotReady:
    drifts = (STATE, DOWN, VCPU, LIC)
    cmp = Comparison((), tuple(HostRow(h, LINKS[h.id].view) for h in HOSTS), drifts)
    states = {STATE.ident: DriftState(DriftStatus.CONFIRMED, clock.mono - 60),
              DOWN.ident: DriftState(DriftStatus.CONFIRMED, clock.mono - 30),
              VCPU.ident: DriftState(DriftStatus.PENDING, clock.mono - 1),
              LIC.ident: DriftState(DriftStatus.CONFIRMED, clock.mono - 600)}
    return SnapshotReady(clock.wall, 0, cmp, MappingProxyType(states), MappingProxyType(LINKS),
                         settled=True, incremental=incremental, took=took, monotonic=clock.mono,
                         acknowledged=MappingProxyType({LIC.ident: ACK}))


def scrape(state: MetricsState) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The exposition text as prometheus-client's parser reads it: sample name -> labels ->
    value (what Prometheus would store)."""
    text = generate_latest(registry(state)).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def L(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> MetricsState:
    return MetricsState(stale_after=70.0, clock=lambda: clock.mono)


def test_drifts_by_kind_pending_and_acknowledged_apart(state, clock):
    state.on_event(PlatformRefreshed(clock.wall, VdiInventory(HOSTS, ())))
    state.on_event(snapshot(clock))
    m = scrape(state)
    drifts = m["vditui_drifts"]
    nonzero = {k: v for k, v in drifts.items() if v}
    assert nonzero == {L(kind="state"): 1.0, L(kind="unreachable"): 1.0}
    assert {k: v for k, v in m["vditui_drifts_pending"].items() if v} == {L(kind="vcpu"): 1.0}
    # The acknowledged drift is counted apart, and nowhere in the firing metric.
    assert drifts[L(kind="only_in_libvirt")] == 0.0
    acked = {k: v for k, v in m["vditui_drifts_acknowledged"].items() if v}
    assert acked == {L(kind="only_in_libvirt"): 1.0}
    # Every kind is there, zeros included: sums and alerts never miss a series.
    assert len(drifts) == len(DriftKind) == len(m["vditui_drifts_acknowledged"])
    assert m["vditui_host_drifts"] == {L(host="hv-1"): 1.0, L(host="hv-2"): 1.0}
    first = m["vditui_drift_first_seen_timestamp_seconds"]
    assert first == {
        L(key="uuid-a", subject="vm-a", kind="state", host="hv-1"): clock.wall - 60,
        L(key="id-2", subject="hv-2", kind="unreachable", host="hv-2"): clock.wall - 30}
    assert not any(dict(k)["subject"] in ("lic", "vm-b") for k in first)
    assert (m["vditui_hosts"], m["vditui_hosts_unreachable"], m["vditui_vms"],
            m["vditui_vms_unchecked"]) == ({(): 2.0}, {(): 1.0}, {(): 0.0}, {(): 0.0})


def test_hosts_platform_and_pass(state, clock):
    state.on_event(PlatformRefreshed(clock.wall, VdiInventory(HOSTS, ())))
    state.on_event(snapshot(clock, took=0.25))
    state.on_event(snapshot(clock, incremental=True, took=0.001))  # not a complete pass
    clock.tick(12)
    m = scrape(state)
    assert m["vditui_host_up"] == {L(host="hv-1"): 1.0, L(host="hv-2"): 0.0}
    assert m["vditui_host_info"] == {L(host="hv-1", transport="tls"): 1.0,
                                     L(host="hv-2", transport="ssh"): 1.0}
    assert m["vditui_platform_up"] == {(): 1.0}
    assert m["vditui_platform_refresh_age_seconds"] == {(): 12.0}
    assert m["vditui_pass_duration_seconds"] == {(): 0.25}
    assert m["vditui_build_info"] == {
        L(version=version(), python_version=platform.python_version()): 1.0}
    assert "process_resident_memory_bytes" in m


def test_platform_failure_and_health(state, clock):
    h = state.health()
    assert (h.ok, h.reason) == (False, "platform not read yet")
    state.on_event(PlatformFailed(clock.wall, "http://vdi:8088: HTTP 500"))
    assert state.health().reason == "platform not read yet: http://vdi:8088: HTTP 500"
    assert "vditui_platform_refresh_age_seconds" not in scrape(state)
    assert scrape(state)["vditui_platform_up"] == {(): 0.0}

    state.on_event(PlatformRefreshed(clock.wall, VdiInventory(HOSTS, ())))
    assert state.health().ok and scrape(state)["vditui_platform_up"] == {(): 1.0}
    clock.tick(30)
    state.on_event(PlatformFailed(clock.wall, "http://vdi:8088: HTTP 500"))
    # One failed refresh within the limit: still healthy, and it says the refresh failed.
    h = state.health()
    assert h.ok and h.reason == "ok: platform read 30 s ago; last refresh failed: " \
                                "http://vdi:8088: HTTP 500"
    assert scrape(state)["vditui_platform_up"] == {(): 0.0}
    clock.tick(41)
    h = state.health()
    assert (h.ok, h.reason) == (False, "platform not read for 71 s (limit 70 s): "
                                       "http://vdi:8088: HTTP 500")
    assert scrape(state)["vditui_platform_refresh_age_seconds"] == {(): 71.0}
    state.on_event(PlatformRefreshed(clock.wall, VdiInventory(HOSTS, ()), recovered=True))
    assert state.health() == type(h)(True, "ok: platform read 0 s ago")


def test_reconnects_and_lifecycle_events_are_counted(state, clock):
    up = link(HOSTS[0], ConnState.CONNECTED, "qemu+tcp://10.0.0.1/system")
    lost = link(HOSTS[0], ConnState.RECONNECTING, "qemu+tcp://10.0.0.1/system")
    for lk in (up, lost, up, lost, up):  # connected, then lost and made again twice
        state.on_event(HostChanged(clock.wall, lk))
    dom = Domain("u1", "vm-a", VirtState.SHUTOFF)
    for seq, ev in enumerate(("stopped", "started", "stopped")):
        state.on_event(DomainChanged(clock.wall, seq, DomainEvent("id-1", "u1", "vm-a", ev, dom,
                                                                  dom, clock.wall), "hv-1"))
    m = scrape(state)
    assert m["vditui_host_reconnects_total"] == {L(host="hv-1"): 2.0}
    assert m["vditui_lifecycle_events_total"] == {L(host="hv-1", event="stopped"): 2.0,
                                                  L(host="hv-1", event="started"): 1.0}
    assert m["vditui_host_up"] == {L(host="hv-1"): 1.0}


def test_nothing_read_yet_scrapes_cleanly(state):
    m = scrape(state)
    assert m["vditui_platform_up"] == {(): 0.0}
    assert "vditui_drifts" not in m or m["vditui_drifts"] == {}
    assert "vditui_hosts" not in m or m["vditui_hosts"] == {}
    assert "vditui_pass_duration_seconds" not in m
