"""Snapshot tests: what the operator sees, compared with the accepted SVGs in __snapshots__/.

The main screen and the diff panel are drawn over the scripted engine with ``snapshot.toml`` as
its estate, under the URL the lab would have; the reconnect screen, whose results are real
probes, over the lab, which runs ``snapshot.toml`` on a fixed subnet (127.77.1.x), so URLs and
URIs on screen are always the same. The app has a fixed clock, grace 0 (drift confirmed at once)
and retries failed hosts only after an hour, so nothing moves while the picture is taken. The
event log is cleared before each picture (its lines arrive in no fixed order), and the probe's
timing and the test driver's host name (this machine's) are pinned.

Regenerate after an intended UI change, and look at the result:
    .venv/bin/pytest tests/ui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import vditui.core.engine
import vditui.core.probe
import vditui.core.virt
from tests.ui.fake_lab import FIXED_NOW, FakeLab
from vditui.lab.lab import Lab
from vditui.lab.scenario import load
from vditui.ui.screens.reconnect import ReconnectScreen
from vditui.ui.widgets.vm_table import VmTable

SUBNET = "127.77.1"
SCENARIO = Path(__file__).with_name("snapshot.toml")
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


@pytest.fixture
def snap_fake() -> FakeLab:
    """``snapshot.toml`` behind the scripted engine, the platform's URL as the lab's."""
    return FakeLab(load(SCENARIO), vdi_url=f"http://{SUBNET}.1:8088", username="admin",
                   now=FIXED_NOW)


@pytest.fixture(scope="module")
def snap_lab() -> Iterator[Lab]:
    """One lab for the module: a fixed subnet can only be held by one lab at a time."""
    with Lab(load(SCENARIO), subnet=SUBNET) as lab:
        yield lab


@pytest.fixture(autouse=True)
def pinned_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real probes, with the latency and the test driver's host name pinned."""
    real = vditui.core.virt.probe

    async def probe(uris: list[str], timeout: float) -> list[vditui.core.probe.ProbeResult]:
        return [replace(r, latency=0.012, hostname="labhost" if r.hostname else "")
                for r in await real(uris, timeout)]

    monkeypatch.setattr(vditui.core.engine, "probe", probe)  # what Engine.probe_uris calls


def _clear_events(app) -> None:
    app.event_log.clear()


@pytest.mark.parametrize("size", SIZES)
def test_main(snap_compare, snap_fake, make_fake_app, settle, size):
    app = make_fake_app(snap_fake, still=True)

    async def run_before(pilot) -> None:
        await settle(app, pilot)
        assert app.query_one("#vms", VmTable).row_count == 12
        _clear_events(app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_diff(snap_compare, snap_fake, make_fake_app, settle, ui, size):
    """The diff panel on a VM with a state drift."""
    app = make_fake_app(snap_fake, still=True)

    async def run_before(pilot) -> None:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        table.move_cursor(row=table.get_row_index(ui.key_of(app, "desk-04")))
        await pilot.pause()
        assert table.selected_key == ui.key_of(app, "desk-04")
        _clear_events(app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.lab
@pytest.mark.parametrize("size", SIZES)
def test_reconnect(snap_compare, snap_lab, make_app, settle, wait_for, ui, size):
    """The reconnect screen for the refusing host, every candidate probed."""
    app = make_app(snap_lab, still=True)

    async def run_before(pilot) -> None:
        await settle(app, pilot)
        table = app.query_one("#vms", VmTable)
        table.move_cursor(row=table.get_row_index(ui.key_of(app, "office-09")))
        await pilot.pause()
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ReconnectScreen), "reconnect")
        screen = app.screen
        await wait_for(pilot, lambda: all(u in screen.results for u in screen.uris),
                       "every candidate probed")
        assert screen.host.name == "hv-x"
        _clear_events(app)
        ui.no_blink(app)
        await pilot.pause()
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
