"""The lab's scenario, without the lab: the same pools, hosts and VMs (both sides of each) as a
made-up estate for the scripted engine (:class:`vditui.core.fake_engine.FakeEngine`), so the
UI tests keep their assertions about the default scenario and run in milliseconds.

What the lab's daemons would say, said here once: a host whose libvirt refuses is FAILED with a
refusal, one that hangs is FAILED with a connect timeout; the others are CONNECTED over their
first transport; the platform's record of each VM is its ``vdi`` side, libvirt's its ``virt``
side. The comparison itself is the engine's (the real rules).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vditui.core.engine import EngineSettings
from vditui.core.fake_engine import FakeEngine
from vditui.core.fake_estate import Estate
from vditui.core.models import (
    ConnState,
    DesktopPool,
    Domain,
    HostView,
    VdiHost,
    VdiVm,
    VirtError,
    VirtErrorKind,
    VirtState,
)
from vditui.core.probe import hint, timeout_error
from vditui.lab.scenario import Scenario, VmSpec, load_default

#: The app's clock in every test: 2025-11-24 16:00:00 UTC, so header ages and log stamps are fixed.
FIXED_NOW = 1_764_000_000.0
#: What the lab's ``act`` verbs leave libvirt's domain in.
VERBS = {"start": VirtState.RUNNING, "destroy": VirtState.SHUTOFF,
         "shutdown": VirtState.SHUTOFF, "suspend": VirtState.PAUSED, "resume": VirtState.RUNNING}
_SCHEMES = {"tcp": "test+tcp://{ip}:16509/default", "ssh": "test+ssh://root@{ip}/default",
            "tls": "test+tls://{ip}/default"}


def estate_of(scenario: Scenario, connect_timeout: float = 1.0,
              now: float | None = None) -> Estate:
    """The scenario as an estate: the platform's records and each host's libvirt; users'
    sessions began (or ended) their scenario's minutes before ``now`` (the app's clock)."""
    est = Estate()
    pools = {p.id: p.name for p in scenario.pools}
    est.pools = [DesktopPool(pid, name) for pid, name in pools.items()]
    ids = {h.name: h.id for h in scenario.hosts}
    running = {h.name: sum(1 for v in scenario.vms if v.vdi is not None and v.vdi.host == h.name
                           and v.vdi.status == 1) for h in scenario.hosts}
    for i, h in enumerate(scenario.hosts):
        ip = f"127.66.0.{i + 1}"
        uri = _SCHEMES[h.transports[0]].format(ip=ip)
        if h.in_vdi:
            est.hosts.append(VdiHost(h.id, h.name, ip, h.vdi_status, h.pool, pools.get(h.pool, ""),
                                     h.cpu_model, h.cpus, h.memory_gb, running[h.name]))
        est.names[h.id], est.uris[h.id], est.domains[h.id] = h.name, (uri,), []
        error = fault_error(h.fault, uri, connect_timeout)
        est.links[h.id] = HostView(h.id, uri, ConnState.FAILED if error else ConnState.CONNECTED,
                                   None, error)
    templates = {v.name: v.vdi.id for v in scenario.vms if v.vdi is not None}
    for n, v in enumerate(scenario.vms):
        if v.vdi is not None:
            est.vms.append(_vdi_vm(v, ids, n, templates, time.time() if now is None else now))
        if v.virt is not None:
            est.domains[ids[v.virt.host]].append(Domain(
                v.uuid, v.name, VirtState(v.virt.state), v.virt.vcpu, v.virt.memory_mb * 1024))
    return est


def fault_error(fault: str, uri: str, connect_timeout: float = 1.0) -> VirtError | None:
    """What a session says of a host with the lab's ``fault``: refused, or no answer within
    the connect timeout; None for a host that answers ("none", "pass")."""
    if fault == "refuse":
        ip = uri.split("://", 1)[1].split("/", 1)[0].split(":")[0].split("@")[-1]
        return VirtError(VirtErrorKind.REFUSED, uri, f"unable to connect to server at "
                         f"'{ip}:16509': Connection refused", hint=hint(VirtErrorKind.REFUSED, uri))
    if fault == "hang":
        return timeout_error(uri, connect_timeout)
    return None


def _vdi_vm(v: VmSpec, ids: dict[str, str], n: int, templates: dict[str, str],
            now: float) -> VdiVm:
    """The platform's record of ``v``: what it is (template, recycle bin, restore point, linked
    clone) and who is on it, as the lab's platform serves them."""
    side = v.vdi
    assert side is not None
    since = now - 60 * side.session_minutes
    return VdiVm(side.id, v.name, side.status, side.vcpu, side.memory_mb, ids[side.host],
                 side.host, "", f"10.20.{n // 250}.{n % 250 + 2}",
                 template=side.kind == "template", recycled=side.kind == "recycled",
                 freeze=side.freeze, mother_id=templates.get(side.mother, ""),
                 mother_name=side.mother, user_id=side.user, user_login=side.user,
                 user_name=side.user,
                 connected=(side.session == "connected") if side.user else None,
                 connect_time=since if side.session else None,
                 disconnect_time=since if side.session == "disconnected" else None)


