"""``vditui check``: one pass under the grace period; the verdict as a line (or JSON) and the
exit code scripts and cron jobs read."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from vditui.commands.snapshot import settled_snapshot
from vditui.core.events import SnapshotReady
from vditui.core.exitcodes import ExitCode
from vditui.core.present import kind_name
from vditui.core.report import now_record
from vditui.core.selection import select
from vditui.core.settings import EngineSettings
from vditui.launch import Launch


async def run(args: argparse.Namespace, start: Launch) -> int:
    """The registry's entry: `cmd_check` with the resolved settings."""
    return await cmd_check(args, start.settings, list(start.warnings))


def check_document(snap: SnapshotReady, platform: str, warnings: list[str]) -> dict[str, Any]:
    """``check --json``'s document: its list, its counts and its exit code from one
    selection."""
    sel = select(snap)
    return {"platform": platform, "exit_code": int(sel.exit_code),
            "warnings": warnings + list(snap.platform_warnings),
            "summary": sel.summary(),
            "drifts": [now_record(d) for d in sel.counted],
            "acknowledged": [now_record(d) for d in sel.acknowledged],
            "pending": [now_record(d) for d in sel.pending]}


async def cmd_check(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    """One pass; the drifts that count (:func:`vditui.core.selection.select`), as lines or
    one JSON document whose list, counts and exit code come from the same selection."""
    snap = await settled_snapshot(settings, grace=True)
    sel = select(snap)
    code = sel.exit_code
    if getattr(args, "json", False):
        doc = check_document(snap, settings.url, warnings)
        out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return code
    for w in snap.platform_warnings:
        print(f"vditui: warning: {w}", file=sys.stderr)
    word = {ExitCode.OK: "consistent", ExitCode.DIFFERS: "DRIFT",
            ExitCode.FAILED: "INCOMPLETE (unreachable)"}[code]
    known = f", {len(sel.acknowledged)} acknowledged" if sel.acknowledged else ""
    out.write(f"{word}: {sel.hosts} hosts, {sel.vms} VMs, {len(sel.counted)} drifts "
              f"({sel.critical} critical{known}) on {settings.url}\n")
    for d in sel.counted:
        out.write(f"  [{d.drift.severity.name.lower():8}] {kind_name(d.drift.kind):<21} "
                  f"{d.drift.subject}: {d.drift.message}\n")
    return code
