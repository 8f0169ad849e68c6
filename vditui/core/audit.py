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
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MODE = 0o600


def now_iso() -> str:
    """The current time as the trail writes it: ISO 8601, UTC, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_line(record: dict[str, Any]) -> str:
    """One record as its line (no newline)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def append(path: Path, line: str) -> None:
    """Append ``line`` to the trail, whole and on disk, or not at all: creating it (and its
    directory, 0700) if need be. The file is created 0600 and put back to 0600 if someone
    widened it. An OSError when the line could not be written whole (a full disk): what was
    written of it is removed again, so the trail never holds half a line."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != MODE:
            os.fchmod(fd, MODE)
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
    reads."""
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
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


_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> datetime:
    """``--since``: a duration back from now (``30m``, ``2h``, ``7d``, ``1w``) or an ISO date
    or time (``2026-12-01``, ``2026-12-01T08:00``, local time unless it says its zone).
    Raises ValueError with what is expected."""
    m = _AGO.match(text)
    if m:
        ago = float(m.group(1)) * _UNIT[m.group(2)]
        return datetime.fromtimestamp(time.time() if now is None else now, UTC) \
            - timedelta(seconds=ago)
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a duration like 30m, 2h, 7d or a date "
                         "like 2026-12-01 or 2026-12-01T08:00") from None
    return at if at.tzinfo is not None else at.astimezone()


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
