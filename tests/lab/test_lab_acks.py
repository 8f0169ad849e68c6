"""Acknowledged drift against the lab: the engine applies the rules (and their expiry, said
once), and the real `vditui` command leaves acknowledged drifts out of what counts: check's
exit code, watch's alerts (said once), serve's firing metrics, while report still shows them
with their reason; and `vditui baseline` acknowledges exactly the drifts confirmed now."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.lab.cli_env import cli_env
from vditui.core.acks import AckRule
from vditui.core.drift import DriftStatus
from vditui.core.events import AckExpired, DriftChanged, EngineEvent, SnapshotReady
from vditui.core.models import DriftKind
from vditui.lab.lab import Lab
from vditui.lab.scenario import Scenario

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

VDITUI = str(Path(sys.executable).with_name("vditui"))
REASON = "kept off on purpose: licence audit"


@pytest.fixture(scope="module")
def drift_lab(default_scenario: Scenario, subset: Any) -> Iterator[Lab]:
    """The field report's host and a classroom host whose class-a-04 is in a state drift."""
    lab = Lab(subset(default_scenario, ["ocloud", "hv-t1"], "ack-drift"))
    try:
        yield lab.start()
    finally:
        lab.stop()


def env_for(home: Path, lab: Lab) -> dict[str, str]:
    return cli_env(home, lab.password)


def profile(path: Path, lab: Lab, acks: str = "") -> Path:
    """A config file whose profile "lab" reaches every host of ``lab`` (ssh and tls ones by
    their URIs), grace 0, with the ``[[profiles.lab.ack]]`` tables ``acks``."""
    templates = ", ".join(json.dumps(t) for t in lab.uri_templates)
    hosts = "".join(f'\n[profiles.lab.hosts."{n}"]\nuri = {json.dumps(u)}\n'
                    for n, u in lab.client_uris().items())
    path.write_text(f"# the team's config\n[profiles.lab]\nurl = {json.dumps(lab.vdi_url)}\n"
                    f'username = "{lab.username}"\nuri_templates = [{templates}]\n'
                    f"connect_timeout = 5\ngrace = 0\n{hosts}\n{acks}")
    return path


