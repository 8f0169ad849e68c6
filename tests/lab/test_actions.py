"""Actions against the lab, through the engine: every action followed to agreement on the lab's
real libvirt hosts, every refusal, an errorList entry, a platform that refuses, hangs or drops
the connection after acting (nothing is ever sent twice: the lab counts every request), a token
that expires just before the request, read-only mode, the audit trail (contents, mode, no
secret), and 210 VMs sent as one batch request."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.full_disk import nearly_full_trail
from vditui.core.actions import Action, ActionError, ActionPhase, ActionResult
from vditui.core.engine import Engine, EngineSettings
from vditui.core.events import ActionUpdate, EngineEvent
from vditui.lab.lab import Lab
from vditui.lab.scenario import Scenario, generate

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

Start = Callable[..., Awaitable[Engine]]
BATCH = {Action.START: "POST /ocloud/v1/domain/start",
         Action.SHUTDOWN: "POST /ocloud/v1/domain/close",
         Action.REBOOT: "POST /ocloud/v1/domain/reboot"}
SYNC = "POST /ocloud/v1/domain/{id}/sync-status"


class Watched:
    """An engine on a lab, its events, and the lab's request counts from the start of the
    action on."""

    def __init__(self, lab: Lab, engine: Engine, events: list[EngineEvent]) -> None:
        self.lab, self.engine, self.events = lab, engine, events

    def keys(self, *names: str) -> list[str]:
        snap = self.engine.reconcile_now()
        assert snap is not None
        found = [r.key for n in names for r in snap.comparison.vms if r.name == n]
        assert len(found) == len(names), names
        return found

    def updates(self, key: str) -> list[ActionUpdate]:
        return [e for e in self.events if isinstance(e, ActionUpdate) and e.target.key == key]

    def posts(self) -> dict[str, int]:
        assert self.lab.vdi is not None
        return {k: n for k, n in self.lab.vdi.requests.items() if k.startswith("POST ")
                and "login" not in k}

    async def act(self, action: Action, *names: str, force: bool = False) -> ActionResult:
        plan = self.engine.plan(action, self.keys(*names), force)
        assert self.lab.vdi is not None
        self.lab.vdi.reset_counters()
        return await self.engine.act(plan)


@pytest.fixture
def watched(lab: Lab, start_engine: Start, engine_settings: Callable[..., EngineSettings],
            tmp_path: Path) -> Callable[..., Awaitable[Watched]]:
    assert lab.vdi is not None
    lab.vdi.action_delay = 0.3

    async def make(the_lab: Lab = lab, **overrides: Any) -> Watched:
        settings = engine_settings(the_lab, **{"audit_path": tmp_path / "audit.jsonl",
                                               "action_timeout": 15.0, **overrides})
        events: list[EngineEvent] = []
        engine = await start_engine(settings, watch=False, listener=events.append)
        await engine.wait_settled(15)
        return Watched(the_lab, engine, events)

    return make


def phases(w: Watched, key: str) -> list[ActionPhase]:
    return [u.phase for u in w.updates(key)]


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------- success


async def test_sync_resolves_a_state_drift_and_is_audited(
        watched: Callable[..., Awaitable[Watched]], lab: Lab, tmp_path: Path) -> None:
    w = await watched()
    (key,) = w.keys("office-11")  # the platform says off, libvirt runs it
    result = await w.act(Action.SYNC, "office-11")
    assert result.exit_code == 0
    phase, message = result.outcomes[key]
    assert phase is ActionPhase.RESOLVED and message.startswith("office-11: resolved ")
    assert message.endswith(" s after sync")
    assert phases(w, key) == [ActionPhase.SENT, ActionPhase.ACCEPTED, ActionPhase.RESOLVED]
    assert w.posts() == {SYNC: 1}
    # The engine's own comparison followed: the drift is gone for every face.
    snap = w.engine.reconcile_now()
    assert snap is not None
    assert not next(r for r in snap.comparison.vms if r.key == key).drifts

    path = tmp_path / "audit.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    request, outcome = audit_lines(path)
    vm = lab.vm("office-11")
    assert vm.vdi is not None
    for line in (request, outcome):
        assert line["action_id"] == result.action_id and line["platform"] == lab.vdi_url
        assert line["user"] == lab.username and line["action"] == "sync"
        assert line["force"] is False
        assert datetime.fromisoformat(line["time"]).utcoffset() is not None
    assert request["event"] == "request"
    assert request["vms"] == [{"id": vm.vdi.id, "name": "office-11", "host": "hv-o2"}]
    assert request["requests"] == [{"method": "POST", "body": {"syncType": 1},
                                    "path": f"/ocloud/v1/domain/{vm.vdi.id}/sync-status"}]
    assert outcome["event"] == "outcome" and outcome["exit_code"] == 0
    assert outcome["answers"][0]["msg"]  # the platform's own words
    assert outcome["outcomes"] == [{"vm_id": vm.vdi.id, "name": "office-11", "host": "hv-o2",
                                    "phase": "resolved", "message": message}]
    text = path.read_text()
    client = w.engine._client  # white box: the tokens this client was given
    secrets = [lab.password, hashlib.md5(lab.password.encode()).hexdigest(),
               *(t for t in [client._token, *client._old_tokens] if t)]
    assert len(secrets) >= 3 and not [s for s in secrets if s in text]


@pytest.mark.parametrize(("action", "force", "name", "host", "after"), [
    (Action.START, False, "class-a-04", "hv-t1", "running"),
    (Action.SHUTDOWN, False, "office-11", "hv-o2", "shutoff"),
    (Action.SHUTDOWN, True, "office-11", "hv-o2", "shutoff"),
    (Action.REBOOT, False, "office-11", "hv-o2", "running"),
    (Action.REBOOT, True, "office-11", "hv-o2", "running"),
])
async def test_each_batch_action_acts_on_libvirt_and_is_followed_to_agreement(
        watched: Callable[..., Awaitable[Watched]], lab: Lab, action: Action, force: bool,
        name: str, host: str, after: str) -> None:
    w = await watched()
    (key,) = w.keys(name)
    result = await w.act(action, name, force=force)
    assert result.outcomes[key][0] is ActionPhase.RESOLVED, result.outcomes
    assert result.exit_code == 0
    assert w.posts() == {BATCH[action]: 1}
    vm = lab.vm(name)
    assert vm.vdi is not None
    assert lab.virt_state(host, vm.uuid) == after
    assert lab.vdi is not None
    (sent,) = lab.vdi.actions.requests
    assert sent.body == {"idList": [vm.vdi.id], **({"isForce": 1} if force else {})}


async def test_sync_host_is_one_request_for_the_host(
        watched: Callable[..., Awaitable[Watched]], lab: Lab) -> None:
    w = await watched()
    keys = w.keys("office-11", "office-12")  # both on hv-o2, both differing
    result = await w.act(Action.SYNC_HOST, "office-11", "office-12")
    assert w.posts() == {"POST /ocloud/v1/host/{id}/sync-status": 1}
    assert [result.outcomes[k][0] for k in keys] == [ActionPhase.RESOLVED] * 2
    assert result.outcomes[keys[1]][1].endswith(" s after host sync")
    assert result.exit_code == 0


# --------------------------------------------------------------------------- refusals


async def test_refusals_before_sending_say_why(watched: Callable[..., Awaitable[Watched]],
                                               lab: Lab) -> None:
    w = await watched()
    plan = w.engine.plan(Action.SYNC, w.keys("lab-gpu-03", "stray-build", "class-b-02",
                                             "office-01"))
    reasons = {t.name: why for t, why in plan.refused}
    assert plan.send == ()
    assert reasons["lab-gpu-03"].startswith("upgrading (status 6)")
    assert "only in libvirt" in reasons["stray-build"]
    assert "import it into the platform" in reasons["stray-build"]
    assert "no drift an action can end: only vcpu" in reasons["class-b-02"]
    assert reasons["office-01"] == "drift gone: platform says running, libvirt running"
    assert w.engine.actions_for(w.keys("stray-build", "office-01")) == ()
    assert set(w.engine.actions_for(w.keys("office-11"))) == set(Action)

    # Planned while the drift stood; by the fresh re-read just before sending, one VM turned
    # busy and the other's drift had gone: neither is sent.
    busy, gone = lab.vm("office-11"), lab.vm("office-12")
    plan = w.engine.plan(Action.SYNC, w.keys("office-11", "office-12"))
    assert len(plan.send) == 2
    assert lab.vdi is not None
    lab.vdi.set_vm_status(busy.uuid, 5)
    lab.vdi.set_vm_status(gone.uuid, 2)  # suspended: what libvirt says (paused)
    lab.vdi.reset_counters()
    result = await w.engine.act(plan)
    assert w.posts() == {}
    k_busy, k_gone = w.keys("office-11", "office-12")
    assert result.outcomes[k_busy][0] is ActionPhase.REFUSED
    assert "busy" in result.outcomes[k_busy][1]
    assert result.outcomes[k_gone] == (
        ActionPhase.REFUSED, "office-12: drift gone: platform says suspended, libvirt paused")
    assert result.exit_code == 1  # the busy one does not agree
    assert lab.vdi.requests["GET /ocloud/v1/domain/{id}"] == 2  # re-read, one GET each
    with pytest.raises(ActionError, match="no force variant"):
        w.engine.plan(Action.START, w.keys("class-a-04"), force=True)


async def test_read_only_and_no_audit_trail_refuse_everything(
        watched: Callable[..., Awaitable[Watched]], lab: Lab) -> None:
    w = await watched(read_only=True)
    keys = w.keys("office-11")
    assert w.engine.actions_for(keys) == ()
    with pytest.raises(ActionError, match="read-only"):
        w.engine.plan(Action.SYNC, keys)
    writable = await watched()
    plan = writable.engine.plan(Action.SYNC, keys)
    with pytest.raises(ActionError, match="read-only"):
        await w.engine.act(plan)
    unaudited = await watched(audit_path=None)
    with pytest.raises(ActionError, match="audit"):
        unaudited.engine.plan(Action.SYNC, keys)
    assert w.posts() == {}


# --------------------------------------------------------------------------- the platform says no


async def test_an_error_list_entry_fails_that_vm_only(
        watched: Callable[..., Awaitable[Watched]], lab: Lab) -> None:
    w = await watched()
    assert lab.vdi is not None
    lab.vdi.set_action_fault("error_list", vms=["office-12"])
    k11, k12 = w.keys("office-11", "office-12")
    result = await w.act(Action.SHUTDOWN, "office-11", "office-12", force=True)
    assert w.posts() == {BATCH[Action.SHUTDOWN]: 1}
    assert result.outcomes[k12] == (
        ActionPhase.FAILED, "office-12: the platform did not act: 虚机状态异常，操作失败 "
                            "(the platform refused to act on this VM)")  # its errorMsg
    assert phases(w, k12) == [ActionPhase.SENT, ActionPhase.FAILED]  # not followed
    assert result.outcomes[k11][0] is ActionPhase.RESOLVED
    assert result.exit_code == 2
    assert lab.virt_state("hv-o2", lab.vm("office-12").uuid) == "paused"  # left alone


async def test_a_failed_platform_task_is_reported_at_once_in_its_words(
        watched: Callable[..., Awaitable[Watched]], lab: Lab) -> None:
    """The batch takes the VM (its event id is in eventIdList) but the task fails: the
    follow-up reads GET /ocloud/v1/event/{id} and says why, long before the action timeout."""
    w = await watched(action_timeout=60.0)
    assert lab.vdi is not None
    lab.vdi.set_action_fault("task_fail", vms=["class-a-04"], msg="存储空间不足 (no storage)")
    (key,) = w.keys("class-a-04")
    result = await w.act(Action.START, "class-a-04")
    assert result.outcomes[key] == (ActionPhase.FAILED, "class-a-04: the platform's task "
                                                        "failed: 存储空间不足 (no storage)")
    assert phases(w, key) == [ActionPhase.SENT, ActionPhase.ACCEPTED, ActionPhase.FAILED]
    assert result.exit_code == 2
    assert lab.vdi.requests["GET /ocloud/v1/event/{id}"] >= 1
    took = [e.at for e in w.updates(key)]
    assert took[-1] - took[0] < 15  # not the 60 s timeout
    assert w.posts() == {BATCH[Action.START]: 1}


async def test_a_status_answer_fails_every_vm_and_is_not_resent(
        watched: Callable[..., Awaitable[Watched]], lab: Lab) -> None:
    w = await watched()
    assert lab.vdi is not None
    lab.vdi.set_action_fault("status", code=3001, msg="许可证已过期 (licence expired)")
    (key,) = w.keys("class-a-04")
    result = await w.act(Action.START, "class-a-04")
    assert w.posts() == {BATCH[Action.START]: 1}
    assert result.outcomes[key] == (ActionPhase.FAILED, "class-a-04: refused by the platform: "
                                                        "许可证已过期 (licence expired)")
    assert result.exit_code == 2


async def test_a_hanging_platform_is_not_asked_twice(
        watched: Callable[..., Awaitable[Watched]], lab: Lab) -> None:
    w = await watched(call_timeout=1.5, action_timeout=3.0)
    assert lab.vdi is not None
    lab.vdi.set_action_fault("hang", seconds=4.0)  # then dropped, nothing done
    (key,) = w.keys("class-a-04")
    result = await w.act(Action.START, "class-a-04")
    assert w.posts() == {BATCH[Action.START]: 1}
    failed = [u.message for u in w.updates(key) if u.phase is ActionPhase.FAILED]
    assert len(failed) == 1 and "no answer within 1.5 s" in failed[0]
    assert "not re-sent" in failed[0]
    phase, message = result.outcomes[key]
    assert phase is ActionPhase.UNRESOLVED and "still differs after 3 s" in message
    assert "platform says running, libvirt shutoff" in message
    assert result.exit_code == 2
    lab.vdi.set_action_fault(None)
    assert lab.vdi.wait_actions(10) and lab.vdi.actions.outcomes == []


async def test_a_platform_that_acts_then_drops_the_connection(
        watched: Callable[..., Awaitable[Watched]], lab: Lab) -> None:
    w = await watched()
    assert lab.vdi is not None
    lab.vdi.set_action_fault("drop_after_act")
    (key,) = w.keys("class-a-04")
    result = await w.act(Action.START, "class-a-04")
    assert w.posts() == {BATCH[Action.START]: 1}
    assert phases(w, key) == [ActionPhase.SENT, ActionPhase.FAILED, ActionPhase.RESOLVED]
    phase, message = result.outcomes[key]
    assert phase is ActionPhase.RESOLVED and message.startswith("class-a-04: no answer from the "
                                                                "platform (")
    assert "; not re-sent; follow-up: resolved " in message
    assert message.endswith(" s after start (platform says running, libvirt running)")
    assert result.exit_code == 2  # the platform could not be heard, even though it acted
    assert lab.vdi.wait_actions(10)
    assert [o.vm_name for o in lab.vdi.actions.outcomes] == ["class-a-04"]  # acted once


async def test_a_platform_that_acts_then_answers_http_401_is_not_resent(
        watched: Callable[..., Awaitable[Watched]], lab: Lab) -> None:
    # A gateway's 401 after the platform acted: not a refused token (that is in the body).
    w = await watched()
    assert lab.vdi is not None
    lab.vdi.set_action_fault("unauthorized_after_act")
    (key,) = w.keys("class-a-04")
    result = await w.act(Action.START, "class-a-04")
    assert w.posts() == {BATCH[Action.START]: 1}
    assert lab.vdi.requests["POST /ocloud/v1/login"] == 0  # no new login to send it again
    failed = [u.message for u in w.updates(key) if u.phase is ActionPhase.FAILED]
    assert failed == ["class-a-04: the platform answered HTTP 401 Unauthorized after the request "
                      "was sent; not re-sent, following it to see whether it acted"]
    phase, message = result.outcomes[key]
    assert phase is ActionPhase.RESOLVED, message
    assert message.startswith("class-a-04: the platform answered HTTP 401 Unauthorized after the "
                              "request was sent; not re-sent; follow-up: resolved ")
    assert message.endswith("after start (platform says running, libvirt running)")
    assert result.exit_code == 2  # the platform's answer said nothing that can be trusted
    assert lab.vdi.wait_actions(10)
    assert [o.vm_name for o in lab.vdi.actions.outcomes] == ["class-a-04"]  # acted once


async def test_cancelled_while_following_an_unanswered_request_the_outcome_says_so(
        watched: Callable[..., Awaitable[Watched]], lab: Lab, tmp_path: Path) -> None:
    w = await watched(call_timeout=1.0, action_timeout=30.0)
    assert lab.vdi is not None
    lab.vdi.set_action_fault("hang", seconds=30.0)  # no answer; dropped when released
    (key,) = w.keys("class-a-04")
    plan = w.engine.plan(Action.START, [key])
    lab.vdi.reset_counters()
    task = asyncio.create_task(w.engine.act(plan))
    try:
        for _ in range(200):
            if ActionPhase.FAILED in phases(w, key):
                break
            await asyncio.sleep(0.05)
        task.cancel()  # what Ctrl-C or SIGTERM does to `vditui act` and to the TUI's worker
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        lab.vdi.set_action_fault(None)
    _, outcome = audit_lines(tmp_path / "audit.jsonl")
    assert outcome["event"] == "outcome" and outcome["interrupted"] is True
    ((name, phase, message),) = [(o["name"], o["phase"], o["message"])
                                 for o in outcome["outcomes"]]
    assert (name, phase) == ("class-a-04", "unresolved")
    assert message.startswith("class-a-04: interrupted after sending; no answer from the "
                              "platform (")
    assert message.endswith("no answer within 1 s); not re-sent"), message
    assert w.posts() == {BATCH[Action.START]: 1}


async def test_a_full_disk_under_the_audit_trail_sends_nothing(
        watched: Callable[..., Awaitable[Watched]], lab: Lab, tmp_path: Path) -> None:
    with nearly_full_trail(tmp_path / "small") as (trail, before):
        w = await watched(audit_path=trail)
        with pytest.raises(ActionError, match=r"cannot write the audit trail .*No space left "
                                              r"on device; the part written was removed; "
                                              r"nothing was sent"):
            await w.act(Action.START, "class-a-04")
        assert w.posts() == {}
        assert trail.read_bytes() == before


async def test_a_token_refused_before_acting_is_sent_once_more(
        watched: Callable[..., Awaitable[Watched]], lab: Lab) -> None:
    w = await watched()
    assert lab.vdi is not None
    vdi = lab.vdi

    def expire(e: EngineEvent) -> None:
        if isinstance(e, ActionUpdate) and e.phase is ActionPhase.SENT:
            vdi.expire_tokens()  # the request that follows is told its token has expired

    w.engine.listen(expire)
    (key,) = w.keys("class-a-04")
    result = await w.act(Action.START, "class-a-04")
    assert result.outcomes[key][0] is ActionPhase.RESOLVED and result.exit_code == 0
    assert w.posts() == {BATCH[Action.START]: 2}  # refused (token), then sent
    assert vdi.requests["POST /ocloud/v1/login"] == 1
    assert vdi.wait_actions(10)
    assert len(vdi.actions.outcomes) == 1  # and acted on once


# --------------------------------------------------------------------------- bulk


def bulk_scenario() -> Scenario:
    """210 VMs on two hosts, each running in libvirt while the platform says it is off."""
    base = generate(hosts=2, vms_per_host=105, name="bulk")
    vms = []
    for vm in base.vms:
        assert vm.vdi is not None and vm.virt is not None
        vms.append(replace(vm, vdi=replace(vm.vdi, status=0),
                           virt=replace(vm.virt, state="running"), expect=("state",)))
    return replace(base, vms=tuple(vms))


async def test_210_vms_are_one_batch_request(
        watched: Callable[..., Awaitable[Watched]], fresh_lab: Callable[..., Lab]) -> None:
    lab = fresh_lab(bulk_scenario())
    assert lab.vdi is not None
    lab.vdi.action_delay = 0.3
    w = await watched(lab, action_timeout=30.0)
    names = [vm.name for vm in lab.scenario.vms]
    result = await w.act(Action.SHUTDOWN, *names, force=True)
    assert w.posts() == {BATCH[Action.SHUTDOWN]: 1}
    (sent,) = lab.vdi.actions.requests
    assert len(sent.body["idList"]) == 210 and sent.body["isForce"] == 1
    assert {p for p, _ in result.outcomes.values()} == {ActionPhase.RESOLVED}
    assert len(result.outcomes) == 210 and result.exit_code == 0
    # Re-read by the two hosts' lists, not 210 GETs per round.
    assert lab.vdi.requests["GET /ocloud/v1/domain/{id}"] == 0


async def test_a_sync_of_a_vm_only_in_the_platform_says_what_it_can_do_and_waits_no_longer(
        watched: Callable[..., Awaitable[Watched]], lab: Lab) -> None:
    # No sync can make libvirt have the domain: the plan says what a sync can at most do, and
    # the follow-up waits REACH_WAIT for it (the platform saying off), not action_timeout.
    from vditui.core.act import REACH_WAIT
    from vditui.core.act_rules import ONLY_IN_PLATFORM

    w = await watched(action_timeout=60.0)
    (key,) = w.keys("class-b-05")
    plan = w.engine.plan(Action.SYNC, [key])
    assert [t.name for t, _ in plan.notes] == ["class-b-05"]
    assert "at most make the platform stop calling it running" in plan.notes[0][1]
    started = time.monotonic()
    result = await w.engine.act(plan)
    took = time.monotonic() - started
    phase, message = result.outcomes[key]
    # The lab's platform keeps its record when libvirt has no domain to read: not off, so
    # still differing, said with what to do, after REACH_WAIT rather than 60 s.
    assert phase is ActionPhase.UNRESOLVED and message.endswith(ONLY_IN_PLATFORM), message
    assert took < REACH_WAIT + 10
