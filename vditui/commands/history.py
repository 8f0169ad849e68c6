"""``vditui history``: the drift history file read back, without an engine, the platform or a
password (nothing here logs in): what differed, since when and for how long, and when hosts
and the platform were unreachable."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from typing import TextIO

from vditui.commands.scope import scope_of
from vditui.core import history_db as hdb
from vditui.core import present
from vditui.core.exitcodes import ExitCode
from vditui.core.history_text import kind_words, records, timeline, to_csv
from vditui.core.since import parse_since


def run(args: argparse.Namespace, out: TextIO = sys.stdout, now: float | None = None) -> int:
    """Print the history asked for; OK, or FAILED with a one-line error on stderr."""
    now = time.time() if now is None else now
    try:
        since = parse_since(args.since, now)
    except ValueError as exc:
        print(f"vditui: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    scope = scope_of(args)
    platform, path = scope.url, scope.history
    try:
        db = hdb.connect_readonly(path)
        try:
            drifts = hdb.drifts(db, since=since, vm=args.vm, host=args.host, platform=platform)
            incidents = [] if args.vm else hdb.incidents(db, since=since, host=args.host,
                                                         platform=platform)
        finally:
            db.close()
    except hdb.HistoryError as exc:
        print(f"vditui: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except sqlite3.Error as exc:
        print(f"vditui: {path}: cannot read the history: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    if args.json:
        out.write(json.dumps(records(drifts, incidents), ensure_ascii=False, indent=2) + "\n")
    elif args.csv:
        out.write(to_csv(records(drifts, incidents)))
    else:
        moments = timeline(drifts, incidents)
        out.write(f"history of {scope.said}\n")
        if not moments:
            out.write(f"nothing recorded since {present.timestamp(since)}\n")
        width = max((len(m.subject) for m in moments), default=0)
        for m in moments:
            out.write(f"{present.timestamp(m.at)}  {m.subject:<{width}}  {m.text}\n")
        open_now = [ep for ep in drifts if ep.resolved is None]
        for ep in open_now:
            out.write(f"open: {ep.subject}: {kind_words(ep.kind)} "
                      f"{present.differs_since(ep.first_seen, now)}\n")
    return ExitCode.OK
