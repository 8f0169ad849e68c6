"""``--demo``: start the lab's default scenario in-process and point vditui at it.

Only the entry point wires the lab to the engine: the core never knows it runs in a lab.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def start_demo(args: argparse.Namespace, chaos: float = 0.0) -> Any:
    """Start the lab and fill ``args`` (URL, user, URI template, short timeouts) so the normal
    start-up path runs against it. Returns the lab; the caller stops it."""
    from vditui.lab.lab import Lab
    from vditui.lab.scenario import load_default

    lab = Lab(load_default()).start()
    args.url = lab.vdi_url
    args.user = lab.username
    args.uri_templates = list(lab.uri_templates)
    if getattr(args, "timeout", None) is None:
        args.timeout = 2.0
    if getattr(args, "grace", None) is None:
        args.grace = 3.0
    args.demo_password = lab.password
    args.config = os.devnull if getattr(args, "config", None) is None else args.config
    if chaos > 0:
        lab.chaos(chaos)
    return lab
