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
from vditui.core.drift import DriftStatus
from vditui.core.engine import Engine
from vditui.core.events import (
    AckExpired,
    DomainChanged,
    DriftChanged,
    EngineEvent,
    HostChanged,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.models import ConnState, Drift, DriftKind, Severity
from vditui.core.present import ack_expired_sentence, kind_name
from vditui.core.report import ReportMeta, drift_record, render, summary
from vditui.core.settings import EngineSettings
from vditui.core.vdi import VdiError
from vditui.core.vdi_errors import platform_message
from vditui.launch import Launch

EXIT_OK, EXIT_DRIFT, EXIT_UNREACHABLE = 0, 1, 2
def run_command(args: argparse.Namespace, start: Launch) -> int:
    """Run ``args.command`` with the settings ``vditui.launch`` resolved."""
    try:
        warnings = list(start.warnings)
        for w in warnings:
            print(f"vditui: warning: {w}", file=sys.stderr)
        if args.command == "baseline":  # writes the config: it needs the file and profile
            from vditui.baseline_cmd import cmd_baseline

            return asyncio.run(cmd_baseline(args, start, warnings))
        from vditui.act_cmd import cmd_act

        fn = {"check": cmd_check, "report": cmd_report, "probe": cmd_probe,
              "watch": cmd_watch, "serve": cmd_serve, "act": cmd_act}[args.command]
        return asyncio.run(fn(args, start.settings, warnings))
    except VdiError as exc:
        print(f"vditui: platform: {platform_message(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ConfigError as exc:
        print(f"vditui: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE


async def cmd_serve(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str]) -> int:
    from vditui.serve import cmd_serve as serve  # prometheus-client: loaded for serve only

    return await serve(args, settings, warnings)


async def settled_snapshot(settings: EngineSettings, grace: bool) -> SnapshotReady:
    """Start an engine, wait until every host has been read or failed, and take its snapshot;
    with ``grace``, under the grace period (see :meth:`Engine.check`)."""
    engine = Engine(settings)
    try:
        await engine.start(watch=False)
        # Every host has connect_timeout to answer; a hung one costs that, once, in parallel.
        await engine.wait_settled(settings.settle_timeout)
        snap = await engine.check() if grace else engine.reconcile_now()
    finally:
        await engine.stop()
    assert snap is not None  # start() raised if the platform was never read
    return snap


def _exit_code(snap: SnapshotReady, drifts: list[Drift]) -> int:
    """2 when a host could not be read (unless its unreachable drift is acknowledged), else 1
    when ``drifts`` (those that count) is not empty, else 0."""
    cmp, acked = snap.comparison, snap.acknowledged
    known = {d.host_id for d in cmp.drifts
             if d.kind is DriftKind.HOST_UNREACHABLE and d.ident in acked}
    if any(d.kind is DriftKind.HOST_UNREACHABLE and d.ident not in acked
           for d in cmp.drifts) or any(
            (h.view is None or h.view.state is not ConnState.CONNECTED) and h.host.id not in known
            for h in cmp.hosts):
        return EXIT_UNREACHABLE
    return EXIT_DRIFT if drifts else EXIT_OK


async def cmd_check(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    snap = await settled_snapshot(settings, grace=True)
    cmp = snap.comparison
    drifts = snap.counted()
    acked = snap.confirmed_acknowledged()
    code = _exit_code(snap, drifts)
    if getattr(args, "json", False):
        doc = {"platform": settings.url, "exit_code": code,
               "warnings": warnings + list(snap.platform_warnings),
               "summary": summary(cmp, snap.acknowledged),
               "drifts": [drift_record(d, "confirmed") for d in drifts],
               "acknowledged": [drift_record(d, "confirmed", r) for d, r in acked]}
        out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return code
    for w in snap.platform_warnings:
        print(f"vditui: warning: {w}", file=sys.stderr)
    s = summary(cmp)
    verdict = {EXIT_OK: "consistent", EXIT_DRIFT: "DRIFT",
               EXIT_UNREACHABLE: "INCOMPLETE (unreachable)"}[code]
    critical = sum(1 for d in drifts if d.severity is Severity.CRITICAL)
    known = f", {len(acked)} acknowledged" if acked else ""
    out.write(f"{verdict}: {s['hosts']} hosts, {s['vms']} VMs, {len(drifts)} drifts "
              f"({critical} critical{known}) on {settings.url}\n")
    for d in drifts:
        out.write(f"  [{d.severity.name.lower():8}] {kind_name(d.kind):<21} {d.subject}: "
                  f"{d.message}\n")
    return code


async def cmd_report(args: argparse.Namespace, settings: EngineSettings,
                     warnings: list[str], out: TextIO = sys.stdout) -> int:
    snap = await settled_snapshot(settings, grace=False)
    cmp = snap.comparison
    meta = ReportMeta(settings.url, settings.username, time.time(),
                      tuple(warnings + list(snap.platform_warnings)))
    text = render(cmp, meta, args.format, snap.acknowledged)
    if getattr(args, "output", None):
        from vditui.config.write import write_private

        write_private(Path(args.output), text)
    else:
        out.write(text)
    return _exit_code(snap, [d for d in cmp.drifts if d.ident not in snap.acknowledged])


async def cmd_probe(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    engine = Engine(settings)
    read: list[PlatformRefreshed] = []

    def keep(e: EngineEvent) -> None:
        if isinstance(e, PlatformRefreshed):
            read.append(e)

    engine.listen(keep)
    try:
        await engine.start(watch=False)
        host = engine.find_host(args.host)
        if host is None:
            names = ", ".join(h.name for h in read[-1].inventory.hosts) if read else ""
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


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 1000):03d}"


PLATFORM_BACK = "platform reachable again"


def event_records(e: EngineEvent) -> list[dict[str, Any]]:
    """The watch lines for an event (none for those watch does not print)."""
    match e:
        case DomainChanged(at=at, event=ev):
            return [{"type": "state", "at": _stamp(at), "host_id": ev.host_id, "vm": ev.name,
                     "uuid": ev.uuid, "event": ev.event,
                     "old": ev.old.state.value if ev.old else None,
                     "new": ev.new.state.value if ev.new else None}]
        case DriftChanged(at=at, change=ch) if ch.status is not DriftStatus.PENDING:
            return [{"type": "drift", "at": _stamp(at), **drift_record(ch.drift, ch.status.value)}]
        case HostChanged(at=at, host=host):
            return [{"type": "host", "at": _stamp(at), "host_id": host.host_id,
                     "message": host.describe()}]
        case PlatformFailed(at=at, message=message):
            return [_platform(at, message)]
        case PlatformRefreshed(at=at, new_warnings=new, recovered=recovered):
            # A failure is printed each time a refresh fails; its end once, as its own line.
            return [*(_platform(at, f"warning: {w}") for w in new),
                    *([_platform(at, PLATFORM_BACK)] if recovered else [])]
    return []


class WatchLines:
    """``watch``'s lines, acknowledged drift aside: an acknowledged drift raises no alert but
    is said once, as a confirmed ``drift`` line with ``acknowledged: {reason, expires}``; when
    its rule stops applying (expired), a plain confirmed line follows: the alert."""

    def __init__(self) -> None:
        self.said: dict[tuple[str, str], Drift] = {}

    def records(self, e: EngineEvent) -> list[dict[str, Any]]:
        """The lines for ``e``."""
        match e:
            case SnapshotReady(at=at):
                return self._snapshot(e, at)
            case DriftChanged(at=at, change=ch, acknowledged=rule) if rule is not None:
                if ch.status is DriftStatus.RESOLVED:
                    self.said.pop(ch.drift.ident, None)
                elif ch.status is DriftStatus.PENDING or ch.drift.ident in self.said:
                    return []
                else:
                    self.said[ch.drift.ident] = ch.drift
                return [{"type": "drift", "at": _stamp(at),
                         **drift_record(ch.drift, ch.status.value, rule)}]
            case AckExpired(at=at, rule=rule):
                return [{"type": "ack", "at": _stamp(at), "message": ack_expired_sentence(
                    rule.expires, rule.describe(), rule.reason)}]
        return event_records(e)

    def _snapshot(self, snap: SnapshotReady, at: float) -> list[dict[str, Any]]:
        out = []
        for ident, d in list(self.said.items()):
            if ident not in snap.acknowledged:
                del self.said[ident]
                if snap.status(d) is DriftStatus.CONFIRMED:
                    out.append({"type": "drift", "at": _stamp(at), **drift_record(d, "confirmed")})
        for d, rule in snap.confirmed_acknowledged():
            if d.ident not in self.said:
                self.said[d.ident] = d
                out.append({"type": "drift", "at": _stamp(at),
                            **drift_record(d, "confirmed", rule)})
        return out


def _platform(at: float, message: str) -> dict[str, Any]:
    return {"type": "platform", "at": _stamp(at), "message": message}


async def cmd_watch(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    engine = Engine(settings)

    def write(records: list[dict[str, Any]]) -> None:
        if records:
            out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            out.flush()

    write([_platform(time.time(), f"warning: {w}") for w in warnings])
    lines = WatchLines()
    engine.listen(lambda e: write(lines.records(e)))
    try:
        await engine.start(watch=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    finally:
        await engine.stop()
    return EXIT_OK
