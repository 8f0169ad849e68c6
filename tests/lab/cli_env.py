"""What the lab tests that run ``vditui`` as a subprocess share: an environment of the test's
own (HOME and the XDG dirs under ``home``, so the user's config, logs, history and audit trail
are never touched; ``PYTHONPATH`` kept, so a worktree's run tests that worktree's code) and the
options that point a command at a lab."""

from __future__ import annotations

import os
from pathlib import Path

from vditui.lab.lab import Lab


def cli_env(home: Path, password: str | None = None, *, password_env: str = "VDITUI_PASSWORD",
            **extra: str) -> dict[str, str]:
    """The environment for ``vditui`` under ``home``; ``password`` in ``password_env`` when
    given; ``extra`` variables on top (e.g. ``VDITUI_LOG_LEVEL="DEBUG"``)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_STATE_HOME": str(home / "state"),
           "XDG_CACHE_HOME": str(home / "cache"), "XDG_DATA_HOME": str(home / "data"),
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", **extra}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if password is not None:
        env[password_env] = password
    return env


def lab_args(lab: Lab, url: str | None = None) -> list[str]:
    """``--url``, ``--user`` and the lab's URI templates, with short timeouts and no grace."""
    templates = [a for t in lab.uri_templates for a in ("--uri-template", t)]
    return ["--url", url or lab.vdi_url, "--user", lab.username, *templates,
            "--timeout", "2", "--grace", "0"]
