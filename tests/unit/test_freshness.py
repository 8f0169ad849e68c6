"""A refresh asked for at time T reflects the platform and libvirt as read after T.

A controllable fake platform client and a fake libvirt read hold each read until the test lets
it go, so a request can land while a read is in flight: it must get a read of its own (one
more, shared by the requests that arrived meanwhile), never the older read's answer; and a
merge of fresh records must survive an older full read that ends after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest

from vditui.core import session as session_mod
from vditui.core.estate import Estate
from vditui.core.models import ConnState, Domain, VdiHost, VdiInventory, VdiVm, VirtState
from vditui.core.port import PlatformRead
from vditui.core.session import HostSession
from vditui.core.settings import EngineSettings, SessionSettings
from vditui.core.vdi_actions import VdiActionClient

VM = "vm-1"


def vm(status: int) -> VdiVm:
    return VdiVm(id=VM, name="desk-1", status=status, vcpu=2, memory_mb=2048, host_id="h1")


class FakeClient:
    """The platform: ``status`` is what it says now; each inventory read takes the status when
    it begins (as a real read's pages do) and waits for ``release`` before answering."""

    def __init__(self) -> None:
        self.status = 1
        self.warnings: list[str] = []
        self.requests = 0
        self.base_url = "https://vdi.example"
        self.began = 0
        self.gates: list[asyncio.Event] = []

    async def inventory(self, on_hosts: Callable[[list[VdiHost]], None] | None = None
                        ) -> VdiInventory:
        self.began += 1
        seen = self.status
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return VdiInventory(hosts=(), vms=(vm(seen),))

    async def vm(self, vm_id: str) -> VdiVm:
        return vm(self.status)

    def scrub(self, text: str) -> str:
        return text


async def until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"timed out waiting for {what}")


def estate_with(client: FakeClient) -> Estate:
    settings = EngineSettings(url=client.base_url, username="u", password="p")
    return Estate(settings, cast(VdiActionClient, client))


def status_of(estate: Estate) -> int | None:
    inv = estate.inventory()
    assert inv is not None
    (only,) = inv.vms
    return only.status


async def test_a_refresh_during_a_read_in_flight_gets_a_newer_read() -> None:
    client = FakeClient()
    estate = estate_with(client)
    first = asyncio.create_task(estate.refresh_platform())  # e.g. the periodic refresh
    await until(lambda: client.began == 1, "the first read to begin")
    client.status = 2  # the platform changes while that read is in flight
    asked = [asyncio.create_task(estate.refresh_platform()) for _ in range(3)]  # `r`, r, r
    await asyncio.sleep(0.01)
    client.gates[0].set()
    await first
    await asyncio.sleep(0.01)
    assert not any(t.done() for t in asked), "answered by the read begun before the request"
    assert status_of(estate) == 1
    await until(lambda: client.began == 2, "one more read")
    client.gates[1].set()
    await asyncio.gather(*asked)
    assert status_of(estate) == 2
    assert client.began == 2, "the requests that waited together share one read"


async def test_a_merge_outlives_an_older_full_read() -> None:
    client = FakeClient()
    estate = estate_with(client)
    boot = asyncio.create_task(estate.refresh_platform())
    await until(lambda: client.began == 1, "the first read")
    client.gates[0].set()
    await boot
    slow = asyncio.create_task(estate.refresh_platform())  # begins while the platform says 1
    await until(lambda: client.began == 2, "the slow read to begin")
    client.status = 3  # an action changed the VM; the actor re-reads it and merges
    read = await estate.read_vms([VM], strict=True)
    await estate.merge(read)
    assert status_of(estate) == 3
    client.gates[1].set()
    await slow
    assert status_of(estate) == 3, "an older full read rolled back a fresher merged record"
    # An older partial read merged late does not win either.
    await estate.merge(PlatformRead({VM: vm(1)}, read.generation - 1))
    assert status_of(estate) == 3


class FakeRead:
    """libvirt: each full read takes the domain's state when it begins, then waits."""

    def __init__(self) -> None:
        self.state = VirtState.RUNNING
        self.began = 0
        self.gates: list[asyncio.Event] = []

    async def blocking(self, fn: Any, *args: Any, timeout: float) -> Any:
        self.began += 1
        seen = self.state
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return session_mod.virt.ReadResult([Domain("u-1", "desk-1", seen)], 1)


async def test_a_host_refresh_during_a_read_gets_a_read_of_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeRead()
    monkeypatch.setattr(session_mod.virt, "blocking", fake.blocking)

    async def connect(self: HostSession) -> bool:
        self._sub = cast(Any, type("Sub", (), {"conn": None})())
        return True

    monkeypatch.setattr(HostSession, "_connect", connect)
    s = HostSession("h1", "hv-1", ["test:///default"], SessionSettings(reread_interval=0),
                    lambda _s: None)
    s.start()
    try:
        await until(lambda: fake.began == 1, "the first read")
        fake.gates[0].set()
        await until(lambda: s.reads_done == 1, "the first read to end")
        s.refresh()
        await until(lambda: fake.began == 2, "a re-read to begin")
        fake.state = VirtState.SHUTOFF  # the domain stops while that re-read runs
        ticket = s.refresh()
        assert ticket == 3
        fake.gates[1].set()
        await until(lambda: s.reads_done == 2, "the re-read in flight to end")
        assert s.state is ConnState.CONNECTED
        await until(lambda: fake.began == 3, "one more read for the request made during it")
        fake.gates[2].set()
        await until(lambda: s.reads_done >= ticket, "the newer read")
        assert s.domains is not None and s.domains["u-1"].state is VirtState.SHUTOFF
    finally:
        for g in fake.gates:
            g.set()
        await s.stop()


async def test_statistics_count_reads_and_passes() -> None:
    client = FakeClient()
    client.requests = 7
    estate = estate_with(client)
    assert estate.stats().platform_reads == 0 and estate.stats().reconciles == 0
    read = asyncio.create_task(estate.refresh_platform())
    await until(lambda: client.began == 1, "the read")
    client.gates[0].set()
    await read
    snap = estate.reconcile_now()
    assert snap is not None
    stats = estate.stats()
    assert (stats.platform_reads, stats.platform_requests, stats.reconciles) == (1, 7, 1)
    assert stats.platform_read_s > 0 and stats.last_pass_s == snap.took
    assert stats.hosts == ()
