"""Reading the platform for the estate: the warning log that counts, keeping what an incomplete
answer lacks, and re-reading a few VMs (GETs) or many (their hosts' lists). No state: the
estate stamps and merges what these return."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from vditui.core.models import VdiInventory, VdiVm
from vditui.core.vdi import VdiError, VdiStatusError
from vditui.core.vdi_actions import VdiActionClient

log = logging.getLogger("vditui.engine")

GET_LIMIT = 20
"""Up to this many VMs are re-read one GET each; more, by their hosts' VM lists (one page per
100 VMs of a host instead of one request per VM)."""
GET_CONCURRENCY = 4


class WarningLog(list[str]):
    """The client's warning list, counting every append (the list itself is kept short, so its
    length cannot tell how many warnings a refresh added)."""

    appended = 0

    def append(self, item: str) -> None:
        self.appended += 1
        super().append(item)


def keep_missing(new: VdiInventory, old: VdiInventory) -> tuple[VdiInventory, int, int]:
    """``new`` plus the hosts, VMs and pools of ``old`` it lacks: an answer whose page totals
    disagree may have lost items, and must not make a host or a VM vanish."""
    hosts = {h.id for h in new.hosts}
    vms = {v.id for v in new.vms}
    pools = {p.id for p in new.pools}
    kept_hosts = tuple(h for h in old.hosts if h.id not in hosts)
    kept_vms = tuple(v for v in old.vms if v.id not in vms)
    kept_pools = tuple(p for p in old.pools if p.id not in pools)
    merged = replace(new, hosts=new.hosts + kept_hosts, vms=new.vms + kept_vms,
                     pools=new.pools + kept_pools)
    return merged, len(kept_hosts), len(kept_vms)


async def read_vms(client: VdiActionClient, inventory: VdiInventory | None, ids: Sequence[str],
                   strict: bool, label: str = "") -> dict[str, VdiVm]:
    """The VMs ``ids`` as the platform has them now: one GET each for a few, their hosts'
    lists for many. A VM the platform no longer knows is left out; ``strict``: any other
    failure is raised (otherwise logged, and what was read is returned). ``label`` names
    the caller in the log."""
    wanted = set(ids)
    out: dict[str, VdiVm] = {}
    if len(wanted) > GET_LIMIT and inventory is not None:
        host_ids = sorted({v.host_id for v in inventory.vms if v.id in wanted})
        try:
            for hid in host_ids:
                out.update({v.id: v for v in await client.vms(hid) if v.id in wanted})
        except VdiError as exc:
            if strict:
                raise
            # Not one GET per VM instead, onto a platform that is struggling: next round.
            log.warning("%s: platform re-read: %s", label or "re-read", exc)
            return out
    sem = asyncio.Semaphore(GET_CONCURRENCY)

    async def one(vm_id: str) -> None:
        async with sem:
            try:
                out[vm_id] = await client.vm(vm_id)
            except VdiStatusError as exc:
                log.info("%s: GET %s: %s", label or "re-read", vm_id, exc)
            except VdiError as exc:
                if strict:
                    raise
                log.warning("%s: platform re-read: %s", label or "re-read", exc)

    # VMs their host's list lacked (moved, or gone): one GET each.
    missing = [i for i in ids if i not in out]
    await asyncio.gather(*(one(i) for i in missing))
    return out
