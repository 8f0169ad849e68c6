"""``vditui report``: the whole comparison as md, json or csv, to stdout or a file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from vditui.commands.check import verdict
from vditui.commands.snapshot import settled_snapshot
from vditui.core.report import ReportMeta, render
from vditui.core.settings import EngineSettings
from vditui.launch import Launch


async def run(args: argparse.Namespace, start: Launch) -> int:
    """The registry's entry: `cmd_report` with the resolved settings."""
    return await cmd_report(args, start.settings, list(start.warnings))


async def cmd_report(args: argparse.Namespace, settings: EngineSettings,
                     warnings: list[str], out: TextIO = sys.stdout) -> int:
    """The report; the same exit code as ``check`` would give for the same pass."""
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
    return verdict(snap, [d for d in cmp.drifts if d.ident not in snap.acknowledged])
