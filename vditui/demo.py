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
    args.uri_templates = [lab.uri_template]
    if getattr(args, "timeout", None) is None:
        args.timeout = 2.0
    if getattr(args, "grace", None) is None:
        args.grace = 3.0
    args.demo_password = lab.password
    args.demo_host_uris = demo_host_uris(lab)
    args.demo_notes = list(lab.fallbacks.values())
    args.config = os.devnull if getattr(args, "config", None) is None else args.config
    if chaos > 0:
        lab.chaos(chaos)
    return lab


def demo_host_uris(lab: Any) -> dict[str, str]:
    """Host name -> the URI that reaches it, for the hosts the lab does not serve over tcp:
    ssh with the lab's key, tls with the lab's certificates (``pkipath``). The plain URIs
    (tcp, refused there; tls without certificates) stay among the candidates the reconnect
    screen probes."""
    return dict(lab.client_uris())


def demo_story_uris(lab: Any) -> dict[str, list[str]]:
    """Host name -> the URIs that fail on the demo's ssh-only and tls-only hosts, for a probe
    to show why: ssh without the key ("Permission denied (publickey)") and tls without
    certificates. (The reconnect screen does not list the keyless ssh URI by itself: it is
    not a template's rendering nor an alternative of one.)"""
    out: dict[str, list[str]] = {}
    for name, h in lab.hosts.items():
        if "tcp" in h.transports:
            continue
        uris = [h.uri]
        if h.sshd is not None:
            uris.append(h.ssh_uri_without_key)
        if h.pki is not None:
            uris.append(h.tls_uri_with(None))
        out[name] = uris
    return out
