"""Faults, injected for real in the lab, seen by the engine and by the headless commands.

Every fault is made by the lab's fault proxies, by killing processes or by the simulated
platform misbehaving; nothing in vditui is mocked. For each one: the message names the host (or
the platform) and the cause, the last known data is kept with its age, the other hosts are not
held up (their events keep arriving), and once the fault clears everything comes back: the
session connects again, its domains are read again and equal what libvirt really has.

The fault matrix in ``docs/reliability.md`` names these tests.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveHost, live_host, live_hosts
from vditui.commands.check import cmd_check
from vditui.commands.watch import PLATFORM_BACK, cmd_watch
from vditui.core.engine import Engine
from vditui.core.events import (
    DomainChanged,
    EngineEvent,
    HostChanged,
    PlatformFailed,
    PlatformRefreshed,
)
from vditui.core.models import ConnState, DriftKind, VirtErrorKind
from vditui.core.session import HostSession
from vditui.core.vdi import (
    VdiAuthError,
    VdiHttpError,
    VdiNotJson,
    VdiStatusError,
    VdiUnreachable,
)
from vditui.lab.lab import Lab
from vditui.lab.vdi_server import MSG_TOKEN
from vditui.lab.waiting import eventually

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

VDITUI = str(Path(sys.executable).with_name("vditui"))
STATE_NAMES = {1: "running", 3: "paused", 5: "shutoff"}
#: A host change must reach the engine this fast, whatever another host or the platform does.
EVENT_WITHIN = 2.0
#: The killed daemon's session must be back this fast after the daemon is.
BACK_WITHIN = 5.0


# --------------------------------------------------------------------------- helpers




def recorder() -> tuple[list[tuple[float, EngineEvent]], Callable[[EngineEvent], None]]:
    updates: list[tuple[float, EngineEvent]] = []
    return updates, lambda u: updates.append((time.monotonic(), u))


def session(engine: Engine, name: str) -> LiveHost:
    return live_host(engine, name)


def host_messages(updates: list[tuple[float, EngineEvent]], name: str,
                  since: float = 0.0) -> list[str]:
    return [u.host.describe() for at, u in updates
            if isinstance(u, HostChanged) and at >= since and u.host.name == name]


def lab_domains(lab: Lab, host: str) -> dict[str, tuple[str, str]]:
    """uuid -> (name, state) of what the host's libvirt has now (the lab's own connection)."""
    return {d.UUIDString(): (d.name(), STATE_NAMES.get(d.state()[0], str(d.state()[0])))
            for d in lab.host(host).conn.listAllDomains()}


def seen_domains(s: HostSession) -> dict[str, tuple[str, str]]:
    assert s.domains is not None, f"{s.name}: never read"
    return {u: (d.name, d.state.value) for u, d in s.domains.items()}


async def event_flows(lab: Lab, engine: Engine, updates: list[tuple[float, EngineEvent]],
                      host: str, vm_name: str, action: str) -> float:
    """Change a VM on a healthy host; its event must reach the engine within EVENT_WITHIN s.
    Returns how long it took."""
    vm = lab.vm(vm_name)
    since = time.monotonic()
    await asyncio.to_thread(lab.act, host, vm.uuid, action)
    await eventually(lambda: any(at >= since and isinstance(u, DomainChanged)
                               and u.event.uuid == vm.uuid
                               for at, u in updates), EVENT_WITHIN,
                   f"{vm_name}'s {action} event on {host}")
    assert session(engine, host).state is ConnState.CONNECTED
    return time.monotonic() - since


def rows_of(engine: Engine, host: str) -> dict[str, Any]:
    cmp = engine.latest_comparison()
    assert cmp is not None
    (hid,) = [h.host.id for h in cmp.hosts if h.host.name == host]
    return {r.name: r for r in cmp.vms if (r.virt_host_id or r.host_id) == hid}


@pytest.fixture
def pair(fresh_lab, subset, default_scenario) -> Lab:
    """The field report's host and a classroom host, both healthy."""
    return fresh_lab(subset(default_scenario, ["ocloud", "hv-t1"], "pair"))


