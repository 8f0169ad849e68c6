"""A FIFO or a symlink planted in place of the audit trail (issue 21, "It follows planted
symlinks as root"): ``vditui act`` refuses at once with one line and sends nothing (it used to
block forever on the FIFO, deaf to signals); ``vditui audit`` neither follows nor chmods."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.cli_env import cli_env, lab_args
from vditui.lab.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]
VDITUI = str(Path(sys.executable).with_name("vditui"))
TARGET_TEXT = "someone else's file\n"


def vditui(home: Path, lab: Lab, *args: str, target: bool = True,
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VDITUI, *args, *(lab_args(lab) if target else [])],
                          env=cli_env(home, lab.password), cwd=home, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, check=False)


def posts(lab: Lab) -> dict[str, int]:
    assert lab.vdi is not None
    return {k: n for k, n in lab.vdi.requests.items() if k.startswith("POST ")
            and "login" not in k}


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_act_and_audit_refuse_a_planted_trail(lab: Lab, tmp_path: Path, kind: str) -> None:
    assert lab.vdi is not None
    lab.vdi.reset_counters()
    home = tmp_path / "home"
    state = home / "state" / "vditui"
    state.mkdir(parents=True, mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(TARGET_TEXT)
    elsewhere.chmod(0o644)
    trail = state / "audit.jsonl"
    if kind == "fifo":
        os.mkfifo(trail, 0o600)
    else:
        trail.symlink_to(elsewhere)
    act = vditui(home, lab, "act", "sync", "--vm", "office-11", "--yes")
    assert act.returncode == 2, act
    assert "Traceback" not in act.stderr
    assert "nothing was sent" in act.stderr and "audit.jsonl: is a " in act.stderr, act.stderr
    assert posts(lab) == {}
    audit = vditui(home, lab, "audit", target=False)
    assert audit.returncode == 2 and "audit.jsonl: is a " in audit.stderr, audit
    assert len(audit.stderr.strip().splitlines()) == 1
    assert elsewhere.read_text() == TARGET_TEXT
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o644
