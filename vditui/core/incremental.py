"""The incremental pass: after a lifecycle event, only the rows of the domains that changed
are judged again (``update_rows``), with the full pass's own rules (:class:`RowBuilder`), and a
full pass that found the same VMs keeps the older row objects (``carry_over``).

Both are proven equal to a full :func:`~vditui.core.reconcile.reconcile` by
``tests/unit/test_reconcile_incremental.py`` (and against the lab under an event storm).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from vditui.core.models import Comparison, DriftKind, HostView, VdiInventory, VmRow
from vditui.core.reconcile import RowBuilder, drift_sort_key


def carry_over(previous: Comparison, current: Comparison,
               ) -> tuple[Comparison, tuple[VmRow, ...] | None]:
    """``current``, with every row equal to ``previous``'s row in the same place replaced by
    that older object, and the rows that do differ; or ``current`` as it is and None when rows
    came, went or moved.

    After a refresh that found the same VMs, the new comparison then shares its unchanged rows
    with the old one: the thousands of fresh copies die at once instead of living on (less for
    the garbage collector to walk), and a face can redraw just the changed rows."""
    if len(previous.vms) != len(current.vms):
        return current, None
    rows: list[VmRow] = []
    changed: list[VmRow] = []
    for old, new in zip(previous.vms, current.vms, strict=True):
        if old.key != new.key:
            return current, None
        if old is new or old == new:
            rows.append(old)
        else:
            rows.append(new)
            changed.append(new)
    # The drift list holds the very drift objects of the rows kept (update_rows relies on it).
    drifts = [d for r in rows for d in r.drifts] + [d for h in current.hosts for d in h.drifts]
    merged = replace(current, vms=tuple(rows), drifts=tuple(sorted(drifts, key=drift_sort_key)))
    return merged, tuple(changed)


def row_index(cmp: Comparison) -> dict[tuple[str, str], int]:
    """Where each libvirt domain's row is in ``cmp.vms``: (host id, UUID) -> index. An
    ``update_rows`` result keeps every row where it was, so one index serves a whole run of
    incremental passes."""
    return {(r.virt_host_id, r.virt.uuid): i for i, r in enumerate(cmp.vms)
            if r.virt is not None and r.virt_host_id is not None}


def update_rows(
    previous: Comparison,
    vdi: VdiInventory,
    views: Mapping[str, HostView],
    changed: set[tuple[str, str]],
    where: Mapping[tuple[str, str], int] | None = None,
) -> Comparison | None:
    """``previous`` with only the rows of ``changed`` domains ((host id, UUID)) judged again.

    Valid when nothing changed but those domains' own fields (a lifecycle event: same host,
    same UUID, same name), so every pairing still holds; under an event storm this costs a few
    rows instead of a full pass. Returns None whenever that cannot be shown for a row (a new or
    gone domain, a renamed one, a duplicate or unchecked row): the caller then reconciles in full.
    ``where`` is ``row_index(previous)`` when the caller keeps it (else it is built here).
    """
    if where is None:
        where = row_index(previous)
    doms = {hid: {d.uuid: d for d in (views[hid].domains or ())}
            for hid in {h for h, _u in changed} if hid in views}
    b = RowBuilder(vdi, views)
    rows = list(previous.vms)
    replaced: list[VmRow] = []
    for hid, uuid in changed:
        i = where.get((hid, uuid))
        dom = doms.get(hid, {}).get(uuid)
        if i is None or dom is None or hid not in b.read:
            return None
        old = rows[i]
        if not old.checked or old.virt is None or old.virt.name != dom.name or any(
                d.kind is DriftKind.DUPLICATE for d in old.drifts):
            return None
        if old.vdi is not None:
            b.pair(old.vdi, (hid, dom))
        else:
            b.virt_only((hid, dom))
        new = b.rows.pop()
        if new.key != old.key:
            return None
        replaced.append(old)
        rows[i] = new
    # Host rows carry their view (the domains changed); a changed host's running count is
    # judged again, its other drifts and its VM counts did not change.
    touched = {hid for hid, _u in changed}
    hosts = tuple(b.host_row(h.host, {h.host.id: h.vdi_vms}) if h.host.id in touched
                  else replace(h, view=views.get(h.host.id)) for h in previous.hosts)
    # The drift list: the previous one less the re-judged rows' and hosts' old drifts, plus
    # their new ones.
    gone = {id(d) for r in replaced for d in r.drifts}
    gone |= {id(d) for h in previous.hosts if h.host.id in touched for d in h.drifts}
    drifts = [d for d in previous.drifts if id(d) not in gone]
    drifts += [d for (hid, uuid) in changed for d in rows[where[(hid, uuid)]].drifts]
    drifts += [d for h in hosts if h.host.id in touched for d in h.drifts]
    return replace(previous, vms=tuple(rows), hosts=hosts,
                   drifts=tuple(sorted(drifts, key=drift_sort_key)))
