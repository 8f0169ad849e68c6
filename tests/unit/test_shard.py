"""Shards: which hosts a shard holds, and which platform queries its inventory makes."""

from __future__ import annotations

import asyncio
from typing import Any

from vditui.core.models import DesktopPool, VdiHost, VdiVm
from vditui.core.shard import Shard, read_inventory

HOSTS = [VdiHost(id=f"h{i}", name=f"hv{i:02d}", ip=f"10.0.0.{i}", status=1,
                 pool_id=f"p{i % 2}", pool_name=f"pool-{i % 2}") for i in range(6)]
VMS = [VdiVm(id=f"v{i}", name=f"vm{i}", status=1, vcpu=2, memory_mb=1024, host_id=f"h{i % 6}")
       for i in range(24)]


class FakeClient:
    """The platform's filters, and a log of the queries made."""

    def __init__(self) -> None:
        self.requests = 0
        self.queries: list[tuple[str, Any]] = []

    async def hosts(self) -> list[VdiHost]:
        self.queries.append(("hosts", None))
        return HOSTS

    async def pools(self) -> list[DesktopPool]:
        return [DesktopPool(id="d1", name="desk")]

    async def vms(self, host_id: str | None = None, pool_id: str | None = None) -> list[VdiVm]:
        self.queries.append(("vms", host_id or pool_id))
        pools = {h.id: h.pool_id for h in HOSTS}
        return [v for v in VMS if host_id in (None, v.host_id)
                and pool_id in (None, pools[v.host_id])]

    async def extras(self) -> Any:
        return [], [], [], []

    async def inventory(self, on_hosts: Any = None) -> Any:
        self.queries.append(("inventory", None))
        return "whole"


def read(shard: Shard) -> tuple[Any, list[tuple[str, Any]], list[str]]:
    client, seen = FakeClient(), []
    inv = asyncio.run(read_inventory(client, shard,
                                     on_hosts=lambda hs: seen.extend(h.name for h in hs)))
    return inv, client.queries, seen


def test_no_shard_reads_the_whole_inventory() -> None:
    assert not Shard()
    assert read(Shard())[:2] == ("whole", [("inventory", None)])


def test_a_pool_shard_asks_for_its_pools_vms_only() -> None:
    inv, queries, seen = read(Shard(pools=("pool-1",)))
    assert seen == ["hv01", "hv03", "hv05"]
    assert ("vms", "p1") in queries and ("vms", "p0") not in queries
    assert {v.host_id for v in inv.vms} == {"h1", "h3", "h5"} and len(inv.vms) == 12


def test_globs_match_names_or_ips_and_ask_per_host() -> None:
    inv, queries, seen = read(Shard(hosts=("hv0[12]", "10.0.0.5")))
    assert seen == ["hv01", "hv02", "hv05"]
    assert sorted(q[1] for q in queries if q[0] == "vms") == ["h1", "h2", "h5"]
    assert len(inv.vms) == 12


def test_pools_and_globs_both_apply() -> None:
    inv, queries, seen = read(Shard(pools=("p1",), hosts=("hv0[0-3]",)))
    assert seen == ["hv01", "hv03"]
    assert [q for q in queries if q[0] == "vms"] == [("vms", "p1")]
    assert {v.host_id for v in inv.vms} == {"h1", "h3"}
    assert Shard(pools=("p1",), hosts=("hv0[0-3]",)).describe() == "pools p1; hosts hv0[0-3]"
