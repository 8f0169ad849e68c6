"""The real ``vditui act`` and ``vditui audit`` in subprocesses against the lab: no terminal and
no --yes refuses, a terminal asks (no sends nothing, yes sends), --dry-run prints the exact
requests and sends nothing, --read-only and ``read_only = true`` refuse, --json's document,
and the audit trail the run left (mode 0600) as ``vditui audit`` prints it."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.cli_env import cli_env, lab_args
from vditui.core.exitcodes import ExitCode
from vditui.lab.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

VDITUI = str(Path(sys.executable).with_name("vditui"))


def env_for(home: Path, lab: Lab) -> dict[str, str]:
    return cli_env(home, lab.password)


def target(lab: Lab) -> list[str]:
    return lab_args(lab)


def vditui(home: Path, lab: Lab, *args: str, with_target: bool = True,
           ) -> subprocess.CompletedProcess[str]:
    argv = [VDITUI, *args, *(target(lab) if with_target else [])]
    return subprocess.run(argv, env=env_for(home, lab), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=80, check=False)


def posts(lab: Lab) -> dict[str, int]:
    assert lab.vdi is not None
    return {k: n for k, n in lab.vdi.requests.items() if k.startswith("POST ")
            and "login" not in k}


@pytest.fixture
def home(tmp_path: Path, lab: Lab) -> Path:
    assert lab.vdi is not None
    lab.vdi.action_delay = 0.3
    lab.vdi.reset_counters()
    return tmp_path / "home"


def trail(home: Path) -> Path:
    return home / "state" / "vditui" / "audit.jsonl"


def test_without_a_terminal_or_yes_nothing_is_sent(home: Path, lab: Lab) -> None:
    r = vditui(home, lab, "act", "sync", "--vm", "office-11")
    assert r.returncode == 2, r.stderr
    assert "not a terminal, and --yes not given: nothing sent" in r.stderr
    assert "POST /ocloud/v1/domain/" in r.stderr  # the plan was shown first
    assert posts(lab) == {}


def test_dry_run_prints_exactly_what_would_be_sent(home: Path, lab: Lab) -> None:
    vm = lab.vm("office-11")
    assert vm.vdi is not None
    r = vditui(home, lab, "act", "shutdown", "--vm", "office-11", "--force", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "shutdown (force): 1 VM(s) on hv-o2" in r.stdout
    assert (f'would send 1 request(s):\n  POST /ocloud/v1/domain/close '
            f'{{"idList": ["{vm.vdi.id}"], "isForce": 1}}\n') in r.stdout
    j = vditui(home, lab, "act", "shutdown", "--vm", "office-*", "--force", "--dry-run",
               "--json")
    doc = json.loads(j.stdout)
    assert doc["dry_run"] is True and doc["exit_code"] == 0
    assert [v["name"] for v in doc["send"]] == ["office-11", "office-12"]  # confirmed drift
    assert doc["requests"] == [{"method": "POST", "path": "/ocloud/v1/domain/close",
                                "body": {"idList": [v["vm_id"] for v in doc["send"]],
                                         "isForce": 1}}]
    on_host = json.loads(vditui(home, lab, "act", "sync", "--host", "hv-t1", "--dry-run",
                                "--json").stdout)
    assert [v["name"] for v in on_host["send"]] == ["class-a-04"]
    nowhere = vditui(home, lab, "act", "sync", "--host", "hv-nope", "--dry-run")
    assert nowhere.returncode == 2 and "--host 'hv-nope': no such host" in nowhere.stderr
    assert posts(lab) == {} and not trail(home).exists()


def test_read_only_flag_and_profile_refuse(home: Path, lab: Lab, tmp_path: Path) -> None:
    r = vditui(home, lab, "act", "sync", "--vm", "office-11", "--yes", "--read-only", "--json")
    assert r.returncode == 2
    assert "read-only mode (--read-only / read_only = true): actions are disabled" in r.stderr
    assert json.loads(r.stdout)["error"].startswith("read-only mode")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.lab]\nurl = "{lab.vdi_url}"\nusername = "{lab.username}"\n'
                      f'uri_templates = {json.dumps(list(lab.uri_templates))}\n'
                      "connect_timeout = 2.0\ngrace = 0.0\nread_only = true\n")
    r = vditui(home, lab, "act", "sync", "--vm", "office-11", "--yes", "--config", str(config),
               with_target=False)
    assert r.returncode == 2 and "read-only mode" in r.stderr, r.stderr
    assert posts(lab) == {}


def test_yes_acts_follows_and_audits(home: Path, lab: Lab) -> None:
    r = vditui(home, lab, "act", "sync", "--vm", "office-11", "--yes", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    (outcome,) = doc["outcomes"]
    assert outcome["name"] == "office-11" and outcome["phase"] == "resolved"
    assert "vditui act: resolved   office-11: resolved " in r.stderr  # progress as it happens
    assert posts(lab) == {"POST /ocloud/v1/domain/{id}/sync-status": 1}
    path = trail(home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["event"] for x in lines] == ["request", "outcome"]
    assert {x["action_id"] for x in lines} == {doc["action_id"]}

    table = vditui(home, lab, "audit", with_target=False)
    assert table.returncode == 0, table.stderr
    said, head, row = table.stdout.splitlines()
    assert said == f"actions on {lab.vdi_url} as admin (--all-platforms: every platform's)" \
        or said.startswith("actions on every platform's records")
    assert head.split() == ["time", "user", "action", "VMs", "outcome"]
    assert " admin " in row and " sync " in row and "office-11" in row
    assert row.endswith("exit 0: 1 resolved")
    as_json = vditui(home, lab, "audit", "--json", "--since", "1h", with_target=False)
    assert [json.loads(x) for x in as_json.stdout.splitlines()] == lines
    later = vditui(home, lab, "audit", "--json", "--since", "2999-01-01", with_target=False)
    assert later.returncode == 0 and later.stdout == ""
    bad = vditui(home, lab, "audit", "--since", "yesterday", with_target=False)
    assert bad.returncode == 2 and "expected a span like 90m" in bad.stderr


def ask_on_a_terminal(home: Path, lab: Lab, answer: str) -> tuple[int, str]:
    """``vditui act sync --vm office-11`` with its stdin and stderr on a pty, answering the
    question with ``answer``; (exit code, what the terminal showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([VDITUI, "act", "sync", "--vm", "office-11", *target(lab)],
                            env=env_for(home, lab), stdin=slave, stderr=slave,
                            stdout=subprocess.PIPE, text=True)
    os.close(slave)
    shown, answered = b"", False
    try:
        while proc.poll() is None or select.select([master], [], [], 0)[0]:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed its end
                    break
                shown += chunk
            if not answered and b"[y/N] " in shown:
                os.write(master, answer.encode() + b"\n")
                answered = True
        code = proc.wait(timeout=60)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert answered, shown.decode(errors="replace")
    return code, shown.decode(errors="replace")


def test_a_terminal_is_asked_and_only_yes_sends(home: Path, lab: Lab) -> None:
    code, shown = ask_on_a_terminal(home, lab, "n")
    assert code == 2 and "Send sync to 1 VM(s)? [y/N]" in shown
    assert "not confirmed: nothing sent" in shown
    assert posts(lab) == {}
    code, shown = ask_on_a_terminal(home, lab, "y")
    assert code == 0, shown
    assert "office-11: resolved " in shown
    assert posts(lab) == {"POST /ocloud/v1/domain/{id}/sync-status": 1}


@pytest.mark.parametrize(("argv", "name", "route", "after"), [
    (["start"], "class-a-04", "POST /ocloud/v1/domain/start", "running"),
    (["shutdown", "--force"], "office-11", "POST /ocloud/v1/domain/close", "shutoff"),
    (["reboot"], "office-11", "POST /ocloud/v1/domain/reboot", "running"),
    (["sync-host"], "office-12", "POST /ocloud/v1/host/{id}/sync-status", "paused"),
])
def test_every_action_from_the_command_line_reaches_agreement(
        home: Path, lab: Lab, argv: list[str], name: str, route: str, after: str) -> None:
    r = vditui(home, lab, "act", *argv, "--vm", name, "--yes", "--json")
    assert r.returncode == 0, r.stderr
    (outcome,) = json.loads(r.stdout)["outcomes"]
    assert (outcome["name"], outcome["phase"]) == (name, "resolved")
    assert posts(lab) == {route: 1}
    vm = lab.vm(name)
    assert vm.virt is not None
    assert lab.virt_state(vm.virt.host, vm.uuid) == after


def test_two_act_processes_at_once_send_once(home: Path, lab: Lab) -> None:
    assert lab.vdi is not None
    # Each start request is held 1.5 s before the platform acts, and the VM follows 3 s later:
    # without a lock across processes both would re-check "off" and both would send.
    lab.vdi.set_action_fault("hang", seconds=1.5, act=True)
    lab.vdi.action_delay = 3.0
    argv = [VDITUI, "act", "start", "--vm", "class-a-04", "--yes", *target(lab)]
    procs = [subprocess.Popen(argv, env=env_for(home, lab), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    done = [(p, *p.communicate(timeout=80)) for p in procs]
    assert posts(lab) == {"POST /ocloud/v1/domain/start": 1}
    (winner, w_out, w_err), = [d for d in done if d[0].returncode == 0]
    (_, _, l_err), = [d for d in done if d[0].returncode == 2]
    assert "class-a-04: resolved" in w_out, w_err
    assert f"another action on {lab.vdi_url} is running: pid {winner.pid} on " in l_err, l_err
    assert "(start class-a-04); nothing sent; wait for it, or run again with --wait" in l_err
    assert lab.vdi.wait_actions(10)
    assert [o.vm_name for o in lab.vdi.actions.outcomes] == ["class-a-04"]  # acted once
    # --wait: the second waits for the first, then re-checks (the drift has gone) and sends
    # nothing.
    lab.vdi.set_action_fault(None)
    lab.vdi.reset_counters()
    lab.vdi.action_delay = 2.0
    argv = [VDITUI, "act", "sync", "--vm", "office-11", "--yes", "--wait", *target(lab)]
    procs = [subprocess.Popen(argv, env=env_for(home, lab), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    done = [(p, *p.communicate(timeout=80)) for p in procs]
    assert posts(lab) == {"POST /ocloud/v1/domain/{id}/sync-status": 1}
    (waited,) = [e for _, _, e in done if "vditui act: waiting for another action on" in e]
    # Both agree in the end: one resolved it, the other found the drift gone.
    assert [p.returncode for p, _, _ in done] == [0, 0], [e for _, _, e in done]
    assert "refused    office-11: drift gone: " in waited, waited


def test_sigterm_during_the_follow_up_still_writes_the_outcome(home: Path, lab: Lab) -> None:
    assert lab.vdi is not None
    lab.vdi.action_delay = 6.0  # accepted at once, carried out later: a long follow-up
    proc = subprocess.Popen([VDITUI, "act", "start", "--vm", "class-a-04", "--yes",
                             *target(lab)], env=env_for(home, lab), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "accepted   class-a-04: accepted by the platform" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, "".join(seen) + rest
    assert "interrupted by SIGTERM" in rest
    lines = [json.loads(x) for x in trail(home).read_text().splitlines()]
    assert [x["event"] for x in lines] == ["request", "outcome"]
    outcome = lines[1]
    assert outcome["interrupted"] is True and outcome["exit_code"] == 1
    assert [(o["name"], o["phase"], o["message"]) for o in outcome["outcomes"]] == [
        ("class-a-04", "unresolved",
         "class-a-04: interrupted after sending; platform answered: accepted")]
    assert outcome["answers"][0]["eventIdList"]  # what the platform answered
    table = vditui(home, lab, "audit", with_target=False)
    assert table.stdout.splitlines()[-1].endswith("exit 1: 1 unresolved")
    assert posts(lab) == {"POST /ocloud/v1/domain/start": 1}
    assert lab.vdi.wait_actions(15)
