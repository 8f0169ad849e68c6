"""The TUI under measurement, through Textual's Pilot (worker side, mode ``tui``).

Hooks, on this app instance only: ``App._display`` (called with each composited frame, in
headless mode too: the moment a change reaches the screen), the VM table's ``update_cell`` and
``_rebuild`` (the moment a state cell changes) and its cursor actions (the moment a key press is
handled). Phases, in order: load (cold start to a full table), idle CPU, key presses during full
refreshes, then a state storm driven by the parent.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import ms, peak_rss_mb, percentile, rss_mb, say
from benchmarks.worker import engine_settings, stdin_line, wait_quiet
from vditui.lab.waiting import eventually
from vditui.ui.view import COLUMN_INDEX

SIZE = (160, 48)
VIRT_COLUMN = COLUMN_INDEX["virt"]


def state_of(cell: Any) -> str:
    """The libvirt state a cell shows, without drift or staleness markers."""
    text = getattr(cell, "plain", cell)
    return str(text).split(" ")[0].rstrip("*")


class Probe:
    """Timestamps of frames, state-cell changes and handled key presses."""

    def __init__(self) -> None:
        self.paints: list[float] = []
        self.cells: list[tuple[float, str, str]] = []
        self.actions: list[float] = []

    def attach_app(self, app: Any) -> None:
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            if renderable is not None and not app._batch_count:
                self.paints.append(time.monotonic())
            original(screen, renderable)

        app._display = display

    def attach_table(self, table: Any) -> None:
        update_cell, rebuild = table.update_cell, table._rebuild

        def on_update(row_key: Any, column_key: Any, value: Any, *a: Any, **kw: Any) -> Any:
            if str(column_key) == "virt":
                self.cells.append((time.monotonic(), str(row_key), state_of(value)))
            return update_cell(row_key, column_key, value, *a, **kw)

        def on_rebuild(wanted: dict[str, Any], **kw: Any) -> None:
            rebuild(wanted, **kw)
            now = time.monotonic()
            self.cells.extend((now, key, state_of(cells[VIRT_COLUMN]))
                              for key, cells in wanted.items())

        table.update_cell, table._rebuild = on_update, on_rebuild
        if hasattr(table, "_set_cells"):  # the table's batched, cache-friendly cell updates
            set_cells = table._set_cells

            def on_set_cells(updates: list[tuple[str, str, Any]]) -> None:
                set_cells(updates)
                now = time.monotonic()
                self.cells.extend((now, str(key), state_of(value))
                                  for key, col, value in updates if col == "virt")

            table._set_cells = on_set_cells
        for name in ("action_cursor_down", "action_cursor_up"):
            action = getattr(table, name)

            def handled(*a: Any, _action: Callable[..., Any] = action, **kw: Any) -> Any:
                self.actions.append(time.monotonic())
                return _action(*a, **kw)

            setattr(table, name, handled)

    def attach_timers(self, app: Any) -> None:
        """Time each flush (engine updates applied to the widgets), each reconcile and each frame
        (the screen's compositor refresh)."""
        self.flush_s: list[float] = []
        self.reconcile_s: list[float] = []
        self.flush_at: list[float] = []
        owner = _flusher(app)
        flush, engine = owner.flush, app.engine
        reconcile = engine.reconcile_now

        def timed_flush() -> None:
            t = time.perf_counter()
            n = owner.flushes
            flush()
            if owner.flushes != n:
                self.flush_s.append(time.perf_counter() - t)
                self.flush_at.append(time.monotonic())

        def timed_reconcile() -> Any:
            t = time.perf_counter()
            try:
                return reconcile()
            finally:
                self.reconcile_s.append(time.perf_counter() - t)

        owner.flush, engine.reconcile_now = timed_flush, timed_reconcile
        self.frame_s: list[float] = []
        screen = app.screen
        refresh = screen._compositor_refresh

        def timed_refresh() -> Any:
            t = time.perf_counter()
            try:
                return refresh()
            finally:
                self.frame_s.append(time.perf_counter() - t)

        screen._compositor_refresh = timed_refresh
        self.events: list[tuple[float, str, str]] = []

        def on_update(u: Any) -> None:
            ev = getattr(u, "event", None)  # a DomainChanged event
            if ev is not None and ev.new is not None:
                self.events.append((time.monotonic(), ev.uuid, ev.new.state.value))

        engine.listen(on_update)

    def timings(self) -> dict[str, Any]:
        """Flush, reconcile and frame costs since the last call (which clears them)."""
        gaps = [b - a for a, b in zip(self.flush_at, self.flush_at[1:], strict=False)]
        out = {"flushes": len(self.flush_s), "flush_ms_p50": ms(percentile(self.flush_s, 50)),
               "flush_ms_max": ms(max(self.flush_s, default=0.0)),
               "flush_gap_ms_p50": ms(percentile(gaps, 50)),
               "reconciles": len(self.reconcile_s),
               "reconcile_ms_p50": ms(percentile(self.reconcile_s, 50)),
               "reconcile_ms_max": ms(max(self.reconcile_s, default=0.0)),
               "frames": len(self.frame_s), "frame_ms_p50": ms(percentile(self.frame_s, 50)),
               "frame_ms_p99": ms(percentile(self.frame_s, 99))}
        for samples in (self.flush_s, self.flush_at, self.reconcile_s, self.frame_s):
            samples.clear()
        return out

    def paint_after(self, t: float) -> float | None:
        i = bisect.bisect_left(self.paints, t)
        return self.paints[i] if i < len(self.paints) else None


class _GcPauses:
    """Python's cyclic garbage collector: how long each collection stopped the process (wall
    time), and how much of that the collecting thread ran (CPU time: the rest is the machine
    running something else, the lab's daemons for one, while the GIL stays held)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.cpu: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._t = self._c = 0.0

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t, self._c = time.perf_counter(), time.thread_time()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._t)
            self.cpu[info["generation"]].append(time.thread_time() - self._c)

    def start(self) -> _GcPauses:
        gc.callbacks.append(self._cb)
        return self

    def stop(self) -> dict[str, Any]:
        gc.callbacks.remove(self._cb)
        out: dict[str, Any] = {}
        for gen, p in self.pauses.items():
            out[f"gc{gen}_count"] = len(p)
            out[f"gc{gen}_ms_max"] = ms(max(p, default=0.0))
            out[f"gc{gen}_cpu_ms_max"] = ms(max(self.cpu[gen], default=0.0))
        out["gc_ms_total"] = ms(sum(sum(p) for p in self.pauses.values()))
        return out


class _LoopLag:
    """How late a 10 ms sleep wakes up: how long the event loop was busy at a stretch."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> _LoopLag:
        async def run() -> None:
            while True:
                t = time.monotonic()
                await asyncio.sleep(0.01)
                self.lags.append(time.monotonic() - t - 0.01)

        self._task = asyncio.create_task(run())
        return self

    def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
        return {"loop_lag_ms_p50": ms(percentile(self.lags, 50)),
                "loop_lag_ms_p99": ms(percentile(self.lags, 99)),
                "loop_lag_ms_max": ms(max(self.lags, default=0.0))}


async def _until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    await eventually(cond, timeout, f"tui: {what}", every=0.02)


async def _idle(app: Any, seconds: float) -> dict[str, Any]:
    """CPU share of one core while nothing changes (timers, keepalives, periodic refresh)."""
    flushes, cpu0, w0 = _flusher(app).flushes, time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - w0
    return {"seconds": round(wall, 1),
            "cpu_pct": round(100 * (time.process_time() - cpu0) / wall, 2),
            "flushes": _flusher(app).flushes - flushes}


def _flusher(app: Any) -> Any:
    """What applies engine updates to the screen in batches: the VM table."""
    return app.query_one("#vms")


def _sessions(app: Any) -> Any:
    """The engine's hosts, counted (``Engine.stats()``): host id -> statistics."""
    return app.engine.stats().by_id()


class _Keyboard:
    """Key presses as a terminal delivers them: from another thread, through the driver's
    ``send_message`` (what Textual's input thread and Pilot both use), so a press arrives even
    while the app's loop is busy, and waits for it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sent: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, key: str) -> float:
        from textual import events

        event = events.Key(key, key if len(key) == 1 else None)
        event.set_sender(self.app)
        t = time.monotonic()
        self.app._driver.send_message(event)
        return t

    def start(self, every: float) -> None:
        def run() -> None:
            k = 0
            while not self._stop.wait(every):
                self.sent.append(self.send("down" if k % 2 == 0 else "up"))
                k += 1

        self._stop.clear()
        self._thread = threading.Thread(target=run, name="bench-keys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


async def _keys_during_refresh(app: Any, probe: Probe, refreshes: int, every: float = 0.1,
                               limit: float = 60.0) -> dict[str, Any]:
    """Press ``r``, then a cursor key every ``every`` s (a brisk typist, not key repeat) until
    the refresh has been read from the platform and every host, reconciled and flushed to the
    screen; for each cursor key, the time until it was handled, and until the next frame after
    that (its answer on screen)."""
    kb = _Keyboard(app)
    durations: list[float] = []
    n_actions = len(probe.actions)
    for _ in range(refreshes):
        await asyncio.sleep(0.5)
        t_wall = time.time()
        t0 = kb.send("r")
        kb.start(every)
        read_at: float | None = None
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            if read_at is None and all(s.read_at >= t_wall for s in _sessions(app).values()):
                read_at = now
            last_flush_at = _flusher(app).last_flush_at
            if read_at is not None and (last_flush_at > read_at or now - read_at > 2.0):
                break
            if now - t0 > limit:
                kb.stop()
                raise TimeoutError(f"tui: a full refresh did not finish within {limit:.0f} s")
        kb.stop()
        last_flush_at = _flusher(app).last_flush_at
        durations.append((last_flush_at if last_flush_at > t0 else now) - t0)
    return {"refreshes": refreshes, "refresh_s": [round(d, 3) for d in durations],
            **await _answers(kb, probe, n_actions)}


async def _answers(kb: _Keyboard, probe: Probe, n_actions: int) -> dict[str, Any]:
    """For each key ``kb`` sent (the probe's actions from ``n_actions`` on): the time until it
    was handled, and until the next frame after that (its answer on screen)."""
    await _until(lambda: len(probe.actions) - n_actions >= len(kb.sent), 30, "every key handled")
    actions = probe.actions[n_actions:]
    if actions:
        await _until(lambda: probe.paint_after(actions[-1]) is not None, 10, "the last frame")
    handled = [a - s for s, a in zip(kb.sent, actions, strict=False)]
    waits = [probe.paint_after(a) - s  # type: ignore[operator]
             for s, a in zip(kb.sent, actions, strict=False)]
    return {"presses": len(waits),
            "answer_ms_p50": ms(percentile(waits, 50)), "answer_ms_p99": ms(percentile(waits, 99)),
            "answer_ms_max": ms(max(waits, default=0.0)),
            "handled_ms_max": ms(max(handled, default=0.0))}


class _Phase:
    """CPU share, event-loop lateness, GC pauses and the probe's timings over one phase."""

    def __init__(self, app: Any, probe: Probe) -> None:
        self.app, self.probe = app, probe
        self.probe.timings()  # drop what came before
        self.lag, self.gc = _LoopLag().start(), _GcPauses().start()
        self.cpu0, self.t0 = time.process_time(), time.monotonic()

    def end(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        return {"seconds": round(wall, 2),
                "cpu_pct": round(100 * (time.process_time() - self.cpu0) / wall, 1),
                **self.probe.timings(), **self.lag.stop(), **self.gc.stop()}


def _storm_profiler() -> Any:
    """cProfile over the storm phase when VDITUI_BENCH_CPROFILE names an output file (a
    profiling aid: it slows the loop, so such a run's figures are not comparable)."""
    if not os.environ.get("VDITUI_BENCH_CPROFILE"):
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


async def run_tui(cfg: dict[str, Any]) -> dict[str, Any]:
    """All TUI phases; the storm phase waits for the parent between ``ready`` and ``finish``."""
    from vditui.ui.app import VdiApp
    from vditui.ui.widgets.vm_table import VmTable

    expect = cfg["expect_vms"]
    rss_base = rss_mb()
    t0 = time.monotonic()
    app = VdiApp(engine_settings(cfg), [], None, None)
    probe = Probe()
    probe.attach_app(app)
    out: dict[str, Any] = {"rss_base_mb": rss_base}
    async with app.run_test(size=SIZE):
        table = app.query_one("#vms", VmTable)
        probe.attach_table(table)
        await _until(lambda: app.engine is not None, 30, "the engine")
        probe.attach_timers(app)
        phase = _Phase(app, probe)
        await _until(lambda: table.row_count == expect
                     and all(s.settled for s in _sessions(app).values()),
                     cfg.get("settle_timeout", 120.0), f"a full table of {expect} VMs")
        out["load_s"] = round(time.monotonic() - t0, 3)
        out["load_timings"] = phase.end()
        await asyncio.sleep(2.0)  # let the first frames and timers pass
        out["rss_loaded_mb"] = rss_mb()
        out["idle"] = await _idle(app, cfg.get("idle_s", 10.0))
        phase = _Phase(app, probe)
        out["keys"] = await _keys_during_refresh(app, probe, cfg.get("refreshes", 3),
                                                 limit=max(60.0, expect / 100))
        out["keys_timings"] = phase.end()
        await asyncio.sleep(1.0)
        probe.cells.clear()
        probe.events.clear()
        flushes = _flusher(app).flushes
        phase = _Phase(app, probe)
        profiler = _storm_profiler()
        # Cursor keys through the storm too, as an operator scrolls while it rages.
        kb, n_actions = _Keyboard(app), len(probe.actions)
        say("ready")
        kb.start(0.1)
        await stdin_line()  # "finish": the storm is over
        kb.stop()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.environ["VDITUI_BENCH_CPROFILE"])
        out["storm_keys"] = await _answers(kb, probe, n_actions)
        out["storm_timings"] = phase.end()
        out["storm_cpu_pct"] = out["storm_timings"]["cpu_pct"]
        out["storm_flushes"] = _flusher(app).flushes - flushes
        await wait_quiet(lambda: len(probe.cells), cfg.get("quiet_s", 1.5), 20.0)
        await asyncio.sleep(0.2)
        shown = [(t, key, st, probe.paint_after(t)) for t, key, st in probe.cells]
        out["records"] = [[round(p if p is not None else t, 6), key, st]
                          for t, key, st, p in shown]
        out["events"] = [[round(t, 6), k, st] for t, k, st in probe.events]
        out["cells"] = [[round(t, 6), k, st] for t, k, st in probe.cells]
        out["final"] = {str(rk.value): state_of(table.get_row(rk)[VIRT_COLUMN])
                        for rk in list(table.rows)}
        out["rss_peak_mb"] = peak_rss_mb()
    return out
