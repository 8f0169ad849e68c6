"""The real `vditui` command in subprocesses against the lab: check, report, probe, watch, bad
input, and no secret ever printed (or logged)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.lab.cli_env import cli_env, lab_args
from vditui.lab.lab import Lab
from vditui.lab.scenario import Scenario

pytestmark = [pytest.mark.lab, pytest.mark.timeout(60)]

VDITUI = str(Path(sys.executable).with_name("vditui"))
FIELD_REPORT_VMS = ("lic", "ocloud01", "ocloud02", "win10_22h2001")
# A token or an md5 digest: 32 hex digits on their own (UUIDs have hyphens, so never match).
HEX32 = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")


# --------------------------------------------------------------------------- running the CLI


@dataclass
class Run:
    args: list[str]
    code: int
    out: str
    err: str
    seconds: float


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HOME and XDG dirs of their own, so the user's config and logs are never touched."""
    return tmp_path_factory.mktemp("home")


def target(lab: Lab, url: str | None = None) -> list[str]:
    return lab_args(lab, url)


def secrets_of(lab: Lab, *extra: str) -> list[str]:
    """Everything that must never be printed: the password (as given and as md5) and every
    token the platform has issued."""
    assert lab.vdi is not None
    found = [lab.password, hashlib.md5(lab.password.encode()).hexdigest(), *extra]
    found += list(lab.vdi._tokens)
    return [s for s in found if s]


def assert_no_secrets(text: str, secrets: list[str]) -> None:
    for s in secrets:
        assert s not in text, f"a secret leaked: {s[:3]}..."
        assert s.upper() not in text
    assert HEX32.findall(text) == []


def run(home: Path, lab: Lab, *args: str, password: str | None = None, url: str | None = None,
        timeout: float = 30) -> Run:
    """``vditui COMMAND ARGS --url ... --user ...`` with the lab's password in the environment;
    asserts that no secret appears in what it printed."""
    cmd = [VDITUI, *args, *target(lab, url)]
    pw = lab.password if password is None else password
    start = time.monotonic()
    proc = subprocess.run(cmd, env=cli_env(home, pw), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=home)
    r = Run(list(args), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)
    extra = [password, hashlib.md5(password.encode()).hexdigest()] if password else []
    assert_no_secrets(r.out + r.err, secrets_of(lab, *extra))
    assert "Traceback" not in r.err
    return r


@pytest.fixture(scope="module")
def consistent_lab(default_scenario: Scenario, subset: Any) -> Iterator[Lab]:
    """One host with the field report's four VMs; the platform and libvirt agree."""
    lab = Lab(subset(default_scenario, ["ocloud"], "field-report"))
    try:
        yield lab.start()
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def drift_lab(default_scenario: Scenario, subset: Any) -> Iterator[Lab]:
    """The field report's host and a classroom host with one VM in a state drift (and one busy
    VM, which is no drift)."""
    lab = Lab(subset(default_scenario, ["ocloud", "hv-t1"], "one-drift"))
    try:
        yield lab.start()
    finally:
        lab.stop()


# --------------------------------------------------------------------------- check


def test_check_consistent_exits_0(home, consistent_lab):
    r = run(home, consistent_lab, "check")
    assert r.code == 0, r
    assert r.err == ""
    url = consistent_lab.vdi_url
    assert r.out == f"consistent: 1 hosts, 4 VMs, 0 drifts (0 critical) on {url}\n"


def test_check_with_state_drift_exits_1(home, drift_lab):
    r = run(home, drift_lab, "check")
    assert r.code == 1, r
    assert r.err == ""
    lines = r.out.splitlines()
    # 14 VMs: hv-t1 also has two templates, a recycled VM and a restore-point desktop, none a
    # drift; zhang.wei is connected to the one that is.
    assert lines[0] == f"DRIFT: 2 hosts, 14 VMs, 1 drifts (1 critical) on {drift_lab.vdi_url}"
    assert len(lines) == 2
    assert re.fullmatch(r"  \[critical\] state\s+class-a-04: platform says running, "
                        r"libvirt says shutoff \[user zhang.wei \(Zhang Wei\) connected 2 h ago\]",
                        lines[1])


def test_check_json_has_summary_and_drifts(home, drift_lab):
    r = run(home, drift_lab, "check", "--json")
    assert r.code == 1 and r.err == ""
    doc = json.loads(r.out)
    assert doc["exit_code"] == 1 and doc["platform"] == drift_lab.vdi_url
    s = doc["summary"]
    assert (s["hosts"], s["vms"], s["drifts"], s["vms_unchecked"]) == (2, 14, 1, 0)
    assert s["hosts_unreachable"] == [] and s["by_kind"] == {"state": 1}
    (d,) = doc["drifts"]
    vm = drift_lab.vm("class-a-04")
    assert (d["subject"], d["kind"], d["status"], d["key"]) == ("class-a-04", "state",
                                                                "confirmed", vm.uuid)
    assert (d["vdi"], d["libvirt"]) == ("running", "shutoff")


