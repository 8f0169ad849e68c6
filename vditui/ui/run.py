"""Start the TUI: settings first (a password prompt happens before the screen takes over), then
the app; any problem found on the way is shown in the app, never as a traceback."""

from __future__ import annotations

from pathlib import Path

from vditui.config import ConfigError
from vditui.core.settings import EngineSettings
from vditui.launch import Options, resolve


def run_tui(options: Options) -> int:
    settings: EngineSettings | None = None
    warnings: list[str] = []
    problem: tuple[str, str, str] | None = None
    config_path: Path | None = options.lab.config_path if options.lab is not None else None
    profile_name = "default"
    try:
        start = resolve(options, interactive=True)
        settings, warnings = start.settings, list(start.warnings)
        config_path, profile_name = start.config_path, start.profile
    except ConfigError as exc:
        problem = ("Configuration problem", str(exc), config_fix(options.config))
    from vditui.ui.app import VdiApp

    app = VdiApp(settings, warnings, problem, config_path, profile_name)
    app.run()
    return app.return_code or 0


def config_fix(given: Path | None) -> str:
    """What to do about a configuration problem: fix the file that was given (``--config``),
    or create the default one."""
    if given is not None:
        return (f"Fix {given} (the line and key above say where), or pass another file with "
                "--config.")
    return ("Create ~/.config/vditui/config.toml with a [profiles.NAME] table (url, username, "
            "password_env), or pass --url and --user and set VDITUI_PASSWORD.")
