"""Live benchmarks, parent side: a storm of state changes through the lab, timed per change, and
the matching of each change with the moment a worker showed it (TUI frame or JSON line).

Both processes stamp with ``time.monotonic()`` (CLOCK_MONOTONIC, one clock for the machine), so
a change made here and a line written there compare directly.
"""

from __future__ import annotations

import bisect
import collections
import time
from typing import Any

from benchmarks.common import Worker, ms, percentile
from vditui.lab.chaos import Chaos
from vditui.lab.lab import Lab


class TimedChaos(Chaos):
    """The lab's chaos, keeping (time before the change, VM, new state) for every change made.
    The time is taken before the libvirt call, so latencies are upper bounds (by < 1 ms)."""

    def __init__(self, lab: Lab, rate: float, lag: float, seed: int | None = None) -> None:
        super().__init__(lab, rate=rate, lag=lag, seed=seed)
        self.log: list[tuple[float, str, str]] = []
        self.initial: dict[str, str] | None = None
        self.lab_cpu_pct = 0.0  # the lab process's CPU (proxies, chaos) during the storm

    def step(self) -> tuple[str, str] | None:
        if self.initial is None:
            self.initial = dict(self.states)  # start() read every VM before the first step
        t0 = time.monotonic()
        done = super().step()
        if done is not None:
            self.log.append((t0, done[0], done[1]))
        return done


def storm(lab: Lab, rate: float, seconds: float, lag: float, seed: int = 7) -> TimedChaos:
    """Change VM states at ``rate`` per second, spread over every host, for ``seconds``."""
    chaos = TimedChaos(lab, rate=rate, lag=lag, seed=seed)
    chaos.start()
    time.sleep(seconds)
    chaos.stop()
    return chaos


def match(changes: list[tuple[float, str, str]], records: list[list[Any]],
          initial: dict[str, str]) -> dict[str, Any]:
    """Latency of each change: the time from it until the VM's shown state equals its true
    state again. ``records`` are (time, VM, state shown from then on).

    Resolved by a record showing the change's own state: ``direct``; by a record showing a later
    change's state (coalesced into a newer frame, fine for a screen): ``superseded``; by a later
    change that put back the state still shown (it never needed drawing): ``silent``, left out
    of the percentiles. Never resolved: ``unmatched`` (lost, unless the final check agrees)."""
    shown_at: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
    for t, key, state in records:
        shown_at[key].append((t, state))
    made: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
    for t, key, state in changes:
        made[key].append((t, state))
    latencies: list[float] = []
    kinds: collections.Counter[str] = collections.Counter()
    for key, chs in made.items():
        obs = sorted(shown_at.get(key, ()))
        times = [o[0] for o in obs]
        for i, (t, state) in enumerate(chs):
            k = bisect.bisect_left(times, t)
            display = obs[k - 1][1] if k else initial.get(key)
            steps = sorted([(to, 0, so) for to, so in obs[k:]]
                           + [(tc, 1, sc) for tc, sc in chs[i + 1:]])
            truth, kind = state, "unmatched"
            for when, is_change, value in [(t, 1, state), *steps]:
                if is_change:
                    truth = value
                else:
                    display = value
                if display == truth:
                    kind = "silent" if is_change else ("direct" if truth == state
                                                       else "superseded")
                    if kind != "silent":
                        latencies.append(when - t)
                    break
            kinds[kind] += 1
    return {"changes": len(changes), "matched": len(latencies), "direct": kinds["direct"],
            "superseded": kinds["superseded"], "silent": kinds["silent"],
            "unmatched": kinds["unmatched"], "p50_ms": ms(percentile(latencies, 50)),
            "p99_ms": ms(percentile(latencies, 99)), "max_ms": ms(max(latencies, default=0.0))}


def final_check(truth: dict[str, str], shown: dict[str, str]) -> dict[str, Any]:
    """Compare the states a worker ended with to the lab's."""
    wrong = sorted(k for k in truth if shown.get(k) != truth[k])
    return {"vms": len(truth), "wrong": len(wrong), "examples": [
        {"vm": k, "lab": truth[k], "shown": shown.get(k)} for k in wrong[:5]]}


def _storm_against(worker: Worker, lab: Lab, opts: dict[str, Any]) -> tuple[TimedChaos, float]:
    worker.expect("ready", opts["settle_timeout"])
    t0, cpu0 = time.monotonic(), time.process_time()
    chaos = storm(lab, opts["rate"], opts["seconds"], opts["lag"])
    wall = time.monotonic() - t0
    chaos.lab_cpu_pct = round(100 * (time.process_time() - cpu0) / wall, 1)
    worker.send("finish")
    return chaos, wall


