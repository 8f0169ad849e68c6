"""``vditui audit``: the audit trail of actions, read back (no platform, no password)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from vditui.commands.scope import scope_of
from vditui.core import audit
from vditui.core.exitcodes import ExitCode
from vditui.core.since import parse_since


def run(args: argparse.Namespace) -> int:
    """The registry's entry."""
    return cmd_audit(args)


def cmd_audit(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``vditui audit``: the trail, one row per action (``--json``: the records as written)."""
    scope = scope_of(args)
    path = scope.audit
    try:
        since = (datetime.fromtimestamp(parse_since(args.since, time.time()), UTC)
                 if getattr(args, "since", None) else None)
        trail = audit.read(path, since)
    except ValueError as exc:
        print(f"vditui: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except OSError as exc:
        print(f"vditui: cannot read the audit trail {path}: {exc.strerror or exc}",
              file=sys.stderr)
        return ExitCode.FAILED
    if trail.bad_lines:
        print(f"vditui: warning: {path}: {len(trail.bad_lines)} line(s) are not JSON records "
              f"(line {', '.join(map(str, trail.bad_lines[:5]))})", file=sys.stderr)
    mine = [r for r in trail.records if scope.keeps(r.get("platform"), r.get("user"))]
    if getattr(args, "json", False):
        out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mine))
        return ExitCode.OK
    out.write(f"actions on {scope.said}\n")
    if not mine:
        out.write(f"no actions recorded in {path}\n")
        return ExitCode.OK
    out.write(f"{'time':<29} {'user':<10} {'action':<16} {'VMs':<34} outcome\n")
    for a in audit.actions(tuple(mine)):
        out.write(table_row(a) + "\n")
    return ExitCode.OK


def table_row(a: dict[str, Any]) -> str:
    """One action of the trail as a row of ``vditui audit``'s table."""
    req, res = a.get("request") or {}, a.get("outcome") or {}
    first = req or res
    action = str(first.get("action", "?")) + (" force" if first.get("force") else "")
    names = [str(v.get("name")) for v in req.get("vms", [])]
    vms = ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:2])} +{len(names) - 2}"
    if res:
        counts: dict[str, int] = {}
        for o in res.get("outcomes", []):
            counts[str(o.get("phase"))] = counts.get(str(o.get("phase")), 0) + 1
        outcome = f"exit {res.get('exit_code')}: " + ", ".join(
            f"{n} {p}" for p, n in sorted(counts.items()))
    else:
        outcome = "no outcome recorded (stopped mid-action?)"
    return (f"{first.get('time', '?')!s:<29} {first.get('user', '?')!s:<10} "
            f"{action:<16} {vms or '-':<34} {outcome}")
