"""Section ``qemu``: the read path on real hypervisors (the lab's qemu hosts), parent side.

1. Wire RPCs per host for one qemu host with 10, 100 and 500 defined guests (a few running):
   QEMU answers vCPU and memory for every guest in one ``getAllDomainStats``, so the count
   should not move with the guests (target: the same count at every size, at most 10 with the
   open).
2. Cold inventory of many qemu hosts (8 x 50 guests, a few running on each) against one such
   host (target: within 1.5x).
3. What the lab's real hypervisors cost: RSS and CPU of their libvirtds and QEMU guests, idle,
   after the runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks import wire
from benchmarks.cold import _median_run, cold_once
from vditui.lab.lab import Lab
from vditui.lab.qemu import QemuDaemon
from vditui.lab.scenario import HostSpec, PoolSpec, Scenario, VdiSide, VirtSide, VmSpec, stable_uuid

Log = Callable[[str], None]
WIRE_SIZES = (10, 100, 500)
RUNNING_PER_HOST = 2
GUEST_MB = 64


def scenario(hosts: int, guests: int, running: int = RUNNING_PER_HOST) -> Scenario:
    """``hosts`` qemu hosts with ``guests`` guests each, the first ``running`` of them running,
    all consistent with the platform."""
    name = f"qemu-{hosts}x{guests}"
    pool = PoolSpec(id=stable_uuid(name, "pool"), name="real")
    host_specs = tuple(HostSpec(name=f"kvm{h + 1:02d}", pool=pool.id, driver="qemu",
                                id=stable_uuid(name, "host", str(h))) for h in range(hosts))
    vms = []
    for h in host_specs:
        for n in range(guests):
            up = n < running
            vid = stable_uuid(name, "vm", h.name, str(n))
            vcpu, vmax = (1, 2) if n % 2 else (1, 1)
            vms.append(VmSpec(
                name=f"{h.name}-g{n + 1:03d}", uuid=vid,
                vdi=VdiSide(id=vid, host=h.name, status=1 if up else 0, vcpu=vcpu,
                            memory_mb=GUEST_MB),
                virt=VirtSide(host=h.name, state="running" if up else "shutoff", vcpu=vcpu,
                              vcpu_max=vmax, memory_mb=GUEST_MB,
                              current_memory_mb=GUEST_MB // 2 if n % 3 == 0 else None)))
    return Scenario(name=name, description=f"{hosts} qemu hosts x {guests} guests",
                    pools=(pool,), hosts=host_specs, vms=tuple(vms))


@contextmanager
def qemu_lab(hosts: int, guests: int, delay_ms: float) -> Iterator[tuple[Lab, float]]:
    """A started qemu lab whose guests have finished booting; yields it with its start time
    (up to the daemons answering and the guests started, not the boot)."""
    t0 = time.monotonic()
    with Lab(scenario(hosts, guests)) as lab:
        if lab.fallbacks:
            raise OSError(f"QEMU cannot run here: {lab.fallback_line()}")
        lab_s = time.monotonic() - t0
        settle(lab)
        lab.set_delay(delay_ms)
        yield lab, lab_s


def _guest_pids(lab: Lab) -> list[int]:
    return [pid for h in lab.hosts.values() if isinstance(h.daemon, QemuDaemon)
            for pid in h.daemon.guest_pids().values()]


def settle(lab: Lab, timeout: float = 90.0) -> float:
    """Wait until the guests' firmware boot is over (each costs ~3 s of CPU once, which on two
    cores would otherwise be measured as vditui's): their CPU under a quarter of a core in
    all. Returns the seconds waited."""
    t0 = time.monotonic()
    pids, hz = _guest_pids(lab), os.sysconf("SC_CLK_TCK")
    while time.monotonic() - t0 < timeout:
        before = sum(_ticks(p) for p in pids)
        time.sleep(1.0)
        if (sum(_ticks(p) for p in pids) - before) / hz < 0.25:
            break
    return time.monotonic() - t0


def _ticks(pid: int) -> int:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return int(fields[11]) + int(fields[12])  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def lab_cost(lab: Lab, seconds: float) -> dict[str, Any]:
    """RSS now and CPU over ``seconds`` of the lab's libvirtds and QEMU guests, idle: after
    ``seconds`` of settling first (a guest's firmware boot costs ~3 s of CPU, once)."""
    time.sleep(seconds)
    daemons = [h.daemon.proc.pid for h in lab.hosts.values() if h.daemon.proc is not None]
    guests = _guest_pids(lab)
    hz = os.sysconf("SC_CLK_TCK")
    t0 = {p: _ticks(p) for p in daemons + guests}
    time.sleep(seconds)
    cpu = {p: (_ticks(p) - t) / hz / seconds * 100 for p, t in t0.items()}
    return {"hosts": len(daemons), "guests_running": len(guests), "seconds": seconds,
            "settled_s": seconds,
            "daemons_rss_mb": round(sum(_rss_mb(p) for p in daemons), 1),
            "guests_rss_mb": round(sum(_rss_mb(p) for p in guests), 1),
            "daemons_cpu_pct": round(sum(cpu[p] for p in daemons), 1),
            "guests_cpu_pct": round(sum(cpu[p] for p in guests), 1),
            "guest_rss_mb_each": round(sum(_rss_mb(p) for p in guests) / max(1, len(guests)), 1)}


def run(delay_ms: float, cold_size: tuple[int, int], reps: int, idle_s: float,
        tap: wire.RpcTap, log: Log) -> dict[str, Any]:
    out: dict[str, Any] = {"delay_ms": delay_ms, "running_per_host": RUNNING_PER_HOST,
                           "wire": []}
    for guests in WIRE_SIZES:
        with qemu_lab(1, guests, delay_ms) as (lab, lab_s):
            res = cold_once(lab, tap)
            w = res["wire_per_host"]
            out["wire"].append({"guests": guests, "lab_start_s": round(lab_s, 1),
                                "wire_total": w.get("total_max"), "wire_info": w.get("info_max"),
                                "api_calls": w.get("api_other_max"),
                                "procedures": res["wire_procedures"], "wall_s": res["wall_s"],
                                "complete": res["complete"]})
            log(f"qemu wire 1x{guests}: {w.get('total_max')} RPCs ({w.get('info_max')} info), "
                f"{res['wall_s']:.3f} s, lab up in {lab_s:.1f} s")
    hosts, guests = cold_size
    with qemu_lab(1, guests, delay_ms) as (lab, _s):
        alone = _median_run([cold_once(lab, tap) for _ in range(reps)])
    with qemu_lab(hosts, guests, delay_ms) as (lab, lab_s):
        many = _median_run([cold_once(lab, tap) for _ in range(reps)])
        out["cost"] = lab_cost(lab, idle_s)
    out["cold"] = {"hosts": hosts, "guests": guests, "lab_start_s": round(lab_s, 1),
                   "wall_s": many["wall_s"], "alone_s": alone["wall_s"],
                   "ratio": round(many["wall_s"] / alone["wall_s"], 2),
                   "complete": many["complete"] and alone["complete"],
                   "wire_per_host": many["wire_per_host"], "cpu_s": many["cpu_s"],
                   "rss_peak_mb": many["rss_peak_mb"]}
    c, k = out["cold"], out["cost"]
    log(f"qemu cold {hosts}x{guests}: {c['wall_s']:.3f} s vs 1x{guests} {c['alone_s']:.3f} s "
        f"({c['ratio']}x); lab: {k['hosts']} libvirtds {k['daemons_rss_mb']} MB "
        f"{k['daemons_cpu_pct']} % CPU, {k['guests_running']} guests {k['guests_rss_mb']} MB "
        f"{k['guests_cpu_pct']} % CPU")
    return out


def targets(q: dict[str, Any], add: Callable[..., None]) -> None:
    """The section's rows in the targets table."""
    totals = {w["guests"]: w["wire_total"] for w in q.get("wire", [])}
    if totals:
        add("qemu: wire RPCs per host the same at 10, 100, 500 guests, <= 10 with the open",
            ", ".join(f"{n} at {g}" for g, n in totals.items()) + " (real QEMU, bulk stats)",
            len(set(totals.values())) == 1 and max(totals.values()) <= 10)
    c = q.get("cold")
    if c:
        add(f"qemu: {c['hosts']}x{c['guests']} cold within 1.5x of 1x{c['guests']}",
            f"{c['wall_s']:.2f} s vs {c['alone_s']:.2f} s: {c['ratio']}x",
            c["ratio"] <= 1.5 and c["complete"])


def markdown(q: dict[str, Any]) -> list[str]:
    lines = ["", f"## qemu hosts (real QEMU/KVM guests; delay {q['delay_ms']} ms, "
             f"{q['running_per_host']} guests running per host)", "",
             "| guests on 1 host | wire RPCs | of them info() | API calls | wall s | complete |",
             "|---|---|---|---|---|---|"]
    for w in q.get("wire", []):
        lines.append(f"| {w['guests']} | {w['wire_total']} | {w['wire_info']} | "
                     f"{w['api_calls']} | {w['wall_s']} | {w['complete']} |")
    c, k = q.get("cold"), q.get("cost")
    if c:
        lines += ["", f"Cold {c['hosts']}x{c['guests']}: {c['wall_s']} s against 1x{c['guests']} "
                  f"{c['alone_s']} s ({c['ratio']}x); lab up in {c['lab_start_s']} s."]
    if k:
        lines += ["", f"The lab's hypervisors, idle over {k['seconds']} s (after "
                  f"{k.get('settled_s', 0)} s settling): {k['hosts']} libvirtds "
                  f"{k['daemons_rss_mb']} MB RSS, {k['daemons_cpu_pct']} % CPU; "
                  f"{k['guests_running']} running guests {k['guests_rss_mb']} MB RSS "
                  f"({k['guest_rss_mb_each']} MB each), {k['guests_cpu_pct']} % CPU (of one core)."]
    return lines
