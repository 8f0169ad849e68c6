"""SSH-served lab hosts: a private sshd per host with a lab-generated key, reached by libvirt's
own ssh transport, so "no SSH key" and "unknown host key" failures are real and reproducible."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import libvirt
import pytest

from vditui.core.models import VirtErrorKind
from vditui.core.virt import probe
from vditui.lab import sshd as lab_sshd
from vditui.lab.daemon import LabError, LibvirtDaemon
from vditui.lab.lab import LIBVIRT_PORT, Lab, LabHost
from vditui.lab.scenario import Scenario, parse
from vditui.lab.sshd import LabSshd

SSHD = shutil.which("sshd") or next(
    (p for p in ("/usr/sbin/sshd", "/sbin/sshd") if os.access(p, os.X_OK)), None)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        SSHD is None,
        reason="SKIPPED LOUDLY: sshd is not installed, so the lab cannot serve libvirt over ssh; "
               "install openssh-server (scripts/setup.sh / `make setup` does)"),
]

SCENARIO = """
name = "ssh"
description = "one host reachable only over ssh, one over both tcp and ssh"

[[pool]]
id = "p1"
name = "p1"

[[host]]
name = "sshonly"
pool = "p1"
transports = ["ssh"]

[[host]]
name = "both"
pool = "p1"
transports = ["tcp", "ssh"]

[[vm]]
name = "s-run"
host = "sshonly"
state = "running"
vcpu = 2
memory_mb = 2048

[[vm]]
name = "s-off"
host = "sshonly"
state = "shutoff"
vcpu = 1
memory_mb = 1024

[[vm]]
name = "b-run"
host = "both"
state = "running"
vcpu = 1
memory_mb = 1024
"""

STATE_NAMES = {1: "running", 3: "paused", 5: "shutoff"}


def _quiet() -> None:
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _domains(uri: str) -> dict[str, str]:
    conn = libvirt.open(uri)
    try:
        return {d.name(): STATE_NAMES.get(d.state()[0], "?") for d in conn.listAllDomains()}
    finally:
        conn.close()


def _open_error(uri: str) -> str:
    with pytest.raises(libvirt.libvirtError) as info:
        libvirt.open(uri).close()
    return info.value.get_error_message() or str(info.value)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return parse(SCENARIO, "ssh.toml")


@pytest.fixture(scope="module")
def ssh_lab(scenario: Scenario) -> Iterator[Lab]:
    _quiet()
    with Lab(scenario) as lab:
        yield lab


def test_ssh_uri_lists_the_declared_domains(ssh_lab: Lab) -> None:
    host = ssh_lab.host("sshonly")
    assert host.ssh_uri.startswith(f"test+ssh://{lab_sshd.current_user()}@{host.ip}:")
    for param in ("keyfile=", "socket=", "proxy=netcat", "no_tty=1", "command="):
        assert param in host.ssh_uri
    _quiet()
    assert _domains(host.ssh_uri) == {"s-run": "running", "s-off": "shutoff"}


def test_ssh_uri_without_key_is_denied(ssh_lab: Lab) -> None:
    host = ssh_lab.host("sshonly")
    assert "keyfile=" not in host.ssh_uri_without_key
    _quiet()
    message = _open_error(host.ssh_uri_without_key)
    assert "Permission denied (publickey" in message, message


def test_ssh_only_host_refuses_tcp(ssh_lab: Lab) -> None:
    host = ssh_lab.host("sshonly")
    _quiet()
    message = _open_error(host.uri)
    assert "refused" in message.lower(), message
    with pytest.raises(OSError):  # nothing behind the proxy's refusal either
        socket.create_connection((host.ip, LIBVIRT_PORT), timeout=2).close()


def test_host_with_tcp_and_ssh_serves_both(ssh_lab: Lab) -> None:
    host = ssh_lab.host("both")
    _quiet()
    assert _domains(host.uri) == {"b-run": "running"}
    assert _domains(host.ssh_uri) == {"b-run": "running"}


def test_describe_shows_the_ssh_uri(ssh_lab: Lab) -> None:
    text = ssh_lab.describe()
    assert ssh_lab.host("sshonly").ssh_uri in text
    assert ssh_lab.host("both").ssh_uri in text
    assert "[no tcp: refused]" in text


def test_tcp_only_host_has_no_ssh_uri(scenario: Scenario) -> None:
    spec = replace(scenario.host("both"), transports=("tcp",))
    host = LabHost(spec, "127.0.0.1", LibvirtDaemon("both", Path("/nonexistent"), "127.0.0.1", 1))
    with pytest.raises(LabError, match="not served over ssh"):
        _ = host.ssh_uri


async def test_probe_classifies_refused_ssh_auth_and_ok(ssh_lab: Lab) -> None:
    host = ssh_lab.host("sshonly")
    refused, denied, ok = await probe([host.uri, host.ssh_uri_without_key, host.ssh_uri],
                                      timeout=5)
    assert not refused.ok and refused.error is not None
    assert refused.error.kind is VirtErrorKind.REFUSED, refused.error
    assert not denied.ok and denied.error is not None
    assert denied.error.kind is VirtErrorKind.SSH_AUTH, denied.error
    assert "ssh-copy-id" in denied.error.hint
    assert ok.ok, ok.error
    assert ok.transport == "ssh"


async def test_unknown_host_key_is_not_accepted(ssh_lab: Lab, tmp_path: Path) -> None:
    host = ssh_lab.host("sshonly")
    assert host.sshd is not None
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    wrapper = host.sshd.write_wrapper(tmp_path / "ssh-empty-known-hosts", empty)
    uri = host.sshd.uri(host.socket_path, command=wrapper)
    assert "keyfile=" in uri  # the key is fine: only the host key is unknown
    (result,) = await probe([uri], timeout=5)
    assert not result.ok and result.error is not None
    assert result.error.kind is VirtErrorKind.SSH_HOST_KEY, result.error
    assert empty.read_text() == ""  # and ssh did not quietly learn it


def test_stop_leaves_no_sshd_and_no_files(scenario: Scenario) -> None:
    _quiet()
    lab = Lab(scenario).start()
    try:
        sshds = [h.sshd for h in lab.hosts.values() if h.sshd is not None]
        assert len(sshds) == 2
        pids = [s.pid for s in sshds]
        assert all(p is not None and _pid_alive(p) for p in pids)
        dirs = [s.dir for s in sshds]
        assert all((d / "sshd_config").exists() for d in dirs)
        assert _domains(lab.host("sshonly").ssh_uri)  # a session came and went
    finally:
        lab.stop()
    assert not any(_pid_alive(p) for p in pids if p is not None)
    assert not lab.workdir.exists()


def test_missing_sshd_says_install_openssh_server(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setattr(lab_sshd.shutil, "which", lambda _name: None)
    monkeypatch.setattr(lab_sshd.os, "access", lambda _p, _m: False)
    with pytest.raises(LabError, match="install openssh-server"):
        LabSshd(tmp_path, "127.0.0.1", 2222).start()


def test_sshd_failure_says_why(ssh_lab: Lab, tmp_path: Path) -> None:
    host = ssh_lab.host("sshonly")
    assert host.sshd is not None
    # The port of the host's own running sshd is taken: a second one there cannot bind.
    second = LabSshd(tmp_path / "second", host.ip, host.sshd.port)
    second.start()
    try:
        with pytest.raises(LabError, match="already in use"):
            second.wait_ready(timeout=5)
    finally:
        second.stop()
    assert not second.alive
