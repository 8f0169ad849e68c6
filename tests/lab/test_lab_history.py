"""The drift history against the lab: an engine with a history file records drifts (first
seen, confirmed, resolved), carries them across a restart, records host and platform
incidents under real faults, and `vditui history` reads the file back without logging in."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.cli_env import cli_env
from tests.live import live_host
from vditui.core import history_db as hdb
from vditui.core.drift import DriftStatus
from vditui.core.events import DriftChanged, EngineEvent, SnapshotReady
from vditui.core.models import ConnState
from vditui.lab.lab import Lab
from vditui.lab.waiting import eventually

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

VDITUI = str(Path(sys.executable).with_name("vditui"))


def recorder() -> tuple[list[EngineEvent], Callable[[EngineEvent], None]]:
    events: list[EngineEvent] = []
    return events, events.append


def changes(events: list[EngineEvent], subject: str, status: DriftStatus) -> list[DriftChanged]:
    return [e for e in events if isinstance(e, DriftChanged)
            and e.change.drift.subject == subject and e.change.status is status]


def latest(events: list[EngineEvent]) -> SnapshotReady:
    return next(e for e in reversed(events) if isinstance(e, SnapshotReady))


def read(path: Path) -> tuple[list[hdb.DriftEpisode], list[hdb.Incident]]:
    db = hdb.connect(path, create=False)
    try:
        return hdb.drifts(db), hdb.incidents(db)
    finally:
        db.close()


def secrets_of(lab: Lab) -> list[str]:
    assert lab.vdi is not None
    return [lab.password, *lab.vdi._tokens]


def assert_no_secret_in(path: Path, lab: Lab) -> None:
    """Neither the password nor any token the platform issued is in the file (or its WAL)."""
    for f in path.parent.glob(path.name + "*"):
        data = f.read_bytes()
        for s in secrets_of(lab):
            assert s.encode() not in data, f"a secret in {f.name}: {s[:3]}..."


async def test_an_engine_records_a_drift_from_first_seen_to_resolved(
        fresh_lab, subset, default_scenario, engine_settings, start_engine, tmp_path):
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1"]))
    path = tmp_path / "state" / "history.sqlite3"
    events, listener = recorder()
    engine = await start_engine(engine_settings(lab, grace=0.5, history_path=path),
                                listener=listener)
    assert await engine.wait_settled(5)
    vm = lab.vm("class-a-01")
    lab.act("hv-t1", vm.uuid, "destroy")  # the platform is not told
    (pending,) = await eventually(lambda: changes(events, vm.name, DriftStatus.PENDING), 3.0,
                                  "the pending drift")
    (confirmed,) = await eventually(lambda: changes(events, vm.name, DriftStatus.CONFIRMED),
                                    5.0, "the confirmation")
    lab.follow_vdi(vm.uuid, "shutoff")
    await engine.refresh()
    (resolved,) = await eventually(lambda: changes(events, vm.name, DriftStatus.RESOLVED), 5.0,
                                   "the resolution")
    still = set(latest(events).drifts)
    await engine.stop()  # writes out what is queued

    drifts, _ = read(path)
    (ep,) = [ep for ep in drifts if ep.key == vm.uuid]
    assert (ep.platform, ep.kind, ep.subject, ep.host) == (lab.vdi_url, "state", vm.name, "hv-t1")
    assert (ep.vdi_value, ep.virt_value) == ("running", "shutoff")
    assert ep.message == pending.change.drift.message
    assert ep.first_seen == pytest.approx(pending.at, abs=0.05)
    assert ep.confirmed == confirmed.at and ep.resolved == resolved.at
    # The scenario's own drifts on these hosts are open episodes, one each.
    assert {(e.key, e.kind) for e in drifts if e.resolved is None} == still
    assert len(drifts) == len(still) + 1
    assert_no_secret_in(path, lab)


async def test_a_restart_keeps_first_seen_and_confirmation(
        fresh_lab, subset, default_scenario, engine_settings, start_engine, tmp_path):
    lab = fresh_lab(subset(default_scenario, ["hv-t1"]))
    path = tmp_path / "history.sqlite3"
    stays, heals = lab.vm("class-a-01"), lab.vm("class-a-02")
    events, listener = recorder()
    first = await start_engine(engine_settings(lab, grace=0.3, history_path=path),
                               listener=listener)
    assert await first.wait_settled(5)
    for vm in (stays, heals):
        lab.act("hv-t1", vm.uuid, "destroy")
    for vm in (stays, heals):
        await eventually(lambda vm=vm: changes(events, vm.name, DriftStatus.CONFIRMED), 5.0,
                         f"{vm.name} confirmed")
    ident = (stays.uuid, "state")
    seen = latest(events).first_seen_at(ident)
    await first.stop()
    lab.act("hv-t1", heals.uuid, "start")  # heals while no vditui watches
    (before,) = [ep for ep in read(path)[0] if ep.key == stays.uuid]
    assert before.first_seen == pytest.approx(seen, abs=0.05)

    # A grace of a minute: a drift seen for the first time would be pending that long.
    events2, listener2 = recorder()
    second = await start_engine(engine_settings(lab, grace=60.0, history_path=path),
                                listener=listener2)
    assert await second.wait_settled(5)
    snap = latest(events2)
    assert snap.drifts[ident].status is DriftStatus.CONFIRMED
    assert snap.first_seen_at(ident) == pytest.approx(before.first_seen, abs=0.05)
    (again,) = changes(events2, stays.name, DriftStatus.CONFIRMED)
    assert again.change.since == snap.drifts[ident].first_seen
    await second.stop()

    drifts, _ = read(path)
    (ep,) = [ep for ep in drifts if ep.key == stays.uuid]  # still one episode
    assert (ep.first_seen, ep.confirmed, ep.resolved) == (before.first_seen, before.confirmed,
                                                          None)
    (healed,) = [ep for ep in drifts if ep.key == heals.uuid]
    assert healed.resolved is not None and healed.resolved >= before.confirmed


async def test_host_and_platform_incidents_under_faults(
        fresh_lab, subset, default_scenario, engine_settings, start_engine, tmp_path):
    # Without the scenario's refusing host: with it retried every second, asyncio reports
    # libvirt futures whose error nobody retrieved, and the run then fails at its end with
    # Python 3.11.7's "SystemError: AST constructor recursion depth mismatch" (it looks like
    # CPython gh-106905, in the AST that traceback formatting builds).
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1"]))
    path = tmp_path / "history.sqlite3"
    settings = engine_settings(lab, history_path=path, keepalive_interval=1, keepalive_count=2,
                               reread_interval=3600.0, refresh_interval=3600.0, max_backoff=1.0)
    engine = await start_engine(settings)
    assert await engine.wait_settled(5)
    t1 = live_host(engine, "hv-t1")

    def back_after(wall: float) -> Callable[[], bool]:
        return lambda: t1.state is ConnState.CONNECTED and t1.read_at > wall

    wall = time.time()
    lab.cut("hv-t1")
    await eventually(back_after(wall), 10.0, "hv-t1 back after the cut")
    await asyncio.to_thread(lab.set_fault, "hv-t1", "hang")
    await eventually(lambda: t1.state is ConnState.FAILED, 10.0, "hv-t1 failed in the hang")
    wall = time.time()
    await asyncio.to_thread(lab.set_fault, "hv-t1", "pass")
    await eventually(back_after(wall), 10.0, "hv-t1 back after the hang")

    lab.set_fault("vdi", "refuse")
    await engine.refresh()
    lab.set_fault("vdi", "pass")
    await engine.refresh()
    await engine.stop()

    _, incidents = read(path)
    t1_incidents = [i for i in incidents if i.name == "hv-t1"]
    assert len(t1_incidents) == 2, t1_incidents
    cut, hang = t1_incidents
    assert cut.scope == "host" and cut.ended is not None and cut.cause
    assert "timeout" in hang.cause and "keepalive" in hang.cause, hang.cause
    assert hang.started > cut.ended and hang.ended is not None and hang.ended > hang.started
    (platform,) = [i for i in incidents if i.scope == "platform"]
    assert platform.name == lab.vdi_url and lab.vdi_url in platform.cause
    assert platform.ended is not None and platform.ended > platform.started
    assert_no_secret_in(path, lab)


# --------------------------------------------------------------------------- the command


def history_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``vditui history ARGS`` with no password anywhere and no terminal to prompt on."""
    return subprocess.run([VDITUI, "history", *args], env=cli_env(home), capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL, cwd=home)


