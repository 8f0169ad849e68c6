"""vditui's entry point: the TUI by default (imported lazily), the lab, and headless commands.

Common options are accepted before or after the command name. The password is never a flag
(other users can read process arguments): it comes from ``VDITUI_PASSWORD``, the config, or a
prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from vditui.core.exitcodes import ExitCode


def _common(p: argparse.ArgumentParser, suppress: bool) -> None:
    # In subparsers the defaults are suppressed, so an option given before the command name is
    # not overwritten by the subparser's default.
    d: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    g = p.add_argument_group("common options")
    g.add_argument("--config", metavar="FILE", help="config file (default: the user config dir)",
                   **d)
    g.add_argument("--profile", metavar="NAME", help="platform profile from the config", **d)
    g.add_argument("--url", metavar="URL", help="the VDI platform, e.g. http://10.0.0.2:8088", **d)
    g.add_argument("--user", metavar="NAME", help="VDI user name", **d)
    g.add_argument("--uri-template", metavar="TEMPLATE", action="append", dest="uri_templates",
                   help="libvirt URI template, {ip} and {name} substituted (repeatable; replaces "
                        "the configured list)", **d)
    g.add_argument("--timeout", type=float, metavar="SECONDS", help="connect timeout", **d)
    g.add_argument("--grace", type=float, metavar="SECONDS",
                   help="seconds a drift must persist before it counts", **d)
    g.add_argument("--insecure", action="store_true", help="do not verify the platform's TLS", **d)
    g.add_argument("--read-only", action="store_true", dest="read_only",
                   help="disable every action on VMs (as read_only = true in a profile)", **d)
    g.add_argument("--demo", action="store_true",
                   help="start the lab's default scenario and point vditui at it", **d)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the common options, and each command of the registry."""
    from vditui.commands.registry import COMMANDS

    p = argparse.ArgumentParser(
        prog="vditui",
        description="Where an OCloudView VDI platform and its libvirt hosts disagree.",
        epilog="Environment: VDITUI_URL, VDITUI_USER, VDITUI_PASSWORD.")
    _common(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for c in COMMANDS:
        cp = sub.add_parser(c.name, help=c.help)
        c.arguments(cp)
        if c.common:
            _common(cp, True)
    return p


def run_face(args: argparse.Namespace) -> int:
    """The TUI (no command) or a command of the registry; those that need the platform get
    their settings from ``vditui.launch``; for ``--demo``, a lab started first (this is the only
    place the lab meets the faces)."""
    from vditui.commands.registry import command
    from vditui.launch import Options, resolve

    cmd = None if args.command is None else command(args.command)
    if cmd is not None and not cmd.needs_platform:
        # Files alone: no engine, no platform, so no password is asked for.
        return int(cmd.load()(args))
    options = Options.from_args(args)
    lab = None
    try:
        if options.demo:
            from vditui.demo import start_demo

            if cmd is None:  # the TUI: say what the seconds before it are spent on
                print("vditui: starting the lab (libvirtd daemons, the platform)…",
                      file=sys.stderr, flush=True)
            lab, target = start_demo(chaos=1.0 if cmd is None else 0.0)
            options = replace(options, lab=target)
        if cmd is None:
            from vditui.ui.run import run_tui

            return run_tui(options)
        return _run_with_platform(cmd.load(), args, resolve(options, interactive=True))
    finally:
        if lab is not None:
            lab.stop()


def _run_with_platform(run: Any, args: argparse.Namespace, start: Any) -> int:
    from vditui.config import ConfigError
    from vditui.core.vdi import VdiError
    from vditui.core.vdi_errors import platform_message

    try:
        for w in start.warnings:
            print(f"vditui: warning: {w}", file=sys.stderr)
        return int(asyncio.run(run(args, start)))
    except VdiError as exc:
        print(f"vditui: platform: {platform_message(exc)}", file=sys.stderr)
        return ExitCode.FAILED
    except ConfigError as exc:
        print(f"vditui: {exc}", file=sys.stderr)
        return ExitCode.FAILED


def _stop_on_hang_up(signum: int, _frame: object) -> None:
    # The terminal went away (an SSH session closed: SIGHUP) or we were asked to stop
    # (SIGTERM): leave as Ctrl-C does, through every ``finally``, so a --demo lab stops its
    # daemons and real QEMU guests instead of leaving them running.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, _stop_on_hang_up)
    from vditui.tuning import tune_gc

    tune_gc()  # see vditui.tuning: the default collector stalls under event storms
    from vditui.logsetup import setup_logging

    setup_logging()
    from vditui.config import ConfigError
    from vditui.lab import LabError, ScenarioError

    try:
        code = run_face(args)
    except (ScenarioError, LabError, ConfigError) as exc:
        print(f"vditui: {exc}", file=sys.stderr)
        code = ExitCode.FAILED
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:
        _drop_stdout()
        return ExitCode.PIPE_CLOSED
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # What was left to write is lost, as for any program whose reader went away: the
        # status says so, as a shell says it of one that SIGPIPE ended.
        _drop_stdout()
        return ExitCode.PIPE_CLOSED
    return code


def _drop_stdout() -> None:
    """The reader of stdout went away (``| head``): point stdout at /dev/null, so that nothing
    more is written and the interpreter's own flush at exit prints no traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
