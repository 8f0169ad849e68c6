"""Config writes are serialised and atomic (issue 21, "Concurrent config writes lose rules" and
"A VM name becomes a glob"): writers at once keep every rule, no temporary copy of the file (it
holds the password) survives a failure or a killed writer, CRLF files stay CRLF, and a rule
written from a VM's name matches that name only."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from vditui.commands.baseline import baseline_rules
from vditui.config import load_config
from vditui.config import write as config_write
from vditui.config.write import save_ack_rules, save_host_uri
from vditui.core.acks import AckRule, exact
from vditui.core.drift import DriftState, DriftStatus
from vditui.core.events import SnapshotReady
from vditui.core.models import Comparison, Drift, DriftKind, Severity, VmRow
from vditui.ui.screens.ack import rules_for

ROOT = Path(__file__).resolve().parents[2]
BASE = '[profiles.p]\nurl = "http://127.0.0.1:1"\npassword = "hunter2-secret"\n'

WRITER = """
import sys
from pathlib import Path
from vditui.config.write import save_ack_rules
from vditui.core.acks import AckRule
path, me = Path(sys.argv[1]), sys.argv[2]
for i in range(int(sys.argv[3])):
    save_ack_rules(path, "p", [AckRule("why", vm=f"{me}-{i}")])
"""


def test_writers_at_once_keep_every_rule(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BASE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers, each = 4, 15
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{n}", str(each)],
                              env=env) for n in range(writers)]
    assert [p.wait(timeout=120) for p in procs] == [0] * writers
    vms = {r.vm for r in load_config(path).profiles["p"].ack}
    assert vms == {f"w{n}-{i}" for n in range(writers) for i in range(each)}


def test_a_failed_write_leaves_no_copy_and_the_file_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BASE)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(config_write.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        save_ack_rules(path, "p", [AckRule("why", vm="a")])
    assert path.read_text() == BASE
    assert sorted(p.name for p in tmp_path.iterdir()) == [".config.toml.lock", "config.toml"]


def test_a_copy_left_by_a_killed_writer_is_removed_by_the_next(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BASE)
    stale = tmp_path / ".config.toml.k1ll3d.tmp"  # what a writer killed mid-write leaves
    stale.write_text(BASE)
    other = tmp_path / ".other.toml.x.tmp"  # another file's: not ours to remove
    other.write_text("")
    save_ack_rules(path, "p", [AckRule("why", vm="a")])
    assert not stale.exists()
    assert other.exists()


def test_the_temporary_copy_is_private_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text(BASE)
    seen: list[int] = []
    real_replace = os.replace

    def replace(src: str, dst: Path) -> None:
        seen.append(stat.S_IMODE(os.stat(src).st_mode))
        real_replace(src, dst)

    monkeypatch.setattr(config_write.os, "replace", replace)
    old = os.umask(0)  # mkstemp's mode is all that keeps the copy private
    try:
        save_host_uri(path, "p", "hv-1", "qemu+tcp://10.0.0.1/system")
    finally:
        os.umask(old)
    assert seen == [0o600]


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(BASE.replace("\n", "\r\n").encode())
    save_ack_rules(path, "p", [AckRule("why", vm="a")], note="noted")
    save_host_uri(path, "p", "hv-1", "qemu+tcp://10.0.0.1/system")
    data = path.read_bytes()
    assert data.startswith(BASE.replace("\n", "\r\n").encode())
    assert data.count(b"\n") == data.count(b"\r\n") > 6
    profile = load_config(path).profiles["p"]
    assert [r.vm for r in profile.ack] == ["a"]
    assert profile.host_uris == {"hv-1": ("qemu+tcp://10.0.0.1/system",)}


GLOB_VM = "class-a-0*"


def drift(subject: str, host_id: str = "h1") -> Drift:
    return Drift(DriftKind.STATE, Severity.CRITICAL, f"uuid-{subject}", subject, host_id,
                 "platform says running, libvirt says shutoff", "running", "shutoff")


def test_a_rule_for_a_glob_named_vm_matches_that_vm_only(tmp_path: Path) -> None:
    rule = AckRule("known", vm=exact(GLOB_VM), host=exact("hv[1]"), kind=DriftKind.STATE)
    assert rule.matches(drift(GLOB_VM), host_name="hv[1]")
    assert not rule.matches(drift("class-a-01"), host_name="hv[1]")
    assert not rule.matches(drift(GLOB_VM), host_name="hv1")
    # Written and read back, it still matches only itself.
    path = tmp_path / "config.toml"
    path.write_text(BASE)
    save_ack_rules(path, "p", [rule])
    (back,) = load_config(path).profiles["p"].ack
    assert back.matches(drift(GLOB_VM), host_name="hv[1]")
    assert not back.matches(drift("class-a-01"), host_name="hv[1]")


def test_the_tui_k_key_writes_an_exact_rule() -> None:
    row = VmRow(key="k", name=GLOB_VM, vdi=None, virt=None, virt_host_id="h1",
                drifts=(drift(GLOB_VM),))
    (rule,) = rules_for(row, {"h1": "hv-1"}, {}, "known", None)
    assert rule.matches(drift(GLOB_VM), host_name="hv-1")
    assert not rule.matches(drift("class-a-01"), host_name="hv-1")


def test_baseline_writes_an_exact_rule() -> None:
    d = drift(GLOB_VM)
    row = VmRow(key="k", name=GLOB_VM, vdi=None, virt=None, virt_host_id="h1", drifts=(d,))
    snap = SnapshotReady(0.0, 0, Comparison((row,), (), (d,)),
                         MappingProxyType({d.ident: DriftState(DriftStatus.CONFIRMED, 0.0)}),
                         MappingProxyType({}))
    ((rule, _),) = baseline_rules(snap, None, "baseline")
    assert rule.matches(drift(GLOB_VM))
    assert not rule.matches(drift("class-a-01"))
