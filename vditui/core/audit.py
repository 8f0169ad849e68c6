"""The audit trail of actions: one JSON object per line, appended, in a file only its owner may
read (mode 0600).

Each action writes two lines, tied by ``action_id``: ``"event": "request"`` before anything is
sent (what will be sent, to which VMs, force or not, and what was refused and why: if vditui
dies mid-action the trail still says what it was about to do), and ``"event": "outcome"`` at the
end, on an interruption too (the platform's answers, every VM's final phase and message). Both
carry the time, the platform URL and the user; never the password or the token (the engine
scrubs every line with the platform client's own scrubber before it is written). A line is on
disk (written whole, then fsync'ed) before the request is sent; a line that cannot be written
whole is removed again, and then nothing is sent.

Plain functions doing blocking file I/O: the engine calls them in a thread.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vditui.core import present
from vditui.core.safefile import open_fd, private_dir, read_text

MODE = 0o600


def now_iso() -> str:
    """The current time as the trail writes it: RFC 3339 with the offset, to the millisecond
    (:func:`vditui.core.present.timestamp`, the one format of every face)."""
    return present.timestamp(time.time(), ms=True)


def to_line(record: dict[str, Any]) -> str:
    """One record as its line (no newline)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def append(path: Path, line: str) -> None:
    """Append ``line`` to the trail, whole and on disk, or not at all: creating it (and its
    directory, 0700) if need be. The file is created 0600 and put back to 0600 if someone
    widened it; a link, FIFO or device in its place is an `UnsafeFileError` (see
    :mod:`vditui.core.safefile`), never followed. An OSError when the line could not be
    written whole (a full disk): what was written of it is removed again, so the trail never
    holds half a line."""
    private_dir(path.parent)
    fd = open_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, MODE, private=True)
    try:
        _append_whole(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def _append_whole(fd: int, data: bytes) -> None:
    # Under the file's lock: another vditui (another platform) appending meanwhile would
    # otherwise interleave with this line, or be cut by its rollback.
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        before = os.fstat(fd).st_size
        try:
            done = 0
            while done < len(data):  # os.write may write part of it (a nearly full disk)
                n = os.write(fd, data[done:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += n
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, before)
                os.fsync(fd)
                undone = "the part written was removed"
            except OSError:
                undone = f"the trail may end in a partial line (at byte {before})"
            raise OSError(exc.errno, f"{exc.strerror or exc}; {undone}") from None
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class Trail:
    """What :func:`read` found: the records in order, and the lines it could not read."""

    records: tuple[dict[str, Any], ...]
    bad_lines: tuple[int, ...] = ()


def read(path: Path, since: datetime | None = None) -> Trail:
    """The trail's records (at or after ``since`` when given); a missing file is empty. Lines
    that are not a JSON object are counted, not fatal: a trail cut short by a crash still
    reads. Read-only: the file is neither created nor chmodded, and never read through a
    link."""
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    try:
        text = read_text(path, errors="replace")
    except FileNotFoundError:
        return Trail(())
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            bad.append(n)
            continue
        if not isinstance(rec, dict):
            bad.append(n)
            continue
        if since is not None:
            at = parse_time(rec.get("time"))
            if at is None or at < since:
                continue
        records.append(rec)
    return Trail(tuple(records), tuple(bad))


def parse_time(value: object) -> datetime | None:
    """A record's ``time`` as an aware datetime, None if it has none that reads."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def actions(records: tuple[dict[str, Any], ...]) -> Iterator[dict[str, Any]]:
    """One dict per action: its request line merged with its outcome line (by ``action_id``),
    in the order the requests were made; an outcome without its request stands alone, and a
    request without an outcome (vditui stopped mid-action) has ``outcome`` None."""
    order: list[str] = []
    merged: dict[str, dict[str, Any]] = {}
    for rec in records:
        aid = str(rec.get("action_id", ""))
        if aid not in merged:
            order.append(aid)
            merged[aid] = {"action_id": aid, "request": None, "outcome": None}
        kind = "outcome" if rec.get("event") == "outcome" else "request"
        merged[aid][kind] = rec
    for aid in order:
        yield merged[aid]
