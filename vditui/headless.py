"""The headless commands, `check`, `report`, `probe` and `watch`, on the same engine as the TUI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from vditui.config import ConfigError
from vditui.core.engine import Engine, Update, platform_message
from vditui.core.models import Comparison, ConnState, DriftKind
from vditui.core.present import kind_name
from vditui.core.report import ReportMeta, drift_record, render, summary
from vditui.core.settings import EngineSettings
from vditui.core.vdi import VdiError
from vditui.launch import Launch

EXIT_OK, EXIT_DRIFT, EXIT_UNREACHABLE = 0, 1, 2
def run_command(args: argparse.Namespace, start: Launch) -> int:
    """Run ``args.command`` with the settings ``vditui.launch`` resolved."""
    try:
        warnings = list(start.warnings)
        for w in warnings:
            print(f"vditui: warning: {w}", file=sys.stderr)
        fn = {"check": cmd_check, "report": cmd_report, "probe": cmd_probe,
              "watch": cmd_watch}[args.command]
        return asyncio.run(fn(args, start.settings, warnings))
    except VdiError as exc:
        print(f"vditui: platform: {platform_message(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ConfigError as exc:
        print(f"vditui: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE


async def _settled_engine(settings: EngineSettings) -> Engine:
    engine = Engine(settings)
    try:
        await engine.start(watch=False)
        # Every host has connect_timeout to answer; a hung one costs that, once, in parallel.
        await engine.wait_settled(settings.connect_timeout + settings.call_timeout + 5)
    except BaseException:
        await engine.stop()
        raise
    return engine


async def comparison_with_grace(engine: Engine, grace: float) -> tuple[Comparison, set[tuple]]:
    """Reconcile; with a grace period, read everything again after it and keep only the drift
    seen both times. Returns the final comparison and the idents of confirmed drift."""
    first = engine.reconcile_now()
    assert first is not None
    confirmed = {d.ident for d in first.drifts}
    if grace <= 0 or not confirmed:
        return first, confirmed
    await asyncio.sleep(grace)
    before = {hid: s.read_at for hid, s in engine.sessions.items()}
    await engine.refresh()
    deadline = time.monotonic() + engine.settings.call_timeout + 5
    while time.monotonic() < deadline and any(
            s.state is ConnState.CONNECTED and s.read_at <= before[hid]
            for hid, s in engine.sessions.items()):
        await asyncio.sleep(0.02)
    second = engine.reconcile_now()
    assert second is not None
    return second, confirmed & {d.ident for d in second.drifts}


def _exit_code(cmp: Comparison, confirmed: set[tuple]) -> int:
    if any(d.kind is DriftKind.HOST_UNREACHABLE for d in cmp.drifts) or any(
            h.view is None or h.view.state is not ConnState.CONNECTED for h in cmp.hosts):
        return EXIT_UNREACHABLE
    return EXIT_DRIFT if confirmed else EXIT_OK


async def cmd_check(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    engine = await _settled_engine(settings)
    try:
        cmp, confirmed = await comparison_with_grace(engine, settings.grace)
    finally:
        await engine.stop()
    code = _exit_code(cmp, confirmed)
    drifts = [d for d in cmp.drifts if d.ident in confirmed]
    if getattr(args, "json", False):
        doc = {"platform": settings.url, "exit_code": code, "warnings": warnings + list(
            engine.client.warnings), "summary": summary(cmp),
            "drifts": [drift_record(d, "confirmed") for d in drifts]}
        out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return code
    for w in engine.client.warnings:
        print(f"vditui: warning: {w}", file=sys.stderr)
    s = summary(cmp)
    verdict = {EXIT_OK: "consistent", EXIT_DRIFT: "DRIFT",
               EXIT_UNREACHABLE: "INCOMPLETE (unreachable)"}[code]
    out.write(f"{verdict}: {s['hosts']} hosts, {s['vms']} VMs, {len(drifts)} drifts "
              f"({s['critical']} critical) on {settings.url}\n")
    for d in drifts:
        out.write(f"  [{d.severity.name.lower():8}] {kind_name(d.kind):<21} {d.subject}: "
                  f"{d.message}\n")
    return code


async def cmd_report(args: argparse.Namespace, settings: EngineSettings,
                     warnings: list[str], out: TextIO = sys.stdout) -> int:
    engine = await _settled_engine(settings)
    try:
        cmp = engine.reconcile_now()
        assert cmp is not None
        meta = ReportMeta(settings.url, settings.username, time.time(),
                          tuple(warnings + list(engine.client.warnings)))
    finally:
        await engine.stop()
    text = render(cmp, meta, args.format)
    if getattr(args, "output", None):
        from vditui.config.write import write_private

        write_private(Path(args.output), text)
    else:
        out.write(text)
    return _exit_code(cmp, {d.ident for d in cmp.drifts})


async def cmd_probe(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    engine = Engine(settings)
    try:
        await engine.start(watch=False)
        host = engine.find_host(args.host)
        if host is None:
            names = ", ".join(h.name for h in engine.inventory.hosts) if engine.inventory else ""
            print(f"vditui: no host {args.host!r} on the platform (hosts: {names})",
                  file=sys.stderr)
            return EXIT_UNREACHABLE
        results = await engine.probe_host(host.id)
    finally:
        await engine.stop()
    if getattr(args, "json", False):
        out.write(json.dumps([{
            "uri": r.uri, "ok": r.ok, "latency_ms": round(r.latency * 1000, 1),
            "libvirt_version": r.libvirt_version, "hostname": r.hostname,
            "error": r.error.kind.value if r.error else None,
            "hint": r.error.hint if r.error else None,
            "detail": r.error.message if r.error else None} for r in results], indent=2) + "\n")
    else:
        out.write(f"probe {host.name} ({host.ip})\n")
        for r in results:
            if r.ok:
                out.write(f"  OK    {r.uri:<44} {r.latency * 1000:7.1f} ms  libvirt "
                          f"{r.libvirt_version} on {r.hostname or '?'}\n")
            else:
                assert r.error is not None
                out.write(f"  FAIL  {r.uri:<44} {r.latency * 1000:7.1f} ms  "
                          f"{r.error.kind.value}\n        hint: {r.error.hint}\n"
                          f"        detail: {r.error.message}\n")
    return EXIT_OK if any(r.ok for r in results) else EXIT_UNREACHABLE


def update_record(u: Update) -> dict[str, Any] | None:
    """One watch line for an update, or None for updates watch does not print."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(u.at)) + f".{int(u.at % 1 * 1000):03d}"
    if u.kind == "vm" and u.event is not None:
        e = u.event
        return {"type": "state", "at": ts, "host_id": e.host_id, "vm": e.name, "uuid": e.uuid,
                "event": e.event, "old": e.old.state.value if e.old else None,
                "new": e.new.state.value if e.new else None}
    if u.kind == "drift" and u.drift is not None and u.drift.status.value != "pending":
        return {"type": "drift", "at": ts, **drift_record(u.drift.drift, u.drift.status.value)}
    if u.kind == "host":
        return {"type": "host", "at": ts, "host_id": u.host_id, "message": u.message}
    if u.kind == "vdi" and u.message:
        return {"type": "platform", "at": ts, "message": u.message}
    if u.kind == "warning" and u.message:
        return {"type": "platform", "at": ts, "message": f"warning: {u.message}"}
    return None


PLATFORM_BACK = "platform reachable again"


async def cmd_watch(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    engine = Engine(settings)
    failing = False

    def emit(u: Update) -> None:
        nonlocal failing
        rec = update_record(u)
        if u.kind == "vdi" and engine.inventory is not None:
            # A failure is printed each time a refresh fails; its end once, as its own line.
            if u.message:
                failing = True
            elif failing:
                failing = False
                rec = update_record(Update("vdi", u.at, message=PLATFORM_BACK))
        if rec is not None:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            out.flush()

    for w in warnings:
        emit(Update("vdi", time.time(), message=f"warning: {w}"))
    engine.listen(emit)
    try:
        await engine.start(watch=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    finally:
        await engine.stop()
    return EXIT_OK
