"""``vditui act``: ask the platform to act on drifted VMs (``vditui audit``: what was asked).

``act`` runs the engine as ``check`` does, selects the VMs (``--vm`` names or globs, ``--host``,
``--drift``), shows the plan exactly as it will be sent, asks (or needs ``--yes``; without a
terminal it refuses), then lets the engine send it once and follow each VM. Progress lines go
to stderr as they happen; the summary (or with ``--json``, one document) to stdout. Exit codes:
see :data:`vditui.commands.registry.COMMANDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fnmatch
import json
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from vditui.core.act_rules import ACTIONABLE, can_change, exit_code
from vditui.core.action_lock import ActionLockBusy
from vditui.core.actions import Action, ActionError, ActionPhase, ActionPlan, ActionResult
from vditui.core.drift import DriftStatus
from vditui.core.engine import Engine
from vditui.core.events import ActionUpdate, EngineEvent, SnapshotReady
from vditui.core.exitcodes import ExitCode
from vditui.core.models import VmRow
from vditui.core.settings import EngineSettings
from vditui.core.vdi_actions import requests_for
from vditui.launch import Launch

Ask = Callable[[str], bool]


async def run(args: argparse.Namespace, start: Launch) -> int:
    """The registry's entry: `cmd_act` with the resolved settings."""
    return await cmd_act(args, start.settings, list(start.warnings))


def _terminal_ask(question: str) -> bool:
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise ActionError("not a terminal, and --yes not given: nothing sent (pass --yes to "
                          "send without asking, or --dry-run to see what would be sent)")
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def select(snap: SnapshotReady, vms: list[str], host: str | None,
           drift: str | None, action: Action | None = None) -> list[VmRow]:
    """The rows ``act`` is asked about; a ValueError names a ``--vm`` that matches nothing.
    Chosen by drift (``--drift``, or a glob or no ``--vm``), a row is only picked when
    ``action`` (None: any action) can change something it differs in."""
    rows = list(snap.comparison.vms)
    names = snap.comparison.host_names()
    if vms:
        picked: dict[str, VmRow] = {}
        for pattern in vms:
            hits = [r for r in rows if fnmatch.fnmatchcase(r.name, pattern)
                    or (r.vdi is not None and r.vdi.id == pattern)]
            if not hits:
                raise ValueError(f"--vm {pattern!r}: no VM of that name")
            picked.update((r.key, r) for r in hits)
        rows = list(picked.values())
    if host is not None:
        ids = {hid for hid, name in names.items() if name == host} | {
            h.host.id for h in snap.comparison.hosts if h.host.ip == host}
        if not ids:
            raise ValueError(f"--host {host!r}: no such host ({', '.join(sorted(names.values()))})")
        rows = [r for r in rows if r.host_id in ids or r.virt_host_id in ids]
    if drift is None and (not vms or any(set(p) & set("*?[") for p in vms)):
        # Exact names are the operator's choice, each refused with its reason if need be; a
        # glob or no --vm at all means "those with confirmed drift", not every VM it matches.
        drift = "confirmed"
    if drift is not None:
        wanted = {DriftStatus.CONFIRMED} | ({DriftStatus.PENDING} if drift == "any" else set())
        actions = list(Action) if action is None else [action]
        rows = [r for r in rows
                if any(d.kind in ACTIONABLE and snap.status(d) in wanted for d in r.drifts)
                and any(can_change(a, r) for a in actions)]
    return rows


def plan_lines(plan: ActionPlan, dry_run: bool) -> list[str]:
    """The plan as the operator reads it before saying yes: action, force, every VM and host,
    what is refused and why, and the requests exactly as they will be sent."""
    verb = "would send" if dry_run else "will send"
    force = " (force)" if plan.force else ""
    out = [f"{plan.action.value}{force}: {len(plan.send)} VM(s) on "
           f"{', '.join(plan.hosts()) or 'no host'}"]
    out += [f"  {t.name:<24} on {t.host_name:<16} id {t.vm_id}" for t in plan.send]
    if plan.notes:
        out.append(f"what it can do ({len(plan.notes)}):")
        out += [f"  {t.name}: {note}" for t, note in plan.notes]
    if plan.refused:
        out.append(f"refused ({len(plan.refused)}):")
        out += [f"  {t.name}: {why}" for t, why in plan.refused]
    reqs = requests_for(plan)
    if reqs:
        out.append(f"{verb} {len(reqs)} request(s):")
        out += [f"  {r.describe()}" for r in reqs]
    return out


def _plan_doc(plan: ActionPlan) -> dict[str, Any]:
    return {"action": plan.action.value, "force": plan.force,
            "send": [{"vm_id": t.vm_id, "name": t.name, "host": t.host_name} for t in plan.send],
            "refused": [{"vm_id": t.vm_id, "name": t.name, "host": t.host_name, "reason": why}
                        for t, why in plan.refused],
            "notes": [{"vm_id": t.vm_id, "name": t.name, "host": t.host_name, "note": note}
                      for t, note in plan.notes],
            "requests": [{"method": r.method, "path": r.path, "body": r.body}
                         for r in requests_for(plan)]}


