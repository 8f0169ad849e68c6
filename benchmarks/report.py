"""Results: the targets' verdicts, the Markdown report, the JSON file, the README's summary."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent / "README.md"
#: READMEs whose summary table a full run replaces, where they have the markers.
READMES = (README, README.parent.parent / "README.md")
BEGIN, END = "<!-- bench-summary:begin -->", "<!-- bench-summary:end -->"
TARGET_SIZE = (50, 100)


def _cold(results: dict[str, Any], hosts: int, vms: int) -> dict[str, Any] | None:
    return next((c for c in results.get("cold", ())
                 if (c["hosts"], c["vms_per_host"]) == (hosts, vms)), None)


def _verdict(ok: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "n/a"}[ok]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with the measured value and met / MISSED / n/a."""
    rows: list[dict[str, Any]] = []
    quick = results["mode"] == "quick"
    big = _cold(results, *TARGET_SIZE) or (results.get("cold") or [None])[0]
    note = "" if big is None or (big["hosts"], big["vms_per_host"]) == TARGET_SIZE else \
        f" (measured at {big['hosts']}x{big['vms_per_host']}, not 50x100)"

    def add(name: str, value: str, ok: bool | None, extra: str = "") -> None:
        rows.append({"target": name, "value": value + extra, "verdict": _verdict(ok)})

    if big is not None:
        e = big["engine"]
        add("50x100 @ 20 ms complete in <= 2 s", f"{e['wall_s']:.2f} s", e["wall_s"] <= 2.0
            and e["complete"], note)
        if "speedup" in big:
            add(">= 10x faster than naive", f"{big['speedup']}x ({big['naive']['wall_s']:.1f} s "
                f"naive)", big["speedup"] >= 10, note)
    pts = results.get("scaling", {}).get("points", [])
    if pts:
        by_v: dict[int, int] = {}
        fixed: set[int] = set()
        api: set[int] = set()
        engine_fixed: set[int] = set()
        for p in pts:
            w = p.get("wire_per_host") or {}
            by_v[p["vms_per_host"]] = max(by_v.get(p["vms_per_host"], 0), w.get("total_max", 0))
            if w:
                fixed.add(w["other_max"])
                api.add(w.get("api_other_max", w["other_max"]))
            engine_fixed.add(p["trips_per_host"] - p["vms_per_host"])
        grows = len(set(by_v.values())) > 1
        add("libvirt round trips per host do not grow with VMs (test driver, no bulk stats; "
            "real QEMU: the qemu row)",
            ", ".join(f"{n} at V={v}" for v, n in sorted(by_v.items())) + " wire RPCs (test "
            "driver: one info() per VM on top of a fixed part)", not grows)
        worst = max((p for p in pts if p["vs_one_host"] is not None),
                    key=lambda p: p["vs_one_host"], default=None)
        if worst is not None:
            add("cost follows the slowest host, not the sum (within 2x of one host)",
                "; ".join(f"{p['hosts']}x{p['vms_per_host']}: {p['vs_one_host']}x "
                          f"(the sum: {p['hosts']}x)"
                          for p in pts if p["hosts"] == max(q["hosts"] for q in pts
                                                            if q["vms_per_host"]
                                                            == p["vms_per_host"]))
                + " the time of 1 host", worst["vs_one_host"] <= 2.0)
        slow = results.get("scaling", {}).get("slow_host")
        if slow:
            # One after another: the slow host, plus each other host's own time (1 host, same
            # size, at the normal delay, from the scaling points).
            fast = next((p["wall_s"] for p in pts if p["hosts"] == 1
                         and p["vms_per_host"] == slow["vms_per_host"]), None)
            serial = "" if fast is None else (
                f" (one after another: ~{slow['alone_s'] + (slow['hosts'] - 1) * fast:.0f} s)")
            add(f"one slow host sets the time: {slow['hosts']}x{slow['vms_per_host']}, one host "
                f"at {slow['slow_ms']:g} ms (within 1.25x of that host alone)",
                f"{slow['wall_s']:.2f} s vs {slow['alone_s']:.2f} s alone: {slow['ratio']}x"
                + serial,
                slow["ratio"] <= 1.25 and slow["complete"])
        if not results.get("qemu"):  # else measured on real QEMU: the qemu rows below
            add("<= 5 round trips per host with bulk stats (QEMU, projected: all but info())",
                f"{max(fixed, default=0)} wire RPCs, all sequential (an open alone is 5); "
                f"{max(api, default=0)} API calls; the engine's own count says "
                f"{max(engine_fixed, default=0)}", max(fixed, default=99) <= 5)
    live = results.get("live", {})
    tui, watch = live.get("tui"), live.get("watch")
    lnote = "" if not quick else f" (quick: {live.get('vms')} VMs)"
    for label, res in (("TUI", tui), ("watch --jsonl", watch)):
        if res:
            lat = res["latency"]
            add(f"{label} event-to-screen p99 <= 150 ms", f"p50 {lat['p50_ms']} ms, p99 "
                f"{lat['p99_ms']} ms at {res['rate_achieved']}/s", (lat["p99_ms"] or 1e9) <= 150,
                lnote)
            add(f"{label}: no event lost (final states = lab's)",
                f"{res['final']['wrong']} of {res['final']['vms']} differ",
                res["final"]["wrong"] == 0)
    if tui:
        add("TUI idle CPU <= 3 % at 5,000 VMs", f"{tui['idle']['cpu_pct']} %",
            tui["idle"]["cpu_pct"] <= 3.0, lnote)
        add("peak RSS <= 250 MB at 5,000 VMs (TUI process)", f"{tui['rss_peak_mb']} MB",
            tui["rss_peak_mb"] <= 250, lnote)
        k = tui["keys"]
        add("key press answered <= 100 ms during a full refresh", f"max {k['answer_ms_max']} ms "
            f"(p50 {k['answer_ms_p50']}, {k['presses']} presses)", k["answer_ms_max"] <= 100,
            lnote)
    if results.get("qemu"):
        from benchmarks.qemu import targets as qemu_targets

        qemu_targets(results["qemu"], add)
    from benchmarks.live import ratio_targets

    ratio_targets(results, add)
    if results.get("scale"):
        from benchmarks.scale import targets as scale_targets

        scale_targets(results["scale"], add)
    if results.get("monitor"):
        from benchmarks.monitor import targets as monitor_targets

        monitor_targets(results["monitor"], add)
    return rows


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join("" if c is None else str(c) for c in r) + " |" for r in rows]
    return out


