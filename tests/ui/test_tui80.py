"""Issue 18 at 80x24, on the scripted engine: the header says what is wrong, worst rows first,
the confirmation's buttons on screen, the event log and diff panel lose nothing, start-up says
what it does, ctrl+c quits (asking first while an action is followed up), the action menu's
counts are the confirmation's, marks hidden by the filter are counted, and `h` survives a
resize. One test per numbered item of the issue."""

from __future__ import annotations

import html
import io
import re

from rich.console import Console
from rich.text import Text
from textual.widgets import Button, OptionList

from vditui.core.actions import Action, ActionPlan, ActionTarget
from vditui.core.drift import DriftStatus
from vditui.core.models import ConnState, Severity
from vditui.core.tally import Tally, worst_first
from vditui.ui.app import VdiApp
from vditui.ui.screens.actions import ActionMenuScreen, ConfirmScreen
from vditui.ui.screens.simple import ProblemScreen
from vditui.ui.widgets.top_bar import TopBar
from vditui.ui.widgets.vm_table import VmTable

SMALL = (80, 24)


def screen_lines(app: VdiApp) -> list[str]:
    """The screen's text lines (from the SVG screenshot)."""
    svg = app.export_screenshot()
    rows = re.findall(r'<text[^>]*y="([\d.]+)"[^>]*>(.*?)</text>', svg)
    by_y: dict[float, str] = {}
    for y, chunk in rows:
        by_y[float(y)] = by_y.get(float(y), "") + html.unescape(re.sub(r"<[^>]+>", "", chunk))
    return [by_y[y].replace("\xa0", " ") for y in sorted(by_y)]


def screen_text(app: VdiApp) -> str:
    return "\n".join(screen_lines(app))


# 1 ------------------------------------------------------------------------------------ header
async def test_header_says_drifts_hosts_down_and_unchecked_at_80_columns(
        fake, make_fake_app, settle, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_fake_app(fake, still=True)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        snap = app.snapshot
        assert snap is not None
        counted = snap.counted()  # the drifts that count, by the snapshot's own rule
        critical = sum(1 for d in counted if d.severity is Severity.CRITICAL)
        down = sorted(h.host.name for h in snap.comparison.hosts
                      if h.view is not None and h.view.state is ConnState.FAILED)
        unchecked = sum(1 for r in snap.comparison.vms if not r.checked)
        assert counted and critical and len(down) == 2 and unchecked
        top = app.top_bar
        header = " ".join(str(top.content).split())
        assert top.region.height <= 4  # three lines at 80 columns, a fourth for a warning
        assert f"! {len(counted)} drifts ({critical} critical)" in header, header
        assert f"✗ 2 of {len(snap.comparison.hosts)} hosts down: {', '.join(down)}" in header
        assert f"? {unchecked} VMs unchecked" in header
        assert fake.vdi_url in header
        assert "READ-ONLY" not in header


def test_header_before_the_first_snapshot_and_while_hosts_are_read():
    bar = TopBar("https://vdi.example", "admin", [])
    assert "logging in to https://vdi.example…" in bar.status_line().plain
    bar.tally = Tally(confirmed=1, hosts=12, reading=3)
    line = bar.status_line().plain
    assert "◌ reading hosts: 9 of 12" in line and "! 1 drift " in line + " "


# 2 --------------------------------------------------------------------------------- worst first
async def test_worst_rows_first_and_the_sort_in_the_table_header(fake, make_fake_app, settle,
                                                                 ui):
    app = make_fake_app(fake, still=True)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        snap = app.snapshot
        assert snap is not None
        rows = [table.rows_by_key[str(table.coordinate_to_cell_key((i, 0)).row_key.value)]
                for i in range(table.row_count)]
        ranks = [worst_first(r, snap) for r in rows]
        assert ranks == sorted(ranks)
        first = rows[0]
        assert any(snap.status(d) is DriftStatus.CONFIRMED and d.severity is Severity.CRITICAL
                   for d in first.drifts), first.name
        # Unchecked rows (host down) come after the drifts and before the rows that agree.
        kinds = [("drift" if r.drifts else "unchecked" if not r.checked else "ok") for r in rows]
        assert kinds.index("unchecked") > kinds.index("drift")
        assert kinds.index("ok") > max(i for i, k in enumerate(kinds) if k == "unchecked")
        assert "worst first" in str(table.border_title)
        await pilot.press("s")
        await pilot.pause()
        assert "VM ▲" in screen_text(app) and "· VM" in str(table.border_title)
        await pilot.press("S")
        await pilot.pause()
        assert "VM ▼" in screen_text(app)


# 4 ------------------------------------------------------------------------- fits 80x24
def _plan(n: int) -> ActionPlan:
    send = tuple(ActionTarget(f"k{i}", f"desk-{i:02}", f"id{i}", "h1", "hv-a") for i in range(n))
    return ActionPlan(Action.SYNC, False, send)


async def test_confirmation_with_30_vms_keeps_send_and_cancel_on_screen(fake, make_fake_app,
                                                                        settle):
    app = make_fake_app(fake, still=True)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        app.push_screen(ConfirmScreen(_plan(30)))
        await pilot.pause()
        await pilot.pause()
        for button in app.screen.query(Button):
            region = button.region
            assert region.height and region.bottom <= 24 - 1, (button.id, region)
        text = screen_text(app)
        assert "Send to 30 VMs" in text and "Cancel" in text
        footer = screen_lines(app)[-1]
        assert "y send" in footer and "n cancel" in footer and "esc" in footer
        assert "filter" not in footer and "drift" not in footer  # not the main screen's keys
        await pilot.press("y")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)


