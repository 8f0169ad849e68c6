"""Acting on a drift: which actions apply, the plan, and the action itself (the engine's
``actions_for`` / ``plan`` / ``act`` delegate here).

The care is OpenStack's reconciler's: re-read both sides just before sending, refuse with the
reason when the drift has gone, the VM is busy (status 5) or upgrading (6) or the platform does
not know it, send once (never again, whatever happens), then follow each VM until the two
sides agree or ``action_timeout`` runs out. Every step goes to the listeners as an
:class:`~vditui.core.events.ActionUpdate` and to the audit trail (:mod:`vditui.core.audit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from vditui.core import action_lock, audit
from vditui.core.act_rules import (
    ONLY_IN_PLATFORM,
    agrees,
    applicable,
    done,
    exit_code,
    judge,
    make_plan,
    reach,
    sides,
    target_of,
)
from vditui.core.actions import (
    Action,
    ActionError,
    ActionPhase,
    ActionPlan,
    ActionResult,
    ActionTarget,
)
from vditui.core.events import ActionUpdate
from vditui.core.models import Comparison, VmRow
from vditui.core.port import EstatePort, PlatformRead
from vditui.core.present import action_noun
from vditui.core.settings import EngineSettings
from vditui.core.vdi import VdiError, VdiStatusError
from vditui.core.vdi_actions import BatchAnswer, Request, requests_for
from vditui.core.vdi_errors import after_sending
from vditui.core.vdi_tasks import TaskWatch

log = logging.getLogger("vditui.act")

POLL = 1.5
"""Seconds between platform re-reads while following VMs: quick enough to say "resolved"
within a couple of seconds, few enough requests not to load the platform."""
REACH_WAIT = 10.0
"""Seconds the follow-up waits for a target the action can only partly mend (a sync of a VM
only in the platform) to reach what it can: the platform saying off."""
SYNC_CONCURRENCY = 4

# --------------------------------------------------------------------------- the engine's side


class Actor:
    """The engine's action commands, on the estate's public port; holds which VMs have an
    action in flight."""

    def __init__(self, port: EstatePort, settings: EngineSettings) -> None:
        self.port, self.settings = port, settings
        self._in_flight: dict[str, str] = {}  # platform VM id -> action id

    # ------------------------------------------------------------------ helpers
    def in_flight(self, vm_id: str) -> str | None:
        """The id of the action in progress on this platform VM, if any."""
        return self._in_flight.get(vm_id)

    def _rows(self, keys: Sequence[str]) -> list[tuple[str, VmRow | None]]:
        cmp = self.port.comparison()
        by_key = {r.key: r for r in cmp.vms} if cmp is not None else {}
        return [(k, by_key.get(k)) for k in dict.fromkeys(keys)]

    def _check_allowed(self) -> None:
        s = self.settings
        if s.read_only:
            raise ActionError("read-only mode (--read-only / read_only = true): actions are "
                              "disabled")
        if s.audit_path is None:
            raise ActionError("no audit trail is set (audit_path): actions are refused, since "
                              "they could not be recorded")

    # ------------------------------------------------------------------ commands
    def actions_for(self, keys: Sequence[str]) -> tuple[Action, ...]:
        """The actions that apply to at least one of these rows (with a drift an action can
        end); () in read-only mode."""
        if self.settings.read_only:
            return ()
        return applicable(r for _, r in self._rows(keys))

    def plan(self, action: Action, keys: Sequence[str], force: bool = False) -> ActionPlan:
        """What ``action`` would send for these rows, from the last snapshot (no I/O)."""
        self._check_allowed()
        return make_plan(action, force, self._rows(keys), self.port.host_names(),
                         self._in_flight)

    async def act(self, plan: ActionPlan, *, wait: bool = False,
                  on_wait: Callable[[ActionError], None] | None = None) -> ActionResult:
        """Re-read, re-check, send once, follow up (see the module's docstring), holding the
        platform's action lock throughout: another action on the platform (any process)
        refuses this one with its holder (:class:`~vditui.core.action_lock.ActionLockBusy`),
        or with ``wait`` this one waits for it (``on_wait`` is told once whom for)."""
        self._check_allowed()
        action_id = secrets.token_hex(6)
        ids = [t.vm_id for t in plan.send if t.vm_id]
        for vm_id in ids:
            self._in_flight.setdefault(vm_id, action_id)
        s = self.settings
        assert s.audit_path is not None  # _check_allowed
        holder = action_lock.this_process(
            f"{plan.action.value} {', '.join(t.name for t in plan.send)}", audit.now_iso())
        try:
            async with action_lock.held(s.audit_path.parent, s.url, s.username, holder,
                                        wait=wait, on_wait=on_wait):
                return await _Run(self, action_id, plan).run()
        finally:
            for vm_id in ids:
                if self._in_flight.get(vm_id) == action_id:
                    del self._in_flight[vm_id]


class _Run:
    """One action, from the fresh re-read to the last follow-up."""

    def __init__(self, actor: Actor, action_id: str, plan: ActionPlan) -> None:
        self.actor, self.port = actor, actor.port
        self.settings = actor.settings
        self.id, self.plan = action_id, plan
        self.outcomes: dict[str, tuple[ActionPhase, str]] = {}
        self.targets: dict[str, ActionTarget] = {}
        self.answers: list[dict[str, Any]] = []
        self.unheard: dict[str, str] = {}  # key -> what came back instead of an answer
        self.platform_failed = False
        self.tasks = TaskWatch(self.port)  # the batches' platform tasks (issue 20)

    def update(self, target: ActionTarget, phase: ActionPhase, message: str) -> None:
        self.outcomes[target.key] = (phase, message)
        self.targets[target.key] = target
        log.info("action %s %s: %s %s", self.id, self.plan.action.value, phase.value, message)
        self.port.publish(ActionUpdate(time.time(), self.id, self.plan.action, self.plan.force,
                                       target, phase, message))

    async def run(self) -> ActionResult:
        plan = self.plan
        for target, why in plan.refused:
            self.update(target, ActionPhase.REFUSED, f"{target.name}: {why}")
        checked = plan
        if plan.send:
            try:
                checked = await self.recheck()
            except VdiError as exc:
                self.platform_failed = True
                for t in plan.send:
                    self.update(t, ActionPhase.FAILED, f"{t.name}: not sent: the platform could "
                                f"not be re-read: {exc}")
                checked = replace(plan, send=())
        requests = requests_for(checked)
        await self.audit({"event": "request", "requests": [_request_record(r) for r in requests],
                          **_plan_record(checked)}, before_sending=True)
        started = time.monotonic()
        try:
            following = await self.send(checked, requests) if requests else []
            if following:
                await self.follow(following, started)
        except asyncio.CancelledError:
            # Ctrl-C or SIGTERM after sending: the outcome line still says what was sent and
            # what the platform answered, written now (a second signal may come at any await).
            self.interrupted()
            self.write_outcome(checked, started, interrupted=True)
            raise
        result = ActionResult(self.id, checked, dict(self.outcomes),
                              exit_code(self.outcomes, self.platform_failed))
        await asyncio.to_thread(self.write_outcome, checked, started)
        return result

    def interrupted(self) -> None:
        """Every VM not at a final phase yet (sent, accepted, or being followed after an
        answer that did not say): interrupted, with what the platform answered."""
        for key, (phase, _) in list(self.outcomes.items()):
            t = self.targets[key]
            if key in self.unheard and phase is ActionPhase.FAILED:
                said = f"{self.unheard[key]}; not re-sent"
            elif phase in (ActionPhase.SENT, ActionPhase.ACCEPTED):
                said = "platform answered: " + ("accepted" if phase is ActionPhase.ACCEPTED
                                                else "nothing yet")
            else:
                continue  # final already: refused, failed with the platform's reason, resolved
            self.update(t, ActionPhase.UNRESOLVED, f"{t.name}: interrupted after sending; "
                        f"{said}")

    def write_outcome(self, plan: ActionPlan, started: float, interrupted: bool = False) -> None:
        """The outcome line (blocking: from a thread, or on an interruption)."""
        record: dict[str, Any] = {
            "event": "outcome", "action": plan.action.value, "force": plan.force,
            "answers": self.answers, "exit_code": exit_code(self.outcomes, self.platform_failed),
            "took": round(time.monotonic() - started, 1),
            "outcomes": [{"vm_id": t.vm_id, "name": t.name, "host": t.host_name,
                          "phase": self.outcomes[k][0].value, "message": self.outcomes[k][1]}
                         for k, t in self.targets.items()]}
        if interrupted:
            record["interrupted"] = True
        path = self.settings.audit_path
        assert path is not None  # _check_allowed
        try:
            audit.append(path, self.audit_line(record))
        except OSError as exc:
            log.error("audit trail %s: %s", path, exc)

    def audit_line(self, record: dict[str, Any]) -> str:
        line = {"time": audit.now_iso(), "action_id": self.id, "platform": self.settings.url,
                "user": self.settings.username, **record}
        # Defence in depth: a platform's message may echo what it was sent.
        return self.port.scrub(audit.to_line(line))

    async def audit(self, record: dict[str, Any], before_sending: bool = False) -> None:
        path = self.settings.audit_path
        assert path is not None  # _check_allowed
        text = self.audit_line(record)
        try:
            await asyncio.to_thread(audit.append, path, text)
        except OSError as exc:
            if before_sending:
                raise ActionError(f"cannot write the audit trail {path}: {exc.strerror or exc}; "
                                  "nothing was sent") from None
            log.error("audit trail %s: %s", path, exc)

    # ------------------------------------------------------------------ before sending
    async def recheck(self) -> ActionPlan:
        """The plan judged again on fresh reads of both sides."""
        plan = self.plan
        read = await self.port.read_vms([t.vm_id for t in plan.send if t.vm_id], strict=True,
                                        label=f"action {self.id}")
        fresh = read.vms
        hosts = {t.host_id for t in plan.send}
        cmp0 = self.port.comparison()
        for r in cmp0.vms if cmp0 is not None else ():
            if r.vdi is not None and r.vdi.id in fresh and r.virt_host_id:
                hosts.add(r.virt_host_id)
        unread = await self.port.reread_hosts(hosts)
        cmp = await self.port.merge(read)
        rows = _by_vm_id(cmp)
        names = self.port.host_names()
        send, refused = [], list(plan.refused)
        for t in plan.send:
            row = rows.get(t.vm_id or "")
            if t.vm_id not in fresh:
                why: str | None = "unknown to the platform now (GET answered no such VM)"
            elif self.actor.in_flight(t.vm_id or "") != self.id:
                why = "another action is in progress on it: not sent twice"
            elif row is not None and (row.host_id in unread or row.virt_host_id in unread):
                why = "libvirt on its host did not answer a re-read in time: not sent"
            else:
                why = judge(plan.action, row, t.host_name, names)
            fresh_t = target_of(row, t.host_name) if row is not None else t
            fresh_t = replace(fresh_t, key=t.key)  # the operator's row, whatever it is now
            if why is None:
                send.append(fresh_t)
            else:
                refused.append((fresh_t, why))
                self.update(fresh_t, ActionPhase.REFUSED, f"{t.name}: {why}")
        sent = {t.key for t in send}
        return ActionPlan(plan.action, plan.force, tuple(send), tuple(refused),
                          tuple((t, n) for t, n in plan.notes if t.key in sent))

    # ------------------------------------------------------------------ sending
    async def send(self, plan: ActionPlan, requests: list[Request]) -> list[ActionTarget]:
        """Send every request once; the targets to follow (accepted, or of unknown fate)."""
        by_id = {t.vm_id: t for t in plan.send if t.vm_id}
        follow: list[ActionTarget] = []
        sem = asyncio.Semaphore(SYNC_CONCURRENCY)

        async def one(req: Request) -> None:
            targets = [by_id[i] for i in req.vm_ids if i in by_id]
            async with sem:
                for t in targets:
                    self.update(t, ActionPhase.SENT, f"{t.name}: {action_noun(plan.action)} sent")
                try:
                    answer = await self.port.send(req)
                except VdiStatusError as exc:
                    self.platform_failed = True
                    self.answers.append({"request": req.describe(), "error": str(exc)})
                    for t in targets:
                        self.update(t, ActionPhase.FAILED, f"{t.name}: refused by the platform: "
                                    f"{exc.msg or exc}")
                    return
                except VdiError as exc:
                    # No answer, or one that does not say (an HTTP 401): the platform may or
                    # may not have acted. Never re-sent; the follow-up tells which.
                    self.platform_failed = True
                    self.answers.append({"request": req.describe(), "error": str(exc)})
                    for t in targets:
                        self.unheard[t.key] = after_sending(exc)
                        self.update(t, ActionPhase.FAILED, f"{t.name}: {self.unheard[t.key]}; "
                                    "not re-sent, following it to see whether it acted")
                    follow.extend(targets)
                    return
            self.answers.append(_answer_record(req, answer))
            self.tasks.add(answer.event_ids)
            errors = {e.vm_id: e for e in answer.errors}
            named = {e.vm_name: e for e in answer.errors if e.vm_name}
            for t in targets:
                err = errors.get(t.vm_id or "") or named.get(t.name)
                if err is not None:
                    self.platform_failed = True
                    self.update(t, ActionPhase.FAILED, f"{t.name}: the platform did not act: "
                                f"{err.message}")
                else:
                    self.update(t, ActionPhase.ACCEPTED, f"{t.name}: accepted by the platform")
                    follow.append(t)

        await asyncio.gather(*(one(r) for r in requests))
        return follow

    # ------------------------------------------------------------------ follow-up
    async def follow(self, targets: list[ActionTarget], started: float) -> None:
        """Re-read until each VM's two sides agree, or the action timeout."""
        verb = action_noun(self.plan.action)
        pending = {t.vm_id: t for t in targets if t.vm_id}
        timeout = self.settings.action_timeout
        # A target the action can only partly mend (a sync of a VM only in the platform) is
        # waited for until the platform has had time to say off: no agreement can come.
        noted = {t.key for t, _ in self.plan.notes}
        until = {vm_id: started + (min(timeout, REACH_WAIT) if t.key in noted else timeout)
                 for vm_id, t in pending.items()}
        deadline = started + timeout
        last: dict[str, VmRow] = {}
        while pending:
            now = time.monotonic()
            for vm_id in [v for v in pending if until[v] <= now]:
                self._give_up(pending.pop(vm_id), last.get(vm_id), until[vm_id] - started)
            if now >= deadline or not pending:
                break
            await asyncio.sleep(min(POLL, max(0.0, deadline - now)))
            try:
                # A platform that stopped answering must not hold the follow-up past its end.
                read = await asyncio.wait_for(
                    self.port.read_vms(list(pending), strict=False, label=f"action {self.id}"),
                    max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                read = PlatformRead({}, 0)
            rows = _by_vm_id(await self.port.merge(read))
            with contextlib.suppress(TimeoutError):  # a failed task, in the platform's words
                for t, why in await asyncio.wait_for(self.tasks.failures(pending), POLL * 4):
                    self.platform_failed = True
                    self.finish(t, ActionPhase.FAILED, f"{t.name}: the platform's task failed: "
                                f"{why}")
                    pending.pop(t.vm_id or "", None)
            for vm_id, t in list(pending.items()):
                row = rows.get(vm_id)
                if row is None:
                    continue
                last[vm_id] = row
                short = None if agrees(row) else done(self.plan.action, row)
                if agrees(row) or short is not None:
                    took = time.monotonic() - started
                    seen = f" ({sides(row)})" if t.key in self.unheard else ""
                    self.finish(t, ActionPhase.RESOLVED, f"{t.name}: " + (
                        f"resolved {took:.1f} s after {verb}{seen}" if short is None
                        else f"{verb} done {took:.1f} s after: {short}"))
                    del pending[vm_id]
        for vm_id, t in pending.items():
            self._give_up(t, last.get(vm_id), until[vm_id] - started)

    def _give_up(self, t: ActionTarget, row: VmRow | None, waited: float) -> None:
        now_says = sides(row, self.port.host_names()) if row is not None else "not seen again"
        limit = "" if row is None or reach(self.plan.action, row) is None \
            else f"; {ONLY_IN_PLATFORM}"
        self.finish(t, ActionPhase.UNRESOLVED,
                    f"{t.name}: still differs after {waited:g} s: {now_says}{limit}")

    def finish(self, target: ActionTarget, phase: ActionPhase, message: str) -> None:
        unheard = self.unheard.get(target.key)
        if unheard is not None:
            # The request got no answer that says: what came back, then what the follow-up saw.
            message = (f"{target.name}: {unheard}; not re-sent; follow-up: "
                       f"{message.removeprefix(target.name + ': ')}")
        self.update(target, phase, message)


def _by_vm_id(cmp: Comparison) -> dict[str, VmRow]:
    return {r.vdi.id: r for r in cmp.vms if r.vdi is not None}


def _plan_record(plan: ActionPlan) -> dict[str, Any]:
    return {"action": plan.action.value, "force": plan.force,
            "vms": [{"id": t.vm_id, "name": t.name, "host": t.host_name} for t in plan.send],
            "refused": [{"id": t.vm_id, "name": t.name, "host": t.host_name, "reason": why}
                        for t, why in plan.refused]}


def _request_record(req: Request) -> dict[str, Any]:
    return {"method": req.method, "path": req.path, "body": req.body}


def _answer_record(req: Request, answer: BatchAnswer) -> dict[str, Any]:
    return {"request": f"{req.method} {req.path}", "msg": answer.msg,
            "errorList": [{"domainId": e.vm_id, "domainName": e.vm_name, "errorMsg": e.message}
                          for e in answer.errors],
            "eventIdList": list(answer.event_ids)}