def test_check_json_consistent(home, consistent_lab):
    r = run(home, consistent_lab, "check", "--json")
    assert r.code == 0 and r.err == ""
    doc = json.loads(r.out)
    assert doc["drifts"] == [] and doc["summary"]["vms"] == 4 and doc["warnings"] == []


def test_check_with_unreachable_hosts_exits_2(home, lab):
    r = run(home, lab, "check")
    assert r.code == 2, r
    assert r.err == ""
    # The hanging host costs its connect timeout once, in parallel, and the process exits.
    assert r.seconds < 2 + 4
    lines = r.out.splitlines()
    assert lines[0].startswith("INCOMPLETE (unreachable): 11 hosts, 42 VMs, 18 drifts")
    unreachable = sorted(line.split()[2].rstrip(":") for line in lines[1:]
                         if line.split()[1] == "unreachable")
    # ssh-only and tls-only serve no tcp, and this run knows no ssh key or TLS certificates.
    assert unreachable == ["hv-hang", "hv-refuse", "ssh-only", "tls-only"]
    assert any("timeout" in line and "hv-hang" in line for line in lines)
    for host in ("hv-refuse", "ssh-only", "tls-only"):
        assert any("refused" in line and host in line for line in lines), host
    # Drift kinds in words, as on screen (JSON keeps the machine names).
    assert any(" only in VDI " in line and "class-b-05" in line for line in lines), r.out
    assert "only_in_vdi" not in r.out


# --------------------------------------------------------------------------- report


def test_report_md(home, drift_lab):
    r = run(home, drift_lab, "report", "--format", "md")
    assert r.code == 1 and r.err == ""
    assert r.out.startswith(f"# vditui report: {drift_lab.vdi_url}\n")
    assert "**2 hosts, 14 VMs, 1 drifts (1 critical)**; unreachable hosts: none." in r.out
    rows = {line.split("|")[1].strip(): line for line in r.out.splitlines()
            if line.startswith("| ") and not line.startswith("| VM ")
            and not line.startswith("| host ") and "VMs |" not in line}
    for name in FIELD_REPORT_VMS:
        vm = drift_lab.vm(name)
        assert rows[name].split("|")[2:5] == [" ocloud ", " running ", " running "], rows[name]
        assert f"| {vm.virt.vcpu} | {vm.virt.memory_mb} |" in rows[name]
    assert "platform says running, libvirt says shutoff" in rows["class-a-04"]
    assert "## Drifts" in r.out


def test_report_json(home, drift_lab):
    r = run(home, drift_lab, "report", "--format", "json")
    assert r.code == 1 and r.err == ""
    doc = json.loads(r.out)
    assert doc["platform"] == drift_lab.vdi_url and doc["user"] == drift_lab.username
    assert sorted(h["name"] for h in doc["hosts"]) == ["hv-t1", "ocloud"]
    assert all(h["connection"] == "connected" for h in doc["hosts"])
    vms = {v["name"]: v for v in doc["vms"]}
    assert sorted(vms) == sorted(v.name for v in drift_lab.scenario.vms)
    for v in drift_lab.scenario.vms:
        rec = vms[v.name]
        if v.virt is None:  # a template and a restore-point desktop libvirt lacks: no drift
            assert rec["libvirt_state"] == "" and rec["drift"] == [] and rec["kind"], rec
            continue
        assert (rec["libvirt_state"], rec["libvirt_vcpu"], rec["libvirt_memory_mb"]) == (
            v.virt.state, v.virt.vcpu, v.virt.memory_mb)
        assert rec["drift"] == list(v.expect)
    assert [d["subject"] for d in doc["drifts"]] == ["class-a-04"]


def test_report_csv(home, drift_lab):
    r = run(home, drift_lab, "report", "--format", "csv")
    assert r.code == 1 and r.err == ""
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert r.out.splitlines()[0].startswith("name,host,libvirt_host,vdi_state,libvirt_state")
    assert len(rows) == len(drift_lab.scenario.vms) == 14
    by_name = {row["name"]: row for row in rows}
    assert sorted(by_name) == sorted(v.name for v in drift_lab.scenario.vms)
    assert by_name["class-a-04"]["drift"] == "state"
    assert by_name["class-a-06"]["vdi_state"] == "busy" and by_name["class-a-06"]["drift"] == ""
    for name in FIELD_REPORT_VMS:
        assert (by_name[name]["host"], by_name[name]["libvirt_state"]) == ("ocloud", "running")


def test_report_to_file(home, consistent_lab, tmp_path):
    out = tmp_path / "report.csv"
    r = run(home, consistent_lab, "report", "--format", "csv", "--output", str(out))
    assert r.code == 0 and r.out == "" and r.err == ""
    assert len(out.read_text().splitlines()) == 1 + 4
    assert out.stat().st_mode & 0o077 == 0  # the report is the operator's alone


# --------------------------------------------------------------------------- probe


def test_probe_healthy_host_ok(home, lab):
    r = run(home, lab, "probe", "hv-t1")
    assert r.code == 0 and r.err == ""
    h = lab.hosts["hv-t1"]
    n = h.conn.getLibVersion()
    version = f"{n // 1_000_000}.{n // 1000 % 1000}.{n % 1000}"
    lines = r.out.splitlines()
    assert lines[0] == f"probe hv-t1 ({h.ip})"
    assert re.fullmatch(rf"  OK    {re.escape(h.uri)}\s+[\d.]+ ms  libvirt {version} on "
                        rf"{re.escape(h.conn.getHostname())}", lines[1])
    assert len(lines) == 2