# 5 -------------------------------------------------------------------- event log, diff panel
async def test_event_log_keeps_every_word_at_80_columns_and_after_a_resize(fake,
                                                                           make_fake_app,
                                                                           settle):
    app = make_fake_app(fake, still=True)
    words = [f"word{i:02}" for i in range(40)]
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        log = app.event_log
        log.clear()
        log.note(Text(" ".join(words)))
        await pilot.pause(0.4)
        await pilot.resize_terminal(*SMALL)
        await pilot.pause(0.4)
        width = log.scrollable_content_region.width
        lines = [s.text.rstrip() for s in log.lines]
        assert all(len(line) <= width for line in lines), (width, lines)
        assert " ".join(" ".join(lines).split()) == " ".join(words)


async def test_diff_panel_leads_with_the_drift(fake, make_fake_app, settle, ui):
    app = make_fake_app(fake, still=True)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        table.move_cursor(row=0)
        await pilot.pause(0.2)
        row = table.rows_by_key[table.selected_key or ""]
        assert row.drifts
        panel = app.diff_panel
        console = Console(width=panel.region.width, file=io.StringIO(), record=True)
        console.print(panel.content)
        first = console.export_text().splitlines()[:3]  # what an 80x24 diff panel shows
        assert first[0].startswith(row.name), first
        assert "state [critical]: platform says running, libvirt says shutoff" in " ".join(
            " ".join(first).split()), first
        assert not any("field" in line for line in first)  # the table comes after


# 6 ------------------------------------------------------------------------------ start-up
# (the header before the first snapshot and while hosts are read: see item 1's second test)


# 7 -------------------------------------------------------------------------------- ctrl+c
async def test_ctrl_c_quits(fake, make_fake_app, settle):
    app = make_fake_app(fake, still=True)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running


async def test_ctrl_c_asks_first_while_an_action_is_followed_up(fake, make_fake_app, settle,
                                                                ui):
    app = make_fake_app(fake, still=True)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        run = type("Run", (), {"done": False})()
        app.acting.run = run  # an action still being followed up
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert app.is_running
        assert any("press ctrl+c again" in m for _s, m in ui.notifications(app))
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert not app.is_running


async def test_problem_screens_exit_non_zero_and_wrap():
    detail = "the platform said 401 Unauthorized: " + "x " * 60
    app = VdiApp(None, problem=("Login refused", detail, "Check the user name and password."))
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ProblemScreen)
        text = " ".join(screen_text(app).split())
        assert "Check the user name and password." in text  # wrapped, not cut at 80
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 2


# 8 ----------------------------------------------------------------- menu counts, hidden marks
async def test_menu_counts_are_the_confirmations_and_hidden_marks_are_counted(
        fake, make_fake_app, settle, wait_for, ui, tmp_path):
    app = make_fake_app(fake, still=True, audit_path=tmp_path / "audit.jsonl",
                        action_timeout=20.0)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        await pilot.press("m")  # every confirmed drift
        await pilot.pause()
        marked = len(table.marks)
        assert marked > 2
        await pilot.press("slash", *"class", "enter")  # a filter that hides some of them
        await pilot.pause(0.3)
        hidden = table.hidden_marks()
        assert 0 < hidden < marked
        assert f"{marked} marked, {hidden} hidden by the filter" in str(table.border_title)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ActionMenuScreen), "the menu")
        menu = app.screen
        assert isinstance(menu, ActionMenuScreen)
        assert f"({hidden} hidden by the filter)" in menu.what
        assert all(n > 0 for n in menu.counts)  # only what applies to at least one row
        options = menu.query_one("#act-options", OptionList)
        assert options.option_count == len(menu.choices)
        first_count = menu.counts[0]
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        assert len(confirm.plan.send) == first_count
        await pilot.press("y")
        await pilot.pause()
        assert table.marks == set()  # sent: the marks are gone


# 9 --------------------------------------------------------------------------- h and resize
async def test_h_twice_then_a_resize_to_80_hides_the_tree(fake, make_fake_app, settle):
    app = make_fake_app(fake, still=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        tree = app.host_tree
        assert tree.region.width > 0
        await pilot.press("h")
        await pilot.pause()
        assert tree.region.width == 0
        await pilot.press("h")
        await pilot.pause()
        assert tree.region.width > 0
        await pilot.resize_terminal(*SMALL)
        await pilot.pause()
        assert tree.region.width == 0, "the tree stuck on an 80-column screen"
        await pilot.press("h")
        await pilot.pause()
        assert tree.region.width > 0  # h still shows it there
