"""Secrets typed into host URIs never come out (issue 21, "URI secrets leak"): a password in a
URI's user part and a ``?passphrase=`` value, planted in the config's host URIs, are looked for
in every output -- probe (text, JSON), check (text, JSON), report (md, JSON, CSV), watch, the
history, the log file and the audit trail -- and must appear in none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.cli_env import cli_env
from vditui.lab.lab import Lab

VDITUI = str(Path(sys.executable).with_name("vditui"))
URI_PASSWORD = "Uri-Pa55w0rd-7731"
PASSPHRASE = "Pass-Phrase-4419"
SECRETS = (URI_PASSWORD, PASSPHRASE)


@pytest.fixture
def secret_lab(fresh_lab: Callable[..., Lab], subset: Any, default_scenario: Any) -> Lab:
    return fresh_lab(subset(default_scenario, ["ocloud", "hv-t1", "hv-refuse"], "urisecrets"))


def with_secrets(uri: str) -> tuple[str, str]:
    """``uri`` with a password in its user part, and with a passphrase in its query."""
    scheme, _, rest = uri.partition("://")
    joiner = "&" if "?" in uri else "?"
    return f"{scheme}://admin:{URI_PASSWORD}@{rest}", f"{uri}{joiner}passphrase={PASSPHRASE}"


def write_config(path: Path, lab: Lab) -> Path:
    hosts = []
    for name in ("hv-t1", "hv-refuse"):
        uris = with_secrets(lab.hosts[name].uri)
        hosts.append(f'[profiles.lab.hosts."{name}"]\nuris = {json.dumps(list(uris))}\n')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'default_profile = "lab"\n\n[profiles.lab]\nurl = "{lab.vdi_url}"\n'
                    f'username = "{lab.username}"\npassword_env = "VDITUI_PASSWORD"\n'
                    f'uri_templates = {json.dumps(list(lab.uri_templates))}\n'
                    'connect_timeout = 2.0\ngrace = 0.0\n\n' + "\n".join(hosts))
    path.chmod(0o600)
    return path


def test_uri_secrets_are_in_no_output(secret_lab: Lab, tmp_path: Path) -> None:
    lab = secret_lab
    home = tmp_path / "home"
    home.mkdir()
    config = write_config(home / "config" / "vditui" / "config.toml", lab)
    env = cli_env(home, lab.password, VDITUI_LOG_LEVEL="DEBUG")
    seen: dict[str, str] = {}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([VDITUI, *args, "--config", str(config)], env=env, cwd=home,
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, check=False)
        seen[f"stdout of {' '.join(args)}"] = done.stdout
        seen[f"stderr of {' '.join(args)}"] = done.stderr
        return done

    probe = run("probe", "hv-t1")
    assert "admin:***@" in probe.stdout, probe.stdout  # the URIs are there, redacted
    run("probe", "hv-t1", "--json")
    run("probe", "hv-refuse")
    check = run("check")
    assert "hv-refuse" in check.stdout + check.stderr
    run("check", "--json")
    for fmt in ("md", "json", "csv"):
        out = tmp_path / f"report.{fmt}"
        run("report", "--format", fmt, "-o", str(out))
        seen[str(out)] = out.read_text()
    watch = subprocess.Popen([VDITUI, "watch", "--jsonl", "--config", str(config)], env=env,
                             cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL)
    time.sleep(6)
    watch.send_signal(signal.SIGINT)
    out, err = watch.communicate(timeout=20)
    seen["stdout of watch"], seen["stderr of watch"] = out, err
    assert "hv-refuse" in out
    act = run("act", "sync", "--vm", "class-a-04", "--yes")
    assert "Traceback" not in act.stderr, act.stderr
    history = run("history", "--json", "--since", "1h")
    assert "hv-refuse" in history.stdout, history.stderr
    run("history", "--since", "1h")
    state = home / "state" / "vditui"
    files = [p for p in state.rglob("*") if p.is_file()]
    assert {"vditui.log", "audit.jsonl", "history.sqlite3"} <= {p.name for p in files}, files
    for p in files:
        seen[str(p)] = p.read_bytes().decode("utf-8", "replace")
    leaks = [(where, s) for where, text in seen.items() for s in SECRETS if s in text]
    assert leaks == [], leaks
    # The URIs do show, so the sweep above looked at text that carried them.
    assert any("passphrase=***" in text for text in seen.values())
    assert os.environ.get("VDITUI_PASSWORD") != URI_PASSWORD
