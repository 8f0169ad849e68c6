"""Where vditui's files are: the one dir-lookup function, and paths as operators type them."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "vditui"


def config_dir() -> Path:
    """The directory holding ``config.toml``; tests patch this one function."""
    return Path(platformdirs.user_config_dir(APP_NAME))


def default_config_path() -> Path:
    """The file read when ``--config`` is not given."""
    return config_dir() / "config.toml"


def log_dir() -> Path:
    """Where vditui writes its logs."""
    return Path(platformdirs.user_log_dir(APP_NAME))


def state_dir() -> Path:
    """Where vditui keeps what it must remember: the audit trail and the drift history."""
    return Path(platformdirs.user_state_dir(APP_NAME))


def display_path(path: Path) -> str:
    """``path`` with the home directory shown as ``~``, as operators type it."""
    try:
        return "~/" + path.expanduser().relative_to(Path.home()).as_posix()
    except (ValueError, RuntimeError):
        return str(path)
