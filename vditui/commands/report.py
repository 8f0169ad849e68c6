"""``vditui report``: the whole comparison as md, json or csv, to stdout or a file."""

from __future__ import annotations

import argparse
import errno
import sys
import time
from pathlib import Path
from typing import TextIO

from vditui.commands.snapshot import settled_snapshot
from vditui.core.exitcodes import ExitCode
from vditui.core.report import ReportMeta, render
from vditui.core.selection import select
from vditui.core.settings import EngineSettings
from vditui.launch import Launch


async def run(args: argparse.Namespace, start: Launch) -> int:
    """The registry's entry: `cmd_report` with the resolved settings."""
    return await cmd_report(args, start.settings, list(start.warnings))


async def cmd_report(args: argparse.Namespace, settings: EngineSettings,
                     warnings: list[str], out: TextIO = sys.stdout) -> int:
    """The report, from the same pass and selection as ``check``, and its exit code (written
    to a file or not); FAILED, with one line, when ``--output`` cannot be written."""
    if getattr(args, "output", None) and Path(args.output).is_dir():
        # Said before the pass, not after it: the pass may take a while.
        print(f"vditui: report: cannot write {args.output}: {_why(IsADirectoryError())}",
              file=sys.stderr)
        return ExitCode.FAILED
    snap = await settled_snapshot(settings, grace=True)
    sel = select(snap)
    meta = ReportMeta(settings.url, settings.username, time.time(),
                      tuple(warnings + list(snap.platform_warnings)))
    text = render(snap.comparison, meta, args.format, snap.acknowledged, sel)
    if getattr(args, "output", None):
        from vditui.config.write import write_private

        path = Path(args.output)
        try:
            write_private(path, text)
        except OSError as exc:
            print(f"vditui: report: cannot write {path}: {_why(exc)}", file=sys.stderr)
            return ExitCode.FAILED
    else:
        out.write(text)
    return sel.exit_code


def _why(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError) or exc.errno == errno.EISDIR:
        return "it is a directory; give a file name, e.g. -o DIR/report.md"
    return exc.strerror or str(exc)
