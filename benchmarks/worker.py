"""The measured side, run as ``python -m benchmarks.worker MODE CONFIG_JSON`` by the parent.

Modes: ``cold`` (the engine, from start to a complete reconciled inventory), ``platform`` (the
platform's lists alone: the cold inventory's floor), ``naive`` (the
field report's way, see :mod:`benchmarks.naive`), ``watch`` (``watch --jsonl`` under a storm),
``tui`` (the TUI through Textual's Pilot: load, idle CPU, key presses during a refresh, storm).

The lab runs in the parent, so this process's CPU time and peak RSS are vditui's alone. Messages
to the parent go through :func:`benchmarks.common.say`; commands come on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import traceback
from typing import Any

from benchmarks.common import peak_rss_mb, rss_mb, say


def engine_settings(cfg: dict[str, Any]) -> Any:
    """Engine settings for the lab described by ``cfg`` (defaults otherwise, as shipped)."""
    from vditui.core.engine import EngineSettings

    return EngineSettings(url=cfg["url"], username=cfg["username"], password=cfg["password"],
                          uri_templates=(cfg["uri_template"],),
                          connect_timeout=cfg.get("connect_timeout", 10.0),
                          call_timeout=cfg.get("call_timeout", 30.0))


async def stdin_line() -> str:
    """The parent's next command ('' when it closed our stdin)."""
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    return line.strip()


# --------------------------------------------------------------------------- cold


async def cold(cfg: dict[str, Any]) -> dict[str, Any]:
    """Engine start to complete reconciled inventory, with what it cost."""
    from vditui.core.engine import Engine
    from vditui.core.events import EngineEvent, HostChanged, SnapshotReady
    from vditui.core.models import ConnState

    settings = engine_settings(cfg)
    base_rss = rss_mb()
    cpu0 = time.process_time()
    t0 = time.monotonic()
    engine = Engine(settings)
    host_done: dict[str, float] = {}

    snaps: list[SnapshotReady] = []

    def on_update(u: EngineEvent) -> None:
        if isinstance(u, HostChanged) and u.host.state is ConnState.CONNECTED and (
                u.host.host_id not in host_done):
            host_done[u.host.host_id] = time.monotonic() - t0
        elif isinstance(u, SnapshotReady):
            snaps[:] = [u]

    engine.listen(on_update)
    try:
        await engine.start(watch=False)
        t_vdi = time.monotonic() - t0
        settled = await engine.wait_settled(cfg.get("settle_timeout", 120.0))
        wall = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        assert snaps
        cmp = snaps[-1].comparison
        # The parent reads the wire counters now, before the teardown's calls, then says go.
        say("measured")
        await stdin_line()
        stats = engine.stats()
        trips = [s.last_read_trips for s in stats.hosts]
        totals = [s.round_trips for s in stats.hosts]
        connected = sum(1 for s in stats.hosts if s.state is ConnState.CONNECTED)
        expected = cfg.get("expect_vms")
        unchecked = sum(1 for r in cmp.vms if not r.checked)
        done = sorted(host_done.values())
        return {
            "wall_s": round(wall, 3),
            "vdi_s": round(t_vdi, 3),
            "first_host_s": round(done[0], 3) if done else None,
            "last_host_s": round(done[-1], 3) if done else None,
            "settled": settled,
            "hosts": len(stats.hosts),
            "hosts_connected": connected,
            "vms": len(cmp.vms),
            "drifts": len(cmp.drifts),
            "complete": bool(settled and connected == len(stats.hosts) and not unchecked
                             and (expected is None or len(cmp.vms) == expected)),
            "vdi_requests": stats.platform_requests,
            "engine_trips_per_host": {"min": min(trips, default=0), "max": max(trips, default=0)},
            "engine_round_trips_per_host": {"min": min(totals, default=0),
                                            "max": max(totals, default=0)},
            "cpu_s": round(cpu, 3),
            "rss_base_mb": base_rss,
            "rss_peak_mb": peak_rss_mb(),
        }
    finally:
        await engine.stop()


