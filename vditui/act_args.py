"""The command-line arguments of ``vditui act`` and ``vditui audit``, apart from the commands
themselves (:mod:`vditui.act_cmd`): the parser is built before logging is set up, and
``act_cmd`` loads the engine, hence libvirt, whose client log must be sent to a file first
(``vditui.logsetup``). So nothing here imports more than the actions' names."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from vditui.core.actions import Action

ACTIONS = tuple(a.value for a in Action)


def add_parsers(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The ``act`` and ``audit`` subcommands, on ``vditui.cli``'s subparsers."""
    a = sub.add_parser("act", help="ask the platform to sync, start, shut down or reboot VMs")
    a.add_argument("action", choices=ACTIONS, help="what to ask the platform to do")
    a.add_argument("--vm", action="append", metavar="NAME|GLOB", default=[],
                   help="a VM by name, glob or platform id (repeatable)")
    a.add_argument("--drift", choices=("confirmed", "any"), default=None,
                   help="only VMs with confirmed (or any) drift an action can end; the default: "
                        "confirmed, unless every --vm is an exact name (then each is judged)")
    a.add_argument("--host", metavar="NAME", help="only VMs on this host (either side's)")
    a.add_argument("--force", action="store_true",
                   help="force it (shutdown: power off; reboot: reset)")
    a.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    a.add_argument("--yes", action="store_true", help="send without asking")
    a.add_argument("--wait", action="store_true",
                   help="if another action on the platform is running (any vditui), wait for "
                        "it to end instead of refusing")
    a.add_argument("--json", action="store_true", help="one JSON document at the end")
    common(a)
    au = sub.add_parser("audit", help="print the audit trail of actions")
    au.add_argument("--since", metavar="WHEN", help="from this long ago (30m, 2h, 7d) or this "
                                                    "date/time (2026-12-01T08:00)")
    au.add_argument("--json", action="store_true", help="the records as JSON lines")
