"""update_rows(): re-judging only the rows of changed domains gives what a full pass gives."""

from __future__ import annotations

import random
import uuid as uuidlib
from dataclasses import replace

import pytest

from vditui.core.incremental import carry_over, row_index, update_rows
from vditui.core.models import (
    ConnState,
    Domain,
    HostView,
    VdiHost,
    VdiInventory,
    VdiVm,
    VirtState,
)
from vditui.core.reconcile import reconcile

STATES = [VirtState.RUNNING, VirtState.SHUTOFF, VirtState.PAUSED, VirtState.CRASHED]


def world(rnd: random.Random) -> tuple[VdiInventory, dict[str, HostView]]:
    hosts = [VdiHost(f"h{i}", f"hv{i}", f"10.0.0.{i}", 1, "p", "pool") for i in range(3)]
    vms: list[VdiVm] = []
    doms: dict[str, list[Domain]] = {h.id: [] for h in hosts}
    for n in range(40):
        u = str(uuidlib.UUID(int=rnd.getrandbits(128)))
        name = f"vm{n:02d}" if n % 13 else "dup"  # a few duplicates by name
        host = rnd.choice(hosts).id
        virt_host = host if rnd.random() > 0.1 else rnd.choice(hosts).id  # some placement drift
        kind = rnd.random()
        vdi_id = u if rnd.random() > 0.2 else f"d-{n}"  # some matched by name only
        if kind > 0.1:
            vms.append(VdiVm(vdi_id, name, rnd.choice([0, 1, 2, 5]), 2, 2048, host))
        if kind < 0.95:
            doms[virt_host].append(Domain(u, name, rnd.choice(STATES), rnd.choice([2, 4]),
                                          2048 * 1024))
    views = {hid: HostView(hid, "test+tcp://x/default", ConnState.CONNECTED, tuple(ds))
             for hid, ds in doms.items()}
    return VdiInventory(tuple(hosts), tuple(vms)), views


@pytest.mark.parametrize("seed", range(25))
def test_incremental_equals_full_after_state_changes(seed: int) -> None:
    rnd = random.Random(seed)
    inv, views = world(rnd)
    cmp = reconcile(inv, views)
    used = 0
    for _ in range(30):
        hid = rnd.choice(list(views))
        if not views[hid].domains:
            continue
        ds = list(views[hid].domains)
        i = rnd.randrange(len(ds))
        ds[i] = replace(ds[i], state=rnd.choice(STATES),
                        vcpu=ds[i].vcpu if rnd.random() > 0.2 else 8)
        views = {**views, hid: replace(views[hid], domains=tuple(ds))}
        full = reconcile(inv, views)
        fast = update_rows(cmp, inv, views, {(hid, ds[i].uuid)})
        if fast is not None:
            used += 1
            assert fast == full
        cmp = full
    assert used > 10, "the incremental path should apply to most plain state changes"


@pytest.mark.parametrize("seed", range(10))
def test_chained_incremental_passes_with_a_kept_index_equal_full(seed: int) -> None:
    """As the engine runs them: several domains per pass, each pass built on the previous
    incremental result, the row index built once."""
    rnd = random.Random(100 + seed)
    inv, views = world(rnd)
    cmp = reconcile(inv, views)
    where = row_index(cmp)
    chained = 0
    for _ in range(20):
        changed: set[tuple[str, str]] = set()
        for _k in range(rnd.randint(1, 4)):
            hid = rnd.choice(list(views))
            if not views[hid].domains:
                continue
            ds = list(views[hid].domains)
            i = rnd.randrange(len(ds))
            ds[i] = replace(ds[i], state=rnd.choice(STATES))
            views = {**views, hid: replace(views[hid], domains=tuple(ds))}
            changed.add((hid, ds[i].uuid))
        full = reconcile(inv, views)
        fast = update_rows(cmp, inv, views, changed, where) if changed else None
        if fast is None:
            cmp, where = full, row_index(full)
            continue
        chained += 1
        assert fast == full
        assert row_index(fast) == where
        cmp = fast
    assert chained > 5


def test_new_or_renamed_domain_needs_a_full_pass() -> None:
    inv, views = world(random.Random(1))
    cmp = reconcile(inv, views)
    hid = next(h for h, v in views.items() if v.domains)
    d = views[hid].domains[0]  # type: ignore[index]
    renamed = {**views, hid: replace(views[hid], domains=(replace(d, name="other"),
                                                          *views[hid].domains[1:]))}
    assert update_rows(cmp, inv, renamed, {(hid, d.uuid)}) is None
    assert update_rows(cmp, inv, views, {(hid, "no-such-uuid")}) is None


def test_carry_over_keeps_equal_rows_and_reports_the_changed_ones() -> None:
    """A full pass over the same VMs: equal rows are the previous objects (their drifts in the
    drift list too), only the differing rows are reported; rows that came, went or moved make
    it report None and change nothing."""
    inv, views = world(random.Random(3))
    before = reconcile(inv, views)
    same, rows = carry_over(before, reconcile(inv, views))
    assert rows == () and same == before
    assert all(a is b for a, b in zip(same.vms, before.vms, strict=True))
    hid = next(h for h, v in views.items() if v.domains)
    ds = list(views[hid].domains)  # type: ignore[arg-type]
    ds[0] = replace(ds[0], vcpu=ds[0].vcpu + 16)
    views2 = {**views, hid: replace(views[hid], domains=tuple(ds))}
    full = reconcile(inv, views2)
    merged, rows = carry_over(before, full)
    assert merged == full
    assert rows is not None and [r.virt.uuid for r in rows if r.virt] == [ds[0].uuid]
    assert rows[0] in merged.vms and rows[0] not in before.vms
    assert sum(a is b for a, b in zip(merged.vms, before.vms, strict=True)) == len(before.vms) - 1
    row_drifts = {id(d) for r in merged.vms for d in r.drifts}
    assert all(id(d) in row_drifts for d in merged.drifts if d.kind.value not in
               ("unreachable", "offline_but_reachable"))
    # An incremental pass on the merged comparison still equals a full one.
    ds[1] = replace(ds[1], state=VirtState.PAUSED if ds[1].state is not VirtState.PAUSED
                    else VirtState.RUNNING)
    views3 = {**views2, hid: replace(views2[hid], domains=tuple(ds))}
    assert update_rows(merged, inv, views3, {(hid, ds[1].uuid)}) == reconcile(inv, views3)
    # A domain the platform does not know leaves with its row.
    stray = next(r for r in before.vms if r.vdi is None and r.virt is not None)
    sh = stray.virt_host_id
    assert sh is not None
    left = tuple(d for d in views[sh].domains or () if d.uuid != stray.virt.uuid)  # type: ignore[union-attr]
    gone = reconcile(inv, {**views, sh: replace(views[sh], domains=left)})
    assert carry_over(before, gone) == (gone, None)
    swapped = replace(before, vms=(before.vms[1], before.vms[0], *before.vms[2:]))
    assert carry_over(before, swapped) == (swapped, None)
