"""Every command that prints behaves in a pipe: ``vditui CMD | head -1`` ends quietly (no
traceback, no "Exception ignored") with the command's own status, or 141 (128 + SIGPIPE) when
its stdout closed before it was done; and a stdout closed before the first write gives 141."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.cli_env import cli_env, lab_args
from vditui.core import history_db
from vditui.core.exitcodes import ExitCode
from vditui.lab.lab import Lab
from vditui.lab.scenario import Scenario

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

VDITUI = str(Path(sys.executable).with_name("vditui"))
PIPE = ExitCode.PIPE_CLOSED


@pytest.fixture(scope="module")
def drift_lab(default_scenario: Scenario, subset: Any) -> Iterator[Lab]:
    lab = Lab(subset(default_scenario, ["ocloud", "hv-t1"], "one-drift"))
    try:
        yield lab.start()
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    # A history for `history` to read (empty: it says so in a line).
    history_db.connect(home / "state" / "vditui" / "history.sqlite3").close()
    return home


def head_1(home: Path, lab: Lab, args: list[str]) -> tuple[int, str, str]:
    """``vditui ARGS | head -1`` in bash: vditui's status, head's line, vditui's stderr."""
    platform = [] if args[0] in ("audit", "history") else lab_args(lab)
    script = ('"$@" 2>"$ERR" | head -1; echo "rc=${PIPESTATUS[0]}"')
    err = home / "stderr.txt"
    r = subprocess.run(["bash", "-c", script, "_", VDITUI, *args, *platform],
                       env={**cli_env(home, lab.password), "ERR": str(err)}, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=home)
    *lines, status = r.stdout.splitlines()
    return int(status.removeprefix("rc=")), "\n".join(lines), err.read_text()


def quiet(err: str) -> None:
    for word in ("Traceback", "Exception ignored", "BrokenPipe", "Broken pipe"):
        assert word not in err, err


@pytest.mark.parametrize(("args", "code"), [
    (["check"], ExitCode.DIFFERS),
    (["check", "--json"], ExitCode.DIFFERS),
    (["report", "--format", "md"], ExitCode.DIFFERS),
    (["report", "--format", "json"], ExitCode.DIFFERS),
    (["report", "--format", "csv"], ExitCode.DIFFERS),
    (["probe", "hv-t1"], ExitCode.OK),
    (["probe", "hv-t1", "--json"], ExitCode.OK),
    (["act", "start", "--dry-run"], ExitCode.OK),
    (["baseline"], ExitCode.FAILED),  # no terminal to ask on, no --yes: nothing written
    (["audit"], ExitCode.OK),
    (["history"], ExitCode.OK),
])
def test_a_printing_command_into_head_ends_quietly(home: Path, drift_lab: Lab,
                                                    args: list[str], code: int) -> None:
    status, line, err = head_1(home, drift_lab, args)
    assert line, f"{args}: nothing printed"
    assert status in (code, PIPE), (args, status, err)
    quiet(err)


def test_watch_into_head_stops_at_its_next_line(home: Path, drift_lab: Lab) -> None:
    # watch prints as things happen: it learns that head has gone at its next line, which
    # cutting a host brings; then it stops its engine and ends with 141, quietly.
    err = home / "watch-stderr.txt"
    with err.open("w") as ef:
        proc = subprocess.Popen([VDITUI, "watch", "--jsonl", *lab_args(drift_lab)],
                                env=cli_env(home, drift_lab.password), stdout=subprocess.PIPE,
                                stderr=ef, stdin=subprocess.DEVNULL, cwd=home)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # head -1 has its line and leaves
        assert first.startswith(b"{")
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            drift_lab.cut("hv-t1")
            time.sleep(1)
        try:
            assert proc.wait(10) == PIPE
        finally:
            if proc.poll() is None:
                proc.kill()
    quiet(err.read_text())


@pytest.mark.parametrize("args", [["check", "--json"], ["report", "--format", "csv"],
                                  ["audit"]])
def test_stdout_closed_before_the_first_write_gives_141(home: Path, drift_lab: Lab,
                                                        args: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        platform = [] if args[0] == "audit" else lab_args(drift_lab)
        r = subprocess.run([VDITUI, *args, *platform], env=cli_env(home, drift_lab.password),
                           stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
                           stdin=subprocess.DEVNULL, cwd=home)
    finally:
        os.close(write)
    assert r.returncode == PIPE, r.stderr
    quiet(r.stderr)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("args", [["watch", "--jsonl"], ["check"]])
def test_ctrl_c_and_sigterm_end_quietly_with_130(home: Path, drift_lab: Lab, args: list[str],
                                                 sig: signal.Signals) -> None:
    # check is caught in the middle of its pass (the platform slowed down), watch while it
    # follows the estate.
    drift_lab.set_delay(3000 if args[0] == "check" else 0)
    try:
        proc = subprocess.Popen([VDITUI, *args, *lab_args(drift_lab)],
                                env=cli_env(home, drift_lab.password), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=home,
                                text=True)
        time.sleep(2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        drift_lab.set_delay(0)
    assert proc.returncode == ExitCode.INTERRUPTED, (out, err)
    quiet(err)
    assert "Task was destroyed" not in err and "Error" not in err, err
