"""Sharded ``vditui serve`` (``--pool``, ``--hosts``): two shards scraped by one real Prometheus
give the same totals as one serve over the whole estate, each shard reading only its hosts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.cli_env import lab_args
from tests.lab.test_serve import Prometheus, Serve, eventually
from vditui.lab.fleet import Fleet
from vditui.lab.scenario import generate

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    # 8 hosts in 2 pools (odd hosts pool-01, even ones pool-02), a third of the VMs drifting.
    with Fleet(generate(8, 6, pools=2, drift=0.35, seed=22)) as f:
        yield f


def test_two_shards_give_the_totals_of_one_serve(fleet: Fleet, tmp_path: Path) -> None:
    args = lab_args(fleet)  # type: ignore[arg-type] - a fleet has a lab's client surface
    even = [h.name for h in fleet.scenario.hosts[1::2]]
    assert even == ["hv002", "hv004", "hv006", "hv008"]
    runs = {"all": Serve(tmp_path / "all", args, fleet.password),
            "a": Serve(tmp_path / "a", [*args, "--pool", "pool-01"], fleet.password),
            "b": Serve(tmp_path / "b", [*args, "--hosts", "hv00[2468]"], fleet.password)}
    assert "(pools pool-01)" in runs["a"].first and "(hosts hv00[2468])" in runs["b"].first

    def job(name: str, shards: dict[str, Serve]) -> str:
        return f"  - job_name: {name}\n    static_configs:\n" + "".join(
            f"      - targets: [{json.dumps(f'127.0.0.1:{s.port}')}]\n"
            f"        labels: {{shard: {shard}}}\n" for shard, s in shards.items())

    scrape = (job("whole", {"all": runs["all"]})
              + job("vditui", {k: v for k, v in runs.items() if k != "all"}))
    prom = Prometheus(tmp_path / "prometheus", "", scrape)
    try:
        eventually(lambda: len(prom.query("up == 1")) == 3, 60, "Prometheus to scrape all three")
        # Each shard holds only its hosts, and no host is in both.
        eventually(lambda: prom.query('count by (shard) (vditui_host_up{job="vditui"} == 1)') == {
            frozenset({("shard", "a")}): 4.0, frozenset({("shard", "b")}): 4.0}, 60,
            "each shard to connect its 4 hosts")
        hosts_b = {dict(k)["host"] for k in prom.query('vditui_host_up{shard="b"}')}
        assert hosts_b == set(even)
        assert prom.query('count by (host) (vditui_host_up{job="vditui"}) > 1') == {}

        def totals(selector: str) -> dict[frozenset[tuple[str, str]], float]:
            return prom.query(f'sum by (kind, status) (vditui_drifts{{{selector}}}) > 0')

        whole = eventually(lambda: totals('job="whole"'), 60, "drift in the whole estate")
        assert sum(whole.values()) >= 8, whole  # no empty oracle: a third of 48 VMs drift
        eventually(lambda: totals('job="vditui"') == whole, 60,
                   f"the shards' drift totals to equal the whole's {whole}")
        # Per VM too: the same drifting VMs, each once.
        per_vm = 'count by (subject, kind) (vditui_drift_first_seen_timestamp_seconds{{{}}})'
        assert prom.query(per_vm.format('job="vditui"')) == prom.query(
            per_vm.format('job="whole"'))
        assert prom.query('sum(vditui_host_up{job="vditui"})') == prom.query(
            'sum(vditui_host_up{job="whole"})') == {frozenset(): 8.0}
    finally:
        prom.stop()
        for s in runs.values():
            s.stop()