async def platform(cfg: dict[str, Any]) -> dict[str, Any]:
    """The floor of a cold inventory: the platform's lists read alone, with the engine's own
    client and settings (vditui cannot finish before these pages are in)."""
    from vditui.core.vdi import VdiClient

    s = engine_settings(cfg)
    base = rss_mb()
    cpu0, t0 = time.process_time(), time.monotonic()
    async with VdiClient(s.url, s.username, s.password, connect_timeout=s.connect_timeout,
                         timeout=s.call_timeout, page_size=s.page_size,
                         page_concurrency=s.page_concurrency) as client:
        inv = await client.inventory()
    return {"wall_s": round(time.monotonic() - t0, 3),
            "cpu_s": round(time.process_time() - cpu0, 3), "hosts": len(inv.hosts),
            "vms": len(inv.vms), "vdi_requests": inv.requests, "rss_base_mb": base,
            "rss_peak_mb": peak_rss_mb()}


def naive(cfg: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.naive import run

    base = rss_mb()
    cpu0 = time.process_time()
    out = run(cfg["url"], cfg["username"], cfg["password"], cfg["uri_template"],
              cfg.get("page_size", 10))
    out.update(cpu_s=round(time.process_time() - cpu0, 3), rss_base_mb=base,
               rss_peak_mb=peak_rss_mb())
    return out


# --------------------------------------------------------------------------- watch --jsonl


class _Stamped:
    """A text stream that keeps each written line with the time it was written."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []
        self.connected: set[str] = set()

    def write(self, text: str) -> int:
        now = time.monotonic()
        self.lines.append((now, text))
        if '"type": "host"' in text:
            rec = json.loads(text)
            name, _, rest = rec["message"].partition(": ")
            if rest.startswith("connected"):
                self.connected.add(name)
        return len(text)

    def flush(self) -> None:
        pass


async def watch(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cmd_watch`` on a stamped stream: ready once every host reported connected, then the
    parent storms; on ``finish``, wait for quiet and return every state line with its time."""
    from vditui.commands.watch import cmd_watch

    out = _Stamped()
    t0 = time.monotonic()
    task = asyncio.create_task(cmd_watch(argparse.Namespace(), engine_settings(cfg), [],
                                         out=out))  # type: ignore[arg-type]
    deadline = t0 + cfg.get("settle_timeout", 120.0)
    while len(out.connected) < cfg["hosts"]:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError(f"watch: {len(out.connected)}/{cfg['hosts']} hosts connected")
        await asyncio.sleep(0.02)
    ready_s = time.monotonic() - t0
    start = len(out.lines)
    cpu0, w0 = time.process_time(), time.monotonic()
    say("ready", {"ready_s": round(ready_s, 3)})
    await stdin_line()  # "finish": the storm is over
    cpu_pct = 100 * (time.process_time() - cpu0) / max(1e-9, time.monotonic() - w0)
    await wait_quiet(lambda: len(out.lines), cfg.get("quiet_s", 1.5), 15.0)
    records = []
    for t, text in out.lines[start:]:
        rec = json.loads(text)
        if rec.get("type") == "state":
            records.append([round(t, 6), rec["uuid"], rec["new"]])
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return {"ready_s": round(ready_s, 3), "records": records,
            "storm_cpu_pct": round(cpu_pct, 1), "rss_peak_mb": peak_rss_mb()}


async def wait_quiet(count: Any, quiet_s: float, limit_s: float) -> None:
    """Return once ``count()`` has not changed for ``quiet_s`` (or after ``limit_s``)."""
    last, since = count(), time.monotonic()
    end = since + limit_s
    while time.monotonic() < end:
        await asyncio.sleep(0.05)
        now_count = count()
        if now_count != last:
            last, since = now_count, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return


# --------------------------------------------------------------------------- entry


def main(argv: list[str]) -> int:
    mode, cfg = argv[0], json.loads(argv[1])
    try:
        if mode == "cold":
            result = asyncio.run(cold(cfg))
        elif mode == "scrape":
            from benchmarks.monitor import scrape_worker

            result = asyncio.run(scrape_worker(cfg))
        elif mode == "history":
            from benchmarks.monitor import history_worker

            result = history_worker(cfg)
        elif mode == "platform":
            result = asyncio.run(platform(cfg))
        elif mode == "naive":
            result = naive(cfg)
        elif mode == "watch":
            result = asyncio.run(watch(cfg))
        elif mode == "table":
            from benchmarks.table import run_table

            result = run_table(cfg)
        elif mode == "tui":
            from benchmarks.tui_probe import run_tui

            result = asyncio.run(run_tui(cfg))
        else:
            raise ValueError(f"unknown mode {mode!r}")
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which shows the traceback
        traceback.print_exc()
        say("error", {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    say("result", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
