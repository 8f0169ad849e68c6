"""The Prometheus side of ``vditui serve``: :class:`~vditui.core.metrics.MetricsState`'s
families as prometheus-client metrics, computed when scraped, in a registry of their own (with
the process's own metrics and vditui's build info)."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from importlib import metadata

from prometheus_client import ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from vditui.core.metrics import PREFIX, Family, MetricsState


def version() -> str:
    """vditui's installed version ("unknown" when run from a tree that was never installed)."""
    try:
        return metadata.version("vditui")
    except metadata.PackageNotFoundError:
        return "unknown"


def to_metric(f: Family) -> Metric:
    """One family as prometheus-client's metric family."""
    cls = GaugeMetricFamily if f.kind == "gauge" else CounterMetricFamily
    m = cls(f.name, f.help, labels=list(f.labels))
    for labels, value in f.samples:
        m.add_metric(list(labels), value)
    return m


class EngineCollector(Collector):
    """Reads the state at every scrape (prometheus-client calls ``collect`` from the HTTP
    server's thread; the state takes its own lock)."""

    def __init__(self, state: MetricsState) -> None:
        self._state = state
        self._build = (version(), platform.python_version())

    def collect(self) -> Iterator[Metric]:
        build = GaugeMetricFamily(PREFIX + "build_info", "vditui's version and Python's; "
                                  "always 1", labels=["version", "python_version"])
        build.add_metric(list(self._build), 1.0)
        yield build
        for f in self._state.families():
            yield to_metric(f)


def registry(state: MetricsState) -> CollectorRegistry:
    """A registry serving ``state`` and this process's CPU, memory and file descriptors."""
    reg = CollectorRegistry()
    reg.register(EngineCollector(state))
    ProcessCollector(registry=reg)
    return reg