def vditui(home: Path, lab: Lab, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([VDITUI, *args, "--config", str(config), "--profile", "lab"],
                          env=env_for(home, lab), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=home)
    assert "Traceback" not in proc.stderr
    assert lab.password not in proc.stdout + proc.stderr
    return proc


ACK_A04 = f'[[profiles.lab.ack]]\nvm = "class-a-04"\nkind = "state"\nreason = "{REASON}"\n' \
          "expires = 2999-12-31\n"


# --------------------------------------------------------------------------- check, report


def test_check_exits_0_when_the_only_drift_is_acknowledged(tmp_path, drift_lab):
    bare = vditui(tmp_path, drift_lab, profile(tmp_path / "bare.toml", drift_lab), "check")
    assert bare.returncode == 1, bare  # the same lab without the rule: the drift counts
    config = profile(tmp_path / "config.toml", drift_lab, ACK_A04)
    r = vditui(tmp_path, drift_lab, config, "check")
    assert r.returncode == 0, r
    # Only counted: the acknowledged drift is not listed (--json lists it, apart).
    assert r.stdout == (f"consistent: 2 hosts, 14 VMs, 0 drifts (0 critical, 1 acknowledged) "
                        f"on {drift_lab.vdi_url}\n")
    doc = json.loads(vditui(tmp_path, drift_lab, config, "check", "--json").stdout)
    assert doc["exit_code"] == 0 and doc["drifts"] == []
    (acked,) = doc["acknowledged"]
    assert (acked["subject"], acked["kind"], acked["status"]) == ("class-a-04", "state",
                                                                  "confirmed")
    assert acked["acknowledged"] == {"reason": REASON, "expires": "2999-12-31"}
    assert doc["summary"]["acknowledged"] == 1


def test_check_still_counts_a_drift_no_rule_covers(tmp_path, drift_lab):
    # A rule for another kind of drift of the same VM covers nothing here.
    other = ACK_A04.replace('kind = "state"', 'kind = "vcpu"')
    r = vditui(tmp_path, drift_lab, profile(tmp_path / "c.toml", drift_lab, other), "check")
    assert r.returncode == 1, r
    assert "acknowledged" not in r.stdout


def test_report_shows_acknowledged_drifts_with_their_reason(tmp_path, drift_lab):
    config = profile(tmp_path / "config.toml", drift_lab, ACK_A04)
    md = vditui(tmp_path, drift_lab, config, "report", "--format", "md")
    assert md.returncode == 0, md
    # The acknowledged drift does not count (as in check), and is listed apart with its reason.
    assert "**2 hosts, 14 VMs, 0 drifts (0 critical, 1 acknowledged)**" in md.stdout
    text = f"acknowledged: {REASON} (until 2999-12-31)"
    (row,) = [line for line in md.stdout.splitlines() if line.startswith("| class-a-04 ")]
    assert row.endswith(f"platform says running, libvirt says shutoff ({text}) |")
    assert "## Acknowledged drifts" in md.stdout
    assert ("| critical | state | class-a-04 | hv-t1 | running | shutoff | ") in md.stdout
    assert f" | {text} | platform says running, libvirt says shutoff |" in md.stdout
    doc = json.loads(vditui(tmp_path, drift_lab, config, "report", "--format", "json").stdout)
    assert doc["drifts"] == [] and doc["summary"]["acknowledged"] == 1
    (d,) = doc["acknowledged"]
    assert d["acknowledged"] == {"reason": REASON, "expires": "2999-12-31"}
    vms = {v["name"]: v for v in doc["vms"]}
    assert vms["class-a-04"]["acknowledged"] == text and vms["lic"]["acknowledged"] == ""
    csv = vditui(tmp_path, drift_lab, config, "report", "--format", "csv").stdout
    assert ",drift_text,acknowledged," in csv.splitlines()[0] + ","
    (line,) = [x for x in csv.splitlines() if x.startswith("class-a-04,")]
    assert f",{text}," in line


# --------------------------------------------------------------------------- the engine


async def test_engine_applies_rules_and_a_live_one(drift_lab, engine_settings, start_engine):
    events: list[EngineEvent] = []
    rule = AckRule(REASON, vm="class-a-*", host="hv-t1", kind=DriftKind.STATE)
    engine = await start_engine(engine_settings(drift_lab), watch=False, listener=events.append)
    await engine.wait_settled(10)
    snap = engine.reconcile_now()
    assert snap is not None and snap.acknowledged == {}
    (drift,) = snap.counted()
    assert drift.subject == "class-a-04"
    confirmed = [e for e in events if isinstance(e, DriftChanged)
                 and e.change.status is DriftStatus.CONFIRMED]
    assert [(e.change.drift.subject, e.acknowledged) for e in confirmed] == [("class-a-04", None)]
    engine.acknowledge(rule)
    deadline = time.monotonic() + 10
    while not (snaps := [e for e in events if isinstance(e, SnapshotReady) and e.acknowledged]):
        assert time.monotonic() < deadline, "no snapshot with the live rule"
        await asyncio.sleep(0.02)
    live = snaps[-1]
    assert dict(live.acknowledged) == {drift.ident: rule}
    assert live.counted() == [] and live.confirmed() == [drift]
    assert live.confirmed_acknowledged() == [(drift, rule)]


async def test_an_expired_rule_does_not_apply_and_is_said_once(
        drift_lab, engine_settings, start_engine, caplog):
    yesterday = date.today() - timedelta(days=1)
    old = AckRule(REASON, vm="class-a-04", expires=yesterday)
    today = AckRule("until tonight", vm="lic", expires=date.today())  # covers nothing here
    events: list[EngineEvent] = []
    settings = engine_settings(drift_lab, ack=(old, today))
    with caplog.at_level(logging.WARNING, logger="vditui.engine"):
        engine = await start_engine(settings, watch=False, listener=events.append)
        await engine.wait_settled(10)
        for _ in range(3):
            snap = engine.reconcile_now()
    assert snap is not None and snap.acknowledged == {}
    assert [d.subject for d in snap.counted()] == ["class-a-04"]
    assert [e.rule for e in events if isinstance(e, AckExpired)] == [old]
    said = [r.getMessage() for r in caplog.records if "expired" in r.getMessage()]
    assert said == [f"acknowledgement expired on {yesterday}: vm=class-a-04 ({REASON}); "
                    "the drifts it covered count again"]
    drifts = [e for e in events if isinstance(e, DriftChanged)]
    assert drifts and all(e.acknowledged is None for e in drifts)


# --------------------------------------------------------------------------- watch


def _reader(stream: Any, q: queue.Queue[str | None]) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


def test_watch_says_an_acknowledged_drift_once_and_alerts_on_the_others(
        tmp_path, fresh_lab, subset, default_scenario):
    lab = fresh_lab(subset(default_scenario, ["ocloud"], "ack-watch"))
    acks = f'[[profiles.lab.ack]]\nvm = "lic"\nkind = "state"\nreason = "{REASON}"\n'
    config = profile(tmp_path / "config.toml", lab, acks)
    proc = subprocess.Popen([VDITUI, "watch", "--jsonl", "--config", str(config),
                             "--profile", "lab"], env=env_for(tmp_path, lab),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    q: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    records: list[dict[str, Any]] = []

    def until(pred: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + 15
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"watch never said {what}: {records}"
            line = q.get(timeout=left)
            assert line is not None, f"watch ended: {records}"
            records.append(json.loads(line))
            if pred(records[-1]):
                return records[-1]

    try:
        until(lambda r: r["type"] == "host" and r["message"].startswith("ocloud: connected "),
              "ocloud connected")
        assert lab.act("ocloud", lab.vm("lic").uuid, "destroy") == "shutoff"
        said = until(lambda r: r["type"] == "drift" and r["subject"] == "lic", "lic's drift")
        assert (said["status"], said["kind"]) == ("confirmed", "state")
        assert said["acknowledged"] == {"reason": REASON, "expires": None}
        # Another VM's drift is an alert (no acknowledged key), and lic is not said again
        # though every snapshot since still has it acknowledged.
        assert lab.act("ocloud", lab.vm("ocloud01").uuid, "destroy") == "shutoff"
        alert = until(lambda r: r["type"] == "drift" and r["subject"] == "ocloud01",
                      "ocloud01's drift")
        assert alert["status"] == "confirmed" and "acknowledged" not in alert
        assert lab.act("ocloud", lab.vm("ocloud02").uuid, "destroy") == "shutoff"
        until(lambda r: r["type"] == "drift" and r["subject"] == "ocloud02", "ocloud02's drift")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    assert err == ""
    lic = [r for r in records if r["type"] == "drift" and r["subject"] == "lic"]
    assert lic == [said]


# --------------------------------------------------------------------------- baseline


def test_baseline_acknowledges_exactly_the_confirmed_drifts(tmp_path, lab):
    config = profile(tmp_path / "config.toml", lab)
    before = json.loads(vditui(tmp_path, lab, config, "check", "--json").stdout)
    assert before["exit_code"] == 2 and before["drifts"], before  # 2: hosts unreachable
    original = config.read_text()
    # No terminal to ask on and no --yes: nothing is written.
    refused = vditui(tmp_path, lab, config, "baseline")
    assert refused.returncode == 2 and "--yes" in refused.stderr, refused
    assert config.read_text() == original

    r = vditui(tmp_path, lab, config, "baseline", "--yes", "--reason", "known on day one")
    assert r.returncode == 0, r
    text = config.read_text()
    assert text.startswith(original)  # the team's file, comment included, kept as it was
    rules = tomllib.loads(text)["profiles"]["lab"]["ack"]
    assert {ru["reason"] for ru in rules} == {"known on day one"}
    report = json.loads(vditui(tmp_path, lab, config, "report", "--format", "json").stdout)
    names = {h["id"]: h["name"] for h in report["hosts"]}
    got = [(ru.get("vm"), ru["host"], ru["kind"]) for ru in rules]
    # One rule per VM (exact name) and kind on its host; a host's own drift names no VM.
    want = {(None if d["kind"] in ("unreachable", "offline_but_reachable",
                                                     "running_count") else d["subject"],
             names[d["host_id"]], d["kind"]) for d in before["drifts"]}
    assert sorted(got, key=str) == sorted(want, key=str)
    assert f"baseline: wrote {len(rules)} rules to " in r.stdout  # the lab has a dozen

    after = vditui(tmp_path, lab, config, "check")
    assert after.returncode == 0, after.stdout
    assert after.stdout.startswith(f"consistent: 11 hosts, 42 VMs, 0 drifts (0 critical, "
                                   f"{len(before['drifts'])} acknowledged)")
    again = vditui(tmp_path, lab, config, "baseline", "--yes")
    assert again.returncode == 0 and "no drift to acknowledge" in again.stdout
    assert config.read_text() == text


def test_baseline_kind_narrows_and_a_bad_kind_is_named(tmp_path, drift_lab):
    config = profile(tmp_path / "config.toml", drift_lab)
    r = vditui(tmp_path, drift_lab, config, "baseline", "--yes", "--kind", "vCPU")
    assert r.returncode == 0 and "no drift to acknowledge" in r.stdout, r
    bad = vditui(tmp_path, drift_lab, config, "baseline", "--yes", "--kind", "stat")
    assert bad.returncode == 2
    assert bad.stderr.startswith('vditui: --kind: expected a drift kind: only_in_vdi'), bad
    r = vditui(tmp_path, drift_lab, config, "baseline", "--yes", "--kind", "state")
    assert r.returncode == 0, r
    (rule,) = tomllib.loads(config.read_text())["profiles"]["lab"]["ack"]
    assert rule == {"vm": "class-a-04", "host": "hv-t1", "kind": "state",
                    "reason": f"baseline {date.today().isoformat()}"}


async def test_baseline_asks_before_writing(tmp_path, drift_lab, engine_settings):
    import argparse
    import io

    from vditui.commands.baseline import cmd_baseline
    from vditui.launch import Launch

    config = profile(tmp_path / "config.toml", drift_lab)
    original = config.read_text()
    start = Launch(engine_settings(drift_lab), (), config, "lab")
    args = argparse.Namespace(kind=None, reason="seen", yes=False)
    asked: list[str] = []

    def no(question: str) -> str:
        asked.append(question)
        return "n"

    out = io.StringIO()
    assert await cmd_baseline(args, start, [], out, ask=no) == 0
    assert asked == [f"Write 1 rule to {config} [[profiles.lab.ack]]? [y/N] "]
    assert "vm=class-a-04 host=hv-t1 kind=state" in out.getvalue()
    assert out.getvalue().endswith("baseline: nothing written\n")
    assert config.read_text() == original
    assert await cmd_baseline(args, start, [], io.StringIO(), ask=lambda _q: "y") == 0
    (rule,) = tomllib.loads(config.read_text())["profiles"]["lab"]["ack"]
    assert (rule["vm"], rule["reason"]) == ("class-a-04", "seen")


# --------------------------------------------------------------------------- the exporter


def test_serve_counts_an_acknowledged_drift_apart_from_the_firing_ones(tmp_path, drift_lab):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    config = profile(tmp_path / "config.toml", drift_lab, ACK_A04)
    proc = subprocess.Popen([VDITUI, "serve", "--listen", "127.0.0.1:0", "--config",
                             str(config), "--profile", "lab"], env=env_for(tmp_path, drift_lab),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        where = first.split("http://", 1)[1].split("/", 1)[0]
        url = f"http://{where}/metrics"

        def samples() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
            with urllib.request.urlopen(url, timeout=10) as r:
                text = r.read().decode()
            return {(s.name, frozenset(s.labels.items())): s.value
                    for fam in text_string_to_metric_families(text) for s in fam.samples}

        key = frozenset({("kind", "state")})
        deadline = time.monotonic() + 20
        while (got := samples()).get(("vditui_drifts_acknowledged", key)) != 1.0:
            assert time.monotonic() < deadline, f"no acknowledged drift in {url}"
            time.sleep(0.2)
        assert got[("vditui_drifts", key)] == 0.0  # not firing
        assert got[("vditui_host_drifts", frozenset({("host", "hv-t1")}))] == 0.0
        assert not [k for k in got if k[0] == "vditui_drift_first_seen_timestamp_seconds"
                    and ("subject", "class-a-04") in k[1]]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
