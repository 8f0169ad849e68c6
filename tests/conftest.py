"""The whole suite runs with HOME and the XDG directories in a temporary directory of its own,
set before any test module is imported: no test, and no vditui process a test starts, can read
or write the real user's config, logs, history or audit trail."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="vditui-test-home-"))
_REAL_HOME = os.environ.get("HOME", "")
os.environ["VDITUI_TEST_REAL_HOME"] = _REAL_HOME
os.environ["HOME"] = str(_HOME)
for _var, _sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                   ("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data"),
                   ("XDG_RUNTIME_DIR", "runtime")):
    (_HOME / _sub).mkdir(mode=0o700, exist_ok=True)
    os.environ[_var] = str(_HOME / _sub)


def pytest_unconfigure() -> None:
    shutil.rmtree(_HOME, ignore_errors=True)