def machine_line(m: dict[str, Any]) -> str:
    return (f"{m['cpu_model']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, Python "
            f"{m['python']}, {m['libvirtd']}, libvirt-python {m['libvirt_python']}, Textual "
            f"{m['textual']}; {m['date']}, commit {m['git_commit']}; load average "
            f"{m['load_average_at_start']} at start, {m.get('load_average_at_end')} at end")


def markdown(results: dict[str, Any]) -> str:
    """The full report."""
    m = results["machine"]
    lines = [f"# vditui benchmarks ({results['mode']} run)", "", f"Machine: {machine_line(m)}.",
             "", f"Run took {results['duration_s']:.0f} s. Lab: real libvirtd (test driver) per "
             f"host and the simulated platform, each behind the lab's latency proxy; measured "
             f"code in a separate process. {results.get('note', '')}", "", "## Targets", ""]
    lines += _table(["target", "measured", "verdict"],
                    [[t["target"], t["value"], t["verdict"]] for t in results["targets"]])
    lines += ["", "## 1. Cold inventory", ""]
    rows = []
    for c in results.get("cold", []):
        e, n = c["engine"], c.get("naive", {})
        rows.append([f"{c['hosts']}x{c['vms_per_host']}", c["delay_ms"],
                     f"{e['wall_s']:.3f} ({', '.join(str(w) for w in c['engine_walls_s'])})",
                     e["complete"], e["engine_trips_per_host"]["max"],
                     (e.get("wire_per_host") or {}).get("total_max"),
                     (e.get("wire_per_host") or {}).get("other_max"), e["vdi_requests"],
                     e["rss_peak_mb"], e["cpu_s"], n.get("wall_s"),
                     (n.get("wire_per_host") or {}).get("total_max"), n.get("vdi_requests"),
                     c.get("speedup")])
    lines += _table(["size", "delay ms", "engine s (runs)", "complete", "engine trips/host",
                     "wire RPCs/host", "of which not info()", "VDI requests", "peak RSS MB",
                     "CPU s", "naive s", "naive RPCs/host", "naive VDI requests", "speedup"],
                    rows)
    for c in results.get("cold", []):
        lines += ["", f"Wire RPCs by procedure, {c['hosts']}x{c['vms_per_host']} engine: "
                  f"`{c['engine'].get('wire_procedures')}`"]
    sc = results.get("scaling")
    if sc:
        lines += ["", f"## 2. Scaling (delay {sc['delay_ms']} ms, median of {sc['median_of']})",
                  ""]
        lines += _table(["hosts", "VMs/host", "wall s", "vs 1 host", "platform s",
                         "last host s", "wire RPCs/host", "VDI requests", "CPU s",
                         "peak RSS MB", "complete"],
                        [[p["hosts"], p["vms_per_host"], p["wall_s"], p["vs_one_host"],
                          p["vdi_s"], p["last_host_s"],
                          (p.get("wire_per_host") or {}).get("total_max"), p["vdi_requests"],
                          p["cpu_s"], p["rss_peak_mb"], p["complete"]] for p in sc["points"]])
        slow = sc.get("slow_host")
        if slow:
            lines += ["", f"One slow host: {slow['hosts']}x{slow['vms_per_host']} with one host at "
                      f"{slow['slow_ms']:g} ms added (the rest and the platform at "
                      f"{slow['delay_ms']:g} ms): {slow['wall_s']} s; that host alone: "
                      f"{slow['alone_s']} s ({slow['ratio']}x)."]
        if sc["skipped"]:
            lines += ["", "Skipped (more than {} VMs in all; run with `--all`): {}".format(
                sc["limit_vms"], ", ".join(f"{h}x{v}" for h, v in sc["skipped"]))]
    tb = results.get("table")
    if tb:
        lines += ["", f"## 4. Table rebuild ({tb['rows']} made-up rows, drift only on and off, "
                  f"{tb['reps']}x each)", "",
                  f"From `show()` to the next frame: median {tb['vditui']['ms_median']} ms, max "
                  f"{tb['vditui']['ms_max']} ms; with DataTable's own per-cell measuring put "
                  f"back, in the same process: median {tb['measuring']['ms_median']} ms, max "
                  f"{tb['measuring']['ms_max']} ms ({tb['ratio']}x)."]
    live = results.get("live")
    if live:
        lines += ["", f"## 3. Live ({live['hosts']}x{live['vms_per_host']} = {live['vms']} VMs, "
                  f"delay {live['delay_ms']} ms, storm {live['rate']}/s for {live['seconds']} s)",
                  ""]
        rows = []
        for label in ("tui", "watch"):
            r = live.get(label)
            if r:
                lat = r["latency"]
                rows.append([label, r["rate_achieved"], lat["changes"], lat["p50_ms"],
                             lat["p99_ms"], lat["max_ms"],
                             f"{lat['superseded']} + {lat['silent']}", lat["unmatched"],
                             r["final"]["wrong"], r["storm_cpu_pct"], r["rss_peak_mb"]])
        lines += _table(["face", "changes/s", "changes", "p50 ms", "p99 ms", "max ms",
                         "coalesced (+ silent)", "never shown", "final states wrong",
                         "CPU % (storm)", "peak RSS MB"], rows)
        tui = live.get("tui")
        if tui:
            k, idle = tui["keys"], tui["idle"]
            lines += ["", f"TUI: full table of {live['vms']} VMs {tui['load_s']} s after start; "
                      f"RSS {tui['rss_loaded_mb']} MB loaded, {tui['rss_peak_mb']} MB peak. "
                      f"Idle over {idle['seconds']} s: {idle['cpu_pct']} % of a core "
                      f"({idle['flushes']} flushes). Key presses during {k['refreshes']} full "
                      f"refreshes (each {k['refresh_s']} s from the key to the flush): "
                      f"{k['presses']} presses, answered (handled and drawn) p50 "
                      f"{k['answer_ms_p50']} ms, p99 {k['answer_ms_p99']} ms, "
                      f"max {k['answer_ms_max']} ms."]
        if tui and "load_timings" in tui:
            for label, key in (("Loading the 5,000" if live["vms"] == 5000 else "Loading",
                                "load_timings"), ("Full refreshes with key presses",
                                                  "keys_timings")):
                tm = tui[key]
                lines += ["", f"{label}: {tm['seconds']} s at {tm['cpu_pct']} % CPU; "
                          f"{tm['reconciles']} reconciles (p50 {tm['reconcile_ms_p50']} ms, "
                          f"max {tm['reconcile_ms_max']} ms), {tm['flushes']} flushes (p50 "
                          f"{tm['flush_ms_p50']} ms, max {tm['flush_ms_max']} ms), "
                          f"{tm['frames']} frames (p50 {tm['frame_ms_p50']} ms, p99 "
                          f"{tm['frame_ms_p99']} ms); event loop late by p99 "
                          f"{tm['loop_lag_ms_p99']} ms, max {tm['loop_lag_ms_max']} ms; GC "
                          f"{tm['gc_ms_total']} ms in all, longest {tm['gc2_ms_max']} ms."]
        if tui and "segments" in tui:
            seg, tm = tui["segments"], tui["storm_timings"]
            ev, cell, lat = seg["to_engine_event"], seg["to_cell_update"], tui["latency"]
            lines += ["", "Where the TUI's time goes during the storm: change to engine event "
                      f"p50 {ev['p50_ms']} / p99 {ev['p99_ms']} ms, to state cell set p50 "
                      f"{cell['p50_ms']} / p99 {cell['p99_ms']} ms, to frame p50 "
                      f"{lat['p50_ms']} / p99 {lat['p99_ms']} ms. {tm['reconciles']} reconciles "
                      f"(p50 {tm['reconcile_ms_p50']} ms, max {tm['reconcile_ms_max']} ms), "
                      f"{tm['flushes']} flushes (p50 {tm['flush_ms_p50']} ms, max "
                      f"{tm['flush_ms_max']} ms, p50 gap {tm['flush_gap_ms_p50']} ms), "
                      f"{tm['frames']} frames (p50 {tm['frame_ms_p50']} ms, p99 "
                      f"{tm['frame_ms_p99']} ms); event loop late by p99 {tm['loop_lag_ms_p99']}"
                      f" ms, max {tm['loop_lag_ms_max']} ms; GC {tm['gc_ms_total']} ms in all "
                      f"({tm['gc2_count']} full collections, longest {tm['gc2_ms_max']} ms). "
                      f"Lab process CPU during the storm: {tui['lab_cpu_pct']} %."]
    if results.get("qemu"):
        from benchmarks.qemu import markdown as qemu_markdown

        lines += qemu_markdown(results["qemu"])
    from benchmarks.live import scale_markdown as live_scale_markdown

    lines += live_scale_markdown(results)
    if results.get("scale"):
        from benchmarks.scale import markdown as scale_markdown

        lines += scale_markdown(results["scale"])
    if results.get("monitor"):
        from benchmarks.monitor import markdown as monitor_markdown

        lines += monitor_markdown(results["monitor"])
    if results.get("errors"):
        lines += ["", "## Errors", ""] + [f"- {e}" for e in results["errors"]]
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write(results: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    _write(js, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    _write(md, markdown(results))
    return md, js


def update_readme(results: dict[str, Any], paths: tuple[Path, ...] = READMES) -> list[Path]:
    """Replace the summary table between the markers in each README that has them; returns
    the files updated."""
    body = [BEGIN, "", f"Last full run: {machine_line(results['machine'])}."
            + (f" {results['note']}" if results.get("note") else ""), ""]
    body += _table(["target", "measured", "verdict"],
                   [[t["target"], t["value"], t["verdict"]] for t in results["targets"]])
    body += ["", END]
    done = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        # The markers count only on lines of their own: prose that quotes them is left alone.
        block = re.compile(f"^{re.escape(BEGIN)}$.*?^{re.escape(END)}$", re.S | re.M)
        if not block.search(text):
            continue
        new = block.sub(lambda _m: "\n".join(body), text, count=1)
        _write(path, new)
        done.append(path)
    return done
