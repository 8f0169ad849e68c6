"""vditui's entry point: the TUI by default (imported lazily), the lab, and headless commands.

Common options are accepted before or after the command name. The password is never a flag
(other users can read process arguments): it comes from ``VDITUI_PASSWORD``, the config, or a
prompt.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

COMMANDS = ("check", "report", "probe", "watch", "act", "audit", "serve", "history",
            "baseline", "lab")


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


def _listen(text: str) -> tuple[str, int]:
    from vditui.serve import parse_listen  # only when --listen is given: it loads the engine

    return parse_listen(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vditui",
        description="Where an OCloudView VDI platform and its libvirt hosts disagree.",
        epilog="Environment: VDITUI_URL, VDITUI_USER, VDITUI_PASSWORD.")
    _common(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    c = sub.add_parser("check", help="one pass; exit 0 consistent, 1 drift, 2 unreachable")
    c.add_argument("--json", action="store_true", help="machine-readable summary")
    _common(c, True)
    r = sub.add_parser("report", help="the full comparison as md, json or csv")
    r.add_argument("--format", choices=("md", "json", "csv"), default="md")
    r.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")
    _common(r, True)
    pr = sub.add_parser("probe", help="try every connection method for one host")
    pr.add_argument("host", help="the host's VDI name or IP")
    pr.add_argument("--json", action="store_true")
    _common(pr, True)
    w = sub.add_parser("watch", help="follow states and drift, one JSON object per line")
    w.add_argument("--jsonl", action="store_true", help="JSON lines (the only format, for now)")
    _common(w, True)
    b = sub.add_parser("baseline", help="acknowledge every drift confirmed now (asks first)")
    b.add_argument("--kind", action="append", metavar="KIND",
                   help="only drifts of this kind, e.g. only_in_vdi (repeatable)")
    b.add_argument("--reason", metavar="TEXT", help='the rules\' reason (default: "baseline '
                   'YYYY-MM-DD")')
    b.add_argument("--yes", action="store_true", help="write the rules without asking")
    _common(b, True)
    sv = sub.add_parser("serve", help="run headless, serving /metrics (Prometheus) and /healthz")
    sv.add_argument("--listen", metavar="HOST:PORT", type=_listen,
                    help="where to serve (default: 127.0.0.1:9464; port 0: any free port)")
    _common(sv, True)
    from vditui.history_cmd import add_parser as add_history

    _common(add_history(sub), True)
    from vditui.act_args import add_parsers

    add_parsers(sub, lambda parser: _common(parser, True))
    lab = sub.add_parser("lab", help="run the lab: real libvirtd hosts and a simulated platform")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    up = lab_sub.add_parser("up", help="serve a scenario until Ctrl-C")
    up.add_argument("--scenario", metavar="FILE", help="scenario TOML (default: built-in)")
    up.add_argument("--generate", metavar="HxV",
                    help="generate H hosts x V VMs instead of a scenario file, e.g. 50x100")
    up.add_argument("--chaos", type=float, default=0.0, metavar="RATE",
                    help="change RATE VM states per second")
    return p


def scenario_from(args: argparse.Namespace) -> Any:
    from vditui.lab import scenario as sc

    if getattr(args, "generate", None):
        try:
            h, v = (int(x) for x in args.generate.lower().split("x"))
        except ValueError:
            raise sc.ScenarioError("--generate", None, "HxV", "expected two numbers like 50x100, "
                                   f"got {args.generate!r}") from None
        return sc.generate(hosts=h, vms_per_host=v)
    if getattr(args, "scenario", None):
        return sc.load(args.scenario)
    return sc.load_default()


def run_face(args: argparse.Namespace) -> int:
    """The TUI (no command) or a headless command, with settings from ``vditui.launch``; for
    ``--demo``, a lab started first (this is the only place the lab meets the faces)."""
    from vditui.launch import Options, resolve

    if args.command == "history":
        # The file alone: no engine, no platform, so no password is asked for.
        from vditui.history_cmd import run

        return run(args)
    options = Options.from_args(args)
    lab = None
    try:
        if options.demo:
            from vditui.demo import start_demo

            if args.command is None:  # the TUI: say what the seconds before it are spent on
                print("vditui: starting the lab (libvirtd daemons, the platform)…",
                      file=sys.stderr, flush=True)
            lab, target = start_demo(chaos=1.0 if args.command is None else 0.0)
            options = replace(options, lab=target)
        if args.command is None:
            from vditui.ui.run import run_tui

            return run_tui(options)
        from vditui.headless import run_command

        return run_command(args, resolve(options, interactive=True))
    finally:
        if lab is not None:
            lab.stop()


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
        if args.command == "lab":
            from vditui.lab.console import lab_up

            return lab_up(scenario_from(args), chaos=args.chaos)
        if args.command == "audit":  # reads a file: no platform, no password
            from vditui.act_cmd import cmd_audit

            return cmd_audit(args)
        return run_face(args)
    except (ScenarioError, LabError, ConfigError) as exc:
        print(f"vditui: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
