"""Made-up estates as the engine's snapshots: random ones (hypothesis) for the tests that every
face tells the same drifts, and a big regular one for the metrics' series budget."""

from __future__ import annotations

from types import MappingProxyType

from hypothesis import strategies as st

from vditui.core.acks import AckRule
from vditui.core.drift import DriftState, DriftStatus
from vditui.core.events import HostLink, SnapshotReady
from vditui.core.models import (
    Comparison,
    ConnState,
    Drift,
    DriftKind,
    HostRow,
    HostView,
    Severity,
    VdiHost,
    VmRow,
)

WALL, MONO = 1_800_000_000.0, 5_000.0
VM_KINDS = [k for k in DriftKind
            if k not in (DriftKind.HOST_UNREACHABLE, DriftKind.HOST_OFFLINE_BUT_REACHABLE)]


def host(i: int) -> VdiHost:
    return VdiHost(f"id-{i}", f"hv-{i:04d}", f"10.0.{i // 250}.{i % 250 + 1}", 1)


def _link(h: VdiHost, state: ConnState) -> HostLink:
    uri = f"qemu+tcp://{h.ip}/system"
    return HostLink(HostView(h.id, uri, state), h.name, 0.0, (uri,), True)


def estate(hosts: list[tuple[ConnState | None, bool]],
           drifts: list[tuple[int, DriftKind, DriftStatus | None, bool, bool]],
           vms_per_host: int = 0) -> SnapshotReady:
    """A snapshot of ``hosts`` (each: its connection, None for not tried yet; whether its
    unreachable drift is acknowledged) and VM ``drifts`` (each: the host's index, kind,
    status, None for untracked; acknowledged; its VM checked)."""
    hs = [host(i) for i in range(len(hosts))]
    all_drifts: list[Drift] = []
    states: dict[tuple[str, str], DriftState] = {}
    acked: dict[tuple[str, str], AckRule] = {}
    rows: list[HostRow] = []
    links: dict[str, HostLink] = {}
    for h, (conn, ack) in zip(hs, hosts, strict=True):
        view = None if conn is None else HostView(h.id, f"qemu+tcp://{h.ip}/system", conn)
        mine: tuple[Drift, ...] = ()
        if conn is ConnState.FAILED:
            d = Drift(DriftKind.HOST_UNREACHABLE, Severity.CRITICAL, h.id, h.name, h.id,
                      f"libvirt unreachable at qemu+tcp://{h.ip}/system: refused", "enabled",
                      "refused")
            mine = (d,)
            all_drifts.append(d)
            # A host that failed just now is pending, one that failed long ago confirmed.
            states[d.ident] = DriftState(
                DriftStatus.PENDING if len(all_drifts) % 2 else DriftStatus.CONFIRMED, MONO - 5)
            if ack:
                acked[d.ident] = AckRule(reason="being rebuilt", host=h.name,
                                         kind=DriftKind.HOST_UNREACHABLE)
        rows.append(HostRow(h, view, mine))
        if conn is not None:
            links[h.id] = _link(h, conn)
    vms: list[VmRow] = []
    for n, (hi, kind, status, ack, checked) in enumerate(drifts):
        h = hs[hi % len(hs)]
        name = f"vm-{n:05d}"
        d = Drift(kind, Severity.CRITICAL if kind is DriftKind.STATE else Severity.WARNING,
                  f"uuid-{n}", name, h.id, f"{kind.value} differs", "a", "b")
        all_drifts.append(d)
        if status is not None:
            states[d.ident] = DriftState(status, MONO - 10 - n)
        if ack:
            acked[d.ident] = AckRule(reason="known", vm=name, kind=kind)
        vms.append(VmRow(f"uuid-{n}", name, None, None, h.id, (d,), checked))
    for hi, h in enumerate(hs):
        vms += [VmRow(f"clean-{hi}-{j}", f"ok-{hi}-{j}", None, None, h.id)
                for j in range(vms_per_host)]
    cmp = Comparison(tuple(vms), tuple(rows), tuple(all_drifts))
    return SnapshotReady(WALL, 0, cmp, MappingProxyType(states), MappingProxyType(links),
                         settled=True, monotonic=MONO, acknowledged=MappingProxyType(acked))


CONNS = st.sampled_from([ConnState.CONNECTED, ConnState.CONNECTED, ConnState.FAILED, None])
STATUSES = st.sampled_from([DriftStatus.CONFIRMED, DriftStatus.PENDING, None])


@st.composite
def estates(draw: st.DrawFn) -> SnapshotReady:
    """A random estate: 1-6 hosts, up to 25 VM drifts of every kind and status."""
    hosts = draw(st.lists(st.tuples(CONNS, st.booleans()), min_size=1, max_size=6))
    drifts = draw(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(VM_KINDS), STATUSES,
                                     st.booleans(), st.booleans()), max_size=25))
    return estate(hosts, drifts)
