"""The entry point builds its parser before it sets up logging; libvirt must not be loaded by
then, or its client log (failed TLS checks, as warnings) goes to stderr, behind the TUI, instead
of the file ``vditui.logsetup`` points it to (``LIBVIRT_LOG_OUTPUTS``)."""

from __future__ import annotations

import subprocess
import sys


def test_building_the_parser_loads_neither_libvirt_nor_the_engine():
    code = ("import sys; from vditui.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m == 'libvirt' or m in "
            "('vditui.core.engine', 'vditui.core.virt', 'textual')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
