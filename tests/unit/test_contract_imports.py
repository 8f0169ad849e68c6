"""The faces' contract (``vditui.core.events``) and the metrics built on it load without the
libvirt binding: a face that only listens (``watch``, ``serve``, a test with a fake engine)
must not pay for, or be broken by, the C library."""

from __future__ import annotations

import subprocess
import sys


def test_the_contract_imports_without_libvirt() -> None:
    code = ("import sys; import vditui.core.events, vditui.core.metrics; "
            "print(sorted(m for m in sys.modules if m in "
            "('libvirt', 'libvirtmod', 'vditui.core.virt', 'vditui.core.session', 'textual')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