def test_probe_refusing_host_fails_with_hint(home, lab):
    r = run(home, lab, "probe", "hv-refuse")
    assert r.code == 2 and r.err == ""
    h = lab.hosts["hv-refuse"]
    lines = r.out.splitlines()
    assert re.fullmatch(rf"  FAIL  {re.escape(h.uri)}\s+[\d.]+ ms  refused", lines[1])
    assert lines[2] == f"        hint: nothing listens on {h.ip}:16509: enable libvirtd's TCP " \
                       "listener (listen_tcp=1, or libvirtd-tcp.socket) or try qemu+ssh://"
    assert lines[3].startswith("        detail: ") and "Connection refused" in lines[3]


def test_probe_json(home, lab):
    r = run(home, lab, "probe", "hv-refuse", "--json")
    assert r.code == 2 and r.err == ""
    (rec,) = json.loads(r.out)
    assert (rec["ok"], rec["error"], rec["uri"]) == (False, "refused", lab.hosts["hv-refuse"].uri)
    assert rec["hint"]


def test_probe_unknown_host_lists_hosts(home, lab):
    r = run(home, lab, "probe", "no-such-host")
    assert r.code == 2 and r.out == ""
    names = ", ".join(sorted(h.name for h in lab.scenario.hosts))
    assert r.err == f"vditui: no host 'no-such-host' on the platform (hosts: {names})\n"


# --------------------------------------------------------------------------- watch


def _reader(stream: Any, q: queue.Queue[str | None]) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


def _next_json(q: queue.Queue[str | None], deadline: float, lines: list[str]) -> dict[str, Any]:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    line = q.get(timeout=left)
    if line is None:
        raise EOFError("watch ended")
    lines.append(line)
    return json.loads(line)


def test_watch_jsonl_reports_state_changes(home, fresh_lab, subset, default_scenario):
    lab = fresh_lab(subset(default_scenario, ["ocloud"], "watch"))
    cmd = [VDITUI, "watch", "--jsonl", *target(lab)]
    proc = subprocess.Popen(cmd, env=cli_env(home, lab.password), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    q: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    lines: list[str] = []
    try:
        # Settled: the host is connected (and read).
        deadline = time.monotonic() + 15
        while True:
            rec = _next_json(q, deadline, lines)
            if rec["type"] == "host" and rec["message"].startswith("ocloud: connected "):
                break
        vm = lab.vm("lic")
        changed = time.monotonic()
        assert lab.act("ocloud", vm.uuid, "destroy") == "shutoff"
        deadline = changed + 3
        state = drift = None
        while state is None or drift is None:
            rec = _next_json(q, deadline, lines)
            if rec["type"] == "state" and rec["vm"] == "lic":
                state = rec
            elif rec["type"] == "drift" and rec["subject"] == "lic":
                drift = rec
        assert time.monotonic() - changed < 3
        assert (state["uuid"], state["event"], state["old"], state["new"]) == (
            vm.uuid, "stopped", "running", "shutoff")
        assert (drift["kind"], drift["status"], drift["vdi"], drift["libvirt"]) == (
            "state", "confirmed", "running", "shutoff")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("watch did not stop on SIGINT")
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    while (line := q.get(timeout=5)) is not None:
        lines.append(line)
    assert code in (0, 130)
    assert err == ""
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {r["type"] for r in records} <= {"host", "state", "drift", "platform"}
    assert_no_secrets("".join(lines) + err, secrets_of(lab))


# --------------------------------------------------------------------------- bad input


def test_wrong_password_exits_2_with_one_line(home, consistent_lab):
    wrong = "not-the-Pa55word"
    r = run(home, consistent_lab, "check", password=wrong)
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1
    assert r.err.startswith(f"vditui: platform: {consistent_lab.vdi_url}")
    assert f"login as '{consistent_lab.username}' refused" in r.err


def test_unreachable_platform_exits_2_with_a_clear_message(home, consistent_lab):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    r = run(home, consistent_lab, "check", url=url)
    assert r.code == 2 and r.out == ""
    assert r.err == f"vditui: platform: cannot connect to {url}: connection refused\n"
    assert r.seconds < 10


def test_missing_password_exits_2(home, consistent_lab):
    proc = subprocess.run([VDITUI, "check", *target(consistent_lab)],
                          env=cli_env(home, None), capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("vditui: ")
    assert "Traceback" not in proc.stderr


def test_nothing_secret_in_the_logs(home, drift_lab, consistent_lab):
    # Runs after the commands above (module order): their logs went under the test HOME.
    run(home, drift_lab, "check")
    logs = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "vditui.log" for p in logs)
    for p in logs:
        text = p.read_text(errors="replace")
        for lab in (drift_lab, consistent_lab):
            for s in secrets_of(lab, "not-the-Pa55word"):
                assert s not in text, f"{p} holds a secret"
