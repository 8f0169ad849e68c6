"""Write the README screenshots (screenshots/*.svg) from the default lab scenario.

    .venv/bin/python scripts/screenshots.py [--out DIR] [--only NAME ...]

Reproducible: the lab runs on a fixed subnet (127.77.9.x), the app has a fixed clock
(2025-11-24 16:00:00 UTC), failed hosts are not retried while a picture is taken, the probe's
timing and the test driver's host name are pinned, and the event log shows one live event made
for the picture (a VM stopped behind the platform's back) instead of the start-up lines, whose
order varies. Convert to PNG with ``rsvg-convert -w 1600 in.svg -o out.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, RichLog

import vditui.core.engine
import vditui.core.probe
import vditui.core.virt
from vditui.core.engine import EngineSettings
from vditui.core.settings import SessionSettings
from vditui.demo import demo_host_uris
from vditui.lab.lab import Lab
from vditui.lab.scenario import load_default
from vditui.ui.app import VdiApp
from vditui.ui.screens.actions import ActionMenuScreen, ConfirmScreen
from vditui.ui.screens.reconnect import ReconnectScreen
from vditui.ui.screens.simple import HelpScreen
from vditui.ui.widgets.diff_panel import DiffPanel
from vditui.ui.widgets.event_log import EventLog
from vditui.ui.widgets.host_tree import HostTree
from vditui.ui.widgets.vm_table import FLUSH_DELAY, VmTable

ROOT = Path(__file__).resolve().parent.parent
SUBNET = "127.77.9"
FIXED_NOW = 1_764_000_000.0
TIMEOUT = 15.0


@dataclass(frozen=True)
class StillSettings(EngineSettings):
    """Failed hosts are retried after an hour, so a refused host does not flicker."""

    def session_settings(self) -> SessionSettings:
        return replace(super().session_settings(), min_backoff=3600.0, max_backoff=3600.0)


def _pin_probe() -> None:
    real = vditui.core.virt.probe

    async def probe(uris: list[str], timeout: float) -> list[vditui.core.probe.ProbeResult]:
        return [replace(r, latency=0.012, hostname="labhost" if r.hostname else "")
                for r in await real(uris, timeout)]

    vditui.core.engine.probe = probe  # type: ignore[assignment]  # what Engine.probe_uris calls


async def _wait(pilot: Pilot[Any], predicate: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        await pilot.pause(0.02)


def _settled(app: VdiApp) -> bool:
    engine, cmp = app.engine, app.comparison
    hosts = engine.stats().hosts if engine is not None else ()
    if engine is None or cmp is None or not hosts:
        return False
    views = {h.host.id: h.view for h in cmp.hosts}
    return all(s.settled and (v := views.get(s.host_id)) is not None and v.state is s.state
               and v.read_at == s.read_at for s in hosts)


def _key(app: VdiApp, name: str) -> str:
    assert app.comparison is not None
    return next(r.key for r in app.comparison.vms if r.name == name)


Prepare = Callable[[VdiApp, Pilot[Any], Lab], Awaitable[None]]


async def _shoot(lab: Lab, size: tuple[int, int], out: Path, prepare: Prepare,
                 **extra: Any) -> None:
    settings = StillSettings(url=lab.vdi_url, username=lab.username, password=lab.password,
                             uri_templates=lab.uri_templates, connect_timeout=5.0, grace=0.0,
                             host_uris=demo_host_uris(lab),  # ssh-only, tls-only: as the demo
                             **extra)
    app = VdiApp(settings, [], None, None, clock=lambda: FIXED_NOW)
    async with app.run_test(size=size) as pilot:
        await _wait(pilot, lambda: _settled(app), "every host to settle")
        await pilot.pause(FLUSH_DELAY * 4)
        app.event_log.clear()
        await prepare(app, pilot, lab)
        for screen in app.screen_stack:
            for box in screen.query(Input):
                box.cursor_blink = False
        await pilot.pause(FLUSH_DELAY * 4)
        # The tree, the diff panel and the log pace their redraws (up to 0.5 s apart): a
        # picture taken before they caught up shows the last drift in the table but not in
        # the tree's counts.
        paced = [app.query_one(HostTree), app.query_one(DiffPanel), app.query_one(EventLog)]
        await _wait(pilot, lambda: not any(w.pending for w in paced), "the paced widgets")
        await pilot.pause()
        out.write_text(app.export_screenshot(), encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


async def _live_event(app: VdiApp, pilot: Pilot[Any], lab: Lab) -> None:
    """Stop class-a-02 behind the platform's back; wait for the event and the drift."""
    vm = lab.vm("class-a-02")
    await asyncio.to_thread(lab.act, "hv-t1", vm.uuid, "destroy")
    log = app.query_one("#events", RichLog)
    # Read as one text: at 80 columns the log wraps its lines at the panel's width.
    await _wait(pilot, lambda: "drift confirmed: class-a-02" in " ".join(
        " ".join(ln.text.split()) for ln in log.lines), "the class-a-02 drift in the log")