async def cmd_act(args: argparse.Namespace, settings: EngineSettings, warnings: list[str],
                  out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                  ask: Ask = _terminal_ask) -> int:
    """``vditui act``: see the module's docstring."""
    def say(line: str) -> None:
        err.write(f"vditui act: {line}\n")
        err.flush()

    def refuse(why: str) -> int:
        say(why)
        if args.json:  # a script still gets its one document
            out.write(json.dumps({"exit_code": ExitCode.FAILED, "error": why},
                                 ensure_ascii=False, indent=2) + "\n")
        return ExitCode.FAILED

    if settings.read_only:
        return refuse("read-only mode (--read-only / read_only = true): actions are disabled; "
                      "nothing sent")
    action = Action(args.action)
    engine = Engine(settings)
    engine.listen(lambda e: _progress(e, say))
    try:
        await engine.start(watch=False)
        await engine.wait_settled(settings.settle_timeout)
        snap = await engine.check()
        assert snap is not None  # start() raised if the platform was never read
        try:
            rows = select(snap, list(args.vm), args.host, args.drift, action)
            plan = engine.plan(action, [r.key for r in rows], args.force)
        except (ValueError, ActionError) as exc:
            return refuse(str(exc))
        if not plan.send and not plan.refused:
            say("nothing to act on: no VM selected has drift an action can end")
            return _finish(args, out, plan, None, ExitCode.OK)
        for line in plan_lines(plan, args.dry_run):
            (out if args.dry_run and not args.json else err).write(line + "\n")
        if args.dry_run:
            return _finish(args, out, plan, None, ExitCode.OK, dry_run=True)
        if not plan.send:
            code = exit_code({t.key: (ActionPhase.REFUSED, why) for t, why in plan.refused},
                             False)
            return _finish(args, out, plan, None, code)
        if not args.yes:
            question = (f"Send {action.value}{' (force)' if args.force else ''} to "
                        f"{len(plan.send)} VM(s)? [y/N] ")
            try:
                if not await asyncio.to_thread(ask, question):
                    return refuse("not confirmed: nothing sent")
            except ActionError as exc:
                return refuse(str(exc))
        try:
            with _cancelled_by_signals() as stopped_by:
                result = await engine.act(plan, wait=getattr(args, "wait", False),
                                          on_wait=lambda busy: say(str(busy)))
        except ActionLockBusy as exc:
            return refuse(f"{exc}; wait for it, or run again with --wait")
        except ActionError as exc:
            return refuse(str(exc))
        except asyncio.CancelledError:
            if not stopped_by:
                raise
            me = asyncio.current_task()
            if me is not None:
                me.uncancel()  # handled here: the engine's stop below must not be cancelled
            say(f"interrupted by {stopped_by[0].name}: the audit trail has what was sent and "
                "what the platform answered (vditui audit)")
            return ExitCode.INTERRUPTED
    finally:
        await engine.stop()
    return _finish(args, out, result.plan, result, result.exit_code)


@contextlib.contextmanager
def _cancelled_by_signals() -> Iterator[list[signal.Signals]]:
    """SIGINT and SIGTERM cancel the current task while in the block (so the action writes its
    outcome line on the way out); the list says which signal did."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    got: list[signal.Signals] = []

    def stop(sig: signal.Signals) -> None:
        got.append(sig)
        task.cancel()

    sigs = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.getsignal(s) for s in sigs}
    for s in sigs:
        loop.add_signal_handler(s, stop, s)
    try:
        yield got
    finally:
        for s in sigs:
            loop.remove_signal_handler(s)
            signal.signal(s, before[s])


def _progress(e: EngineEvent, say: Callable[[str], None]) -> None:
    if isinstance(e, ActionUpdate):
        say(f"{e.phase.value:<10} {e.message}")


def _finish(args: argparse.Namespace, out: TextIO, plan: ActionPlan, result: ActionResult | None,
            code: int, dry_run: bool = False) -> int:
    if args.json:
        doc: dict[str, Any] = {"exit_code": code, "dry_run": dry_run, **_plan_doc(plan)}
        if result is not None:
            doc["action_id"] = result.action_id
            names = {t.key: t for t in result.plan.targets()}
            doc["outcomes"] = [{"key": k, "name": names[k].name if k in names else k,
                                "vm_id": names[k].vm_id if k in names else None,
                                "phase": phase.value, "message": message}
                               for k, (phase, message) in result.outcomes.items()]
        out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    elif result is not None:
        for phase, message in result.outcomes.values():
            out.write(f"  {phase.value:<10} {message}\n")
        verdict = {ExitCode.OK: "every VM agrees", ExitCode.DIFFERS: "some VMs still differ",
                   ExitCode.FAILED: "the platform refused or could not be reached"}[ExitCode(code)]
        out.write(f"{plan.action.value}: {verdict} (action {result.action_id})\n")
    return code
