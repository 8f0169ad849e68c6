"""The host tree: pools, then hosts, each labelled with its state, counts and drift."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from vditui.core.events import SnapshotReady
from vditui.core.models import Comparison
from vditui.core.present import stale_hosts
from vditui.ui.messages import Snapshot
from vditui.ui.pacing import Pacer
from vditui.ui.view import NO_ACKS, Acked, drift_count_label, host_label

#: The tree counts thousands of rows: a few times a second is enough, and leaves the loop to
#: the events.
SUMMARY_INTERVAL = 0.5


@dataclass(frozen=True)
class NodeRef:
    """What a tree node stands for: ``all``, a pool or a host."""

    kind: str
    id: str = ""


class HostTree(Tree[NodeRef]):
    DEFAULT_CSS = "HostTree { width: 30; min-width: 24; }"

    def __init__(self, **kw: Any) -> None:
        super().__init__(Text("all hosts", style="bold"), data=NodeRef("all"), **kw)
        self.show_root = True
        self.guide_depth = 2
        self._pools: dict[str, TreeNode[NodeRef]] = {}
        self._hosts: dict[str, TreeNode[NodeRef]] = {}
        self._labels: dict[str, str] = {}
        #: The app's injected clock: ages of kept libvirt data are counted on it.
        self.clock: Callable[[], float] = time.time
        self._snap: SnapshotReady | None = None
        self._pacer = Pacer(self, SUMMARY_INTERVAL, self._show)

    def on_mount(self) -> None:
        # Connecting hosts count the seconds, stale ones the age of their data.
        self.set_interval(1.0, self._tick)

    @property
    def pending(self) -> bool:
        """A snapshot is not shown yet."""
        return self._pacer.pending

    def on_snapshot(self, message: Snapshot) -> None:
        self._snap = message.snapshot
        self._pacer.request()

    def _show(self) -> None:
        snap = self._snap
        if snap is not None and self.is_attached:
            self.update_from(snap.comparison, time.monotonic(), _connecting(snap),
                             snap.acknowledged)

    def _tick(self) -> None:
        snap = self._snap
        if snap is not None and not self._pacer.pending and (
                _connecting(snap) or stale_hosts(list(snap.comparison.hosts))):
            self._pacer.now()

    def update_from(self, cmp: Comparison, now: float, connecting: dict[str, float],
                    acked: Acked = NO_ACKS) -> None:
        """Add pools and hosts not yet shown and relabel those whose label changed; drift
        counts leave out the acknowledged drifts (``acked``)."""
        if not self.root.is_expanded:  # expanding again still re-lays out the tree
            self.root.expand()
        wall = self.clock()
        vm_drifts: dict[str, int] = {}
        pool_drifts: dict[str, int] = {}
        for r in cmp.vms:
            if r.drifts:
                n = sum(d.ident not in acked for d in r.drifts) if acked else len(r.drifts)
                vm_drifts[r.host_id] = vm_drifts.get(r.host_id, 0) + n
        hosts = [replace(h, drifts=tuple(d for d in h.drifts if d.ident not in acked))
                 if acked and h.drifts else h for h in cmp.hosts]
        for h in hosts:
            n = vm_drifts.get(h.host.id, 0) + len(h.drifts)
            pool_drifts[h.host.pool_id] = pool_drifts.get(h.host.pool_id, 0) + n
        self._set_label("", self.root, drift_count_label("all hosts", sum(pool_drifts.values())))
        for h in hosts:
            pid = h.host.pool_id or "-"
            pool = self._pools.get(pid)
            if pool is None:
                pool = self.root.add(h.host.pool_name or "(no pool)", data=NodeRef("pool", pid),
                                     expand=True)
                self._pools[pid] = pool
            self._set_label("pool:" + pid, pool, drift_count_label(
                h.host.pool_name or "(no pool)", pool_drifts.get(h.host.pool_id, 0)))
            label = host_label(h, vm_drifts.get(h.host.id, 0), now,
                               connecting.get(h.host.id, 0.0), wall)
            node = self._hosts.get(h.host.id)
            if node is None:
                node = pool.add_leaf(label, data=NodeRef("host", h.host.id))
                self._hosts[h.host.id] = node
            self._set_label(h.host.id, node, label)

    def _set_label(self, key: str, node: TreeNode[NodeRef], label: Text) -> None:
        markup = label.markup
        if self._labels.get(key) != markup:
            self._labels[key] = markup
            node.set_label(label)


def _connecting(snap: SnapshotReady) -> dict[str, float]:
    """Host id -> when its current connection attempt began, for the hosts connecting."""
    return {hid: link.connecting_since for hid, link in snap.hosts.items()
            if link.connecting_since}