def fast(engine_settings: Callable[..., Any], lab: Lab, **kw: Any) -> Any:
    """Settings for fault tests: keepalive notices a silent host in 3 s, nothing polls."""
    base = {"keepalive_interval": 1, "keepalive_count": 2, "reread_interval": 3600.0,
            "refresh_interval": 3600.0}
    return engine_settings(lab, **{**base, **kw})


# --------------------------------------------------------------------------- hosts, mid-session

#: fault -> (inject, cause in the first message, how the session ends up while it lasts).
HOST_FAULTS = {
    "refuse": (lambda lab: lab.set_fault("hv-t1", "refuse"), "refused", ConnState.FAILED),
    "hang": (lambda lab: lab.set_fault("hv-t1", "hang"), "timeout", ConnState.FAILED),
    "kill": (lambda lab: lab.kill_daemon("hv-t1"), "connection-lost", ConnState.FAILED),
}


@pytest.mark.parametrize("fault", list(HOST_FAULTS))
async def test_host_fault_mid_session(fault, pair, engine_settings, start_engine):
    lab = pair
    inject, cause, during = HOST_FAULTS[fault]
    updates, listener = recorder()
    # The killed daemon must come back with the default backoff (max 4 s); the others may retry
    # faster, to keep the test short.
    extra = {} if fault == "kill" else {"max_backoff": 1.0}
    engine = await start_engine(fast(engine_settings, lab, **extra), listener=listener)
    assert await engine.wait_settled(5)
    t1, other = session(engine, "hv-t1"), session(engine, "ocloud")
    before, read_at = seen_domains(t1), t1.read_at
    assert before == lab_domains(lab, "hv-t1")

    t_fault = time.monotonic()
    await asyncio.to_thread(inject, lab)
    # Noticed, and said with the host's name and the cause.
    said = (await eventually(lambda: [m for m in host_messages(updates, "hv-t1", t_fault)
                                    if cause in m], 6.0, f"hv-t1's {fault} to be noticed"))[0]
    assert re.match(rf"hv-t1: (reconnecting|failed) {re.escape(lab.hosts['hv-t1'].uri)}: "
                    rf"{cause}: ", said), said
    if fault == "hang":
        # Keepalive (1 s x 2) noticed the silence, well before any call timed out.
        assert "keepalive" in said and time.monotonic() - t_fault < 5.0
    await eventually(lambda: t1.state is during, 5.0, f"hv-t1 {during.value}")
    assert t1.error is not None and t1.error.hint

    # The last known data is kept, with its age, and shown (unchecked) on the rows.
    assert seen_domains(t1) == before and t1.read_at == read_at
    view = t1.view()
    assert view.domains is not None and time.time() - view.read_at >= 0
    engine.reconcile_now()
    rows = rows_of(engine, "hv-t1")
    assert {r.virt.uuid: (r.virt.name, r.virt.state.value) for r in rows.values()
            if r.virt is not None} == before
    assert not any(r.checked for r in rows.values())
    (unreachable,) = [d for d in engine.latest_comparison().drifts
                      if d.kind is DriftKind.HOST_UNREACHABLE]
    assert unreachable.subject == "hv-t1"

    # The other host is not held up: connected all along, and its events arrive.
    await event_flows(lab, engine, updates, "ocloud", "lic", "destroy")
    assert other.state is ConnState.CONNECTED and host_messages(updates, "ocloud", t_fault) == []

    # Something changes on hv-t1 while vditui cannot see it (a killed daemon loses its state:
    # it comes back with the scenario's).
    changed = lab.vm("class-a-02")
    if fault != "kill":
        await asyncio.to_thread(lab.act, "hv-t1", changed.uuid, "suspend")
    else:
        await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - t_fault)))

    wall = time.time()
    if fault == "kill":
        await asyncio.to_thread(lab.restart_daemon, "hv-t1")
    else:
        await asyncio.to_thread(lab.set_fault, "hv-t1", "pass")
    t_clear = time.monotonic()  # the daemon is back (or the path is open again)
    await eventually(lambda: t1.state is ConnState.CONNECTED and t1.read_at > wall, BACK_WITHIN,
                   "hv-t1 connected and read again")
    assert time.monotonic() - t_clear < BACK_WITHIN
    assert host_messages(updates, "hv-t1", t_clear)[-1].startswith("hv-t1: connected ")
    # Nothing lost: what vditui has is what libvirt has, including the change it missed.
    want = await asyncio.to_thread(lab_domains, lab, "hv-t1")
    await eventually(lambda: seen_domains(t1) == want, 1.0, "hv-t1's domains as libvirt has them")
    if fault != "kill":
        assert t1.domains[changed.uuid].state.value == "paused"
    assert t1.error is None
    engine.reconcile_now()
    assert all(r.checked for r in rows_of(engine, "hv-t1").values())
    assert not any(d.kind is DriftKind.HOST_UNREACHABLE for d in engine.latest_comparison().drifts)
    # Live events flow on the new connection.
    await event_flows(lab, engine, updates, "hv-t1", "class-a-01", "destroy")


