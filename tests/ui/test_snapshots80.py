"""Snapshot tests at 80x24 (and the main screen at 160x48) on the scripted engine: every screen
an operator meets over SSH, with its buttons and its own footer on screen.

The fake engine is deterministic (the lab's default scenario as a made-up estate, a fixed clock,
no retries), so the pictures are still; the event log is cleared before each (its lines are
written as the engine tells, in no fixed order). Regenerate after an intended UI change, and
look at the result:
    .venv/bin/pytest tests/ui/test_snapshots80.py --snapshot-update
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.ui.fake_lab import FIXED_NOW
from vditui.core.actions import Action, ActionPlan, ActionTarget
from vditui.ui.app import VdiApp
from vditui.ui.run_state import ActionRun
from vditui.ui.screens.ack import AckScreen
from vditui.ui.screens.actions import ConfirmScreen, ProgressScreen
from vditui.ui.screens.simple import ExportScreen, HelpScreen
from vditui.ui.screens.timeline import TimelineScreen
from vditui.ui.widgets.vm_table import VmTable

SMALL = (80, 24)


def _plan(n: int) -> ActionPlan:
    send = tuple(ActionTarget(f"k{i}", f"desk-{i:02}", f"id{i}", f"h{i % 3}", f"hv-{i % 3}")
                 for i in range(n))
    refused = ((ActionTarget("kx", "stray-build", None, "h0", "hv-0"),
                "only in libvirt: the platform cannot name it; remove it on the host"),)
    return ActionPlan(Action.SHUTDOWN, False, send, refused)


async def _ready(app: VdiApp, pilot, settle) -> None:
    await settle(app, pilot)
    app.event_log.clear()
    await pilot.pause()


def test_main_80x24(snap_compare, fake, make_fake_app, settle, monkeypatch):
    """Drift, two hosts down, worst rows first."""
    app = make_fake_app(fake, still=True)

    async def run_before(pilot) -> None:
        await _ready(app, pilot, settle)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_main_160x48(snap_compare, fake, make_fake_app, settle):
    app = make_fake_app(fake, still=True)

    async def run_before(pilot) -> None:
        await _ready(app, pilot, settle)

    assert snap_compare(app, terminal_size=(160, 48), run_before=run_before)


def test_help_scrolled_to_its_end(snap_compare, fake, make_fake_app, settle):
    app = make_fake_app(fake, still=True)

    async def run_before(pilot) -> None:
        await _ready(app, pilot, settle)
        app.push_screen(HelpScreen())
        await pilot.pause()
        await pilot.press("end")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_confirmation_with_30_vms(snap_compare, fake, make_fake_app, settle):
    app = make_fake_app(fake, still=True)

    async def run_before(pilot) -> None:
        await _ready(app, pilot, settle)
        app.push_screen(ConfirmScreen(_plan(30)))
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_progress(snap_compare, fake, make_fake_app, settle):
    app = make_fake_app(fake, still=True)

    async def run_before(pilot) -> None:
        await _ready(app, pilot, settle)
        app.push_screen(ProgressScreen(ActionRun(_plan(12), FIXED_NOW)))
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_acknowledge(snap_compare, fake, make_fake_app, settle, ui):
    app = make_fake_app(fake, still=True)

    async def run_before(pilot) -> None:
        await _ready(app, pilot, settle)
        table = app.query_one("#vms", VmTable)
        row = table.rows_by_key[ui.key_of(app, "class-a-04")]
        app.push_screen(AckScreen(row.name, list(row.drifts), date(2025, 11, 24)))
        await pilot.pause()
        ui.no_blink(app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_timeline(snap_compare, fake, make_fake_app, settle, ui):
    """No history file yet: the screen says so, in its frame, with its footer."""
    app = make_fake_app(fake, still=True)

    async def run_before(pilot) -> None:
        await _ready(app, pilot, settle)
        app.push_screen(TimelineScreen(Path("/nonexistent/vditui/history.db"), fake.vdi_url,
                                       "class-a-04", "hv-t1", lambda: FIXED_NOW))
        await pilot.pause(0.5)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_export_with_an_error(snap_compare, fake, make_fake_app, settle, ui):
    app = make_fake_app(fake, still=True)

    async def run_before(pilot) -> None:
        await _ready(app, pilot, settle)
        app.push_screen(ExportScreen("report.txt"))
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        ui.no_blink(app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_login_refused(snap_compare):
    app = VdiApp(None, problem=(
        "Login refused",
        "https://vdi.example.org:8443: login refused for admin: HTTP 401 Unauthorized "
        "(the platform said: user name or password wrong)",
        "Check the user name (admin) and the password (VDITUI_PASSWORD, password_env or "
        "password_command in the config)."), clock=lambda: FIXED_NOW)
    assert snap_compare(app, terminal_size=SMALL)


def test_config_error(snap_compare):
    from vditui.ui.run import config_fix

    app = VdiApp(None, problem=(
        "Configuration problem",
        "/srv/ops/vditui-prod.toml:7: profiles.prod.url: expected a URL like "
        "https://vdi.example.org, got 'vdi.example.org' (no scheme)",
        config_fix(Path("/srv/ops/vditui-prod.toml"))), clock=lambda: FIXED_NOW)
    assert snap_compare(app, terminal_size=SMALL)


@pytest.fixture(autouse=True)
def _no_color_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    """Colours as the pictures were taken (a NO_COLOR in the caller's environment would change
    every one)."""
    monkeypatch.delenv("NO_COLOR", raising=False)
