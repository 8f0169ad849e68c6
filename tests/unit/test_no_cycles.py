"""No import cycle in the core: each module of ``vditui.core`` depends on others one way only
(the actor on the estate's port, the engine on the estate and the actor, never back)."""

from __future__ import annotations

import grimp


def test_the_core_has_no_import_cycle() -> None:
    graph = grimp.build_graph("vditui")
    core = sorted(m for m in graph.modules if m.startswith("vditui.core."))
    cycles = sorted(
        (m, i) for m in core for i in graph.find_modules_directly_imported_by(m)
        if i.startswith("vditui.core.") and i != m
        and graph.chain_exists(importer=i, imported=m))
    assert cycles == [], cycles