async def test_cut_connection_reconnects_at_once(pair, engine_settings, start_engine):
    lab = pair
    updates, listener = recorder()
    engine = await start_engine(fast(engine_settings, lab), listener=listener)
    assert await engine.wait_settled(5)
    t1, other = session(engine, "hv-t1"), session(engine, "ocloud")
    other_read = other.read_at

    t_cut, wall = time.monotonic(), time.time()
    await asyncio.to_thread(lab.cut, "hv-t1")
    await eventually(lambda: t1.state is ConnState.CONNECTED and t1.read_at > wall, BACK_WITHIN,
                   "hv-t1 back after the cut")
    first = host_messages(updates, "hv-t1", t_cut)[0]
    assert first.startswith("hv-t1: reconnecting ") and "connection-lost" in first, first
    assert seen_domains(t1) == lab_domains(lab, "hv-t1")
    assert other.read_at == other_read and other.state is ConnState.CONNECTED
    await event_flows(lab, engine, updates, "hv-t1", "class-a-02", "suspend")


# --------------------------------------------------------------------------- hosts, at connect


async def test_refusing_host_at_connect(fresh_lab, subset, default_scenario, engine_settings,
                                        start_engine):
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-refuse"], "refuse"))
    updates, listener = recorder()
    engine = await start_engine(fast(engine_settings, lab, max_backoff=1.0), listener=listener)
    assert await engine.wait_settled(5)
    s = session(engine, "hv-refuse")
    assert s.state is ConnState.FAILED and s.error.kind is VirtErrorKind.REFUSED
    assert s.domains is None
    msg = host_messages(updates, "hv-refuse")[-1]
    assert msg.startswith("hv-refuse: failed ") and ": refused: " in msg, msg
    (drift,) = [d for d in engine.latest_comparison().drifts
                if d.kind is DriftKind.HOST_UNREACHABLE]
    assert drift.subject == "hv-refuse" and "refused" in drift.message
    rows = rows_of(engine, "hv-refuse")
    assert sorted(rows) == ["office-30", "office-31"]
    assert all(not r.checked and r.virt is None for r in rows.values())
    await event_flows(lab, engine, updates, "ocloud", "lic", "destroy")

    wall = time.time()
    await asyncio.to_thread(lab.set_fault, "hv-refuse", "pass")
    await eventually(lambda: s.state is ConnState.CONNECTED and s.read_at > wall, BACK_WITHIN,
                   "hv-refuse connected once it accepts")
    assert seen_domains(s) == lab_domains(lab, "hv-refuse")
    engine.reconcile_now()
    assert all(r.checked for r in rows_of(engine, "hv-refuse").values())


