"""Who is affected, end to end on the lab (issue 20): `check --user-facing`, `report` and the
metrics carry the connected user of a drifting desktop; and no national ID, phone or mail that
the platform serves reaches anything vditui writes (report, check JSON, watch lines, history,
log, metrics)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from tests.lab.cli_env import cli_env, lab_args
from tests.lab.test_headless import VDITUI
from vditui.commands.serve_metrics import registry
from vditui.core.metrics import MetricsState
from vditui.lab.lab import Lab
from vditui.lab.scenario import Scenario

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

#: What the lab's platform serves for its users and vditui must never write anywhere: the
#: made-up national IDs, phone numbers and mail addresses (vditui/lab/vdi_data.py user_vos).
PII = ("11010119900101", "1380013", "@lab.example.cn", "idNumber", "mobile")


@pytest.fixture(scope="module")
def people_lab(default_scenario: Scenario, subset: Any) -> Iterator[Lab]:
    """ocloud and the classroom hv-t1 (zhang.wei is connected to class-a-04, which libvirt
    has shut off), and hv-o2 (office-11 and -12 drift with nobody connected; li.na has
    disconnected from office-10)."""
    lab = Lab(subset(default_scenario, ["ocloud", "hv-t1", "hv-o2"], "people"))
    try:
        yield lab.start()
    finally:
        lab.stop()


def vditui(home: Path, lab: Lab, *args: str, timeout: float = 40) -> subprocess.CompletedProcess:
    return subprocess.run([VDITUI, *args, *lab_args(lab)], env=cli_env(
        home, lab.password, VDITUI_LOG_LEVEL="DEBUG"), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, cwd=home)


def assert_no_pii(text: str, where: str) -> None:
    for s in PII:
        assert s not in text, f"{where} holds personal data ({s!r})"


def test_check_user_facing_judges_only_the_connected_users_drift(tmp_path: Path,
                                                                 people_lab: Lab) -> None:
    every = vditui(tmp_path, people_lab, "check", "--json")
    assert every.returncode == 1, every.stderr
    doc = json.loads(every.stdout)
    assert sorted(d["subject"] for d in doc["drifts"]) == ["class-a-04", "office-11",
                                                          "office-12"]
    assert {d["subject"]: d["user_facing"] for d in doc["drifts"]}["class-a-04"] is True
    assert doc["summary"]["affected_users"] == ["zhang.wei"]
    assert doc["summary"]["user_facing"] == 1
    facing = vditui(tmp_path, people_lab, "check", "--user-facing")
    assert facing.returncode == 1
    lines = facing.stdout.splitlines()
    assert lines[0].startswith("DRIFT: 3 hosts, ") and ", 1 drifts (1 critical)" in lines[0]
    assert "class-a-04" in lines[1] and "[user zhang.wei (Zhang Wei) connected 2 h ago]" in lines[1]
    assert_no_pii(every.stdout + facing.stdout + every.stderr, "check")


def test_report_names_the_affected_user_alarms_pools_and_capacity(tmp_path: Path,
                                                                  people_lab: Lab) -> None:
    md = vditui(tmp_path, people_lab, "report", "--format", "md").stdout
    assert "**1 user-facing drift** (a user is connected now):" in md
    assert "- class-a-04: user zhang.wei (Zhang Wei) connected 2 h ago;" in md
    assert "## Desktop pools" in md and "Teaching: " in md
    assert "## Host capacity" in md
    doc = json.loads(vditui(tmp_path, people_lab, "report", "--format", "json").stdout)
    vms = {v["name"]: v for v in doc["vms"]}
    assert (vms["class-a-04"]["user"], vms["class-a-04"]["user_facing"]) == ("zhang.wei", True)
    assert (vms["office-10"]["user"], vms["office-10"]["connected"]) == ("li.na", False)
    assert vms["tpl-class-win10"]["kind"] == "template" and vms["tpl-class-win10"]["drift"] == []
    assert vms["class-a-old"]["kind"] == "in the recycle bin" and vms["class-a-old"]["drift"] == []
    cap = doc["capacity"]["hv-t1"]
    # class-a-01, -02, -06 run and -05 is paused (it holds its memory): 4 guests take capacity.
    assert cap["vdi_cpus"] == 32 and cap["node_cpus"] and cap["running"] == 4
    csv_text = vditui(tmp_path, people_lab, "report", "--format", "csv").stdout
    assert csv_text.splitlines()[0].endswith(",kind,user,connected,user_facing")
    for text in (md, json.dumps(doc), csv_text):
        assert_no_pii(text, "report")


async def test_metrics_count_the_affected_user(people_lab: Lab, engine_settings,
                                               start_engine) -> None:
    engine = await start_engine(engine_settings(people_lab), watch=False)
    assert await engine.wait_settled(10)
    snap = engine.reconcile_now()
    state = MetricsState(stale_after=60)
    state.on_event(snap)
    text = generate_latest(registry(state)).decode()
    assert "vditui_affected_users 1.0" in text
    assert 'vditui_pool_drifts{pool="Teaching"} 1.0' in text
    assert_no_pii(text, "metrics")


def test_nothing_vditui_writes_holds_personal_data(tmp_path: Path, people_lab: Lab) -> None:
    """check, report and watch, with DEBUG logging, then every file under the test HOME
    (log, history, state) and every output: no national ID, phone or mail."""
    outs = [vditui(tmp_path, people_lab, *args) for args in (
        ("check", "--json"), ("report", "--format", "json"), ("report", "--format", "md"))]
    watch = subprocess.Popen([VDITUI, "watch", "--jsonl", *lab_args(people_lab)],
                             env=cli_env(tmp_path, people_lab.password, VDITUI_LOG_LEVEL="DEBUG"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL, cwd=tmp_path)
    try:
        watched, werr = watch.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        watch.terminate()
        watched, werr = watch.communicate(timeout=10)
    assert '"user_facing": true' in watched and '"user": "zhang.wei"' in watched
    for r in outs:
        assert_no_pii(r.stdout + r.stderr, " ".join(r.args[1:3]))
    assert_no_pii(watched + werr, "watch")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "vditui.log" for p in files)
    assert "GET /ocloud/v1/user" in "".join(p.read_text(errors="replace") for p in files
                                            if p.name == "vditui.log")
    for p in files:
        assert_no_pii(p.read_bytes().decode("utf-8", "replace"), str(p))


async def test_a_user_who_disconnects_is_no_longer_affected(people_lab: Lab, engine_settings,
                                                            start_engine) -> None:
    from vditui.core.vdi_facts import affected_users

    assert people_lab.vdi is not None
    engine = await start_engine(engine_settings(people_lab), watch=False)
    assert await engine.wait_settled(10)
    assert affected_users(engine.reconcile_now().comparison.vms) == ["zhang.wei"]
    uuid = people_lab.vm("class-a-04").uuid
    try:
        people_lab.vdi.set_session(uuid, False)
        await engine.refresh()
        cmp = engine.reconcile_now().comparison
        assert affected_users(cmp.vms) == []
        (row,) = [r for r in cmp.vms if r.name == "class-a-04"]
        assert row.drifts and row.vdi is not None and row.vdi.connected is False
    finally:
        people_lab.vdi.set_session(uuid, True)


def test_the_lab_console_connects_and_disconnects_a_user(people_lab: Lab) -> None:
    import io

    from vditui.lab.console import run_console

    out = io.StringIO()
    for line in ("session office-10 on", "session class-a-01 maybe", "session office-11 on",
                 "session office-10 off"):
        assert run_console(people_lab, line, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "ok"
    assert any(line.lstrip().startswith("session NAME on|off") for line in lines)  # help
    assert "error: office-11: no user is bound to it" in lines and lines[-1] == "ok"
