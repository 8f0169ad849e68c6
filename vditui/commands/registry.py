"""Every command of ``vditui``, once: its name, its arguments, whether it needs the platform,
what each exit code means for it, and where its ``run`` lives.

This module is read when the parser is built, before logging is set up: it imports nothing
that loads libvirt or the engine (``run`` is a ``module:function`` path, imported when the
command runs; see ``tests/unit/test_cli_imports.py``)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vditui.commands.act_args import (
    ALL_PLATFORMS_HELP,
    SINCE_HELP,
    act_arguments,
    audit_arguments,
)
from vditui.core.exitcodes import ExitCode

Arguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One ``vditui COMMAND``."""

    name: str
    help: str
    arguments: Arguments
    run: str
    """``module:function``. With `needs_platform`: ``async (args, Launch) -> int``; without:
    ``(args) -> int``."""
    needs_platform: bool
    """Logs in to the platform (settings resolved, the password asked for); without it, the
    command reads local files only and no password is asked for."""
    exits: Mapping[ExitCode, str] = field(default_factory=dict)
    """What each code means for this command (the README's table)."""
    common: bool = True
    """Takes the common options (--config, --profile, --url, --demo, …)."""

    def load(self) -> Callable[..., Any]:
        """The ``run`` function (imports its module, hence, for most, the engine)."""
        module, _, name = self.run.partition(":")
        fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return fn


def _listen(text: str) -> tuple[str, int]:
    from vditui.commands.serve import parse_listen  # only with --listen: it loads the engine

    return parse_listen(text)