async def test_hanging_host_at_connect(fresh_lab, subset, default_scenario, engine_settings,
                                       start_engine):
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-hang"], "hang"))
    updates, listener = recorder()
    settings = fast(engine_settings, lab, connect_timeout=2.0, max_backoff=1.0)
    engine = await start_engine(settings, listener=listener)
    s, other = session(engine, "hv-hang"), session(engine, "ocloud")
    await eventually(lambda: other.state is ConnState.CONNECTED, 1.0, "ocloud connected")
    # While hv-hang is still trying, ocloud's events arrive.
    assert s.state is ConnState.CONNECTING
    await event_flows(lab, engine, updates, "ocloud", "lic", "destroy")
    assert s.state is ConnState.CONNECTING, "the event should have come before the timeout"

    await eventually(lambda: s.state is ConnState.FAILED, settings.connect_timeout + 1,
                   "hv-hang to time out")
    msg = host_messages(updates, "hv-hang")[-1]
    assert msg.startswith("hv-hang: failed ") and ": timeout: no answer within 2 s" in msg, msg
    assert s.error.kind is VirtErrorKind.TIMEOUT and s.domains is None

    wall = time.time()
    await asyncio.to_thread(lab.set_fault, "hv-hang", "pass")
    await eventually(lambda: s.state is ConnState.CONNECTED and s.read_at > wall,
                   settings.connect_timeout + BACK_WITHIN, "hv-hang connected once it answers")
    assert seen_domains(s) == lab_domains(lab, "hv-hang")


async def test_failed_host_keeps_its_libvirt_only_domains(fresh_lab, subset, default_scenario,
                                                          engine_settings, start_engine):
    lab = fresh_lab(subset(default_scenario, ["hv-t2", "hv-t3"], "stray"))
    engine = await start_engine(fast(engine_settings, lab, max_backoff=1.0))
    assert await engine.wait_settled(5)
    assert "stray-build" in rows_of(engine, "hv-t3")
    s = session(engine, "hv-t3")
    await asyncio.to_thread(lab.set_fault, "hv-t3", "refuse")
    await eventually(lambda: s.state is ConnState.FAILED, 5.0, "hv-t3 failed")
    engine.reconcile_now()
    assert "stray-build" in rows_of(engine, "hv-t3")


# --------------------------------------------------------------------------- the platform

#: fault -> (inject, clear, error class, cause in the message, settings).
PlatformFault = tuple[Callable[[Lab], None], Callable[[Lab], None], type, str, dict[str, Any]]
PLATFORM_FAULTS: dict[str, PlatformFault] = {
    "down": (lambda lab: lab.vdi.stop(), lambda lab: lab.vdi.start(), VdiUnreachable,
             r"disconnected|dropped the connection|refused", {}),
    "refuse": (lambda lab: lab.set_fault("vdi", "refuse"), lambda lab: lab.set_fault("vdi", "pass"),
               VdiUnreachable, r"cannot connect to .*: connection refused", {}),
    "hang": (lambda lab: lab.set_fault("vdi", "hang"), lambda lab: lab.set_fault("vdi", "pass"),
             VdiUnreachable, r"no answer within 1 s", {"call_timeout": 1.0}),
    "http500": (lambda lab: lab.vdi.set_fault("http500"), lambda lab: lab.vdi.set_fault(None),
                VdiHttpError, r"HTTP 500 Internal Server Error", {}),
    "not_json": (lambda lab: lab.vdi.set_fault("not_json"), lambda lab: lab.vdi.set_fault(None),
                 VdiNotJson, r"answer is not JSON \(text/html", {}),
    "status": (lambda lab: lab.vdi.set_fault("status", code=500, msg="数据库异常 (db down)"),
               lambda lab: lab.vdi.set_fault(None), VdiStatusError,
               # At login (a first run) the client calls it a refused login, with the cause.
               r"platform error 500: 数据库异常 \(db down\)|数据库异常 \(db down\) \(status 500\)",
               {}),
    "slow": (lambda lab: lab.vdi.set_fault("slow", seconds=2.5),
             lambda lab: lab.vdi.set_fault(None), VdiUnreachable, r"no answer within 1 s",
             {"call_timeout": 1.0}),
    "token": (lambda lab: lab.vdi.set_fault("status", code=401, msg=MSG_TOKEN),
              lambda lab: lab.vdi.set_fault(None), VdiAuthError,
              r"login as 'admin' refused: token", {}),
}


