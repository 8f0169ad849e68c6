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
from vditui.core.selection import Selection, select
from vditui.core.settings import EngineSettings
from vditui.core.vdi_facts import people_summary, user_facing, user_line
from vditui.launch import Launch


async def run(args: argparse.Namespace, start: Launch) -> int:
    """The registry's entry: `cmd_check` with the resolved settings."""
    return await cmd_check(args, start.settings, list(start.warnings))


def selection(snap: SnapshotReady, user_facing_only: bool = False) -> Selection:
    """The drifts ``check`` judges: :func:`select`'s, or with ``user_facing_only`` only those
    on VMs a user is connected to now."""
    sel = select(snap)
    if user_facing_only:
        sel = sel.only({r.key for r in snap.comparison.vms if user_facing(r)})
    return sel


def check_document(snap: SnapshotReady, platform: str, warnings: list[str],
                   user_facing_only: bool = False) -> dict[str, Any]:
    """``check --json``'s document: its list, its counts and its exit code from one
    selection."""
    sel = selection(snap, user_facing_only)
    facing = {r.key for r in snap.comparison.vms if user_facing(r)}
    return {"platform": platform, "exit_code": int(sel.exit_code),
            "warnings": warnings + list(snap.platform_warnings),
            "summary": {**sel.summary(), **people_summary(snap.comparison)},
            "drifts": [{**now_record(d), "user_facing": d.drift.key in facing}
                       for d in sel.counted],
            "acknowledged": [now_record(d) for d in sel.acknowledged],
            "pending": [now_record(d) for d in sel.pending]}


async def cmd_check(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    """One pass; the drifts that count (:func:`vditui.core.selection.select`), as lines or
    one JSON document whose list, counts and exit code come from the same selection."""
    snap = await settled_snapshot(settings, grace=True)
    only = bool(getattr(args, "user_facing", False))
    sel = selection(snap, only)
    code = sel.exit_code
    if getattr(args, "json", False):
        doc = check_document(snap, settings.url, warnings, only)
        out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return code
    for w in snap.platform_warnings:
        print(f"vditui: warning: {w}", file=sys.stderr)
    word = {ExitCode.OK: "consistent", ExitCode.DIFFERS: "DRIFT",
            ExitCode.FAILED: "INCOMPLETE (unreachable)"}[code]
    known = f", {len(sel.acknowledged)} acknowledged" if sel.acknowledged else ""
    out.write(f"{word}: {sel.hosts} hosts, {sel.vms} VMs, {len(sel.counted)} drifts "
              f"({sel.critical} critical{known}) on {settings.url}\n")
    facing = {r.key: user_line(r.vdi, snap.at) for r in snap.comparison.vms if user_facing(r)}
    for d in sel.counted:
        who = f" [{facing[d.drift.key]}]" if d.drift.key in facing else ""
        out.write(f"  [{d.drift.severity.name.lower():8}] {kind_name(d.drift.kind):<21} "
                  f"{d.drift.subject}: {d.drift.message}{who}\n")
    return code
