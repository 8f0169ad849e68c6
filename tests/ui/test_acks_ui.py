"""Acknowledged drift in the TUI, against the lab: dimmed with its reason in the VM table and
the diff panel, not counted in the host tree; the `k` key asks why and until when, saves the
rule into the config file with its comments kept, and applies it live."""

from __future__ import annotations

import io
import stat
from datetime import date

from rich.console import Console
from rich.text import Text

from vditui.core.acks import AckRule
from vditui.core.models import DriftKind
from vditui.ui.app import VdiApp
from vditui.ui.keys import markdown
from vditui.ui.screens.ack import AckScreen
from vditui.ui.widgets.diff_panel import DiffPanel
from vditui.ui.widgets.vm_table import VmTable

REASON = "classroom image pinned on purpose"
CONFIG = """\
# the team's config: keep this comment
default_profile = "lab"

[profiles.lab]
grace = 0   # the lab's drift is there from the start
"""


def panel_text(app: VdiApp) -> str:
    console = Console(width=200, record=True, no_color=True, file=io.StringIO())
    console.print(app.query_one("#diff", DiffPanel).content)
    return console.export_text()


def select(app: VdiApp, key: str) -> None:
    table = app.query_one("#vms", VmTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(key))


async def test_acknowledged_drift_is_dimmed_with_its_reason_and_not_counted(
        fake, make_fake_app, settle, wait_for, ui):
    rule = AckRule(REASON, vm="class-a-04", host="hv-t1", kind=DriftKind.STATE,
                   expires=date(2999, 12, 31))
    app = make_fake_app(fake, ack=(rule,))
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        cells = ui.row_cells(app, "class-a-04")
        # Still shown, still differing (the ≠ marks), but dimmed and said in words (NO_COLOR).
        assert (cells["drift"], cells["vdi"], cells["virt"]) == (
            f"~ state: {REASON}", "running ≠", "shutoff ≠")
        drift = app.query_one("#vms", VmTable).get_row(ui.key_of(app, "class-a-04"))[1]
        assert isinstance(drift, Text) and drift.style == "dim"
        assert ui.row_cells(app, "class-b-02")["drift"] == "! vCPU"  # other drifts unchanged
        # hv-t1's only drift is acknowledged: no count on the host, one fewer on its pool.
        assert "!" not in ui.host_label(app, "hv-t1")
        select(app, ui.key_of(app, "class-a-04"))
        await wait_for(pilot, lambda: "acknowledged" in panel_text(app), "the diff panel")
        text = panel_text(app)
        assert "~ state: platform says running, libvirt says shutoff" in text
        assert f"acknowledged: {REASON} (until 2999-12-31)" in text


async def test_k_asks_why_and_until_when_then_saves_and_applies_the_rule(
        fake, make_fake_app, settle, wait_for, ui, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    app = make_fake_app(fake, config_path=path, profile_name="lab")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        key = ui.key_of(app, "class-b-02")
        assert ui.row_cells(app, "class-b-02")["drift"] == "! vCPU"
        assert ui.host_label(app, "hv-t2").endswith(" !3")  # vCPU, memory, only in VDI
        select(app, key)
        await pilot.pause()
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, AckScreen), "the ack screen")
        # No reason: refused, the screen stays.
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, AckScreen)
        assert "a reason is required" in str(app.screen.query_one("#ack-error").render())
        await pilot.press(*"pinned", "enter", *"2027-13-01", "enter")
        await pilot.pause()
        assert isinstance(app.screen, AckScreen)
        assert "not a date: write it as YYYY-MM-DD" in str(
            app.screen.query_one("#ack-error").render())
        await pilot.press(*["backspace"] * 10, *"2999-01-31", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, AckScreen), "the screen closed")
        await wait_for(pilot, lambda: ui.row_cells(app, "class-b-02")["drift"]
                       == "~ vCPU: pinned", "class-b-02 acknowledged live")
        text = path.read_text()
        assert text.startswith(CONFIG)  # the comments and layout as they were
        assert text[len(CONFIG):] == (
            '\n[[profiles.lab.ack]]\n# acknowledged in vditui, 2025-11-24\n'
            'vm = "class-b-02"\nhost = "hv-t2"\nkind = "vcpu"\nreason = "pinned"\n'
            "expires = 2999-01-31\n")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # The tree is redrawn a few times a second: its count goes down on the next one.
        await wait_for(pilot, lambda: ui.host_label(app, "hv-t2").endswith(" !2"),
                       "hv-t2's count without class-b-02's vCPU drift")
        assert ("information", "acknowledged class-b-02 (vcpu); saved in " + str(path)) in \
            ui.notifications(app)
        # The key says so on a VM whose drift is acknowledged already.
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, AckScreen)


def test_k_is_in_the_help():
    assert "| k | acknowledge the selected VM's drift" in markdown()
    # The app's bindings are its own and its bases' (Textual merges them along the MRO).
    bindings = [b for cls in VdiApp.__mro__ for b in vars(cls).get("BINDINGS", ())]
    (binding,) = [b for b in bindings if getattr(b, "key", None) == "k"]
    assert binding.action == "acknowledge"
