"""Opening the files vditui owns (the audit trail, the history, the log, the config) without
following a planted link and without blocking on a planted FIFO or device.

vditui often runs as root: a symlink in place of one of its files would make it append to, or
chmod, whatever the link points at, and a FIFO would block it forever. Every open here uses
``O_NOFOLLOW`` (a link is refused, not followed) and ``O_NONBLOCK`` (a FIFO without a peer
fails at once instead of waiting), then requires a regular file on the opened descriptor
(``fstat``) and only then clears ``O_NONBLOCK``. Modes are set with ``fchmod`` on that
descriptor, never by name. The directories holding them are made 0700 and must belong to the
user running vditui.

Every refusal is an :class:`UnsafeFileError` (an ``OSError``, so existing handlers catch it)
whose message names the path, what is wrong and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


class UnsafeFileError(OSError):
    """A file or directory vditui will not use as it stands; ``str()`` is one line naming the
    path, what is wrong and what to do."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unsafe file"

    @property
    def reason(self) -> str:
        """The message without the leading path, for callers that name the file themselves."""
        return str(self).split(": ", 1)[-1]


def describe(mode: int) -> str:
    """What kind of file ``mode`` (an ``st_mode``) is, in words."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _refusal(path: Path, what: str) -> UnsafeFileError:
    return UnsafeFileError(f"{path}: is {what}, not a regular file; vditui neither follows "
                           "links nor opens special files in place of its own: move it away")


def check_not_special(path: Path) -> None:
    """Raise :class:`UnsafeFileError` if ``path`` exists and is anything but a regular file
    (a symlink included); a missing path is fine. For files another library opens by name
    (SQLite's database, -wal and -shm files)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise _refusal(path, describe(st.st_mode))


def open_fd(path: Path, flags: int, mode: int = PRIVATE_FILE, *, private: bool = False) -> int:
    """``os.open(path, flags, mode)`` that refuses a symlink, a FIFO, a device or a directory
    with an :class:`UnsafeFileError` instead of following or blocking on it. ``private``: put
    the file back to ``mode`` (by descriptor) if someone widened it. Returns a blocking
    descriptor, closed on exec."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as exc:
        # ELOOP: the last component is a link; ENXIO: a FIFO with no reader, or a device with
        # nothing behind it; EISDIR/EWOULDBLOCK: a directory or a locked special file.
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EWOULDBLOCK,
                         errno.ENODEV):
            try:
                st = os.lstat(path)
            except OSError:
                raise exc from None
            if not stat.S_ISREG(st.st_mode):
                raise _refusal(path, describe(st.st_mode)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refusal(path, describe(st.st_mode))
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        if private and stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_text(path: Path, encoding: str = "utf-8", errors: str = "strict") -> str:
    """The text of the regular file at ``path`` (never through a link, never blocking);
    ``FileNotFoundError`` when missing. Line endings are kept as they are."""
    fd = open_fd(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        return f.read().decode(encoding, errors)


def read_bytes(path: Path) -> bytes:
    """The bytes of the regular file at ``path`` (never through a link, never blocking)."""
    fd = open_fd(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def private_dir(path: Path) -> Path:
    """Make ``path`` (and its missing parents) 0700 if missing, and check it: a real
    directory (not a link) owned by the user running vditui, that no one else can write to.
    Raises :class:`UnsafeFileError` naming the directory and what to do."""
    missing = [p for p in (path, *path.parents) if not os.path.lexists(p)]
    for p in reversed(missing):  # the ones vditui makes are private too (~/.local/state)
        with contextlib.suppress(FileExistsError):
            os.mkdir(p, PRIVATE_DIR)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFileError(f"{path}: is {describe(st.st_mode)}, not a directory; vditui "
                              "keeps its files in a directory of its own: move it away")
    if st.st_uid != os.geteuid():
        raise UnsafeFileError(f"{path}: belongs to user id {st.st_uid}, not to the user "
                              f"running vditui ({os.geteuid()}); move it away or chown it")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeFileError(f"{path}: other users can write to it (mode "
                              f"{stat.S_IMODE(st.st_mode):o}); run chmod 700 on it")
    return path
