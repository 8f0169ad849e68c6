"""The metrics fit a Prometheus at scale: the series ``vditui serve`` exports for 1,000 hosts
stay within the budget docs/monitoring.md writes down (fixed, per host, per host and event
name, per drift)."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.estates import estate
from vditui.commands.serve_metrics import registry
from vditui.core.drift import DriftStatus
from vditui.core.events import DomainChanged, DomainEvent, HostChanged
from vditui.core.metrics import MetricsState
from vditui.core.models import ConnState, Domain, DriftKind, VirtState

DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"
HOSTS, EVENT_NAMES, DRIFTS = 1000, ("started", "stopped", "suspended"), 200


def budget() -> list[int]:
    """The budget's figures, in the doc's order: fixed, per host, per host and event name,
    per drift."""
    m = re.search(r"<!-- series-budget -->\n(.*?)<!-- /series-budget -->", DOC.read_text(), re.S)
    assert m is not None, "docs/monitoring.md has no series budget between its markers"
    return [int(n) for n in re.findall(r"^\|[^|]+\| (\d+) \|$", m.group(1), re.M)]


def series(state: MetricsState) -> int:
    text = generate_latest(registry(state)).decode()
    return sum(len(f.samples) for f in text_string_to_metric_families(text))


def test_1000_hosts_stay_within_the_documented_series_budget() -> None:
    fixed, per_host, per_event_name, per_drift = budget()
    kinds = [DriftKind.STATE, DriftKind.VCPU, DriftKind.ONLY_IN_VDI]
    drifts = [(i * 7 % HOSTS, kinds[i % 3], DriftStatus.CONFIRMED, False, True)
              for i in range(DRIFTS)]
    hosts = [(ConnState.FAILED if i % 100 == 0 else ConnState.CONNECTED, False)
             for i in range(HOSTS)]
    snap = estate(hosts, drifts, vms_per_host=10)
    state = MetricsState(60.0)
    state.on_event(snap)
    dom = Domain("u", "vm", VirtState.RUNNING)
    for hid, link in snap.hosts.items():
        state.on_event(HostChanged(0.0, link))
        for seq, name in enumerate(EVENT_NAMES):
            state.on_event(DomainChanged(0.0, seq, DomainEvent(hid, "u", "vm", name, dom, dom,
                                                               0.0), link.name))
    counted = sum(1 for d in snap.comparison.drifts if snap.counts(d))
    assert counted >= DRIFTS  # the VM drifts and the failed hosts
    n = series(state)
    allowed = fixed + HOSTS * (per_host + per_event_name * len(EVENT_NAMES)) + per_drift * counted
    print(f"\n{n} series for {HOSTS} hosts, {counted} drifts (budget {allowed})")
    assert n <= allowed
    # And the per-host part is what the budget says, not hidden in the fixed allowance: one
    # more host costs per_host + its event names, no more.
    one_more = estate([*hosts, (ConnState.CONNECTED, False)], drifts, vms_per_host=10)
    state.on_event(one_more)
    extra = one_more.hosts[f"id-{HOSTS}"]
    state.on_event(HostChanged(0.0, extra))
    assert series(state) - n <= per_host