@pytest.mark.parametrize("fault", list(PLATFORM_FAULTS))
async def test_platform_fault_keeps_the_last_data(fault, pair, engine_settings, start_engine):
    lab = pair
    inject, clear, cls, cause, extra = PLATFORM_FAULTS[fault]
    updates, listener = recorder()
    engine = await start_engine(fast(engine_settings, lab, **extra), listener=listener)
    assert await engine.wait_settled(5)
    inv = engine.inventory()
    names = sorted(r.name for r in engine.latest_comparison().vms)
    logins = lab.vdi.requests["POST /ocloud/v1/login"]

    await asyncio.to_thread(inject, lab)
    t_fault = time.monotonic()
    refresh = asyncio.create_task(engine.refresh())
    try:
        # The hosts are not held up by a platform that fails, or takes its time doing so.
        took = await event_flows(lab, engine, updates, "hv-t1", "class-a-01", "destroy")
        assert took < EVENT_WITHIN
        await refresh
    finally:
        refresh.cancel()
    (msg,) = [u.message for at, u in updates if isinstance(u, PlatformFailed) and at >= t_fault]
    assert isinstance(engine.platform_error(), cls), repr(engine.platform_error())
    # The platform's URL and the cause, in one line.
    assert lab.vdi_url in msg and re.search(cause, msg), msg
    assert "\n" not in msg and lab.password not in msg
    # The last good data stays, with its age; libvirt goes on.
    assert engine.inventory() is inv and time.time() - inv.fetched_at >= 0
    engine.reconcile_now()
    assert sorted(r.name for r in engine.latest_comparison().vms) == names
    assert all(s.state is ConnState.CONNECTED for s in live_hosts(engine).values())

    await asyncio.to_thread(clear, lab)
    t_clear = time.monotonic()
    await engine.refresh()
    assert engine.platform_error() is None
    assert [type(u) for at, u in updates if at >= t_clear and isinstance(
        u, PlatformFailed | PlatformRefreshed)] == [PlatformRefreshed]
    assert engine.inventory().fetched_at > inv.fetched_at
    assert engine.inventory().hosts == inv.hosts and engine.inventory().vms == inv.vms
    if fault == "token":
        assert lab.vdi.requests["POST /ocloud/v1/login"] > logins


async def test_slow_platform_within_the_timeout_holds_nobody_up(pair, engine_settings,
                                                                start_engine):
    lab = pair
    updates, listener = recorder()
    engine = await start_engine(fast(engine_settings, lab), listener=listener)
    assert await engine.wait_settled(5)
    inv = engine.inventory()
    lab.vdi.set_fault("slow", seconds=1.5)
    start = time.monotonic()
    refresh = asyncio.create_task(engine.refresh())
    try:
        await event_flows(lab, engine, updates, "ocloud", "lic", "destroy")
        assert not refresh.done(), "the event should have come while the platform was slow"
        await refresh
    finally:
        refresh.cancel()
    assert time.monotonic() - start >= 1.5
    assert engine.platform_error() is None and engine.inventory().fetched_at > inv.fetched_at


async def test_token_expired_mid_session_logs_in_again(pair, engine_settings, start_engine):
    lab = pair
    updates, listener = recorder()
    engine = await start_engine(fast(engine_settings, lab), listener=listener)
    assert await engine.wait_settled(5)
    inv, logins = engine.inventory(), lab.vdi.requests["POST /ocloud/v1/login"]
    lab.vdi.expire_tokens()
    await engine.refresh()
    assert engine.platform_error() is None
    assert lab.vdi.requests["POST /ocloud/v1/login"] == logins + 1
    assert engine.inventory().vms == inv.vms and engine.inventory().fetched_at > inv.fetched_at
    assert not [u for _, u in updates if isinstance(u, PlatformFailed)]


