"""Cold inventory and scaling, parent side: start a lab, add the delay, run workers, collect.

Each measured run is a fresh ``cold`` (or ``naive``) worker process against the same lab, so
every run opens its own connections, as a freshly started vditui would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks import wire
from benchmarks.common import Worker, run_worker
from vditui.lab.fleet import Fleet
from vditui.lab.lab import Lab
from vditui.lab.scenario import generate

Log = Callable[[str], None]


@contextmanager
def lab_up(hosts: int, vms: int, delay_ms: float) -> Iterator[tuple[Lab, float]]:
    """A started lab of ``hosts`` x ``vms`` with ``delay_ms`` added on every host and on the
    platform; yields it with its start time in seconds."""
    t0 = time.monotonic()
    with Lab(generate(hosts, vms)) as lab:
        lab.set_delay(delay_ms)
        yield lab, time.monotonic() - t0


def worker_config(lab: Lab | Fleet, **extra: Any) -> dict[str, Any]:
    hosts = len(lab.hosts)
    vms = len(lab.scenario.vms)
    return {"url": lab.vdi_url, "username": lab.username, "password": lab.password,
            "uri_template": lab.uri_template, "hosts": hosts, "expect_vms": vms, **extra}


def cold_once(lab: Lab | Fleet, tap: wire.RpcTap, timeout: float = 300) -> dict[str, Any]:
    """One engine run; wire counts are read when the worker says it has measured, before it
    tears its connections down."""
    w = Worker("cold", worker_config(lab, settle_timeout=timeout))
    try:
        before = tap.snapshot()
        w.expect("measured", timeout + 30)
        after = tap.snapshot()
        w.send("go")
        res = w.expect("result", 120)
    finally:
        w.close()
    res["wire_per_host"] = wire.summarize(wire.per_host(before, after))
    res["wire_procedures"] = wire.procedures(before, after)
    return res


def naive_once(lab: Lab, tap: wire.RpcTap, timeout: float) -> dict[str, Any]:
    before = tap.snapshot()
    res = run_worker("naive", worker_config(lab), timeout)
    after = tap.snapshot()
    res["wire_per_host"] = wire.summarize(wire.per_host(before, after))
    res["wire_procedures"] = wire.procedures(before, after)
    return res


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (the upper median for an even count)."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    return ordered[len(ordered) // 2]


def cold_case(hosts: int, vms: int, delay_ms: float, reps: int, naive: bool,
              tap: wire.RpcTap, log: Log) -> dict[str, Any]:
    """Section 1 for one size: ``reps`` engine runs (median reported) and one naive run."""
    with lab_up(hosts, vms, delay_ms) as (lab, lab_s):
        log(f"cold {hosts}x{vms}: lab up in {lab_s:.1f} s")
        runs = []
        for i in range(reps):
            runs.append(cold_once(lab, tap))
            log(f"  engine run {i + 1}/{reps}: {runs[-1]['wall_s']:.3f} s "
                f"(complete={runs[-1]['complete']})")
        out: dict[str, Any] = {"hosts": hosts, "vms_per_host": vms, "delay_ms": delay_ms,
                               "lab_start_s": round(lab_s, 2),
                               "engine": _median_run(runs),
                               "engine_walls_s": [r["wall_s"] for r in runs]}
        if naive:
            # Serial: about (open + list + one info per VM) round trips per host, one after
            # another, plus one request per 10 items on the platform.
            estimate = hosts * (vms + 10) * delay_ms / 1000 + (hosts * vms) / 10 * delay_ms / 1000
            out["naive"] = naive_once(lab, tap, timeout=max(120.0, 4 * estimate + 60))
            log(f"  naive: {out['naive']['wall_s']:.2f} s")
            out["speedup"] = round(out["naive"]["wall_s"] / out["engine"]["wall_s"], 1)
    return out


def scaling(host_counts: list[int], vm_counts: list[int], delay_ms: float, limit: int | None,
            reps: int, tap: wire.RpcTap, log: Log,
            reuse: dict[tuple[int, int], dict[str, Any]]) -> dict[str, Any]:
    """Section 2: the engine's cold time over hosts x VMs per host. Sizes with more than
    ``limit`` VMs in all are skipped (None: none skipped); ``reuse`` holds engine results
    already measured in section 1, by size."""
    points, skipped = [], []
    for vms in vm_counts:
        for hosts in host_counts:
            if limit is not None and hosts * vms > limit:
                skipped.append([hosts, vms])
                continue
            if (hosts, vms) in reuse:
                res, walls, lab_s = reuse[(hosts, vms)], None, None
            else:
                with lab_up(hosts, vms, delay_ms) as (lab, lab_s):
                    runs = [cold_once(lab, tap) for _ in range(reps)]
                res, walls = _median_run(runs), [r["wall_s"] for r in runs]
            log(f"scaling {hosts:>3}x{vms:<3}: {res['wall_s']:.3f} s "
                f"(slowest host done at {res['last_host_s']} s)")
            points.append({"hosts": hosts, "vms_per_host": vms, "wall_s": res["wall_s"],
                           "walls_s": walls or [res["wall_s"]],
                           "lab_start_s": None if lab_s is None else round(lab_s, 2),
                           "vdi_s": res["vdi_s"], "first_host_s": res["first_host_s"],
                           "last_host_s": res["last_host_s"], "complete": res["complete"],
                           "vdi_requests": res["vdi_requests"],
                           "trips_per_host": res["engine_trips_per_host"]["max"],
                           "wire_per_host": res.get("wire_per_host", {}),
                           "cpu_s": res["cpu_s"], "rss_peak_mb": res["rss_peak_mb"]})
    one_host = {p["vms_per_host"]: p["wall_s"] for p in points if p["hosts"] == 1}
    for p in points:
        base = one_host.get(p["vms_per_host"])
        p["vs_one_host"] = round(p["wall_s"] / base, 2) if base else None
    return {"delay_ms": delay_ms, "limit_vms": limit, "points": points, "skipped": skipped,
            "median_of": reps}


def slow_host(hosts: int, vms: int, delay_ms: float, slow_ms: float, reps: int,
              tap: wire.RpcTap, log: Log) -> dict[str, Any]:
    """One host far slower than the rest (``slow_ms`` instead of ``delay_ms`` added per round
    trip): the cold time of ``hosts`` x ``vms`` should be about that host's time alone, not the
    sum. Both labs keep the platform at ``delay_ms``."""
    with lab_up(1, vms, delay_ms) as (lab, _s):
        lab.set_delay(slow_ms, next(iter(lab.hosts)))
        alone = _median_run([cold_once(lab, tap) for _ in range(reps)])
    with lab_up(hosts, vms, delay_ms) as (lab, _s):
        lab.set_delay(slow_ms, next(iter(lab.hosts)))
        mixed = _median_run([cold_once(lab, tap) for _ in range(reps)])
    ratio = round(mixed["wall_s"] / alone["wall_s"], 2)
    log(f"slow host: {hosts}x{vms} with one host at {slow_ms:g} ms: {mixed['wall_s']:.3f} s; "
        f"that host alone: {alone['wall_s']:.3f} s ({ratio}x)")
    return {"hosts": hosts, "vms_per_host": vms, "delay_ms": delay_ms, "slow_ms": slow_ms,
            "wall_s": mixed["wall_s"], "alone_s": alone["wall_s"], "ratio": ratio,
            "complete": mixed["complete"] and alone["complete"]}
