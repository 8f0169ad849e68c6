"""At most one action at a time per platform (URL and user), across every vditui process on
this machine: a lock file in the state directory, held from the re-check to the outcome line.

``fcntl.flock`` on a file opened without following links: the kernel lets go when the holder
exits, however it exits, so a crash never leaves a stale lock behind. The holder writes who it
is (pid, host, start time, action) into the file, so a second ``vditui act`` or the TUI can say
who holds it. The file is never removed: removing a lock file while another process has it
open lets a third lock a new file of the same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import socket
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from vditui.core.actions import ActionError

MODE = 0o600
WAIT_POLL = 0.2
"""Seconds between tries while waiting for the lock (``--wait``): a poll, not a blocking
flock, so waiting stays cancellable (Ctrl-C) and holds no thread."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a platform's action lock, as the holder wrote it."""

    pid: int
    host: str
    started: str
    action: str

    def describe(self) -> str:
        """``pid 1234 on ws-3 since 2026-12-08T01:02:03.000Z (start office-12)``."""
        return f"pid {self.pid} on {self.host} since {self.started} ({self.action})"


class ActionLockBusy(ActionError):
    """Another action on the same platform is running (in this process or another one)."""

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


def lock_path(directory: Path, url: str, user: str) -> Path:
    """The lock file of the platform ``url`` as ``user``, in ``directory``."""
    key = hashlib.sha256(f"{url.rstrip('/')}\n{user}".encode()).hexdigest()[:16]
    return directory / f"act-{key}.lock"


def _open(path: Path) -> int:
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_NONBLOCK: a FIFO planted in its place must not hold the open.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                 MODE)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if stat.S_IMODE(st.st_mode) != MODE:
            os.fchmod(fd, MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_holder(path: Path) -> Holder | None:
    """Who holds the lock at ``path`` as its file says; None when it says nothing readable
    (free, or the holder has not written yet)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        doc = json.loads(raw)
        return Holder(int(doc["pid"]), str(doc["host"]), str(doc["started"]),
                      str(doc["action"]))
    except (ValueError, KeyError, TypeError):
        return None


class ActionLock:
    """One platform's action lock (see the module's docstring). Blocking file calls, each
    quick (a non-blocking flock): :func:`held` calls them from the event loop's threads."""

    def __init__(self, directory: Path, url: str, user: str) -> None:
        self.path = lock_path(directory, url, user)
        self.url = url
        self._fd: int | None = None

    def try_acquire(self, holder: Holder) -> bool:
        """Take the lock and write ``holder`` into it; False if someone else holds it. An
        OSError when the file cannot be opened (an ActionError names it)."""
        fd = _open(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        try:
            doc = {"pid": holder.pid, "host": holder.host, "started": holder.started,
                   "action": holder.action, "platform": self.url}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(doc).encode(), 0)
        except OSError:
            pass  # the lock is what matters; the note only helps the next one say who
        self._fd = fd
        return True

    def release(self) -> None:
        """Let go (idempotent). The note is emptied first, so nobody reads a gone holder."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor releases the flock

    def busy(self, waiting: bool = False) -> ActionLockBusy:
        """The refusal to give while someone else holds it (``waiting``: what to say while
        waiting for it instead)."""
        holder = read_holder(self.path)
        who = holder.describe() if holder is not None else "another vditui (it has not said who)"
        if waiting:
            return ActionLockBusy(f"waiting for another action on {self.url} to end: {who}",
                                  holder)
        return ActionLockBusy(f"another action on {self.url} is running: {who}; nothing sent",
                              holder)


@contextlib.asynccontextmanager
async def held(directory: Path, url: str, user: str, holder: Holder, *, wait: bool = False,
               on_wait: Callable[[ActionLockBusy], None] | None = None) -> AsyncIterator[None]:
    """Hold the platform's action lock for the body. Without ``wait``, raise
    :class:`ActionLockBusy` (naming the holder) if another action holds it; with ``wait``, try
    again every :data:`WAIT_POLL` seconds (``on_wait`` is told once who is waited for). An
    ActionError when the lock file cannot be opened."""
    lock = ActionLock(directory, url, user)
    told = False
    while True:
        attempt = asyncio.ensure_future(asyncio.to_thread(lock.try_acquire, holder))
        try:
            got = await asyncio.shield(attempt)
        except asyncio.CancelledError:
            # The thread goes on: whatever it took is let go once it is done.
            attempt.add_done_callback(lambda _: lock.release())
            raise
        except OSError as exc:
            raise ActionError(f"cannot take the action lock {lock.path}: "
                              f"{exc.strerror or exc}; nothing sent") from None
        if got:
            break
        if not wait:
            raise lock.busy()
        if not told and on_wait is not None:
            on_wait(lock.busy(waiting=True))
            told = True
        await asyncio.sleep(WAIT_POLL)
    try:
        yield
    finally:
        lock.release()


def this_process(action: str, started: str) -> Holder:
    """The holder note of this process for ``action``."""
    return Holder(os.getpid(), socket.gethostname(), started, action)
