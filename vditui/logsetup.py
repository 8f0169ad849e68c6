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
import sys
import warnings
from pathlib import Path
from typing import Any

from vditui.core.safefile import UnsafeFileError, open_fd, private_dir
from vditui.core.uris import redact_uri

LEVEL_ENV = "VDITUI_LOG_LEVEL"
LIBVIRT_LOG_ENV = "LIBVIRT_LOG_OUTPUTS"
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


_off_reason = ""


def degraded() -> str:
    """Why logging is off (no log dir, a link or FIFO in place of the file, a full disk), in
    one line naming the file; "" while it works. For the faces to say once."""
    return _off_reason


def _say_off(reason: str) -> None:
    global _off_reason
    _off_reason = reason


class _PrivateFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file (and each file it rotates to) readable by its owner only (logs
    name the platform, hosts and VMs), never opened through a link or as a FIFO, whose
    failures (a full disk) are said once on stderr, in one line, instead of a traceback per
    record."""

    def _open(self) -> Any:
        fd = open_fd(Path(self.baseFilename), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600,
                     private=True)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:
        if _off_reason:
            return  # said once already; the rest are dropped quietly
        exc = sys.exc_info()[1]
        why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
        _say_off(f"{self.baseFilename}: cannot write the log ({why}); later log records "
                 "are dropped")
        with contextlib.suppress(Exception):  # Textual captures stderr while the TUI runs
            print(f"vditui: warning: {_off_reason}", file=sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        if not _off_reason:
            super().emit(record)


class _RedactingFormatter(logging.Formatter):
    """The log line with secrets inside URIs redacted (libvirt's messages quote the URI)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_uri(super().format(record))


def _libvirt_log_to(path: Path | None) -> None:
    """Send libvirt's own client log to ``path`` (or nowhere) instead of stderr: a failed TLS
    check logs a warning there that would land on the terminal behind the TUI. libvirt reads
    the variable once, when first imported; one the user set wins."""
    if LIBVIRT_LOG_ENV in os.environ:
        return
    usable = path is not None and ":" not in str(path) and " " not in str(path)
    if path is not None and usable:
        # libvirt opens the file by name, following links: made here first, safely (0600),
        # and a link or FIFO in its place sends libvirt's log nowhere instead.
        try:
            os.close(open_fd(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600,
                             private=True))
        except OSError:
            usable = False
    os.environ[LIBVIRT_LOG_ENV] = f"3:file:{path}" if usable else "4:file:/dev/null"


def setup_logging(level: int | None = None, directory: Path | None = None) -> Path | None:
    """Send every log record and warning to ``vditui.log``; nothing reaches stderr.

    ``level`` None means the level ``VDITUI_LOG_LEVEL`` names, else INFO. Returns the log
    file's path, or None when no log dir could be created (then records are dropped rather than
    printed, and :func:`degraded` says why)."""
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
    d = directory or log_dir()
    try:
        private_dir(d)
        path = d / "vditui.log"
        handler: logging.Handler = _PrivateFileHandler(
            path, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
        handler.setFormatter(_RedactingFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    except OSError as exc:
        where = path or d
        why = exc.strerror if exc.strerror and not isinstance(exc, UnsafeFileError) else exc
        _say_off(f"logging is off: {why}" if isinstance(exc, UnsafeFileError)
                 else f"logging is off: {where}: {why}")
        path = None
        handler = logging.NullHandler()
    root.addHandler(handler)
    _libvirt_log_to(path.with_name("libvirt-client.log") if path else None)
    # Without a handler of last resort, logging would print to stderr when none match.
    logging.lastResort = None
    if complaint:
        logging.getLogger("vditui").warning("%s; using %s", complaint,
                                            logging.getLevelName(level))
    return path
