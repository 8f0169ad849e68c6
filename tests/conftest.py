"""The whole suite runs with HOME and the XDG directories in a temporary directory of its own,
set before any test module is imported: no test, and no vditui process a test starts, can read
or write the real user's config, logs, history or audit trail."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="vditui-test-home-"))
_REAL_HOME = os.environ.get("HOME", "")
os.environ["VDITUI_TEST_REAL_HOME"] = _REAL_HOME
# The real user's vditui dirs, where platformdirs would put them (XDG variables as they were):
# tests/unit/test_isolation.py checks a run leaves them as they were.
_REAL_DIRS = [Path(os.environ.get(var) or Path(_REAL_HOME, *default)) / "vditui"
              for var, default in (("XDG_CONFIG_HOME", (".config",)),
                                   ("XDG_STATE_HOME", (".local", "state")))] if _REAL_HOME else []
os.environ["VDITUI_TEST_REAL_DIRS"] = os.pathsep.join(map(str, _REAL_DIRS))
os.environ["HOME"] = str(_HOME)
for _var, _sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                   ("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data"),
                   ("XDG_RUNTIME_DIR", "runtime")):
    (_HOME / _sub).mkdir(mode=0o700, exist_ok=True)
    os.environ[_var] = str(_HOME / _sub)


def _fingerprint() -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for d in _REAL_DIRS:
        if d.is_dir():
            for f in d.rglob("*"):
                if f.is_file() and not f.is_symlink():
                    st = f.stat()
                    out[str(f)] = (st.st_size, st.st_mtime_ns)
    return out


_REAL_BEFORE = _fingerprint()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Say which of the real user's vditui files changed during the run. Said, not failed:
    a vditui the user runs meanwhile (a demo, serve) changes them too; the tests that fail
    are in tests/unit/test_isolation.py."""
    changed = sorted({name for name, _ in set(_fingerprint().items())
                      ^ set(_REAL_BEFORE.items())})
    if changed:
        print(f"\nnote: the real user's vditui files changed during the run (by the tests, or "
              f"by a vditui running meanwhile): {', '.join(changed[:10])}")


def pytest_unconfigure() -> None:
    shutil.rmtree(_HOME, ignore_errors=True)
