"""The suite never touches the real user's files: HOME and the XDG dirs point to a temporary
directory (tests/conftest.py), so vditui's own paths, and those of every vditui a test starts,
are under it; and the real user's vditui dirs are the same at the end of the run as at its
start (a fingerprint taken when this module is collected, compared by the last test here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vditui.config.paths import config_dir, state_dir
from vditui.launch import audit_path, history_path

REAL_DIRS = [Path(p) for p in os.environ.get("VDITUI_TEST_REAL_DIRS", "").split(os.pathsep) if p]


def fingerprint(dirs: list[Path]) -> dict[str, tuple[int, int]]:
    """Every file under ``dirs``: its size and modification time (ns)."""
    out: dict[str, tuple[int, int]] = {}
    for d in dirs:
        if d.is_dir():
            for f in d.rglob("*"):
                # Logs: any vditui the user runs meanwhile appends to them.
                if f.is_file() and not f.is_symlink() and "log" not in f.relative_to(d).parts:
                    st = f.stat()
                    out[str(f)] = (st.st_size, st.st_mtime_ns)
    return out


BEFORE = fingerprint(REAL_DIRS)


def test_vditui_s_own_paths_are_under_the_test_home() -> None:
    home = Path(os.environ["HOME"])
    real = os.environ.get("VDITUI_TEST_REAL_HOME", "")
    assert real and Path(real) != home
    for p in (config_dir(), state_dir(), audit_path(), history_path(), audit_path(demo=True),
              history_path(demo=True)):
        assert p.is_relative_to(home), p
    assert REAL_DIRS and not any(d.is_relative_to(home) for d in REAL_DIRS)


def test_a_vditui_started_by_a_test_writes_under_the_test_home(tmp_path: Path) -> None:
    code = "from vditui.launch import audit_path; print(audit_path())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert Path(r.stdout.strip()).is_relative_to(Path(os.environ["HOME"])), r


@pytest.mark.trylast
def test_the_real_user_s_config_and_state_are_untouched_so_far() -> None:
    # Run last in this file; in a whole run of the suite, test files after this one are
    # checked by the same comparison at session end (tests/conftest.py).
    assert fingerprint(REAL_DIRS) == BEFORE
