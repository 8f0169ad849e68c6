"""A shard: the share of an estate one vditui process reads (``serve --pool NAME --hosts GLOB``),
so that several processes, on several machines, split a site between them.

A shard is chosen by the platform's resource pools (by name or id) and by globs over host
names or IPs; both given, a host must match both. Only the shard's hosts get a libvirt session,
and the platform is asked only for their VMs, with the domain list's own filters: ``poolId``
per pool when pools are given (hosts then narrowed by the globs on our side), else ``hostId``
per selected host. The host list and the desktop pools are read whole (they are small, and
the selection needs the host list).

What a split cannot see: a VM the platform places on a host of one shard while libvirt runs it
on a host of another is, to each shard, a VM missing on one side (``only_in_vdi`` here,
``only_in_libvirt`` there), where one process over the whole site says ``placement``; and a VM
the platform places on no host belongs to no shard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from vditui.core.models import VdiHost, VdiInventory, VdiVm

if TYPE_CHECKING:
    from vditui.core.vdi import VdiClient


@dataclass(frozen=True, slots=True)
class Shard:
    """Which hosts one process reads: ``pools`` (names or ids) and ``hosts`` (globs over
    names or IPs, ``fnmatch`` style, case-sensitive); empty: every host."""

    pools: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pools or self.hosts)

    def holds(self, host: VdiHost) -> bool:
        """Whether ``host`` is in this shard."""
        in_pool = not self.pools or host.pool_name in self.pools or host.pool_id in self.pools
        return in_pool and (not self.hosts or any(
            fnmatchcase(host.name, g) or fnmatchcase(host.ip, g) for g in self.hosts))

    def describe(self) -> str:
        """One line for logs and the start-up message: ``pools a, b; hosts hv0*``."""
        parts = [f"{what} {', '.join(v)}" for what, v in (("pools", self.pools),
                                                          ("hosts", self.hosts)) if v]
        return "; ".join(parts) or "every host"


async def read_inventory(client: VdiClient, shard: Shard,
                         on_hosts: Callable[[list[VdiHost]], None] | None = None
                         ) -> VdiInventory:
    """The platform's inventory, or only ``shard``'s share of it (see the module's doc)."""
    if not shard:
        return await client.inventory(on_hosts=on_hosts)
    import asyncio

    before = client.requests
    hosts = [h for h in await client.hosts() if shard.holds(h)]
    if on_hosts is not None:
        on_hosts(hosts)
    ids = {h.id for h in hosts}
    if shard.pools:
        queries = [client.vms(pool_id=p) for p in sorted({h.pool_id for h in hosts if h.pool_id})]
    else:
        queries = [client.vms(h.id) for h in hosts]
    # Every query ends (the client's page limit paces them); then the first failure is raised.
    lists: list[Any] = await asyncio.gather(client.pools(), *queries, return_exceptions=True)
    failed = next((r for r in lists if isinstance(r, BaseException)), None)
    if failed is not None:
        raise failed
    pools, per_query = lists[0], lists[1:]
    seen: dict[str, VdiVm] = {}
    for vms in per_query:
        for v in vms:
            if v.host_id in ids:
                seen.setdefault(v.id, v)
    return VdiInventory(hosts=tuple(hosts), vms=tuple(seen.values()), pools=tuple(pools),
                        fetched_at=time.time(), requests=client.requests - before)