def _check(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable summary")
    p.add_argument("--user-facing", action="store_true",
                   help="judge only drifts on VMs a user is connected to now")


def _report(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("md", "json", "csv"), default="md")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")


def _probe(p: argparse.ArgumentParser) -> None:
    p.add_argument("host", help="the host's VDI name or IP")
    p.add_argument("--json", action="store_true")


def _watch(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jsonl", action="store_true", help="JSON lines (the only format, for now)")


def _baseline(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", action="append", metavar="KIND",
                   help="only drifts of this kind, e.g. only_in_vdi (repeatable)")
    p.add_argument("--reason", metavar="TEXT", help='the rules\' reason (default: "baseline '
                   'YYYY-MM-DD")')
    p.add_argument("--yes", action="store_true", help="write the rules without asking")


def _serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", metavar="HOST:PORT", type=_listen,
                   help="where to serve (default: 127.0.0.1:9464; port 0: any free port)")
    p.add_argument("--pool", nargs="+", action="extend", default=[], metavar="NAME",
                   help="read only the hosts of these resource pools (a shard; see "
                        "docs/monitoring.md)")
    p.add_argument("--hosts", nargs="+", action="extend", default=[], metavar="GLOB",
                   help="read only the hosts whose name or IP matches a glob (a shard)")


def _history(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="7d", metavar="WHEN", help=SINCE_HELP + "; default 7d")
    p.add_argument("--vm", metavar="NAME", help="only this VM's drifts")
    p.add_argument("--host", metavar="NAME", help="only this host's drifts and incidents")
    p.add_argument("--all-platforms", action="store_true", help=ALL_PLATFORMS_HELP)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON array of episodes")
    fmt.add_argument("--csv", action="store_true", help="episodes as CSV")


def _lab(p: argparse.ArgumentParser) -> None:
    lab_sub = p.add_subparsers(dest="lab_command", required=True)
    up = lab_sub.add_parser("up", help="serve a scenario until Ctrl-C")
    up.add_argument("--scenario", metavar="FILE", help="scenario TOML (default: built-in)")
    up.add_argument("--generate", metavar="HxV",
                    help="generate H hosts x V VMs instead of a scenario file, e.g. 50x100")
    up.add_argument("--chaos", type=float, default=0.0, metavar="RATE",
                    help="change RATE VM states per second")


_UNREACHABLE = ("a host or the platform could not be read (unless acknowledged), or the "
                "settings are wrong")
_BAD_INPUT = "bad input, or a file that cannot be read"
OK, DIFFERS, FAILED = ExitCode.OK, ExitCode.DIFFERS, ExitCode.FAILED

COMMANDS: tuple[Command, ...] = (
    Command("check", "one pass; exit 0 consistent, 1 drift, 2 unreachable", _check,
            "vditui.commands.check:run", True,
            {OK: "no drift counts", DIFFERS: "drift counts (confirmed, not acknowledged)",
             FAILED: _UNREACHABLE}),
    Command("report", "the full comparison as md, json or csv", _report,
            "vditui.commands.report:run", True,
            {OK: "no drift counts (the report written)",
             DIFFERS: "drift counts (the report written: the same verdict as check)",
             FAILED: _UNREACHABLE + "; or --output could not be written"}),
    Command("probe", "try every connection method for one host", _probe,
            "vditui.commands.probe:run", True,
            {OK: "some URI connected", FAILED: "no URI connected, or no such host"}),
    Command("watch", "follow states and drift, one JSON object per line", _watch,
            "vditui.commands.watch:run", True,
            {FAILED: "the platform could not be read at start, or the settings are wrong"}),
    Command("act", "ask the platform to sync, start, shut down or reboot VMs", act_arguments,
            "vditui.commands.act:run", True,
            {OK: "every VM agrees (or nothing to do, or --dry-run)",
             DIFFERS: "some VMs still differ",
             FAILED: "the platform refused or could not be reached; or refused before "
                     "sending (read-only, not confirmed, no terminal, bad --vm/--host)"}),
    Command("audit", "print the audit trail of actions", audit_arguments,
            "vditui.commands.audit:run", False,
            {OK: "the trail printed (even empty)", FAILED: _BAD_INPUT}),
    Command("baseline", "acknowledge every drift confirmed now (asks first)", _baseline,
            "vditui.commands.baseline:run", True,
            {OK: "rules written, none needed, or the operator said no",
             FAILED: "no terminal to ask on and no --yes; or the platform could not be read, "
                     "or the settings are wrong"}),
    Command("history", "drift, host and platform history (no login needed)", _history,
            "vditui.commands.history:run", False,
            {OK: "the history printed (even empty)", FAILED: _BAD_INPUT}),
    Command("serve", "run headless, serving /metrics (Prometheus) and /healthz", _serve,
            "vditui.commands.serve:run", True,
            {OK: "stopped by SIGTERM, SIGINT or SIGHUP",
             FAILED: "cannot listen, or the platform refused the login or its certificate"}),
    Command("lab", "run the lab: real libvirtd hosts and a simulated platform", _lab,
            "vditui.commands.lab:run", False,
            {OK: "stopped", FAILED: "bad scenario, or the lab could not start"}, common=False),
)
"""In the order ``vditui --help`` lists them."""

EVERY_COMMAND = {
    ExitCode.INTERRUPTED: "Ctrl-C, SIGTERM or SIGHUP (after cleaning up)",
    ExitCode.PIPE_CLOSED: "stdout closed before all was written (piped into head), quietly; output "
                          "the reader took in full leaves the command's own code",
}
"""What the codes every command may return mean (argparse's own usage error is 2 too)."""


def command(name: str) -> Command:
    """The command called ``name`` (KeyError: none)."""
    for c in COMMANDS:
        if c.name == name:
            return c
    raise KeyError(name)


def exit_table() -> str:
    """The README's table of exit codes, from `COMMANDS` and `EVERY_COMMAND`."""
    rows = ["| command | code | meaning |", "|---|---|---|"]
    for c in COMMANDS:
        rows += [f"| `{c.name}` | {int(code)} | {text} |" for code, text in c.exits.items()]
    rows += [f"| every command | {int(code)} | {text} |" for code, text in EVERY_COMMAND.items()]
    return "\n".join(rows) + "\n"
