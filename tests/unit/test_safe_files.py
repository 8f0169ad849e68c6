"""The files vditui owns (audit trail, history, log, config) are never opened through a planted
link nor blocked on by a planted FIFO: the link's target keeps its content and mode, the error
is one line naming the file, and nothing waits (issue 21, "It follows planted symlinks")."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vditui.config import ConfigError, load_config
from vditui.config.write import save_ack_rules
from vditui.core import audit
from vditui.core import history_db as hdb
from vditui.core.acks import AckRule
from vditui.core.safefile import UnsafeFileError, private_dir

TARGET_TEXT = "precious, owned by someone else\n"
ROOT = Path(__file__).resolve().parents[2]


def finishes(fn: Callable[[], Any], timeout: float = 10.0) -> BaseException | None:
    """Run ``fn`` in a thread; the exception it raised (None if none). Fails the test if it is
    still running after ``timeout`` (a FIFO opened for writing blocks forever)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{fn} blocked for over {timeout} s"
    return raised[0] if raised else None


def plant(kind: str, path: Path, target: Path) -> None:
    """A symlink to ``target`` or a FIFO at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if kind == "symlink":
        path.symlink_to(target)
    else:
        os.mkfifo(path, 0o600)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    t = tmp_path / "elsewhere" / "target"
    t.parent.mkdir()
    t.write_text(TARGET_TEXT)
    t.chmod(0o644)
    return t


def untouched(target: Path) -> None:
    assert target.read_text() == TARGET_TEXT
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


KINDS = ("symlink", "fifo")


@pytest.mark.parametrize("kind", KINDS)
def test_audit_append_refuses_a_planted_file(tmp_path: Path, target: Path, kind: str) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    plant(kind, path, target)
    exc = finishes(lambda: audit.append(path, '{"event":"request"}'))
    assert isinstance(exc, UnsafeFileError)
    assert str(exc).startswith(f"{path}: is a ")
    assert "move it away" in str(exc)
    untouched(target)


@pytest.mark.parametrize("kind", KINDS)
def test_audit_read_refuses_a_planted_file(tmp_path: Path, target: Path, kind: str) -> None:
    # `vditui audit` only reads: it must neither chmod nor append, nor block.
    path = tmp_path / "state" / "audit.jsonl"
    plant(kind, path, target)
    exc = finishes(lambda: audit.read(path))
    assert isinstance(exc, UnsafeFileError)
    untouched(target)


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
@pytest.mark.parametrize("kind", KINDS)
def test_history_refuses_a_planted_file(tmp_path: Path, target: Path, kind: str,
                                        suffix: str) -> None:
    path = tmp_path / "state" / "history.sqlite3"
    plant(kind, path.with_name(path.name + suffix), target)
    for opener in (lambda: hdb.connect(path).close(), lambda: hdb.connect_readonly(path)):
        exc = finishes(opener)
        assert isinstance(exc, hdb.HistoryError), exc
        assert str(exc).startswith(f"{path}{suffix}: is a "), str(exc)
    untouched(target)


@pytest.mark.parametrize("kind", KINDS)
def test_config_refuses_a_planted_file(tmp_path: Path, target: Path, kind: str) -> None:
    path = tmp_path / "config" / "config.toml"
    plant(kind, path, target)
    exc = finishes(lambda: load_config(path))
    assert isinstance(exc, ConfigError), exc
    assert "is a " in str(exc) and str(path) in str(exc)
    exc = finishes(lambda: save_ack_rules(path, "p", [AckRule("r", vm="a")]))
    assert isinstance(exc, ConfigError), exc
    assert "is a " in str(exc) and str(path) in str(exc)
    untouched(target)
    assert not list(path.parent.glob("*.tmp"))


LOG_SCRIPT = """
import logging, os, sys
from pathlib import Path
from vditui import logsetup
os.environ.pop(logsetup.LIBVIRT_LOG_ENV, None)
path = logsetup.setup_logging(level=logging.INFO, directory=Path(sys.argv[1]))
logging.getLogger("vditui").warning("a record")
print(path, "|", logsetup.degraded(), "|", os.environ[logsetup.LIBVIRT_LOG_ENV])
"""


@pytest.mark.parametrize("kind", KINDS)
def test_log_refuses_a_planted_file(tmp_path: Path, target: Path, kind: str) -> None:
    log_dir = tmp_path / "log"
    plant(kind, log_dir / "vditui.log", target)
    done = subprocess.run([sys.executable, "-c", LOG_SCRIPT, str(log_dir)], capture_output=True,
                          text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          check=False)
    assert done.returncode == 0, done.stderr
    path, reason, libvirt = done.stdout.strip().split(" | ")
    assert path == "None"
    assert reason.startswith(f"logging is off: {log_dir / 'vditui.log'}: is a ")
    assert libvirt == "4:file:/dev/null"
    assert done.stderr == ""
    untouched(target)


@pytest.mark.parametrize("kind", KINDS)
def test_libvirt_client_log_is_never_sent_through_a_planted_file(tmp_path: Path, target: Path,
                                                                 kind: str) -> None:
    # libvirt opens its log by name, following links: vditui checks the file for it.
    log_dir = tmp_path / "log"
    plant(kind, log_dir / "libvirt-client.log", target)
    done = subprocess.run([sys.executable, "-c", LOG_SCRIPT, str(log_dir)], capture_output=True,
                          text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          check=False)
    assert done.returncode == 0, done.stderr
    path, reason, libvirt = done.stdout.strip().split(" | ")
    assert path == str(log_dir / "vditui.log") and reason == ""
    assert libvirt == "4:file:/dev/null"
    untouched(target)


def test_a_file_is_made_private_by_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.jsonl"
    path.parent.mkdir(mode=0o700)
    path.write_text("")
    path.chmod(0o644)
    audit.append(path, "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert audit.read(path).records == ({},)


def test_state_dir_is_made_0700(tmp_path: Path) -> None:
    path = tmp_path / "new" / "state" / "audit.jsonl"
    audit.append(path, "{}")
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700  # made by vditui too


def test_state_dir_of_another_user_or_writable_by_others_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeFileError, match=r"shared: other users can write to it \(mode 777\)"):
        audit.append(shared / "audit.jsonl", "{}")
    assert not (shared / "audit.jsonl").exists()
    if os.geteuid() != 0:
        pytest.skip("changing a directory's owner needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(UnsafeFileError, match="belongs to user id 65534, not to the user"):
        private_dir(theirs)
    with pytest.raises(hdb.HistoryError, match="belongs to user id 65534"):
        hdb.connect(theirs / "history.sqlite3")


def test_a_link_in_place_of_the_state_dir_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "state"
    link.symlink_to(real)
    with pytest.raises(UnsafeFileError, match="state: is a symbolic link, not a directory"):
        audit.append(link / "audit.jsonl", "{}")
    assert list(real.iterdir()) == []
