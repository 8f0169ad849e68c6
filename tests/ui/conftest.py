"""Fixtures for the TUI tests: the app with a fixed clock over the scripted engine (``fake``,
``make_fake_app``) or, for the integration tests, over a lab (``lab``, ``make_app``), and
``settle``.

On the fake, the app is real and so are the comparison, the drift tracker and the events; only
the sources are made up (the lab's default scenario, see ``tests/ui/fake_lab.py``). On the lab,
nothing in vditui is mocked: real libvirtd processes behind fault proxies, the simulated VDI
platform. Helpers that a test awaits are handed out as fixtures (``settle``, ``wait_for``, ``ui``
for reading the screen), so no test imports this module by name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Input

from tests.live import live_hosts
from tests.ui.fake_lab import FIXED_NOW, FakeLab
from vditui.core.engine import EngineSettings
from vditui.core.fake_engine import FakeEngine
from vditui.core.settings import SessionSettings
from vditui.lab.lab import Lab
from vditui.lab.scenario import Scenario, load_default
from vditui.ui.app import VdiApp
from vditui.ui.widgets.host_tree import HostTree
from vditui.ui.widgets.vm_table import FLUSH_DELAY, VmTable

SETTLE_TIMEOUT = 10.0


@dataclass(frozen=True)
class StillSettings(EngineSettings):
    """Engine settings whose failed hosts are retried after an hour instead of 0.5 s.

    A refused host is otherwise retried with a short backoff; every retry flips it to
    "connecting" and back to "refused" (and its drift to resolved and back), so a screenshot
    could catch either. The snapshot tests want a still picture.
    """

    def session_settings(self) -> SessionSettings:
        return replace(super().session_settings(), min_backoff=3600.0, max_backoff=3600.0)


def settings_for(lab: Lab, cls: type[EngineSettings] = EngineSettings,
                 **overrides: Any) -> EngineSettings:
    """Settings reaching ``lab``; short connect timeout (loopback) and grace 0 (drift is
    confirmed at once, so cells and markers do not depend on timing). Hosts not served over
    tcp are reached as the demo reaches them."""
    base: dict[str, Any] = {"url": lab.vdi_url, "username": lab.username,
                            "password": lab.password, "uri_templates": lab.uri_templates,
                            "host_uris": {n: (u,) for n, u in lab.client_uris().items()},
                            "connect_timeout": 1.0, "grace": 0.0}
    base.update(overrides)
    return cls(**base)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """The default scenario on a random free loopback subnet, for one test."""
    with Lab(load_default().without_driver("qemu")) as running:
        yield running


@pytest.fixture
def start_lab() -> Iterator[Callable[..., Lab]]:
    """``start_lab(scenario, subnet=None)``: another lab, stopped after the test."""
    labs: list[Lab] = []

    def start(scenario: Scenario, subnet: str | None = None) -> Lab:
        lb = Lab(scenario, subnet=subnet).start()
        labs.append(lb)
        return lb

    yield start
    for lb in labs:
        lb.stop()


MakeApp = Callable[..., VdiApp]


def build_app(lab: Lab, *, config_path: Path | None = None, profile_name: str = "default",
              still: bool = False, **settings_overrides: Any) -> VdiApp:
    """The app on ``lab`` with the fixed clock; ``still`` retries failed hosts only after an
    hour (see :class:`StillSettings`)."""
    settings = settings_for(lab, StillSettings if still else EngineSettings,
                            **settings_overrides)
    return VdiApp(settings, [], None, config_path, profile_name, clock=lambda: FIXED_NOW)


@pytest.fixture
def make_app() -> MakeApp:
    """``make_app(lab, config_path=None, profile_name="default", still=False, **settings)``."""
    return build_app


@pytest.fixture
def fake() -> FakeLab:
    """The lab's default scenario (test-driver hosts) behind the scripted engine."""
    return FakeLab(now=FIXED_NOW)


def build_fake_app(fake: FakeLab, *, config_path: Path | None = None,
                   profile_name: str = "default", still: bool = False,
                   **settings_overrides: Any) -> VdiApp:
    """The app over ``fake`` with the fixed clock; settings as :func:`settings_for`'s. The fake
    never retries a failed host: it is always ``still`` (see :class:`StillSettings`)."""
    base: dict[str, Any] = {"url": fake.vdi_url, "username": fake.username,
                            "password": fake.password, "connect_timeout": 1.0, "grace": 0.0}
    base.update(settings_overrides)
    settings = EngineSettings(**base)
    return VdiApp(settings, [], None, config_path, profile_name, clock=lambda: FIXED_NOW,
                  engine_factory=fake.factory(settings.connect_timeout))


@pytest.fixture
def make_fake_app() -> Callable[..., VdiApp]:
    """``make_fake_app(fake, config_path=None, profile_name="default", **settings)``."""
    return build_fake_app


# --------------------------------------------------------------------------- waiting


