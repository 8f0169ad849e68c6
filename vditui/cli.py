"""vditui's entry point: the TUI by default (imported lazily), the lab, and headless commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _lab_parser(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser("lab", help="run the lab: real libvirtd hosts and a simulated platform")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    up = lab_sub.add_parser("up", help="serve a scenario until Ctrl-C")
    up.add_argument("--scenario", metavar="FILE", help="scenario TOML (default: built-in)")
    up.add_argument("--generate", metavar="HxV",
                    help="generate H hosts x V VMs instead of a scenario file, e.g. 50x100")
    up.add_argument("--chaos", type=float, default=0.0, metavar="RATE",
                    help="change RATE VM states per second")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vditui", description=__doc__)
    p.add_argument("--demo", action="store_true",
                   help="start the lab's default scenario and point vditui at it")
    sub = p.add_subparsers(dest="command")
    _lab_parser(sub)
    return p


def _scenario_from(args: argparse.Namespace):
    from vditui.lab import scenario as sc

    if getattr(args, "generate", None):
        try:
            h, v = (int(x) for x in args.generate.lower().split("x"))
        except ValueError:
            raise sc.ScenarioError("--generate", None, "HxV",
                                   f"expected two numbers like 50x100, got {args.generate!r}") from None
        return sc.generate(hosts=h, vms_per_host=v)
    if getattr(args, "scenario", None):
        return sc.load(args.scenario)
    return sc.load_default()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from vditui.lab import LabError, ScenarioError

    try:
        if args.command == "lab" or (args.command is None and args.demo):
            from vditui.lab.console import lab_up

            return lab_up(_scenario_from(args), chaos=getattr(args, "chaos", 1.0 if args.demo else 0))
    except (ScenarioError, LabError) as exc:
        print(f"vditui: {exc}", file=sys.stderr)
        return 2
    build_parser().print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
