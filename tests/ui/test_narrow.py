"""At 80x24 (an SSH terminal) the drift status of every VM row on screen is on screen too.

Read from the screen as composed (what the terminal would get), with NO_COLOR set, so the
status must be readable from characters alone (``!`` confirmed, ``…`` pending, ``ok``,
``unchecked``, ``stale``), never only from a colour.
"""

from __future__ import annotations

import io

from rich.console import Console

from vditui.ui.app import VdiApp
from vditui.ui.view import COLUMN_INDEX, COLUMNS
from vditui.ui.widgets.vm_table import VmTable

DRIFT_WIDTH = dict((k, w) for k, _label, w in COLUMNS)["drift"]


def screen_lines(app: VdiApp) -> list[str]:
    """The whole screen as plain text, one string per terminal line."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      legacy_windows=False, safe_box=False, color_system=None)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False).splitlines()


def visible_rows(app: VdiApp, lines: list[str]) -> list[tuple[str, str, str]]:
    """(name, drift cell text, screen line) of every table row on screen."""
    table = app.query_one("#vms", VmTable)
    region = table.scrollable_content_region  # without the scrollbars
    first = int(table.scroll_y)
    shown = region.height - table.header_height
    out = []
    for i in range(first, min(table.row_count, first + shown)):
        cells = table.get_row_at(i)
        name, drift = (getattr(cells[COLUMN_INDEX[k]], "plain", cells[COLUMN_INDEX[k]])
                       for k in ("name", "drift"))
        y = region.y + table.header_height + (i - first)
        out.append((str(name), str(drift), lines[y][region.x:region.right]))
    return out


def assert_status_on_screen(rows: list[tuple[str, str, str]]) -> None:
    for name, drift, line in rows:
        assert line.lstrip().startswith(name[:10]), (name, line)
        # The cell as far as its column shows it (a long list of kinds may be cut, never the
        # status that starts it).
        shown = drift[:DRIFT_WIDTH - 1]
        assert shown and shown in line, f"{name}: drift {drift!r} not on screen: {line!r}"
        assert shown.split()[0] in ("!", "…", "ok", "unchecked", "stale"), drift


async def test_drift_status_of_every_visible_row_at_80_columns(fake, make_fake_app, settle, ui,
                                                               monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_fake_app(fake, still=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        assert table.scroll_x == 0 and app.size.width == 80
        rows = visible_rows(app, screen_lines(app))
        assert len(rows) >= 5, rows
        assert_status_on_screen(rows)
        statuses = [drift.split()[0] for _n, drift, _l in rows]
        # Worst first: the confirmed drifts lead the screen.
        assert statuses[0] == "!" and "ok" not in statuses[:statuses.count("!")], statuses

        # Only the drifting rows: every one of them shows what kind of drift, in words.
        await pilot.press("d")
        await ui.wait_for(pilot, lambda: app.filter.drift_only and not ui.display_pending(app),
                          "the drift-only view")
        await pilot.pause()
        rows = visible_rows(app, screen_lines(app))
        assert len(rows) >= 5, rows
        assert_status_on_screen(rows)
        assert all(d.split()[0] in ("!", "…", "stale") for _n, d, _l in rows), rows
        assert not any("_" in d for _n, d, _l in rows), rows  # kinds in words, not only_in_vdi
