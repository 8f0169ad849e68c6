"""The command-line arguments of ``vditui act`` and ``vditui audit``, apart from the commands
themselves (:mod:`vditui.commands.act`, :mod:`vditui.commands.audit`): the parser is built
before logging is set up, and ``act`` loads the engine, hence libvirt, whose client log must be
sent to a file first (``vditui.logsetup``). So nothing here imports more than the actions'
names."""

from __future__ import annotations

import argparse

from vditui.core.actions import Action

ACTIONS = tuple(a.value for a in Action)
ALL_PLATFORMS_HELP = ("every platform's records (default: the configured platform's; "
                      "--demo: the demo's)")
SINCE_HELP = ("from this long ago (90m, 1.5h, 7d) or this date or date and time (2026-12-01, "
              "2026-12-01T08:00)")


def act_arguments(a: argparse.ArgumentParser) -> None:
    """``act``'s arguments."""
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


def audit_arguments(au: argparse.ArgumentParser) -> None:
    """``audit``'s arguments."""
    au.add_argument("--since", metavar="WHEN", help=SINCE_HELP)
    au.add_argument("--json", action="store_true", help="the records as JSON lines")
    au.add_argument("--all-platforms", action="store_true", help=ALL_PLATFORMS_HELP)
