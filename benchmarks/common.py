"""Shared helpers: process statistics, percentiles, the machine's description, and the parent's
handle on a worker subprocess (a line protocol over its stdin/stdout)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TAG = "@@bench "  # worker lines meant for the parent start with this; anything else is noise


# --------------------------------------------------------------------------- this process


def proc_status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmHWM`` peak RSS, ``VmRSS`` current RSS)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_mb() -> float:
    return round(proc_status_kib("VmRSS") / 1024, 1)


def peak_rss_mb() -> float:
    return round(proc_status_kib("VmHWM") / 1024, 1)


def percentile(values: list[float], p: float) -> float | None:
    """The ``p``-th percentile (0-100) by linear interpolation, or None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms(seconds: float | None, digits: int = 1) -> float | None:
    return None if seconds is None else round(seconds * 1000, digits)


# --------------------------------------------------------------------------- the machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _run(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=ROOT,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import libvirt
    import textual

    lv = libvirt.getVersion()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _mem_total_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "libvirt_python": f"{lv // 1_000_000}.{lv // 1000 % 1000}.{lv % 1000}",
        "libvirtd": _run(["libvirtd", "--version"]) or "unknown",
        "textual": getattr(textual, "__version__", "?"),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "git_commit": _run(["git", "rev-parse", "--short", "HEAD"]) or "unknown",
        "load_average_at_start": load_average(),
    }


# --------------------------------------------------------------------------- worker handle


class WorkerError(RuntimeError):
    """A worker failed, timed out or broke the protocol; the message ends with its stderr."""


class Worker:
    """One ``python -m benchmarks.worker MODE CONFIG`` child. It sends ``@@bench KIND JSON``
    lines; the parent may answer with plain command lines on its stdin."""

    def __init__(self, mode: str, config: dict[str, Any]) -> None:
        self.mode = mode
        self._err = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - lives as long as self
        cmd = [sys.executable, "-m", "benchmarks.worker", mode, json.dumps(config)]
        if profile_dir := os.environ.get("VDITUI_BENCH_PYSPY"):
            # py-spy's collapsed stacks of the whole worker, one file per mode (a profiling aid:
            # sampling slows the worker, so the figures of such a run are not comparable).
            out = Path(profile_dir) / f"{mode}.folded"
            spy = str(Path(sys.executable).with_name("py-spy"))
            cmd = [spy, "record", "--threads", "--nonblocking", "-r", "250", "-f", "raw",
                   "-o", str(out), "--", *cmd]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
            text=True, bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, name=f"worker-{mode}", daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(TAG):
                self._lines.put(line[len(TAG):].rstrip("\n"))
        self._lines.put(None)

    def stderr_tail(self, chars: int = 3000) -> str:
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")[-chars:]

    def expect(self, kind: str, timeout: float) -> dict[str, Any]:
        """Wait for the worker's next ``kind`` message and return its payload."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(0.01, left))
            except queue.Empty:
                self.close(timeout=1)
                raise WorkerError(f"{self.mode} worker: no {kind!r} within {timeout:.0f} s\n"
                                  f"{self.stderr_tail()}") from None
            if line is None:
                code = self.proc.wait()
                raise WorkerError(f"{self.mode} worker exited ({code}) before {kind!r}\n"
                                  f"{self.stderr_tail()}")
            got, _, payload = line.partition(" ")
            doc = json.loads(payload) if payload else {}
            if got == "error":
                self.close(timeout=5)
                raise WorkerError(f"{self.mode} worker failed: {doc.get('error')}\n"
                                  f"{self.stderr_tail()}")
            if got == kind:
                return doc

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def close(self, timeout: float = 20.0) -> None:
        """Let the worker exit (closing its stdin), kill it if it does not."""
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def run_worker(mode: str, config: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run a one-shot worker and return its ``result`` payload."""
    w = Worker(mode, config)
    try:
        return w.expect("result", timeout)
    finally:
        w.close()


# --------------------------------------------------------------------------- worker side


def say(kind: str, payload: dict[str, Any] | None = None) -> None:
    """Worker side: send one message to the parent (on the real stdout: Textual redirects
    ``sys.stdout`` while an app runs)."""
    out = sys.__stdout__
    assert out is not None
    out.write(f"{TAG}{kind} {json.dumps(payload or {})}\n")
    out.flush()
