"""Section ``monitor``: monitoring at a site's size.

1. A ``/metrics`` scrape of ``vditui serve``'s own exporter (its HTTP server, WSGI app, registry
   and :class:`~vditui.core.metrics.MetricsState`, fed by a real engine) over a fleet of
   1,000 hosts x 20 VMs with drift: scrape wall time over HTTP, the series count and size, and
   the collection alone, in the worker (mode ``scrape``).
2. ``vditui history --since 7d --host X`` over a synthetic year of a 20,000-VM estate: the file
   is written with the history's own schema (:func:`vditui.core.history_db.connect`), then the
   query is timed in the worker through the history module's own readers, and the whole
   command as a fresh process (``vditui history``, its own state dir); the file's
   size stated (mode ``history``).
"""

from __future__ import annotations

import importlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, peak_rss_mb, run_worker

Log = Callable[[str], None]


# --------------------------------------------------------------------------- parent side


def run(fleet_size: tuple[int, int], scrapes: int, history_vms: int, per_vm_year: float,
        delay_ms: float, log: Log) -> dict[str, Any]:
    """Both measurements; the fleet is up only for the scrape."""
    from benchmarks.cold import worker_config
    from benchmarks.scale import fleet_up

    hosts, vms = fleet_size
    out: dict[str, Any] = {}
    with fleet_up(hosts, vms, delay_ms, drift=0.05) as (fleet, up_s):
        log(f"monitor: fleet {hosts}x{vms} up in {up_s:.1f} s; scraping {scrapes} times")
        cfg = worker_config(fleet, scrapes=scrapes, settle_timeout=120.0 + hosts * vms / 50)
        out["scrape"] = run_worker("scrape", cfg, 300.0 + hosts * vms / 20)
    s = out["scrape"]
    log(f"  /metrics at {s['vms']} VMs, {s['hosts']} hosts: p50 {s['http_ms_p50']} ms, max "
        f"{s['http_ms_max']} ms, {s['series']} series ({s['bytes'] // 1024} KiB)")
    out["history"] = run_worker("history", {"vms": history_vms, "hosts": max(1, history_vms // 20),
                                            "per_vm_year": per_vm_year}, 1800.0)
    h = out["history"]
    log(f"  history: {h['episodes']} episodes over a year, {h['file_mb']} MB; --since 7d --host "
        f"X: query p50 {h['query_ms_p50']} ms, command {h['command_s_median']} s")
    return out


def targets(res: dict[str, Any], add: Callable[..., None]) -> None:
    s, h = res.get("scrape"), res.get("history")
    if s:
        add(f"/metrics scrape at {s['vms']:,} VMs, {s['hosts']:,} hosts <= 0.5 s",
            f"p50 {s['http_ms_p50']} ms, max {s['http_ms_max']} ms over HTTP: "
            f"{s['ms_per_1000_vms']} ms per 1,000 VMs; {s['series']:,} series "
            f"({s['bytes'] // 1024:,} KiB)", s["http_ms_max"] <= 500)
    if h:
        add(f"history --since 7d --host X over a year of {h['vms']:,} VMs <= 1 s",
            f"command {h['command_s_median']} s (query alone p50 {h['query_ms_p50']} ms); "
            f"{h['episodes']:,} episodes, file {h['file_mb']} MB", h["command_s_median"] <= 1.0)


def markdown(res: dict[str, Any]) -> list[str]:
    lines = ["", "## Monitoring at scale", ""]
    s, h = res.get("scrape"), res.get("history")
    if s:
        lines.append(
            f"`/metrics` over HTTP ({s['scrapes']} scrapes of serve's own exporter, a real "
            f"engine over a fleet of {s['hosts']} hosts, {s['vms']} VMs, {s['drifts']} drifts): "
            f"p50 {s['http_ms_p50']} ms, max {s['http_ms_max']} ms ({s['ms_per_1000_vms']} ms "
            f"per 1,000 VMs); collection alone (`families()`) p50 {s['families_ms_p50']} ms; "
            f"{s['series']} series, {s['bytes']} bytes; series by family: "
            f"`{s['series_by_family']}`. Peak RSS {s['rss_peak_mb']} MB.")
    if h:
        lines.append("")
        lines.append(
            f"History: a year of {h['vms']} VMs on {h['hosts']} hosts, {h['episodes']} drift "
            f"episodes ({h['per_vm_year']} per VM per year) and {h['incidents']} host "
            f"incidents: file {h['file_mb']} MB, written in {h['write_s']} s. `history "
            f"--since 7d --host {h['host']}`: {h['rows']} episodes; the query (the history's "
            f"own readers) p50 {h['query_ms_p50']} ms, max {h['query_ms_max']} ms; the whole "
            f"command as a process {h['command_s_median']} s (runs "
            f"{', '.join(map(str, h['command_s']))}; Python's start alone "
            f"{h['python_start_s']} s). Query plan: `{h['plan']}`.")
    return lines


# --------------------------------------------------------------------------- worker: scrape


def _serve_module() -> Any:
    """serve's HTTP side."""
    return importlib.import_module("vditui.commands.serve")


async def scrape_worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """A real engine feeding serve's MetricsState and HTTP server; ``scrapes`` GETs timed."""
    import asyncio

    from prometheus_client import make_wsgi_app

    from benchmarks.worker import engine_settings
    from vditui.commands.serve_metrics import registry
    from vditui.core.engine import Engine
    from vditui.core.metrics import MetricsState

    serve = _serve_module()
    settings = engine_settings(cfg)
    state = MetricsState(2 * settings.refresh_interval + settings.call_timeout)
    engine = Engine(settings)
    engine.listen(state.on_event)
    await engine.start(watch=False)
    try:
        settled = await engine.wait_settled(cfg["settle_timeout"])
        http = serve.HttpServer.bind("127.0.0.1", 0,
                                     serve.app(state, make_wsgi_app(registry(state))))
        http.start()
        url = "http://{}:{}/metrics".format(*http.address)
        try:
            timed = await asyncio.to_thread(_scrape, url, cfg["scrapes"])
        finally:
            await asyncio.to_thread(http.close)
        fams = []
        for _ in range(cfg["scrapes"]):
            t0 = time.perf_counter()
            families = state.families()
            fams.append(time.perf_counter() - t0)
        drifts = sum(v for f in families if f.name == "vditui_drifts" for _l, v in f.samples)
    finally:
        await engine.stop()
    vms = cfg["expect_vms"]
    http_ms = timed["ms"]
    return {"hosts": cfg["hosts"], "vms": vms, "settled": settled, "scrapes": len(http_ms),
            "http_ms_p50": round(statistics.median(http_ms), 1),
            "http_ms_max": round(max(http_ms), 1),
            "ms_per_1000_vms": round(statistics.median(http_ms) * 1000 / vms, 2),
            "families_ms_p50": round(statistics.median(fams) * 1000, 1),
            "series": timed["series"], "bytes": timed["bytes"],
            "series_by_family": timed["by_family"], "drifts": int(drifts),
            "rss_peak_mb": peak_rss_mb()}


def _scrape(url: str, n: int) -> dict[str, Any]:
    times, body = [], b""
    for _ in range(n):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as resp:
            body = resp.read()
        times.append((time.perf_counter() - t0) * 1000)
    by_family: dict[str, int] = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            by_family[name] = by_family.get(name, 0) + 1
    return {"ms": times, "series": sum(by_family.values()), "bytes": len(body),
            "by_family": dict(sorted(by_family.items(), key=lambda kv: -kv[1])[:8])}


# --------------------------------------------------------------------------- worker: history

YEAR = 365 * 86400.0


def _write_year(path: Path, vms: int, hosts: int, per_vm_year: float, now: float,
                platform: str) -> tuple[int, int]:
    """A year of drift episodes (mostly short, some long, a few still open) and host incidents,
    written with the history's own schema; returns (episodes, incidents)."""
    from vditui.core import history_db as hdb
    from vditui.core.models import DriftKind

    rnd = random.Random(22)
    kinds = [k.value for k in DriftKind if k.value not in ("unreachable",
                                                          "offline_but_reachable")]
    episodes = int(vms * per_vm_year)
    db = hdb.connect(path)
    try:
        rows = []
        for i in range(episodes):
            vm = rnd.randrange(vms)
            host = f"hv{vm % hosts + 1:04d}"
            first = now - rnd.random() * YEAR
            last = rnd.expovariate(1 / 600.0) if rnd.random() < 0.95 else rnd.random() * 86400
            resolved = None if i % 5000 == 0 else min(now, first + last)
            rows.append((platform, f"vm-{vm:06d}", rnd.choice(kinds), f"{host}-vm{vm:06d}", host,
                         "state differs", "running", "shutoff", first,
                         first + 10 if last > 10 else None, None, None, resolved))
            if len(rows) == 50_000 or i == episodes - 1:
                with hdb.transaction(db):
                    db.executemany(
                        "INSERT INTO drift (platform, key, kind, subject, host, message, "
                        "vdi_value, virt_value, first_seen, confirmed, acknowledged, ack_reason, "
                        "resolved) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                rows = []
        incidents = hosts * 52
        inc = []
        for _ in range(incidents):
            start = now - rnd.random() * YEAR
            inc.append((platform, "host", f"hv{rnd.randrange(hosts) + 1:04d}",
                        "connection refused", start, start + rnd.expovariate(1 / 120.0)))
        with hdb.transaction(db):
            db.executemany("INSERT INTO incident (platform, scope, name, cause, started, ended) "
                           "VALUES (?, ?, ?, ?, ?, ?)", inc)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return episodes, incidents


def history_worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """Write the year under a state dir of its own, then time the query and the command."""
    from vditui.core import history_db as hdb

    vms, hosts = cfg["vms"], cfg["hosts"]
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="vditui-bench-history-") as tmp:
        env = {**os.environ, "XDG_STATE_HOME": f"{tmp}/state", "XDG_CONFIG_HOME": f"{tmp}/cfg",
               "XDG_CACHE_HOME": f"{tmp}/cache", "HOME": tmp, "PYTHONPATH": str(ROOT)}
        path = _history_path(env)
        t0 = time.monotonic()
        episodes, incidents = _write_year(path, vms, hosts, cfg["per_vm_year"], now,
                                          "https://vdi.example:8088")
        write_s = time.monotonic() - t0
        host = f"hv{hosts // 2:04d}"
        since = now - 7 * 86400
        queries, rows = [], 0
        for _ in range(5):
            t0 = time.perf_counter()
            db = hdb.connect(path, create=False)
            try:
                rows = len(hdb.drifts(db, since=since, host=host))
                hdb.incidents(db, since=since, host=host)
                plan = " / ".join(r[-1] for r in db.execute(
                    "EXPLAIN QUERY PLAN SELECT * FROM drift WHERE (resolved IS NULL OR "
                    "resolved >= ?) AND host = ? ORDER BY first_seen, id", (since, host)))
            finally:
                db.close()
            queries.append((time.perf_counter() - t0) * 1000)
        # The installed entry point's own code (vditui.cli:main), from this tree.
        cmd = [sys.executable, "-c", "import sys; from vditui.cli import main; sys.exit(main())",
               "history", "--since", "7d", "--host", host]
        runs, start = [], []
        for _ in range(3):
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-c", "import vditui"], env=env, check=True,
                           cwd=tmp, capture_output=True)
            start.append(time.monotonic() - t0)
            t0 = time.monotonic()
            done = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True,
                                  check=False)
            runs.append(round(time.monotonic() - t0, 3))
            if done.returncode != 0:
                raise RuntimeError(f"history command failed: {done.stderr.strip()[-300:]}")
        size = sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))
    return {"vms": vms, "hosts": hosts, "per_vm_year": cfg["per_vm_year"], "episodes": episodes,
            "incidents": incidents, "write_s": round(write_s, 1),
            "file_mb": round(size / 1e6, 1), "host": host, "rows": rows,
            "query_ms_p50": round(statistics.median(queries), 1),
            "query_ms_max": round(max(queries), 1), "plan": plan,
            "command_s": runs, "command_s_median": statistics.median(runs),
            "python_start_s": round(statistics.median(start), 3)}


def _history_path(env: dict[str, str]) -> Path:
    """Where ``vditui history`` looks with this environment (asked of vditui itself)."""
    code = "from vditui.launch import history_path; print(history_path())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=env["HOME"])
    return Path(out.stdout.strip())
