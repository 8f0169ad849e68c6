"""Logging goes to a file in the platformdirs log dir, never to the terminal behind the TUI."""

from __future__ import annotations

import logging
import logging.handlers
import warnings
from pathlib import Path

_done = False


def setup_logging(level: int = logging.INFO, directory: Path | None = None) -> Path | None:
    """Send every log record and warning to ``vditui.log``; nothing reaches stderr.

    Returns the log file's path, or None when no log dir could be created (then records are
    dropped rather than printed)."""
    global _done
    root = logging.getLogger()
    if _done:
        return None
    _done = True
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(level)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    from vditui.config import log_dir

    path: Path | None = None
    try:
        d = directory or log_dir()
        d.mkdir(parents=True, exist_ok=True)
        path = d / "vditui.log"
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    except OSError:
        handler = logging.NullHandler()
    root.addHandler(handler)
    # Without a handler of last resort, logging would print to stderr when none match.
    logging.lastResort = None
    return path
