"""The VM table reaches into DataTable's private attributes on two hot paths (``_set_cells``:
drop only the touched rows' cached renders; ``_update_dimensions``: skip per-cell measuring).
Both were measured to matter (see benchmarks/README.md). Should a Textual release rename or
reshape those internals, the table would silently fall back to the slow path, or break: these
tests fail first, naming the attribute, so whoever bumps Textual (bounded in pyproject.toml)
knows what to look at."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from textual.widgets import DataTable

from tests.ui.test_vm_table import TableApp, rows
from vditui.ui.view import Filter
from vditui.ui.widgets.vm_table import VmTable

#: Each private attribute ``VmTable._set_cells`` uses, and what it must support.
CACHES = ("_row_renderable_cache", "_cell_render_cache", "_row_render_cache")


async def test_datatable_has_the_internals_the_table_relies_on() -> None:
    app = TableApp()
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(VmTable)
        table.show(rows(5), Filter(), {}, {"h1": "hv-1"}, {})
        await pilot.pause()
        missing = [name for name in ("_data", "_row_locations", *CACHES, "_line_cache",
                                     "_row_label_column_width", "_total_row_height")
                   if not hasattr(table, name)]
        assert not missing, f"DataTable lost {missing}: VmTable._set_cells falls back to the " \
                            "slow update_cell path; adapt it to this Textual"
        for name in CACHES:
            cache = getattr(table, name)
            assert callable(getattr(cache, "keys", None)) and callable(
                getattr(cache, "discard", None)), f"DataTable.{name} is no longer an LRU cache"
        assert callable(getattr(table._line_cache, "clear", None))
        params = list(inspect.signature(DataTable._update_dimensions).parameters)
        assert params == ["self", "new_rows"], \
            f"DataTable._update_dimensions now takes {params}: adapt VmTable._update_dimensions"


async def test_set_cells_takes_the_fast_path_and_redraws_the_row(
        monkeypatch: pytest.MonkeyPatch) -> None:
    app = TableApp()
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(VmTable)
        shown = rows(5)
        table.show(shown, Filter(), {}, {"h1": "hv-1"}, {})
        await pilot.pause()

        def slow(*_a: Any, **_k: Any) -> None:
            raise AssertionError("VmTable._set_cells fell back to DataTable.update_cell: "
                                 "Textual's internals changed")

        monkeypatch.setattr(table, "update_cell", slow)
        key = shown[2].key
        assert table.show_states({key: "crashed"}) == 1
        await pilot.pause()
        row = table.get_row_index(key)
        line = "".join(s.text for s in table.render_line(row + 1))  # +1: the header
        assert "crashed" in line, line


async def test_a_large_batch_is_one_invalidation_not_one_update_cell_per_cell(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Over 200 cells at once (a storm's flush): written straight into the data with one bump
    # of the counter the caches are keyed on; every changed row reads and draws the new value.
    app = TableApp()
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(VmTable)
        shown = rows(300)
        table.show(shown, Filter(), {}, {"h1": "hv-1"}, {})
        await pilot.pause()

        def slow(*_a: Any, **_k: Any) -> None:
            raise AssertionError("a large batch went through DataTable.update_cell")

        monkeypatch.setattr(table, "update_cell", slow)
        before = table._update_count
        assert table.show_states({r.key: "crashed" for r in shown}) == 300
        assert table._update_count == before + 1
        await pilot.pause()
        assert all("crashed" in str(table.get_row(r.key)) for r in shown)
        line = "".join(s.text for s in table.render_line(3))
        assert "crashed" in line, line
