"""One key table (vditui/ui/keys.py) and everything made from it: the app's bindings, the
footer, the help screen, the command palette and the README's key table. Each test fails when
one of them disagrees with the table."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from textual.binding import Binding
from textual.widgets import Static

from vditui.ui import keys
from vditui.ui.acting import Acting
from vditui.ui.app import VdiApp
from vditui.ui.screens.simple import HelpScreen

README = Path(__file__).resolve().parents[2] / "README.md"


def _app_bindings() -> list[Binding]:
    """Every binding the app declares itself (Textual's own App bindings aside)."""
    return [b for cls in VdiApp.__mro__ if cls.__module__.startswith("vditui")
            for b in vars(cls).get("BINDINGS", ()) if isinstance(b, Binding)]


def test_every_binding_comes_from_the_table_once():
    table = [(k.keys, k.action, k.short, bool(k.footer)) for k in keys.KEYS if k.action]
    declared = [(b.key, b.action, b.description, b.show) for b in _app_bindings()]
    assert sorted(declared) == sorted(table)
    assert len({k for ks, *_ in table for k in ks.split(",")}) == sum(
        len(ks.split(",")) for ks, *_ in table), "a key bound twice"
    for k in keys.KEYS:
        if k.action:
            assert callable(getattr(VdiApp, f"action_{k.action}", None)), k.action
        assert k.group in keys.GROUPS


def test_the_controllers_declare_no_keys_of_their_own():
    assert not getattr(Acting, "BINDINGS", None)


def test_the_readme_key_table_is_the_tables():
    text = README.read_text(encoding="utf-8")
    assert keys.START in text and keys.END in text
    assert keys.readme_section(text) == text, "run: python scripts/readme_keys.py"


async def test_footer_help_and_palette_follow_the_table():
    app = VdiApp(None, problem=("Test", "no platform here", ""))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        app.pop_screen()  # the main screen, under the problem screen
        await pilot.pause()
        shown = {b.binding.action for b in app.screen.active_bindings.values()
                 if b.binding.show and b.enabled}
        assert {k.action for k in keys.KEYS if k.footer} <= shown
        assert not shown & {k.action for k in keys.KEYS if k.action and not k.footer}

        palette = {c.title for c in app.get_system_commands(app.screen)}
        assert {k.palette for k in keys.KEYS if k.palette} <= palette

        app.push_screen(HelpScreen())
        await pilot.pause()
        body = app.screen.query_one("#help-body", Static)
        console = Console(width=300, file=io.StringIO(), record=True)
        console.print(body.content)
        text = console.export_text()
        for k in keys.KEYS:
            assert k.label in text and k.says in text, k.label
        for symbol, meaning in keys.LEGEND:
            assert symbol in text and meaning in text
        for group in keys.GROUPS:
            assert group in text
        # Over a dialog, the main screen's keys leave the footer.
        over = {b.binding.action for b in app.screen.active_bindings.values()
                if b.binding.show and b.enabled}
        assert not over & keys.MAIN_ONLY
