"""What an import loads, each checked in a fresh interpreter.

The entry point builds its parser before it sets up logging; libvirt must not be loaded by
then, or its client log (failed TLS checks, as warnings) goes to stderr, behind the TUI, instead
of the file ``vditui.logsetup`` points it to (``LIBVIRT_LOG_OUTPUTS``).

The faces' contract (``vditui.core.events``) and the metrics built on it load without the
libvirt binding: a face that only listens (``watch``, ``serve``, a test with a fake engine)
must not pay for, or be broken by, the C library."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded(code: str, watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` are in ``sys.modules`` after running ``code`` in a new process."""
    probe = (f"import json, sys; {code}; "
             f"print(json.dumps(sorted(m for m in sys.modules if m in {watched!r})))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    names: list[str] = json.loads(r.stdout)
    return names


def test_building_the_parser_loads_neither_libvirt_nor_the_engine() -> None:
    code = "from vditui.cli import build_parser; build_parser()"
    assert loaded(code, ("libvirt", "vditui.core.engine", "vditui.core.virt", "textual")) == []


def test_the_contract_imports_without_libvirt() -> None:
    code = "import vditui.core.events, vditui.core.metrics"
    watched = ("libvirt", "libvirtmod", "vditui.core.virt", "vditui.core.session", "textual")
    assert loaded(code, watched) == []
