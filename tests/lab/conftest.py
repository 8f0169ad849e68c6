"""Fixtures for the lab-backed tests: real libvirtd daemons behind fault proxies, and the
simulated VDI platform, started from scenarios.

* ``lab`` -- the default scenario, started once for the whole run and shared. Tests must not
  change it; as a safety net, after each test every fault, delay and platform fault is put back
  to what the scenario declares, and any host whose domains no longer match the scenario is
  repopulated.
* ``fresh_lab`` -- a factory, ``fresh_lab(scenario=None)``, for tests that mutate or break hosts:
  every lab it starts is stopped at teardown, even when the test fails.
* ``engine_settings(lab, **overrides)`` -- :class:`EngineSettings` reaching a lab.
* ``start_engine(settings)`` -- a started :class:`Engine`, stopped at teardown.
* ``subset(scenario, hosts)`` -- the scenario cut down to some hosts (and the VMs on them).
* ``spec`` -- the vendor's OpenAPI spec, to check answers and request bodies against.

Helpers are handed out as fixtures, so no test imports this module by name.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

import libvirt
import pytest

from tests.lab.vendor_spec import SPEC_PATH, Spec, load_spec
from vditui.core.engine import Engine, EngineSettings
from vditui.core.events import EngineEvent
from vditui.lab.lab import Lab
from vditui.lab.scenario import Scenario, load_default

VIRT_STATE_NAMES = {1: "running", 3: "paused", 5: "shutoff"}


def make_engine_settings(lab: Lab, **overrides: Any) -> EngineSettings:
    """Settings reaching ``lab``: short timeouts (everything is on loopback), no grace, and a
    platform refresh rare enough that tests trigger it themselves. Hosts not served over tcp
    are reached as the demo reaches them (ssh with the lab's key, tls with its certificates)."""
    base: dict[str, Any] = {
        "url": lab.vdi_url, "username": lab.username, "password": lab.password,
        "uri_templates": lab.uri_templates,
        "host_uris": {n: (u,) for n, u in lab.client_uris().items()},
        "connect_timeout": 2.0, "call_timeout": 5.0,
        "grace": 0.0, "refresh_interval": 60.0,
    }
    base.update(overrides)
    return EngineSettings(**base)


def scenario_subset(scenario: Scenario, hosts: Iterable[str], name: str | None = None) -> Scenario:
    """``scenario`` with only ``hosts``, their pools, and the VMs whose every side is on them."""
    keep = set(hosts)
    unknown = keep - {h.name for h in scenario.hosts}
    assert not unknown, f"no such hosts in {scenario.name}: {sorted(unknown)}"
    host_specs = tuple(h for h in scenario.hosts if h.name in keep)
    pools = {h.pool for h in host_specs}
    vms = tuple(v for v in scenario.vms if (v.vdi is None or v.vdi.host in keep)
                and (v.virt is None or v.virt.host in keep))
    return replace(scenario, name=name or f"{scenario.name}-subset", hosts=host_specs,
                   pools=tuple(p for p in scenario.pools if p.id in pools), vms=vms)


def libvirt_domains(lab: Lab, host: str) -> dict[str, tuple[str, str, int, int]]:
    """What the host's libvirt has now, by the lab's own connection:
    uuid -> (name, state, vCPU, memory MiB)."""
    out = {}
    for dom in lab.host(host).conn.listAllDomains():
        state, max_kib, _cur, vcpus, _cpu = dom.info()
        out[dom.UUIDString()] = (dom.name(), VIRT_STATE_NAMES.get(state, str(state)), vcpus,
                                 max_kib // 1024)
    return out


def scenario_domains(scenario: Scenario, host: str) -> dict[str, tuple[str, str, int, int]]:
    """What the scenario declares libvirt has on ``host``, in the shape of
    :func:`libvirt_domains`."""
    out = {}
    for vm in scenario.vms_on(host):
        assert vm.virt is not None
        out[vm.uuid] = (vm.name, vm.virt.state, vm.virt.vcpu, vm.virt.memory_mb)
    return out


def _declared_mode(lab: Lab, host: str) -> str:
    # The lab keeps a transport a host does not serve refused whatever the mode.
    spec = lab.host(host).spec
    return spec.fault if spec.fault != "none" else "pass"


def _restore(lab: Lab) -> None:
    """Put the shared lab back the way the scenario declares it."""
    if lab._chaos is not None:
        lab._chaos.stop()
        lab._chaos = None
    assert lab.vdi is not None
    lab.vdi.set_fault(None)
    # Actions a test asked of the platform: finished, then its records back to the scenario's.
    lab.vdi.reset_records()
    lab.vdi.action_delay = 1.0
    lab.vdi.actions.close_timeout = 10.0
    lab.set_fault("vdi", "pass")
    lab.set_delay(0)
    for name, h in lab.hosts.items():
        lab.set_fault(name, _declared_mode(lab, name))
        if not h.daemon.alive:
            lab.restart_daemon(name)
        elif libvirt_domains(lab, name) != scenario_domains(lab.scenario, name):
            with h.lock:
                lab._populate(h)


@pytest.fixture(scope="session")
def default_scenario() -> Scenario:
    """The default scenario's test-driver hosts: started by many tests, so without real guests
    (tests/lab/test_qemu.py covers the default scenario's qemu host)."""
    return load_default().without_driver("qemu")


@pytest.fixture(scope="session")
def _shared_lab(default_scenario: Scenario) -> Iterator[Lab]:
    lab = Lab(default_scenario)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def lab(_shared_lab: Lab) -> Iterator[Lab]:
    """The shared default-scenario lab, restored after each test."""
    yield _shared_lab
    _restore(_shared_lab)


@pytest.fixture
def fresh_lab(default_scenario: Scenario) -> Iterator[Callable[..., Lab]]:
    """``fresh_lab(scenario=None, **lab_kwargs)`` starts a lab of its own (the default scenario
    unless told); all of them are stopped at teardown."""
    labs: list[Lab] = []

    def make(scenario: Scenario | None = None, **kwargs: Any) -> Lab:
        lab = Lab(scenario or default_scenario, **kwargs)
        labs.append(lab)
        return lab.start()

    try:
        yield make
    finally:
        for lab in reversed(labs):
            lab.stop()


@pytest.fixture(scope="session")
def spec() -> Spec:
    """The vendor's OpenAPI spec, strict (tests/lab/vendor_spec.py); skips without ../shared."""
    loaded = load_spec()
    if loaded is None:
        pytest.skip(f"vendor spec not found at {SPEC_PATH} (expected ../shared beside the repo)")
    return loaded


@pytest.fixture(scope="session")
def engine_settings() -> Callable[..., EngineSettings]:
    return make_engine_settings


@pytest.fixture(scope="session")
def subset() -> Callable[..., Scenario]:
    return scenario_subset


@pytest.fixture(scope="session")
def healthy_scenario(default_scenario: Scenario) -> Scenario:
    """The default scenario without its refusing and hanging hosts (every host answers)."""
    return scenario_subset(default_scenario,
                           [h.name for h in default_scenario.hosts if h.fault == "none"],
                           name="healthy")


@pytest.fixture
async def start_engine() -> AsyncIterator[Callable[..., Awaitable[Engine]]]:
    """``await start_engine(settings, watch=True, listener=None)``: a started engine, stopped at
    teardown. A listener is attached before start, so it sees the very first updates."""
    engines: list[Engine] = []

    async def start(settings: EngineSettings, watch: bool = True,
                    listener: Callable[[EngineEvent], None] | None = None) -> Engine:
        engine = Engine(settings)
        if listener is not None:
            engine.listen(listener)
        engines.append(engine)
        await engine.start(watch=watch)
        return engine

    try:
        yield start
    finally:
        for engine in engines:
            with contextlib.suppress(Exception):
                await engine.stop()


@pytest.fixture(autouse=True, scope="session")
def _quiet_libvirt() -> None:
    # libvirt's default error handler prints every failure to stderr.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
