"""Every age on screen is counted on the app's injected clock, as the header's already was: the
host tree's and the diff panel's ages of kept libvirt data used ``time.time()``, so with a
clock ten minutes ahead they said "2 s" where the app's own clock says ten minutes."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from vditui.ui.app import VdiApp
from vditui.ui.widgets.diff_panel import DiffPanel
from vditui.ui.widgets.vm_table import VmTable

AHEAD = 600.0


def panel_text(app: VdiApp) -> str:
    console = Console(width=200, record=True, no_color=True, file=io.StringIO())
    console.print(app.query_one("#diff", DiffPanel).content)
    return console.export_text()


async def test_data_ages_follow_the_injected_clock(fake, make_fake_app, settle, wait_for, ui):
    app = make_fake_app(fake, keepalive_interval=1, keepalive_count=2)
    app.clock = lambda: time.time() + AHEAD  # ten minutes ahead of the data's stamps
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        fake.set_fault("hv-t1", "refuse")
        await wait_for(pilot, lambda: re.search(r"^hv-t1 ✗ refused data 10 min old ",
                                                ui.host_label(app, "hv-t1")),
                       "hv-t1's data age on the app's clock", timeout=5)
        table = app.query_one("#vms", VmTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(ui.key_of(app, "class-a-01")))
        await wait_for(pilot, lambda: "libvirt data is 10 min old (stale)" in panel_text(app),
                       "the diff panel's data age on the app's clock", timeout=3)
        assert app._exception is None