@pytest.mark.parametrize("fault", ["short_page", "bad_total"])
async def test_inconsistent_pages_warn_and_lose_nothing(fault, fresh_lab, subset,
                                                        default_scenario, engine_settings,
                                                        start_engine):
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1", "hv-t2"], "pages"))
    updates, listener = recorder()
    engine = await start_engine(fast(engine_settings, lab), listener=listener)
    assert await engine.wait_settled(5)
    inv = engine.inventory()
    sessions = {k: h.created for k, h in live_hosts(engine).items()}
    drifts = {d.ident for d in engine.latest_comparison().drifts}

    lab.vdi.set_fault(fault)
    t_fault = time.monotonic()
    await engine.refresh()
    warned = [w for at, u in updates if isinstance(u, PlatformRefreshed) and at >= t_fault
              for w in u.new_warnings]
    assert warned and all(w.startswith(lab.vdi_url) for w in warned), warned
    assert any("platform reported total=" in w for w in warned), warned
    assert engine.platform_error() is None and engine.stats().platform_warnings == tuple(warned)
    assert {w for w in warned if "total=" in w} <= set(engine.stats().client_warnings)
    # Nothing vanished: every host keeps its session (none restarted), every VM its row.
    assert {h.id for h in engine.inventory().hosts} == {h.id for h in inv.hosts}
    assert {v.id for v in engine.inventory().vms} == {v.id for v in inv.vms}
    assert all(live_hosts(engine)[k].created == created
               and live_hosts(engine)[k].state is ConnState.CONNECTED
               for k, created in sessions.items())
    await asyncio.sleep(0.1)
    assert {d.ident for d in engine.reconcile_now().comparison.drifts} == drifts
    # The same warning is not repeated on every refresh.
    await engine.refresh()
    assert [w for at, u in updates if isinstance(u, PlatformRefreshed) and at >= t_fault
            for w in u.new_warnings] == warned

    lab.vdi.set_fault(None)
    await engine.refresh()
    assert engine.stats().platform_warnings == () and engine.platform_error() is None
    assert engine.inventory().hosts == inv.hosts and engine.inventory().vms == inv.vms


# --------------------------------------------------------------------------- headless: watch


