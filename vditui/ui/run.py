"""Start the TUI: settings first (a password prompt happens before the screen takes over), then
the app; any problem found on the way is shown in the app, never as a traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

from vditui.config import ConfigError, default_config_path


def run_tui(args: argparse.Namespace) -> int:
    from vditui.headless import build_settings

    lab = None
    settings, warnings, problem = None, [], None
    config_path: Path | None = None
    profile_name = "default"
    try:
        if getattr(args, "demo", False):
            from vditui.demo import start_demo

            lab = start_demo(args, chaos=1.0)
            config_path = lab.workdir / "demo-config.toml"
        try:
            settings, warnings = build_settings(args, interactive=True)
            if config_path is None:
                from vditui.headless import load_profile

                profile, config = load_profile(args)
                config_path = Path(args.config) if getattr(args, "config", None) else (
                    config.path if config.found else default_config_path())
                profile_name = profile.name
        except ConfigError as exc:
            problem = ("Configuration problem", str(exc),
                       "Create ~/.config/vditui/config.toml with a [profiles.NAME] table "
                       "(url, username, password_env), or pass --url and --user and set "
                       "VDITUI_PASSWORD.")
        from vditui.ui.app import VdiApp

        app = VdiApp(settings, warnings, problem, config_path, profile_name)
        app.run()
        return app.return_code or 0
    finally:
        if lab is not None:
            lab.stop()