def run_watch(lab: Lab, cfg: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    """``watch --jsonl`` under the storm: latency from change to JSON line, and no loss."""
    w = Worker("watch", cfg)
    try:
        chaos, wall = _storm_against(w, lab, opts)
        res = w.expect("result", 60)
    finally:
        w.close()
    assert chaos.initial is not None
    final = dict(chaos.initial)
    for _t, key, state in res["records"]:
        final[key] = state
    return {"ready_s": res["ready_s"], "storm_s": round(wall, 2),
            "rate_achieved": round(len(chaos.log) / wall, 1), "lines": len(res["records"]),
            "latency": match(chaos.log, res["records"], chaos.initial),
            "final": final_check(chaos.states, final),
            "storm_cpu_pct": res["storm_cpu_pct"], "lab_cpu_pct": chaos.lab_cpu_pct,
            "rss_peak_mb": res["rss_peak_mb"]}


def run_tui(lab: Lab, cfg: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    """The TUI: load, idle CPU, keys during refresh (in the worker), then the storm."""
    w = Worker("tui", cfg)
    try:
        chaos, wall = _storm_against(w, lab, opts)
        res = w.expect("result", 90)
    finally:
        w.close()
    records = res.pop("records")
    final = res.pop("final")
    initial = chaos.initial or {}
    # Where the time goes: change -> engine event on the loop -> state cell set -> frame.
    res["segments"] = {
        "to_engine_event": match(chaos.log, res.pop("events"), initial),
        "to_cell_update": match(chaos.log, res.pop("cells"), initial)}
    res.update(storm_s=round(wall, 2), rate_achieved=round(len(chaos.log) / wall, 1),
               lab_cpu_pct=chaos.lab_cpu_pct,
               latency=match(chaos.log, records, chaos.initial or {}),
               final=final_check(chaos.states, final))
    return res


def ratio_targets(results: dict[str, Any], add: Any) -> None:
    """The live targets as ratios measured in one run: the TUI's p99 against ``watch``'s under
    the same storm; key presses during the storm; at the larger size, idle CPU and RSS growth."""
    for key in ("live", "tuiscale"):
        live = results.get(key) or {}
        tui, watch = live.get("tui"), live.get("watch")
        if not tui:
            continue
        n, rate = live["vms"], live["rate"]
        t99 = tui["latency"]["p99_ms"]
        if watch and t99 and watch["latency"]["p99_ms"]:
            r = round(t99 / watch["latency"]["p99_ms"], 1)
            add(f"TUI event-to-screen p99 within 2x of watch --jsonl's, same storm "
                f"({n:,} VMs, {rate:g}/s)", f"{t99} ms / {watch['latency']['p99_ms']} ms = {r}x",
                r <= 2.0)
        k = tui.get("storm_keys")
        if k:
            add(f"key press answered <= 100 ms p99 during the storm ({n:,} VMs, {rate:g}/s)",
                f"p99 {k['answer_ms_p99']} ms, max {k['answer_ms_max']} ms ({k['presses']} "
                "presses)", (k["answer_ms_p99"] or 1e9) <= 100)
        if key == "tuiscale":
            add(f"TUI idle CPU <= 1 % at {n:,} VMs", f"{tui['idle']['cpu_pct']} %",
                tui["idle"]["cpu_pct"] <= 1.0)
            growth = round((tui["rss_peak_mb"] - tui["rss_base_mb"]) * 1000 / n, 1)
            small, between = (results.get("live") or {}).get("tui"), ""
            if small and n > results["live"]["vms"]:
                n0 = results["live"]["vms"]
                per = round((tui["rss_peak_mb"] - small["rss_peak_mb"]) * 1000 / (n - n0), 1)
                between = f"; between {n0:,} and {n:,} VMs, same run: {per} MB per 1,000 VMs"
            add(f"TUI peak RSS growth per 1,000 VMs (stated; at {n:,} VMs)",
                f"{growth} MB per 1,000 VMs ({tui['rss_base_mb']} -> {tui['rss_peak_mb']} MB)"
                + between, None)


def scale_markdown(results: dict[str, Any]) -> list[str]:
    """The ``tuiscale`` section: the live run at the larger size, side by side."""
    live = results.get("tuiscale")
    if not live:
        return []
    lines = ["", f"## Live at scale ({live['hosts']}x{live['vms_per_host']} = {live['vms']} VMs, "
             f"storm {live['rate']}/s for {live['seconds']} s, TUI then watch)", "",
             "| face | changes/s | p50 ms | p99 ms | max ms | final states wrong | CPU % (storm) "
             "| peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
    for label in ("tui", "watch"):
        r = live.get(label)
        if r:
            lat = r["latency"]
            lines.append(f"| {label} | {r['rate_achieved']} | {lat['p50_ms']} | {lat['p99_ms']} | "
                         f"{lat['max_ms']} | {r['final']['wrong']} | {r['storm_cpu_pct']} | "
                         f"{r['rss_peak_mb']} |")
    tui = live.get("tui")
    if tui:
        k, sk = tui["keys"], tui.get("storm_keys", {})
        lines += ["", f"TUI: loaded in {tui['load_s']} s, idle {tui['idle']['cpu_pct']} % of a "
                  f"core; keys during a full refresh p99 {k['answer_ms_p99']} ms; during the storm "
                  f"p99 {sk.get('answer_ms_p99')} ms, max {sk.get('answer_ms_max')} ms."]
    return lines
