"""``vditui check``: one pass under the grace period; the verdict as a line (or JSON) and the
exit code scripts and cron jobs read."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from vditui.commands.snapshot import settled_snapshot
from vditui.core.events import SnapshotReady
from vditui.core.exitcodes import ExitCode
from vditui.core.models import ConnState, Drift, DriftKind, Severity
from vditui.core.present import kind_name
from vditui.core.report import drift_record, summary
from vditui.core.settings import EngineSettings
from vditui.launch import Launch


async def run(args: argparse.Namespace, start: Launch) -> int:
    """The registry's entry: `cmd_check` with the resolved settings."""
    return await cmd_check(args, start.settings, list(start.warnings))


def verdict(snap: SnapshotReady, drifts: list[Drift]) -> ExitCode:
    """FAILED when a host could not be read (unless its unreachable drift is acknowledged),
    else DIFFERS when ``drifts`` (those that count) is not empty, else OK."""
    cmp, acked = snap.comparison, snap.acknowledged
    known = {d.host_id for d in cmp.drifts
             if d.kind is DriftKind.HOST_UNREACHABLE and d.ident in acked}
    if any(d.kind is DriftKind.HOST_UNREACHABLE and d.ident not in acked
           for d in cmp.drifts) or any(
            (h.view is None or h.view.state is not ConnState.CONNECTED) and h.host.id not in known
            for h in cmp.hosts):
        return ExitCode.FAILED
    return ExitCode.DIFFERS if drifts else ExitCode.OK


async def cmd_check(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    """One pass; the drifts that count, as lines or one JSON document."""
    snap = await settled_snapshot(settings, grace=True)
    cmp = snap.comparison
    drifts = snap.counted()
    acked = snap.confirmed_acknowledged()
    code = verdict(snap, drifts)
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
    word = {ExitCode.OK: "consistent", ExitCode.DIFFERS: "DRIFT",
               ExitCode.FAILED: "INCOMPLETE (unreachable)"}[code]
    critical = sum(1 for d in drifts if d.severity is Severity.CRITICAL)
    known = f", {len(acked)} acknowledged" if acked else ""
    out.write(f"{word}: {s['hosts']} hosts, {s['vms']} VMs, {len(drifts)} drifts "
              f"({critical} critical{known}) on {settings.url}\n")
    for d in drifts:
        out.write(f"  [{d.severity.name.lower():8}] {kind_name(d.kind):<21} {d.subject}: "
                  f"{d.message}\n")
    return code
