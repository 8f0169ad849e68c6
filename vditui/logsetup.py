"""Logging goes to a file in the platformdirs log dir, never to the terminal behind the TUI.

The level is INFO unless ``VDITUI_LOG_LEVEL`` names another (``DEBUG``, ``WARNING``, ... or a
number). Even at DEBUG no secret is logged: the password, its MD5 and the platform's tokens
never reach a log call (tests/lab/test_security.py checks the files).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import warnings
from pathlib import Path
from typing import Any

LEVEL_ENV = "VDITUI_LOG_LEVEL"
_done = False


def level_from_env(default: int = logging.INFO) -> tuple[int, str]:
    """The level ``VDITUI_LOG_LEVEL`` asks for, and a complaint if it names none (else "")."""
    raw = os.environ.get(LEVEL_ENV, "").strip()
    if not raw:
        return default, ""
    if raw.isdigit():
        return int(raw), ""
    level = logging.getLevelName(raw.upper())
    if isinstance(level, int):
        return level, ""
    return default, f"{LEVEL_ENV}={raw!r} is not a log level (DEBUG, INFO, WARNING, ERROR)"


class _PrivateFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file (and each file it rotates to) readable by its owner only: logs
    name the platform, hosts and VMs."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with contextlib.suppress(OSError):  # a file left by an older version: private too
            os.fchmod(fd, 0o600)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)


def setup_logging(level: int | None = None, directory: Path | None = None) -> Path | None:
    """Send every log record and warning to ``vditui.log``; nothing reaches stderr.

    ``level`` None means the level ``VDITUI_LOG_LEVEL`` names, else INFO. Returns the log
    file's path, or None when no log dir could be created (then records are dropped rather than
    printed)."""
    global _done
    root = logging.getLogger()
    if _done:
        return None
    _done = True
    complaint = ""
    if level is None:
        level, complaint = level_from_env()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(level)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    from vditui.config.paths import log_dir

    path: Path | None = None
    try:
        d = directory or log_dir()
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = d / "vditui.log"
        handler: logging.Handler = _PrivateFileHandler(
            path, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    except OSError:
        handler = logging.NullHandler()
    root.addHandler(handler)
    # Without a handler of last resort, logging would print to stderr when none match.
    logging.lastResort = None
    if complaint:
        logging.getLogger("vditui").warning("%s; using %s", complaint,
                                            logging.getLevelName(level))
    return path
