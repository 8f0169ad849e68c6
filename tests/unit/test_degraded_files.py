"""Degraded, said in one line (issue 21): ``vditui history`` reads a read-only copy of the
history; a log that cannot be written (a full disk) is one line on stderr, not a traceback per
record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vditui.core import history_db as hdb

ROOT = Path(__file__).resolve().parents[2]
VDITUI = str(Path(sys.executable).with_name("vditui"))


def env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "XDG_STATE_HOME": str(home / "state"), "XDG_CONFIG_HOME": str(home / "config"),
            "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"}


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs at ``tmp_path/ro``, made read-only by :func:`freeze`; unmounted after."""
    where = tmp_path / "ro"
    where.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)],
                          capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def freeze(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


def test_history_reads_a_read_only_copy(read_only_mount: Path) -> None:
    home = read_only_mount
    path = home / "state" / "vditui" / "history.sqlite3"
    db = hdb.connect(path)
    db.execute("INSERT INTO incident (platform, scope, name, cause, started) "
               "VALUES ('http://p', 'host', 'hv-7', 'refused', ?)", (time.time() - 60,))
    db.close()
    freeze(home)
    assert not os.access(path.parent, os.W_OK)
    done = subprocess.run([VDITUI, "history", "--json", "--since", "1h"], env=env(home),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert [r.get("name") or r.get("subject") for r in json.loads(done.stdout)] == ["hv-7"]


FULL_DISK = """
import logging, sys
from pathlib import Path
from vditui import logsetup
path = logsetup.setup_logging(level=logging.INFO, directory=Path(sys.argv[1]))
handler = logging.getLogger().handlers[0]
handler.stream = open("/dev/full", "w", buffering=1)  # every write: No space left on device
for i in range(15):
    logging.getLogger("vditui").warning("record %d", i)
print("done |", logsetup.degraded())
"""


def test_a_full_disk_is_one_line_not_a_traceback_per_record(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path / "log")],
                          capture_output=True, text=True, timeout=60, env=env(tmp_path),
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "Logging error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("vditui: warning: ")
    assert "vditui.log: cannot write the log (No space left on device)" in lines[0]
    assert done.stdout.strip().endswith("later log records are dropped")
