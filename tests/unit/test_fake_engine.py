"""The scripted engine (vditui.core.fake_engine): the real events from a made-up estate, drifts
judged by the real rules, a timed script, actions that make both sides agree; and it loads
neither Textual, the lab nor (once the contract stands alone) libvirt."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from vditui.core.actions import Action, ActionError, ActionPhase
from vditui.core.drift import DriftStatus
from vditui.core.events import (
    ActionUpdate,
    DomainChanged,
    DriftChanged,
    EngineEvent,
    HostChanged,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.fake_engine import FakeEngine
from vditui.core.fake_estate import Estate, refused
from vditui.core.fake_script import host_state, platform_fails, vm_state
from vditui.core.models import ConnState, DriftKind, VdiVmStatus, VirtState
from vditui.core.settings import EngineSettings
from vditui.core.vdi_errors import VdiError


def settings(tmp_path: Path | None = None, **kw: object) -> EngineSettings:
    base: dict[str, object] = {"url": "https://vdi.example", "username": "admin",
                               "password": "pw", "grace": 0.0, "debounce": 0.01}
    if tmp_path is not None:
        base["audit_path"] = tmp_path / "audit.jsonl"
    base.update(kw)
    return EngineSettings(**base)  # type: ignore[arg-type]


def estate() -> Estate:
    e = Estate()
    e.host("hv-1", pool="Teaching")
    e.host("hv-2", pool="Teaching", state=ConnState.FAILED,
           error=refused("qemu+tcp://10.0.0.2/system"))
    e.vm("agree", "hv-1")
    e.vm("off-in-vdi", "hv-1", vdi_status=VdiVmStatus.OFF)
    e.vm("stray", "hv-1", in_platform=False)
    e.vm("on-failed", "hv-2")
    return e


def heard(engine: FakeEngine) -> list[EngineEvent]:
    got: list[EngineEvent] = []
    engine.listen(got.append)
    return got


def kinds(snap: SnapshotReady) -> dict[str, set[DriftKind]]:
    return {r.name: {d.kind for d in r.drifts} for r in snap.comparison.vms}


async def test_start_tells_the_platform_every_host_and_a_snapshot_judged_by_the_real_rules():
    engine = FakeEngine(settings(), estate())
    got = heard(engine)
    await engine.start()
    try:
        assert isinstance(got[0], PlatformRefreshed) and len(got[0].inventory.vms) == 3
        hosts = [e.host for e in got if isinstance(e, HostChanged)]
        assert [(h.name, h.state) for h in hosts] == [("hv-1", ConnState.CONNECTED),
                                                      ("hv-2", ConnState.FAILED)]
        snap = next(e for e in got if isinstance(e, SnapshotReady))
        assert snap.settled
        assert kinds(snap) == {"agree": set(), "off-in-vdi": {DriftKind.STATE},
                               "stray": {DriftKind.ONLY_IN_LIBVIRT}, "on-failed": set()}
        on_failed = next(r for r in snap.comparison.vms if r.name == "on-failed")
        assert not on_failed.checked  # its host could not be read: no verdict
        assert {snap.status(d) for d in snap.comparison.drifts if d.subject != "hv-2"} == {
            DriftStatus.CONFIRMED}  # grace 0
        assert any(isinstance(e, DriftChanged) for e in got)
    finally:
        await engine.stop()


async def test_a_script_changes_the_world_on_time_and_drift_waits_for_its_grace():
    script = [(0.05, vm_state("hv-1", "agree", VirtState.SHUTOFF)),
              (0.1, host_state("hv-2", ConnState.CONNECTED)),
              (0.15, platform_fails("db down"))]
    engine = FakeEngine(settings(grace=0.2), estate(), script)
    got = heard(engine)
    await engine.start()
    try:
        await asyncio.sleep(0.6)
        changed = [e for e in got if isinstance(e, DomainChanged)]
        assert [(c.host_name, c.event.name, c.event.event) for c in changed] == [
            ("hv-1", "agree", "stopped")]
        assert changed[0].event.old is not None and changed[0].event.new is not None
        assert (changed[0].event.old.state, changed[0].event.new.state) == (
            VirtState.RUNNING, VirtState.SHUTOFF)
        failed = [e for e in got if isinstance(e, PlatformFailed)]
        assert [f.message for f in failed] == ["https://vdi.example: db down"]
        drift = [e.change for e in got if isinstance(e, DriftChanged)
                 and e.change.drift.subject == "agree"]
        assert [c.status for c in drift] == [DriftStatus.PENDING, DriftStatus.CONFIRMED]
        last = engine.last
        assert last is not None and last.hosts[engine.estate.host_id("hv-2")].state is (
            ConnState.CONNECTED)
        assert kinds(last)["on-failed"] == set()  # read now, and it agrees
    finally:
        await engine.stop()


async def test_a_platform_that_fails_at_start_raises_as_the_real_engine():
    engine = FakeEngine(settings(), estate())
    got = heard(engine)
    engine.fail_platform("cannot connect: connection refused")
    with pytest.raises(VdiError):
        await engine.start()
    assert isinstance(got[-1], PlatformFailed)


async def test_plan_and_act_use_the_real_rules_and_make_both_sides_agree(tmp_path: Path):
    engine = FakeEngine(settings(tmp_path), estate())
    got = heard(engine)
    await engine.start()
    try:
        snap = engine.last
        assert snap is not None
        key = {r.name: r.key for r in snap.comparison.vms}
        # The platform says off, libvirt running: start (one side off) and shutdown (one side
        # running) both apply.
        assert engine.actions_for([key["off-in-vdi"]]) == tuple(Action)
        assert engine.actions_for([key["agree"], key["stray"]]) == ()
        plan = engine.plan(Action.SYNC, [key["off-in-vdi"], key["stray"], key["agree"]])
        assert [t.name for t in plan.send] == ["off-in-vdi"]
        reasons = dict((t.name, why) for t, why in plan.refused)
        assert reasons["stray"].startswith("only in libvirt") and reasons["agree"].startswith(
            "drift gone")
        result = await engine.act(plan)
        assert result.exit_code == 1  # "stray" cannot be acted on
        assert result.outcomes[key["off-in-vdi"]][0] is ActionPhase.RESOLVED
        phases = [(u.target.name, u.phase) for u in got if isinstance(u, ActionUpdate)]
        assert ("off-in-vdi", ActionPhase.SENT) in phases
        assert phases.index(("off-in-vdi", ActionPhase.SENT)) < phases.index(
            ("off-in-vdi", ActionPhase.RESOLVED))
        assert kinds(engine.last)["off-in-vdi"] == set()  # type: ignore[arg-type]
    finally:
        await engine.stop()


async def test_an_action_error_fails_that_vm_and_read_only_refuses(tmp_path: Path):
    engine = FakeEngine(settings(tmp_path), estate())
    engine.action_errors["off-in-vdi"] = "locked by another task"
    await engine.start()
    try:
        assert engine.last is not None
        key = {r.name: r.key for r in engine.last.comparison.vms}
        result = await engine.act(engine.plan(Action.SHUTDOWN, [key["off-in-vdi"]]))
        assert result.outcomes[key["off-in-vdi"]] == (ActionPhase.FAILED,
                                                      "locked by another task")
    finally:
        await engine.stop()
    locked = FakeEngine(settings(tmp_path, read_only=True), estate())
    await locked.start()
    try:
        assert locked.actions_for(["anything"]) == ()
        with pytest.raises(ActionError, match="read-only"):
            locked.plan(Action.SYNC, ["anything"])
    finally:
        await locked.stop()


def test_the_fake_engine_loads_neither_textual_nor_the_lab_nor_more_libvirt_than_events():
    code = ("import sys; import vditui.core.events; base = 'libvirt' in sys.modules; "
            "import vditui.core.fake_engine; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual' "
            "or m.startswith('vditui.lab') or m in ('vditui.core.engine', 'httpx') "
            "or (m == 'libvirt' and not base)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


async def test_probes_answer_as_the_hosts_stand_and_an_adopted_uri_reconnects():
    engine = FakeEngine(settings(), estate())
    got = heard(engine)
    await engine.start()
    try:
        hv1, hv2 = (engine.estate.host_id(n) for n in ("hv-1", "hv-2"))
        works, fails = engine.estate.uris[hv1][0], engine.estate.uris[hv2][0]
        results = await engine.probe_host(hv1, ["qemu+ssh://root@10.0.0.1/system"])
        assert [(r.uri, r.ok) for r in results] == [
            ("qemu+ssh://root@10.0.0.1/system", False), (works, True)]
        direct = "qemu+tcp://10.0.0.2:16510/system"
        engine.probes[direct] = replace(results[1], uri=direct)
        await engine.use_uri(hv2, direct)
        link = [e.host for e in got if isinstance(e, HostChanged)][-1]
        assert (link.name, link.state, link.view.uri) == ("hv-2", ConnState.CONNECTED, direct)
        assert link.uris[0] == direct and fails in link.uris
        assert ("use_uri", hv2, direct) in engine.commands
    finally:
        await engine.stop()
