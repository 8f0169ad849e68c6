"""The host tree: pools, then hosts, each labelled with its state, counts and drift."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from vditui.core.models import Comparison
from vditui.ui.view import drift_count_label, host_label


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

    def update_from(self, cmp: Comparison, now: float, connecting: dict[str, float]) -> None:
        """Add pools and hosts not yet shown and relabel those whose label changed."""
        if not self.root.is_expanded:  # expanding again still re-lays out the tree
            self.root.expand()
        wall = self.clock()
        vm_drifts: dict[str, int] = {}
        pool_drifts: dict[str, int] = {}
        for r in cmp.vms:
            if r.drifts:
                vm_drifts[r.host_id] = vm_drifts.get(r.host_id, 0) + len(r.drifts)
        for h in cmp.hosts:
            n = vm_drifts.get(h.host.id, 0) + len(h.drifts)
            pool_drifts[h.host.pool_id] = pool_drifts.get(h.host.pool_id, 0) + n
        self._set_label("", self.root, drift_count_label("all hosts", sum(pool_drifts.values())))
        for h in cmp.hosts:
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
