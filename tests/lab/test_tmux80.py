"""The demo in a real terminal: tmux at 80x24, read as an operator would. Without a key the
header says how many drifts are confirmed and which hosts are down; the confirmation shows its
Send button; ctrl+c leaves within a few seconds, and no process of the demo (its libvirtd
daemons, the platform) is left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.cli_env import cli_env

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180),
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")]

SESSION = f"vditui-t80-{os.getpid()}"


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _screen() -> str:
    return _tmux("capture-pane", "-p", "-t", SESSION)


def _wait(predicate, what: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = _screen()
        if predicate(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
        time.sleep(0.3)


def _descendants(pid: int) -> set[int]:
    """Every process under ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


STATUS_MARK = "vditui-exit-status="


def test_demo_at_80x24_header_send_and_ctrl_c(tmp_path):
    env = cli_env(tmp_path)
    exports = " ".join(f"{k}={v!s}" for k, v in env.items() if " " not in v)
    # The shell says the exit status itself (tmux's own #{pane_dead_status} was seen empty
    # for a pane it already called dead).
    command = (f"sh -c 'env -i {exports} {sys.executable} -m vditui.cli --demo; "
               f"echo {STATUS_MARK}$?'")
    _tmux("new-session", "-d", "-s", SESSION, "-x", "80", "-y", "24", command)
    try:
        _tmux("set-option", "-t", SESSION, "remain-on-exit", "on")
        pane_pid = int(_tmux("display-message", "-p", "-t", SESSION, "#{pane_pid}").strip())
        # Without a key: the drifts confirmed and the hosts that are down, named.
        # (While hosts are read the header says "reading hosts: N of 12"; then the counts.)
        screen = _wait(lambda s: " drifts" in s and "hosts down" in s and "reading" not in s
                       and "hv-hang" in s, "the header's counts", 120)
        header = " ".join(screen.splitlines()[:3])
        assert "! " in header and "hv-hang" in header and "hv-refuse" in header, header
        processes = _descendants(pane_pid)
        assert processes, "the demo runs no process of its own?"

        # Mark every confirmed drift, open the menu, choose the first action: Send is on screen.
        for _ in range(20):  # drifts are confirmed once their grace period is over
            _tmux("send-keys", "-t", SESSION, "m")
            time.sleep(1.0)
            if " marked" in _screen().splitlines()[3]:
                break
        _tmux("send-keys", "-t", SESSION, "a")
        _wait(lambda s: "Actions for" in s, "the action menu", 10)
        _tmux("send-keys", "-t", SESSION, "Enter")
        screen = _wait(lambda s: "Send to" in s and "y send" in s,
                       "the confirmation's Send button and its footer", 10)
        footer = [ln for ln in screen.splitlines() if ln.strip()][-1]
        assert "Cancel" in screen and "y send" in footer, screen
        _tmux("send-keys", "-t", SESSION, "Escape")  # cancelled: nothing sent
        _wait(lambda s: "Send to" not in s, "the confirmation closed", 10)

        started = time.monotonic()
        _tmux("send-keys", "-t", SESSION, "C-c")
        deadline = started + 15
        while time.monotonic() < deadline:
            dead = _tmux("display-message", "-p", "-t", SESSION, "#{pane_dead}").strip()
            if dead == "1":
                break
            time.sleep(0.2)
        took = time.monotonic() - started
        assert dead == "1", f"still running {took:.1f} s after ctrl+c:\n{_screen()}"
        said = [ln for ln in _screen().splitlines() if ln.startswith(STATUS_MARK)]
        status = said[0].removeprefix(STATUS_MARK).strip() if said else ""
        print(f"ctrl+c to exit: {took:.2f} s, exit status {status}")
        assert status == "0", f"exit status {status!r}:\n{_screen()}"
        time.sleep(1.0)
        left = sorted(p for p in processes if _alive(p))
        assert not left, f"processes left behind: {left}"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