def _lines(stream: Any, q: queue.Queue[str | None]) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


def test_watch_records_and_history_reads_it_back(fresh_lab, subset, default_scenario,
                                                 tmp_path):
    """The real commands: `watch` (the history file at the state dir, as launch sets it)
    records a drift and is stopped by SIGTERM; `vditui history` then shows it, filtered, as
    text, JSON and CSV, without a password or a login."""
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1"]))
    home = tmp_path
    templates = [a for t in lab.uri_templates for a in ("--uri-template", t)]
    cmd = [VDITUI, "watch", "--jsonl", "--url", lab.vdi_url, "--user", lab.username,
           *templates, "--timeout", "2", "--grace", "0"]
    proc = subprocess.Popen(cmd, env=cli_env(home, lab.password), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    q: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, q), daemon=True).start()
    vm = lab.vm("lic")
    try:
        deadline = time.monotonic() + 20
        acted = False
        while True:
            line = q.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, proc.stderr.read()
            rec = json.loads(line)
            if rec["type"] == "host" and rec["message"].startswith("ocloud: connected ") and (
                    not acted):
                lab.act("ocloud", vm.uuid, "destroy")
                acted = True
            if rec["type"] == "drift" and rec["subject"] == "lic":
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert code in (0, 130) and "Traceback" not in err, err
    path = home / "state" / "vditui" / "history.sqlite3"
    assert_no_secret_in(path, lab)
    logins = lab.vdi.requests["POST /ocloud/v1/login"]

    text = history_cli(home)
    assert text.returncode == 0, text.stderr
    assert any(" lic " in f" {line} " and "state drift first seen" in line
               for line in text.stdout.splitlines()), text.stdout
    assert "open: lic: state differs since " in text.stdout

    js = history_cli(home, "--json", "--vm", "lic", "--since", "1h")
    assert js.returncode == 0, js.stderr
    (rec,) = json.loads(js.stdout)
    assert (rec["type"], rec["subject"], rec["host"], rec["kind"], rec["vdi"],
            rec["libvirt"], rec["ended"]) == ("drift", "lic", "ocloud", "state", "running",
                                              "shutoff", None)
    assert rec["started"] and rec["confirmed"] and rec["platform"] == lab.vdi_url

    rows = list(csv.DictReader(io.StringIO(history_cli(home, "--csv", "--host", "hv-t1").stdout)))
    assert rows and {r["host"] for r in rows} == {"hv-t1"}
    assert "lic" not in {r["subject"] for r in rows}
    assert json.loads(history_cli(home, "--json", "--vm", "no-such-vm").stdout) == []
    other = history_cli(home, "--json", "--url", "http://127.0.0.9:1")
    assert json.loads(other.stdout) == []  # another platform's history is apart

    bad = history_cli(home, "--since", "last tuesday")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().startswith("vditui: --since 'last tuesday': expected a span like "
                                         "90m, 1.5h or 7d, or a date like 2026-12-01"), bad.stderr
    assert lab.vdi.requests["POST /ocloud/v1/login"] == logins  # history never logged in


