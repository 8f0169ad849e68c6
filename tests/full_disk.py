"""A disk that is full but for 100 bytes, for the audit trail's tests (a unit test and a lab
test share it): a 64 KiB tmpfs mounted for the test, unmounted after."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FREE = 100


@contextlib.contextmanager
def nearly_full_trail(where: Path) -> Iterator[tuple[Path, bytes]]:
    """Mount a 64 KiB tmpfs at ``where`` holding ``audit.jsonl``, one earlier line ending
    :data:`FREE` bytes short of a page, with every other page taken (tmpfs allocates whole
    pages): a longer line can only be written short. Yields (the trail, its content); skips
    the test where mount is not allowed."""
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs",
                        str(where)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        trail = where / "audit.jsonl"
        head, tail = b'{"event":"outcome","pad":"', b'"}\n'
        content = head + b"x" * (4096 - FREE - len(head) - len(tail)) + tail
        trail.write_bytes(content)
        trail.chmod(0o600)
        fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) == 4096:
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield trail, content
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