@dataclass(frozen=True)
class FakeHost:
    ip: str
    uri: str


@dataclass
class FakeLab:
    """The default scenario (test-driver hosts) behind a scripted engine; the engine is made
    when the app starts it (``engine``), with the app's settings."""

    scenario: Scenario = field(default_factory=lambda: load_default().without_driver("qemu"))
    vdi_url: str = "https://vdi.fake.invalid"
    #: The apps' clock (sessions are dated from it); None: the real one.
    now: float | None = None
    username: str = "admin"
    password: str = "fake-Pa55word!"
    #: The engine of the app started last (every app starts its own, on a fresh estate).
    engine: FakeEngine | None = None
    engines: list[FakeEngine] = field(default_factory=list)

    def factory(self, connect_timeout: float = 1.0) -> Callable[[EngineSettings], FakeEngine]:
        def make(settings: EngineSettings) -> FakeEngine:
            self.engine = FakeEngine(settings, estate_of(self.scenario, connect_timeout,
                                                         self.now))
            self.engines.append(self.engine)
            return self.engine
        return make

    def actions_sent(self) -> int:
        """How many actions the engines were asked to send (``act``), all apps together."""
        return sum(1 for e in self.engines for c in e.commands if c[0] == "act")

    @property
    def hosts(self) -> dict[str, FakeHost]:
        """Each host's address and URI, as the estate gives them (as ``Lab.hosts``)."""
        est = estate_of(self.scenario)
        return {name: FakeHost(next((h.ip for h in est.hosts if h.id == hid), ""),
                               est.uris[hid][0]) for hid, name in est.names.items()}

    def vm(self, name: str) -> VmSpec:
        (spec,) = [v for v in self.scenario.vms if v.name == name]
        return spec

    def set_fault(self, host: str, fault: str) -> None:
        """As the lab's ``set_fault``: the host's libvirt refuses ("refuse"), hangs ("hang")
        or answers again ("pass"); its session says so at once."""
        assert self.engine is not None, "the app has not started its engine yet"
        est = self.engine.estate
        uri = est.links[est.host_id(host)].uri
        error = fault_error(fault, uri, self.engine.settings.connect_timeout)
        self.engine.set_host(host, ConnState.FAILED if error else ConnState.CONNECTED, error)

    def act(self, host: str, vm: str, verb: str) -> str:
        """As the lab's ``act`` (by VM name): libvirt on ``host`` does ``verb`` to ``vm``;
        the state it is left in."""
        assert self.engine is not None, "the app has not started its engine yet"
        self.engine.set_domain(host, vm, VERBS[verb])
        return VERBS[verb].value
