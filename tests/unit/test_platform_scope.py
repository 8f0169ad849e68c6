"""State that belongs to one platform stays with it: ``audit`` and ``history`` show the
configured platform's records (and say whose), every platform's with ``--all-platforms``, and
``--demo`` the demo's own, kept in a state dir of its own that outlives the demo."""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import pytest

from vditui.cli import build_parser
from vditui.commands import audit as audit_cmd
from vditui.commands import history as history_cmd
from vditui.core import history_db as hdb
from vditui.launch import audit_path, history_path

A, B = "http://vdi-a:8088", "http://vdi-b:8088"


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("VDITUI_URL", "VDITUI_USER"):
        monkeypatch.delenv(var, raising=False)


def trail(path: Path, *records: tuple[str, str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({
        "time": "2026-12-01T08:00:00.000+00:00", "action_id": aid, "platform": url,
        "user": user, "event": "request", "action": "sync", "vms": []}) + "\n"
        for aid, url, user in records))


def history(path: Path, *rows: tuple[str, str]) -> None:
    db = hdb.connect(path)
    with hdb.transaction(db):
        for platform, subject in rows:
            db.execute("INSERT INTO drift (platform, key, kind, subject, host, first_seen) "
                       "VALUES (?, ?, 'state', ?, 'hv-1', ?)",
                       (platform, subject, subject, time.time() - 60))
    db.close()


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def audit_ids(*argv: str) -> tuple[str, list[str]]:
    out = io.StringIO()
    assert audit_cmd.cmd_audit(parse("audit", *argv), out) == 0
    text = out.getvalue()
    ids = [json.loads(x)["action_id"] for x in text.splitlines()] if "--json" in argv else []
    return text, ids


def test_audit_shows_the_configured_platform_and_user_unless_asked_for_all() -> None:
    trail(audit_path(), ("a1", A, "admin"), ("b1", B, "admin"), ("a2", A, "other"))
    assert audit_ids("--json", "--url", A, "--user", "admin")[1] == ["a1"]
    assert audit_ids("--json", "--url", B, "--user", "admin")[1] == ["b1"]
    assert audit_ids("--json", "--all-platforms")[1] == ["a1", "b1", "a2"]
    text, _ = audit_ids("--url", A, "--user", "admin")
    assert text.splitlines()[0] == (f"actions on {A} as admin (--all-platforms: every "
                                    "platform's)")


def test_history_shows_the_configured_platform_unless_asked_for_all() -> None:
    history(history_path(), (A, "vm-a"), (B, "vm-b"))

    def subjects(*argv: str) -> list[str]:
        out = io.StringIO()
        assert history_cmd.run(parse("history", "--json", *argv), out) == 0
        return [r["subject"] for r in json.loads(out.getvalue())]

    assert subjects("--url", A, "--user", "admin") == ["vm-a"]
    assert sorted(subjects("--all-platforms")) == ["vm-a", "vm-b"]
    out = io.StringIO()
    history_cmd.run(parse("history", "--url", B, "--user", "admin"), out)
    assert out.getvalue().startswith(f"history of {B} as admin (--all-platforms: ")
    assert "vm-b" in out.getvalue() and "vm-a" not in out.getvalue()


def test_the_demo_keeps_its_own_records_where_audit_and_history_demo_read_them() -> None:
    assert audit_path(demo=True) != audit_path()
    assert audit_path(demo=True).parent == history_path(demo=True).parent
    trail(audit_path(demo=True), ("d1", "http://127.0.0.9:8088", "admin"))
    history(history_path(demo=True), ("http://127.0.0.9:8088", "demo-vm"))
    assert audit_ids("--json", "--demo")[1] == ["d1"]
    assert not audit_path().exists()  # the operator's own trail: untouched
    out = io.StringIO()
    assert history_cmd.run(parse("history", "--demo"), out) == 0
    assert out.getvalue().startswith("history of the demo's records") and "demo-vm" in \
        out.getvalue()


def test_the_demo_s_settings_point_at_the_demo_state_dir(tmp_path: Path) -> None:
    from vditui.launch import LabTarget, Options, resolve

    lab = LabTarget(url="http://127.0.0.9:8088", username="admin", password="pw",
                    uri_template="test+tcp://{ip}/default", config_path=tmp_path / "lab" / "c.t")
    start = resolve(Options(demo=True, lab=lab), interactive=False, env={})
    assert start.settings.audit_path == audit_path(demo=True)
    assert start.settings.history_path == history_path(demo=True)
