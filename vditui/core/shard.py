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
from typing import Any, Protocol

from vditui.core.models import DesktopPool, PlatformAlarm, VdiHost, VdiInventory, VdiUser, VdiVm
from vditui.core.vdi_parse import attach_users, merge_vms


class InventorySource(Protocol):
    """What :func:`read_inventory` asks of the platform's client (``VdiClient``)."""

    requests: int

    async def inventory(self, on_hosts: Callable[[list[VdiHost]], None] | None = None
                        ) -> VdiInventory: ...

    async def hosts(self) -> list[VdiHost]: ...

    async def vms(self, host_id: str | None = None,
                  pool_id: str | None = None) -> list[VdiVm]: ...

    async def pools(self) -> list[DesktopPool]: ...

    async def extras(self) -> tuple[list[VdiVm], list[VdiVm], list[VdiUser],
                                    list[PlatformAlarm]]: ...


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


async def read_inventory(client: InventorySource, shard: Shard,
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
    lists: list[Any] = await asyncio.gather(client.pools(), client.extras(), *queries,
                                            return_exceptions=True)
    failed = next((r for r in lists if isinstance(r, BaseException)), None)
    if failed is not None:
        raise failed
    pools, (templates, recycled, users, alarms), per_query = lists[0], lists[1], lists[2:]
    seen: dict[str, VdiVm] = {}
    for vms in per_query:
        for v in vms:
            if v.host_id in ids:
                seen.setdefault(v.id, v)
    # Templates and the recycle bin by the host they are on, alarms by the host they name: the
    # shards' totals add up to one process's over the whole site.
    ips = {h.ip for h in hosts}
    vms = attach_users(merge_vms(list(seen.values()),
                                 [t for t in templates if t.host_id in ids],
                                 [r for r in recycled if r.host_id in ids]), users)
    return VdiInventory(hosts=tuple(hosts), vms=tuple(vms), pools=tuple(pools),
                        fetched_at=time.time(), requests=client.requests - before,
                        users=tuple(users),
                        alarms=tuple(a for a in alarms if a.host_ip in ips))
