"""Section ``scale``: cold inventory of 1, 100 and 1,000 hosts x 20 VMs on a fleet (one libvirtd
serving every host through its own address, proxy and latency: :mod:`vditui.lab.fleet`).

Every figure is a ratio measured in the same run: to one host, and to the platform's lists read
alone in the same fleet (the floor: vditui cannot finish before the platform's pages are in),
the floor and the engine alternating. CPU seconds and peak RSS are the measured process's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks import wire
from benchmarks.cold import cold_once, worker_config
from benchmarks.common import run_worker
from vditui.lab.fleet import Fleet
from vditui.lab.scenario import generate

Log = Callable[[str], None]


@contextmanager
def fleet_up(hosts: int, vms: int, delay_ms: float,
             drift: float = 0.0) -> Iterator[tuple[Fleet, float]]:
    """A started fleet of ``hosts`` x ``vms`` with ``delay_ms`` on every host and the platform,
    ``drift`` of its VMs in a state the platform disagrees with."""
    t0 = time.monotonic()
    with Fleet(generate(hosts, vms, pools=max(2, hosts // 100), drift=drift)) as fleet:
        fleet.set_delay(delay_ms)
        yield fleet, time.monotonic() - t0


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]


def per_1000(value: float, vms: int) -> float | None:
    return round(value * 1000 / vms, 3) if vms else None


def scale(host_counts: list[int], vms: int, delay_ms: float, reps: int, tap: wire.RpcTap,
          log: Log) -> dict[str, Any]:
    """The engine's cold inventory and the platform floor, alternating, ``reps`` times per
    size (medians reported), then the ratios."""
    points = []
    for hosts in host_counts:
        with fleet_up(hosts, vms, delay_ms) as (fleet, up_s):
            log(f"scale {hosts}x{vms}: fleet up in {up_s:.1f} s")
            timeout = 120.0 + hosts * vms / 50
            floors, engines = [], []
            for _ in range(reps):
                floors.append(run_worker("platform", worker_config(fleet), timeout))
                engines.append(cold_once(fleet, tap, timeout))
                log(f"  platform alone {floors[-1]['wall_s']:.3f} s, engine "
                    f"{engines[-1]['wall_s']:.3f} s (complete={engines[-1]['complete']})")
        eng, floor = _median(engines), _median(floors)
        n = hosts * vms
        points.append({
            "hosts": hosts, "vms_per_host": vms, "vms": n, "fleet_start_s": round(up_s, 1),
            "wall_s": eng["wall_s"], "walls_s": [r["wall_s"] for r in engines],
            "floor_s": floor["wall_s"], "floors_s": [r["wall_s"] for r in floors],
            "vs_floor": round(eng["wall_s"] / floor["wall_s"], 2),
            "complete": all(r["complete"] for r in engines),
            "hosts_connected": eng["hosts_connected"], "vms_read": eng["vms"],
            "settled": eng["settled"],
            "last_host_s": eng["last_host_s"], "vdi_requests": eng["vdi_requests"],
            "wire_per_host": eng.get("wire_per_host", {}),
            "cpu_s": eng["cpu_s"], "cpu_s_per_1000_vms": per_1000(eng["cpu_s"], n),
            "floor_cpu_s": floor["cpu_s"], "rss_peak_mb": eng["rss_peak_mb"],
            "rss_base_mb": eng["rss_base_mb"]})
    base = next((p for p in points if p["hosts"] == 1), None)
    for p in points:
        p["vs_one_host"] = round(p["wall_s"] / base["wall_s"], 2) if base else None
        grown = p["vms"] - base["vms"] if base else 0
        p["rss_growth_mb_per_1000_vms"] = (
            round((p["rss_peak_mb"] - base["rss_peak_mb"]) * 1000 / grown, 2)
            if base and grown > 0 else None)
    return {"delay_ms": delay_ms, "median_of": reps, "points": points}


def targets(res: dict[str, Any], add: Callable[..., None]) -> None:
    """The summary rows: the biggest size against one host and against its floor."""
    pts = res["points"]
    if not pts:
        return
    big = max(pts, key=lambda p: p["vms"])
    add(f"{big['hosts']:,} hosts x {big['vms_per_host']} VMs read completely; cold inventory "
        "as ratios measured in one run (to 1 host; to the platform read alone)",
        f"{big['wall_s']:.2f} s: {big['vs_one_host']}x 1 host, {big['vs_floor']}x the "
        f"platform alone ({big['floor_s']:.2f} s); {big['cpu_s_per_1000_vms']} CPU s and "
        f"{big['rss_growth_mb_per_1000_vms']} MB peak RSS per 1,000 VMs", big["complete"])


def markdown(res: dict[str, Any]) -> list[str]:
    """The section's table."""
    lines = ["", f"## Scale: a fleet on one libvirtd (delay {res['delay_ms']} ms, median of "
             f"{res['median_of']}, platform floor and engine alternating)", ""]
    head = ["hosts", "VMs", "engine s (runs)", "platform alone s (runs)", "vs platform",
            "vs 1 host", "last host s", "VDI requests", "CPU s", "CPU s / 1,000 VMs",
            "peak RSS MB", "RSS growth MB / 1,000 VMs", "complete"]
    rows = [[p["hosts"], p["vms"], f"{p['wall_s']} ({', '.join(map(str, p['walls_s']))})",
             f"{p['floor_s']} ({', '.join(map(str, p['floors_s']))})", p["vs_floor"],
             p["vs_one_host"], p["last_host_s"], p["vdi_requests"], p["cpu_s"],
             p["cpu_s_per_1000_vms"], p["rss_peak_mb"], p["rss_growth_mb_per_1000_vms"],
             f"{p['complete']} ({p['hosts_connected']}/{p['hosts']} hosts connected at the "
             f"end, {p['vms_read']} VMs)"] for p in res["points"]]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    lines += ["| " + " | ".join("" if c is None else str(c) for c in r) + " |" for r in rows]
    return lines
