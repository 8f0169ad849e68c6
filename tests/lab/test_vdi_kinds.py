"""Templates, the recycle bin, restore-point desktops, linked clones and a pool switching
template (issue 20 item 2), each rule both ways, on a platform that lists them in
GET /ocloud/v1/domain and on one that omits them there (``list_omits``).

The platform is the lab's simulated server, read by the real client; libvirt's side is the
scenario's own ``virt`` tables (the full lab, with libvirtd, runs the default scenario's kinds in
test_engine.py and test_kinds_lab below).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from vditui.core.models import (
    ConnState,
    Domain,
    DriftKind,
    HostView,
    Severity,
    VdiInventory,
    VirtState,
)
from vditui.core.reconcile import reconcile
from vditui.core.vdi import VdiClient
from vditui.core.vm_kinds import kind_label
from vditui.lab import scenario as sc
from vditui.lab.vdi_server import VdiServer

KINDS_TOML = "vditui/lab/scenarios/kinds.toml"

#: (VM, drift kind) -> severity the rule gives; every other VM of the scenario has no drift.
EXPECTED = {
    ("tpl-base", "state"): Severity.CRITICAL,  # a running template with linked clones
    ("tpl-lonely", "state"): Severity.WARNING,
    ("clone-down", "state"): Severity.CRITICAL,  # a linked clone is a desktop
    ("bin-running", "state"): Severity.WARNING,
    ("frozen-resetting", "only_in_vdi"): Severity.INFO,
    ("frozen-rogue", "state"): Severity.CRITICAL,
    ("desk-gone", "only_in_vdi"): Severity.CRITICAL,
    ("sw-desk", "state"): Severity.INFO,  # its pool is switching template
}


def scenario(list_omits: bool) -> sc.Scenario:
    return sc.load(KINDS_TOML).with_vdi(list_omits=list_omits)


def views(scen: sc.Scenario) -> dict[str, HostView]:
    """Each host's libvirt as the scenario declares it, read and connected."""
    out = {}
    for h in scen.hosts:
        doms = tuple(Domain(v.uuid, v.name, VirtState(v.virt.state), v.virt.vcpu,
                            v.virt.memory_mb * 1024)
                     for v in scen.vms_on(h.name) if v.virt is not None)
        out[h.id] = HostView(h.id, f"test+tcp://{h.name}/default", ConnState.CONNECTED, doms)
    return out


@pytest.fixture(params=[False, True], ids=["lists-them", "omits-them"])
def platform(request: pytest.FixtureRequest) -> Iterator[tuple[sc.Scenario, VdiServer]]:
    scen = scenario(request.param)
    srv = VdiServer(scen, {h.name: f"127.0.0.{20 + i}" for i, h in enumerate(scen.hosts)})
    srv.start()
    yield scen, srv
    srv.stop()


async def read(scen: sc.Scenario, srv: VdiServer) -> tuple[VdiInventory, list[str]]:
    async with VdiClient(srv.url, scen.vdi.username, scen.vdi.password) as client:
        inv = await client.inventory()
        return inv, list(client.warnings)


async def test_each_kind_is_judged_by_its_rule(platform: tuple[sc.Scenario, VdiServer]) -> None:
    scen, srv = platform
    inv, warnings = await read(scen, srv)
    assert warnings == []
    cmp = reconcile(inv, views(scen))
    found = {(d.subject, d.kind.value): d.severity for d in cmp.drifts}
    assert found == EXPECTED
    declared = {(v.name, k) for v in scen.vms for k in v.expect}
    assert declared == set(EXPECTED)
    # Nothing is "only in libvirt": the recycled and template domains met their records.
    assert not [d for d in cmp.drifts if d.kind is DriftKind.ONLY_IN_LIBVIRT]
    rows = {r.name: r for r in cmp.vms}
    assert kind_label(rows["tpl-off"].vdi) == "template"
    assert kind_label(rows["bin-defined"].vdi) == "in the recycle bin"
    assert kind_label(rows["clone-ok"].vdi) == "linked clone of tpl-base"
    assert kind_label(rows["frozen-off"].vdi) == "restore point"
    assert rows["bin-defined"].virt is not None and rows["tpl-absent"].virt is None


async def test_omitting_platform_is_read_through_model_and_recycle(
        platform: tuple[sc.Scenario, VdiServer]) -> None:
    scen, srv = platform
    inv, _ = await read(scen, srv)
    by_name = {vm.name: vm for vm in inv.vms}
    assert len(by_name) == len(scen.vms)
    assert by_name["tpl-absent"].template and by_name["bin-gone"].recycled
    assert by_name["frozen-off"].frozen and by_name["clone-ok"].mother_name == "tpl-base"
    assert srv.requests["GET /ocloud/v1/model"] >= 1
    assert srv.requests["GET /ocloud/v1/recycle"] >= 1


async def test_without_the_kind_rules_the_same_platform_gives_false_alarms(
        platform: tuple[sc.Scenario, VdiServer]) -> None:
    """The rules are what keeps these quiet: the same records as plain desktops drift."""
    scen, srv = platform
    inv, _ = await read(scen, srv)
    plain = replace(inv, vms=tuple(replace(v, template=False, recycled=False, freeze=0)
                                   for v in inv.vms), pools=())
    found = {(d.subject, d.kind.value) for d in reconcile(plain, views(scen)).drifts}
    assert {("tpl-absent", "only_in_vdi"), ("tpl-off", "vcpu"), ("bin-gone", "only_in_vdi"),
            ("frozen-off", "only_in_vdi")} <= found


class _NoKindLists(httpx.AsyncBaseTransport):
    """A platform older than the template and recycle-bin API: 404 there, else the lab."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path in ("/ocloud/v1/model", "/ocloud/v1/recycle"):
            return httpx.Response(404, text="<html>404</html>")
        return await self.inner.handle_async_request(request)


async def test_a_platform_without_the_kind_lists_warns_once_and_goes_on(
        platform: tuple[sc.Scenario, VdiServer]) -> None:
    scen, srv = platform
    async with VdiClient(srv.url, scen.vdi.username, scen.vdi.password,
                         transport=_NoKindLists()) as client:
        first = await client.inventory()
        await client.inventory()
        assert len(client.warnings) == 2  # templates and recycle bin, once each
        assert all("not read" in w and "404" in w for w in client.warnings)
    # The listing platform still gives every record; the omitting one loses those it omits.
    listed = {vm.name for vm in first.vms}
    assert ("tpl-absent" in listed) is not scen.vdi.list_omits


@pytest.mark.lab
@pytest.mark.parametrize("list_omits", [False, True], ids=["lists-them", "omits-them"])
async def test_kinds_on_the_lab(fresh_lab, engine_settings, start_engine,
                                list_omits: bool) -> None:
    """The same rules with real libvirtd hosts behind the lab's platform, both ways."""
    lab = fresh_lab(scenario(list_omits))
    engine = await start_engine(engine_settings(lab), watch=False)
    assert await engine.wait_settled(10)
    snap = engine.reconcile_now()
    found = {(d.subject, d.kind.value): d.severity for d in snap.comparison.drifts}
    assert found == EXPECTED
