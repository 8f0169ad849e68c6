"""``vditui lab up``: the lab served until Ctrl-C (real libvirtd hosts, a simulated platform)."""

from __future__ import annotations

import argparse
from typing import Any


def scenario_from(args: argparse.Namespace) -> Any:
    """The scenario ``--generate`` or ``--scenario`` names (the built-in one by default)."""
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


def run(args: argparse.Namespace) -> int:
    """Serve the scenario until Ctrl-C."""
    from vditui.lab.console import lab_up

    return lab_up(scenario_from(args), chaos=args.chaos)