class Watch:
    """``cmd_watch`` running in this loop, its JSON lines collected."""

    def __init__(self, settings: Any) -> None:
        self.out = io.StringIO()
        self.task = asyncio.create_task(cmd_watch(argparse.Namespace(jsonl=True), settings, [],
                                                  out=self.out))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    async def expect(self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str,
                     after: int = 0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((r for r in self.records()[after:] if pred(r)), None)
        assert not self.task.done(), "watch ended"
        return await eventually(find, timeout, what)

    async def stop(self) -> bool:
        """Cancel watch as Ctrl-C does; True when it ended by that cancellation (its engine
        stopped on the way out), not by an error of its own."""
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            return True
        return False


async def test_watch_reports_host_faults_and_recovery(fresh_lab, subset, default_scenario,
                                                      engine_settings):
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1", "hv-t2", "hv-t3", "hv-o1"],
                           "watch-hosts"))
    watch = Watch(fast(engine_settings, lab))
    try:
        for name in ("ocloud", "hv-t1", "hv-t2", "hv-t3", "hv-o1"):
            await watch.expect(lambda r, n=name: r["type"] == "host"
                               and r["message"].startswith(f"{n}: connected "), 5.0,
                               f"{name} connected")
        mark = len(watch.records())
        t_fault = time.monotonic()
        # Four faults at once, one per host; ocloud stays healthy.
        await asyncio.to_thread(lab.set_fault, "hv-t1", "refuse")
        await asyncio.to_thread(lab.set_fault, "hv-t2", "hang")
        await asyncio.to_thread(lab.kill_daemon, "hv-t3")
        await asyncio.to_thread(lab.cut, "hv-o1")
        vm = lab.vm("lic")
        await asyncio.to_thread(lab.act, "ocloud", vm.uuid, "destroy")
        state = await watch.expect(lambda r: r["type"] == "state" and r["vm"] == "lic",
                                   EVENT_WITHIN, "lic's stop while four hosts fail", mark)
        assert (state["old"], state["new"]) == ("running", "shutoff")

        def said(host: str, *words: str) -> Callable[[dict[str, Any]], bool]:
            return lambda r: (r["type"] == "host" and r["message"].startswith(f"{host}: ")
                              and all(w in r["message"] for w in words))

        await watch.expect(said("hv-t1", "failed", "refused"), 3.0, "hv-t1 refused", mark)
        await watch.expect(said("hv-t2", "reconnecting", "timeout", "keepalive"), 6.0,
                           "hv-t2's keepalive timeout", mark)
        await watch.expect(said("hv-t3", "connection-lost"), 3.0, "hv-t3's loss", mark)
        await watch.expect(said("hv-o1", "reconnecting", "connection-lost"), 3.0,
                           "hv-o1's cut", mark)
        await watch.expect(said("hv-o1", "connected"), BACK_WITHIN, "hv-o1 back", mark)
        assert not any(said("ocloud")(r) for r in watch.records()[mark:])

        await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - t_fault)))
        mark = len(watch.records())
        await asyncio.to_thread(lab.restart_daemon, "hv-t3")
        t_back = time.monotonic()
        await asyncio.to_thread(lab.set_fault, "hv-t1", "pass")
        await asyncio.to_thread(lab.set_fault, "hv-t2", "pass")
        for name in ("hv-t1", "hv-t2", "hv-t3"):
            await watch.expect(said(name, "connected"), BACK_WITHIN + 2.0, f"{name} back", mark)
        assert time.monotonic() - t_back < BACK_WITHIN + 2.0
    finally:
        ended = await watch.stop()
    assert ended
    assert {r["type"] for r in watch.records()} <= {"host", "state", "drift", "platform"}


async def test_watch_reports_platform_faults_and_recovery(pair, engine_settings):
    lab = pair
    watch = Watch(fast(engine_settings, lab, refresh_interval=0.3, call_timeout=1.0))
    try:
        await watch.expect(lambda r: r["type"] == "host"
                           and r["message"].startswith("hv-t1: connected "), 5.0, "connected")
        for fault in ("down", "hang", "http500", "not_json", "status", "token"):
            inject, clear, _cls, cause, _extra = PLATFORM_FAULTS[fault]
            mark = len(watch.records())
            await asyncio.to_thread(inject, lab)
            rec = await watch.expect(lambda r: r["type"] == "platform"
                                     and not r["message"].startswith("warning"), 3.0,
                                     f"the platform's {fault}", mark)
            assert lab.vdi_url in rec["message"] and re.search(cause, rec["message"]), rec
            if fault == "http500":
                vm = lab.vm("class-a-01")
                await asyncio.to_thread(lab.act, "hv-t1", vm.uuid, "destroy")
                await watch.expect(lambda r: r["type"] == "state" and r["vm"] == "class-a-01",
                                   EVENT_WITHIN, "an event during the platform's failure", mark)
            mark = len(watch.records())
            await asyncio.to_thread(clear, lab)
            await watch.expect(lambda r: r["type"] == "platform"
                               and r["message"] == PLATFORM_BACK, 3.0,
                               f"the platform back after {fault}", mark)
        # An inconsistent answer is a warning, once.
        mark = len(watch.records())
        lab.vdi.set_fault("bad_total")
        rec = await watch.expect(lambda r: r["type"] == "platform"
                                 and r["message"].startswith("warning: "), 3.0,
                                 "the page total warning", mark)
        assert lab.vdi_url in rec["message"] and "total=" in rec["message"]
        await asyncio.sleep(1.0)  # three more refreshes with the same lie
        warned = [r for r in watch.records()[mark:] if r["type"] == "platform"]
        assert len(warned) == len({r["message"] for r in warned}), warned
        assert not any(r["message"] == PLATFORM_BACK for r in warned)
    finally:
        lab.vdi.set_fault(None)
        assert await watch.stop()