async def _diff(app: VdiApp, pilot: Pilot[Any], lab: Lab) -> None:
    table = app.query_one("#vms", VmTable)
    table.move_cursor(row=table.get_row_index(_key(app, "class-a-04")))
    await pilot.pause()


async def _reconnect(app: VdiApp, pilot: Pilot[Any], lab: Lab) -> None:
    table = app.query_one("#vms", VmTable)
    # A VM of ssh-only: the demo's story, ssh without a key refused, with it fine, tcp refused.
    table.move_cursor(row=table.get_row_index(_key(app, "remote-ssh-01")))
    await pilot.pause()
    await pilot.press("c")
    await _wait(pilot, lambda: isinstance(app.screen, ReconnectScreen), "the reconnect screen")
    screen = app.screen
    assert isinstance(screen, ReconnectScreen)
    await _wait(pilot, lambda: all(u in screen.results for u in screen.uris), "the probes")


async def _confirm(app: VdiApp, pilot: Pilot[Any], lab: Lab) -> None:
    """Three VMs with a state drift and one only in libvirt marked; "sync status" chosen."""
    table = app.query_one("#vms", VmTable)
    table.mark(_key(app, n) for n in ("class-a-04", "office-11", "office-12", "stray-build"))
    table.move_cursor(row=table.get_row_index(_key(app, "office-12")))
    await pilot.pause()
    await pilot.press("a")
    await _wait(pilot, lambda: isinstance(app.screen, ActionMenuScreen), "the action menu")
    await pilot.press("enter")  # the first entry: sync status
    await _wait(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")


async def _help(app: VdiApp, pilot: Pilot[Any], lab: Lab) -> None:
    await pilot.press("question_mark")
    await _wait(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")


SHOTS = ("main-160x48", "main-80x24", "diff-160x48", "diff-80x24", "reconnect-160x48",
         "reconnect-80x24", "confirm-160x48", "confirm-80x24", "help-80x24")


async def main(out_dir: Path, only: tuple[str, ...] = SHOTS) -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    _pin_probe()
    out_dir.mkdir(parents=True, exist_ok=True)
    with Lab(load_default(), subnet=SUBNET) as lab, tempfile.TemporaryDirectory() as tmp:
        class_a_02 = lab.vm("class-a-02").uuid
        if "main-160x48" in only:
            await _shoot(lab, (160, 48), out_dir / "main-160x48.svg", _live_event)
            lab.act("hv-t1", class_a_02, "start")  # as the scenario has it, for the next one
        if "main-80x24" in only:
            await _shoot(lab, (80, 24), out_dir / "main-80x24.svg", _live_event)
            lab.act("hv-t1", class_a_02, "start")
        for size in ((160, 48), (80, 24)):
            at = f"{size[0]}x{size[1]}"
            if f"diff-{at}" in only:
                await _shoot(lab, size, out_dir / f"diff-{at}.svg", _diff)
            if f"reconnect-{at}" in only:
                await _shoot(lab, size, out_dir / f"reconnect-{at}.svg", _reconnect)
            if f"confirm-{at}" in only:  # nothing is sent: the picture is taken before the yes
                await _shoot(lab, size, out_dir / f"confirm-{at}.svg", _confirm,
                             audit_path=Path(tmp) / "audit.jsonl")
        if "help-80x24" in only:
            await _shoot(lab, (80, 24), out_dir / "help-80x24.svg", _help)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots",
                        help="directory for the SVG files (default: screenshots/)")
    parser.add_argument("--only", action="append", choices=SHOTS, metavar="NAME",
                        help=f"write only this picture (repeatable): {', '.join(SHOTS)}")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.out, tuple(args.only or SHOTS)))
    except KeyboardInterrupt:
        sys.exit(130)
