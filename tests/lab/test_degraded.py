"""Degraded is said, never silent (issue 21, "It degrades silently"): ``check`` with a corrupt
history or no log dir says so once on stderr; ``serve`` whose history is locked at start says
so, and records to it once the lock goes; ``serve`` listening beyond loopback warns."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.lab.cli_env import cli_env, lab_args
from vditui.core import history_db as hdb
from vditui.lab.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]
VDITUI = str(Path(sys.executable).with_name("vditui"))


def run(home: Path, lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VDITUI, *args, *lab_args(lab)], env=cli_env(home, lab.password),
                          cwd=home, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("vditui: warning: ")]


def test_check_says_once_that_history_and_logging_are_off(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    state = home / "state" / "vditui"
    state.mkdir(parents=True, mode=0o700)
    (state / "history.sqlite3").write_bytes(b"not a database, " * 512)
    (state / "log").write_text("a file where the log dir belongs\n")
    done = run(home, lab, "check")
    assert done.returncode in (0, 1, 2)
    assert "Traceback" not in done.stderr, done.stderr
    said = warnings_of(done.stderr)
    history = [w for w in said if "history is off" in w]
    logging_ = [w for w in said if "logging is off" in w]
    assert len(history) == 1 and "history.sqlite3: not a vditui history" in history[0], said
    assert len(logging_) == 1 and str(state / "log") in logging_[0], said


class Serve:
    def __init__(self, home: Path, lab: Lab, listen: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [VDITUI, "serve", "--listen", listen, *lab_args(lab)],
            env=cli_env(home, lab.password), cwd=home, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        return "".join(self.err)


def test_serve_records_once_a_locked_history_is_free(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = home / "state" / "vditui" / "history.sqlite3"
    hdb.connect(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holding the history, as in the issue
    serve = Serve(home, lab, "0.0.0.0:0")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("history is off" in e for e in serve.err):
            time.sleep(0.2)
        assert any("history is off" in e and "locked" in e for e in serve.err), serve.err
        time.sleep(5 - min(5.0, time.monotonic() - (deadline - 30)))
        holder.execute("ROLLBACK")
        holder.close()
        reader = hdb.connect_readonly(path)
        rows: list[hdb.DriftEpisode] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not rows:
            time.sleep(0.5)
            rows = hdb.drifts(reader, platform=lab.vdi_url)
        reader.close()
        assert rows, "serve never recorded to the history once its lock went"
    finally:
        err = serve.stop()
    assert "Traceback" not in err, err
    beyond = [w for w in warnings_of(err) if "reachable from other machines" in w]
    assert len(beyond) == 1, err


def test_serve_on_loopback_does_not_warn(lab: Lab, tmp_path: Path) -> None:
    serve = Serve(tmp_path / "home", lab, "127.0.0.1:0")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not serve.err:
        time.sleep(0.2)
    time.sleep(1)
    err = serve.stop()
    assert "serving http://127.0.0.1:" in err
    assert warnings_of(err) == [], err
