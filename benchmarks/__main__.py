"""``python -m benchmarks [--quick] [--all] [--only SECTIONS]``: run the benchmarks, write
``benchmarks/results/latest.{md,json}`` (``quick.{md,json}`` with ``--quick``) and, after a full
run, the summary table in ``benchmarks/README.md``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import cold, live, monitor, qemu, report, scale, wire
from benchmarks.common import WorkerError, load_average, machine, run_worker
from vditui.lab.daemon import LabError

RESULTS = Path(__file__).resolve().parent / "results"

PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "cold_sizes": [(50, 100), (1, 4)], "reps": 3,
        "scale_hosts": [1, 10, 50, 100], "scale_vms": [10, 100, 500], "scale_reps": 1,
        "live_size": (50, 100), "storm_s": 20.0, "idle_s": 30.0, "refreshes": 3,
        "slow_size": (50, 100), "slow_ms": 200.0, "table_rows": 10_000, "table_reps": 3,
        "qemu_cold": (8, 50), "qemu_reps": 3, "qemu_idle_s": 10.0,
        "fleet_hosts": [1, 100, 1000], "fleet_vms": 20, "fleet_reps": 1,
        "scrape_fleet": (1000, 20), "scrapes": 5, "history_vms": 20_000, "history_per_vm": 52,
        "tui_scale_size": (100, 200), "tui_scale_rate": 500.0,
    },
    "quick": {
        "cold_sizes": [(10, 20), (1, 4)], "reps": 2,
        "scale_hosts": [1, 5], "scale_vms": [10, 50], "scale_reps": 1,
        "live_size": (10, 50), "storm_s": 4.0, "idle_s": 3.0, "refreshes": 1,
        "slow_size": (5, 20), "slow_ms": 100.0, "table_rows": 2_000, "table_reps": 1,
        "qemu_cold": (3, 20), "qemu_reps": 1, "qemu_idle_s": 3.0,
        "fleet_hosts": [1, 10, 50], "fleet_vms": 20, "fleet_reps": 1,
        "scrape_fleet": (50, 20), "scrapes": 3, "history_vms": 2_000, "history_per_vm": 5,
        "tui_scale_size": (10, 100), "tui_scale_rate": 200.0,
    },
}
SECTIONS = ("cold", "scaling", "live", "table", "qemu", "scale", "monitor", "tuiscale")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    p.add_argument("--all", action="store_true",
                   help="include scaling sizes over --limit VMs (100x500 is 100 libvirtds)")
    p.add_argument("--limit", type=int, default=20_000,
                   help="skip scaling sizes with more VMs in all (default 20000)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    p.add_argument("--delay", type=float, default=20.0,
                   help="added round-trip delay in ms on every host and the platform")
    p.add_argument("--rate", type=float, default=200.0, help="storm: state changes per second")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    p.add_argument("--no-readme", action="store_true",
                   help="do not update the summary tables (benchmarks/README.md, and README.md "
                        "if it has the bench-summary markers)")
    p.add_argument("--note", default="",
                   help="a remark stored with the results (e.g. what else loaded the machine)")
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="measure nothing: re-render the Markdown (and, for a full run, the "
                        "README summary) from a results JSON file")
    args = p.parse_args(argv)
    bad = set(args.only.split(",")) - set(SECTIONS)
    if bad:
        p.error(f"unknown section(s) {sorted(bad)}; use {','.join(SECTIONS)}")
    return args


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run_live(prof: dict[str, Any], args: argparse.Namespace, size: tuple[int, int] | None = None,
             rate: float | None = None) -> dict[str, Any]:
    """The TUI, then ``watch --jsonl``, each under the same storm (rate, length, seed) over the
    same lab: ``live_size`` at ``--rate``, unless given."""
    hosts, vms = size or prof["live_size"]
    rate = rate or args.rate
    opts = {"rate": rate, "seconds": prof["storm_s"], "lag": 1.0,
            "settle_timeout": 120.0 + hosts * vms / 100 + prof["idle_s"]
            + 60.0 * prof["refreshes"]}
    out: dict[str, Any] = {"hosts": hosts, "vms_per_host": vms, "vms": hosts * vms,
                           "delay_ms": args.delay, "rate": rate, "seconds": prof["storm_s"]}
    with cold.lab_up(hosts, vms, args.delay) as (lab, lab_s):
        log(f"live {hosts}x{vms}: lab up in {lab_s:.1f} s; TUI (load, idle "
            f"{prof['idle_s']:.0f} s, keys during {prof['refreshes']} refreshes, storm)")
        cfg = cold.worker_config(lab, idle_s=prof["idle_s"], refreshes=prof["refreshes"])
        out["tui"] = live.run_tui(lab, cfg, opts)
        t = out["tui"]
        log(f"  TUI: p99 {t['latency']['p99_ms']} ms, idle {t['idle']['cpu_pct']} %, keys max "
            f"{t['keys']['answer_ms_max']} ms (during the storm p99 "
            f"{t['storm_keys']['answer_ms_p99']} ms), peak RSS {t['rss_peak_mb']} MB")
        out["watch"] = live.run_watch(lab, cold.worker_config(lab), opts)
        w = out["watch"]
        log(f"  watch: p99 {w['latency']['p99_ms']} ms, {w['final']['wrong']} final states "
            "wrong")
    return out


def render_only(args: argparse.Namespace) -> int:
    """Targets, Markdown and README summary again from a JSON file (after a report change)."""
    import json

    results = json.loads(args.render.read_text(encoding="utf-8"))
    if args.note:
        results["note"] = args.note
    results["targets"] = report.targets(results)
    stem = args.render.stem
    md, js = report.write(results, args.render.parent, stem)
    log(f"re-rendered {md} and {js}")
    if results["mode"] == "full" and not args.no_readme:
        for path in report.update_readme(results):
            log(f"updated the summary in {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    if args.render is not None:
        return render_only(args)
    mode = "quick" if args.quick else "full"
    prof = PROFILES[mode]
    sections = set(args.only.split(","))
    t_start = time.monotonic()
    results: dict[str, Any] = {"mode": mode, "machine": machine(), "sections": sorted(sections),
                               "note": args.note, "notes": []}
    log(f"{mode} run; machine: {results['machine']['cpu_model']}, "
        f"{results['machine']['cores']} cores, load {results['machine']['load_average_at_start']}")
    tap = wire.RpcTap().install()
    if not tap.available:
        results["notes"].append("wire RPC counts unavailable (the lab's proxy changed)")
    reuse: dict[tuple[int, int], dict[str, Any]] = {}

    def section(name: str, fn: Callable[[], None]) -> None:
        """Run one section; a failure is recorded in the results, and the run goes on."""
        if name not in sections:
            return
        try:
            fn()
        except (WorkerError, LabError, TimeoutError, OSError) as exc:
            log(f"{name}: FAILED: {exc}")
            results.setdefault("errors", []).append(f"{name}: {type(exc).__name__}: {exc}")

    def run_cold() -> None:
        results["cold"] = []
        for hosts, vms in prof["cold_sizes"]:
            case = cold.cold_case(hosts, vms, args.delay, prof["reps"], True, tap, log)
            results["cold"].append(case)
            reuse[(hosts, vms)] = case["engine"]

    def run_scaling() -> None:
        results["scaling"] = cold.scaling(prof["scale_hosts"], prof["scale_vms"], args.delay,
                                          None if args.all else args.limit,
                                          prof["scale_reps"], tap, log, reuse)
        hosts, vms = prof["slow_size"]
        results["scaling"]["slow_host"] = cold.slow_host(hosts, vms, args.delay,
                                                         prof["slow_ms"], prof["scale_reps"],
                                                         tap, log)
        if results["scaling"]["skipped"]:
            log(f"scaling: skipped {results['scaling']['skipped']} (over {args.limit} VMs; "
                "--all includes them)")

    def run_live_section() -> None:
        results["live"] = run_live(prof, args)

    def run_table() -> None:
        cfg = {"rows": prof["table_rows"], "reps": prof["table_reps"]}
        t = results["table"] = run_worker("table", cfg, 300)
        log(f"table: drift only on/off over {t['rows']} rows: {t['vditui']['ms_median']} ms "
            f"(DataTable's measuring: {t['measuring']['ms_median']} ms, {t['ratio']}x)")

    def run_qemu() -> None:
        results["qemu"] = qemu.run(args.delay, prof["qemu_cold"], prof["qemu_reps"],
                                   prof["qemu_idle_s"], tap, log)

    def run_scale() -> None:
        results["scale"] = scale.scale(prof["fleet_hosts"], prof["fleet_vms"], args.delay,
                                       prof["fleet_reps"], tap, log)

    def run_tuiscale() -> None:
        results["tuiscale"] = run_live(prof, args, prof["tui_scale_size"],
                                       prof["tui_scale_rate"])

    def run_monitor() -> None:
        results["monitor"] = monitor.run(prof["scrape_fleet"], prof["scrapes"],
                                         prof["history_vms"], prof["history_per_vm"], args.delay,
                                         log)

    try:
        section("cold", run_cold)
        section("scaling", run_scaling)
        section("live", run_live_section)
        section("table", run_table)
        section("qemu", run_qemu)
        section("scale", run_scale)
        section("monitor", run_monitor)
        section("tuiscale", run_tuiscale)
    finally:
        tap.uninstall()
    results["machine"]["load_average_at_end"] = load_average()
    results["duration_s"] = round(time.monotonic() - t_start, 1)
    results["notes"] += [
        "libvirt's test driver has no bulk vCPU/memory stats: getAllDomainStats gives state "
        "only, so the engine adds one info() per domain (concurrently); that is the part of "
        "the round trips that grows with VMs. The fixed part, what a QEMU host (bulk stats) "
        "would cost whatever its VM count, is on the wire: open (5 RPCs: auth_list, "
        "connect_open, 3x connect_supports_feature), connect_register_close_callback, "
        "connect_domain_event_callback_register_any, connect_get_lib_version, "
        "connect_get_hostname, connect_get_all_domain_stats: 10 RPCs, 6 API calls. The "
        "engine's own counter (HostSession.last_read_trips) counts open + subscribe + identify "
        "as 3, so it reports 4 + VMs.",
        "Latency timestamps: the change is stamped before the lab's libvirt call; the TUI is "
        "stamped at the first composited frame after the state cell changed; watch at the "
        "write of its JSON line. Both processes use CLOCK_MONOTONIC.",
        "The lab (proxies, simulated platform, storm) runs in the parent process and shares "
        "the machine's cores with the measured process; its CPU during storms is reported.",
    ]
    results["targets"] = report.targets(results)
    stem = "quick" if args.quick else "latest"
    md, js = report.write(results, args.out, stem)
    log(f"wrote {md} and {js} in {results['duration_s']:.0f} s")
    if not args.quick and not args.no_readme and sections == set(SECTIONS):
        for path in report.update_readme(results):
            log(f"updated the summary in {path}")
    print(report.markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