def test_two_vditui_processes_share_one_history(fresh_lab, subset, default_scenario, tmp_path):
    """Two engines in two processes (two `watch`es, as a TUI and a `serve` would be) on one
    history file: every drift is one episode, whoever saw it first, and the file is sound."""
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1"]))
    templates = [a for t in lab.uri_templates for a in ("--uri-template", t)]
    cmd = [VDITUI, "watch", "--jsonl", "--url", lab.vdi_url, "--user", lab.username,
           *templates, "--timeout", "2", "--grace", "0"]
    procs, queues = [], []
    for _ in range(2):
        p = subprocess.Popen(cmd, env=cli_env(tmp_path, lab.password), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_lines, args=(p.stdout, q), daemon=True).start()
        procs.append(p)
        queues.append(q)
    vm = lab.vm("lic")
    try:
        def wait_for(q: queue.Queue[str | None], pred: Callable[[dict[str, Any]], bool]) -> None:
            deadline = time.monotonic() + 20
            while True:
                line = q.get(timeout=max(0.1, deadline - time.monotonic()))
                assert line is not None
                if pred(json.loads(line)):
                    return

        for q in queues:  # both connected to ocloud before the drift
            wait_for(q, lambda r: r["type"] == "host"
                     and r["message"].startswith("ocloud: connected "))
        lab.act("ocloud", vm.uuid, "destroy")
        for q in queues:
            wait_for(q, lambda r: r["type"] == "drift" and r["subject"] == "lic")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            code = p.wait(15)
            err = p.stderr.read()
            p.stdout.close()
            p.stderr.close()
            assert code in (0, 130) and "Traceback" not in err, err
    path = tmp_path / "state" / "vditui" / "history.sqlite3"
    db = hdb.connect(path, create=False)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    drifts, _ = read(path)
    idents = [(ep.key, ep.kind) for ep in drifts]
    assert len(idents) == len(set(idents)), idents  # one episode per drift, not one per process
    (lic,) = [ep for ep in drifts if ep.subject == "lic"]
    assert (lic.kind, lic.resolved) == ("state", None) and lic.confirmed is not None
    assert len(drifts) >= 2  # lic and hv-t1's own scenario drift(s)
