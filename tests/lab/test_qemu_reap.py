"""A lab killed without stopping (SIGKILL, or a terminal closed before vditui handled SIGHUP)
left its real QEMU guests running for good. The next lab that starts a qemu host kills the
guests of every lab whose owner is gone, and only those."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from vditui.lab.qemu import OWNER_FILE, QEMU_BINARY, reap_orphans

pytestmark = pytest.mark.skipif(shutil.which(QEMU_BINARY) is None,
                                reason=f"{QEMU_BINARY} is not installed (scripts/setup.sh)")


def fake_lab(tmp: Path, name: str, owner: int, guest: subprocess.Popen[bytes]) -> Path:
    """A lab directory as a qemu host leaves it: its owner's pid, and libvirtd's pid file for
    a running guest (a real QEMU process, idle: no machine, no display)."""
    lab = tmp / f"vditui-lab-{name}"
    run = lab / "hv-kvm" / "system" / "run" / "qemu"
    run.mkdir(parents=True)
    (lab / OWNER_FILE).write_text(str(owner))
    (run / f"{name}-guest.pid").write_text(str(guest.pid))
    return lab


def idle_qemu() -> subprocess.Popen[bytes]:
    return subprocess.Popen([QEMU_BINARY, "-machine", "none", "-display", "none", "-S",
                             "-monitor", "none", "-serial", "none", "-nodefaults"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_guests_of_a_dead_lab_are_killed_and_a_live_labs_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive = subprocess.Popen(["sleep", "60"])
    orphan, kept = idle_qemu(), idle_qemu()
    try:
        gone_lab = fake_lab(tmp_path, "dead", dead.pid, orphan)
        live_lab = fake_lab(tmp_path, "live", alive.pid, kept)
        assert reap_orphans(tmp_path) == ["dead-guest"]
        assert orphan.wait(timeout=5) != 0  # killed
        assert not gone_lab.exists()
        assert kept.poll() is None and live_lab.exists()
        assert reap_orphans(tmp_path) == []
    finally:
        for p in (orphan, kept, alive):
            p.kill()
            p.wait()


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed guest's parent, init here, may be slow to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_hang_up_stops_the_demo_lab_and_its_guests() -> None:
    """An operator's SSH session closing sends SIGHUP: vditui leaves as on Ctrl-C, and the
    --demo lab's real QEMU guests go with it."""
    import signal
    import sys
    import tempfile
    import time

    proc = subprocess.Popen([sys.executable, "-m", "vditui.cli", "watch", "--jsonl", "--demo"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # the lab is up and the engine reading
        labs = [o.parent for o in Path(tempfile.gettempdir()).glob(f"vditui-lab-*/{OWNER_FILE}")
                if o.read_text().strip() == str(proc.pid)]
        assert len(labs) == 1, labs
        deadline = time.monotonic() + 30
        pids: list[int] = []
        while not pids and time.monotonic() < deadline:
            pids = [int(f.read_text()) for f in labs[0].glob("*/system/run/qemu/*.pid")]
            time.sleep(0.2)
        assert pids, "the demo's qemu host runs no guest"
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=30) == 130
        deadline = time.monotonic() + 5
        while any(_running(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in pids if _running(p)], "the demo's QEMU guests outlived it"
        assert not labs[0].exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