async def _wait_for(pilot: Pilot[Any], predicate: Callable[[], object], what: str,
                    timeout: float = SETTLE_TIMEOUT) -> None:
    """Poll ``predicate`` (letting the app run) until true; fail naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.02)


def _settled(app: VdiApp) -> bool:
    """The engine is up, every host session has finished its first attempt, and the comparison
    the app holds already reflects every session's current state."""
    engine, snap = app.engine, app.snapshot
    if engine is None or snap is None or not snap.hosts or not snap.settled:
        return False
    if isinstance(engine, FakeEngine):  # it has no sessions: its last snapshot is the truth
        return snap is engine.last and app.vm_table.flushes > 0
    # The engine's live hosts, which no face reads (the test wants the truth).
    sessions = live_hosts(engine)
    if not all(s.settled for s in sessions.values()):
        return False
    views = {h.host.id: h.view for h in snap.comparison.hosts}
    for host_id, s in sessions.items():
        v = views.get(host_id)
        if v is None or v.state is not s.state or v.read_at != s.read_at:
            return False
    return app.query_one("#vms", VmTable).flushes > 0


async def _settle(app: VdiApp, pilot: Pilot[Any], timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait (at most ``timeout`` s) until the app shows a settled comparison, then let the last
    flush and repaint happen. Also stops the input cursors from blinking."""
    await _wait_for(pilot, lambda: _settled(app), "every host session to settle", timeout)
    await pilot.pause(FLUSH_DELAY * 4)
    await _wait_for(pilot, lambda: not display_pending(app), "the last updates on screen", 5)
    await pilot.pause()
    await pilot.pause()
    no_blink(app)


def display_pending(app: VdiApp) -> bool:
    """Something the engine sent is not on screen yet (queued in the bridge, or a widget's
    redraw still due)."""
    if app.bridge is not None and app.bridge.pending:
        return True
    return any(w.pending for w in (app.vm_table, app.event_log, app.host_tree, app.diff_panel))


def no_blink(app: VdiApp) -> None:
    for box in app.screen.query(Input):
        box.cursor_blink = False
    if app.screen is not app.screen_stack[0]:
        for box in app.screen_stack[0].query(Input):
            box.cursor_blink = False


@pytest.fixture
def settle() -> Callable[..., Awaitable[None]]:
    """``await settle(app, pilot)``."""
    return _settle


@pytest.fixture
def wait_for() -> Callable[..., Awaitable[None]]:
    """``await wait_for(pilot, predicate, what, timeout=10)``."""
    return _wait_for


# --------------------------------------------------------------------------- reading the screen


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def key_of(app: VdiApp, name: str, host: str | None = None) -> str:
    """The table key of the (one) VM called ``name`` (on platform host ``host``)."""
    assert app.comparison is not None
    names = {h.host.id: h.host.name for h in app.comparison.hosts}
    keys = [r.key for r in app.comparison.vms if r.name == name
            and (host is None or names.get(r.host_id) == host)]
    assert len(keys) == 1, f"{name}: {len(keys)} rows"
    return keys[0]


def row_cells(app: VdiApp, name: str) -> dict[str, str]:
    """The VM's cells as the table shows them, by column key (name, host, vdi, virt, ...)."""
    table = app.query_one("#vms", VmTable)
    key = key_of(app, name)
    cols = [str(c.key.value) for c in table.ordered_columns]
    return dict(zip(cols, (plain(c) for c in table.get_row(key)), strict=True))


def table_names(app: VdiApp) -> list[str]:
    """VM names in the order the table shows them."""
    table = app.query_one("#vms", VmTable)
    return [plain(table.get_row_at(i)[0]) for i in range(table.row_count)]


def tree_labels(app: VdiApp) -> dict[str, list[str]]:
    """Pool label -> its host labels, as the tree shows them."""
    tree = app.query_one("#hosts", HostTree)
    return {str(p.label): [str(h.label) for h in p.children] for p in tree.root.children}


def host_label(app: VdiApp, host: str) -> str:
    for hosts in tree_labels(app).values():
        for label in hosts:
            if label.split(" ", 1)[0] == host:
                return label
    raise AssertionError(f"no host {host!r} in the tree: {tree_labels(app)}")


def notifications(app: VdiApp) -> list[tuple[str, str]]:
    """(severity, message) of the notifications raised and not yet expired."""
    return [(n.severity, n.message) for n in app._notifications]


async def to_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking lab call without stalling the app's loop."""
    return await asyncio.to_thread(fn, *args)


class Ui:
    """The screen-reading helpers, handed to tests by the ``ui`` fixture."""

    FIXED_NOW = FIXED_NOW
    plain = staticmethod(plain)
    key_of = staticmethod(key_of)
    row_cells = staticmethod(row_cells)
    table_names = staticmethod(table_names)
    tree_labels = staticmethod(tree_labels)
    host_label = staticmethod(host_label)
    notifications = staticmethod(notifications)
    to_thread = staticmethod(to_thread)
    no_blink = staticmethod(no_blink)
    display_pending = staticmethod(display_pending)
    settle = staticmethod(_settle)
    wait_for = staticmethod(_wait_for)


@pytest.fixture
def ui() -> type[Ui]:
    return Ui