# --------------------------------------------------------------------------- headless: check


async def test_check_names_each_unreachable_host_and_cause(fresh_lab, subset, default_scenario,
                                                           engine_settings):
    lab = fresh_lab(subset(default_scenario, ["ocloud", "hv-t1", "hv-t2", "hv-hang"], "check"))
    lab.set_fault("hv-t1", "refuse")
    lab.kill_daemon("hv-t2")
    settings = engine_settings(lab, connect_timeout=1.0)
    out = io.StringIO()
    start = time.monotonic()
    code = await cmd_check(argparse.Namespace(json=False), settings, [], out=out)
    assert time.monotonic() - start < 5.0
    assert code == 2
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("INCOMPLETE (unreachable): 4 hosts")
    causes = {m.group(1): m.group(2) for line in lines[1:] if (m := re.match(
        r"\s+\[\w+\s*\] unreachable\s+(\S+): libvirt unreachable at \S+: ([\w-]+): ", line))}
    assert causes == {"hv-t1": "refused", "hv-t2": "connection-lost", "hv-hang": "timeout"}

    out = io.StringIO()
    assert await cmd_check(argparse.Namespace(json=True), settings, [], out=out) == 2
    doc = json.loads(out.getvalue())
    assert sorted(doc["summary"]["hosts_unreachable"]) == ["hv-hang", "hv-t1", "hv-t2"]
    assert {d["subject"]: d["libvirt"] for d in doc["drifts"] if d["kind"] == "unreachable"} \
        == causes


async def test_check_surfaces_inconsistent_pages(pair, engine_settings, capsys):
    lab = pair
    lab.vdi.set_fault("bad_total", extra=3)
    settings = engine_settings(lab)
    out = io.StringIO()
    code = await cmd_check(argparse.Namespace(json=True), settings, [], out=out)
    doc = json.loads(out.getvalue())
    assert code == doc["exit_code"] == 1  # the scenario's one drift, class-a-04
    assert any("platform reported total=" in w and lab.vdi_url in w for w in doc["warnings"])
    assert doc["summary"]["hosts"] == 2

    out = io.StringIO()
    assert await cmd_check(argparse.Namespace(json=False), settings, [], out=out) == 1
    err = capsys.readouterr().err
    assert re.search(rf"^vditui: warning: {re.escape(lab.vdi_url)}: platform reported total=",
                     err, re.M), err


def _run_check(lab: Lab, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_STATE_HOME": str(home / "state"),
           "XDG_CACHE_HOME": str(home / "cache"), "LANG": "C.UTF-8",
           "VDITUI_PASSWORD": lab.password, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([VDITUI, "check", "--url", lab.vdi_url, "--user", lab.username,
                           *(a for t in lab.uri_templates for a in ("--uri-template", t)),
                           "--timeout", "1", "--grace", "0"],
                          env=env, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, cwd=home)


@pytest.mark.parametrize("fault", ["down", "http500", "not_json", "status", "token"])
def test_check_cli_platform_fault_exits_2_with_one_line(fault, pair, tmp_path):
    lab = pair
    inject, clear, _cls, cause, _extra = PLATFORM_FAULTS[fault]
    inject(lab)
    try:
        r = _run_check(lab, tmp_path)
    finally:
        clear(lab)
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("vditui: platform: ") and lab.vdi_url in r.stderr
    assert re.search(cause, r.stderr), r.stderr
    assert lab.password not in r.stderr
    # Once the fault clears, the same command works.
    assert _run_check(lab, tmp_path).returncode == 1
