"""``vditui watch``: states and drift as they change, one JSON object per line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, TextIO

from vditui.core import present
from vditui.core.drift import DriftStatus
from vditui.core.engine import Engine
from vditui.core.events import (
    AckExpired,
    DomainChanged,
    DriftChanged,
    EngineEvent,
    HostChanged,
    PlatformFailed,
    PlatformRefreshed,
    SnapshotReady,
)
from vditui.core.exitcodes import ExitCode
from vditui.core.models import Drift
from vditui.core.present import ack_expired_sentence
from vditui.core.report import drift_record
from vditui.core.settings import EngineSettings
from vditui.core.vdi_facts import user_facing, user_name
from vditui.launch import Launch


async def run(args: argparse.Namespace, start: Launch) -> int:
    """The registry's entry: `cmd_watch` with the resolved settings."""
    return await cmd_watch(args, start.settings, list(start.warnings))


def _stamp(at: float) -> str:
    return present.timestamp(at, ms=True)


PLATFORM_BACK = "platform reachable again"


def event_records(e: EngineEvent) -> list[dict[str, Any]]:
    """The watch lines for an event (none for those watch does not print)."""
    match e:
        case DomainChanged(at=at, event=ev):
            return [{"type": "state", "at": _stamp(at), "host_id": ev.host_id, "vm": ev.name,
                     "uuid": ev.uuid, "event": ev.event,
                     "old": ev.old.state.value if ev.old else None,
                     "new": ev.new.state.value if ev.new else None}]
        case DriftChanged(at=at, change=ch) if ch.status is not DriftStatus.PENDING:
            return [{"type": "drift", "at": _stamp(at), **drift_record(ch.drift, ch.status.value)}]
        case HostChanged(at=at, host=host):
            return [{"type": "host", "at": _stamp(at), "host_id": host.host_id,
                     "message": host.describe()}]
        case PlatformFailed(at=at, message=message):
            return [_platform(at, message)]
        case PlatformRefreshed(at=at, new_warnings=new, recovered=recovered):
            # A failure is printed each time a refresh fails; its end once, as its own line.
            return [*(_platform(at, f"warning: {w}") for w in new),
                    *([_platform(at, PLATFORM_BACK)] if recovered else [])]
    return []


class WatchLines:
    """``watch``'s lines, acknowledged drift aside: an acknowledged drift raises no alert but
    is said once, as a confirmed ``drift`` line with ``acknowledged: {reason, expires}``; when
    its rule stops applying (expired), a plain confirmed line follows: the alert."""

    def __init__(self) -> None:
        self.said: dict[tuple[str, str], Drift] = {}
        self.hosts: dict[str, str] = {}
        self.facing: dict[str, str] = {}  # row key -> user, of the user-facing VMs

    def records(self, e: EngineEvent) -> list[dict[str, Any]]:
        """The lines for ``e``, each naming its host as every face does (``host``); a drift
        line says whether it is user-facing (from the latest comparison: a drift is confirmed
        after the snapshots that showed it pending)."""
        match e:
            case PlatformRefreshed(inventory=inv):
                self.hosts.update((h.id, h.name) for h in inv.hosts)
            case SnapshotReady(comparison=cmp):
                self.hosts.update((h.host.id, h.host.name) for h in cmp.hosts)
                self.facing = {r.key: user_name(r.vdi) for r in cmp.vms if user_facing(r)}
        lines = self._records(e)
        for r in lines:
            if "host_id" in r:
                r.setdefault("host", self.hosts.get(r["host_id"], ""))
            if r.get("type") == "drift":
                r["user_facing"] = r.get("key") in self.facing
                if r["user_facing"]:
                    r["user"] = self.facing[r["key"]]
        return lines

    def _records(self, e: EngineEvent) -> list[dict[str, Any]]:
        match e:
            case SnapshotReady(at=at):
                return self._snapshot(e, at)
            case DriftChanged(at=at, change=ch, acknowledged=rule) if rule is not None:
                if ch.status is DriftStatus.RESOLVED:
                    self.said.pop(ch.drift.ident, None)
                elif ch.status is DriftStatus.PENDING or ch.drift.ident in self.said:
                    return []
                else:
                    self.said[ch.drift.ident] = ch.drift
                return [{"type": "drift", "at": _stamp(at),
                         **drift_record(ch.drift, ch.status.value, rule)}]
            case AckExpired(at=at, rule=rule):
                return [{"type": "ack", "at": _stamp(at), "message": ack_expired_sentence(
                    rule.expires, rule.describe(), rule.reason)}]
        return event_records(e)

    def _snapshot(self, snap: SnapshotReady, at: float) -> list[dict[str, Any]]:
        out = []
        for ident, d in list(self.said.items()):
            if ident not in snap.acknowledged:
                del self.said[ident]
                if snap.status(d) is DriftStatus.CONFIRMED:
                    out.append({"type": "drift", "at": _stamp(at), **drift_record(d, "confirmed")})
        for d, rule in snap.confirmed_acknowledged():
            if d.ident not in self.said:
                self.said[d.ident] = d
                out.append({"type": "drift", "at": _stamp(at),
                            **drift_record(d, "confirmed", rule)})
        return out


def _platform(at: float, message: str) -> dict[str, Any]:
    return {"type": "platform", "at": _stamp(at), "message": message}


async def cmd_watch(args: argparse.Namespace, settings: EngineSettings,
                    warnings: list[str], out: TextIO = sys.stdout) -> int:
    """Follow the engine until stopped, or until the reader of ``out`` goes away (``| head``):
    then stop the engine and raise BrokenPipeError for ``vditui.cli.main`` to end quietly."""
    engine = Engine(settings)
    closed = asyncio.Event()

    def write(records: list[dict[str, Any]]) -> None:
        if records and not closed.is_set():
            try:
                out.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
                out.flush()
            except BrokenPipeError:
                # The engine's listener: an exception here would only be logged, and watch
                # would go on writing to nobody.
                closed.set()

    write([_platform(time.time(), f"warning: {w}") for w in warnings])
    lines = WatchLines()
    engine.listen(lambda e: write(lines.records(e)))
    try:
        await engine.start(watch=True)
        if engine.history_off:
            write([_platform(time.time(), f"warning: {engine.history_off}")])
        # Ctrl-C or SIGTERM cancels this wait: the cancellation goes on up, so the command
        # ends as interrupted (130), after the engine's stop below.
        await closed.wait()
    finally:
        await engine.stop()
    if closed.is_set():
        raise BrokenPipeError("stdout closed")
    return ExitCode.OK
