"""An unhandled exception in the TUI: the report on the terminal names the error and never shows
local variables (Textual's default report does, and they can hold the password or token)."""

from __future__ import annotations

import pytest

from vditui.ui.app import VdiApp

SECRET = "hunter2-not-on-screen"


class CrashingApp(VdiApp):
    def action_crash(self) -> None:
        password = SECRET  # a local, as in any frame that handled a credential
        raise RuntimeError(f"boom after {len(password)} characters")


async def test_crash_report_has_no_locals(capsys: pytest.CaptureFixture[str]) -> None:
    app = CrashingApp(None, problem=("Test", "no platform in this test", ""))
    with pytest.raises(RuntimeError, match="boom after 21 characters"):
        async with app.run_test() as pilot:
            await pilot.pause()
            app.call_later(app.action_crash)  # raised inside the app's message loop
            await pilot.pause()
    assert app.return_code == 1
    text = capsys.readouterr().err  # the report Textual prints once the screen is gone
    assert "RuntimeError" in text and "boom after 21 characters" in text
    assert SECRET not in text
