"""``vditui probe HOST``: every connection method for one host, each with why it failed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from vditui.core.engine import Engine
from vditui.core.events import EngineEvent, PlatformRefreshed
from vditui.core.exitcodes import ExitCode
from vditui.core.settings import EngineSettings
from vditui.core.uris import redact_uri
from vditui.launch import Launch


async def run(args: argparse.Namespace, start: Launch) -> int:
    """The registry's entry: `cmd_probe` with the resolved settings."""
    return await cmd_probe(args, start.settings, list(start.warnings))


async def cmd_probe(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    """Try each URI of ``args.host``; OK when one connects."""
    engine = Engine(settings)
    read: list[PlatformRefreshed] = []

    def keep(e: EngineEvent) -> None:
        if isinstance(e, PlatformRefreshed):
            read.append(e)

    engine.listen(keep)
    try:
        await engine.start(watch=False)
        host = engine.find_host(args.host)
        if host is None:
            names = ", ".join(h.name for h in read[-1].inventory.hosts) if read else ""
            print(f"vditui: no host {args.host!r} on the platform (hosts: {names})",
                  file=sys.stderr)
            return ExitCode.FAILED
        results = await engine.probe_host(host.id)
    finally:
        await engine.stop()
    if getattr(args, "json", False):
        out.write(json.dumps([{
            "uri": redact_uri(r.uri), "ok": r.ok, "latency_ms": round(r.latency * 1000, 1),
            "libvirt_version": r.libvirt_version, "hostname": r.hostname,
            "error": r.error.kind.value if r.error else None,
            "hint": r.error.hint if r.error else None,
            "detail": r.error.message if r.error else None} for r in results], indent=2) + "\n")
    else:
        out.write(f"probe {host.name} ({host.ip})\n")
        for r in results:
            if r.ok:
                out.write(f"  OK    {redact_uri(r.uri):<44} {r.latency * 1000:7.1f} ms  libvirt "
                          f"{r.libvirt_version} on {r.hostname or '?'}\n")
            else:
                assert r.error is not None
                out.write(f"  FAIL  {redact_uri(r.uri):<44} {r.latency * 1000:7.1f} ms  "
                          f"{r.error.kind.value}\n        hint: {r.error.hint}\n"
                          f"        detail: {r.error.message}\n")
    return ExitCode.OK if any(r.ok for r in results) else ExitCode.FAILED
