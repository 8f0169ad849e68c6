"""The VM table on its own, with made-up rows: its size after rebuilds (it skips DataTable's
per-cell measuring, since every column has a fixed width), and the last row reachable."""

from __future__ import annotations

import uuid

from textual.app import App, ComposeResult

from vditui.core.models import Domain, VdiVm, VirtState, VmRow
from vditui.ui.view import COLUMNS, Filter
from vditui.ui.widgets.vm_table import VmTable


def rows(n: int) -> list[VmRow]:
    out = []
    for i in range(n):
        u = str(uuid.UUID(int=i + 1))
        vm = VdiVm(u, f"vm-{i:04d}", 1, 2, 2048, "h1")
        out.append(VmRow(u, vm.name, vm, Domain(u, vm.name, VirtState.RUNNING, 2, 2048 * 1024),
                         "h1"))
    return out


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield VmTable(id="vms")


async def test_rebuilds_size_the_table_and_reach_the_last_row() -> None:
    app = TableApp()
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(VmTable)
        width = sum(w + 2 * table.cell_padding for _k, _l, w in COLUMNS)
        for n, flt in ((600, Filter()), (10, Filter(text="vm-000")), (600, Filter())):
            table.show(rows(600), flt, {}, {"h1": "hv-1"}, {})
            await pilot.pause()
            assert table.row_count == n
            assert table.virtual_size.height == n + 1  # one line per row, and the header
            assert table.virtual_size.width == width
        table.move_cursor(row=599)
        await pilot.pause()
        assert table.scroll_y == table.max_scroll_y > 0
        assert "vm-0599" in "".join(s.text for s in table.render_line(table.size.height - 1))
