"""``vditui serve`` as a real process against the lab: scraped by a real Prometheus (Debian's
package, installed by scripts/setup.sh) whose HTTP API must hold the default scenario's drift
and host metrics; host and platform faults (the metrics say so, /healthz flips and recovers,
the process stays up); SIGTERM; bad --listen values, a port in use, a refused login."""

from __future__ import annotations

import hashlib
import json
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.lab.cli_env import cli_env, lab_args
from vditui.lab.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

VDITUI = str(Path(sys.executable).with_name("vditui"))
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "vditui-alerts.yml"


# --------------------------------------------------------------------------- processes


def env_for(home: Path, password: str | None) -> dict[str, str]:
    return cli_env(home, password)


def eventually(what: Callable[[], Any], within: float, doing: str) -> Any:
    """Poll ``what`` until it returns something true; fail saying ``doing`` at the deadline."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = what()
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    pytest.fail(f"waited {within} s for {doing}; last: {last!r}")


class Serve:
    """A running ``vditui serve --listen 127.0.0.1:0``; ``port`` is read from its startup
    line."""

    def __init__(self, home: Path, args: list[str], password: str | None) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.proc = subprocess.Popen(
            [VDITUI, "serve", "--listen", "127.0.0.1:0", *args], env=env_for(home, password),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            cwd=home)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        first = self.lines.get(timeout=30)
        assert first is not None, f"serve ended at once: {self.stop()}"
        self.first = first
        where = first.split("http://", 1)[1].split("/", 1)[0]
        self.port = int(where.rsplit(":", 1)[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metrics(self) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
        """Sample name -> label set -> value, as Prometheus's parser reads /metrics."""
        status, text = self.get("/metrics")
        assert status == 200, text
        out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
        return out

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Signal it and wait: (exit code, stdout, all of stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("vditui serve did not stop on its signal")
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        deadline = time.monotonic() + 5
        while self.lines.get(timeout=max(0.1, deadline - time.monotonic())) is not None:
            pass
        return code, out, "".join(self.err)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    """``serve(args, password)``: a started ``vditui serve``, stopped at teardown."""
    running: list[Serve] = []

    def start(args: list[str], password: str | None) -> Serve:
        s = Serve(tmp_path / f"home{len(running)}", args, password)
        running.append(s)
        return s

    try:
        yield start
    finally:
        for s in running:
            if s.proc.poll() is None:
                s.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_clean_exit(s: Serve) -> None:
    """SIGTERM: exit 0, nothing on stdout, stderr just the startup line."""
    code, out, err = s.stop()
    assert code == 0, err
    assert out == ""
    assert err == s.first, err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- real Prometheus


class Prometheus:
    """A real ``prometheus`` scraping one target every second, on a free loopback port, its
    storage in ``workdir``."""

    def __init__(self, workdir: Path, target: str, scrape_configs: str | None = None) -> None:
        """``scrape_configs``: the YAML list under ``scrape_configs:`` instead of one job
        ``vditui`` scraping ``target``."""
        exe = shutil.which("prometheus")
        assert exe, "prometheus is missing: scripts/setup.sh installs Debian's package"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {json.dumps(str(RULES))}\n"
            "scrape_configs:\n" + (scrape_configs or "  - job_name: vditui\n    static_configs:\n"
                                    f"      - targets: [{json.dumps(target)}]\n"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / "prometheus.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [exe, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
        self.workdir = workdir

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, promql: str) -> dict[frozenset[tuple[str, str]], float]:
        """An instant query's vector: label set (without __name__, job, instance) -> value."""
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        drop = {"__name__", "job", "instance"}
        return {frozenset((k, v) for k, v in r["metric"].items() if k not in drop):
                float(r["value"][1]) for r in data["result"]}

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.close()
        return code


def expected_from_report(lab: Lab, home: Path) -> tuple[Counter[frozenset[tuple[str, str]]],
                                                         dict[frozenset[tuple[str, str]], float]]:
    """What a one-shot ``vditui report --format json`` of the same lab, with the same options,
    finds: the drift counts by kind, and every host's up (1) or down (0), as label sets."""
    proc = subprocess.run([VDITUI, "report", "--format", "json", *lab_args(lab)],
                          env=env_for(home, lab.password), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, cwd=home)
    assert proc.returncode in (1, 2) and proc.stderr == "", proc.stderr
    doc = json.loads(proc.stdout)
    names = {h["id"]: h["name"] for h in doc["hosts"]}
    assert all(d["host"] == names[d["host_id"]] for d in doc["drifts"])
    drifts = Counter(frozenset({("kind", d["kind"])}) for d in doc["drifts"])
    hosts = {frozenset({("host", h["name"])}): float(h["connection"] == "connected")
             for h in doc["hosts"]}
    return drifts, hosts


def test_real_prometheus_scrapes_the_default_scenario(lab, serve, tmp_path):
    home = tmp_path / "report-home"
    home.mkdir()
    want_drifts, want_hosts = expected_from_report(lab, home)
    # The report is no empty oracle: it finds every drift kind the scenario declares on the
    # VMs of the hosts it reaches, and the hosts the scenario makes refuse or hang are down.
    up = {dict(k)["host"] for k, v in want_hosts.items() if v}
    declared = {e for vm in lab.scenario.vms for e in vm.expect
                if vm.virt is not None and vm.virt.host in up}
    assert declared and declared <= {dict(k)["kind"] for k in want_drifts}
    assert {h.name for h in lab.scenario.hosts if h.fault != "none"} <= {
        dict(k)["host"] for k, v in want_hosts.items() if not v}

    s = serve(lab_args(lab), lab.password)
    prom = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{s.port}")
    try:
        eventually(lambda: prom.query('up{job="vditui"}') == {frozenset(): 1.0}, 60,
                   "Prometheus to scrape vditui serve")

        eventually(lambda: prom.query("vditui_drifts > 0") ==
                   dict(want_drifts), 30, f"drifts {dict(want_drifts)} in Prometheus")
        eventually(lambda: prom.query("vditui_host_up") == want_hosts, 30,
                   f"host metrics {want_hosts} in Prometheus")
        assert prom.query("count(vditui_host_info)") == {frozenset(): float(len(want_hosts))}
        # Nothing pending (grace 0), nothing acknowledged (no rules), the platform up.
        assert prom.query("vditui_drifts_pending > 0") == {}
        assert prom.query("sum(vditui_drifts_acknowledged)") == {frozenset(): 0.0}
        assert prom.query("vditui_platform_up") == {frozenset(): 1.0}
        assert prom.query("count(vditui_drift_first_seen_timestamp_seconds)") == {
            frozenset(): float(sum(want_drifts.values()))}
        # The alert rules loaded and evaluate without error against the real series.
        groups = eventually(lambda: [g for g in prom.api("rules")["groups"]
                                     if not any(r.get("lastEvaluation", "0001").startswith(
                                         "0001") for r in g["rules"])], 30,
                            "the alert rules to be evaluated")
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        assert set(rules) == {"VdituiDriftConfirmed", "VdituiHostDown",
                              "VdituiPlatformUnreachable", "VdituiDataStale",
                              "VdituiExporterDown"}
        assert all(r["health"] == "ok" for r in rules.values()), rules
        served = s.get("/metrics")[1] + s.get("/healthz")[1]
    finally:
        code = prom.stop()
    assert code == 0, (prom.workdir / "prometheus.log").read_text()[-2000:]
    assert_clean_exit(s)
    # No secret in what it serves or logs: the password (as given and as md5) and the tokens.
    assert lab.vdi is not None and lab.vdi._tokens
    secrets = [lab.password, hashlib.md5(lab.password.encode()).hexdigest(), *lab.vdi._tokens]
    logs = "".join(p.read_text(errors="replace") for p in s.home.rglob("*.log"))
    assert "serving on http://127.0.0.1:" in logs
    for secret in secrets:
        assert secret not in served and secret not in logs, f"a secret leaked: {secret[:3]}..."


# --------------------------------------------------------------------------- faults


def fast_config(path: Path, lab: Lab) -> Path:
    """A profile reaching ``lab`` that refreshes the platform every second and notices a silent
    host within 3 s (keepalive 1 s x 2)."""
    path.write_text(
        f'default_profile = "lab"\n[profiles.lab]\nurl = "{lab.vdi_url}"\n'
        f'username = "{lab.username}"\nuri_templates = {json.dumps(list(lab.uri_templates))}\n'
        "connect_timeout = 2.0\ncall_timeout = 2.0\ngrace = 0.0\nrefresh_interval = 1.0\n"
        "keepalive_interval = 1\nkeepalive_count = 2\nmax_backoff = 1.0\n")
    return path


def value(m: dict[str, dict[frozenset[tuple[str, str]], float]], name: str,
          **labels: str) -> float | None:
    """The one sample of ``name`` whose labels include ``labels``; None if there is none."""
    hits = [v for k, v in m.get(name, {}).items() if set(labels.items()) <= k]
    assert len(hits) <= 1, (name, labels, hits)
    return hits[0] if hits else None


def test_serve_under_host_and_platform_faults(lab, serve, tmp_path):
    s = serve(["--config", str(fast_config(tmp_path / "config.toml", lab))], lab.password)

    def host_up(host: str) -> float | None:
        return value(s.metrics(), "vditui_host_up", host=host)

    eventually(lambda: s.get("/healthz")[0] == 200, 20, "/healthz 200")
    eventually(lambda: host_up("hv-t1") == 1.0 and host_up("hv-t2") == 1.0, 20, "hosts up")
    reconnects = value(s.metrics(), "vditui_host_reconnects_total", host="hv-t1")
    assert reconnects == 0.0

    # Hosts: one refuses and has its connection cut, the other hangs (keepalive notices).
    lab.set_fault("hv-t1", "refuse")
    lab.cut("hv-t1")
    lab.set_fault("hv-t2", "hang")
    def down(host: str) -> bool:
        # Down at once (the connection's state); its drift with the next pass.
        m = s.metrics()
        return value(m, "vditui_host_up", host=host) == 0.0 and value(
            m, "vditui_drift_first_seen_timestamp_seconds", kind="unreachable",
            host=host) is not None

    eventually(lambda: down("hv-t1") and down("hv-t2"), 20, "hosts down, with their drift")
    status, body = s.get("/healthz")
    assert status == 200 and body.startswith("ok: platform read "), body  # hosts are not health
    lab.set_fault("hv-t1", "pass")
    lab.set_fault("hv-t2", "pass")
    eventually(lambda: host_up("hv-t1") == 1.0 and host_up("hv-t2") == 1.0, 30, "hosts back")
    eventually(lambda: not any(
        value(s.metrics(), "vditui_drift_first_seen_timestamp_seconds", kind="unreachable",
              host=h) for h in ("hv-t1", "hv-t2")), 10, "their drift resolved")
    for host in ("hv-t1", "hv-t2"):
        assert value(s.metrics(), "vditui_host_reconnects_total", host=host) == reconnects + 1

    # The platform: HTTP 500 on every request. Down at once; /healthz flips once the last good
    # read is older than 2 x refresh_interval + call_timeout (4 s); the process stays up.
    assert lab.vdi is not None
    lab.vdi.set_fault("http500")
    eventually(lambda: value(s.metrics(), "vditui_platform_up") == 0.0, 15, "platform down")
    status, body = eventually(lambda: (r := s.get("/healthz"))[0] == 503 and r, 20,
                              "/healthz 503")
    assert body.startswith("platform not read for ") and "(limit 4 s)" in body, body
    assert lab.vdi_url in body and body.count("\n") == 1, body
    m = s.metrics()
    assert (value(m, "vditui_platform_refresh_age_seconds") or 0) > 4
    assert s.proc.poll() is None
    lab.vdi.set_fault(None)
    eventually(lambda: s.get("/healthz")[0] == 200, 20, "/healthz back to 200")
    assert value(s.metrics(), "vditui_platform_up") == 1.0
    assert_clean_exit(s)


def test_serve_with_the_platform_down_at_start_keeps_trying(serve):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    s = serve(["--url", url, "--user", "admin", "--grace", "0"], "pw")
    _, body = eventually(lambda: (r := s.get("/healthz"))[0] == 503 and ": " in r[1] and r,
                         20, "/healthz saying why")
    assert body == f"platform not read yet: cannot connect to {url}: connection refused\n"
    assert value(s.metrics(), "vditui_platform_up") == 0.0
    assert s.get("/nope")[0] == 404
    assert_clean_exit(s)


# --------------------------------------------------------------------------- bad input


def run_serve(tmp_path: Path, *args: str, password: str = "pw") -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run([VDITUI, "serve", *args], env=env_for(home, password),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          cwd=home)


@pytest.mark.parametrize(("listen", "says"), [
    ("9464", "'9464': expected HOST:PORT such as 127.0.0.1:9464"),
    (":9464", "':9464': no host; expected HOST:PORT"),
    ("127.0.0.1:99999", "'127.0.0.1:99999': port 99999 is above 65535"),
    ("::1:9464", "'::1:9464': expected HOST:PORT"),
    ("[::1:9464", "'[::1:9464': expected HOST:PORT"),
    ("bad_host!:9464", "'bad_host!:9464': 'bad_host!' is neither an IP address nor a host name"),
])
def test_bad_listen_values_say_what_is_expected(tmp_path, listen, says):
    r = run_serve(tmp_path, "--listen", listen, "--url", "http://127.0.0.1:1", "--user", "u")
    assert r.returncode == 2 and r.stdout == ""
    assert f"vditui serve: error: argument --listen: {says}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_port_in_use_is_one_clear_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_serve(tmp_path, "--listen", f"127.0.0.1:{port}", "--url", "http://127.0.0.1:1",
                      "--user", "u")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"vditui: cannot listen on 127.0.0.1:{port}: the port is in use "
                        "(another vditui serve or exporter?); choose another with --listen "
                        "HOST:PORT\n")


def test_refused_login_stops_with_one_line(lab, tmp_path):
    r = run_serve(tmp_path, "--listen", "127.0.0.1:0", *lab_args(lab),
                  password="not-the-Pa55word")
    assert r.returncode == 2 and r.stdout == ""
    first, second = r.stderr.splitlines()
    assert first.startswith("vditui: serving http://127.0.0.1:")
    assert second.startswith(f"vditui: platform: {lab.vdi_url}") and "refused" in second, second
    assert "not-the-Pa55word" not in r.stderr
