"""Marking rows of the VM table for an action (space, m, u), against the lab: what is marked,
how it shows (a character, readable with NO_COLOR), and that marks outlive updates, sorts and
filters."""

from __future__ import annotations

from rich.text import Text

from vditui.core.drift import DriftStatus
from vditui.ui.view import ROW_MARK
from vditui.ui.widgets.vm_table import VmTable

SIZE = (160, 48)


def marked_names(app, ui) -> set[str]:
    """The names whose cell the table shows with the mark (read from the cells, not the set)."""
    table = app.query_one("#vms", VmTable)
    out = set()
    for i in range(table.row_count):
        name = ui.plain(table.get_row_at(i)[0])
        if name.startswith(ROW_MARK):
            out.add(name.removeprefix(ROW_MARK))
    return out


def confirmed_names(app, names: set[str] | None = None) -> set[str]:
    """The VMs with a confirmed drift, from the snapshot (independently of the table)."""
    snap = app.snapshot
    return {r.name for r in snap.comparison.vms
            if DriftStatus.CONFIRMED in snap.statuses(r.drifts).values()
            and (names is None or r.name in names)}


async def test_space_marks_the_selected_row_and_the_mark_outlives_sorts_and_events(
        fake, make_fake_app, settle, wait_for, ui):
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        key = ui.key_of(app, "class-a-01")
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("space")
        await pilot.pause()
        assert table.marks == {key}
        assert marked_names(app, ui) == {"class-a-01"}
        assert table.border_title.endswith("· 1 marked"), table.border_title
        # Drawn, not only stored.
        assert f"{ROW_MARK}class-a-01" in app.export_screenshot().replace("&#160;", " ")

        await pilot.press("s", "s")  # sort by another column, then another
        await pilot.pause()
        assert marked_names(app, ui) == {"class-a-01"}

        # An event changes the row (and its drift): the mark stays, the cells follow the event.
        fake.act("hv-t1", "class-a-01", "destroy")
        await wait_for(pilot, lambda: ui.row_cells(app, "class-a-01")["drift"] == "! state",
                       "class-a-01's drift shown")
        cells = ui.row_cells(app, "class-a-01")
        assert cells["name"] == f"{ROW_MARK}class-a-01" and cells["virt"] == "shutoff ≠"
        name_cell = table.get_cell(key, "name")
        assert isinstance(name_cell, Text) and "bold red" in str(name_cell.spans[-1].style)

        await pilot.press("space")  # the cursor is still on it: unmark
        await pilot.pause()
        assert table.marks == set() and marked_names(app, ui) == set()
        assert "marked" not in table.border_title


async def test_m_marks_the_confirmed_drifts_of_the_current_filter_and_u_clears(
        fake, make_fake_app, settle, ui):
    app = make_fake_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        await pilot.press("slash", *"class", "enter")
        await pilot.pause(0.3)
        shown = set(ui.table_names(app))
        assert shown and all("class" in n for n in shown)
        await pilot.press("m")
        await pilot.pause()
        want = confirmed_names(app, shown)
        assert want == {"class-a-04", "class-b-02", "class-b-03", "class-b-05"}
        assert marked_names(app, ui) == want
        assert table.border_title.endswith(f"· {len(want)} marked")

        # Marks outlive the filter: cleared, every row shows again, the marks with them.
        await pilot.press("slash")
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert len(ui.table_names(app)) > len(shown)
        assert marked_names(app, ui) == want
        # m again, without a filter: every confirmed drift, the earlier marks kept.
        await pilot.press("m")
        await pilot.pause()
        everything = confirmed_names(app)
        assert want < everything and marked_names(app, ui) == everything
        assert table.marks == {r.key for r in app.snapshot.comparison.vms
                               if r.name in everything}  # office-dup: one name, two rows
        assert set(table.marked_keys) == table.marks

        await pilot.press("u")
        await pilot.pause()
        assert table.marks == set() and marked_names(app, ui) == set()
        assert "marked" not in table.border_title
