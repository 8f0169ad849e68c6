"""``--demo``: start the lab's default scenario in-process and point vditui at it.

Only the entry point wires the lab to the engine: the core never knows it runs in a lab, and the
settings are built the normal way, by ``vditui.launch`` from the `LabTarget` returned here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vditui.core.uris import parse
from vditui.launch import LabTarget

if TYPE_CHECKING:
    from vditui.lab.lab import Lab


def start_demo(chaos: float = 0.0) -> tuple[Lab, LabTarget]:
    """Start the lab (with ``chaos`` state changes per second, if any); return it, for the caller
    to stop, and where it is."""
    from vditui.lab.lab import Lab
    from vditui.lab.scenario import load_default

    lab = Lab(load_default()).start()
    try:
        target = LabTarget(url=lab.vdi_url, username=lab.username, password=lab.password,
                           uri_template=lab.uri_template, uri_templates=lab.uri_templates,
                           config_path=lab.workdir / "demo-config.toml",
                           host_uris=demo_host_uris(lab), notes=tuple(lab.fallbacks.values()))
        if chaos > 0:
            lab.chaos(chaos)
    except BaseException:
        lab.stop()
        raise
    return lab, target


def demo_host_uris(lab: Any) -> dict[str, tuple[str, ...]]:
    """Host name -> the URIs to try, in order, for the hosts the lab does not serve over tcp:
    first as an operator without the lab's credentials would (ssh without a key, refused with
    "Permission denied (publickey)"; tls without ``pkipath``, which needs certificates), then
    with them (the lab's key, its certificates), which connects. So the demo tells the story
    on real daemons: the session keeps the second URI, the reconnect screen lists the first
    with why it failed, and tcp (a template) is refused there."""
    out: dict[str, tuple[str, ...]] = {}
    for name, works in lab.client_uris().items():
        h, transport = lab.host(name), parse(works).transport
        without = (h.tls_uri_with(None) if transport == "tls"
                   else h.ssh_uri_without_key if transport == "ssh" else None)
        out[name] = (works,) if without is None else (without, works)
    return out


def demo_story_uris(lab: Any) -> dict[str, list[str]]:
    """Host name -> the URIs that fail on the demo's ssh-only and tls-only hosts, for a probe
    to show why: tcp (refused), ssh without the key ("Permission denied (publickey)") and tls
    without certificates."""
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
