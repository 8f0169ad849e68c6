"""TLS-served lab hosts: a lab CA, server and client certificates made with certtool, libvirt's
real TLS transport behind the lab's fault proxy, and every TLS failure an operator meets,
classified by the probe against the real daemon."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from vditui.core.engine import Engine
from vditui.core.models import ConnState, VirtErrorKind
from vditui.core.uris import UriError, parse, prepare
from vditui.core.virt import probe
from vditui.demo import demo_host_uris, demo_story_uris, start_demo
from vditui.lab import bringup as lab_bringup
from vditui.lab import tls as lab_tls
from vditui.lab.daemon import LabError
from vditui.lab.lab import LIBVIRT_TLS_PORT, Lab
from vditui.lab.scenario import Scenario
from vditui.lab.scenario import parse as parse_scenario

CERTTOOL = shutil.which("certtool")

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        CERTTOOL is None,
        reason="SKIPPED LOUDLY: certtool is not installed, so the lab cannot make certificates; "
               "install gnutls-bin (scripts/setup.sh / `make setup` does)"),
]

SCENARIO = """
name = "tls"
description = "one host reachable only over tls, one over both tcp and tls"

[[pool]]
id = "p1"
name = "p1"

[[host]]
name = "tlsonly"
pool = "p1"
transports = ["tls"]

[[host]]
name = "both"
pool = "p1"
transports = ["tcp", "tls"]

[[vm]]
name = "t-run"
host = "tlsonly"
state = "running"
vcpu = 2
memory_mb = 2048

[[vm]]
name = "t-off"
host = "tlsonly"
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
SYSTEM_CA = Path("/etc/pki/CA/cacert.pem")


def _quiet() -> None:
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def _domains(uri: str) -> dict[str, str]:
    conn = libvirt.open(uri)
    try:
        return {d.name(): STATE_NAMES.get(d.state()[0], "?") for d in conn.listAllDomains()}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return parse_scenario(SCENARIO, "tls.toml")


@pytest.fixture(scope="module")
def tls_lab(scenario: Scenario) -> Iterator[Lab]:
    _quiet()
    with Lab(scenario) as lab:
        yield lab


# --------------------------------------------------------------------------- serving


def test_tls_uri_lists_the_declared_domains(tls_lab: Lab) -> None:
    host = tls_lab.host("tlsonly")
    assert tls_lab.pki is not None
    pki = tls_lab.pki.client_dir
    assert host.tls_uri == f"test+tls://{host.ip}/default?pkipath={pki}"
    assert sorted(p.name for p in pki.iterdir()) == ["cacert.pem", "clientcert.pem",
                                                       "clientkey.pem"]
    assert pki.is_relative_to(tls_lab.workdir)  # nothing in /etc/pki
    _quiet()
    assert _domains(host.tls_uri) == {"t-run": "running", "t-off": "shutoff"}


def test_server_certificate_names_the_host_ip(tls_lab: Lab) -> None:
    host = tls_lab.host("tlsonly")
    assert host.daemon.tls is not None
    info = subprocess.run([str(CERTTOOL), "-i", "--infile", str(host.daemon.tls.cert)],
                          capture_output=True, text=True, check=True).stdout
    assert f"CN={host.ip}" in info and f"IPAddress: {host.ip}" in info
    assert "CN=vditui lab CA" in info  # the issuer
    conf = (host.daemon.dir / "libvirtd.conf").read_text()
    assert "listen_tls = 1" in conf and f'tls_port = "{host.daemon.tls_port}"' in conf
    assert f'tls_allowed_dn_list = ["{lab_tls.ALLOWED_CLIENT_DN}"]' in conf


def test_host_with_tcp_and_tls_serves_both(tls_lab: Lab) -> None:
    host = tls_lab.host("both")
    _quiet()
    assert _domains(host.uri) == {"b-run": "running"}
    assert _domains(host.tls_uri) == {"b-run": "running"}


def test_faults_apply_to_tls_and_tcp_stays_refused(tls_lab: Lab) -> None:
    host = tls_lab.host("tlsonly")
    _quiet()
    try:
        tls_lab.set_fault("tlsonly", "refuse")
        with pytest.raises(libvirt.libvirtError, match="Connection refused"):
            libvirt.open(host.tls_uri)
    finally:
        tls_lab.set_fault("tlsonly", "pass")
    assert _domains(host.tls_uri)  # back
    with pytest.raises(libvirt.libvirtError, match="Connection refused"):
        libvirt.open(host.uri)  # "pass" does not open a transport the host does not serve


def test_describe_shows_the_tls_uri(tls_lab: Lab) -> None:
    text = tls_lab.describe()
    assert tls_lab.host("tlsonly").tls_uri in text
    assert tls_lab.host("both").tls_uri in text
    assert "[no tcp: refused]" in text
    assert tls_lab.client_uris() == {"tlsonly": tls_lab.host("tlsonly").tls_uri}


# --------------------------------------------------------------------------- failures, classified


async def test_probe_ok_over_tls_and_tcp_refused(tls_lab: Lab) -> None:
    host = tls_lab.host("tlsonly")
    ok, refused = await probe([host.tls_uri, host.uri], timeout=5)
    assert ok.ok and ok.transport == "tls", ok.error
    assert not refused.ok and refused.error is not None
    assert refused.error.kind is VirtErrorKind.REFUSED, refused.error


# (variant, kind, what libvirt itself says, what the hint must name)
FAILURES = [
    ("unknown-ca", VirtErrorKind.TLS_UNKNOWN_CA,
     "authentication failed: Failed to verify peer's certificate", "unknown-ca/cacert.pem"),
    ("no-client-cert", VirtErrorKind.TLS_CLIENT_MISSING,
     "Unable to read TLS confirmation: Input/output error", "no-client-cert/clientcert.pem"),
    ("refused-client", VirtErrorKind.TLS_CLIENT_REFUSED,
     "Unable to read TLS confirmation: Input/output error", "tls_allowed_dn_list"),
    ("foreign-client", VirtErrorKind.TLS_CLIENT_REFUSED,
     "failed validation against", "certtool --verify"),
]


@pytest.mark.parametrize(("variant", "kind", "libvirt_says", "hint_names"), FAILURES,
                         ids=[f[0] for f in FAILURES])
async def test_probe_classifies_each_tls_failure(tls_lab: Lab, variant: str,
                                                 kind: VirtErrorKind, libvirt_says: str,
                                                 hint_names: str) -> None:
    uri = tls_lab.host("tlsonly").tls_uri_with(variant)
    (r,) = await probe([uri], timeout=5)
    assert not r.ok and r.error is not None
    assert r.error.kind is kind, r.error
    assert libvirt_says in r.error.message, r.error.message
    assert hint_names in r.error.hint, r.error.hint


async def test_probe_classifies_a_name_the_certificate_does_not_carry(tls_lab: Lab) -> None:
    uri = tls_lab.tls_uri_wrong_name("tlsonly")
    assert parse(uri).host == "localhost"
    (r,) = await probe([uri], timeout=5)
    assert not r.ok and r.error is not None
    assert r.error.kind is VirtErrorKind.TLS_NAME_MISMATCH, r.error
    assert "Failed to verify peer's certificate" in r.error.message
    assert "does not name 'localhost'" in r.error.message
    assert "certificate does not name localhost" in r.error.hint
    # With no_verify=1 the operator accepts any name: the same route then works.
    (ok,) = await probe([uri + "&no_verify=1"], timeout=5)
    assert ok.ok, ok.error


@pytest.mark.skipif(SYSTEM_CA.exists(), reason=f"{SYSTEM_CA} exists on this machine")
async def test_tls_without_pkipath_needs_certificates(tls_lab: Lab) -> None:
    uri = tls_lab.host("tlsonly").tls_uri_with(None)
    assert "pkipath" not in uri
    (r,) = await probe([uri], timeout=5)
    assert not r.ok and r.error is not None
    assert r.error.kind is VirtErrorKind.TLS_CERT, r.error
    assert f"Cannot read CA certificate '{SYSTEM_CA}'" in r.error.message
    assert "?pkipath=DIR" in r.error.hint


async def test_pkipath_that_is_not_a_directory_is_a_clear_error(tls_lab: Lab,
                                                                tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    uri = tls_lab.host("tlsonly").tls_uri_with(missing)
    with pytest.raises(UriError, match=r"pkipath .* is not a directory"):
        prepare(uri)
    (r,) = await probe([uri], timeout=5)
    assert r.error is not None and r.error.kind is VirtErrorKind.INVALID_URI
    assert str(missing) in r.error.message


def _links(engine: Engine) -> dict[str, Any]:
    """Host name -> its HostLink, as the engine tells the faces (a fresh snapshot)."""
    snap = engine.reconcile_now()
    assert snap is not None
    return {link.name: link for link in snap.hosts.values()}


async def test_engine_connects_over_tls_and_reads(tls_lab: Lab, engine_settings: Any,
                                                  start_engine: Any) -> None:
    engine: Engine = await start_engine(engine_settings(tls_lab), watch=False)
    assert await engine.wait_settled(20)
    link = _links(engine)["tlsonly"]
    assert link.view.state is ConnState.CONNECTED
    assert link.view.uri == tls_lab.host("tlsonly").tls_uri
    assert sorted(d.name for d in link.view.domains or ()) == ["t-off", "t-run"]


# --------------------------------------------------------------------------- fallbacks


def test_without_certtool_the_host_is_served_over_tcp_and_said_so(
        scenario: Scenario, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    real = shutil.which
    monkeypatch.setattr(lab_tls.shutil, "which",
                        lambda name, *a, **k: None if name == "certtool" else real(name, *a, **k))
    _quiet()
    with caplog.at_level(logging.WARNING, "vditui.lab"), Lab(scenario) as lab:
        assert set(lab.fallbacks) == {"tlsonly", "both"}
        line = lab.fallbacks["tlsonly"]
        assert "certtool not found" in line and "gnutls-bin" in line
        assert line.endswith("serving it over tcp instead")
        assert _domains(lab.host("tlsonly").uri) == {"t-run": "running", "t-off": "shutoff"}
        assert lab.host("tlsonly").tls_proxy is None
        assert f"FALLBACK: {line}" in lab.describe()
        with pytest.raises(LabError, match="certtool not found"):
            _ = lab.host("tlsonly").tls_uri
        assert lab.client_uris() == {}
    warned = [r.getMessage() for r in caplog.records if "serving it over tcp" in r.getMessage()]
    assert len(warned) == 2 and all("\n" not in w for w in warned)


def test_without_sshd_the_ssh_host_is_served_over_tcp_and_said_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_sshd() -> str:
        raise LabError("sshd not found: install openssh-server")

    monkeypatch.setattr(lab_bringup, "find_sshd", no_sshd)
    scen = parse_scenario(SCENARIO.replace('transports = ["tls"]', 'transports = ["ssh"]'))
    _quiet()
    with Lab(scen) as lab:
        assert "sshd not found" in lab.fallbacks["tlsonly"]
        assert lab.host("tlsonly").sshd is None
        assert _domains(lab.host("tlsonly").uri)
        assert "FALLBACK" in lab.describe()


# --------------------------------------------------------------------------- the default scenario


async def test_default_scenario_ssh_and_tls_hosts_connect_with_the_demos_uris(
        lab: Lab, engine_settings: Any, start_engine: Any) -> None:
    uris = demo_host_uris(lab)
    assert set(uris) == {"ssh-only", "tls-only"}
    # First as an operator without the lab's credentials, then with them.
    assert uris["ssh-only"] == (lab.host("ssh-only").ssh_uri_without_key,
                                lab.host("ssh-only").ssh_uri)
    assert uris["tls-only"] == (lab.host("tls-only").tls_uri_with(None),
                                lab.host("tls-only").tls_uri)
    assert "keyfile=" in uris["ssh-only"][1] and "keyfile=" not in uris["ssh-only"][0]
    assert "pkipath=" in uris["tls-only"][1] and "pkipath=" not in uris["tls-only"][0]
    engine: Engine = await start_engine(
        engine_settings(lab, host_uris={}, uri_templates=(lab.uri_template,)), watch=False)
    assert await engine.wait_settled(20)
    links = _links(engine)
    # Without the demo's URIs both hosts refuse: they serve no tcp.
    for name in ("ssh-only", "tls-only"):
        assert links[name].view.state is ConnState.FAILED
        assert links[name].view.error is not None
        assert links[name].view.error.kind is VirtErrorKind.REFUSED
    # ssh forks a client and nc per connection: give a loaded machine time for it.
    engine2: Engine = await start_engine(engine_settings(lab, host_uris=uris,
                                                         connect_timeout=10.0), watch=False)
    assert await engine2.wait_settled(20)
    links = _links(engine2)
    for name, transport in (("ssh-only", "ssh"), ("tls-only", "tls")):
        view = links[name].view
        assert view.state is ConnState.CONNECTED, (name, view.error)
        assert parse(view.uri).transport == transport
        assert view.uri == uris[name][1]  # the first failed, the second was kept
        want = sorted(v.name for v in lab.scenario.vms_on(name))
        assert sorted(d.name for d in view.domains or ()) == want


async def test_default_scenario_tells_why_plain_attempts_fail(lab: Lab) -> None:
    """The demo's story: ssh refused for lack of a key, tcp refused where it is not served
    (and works elsewhere), tls needs certificates."""
    story = demo_story_uris(lab)
    ssh, tls = lab.host("ssh-only"), lab.host("tls-only")
    assert story == {"ssh-only": [ssh.uri, ssh.ssh_uri_without_key],
                     "tls-only": [tls.uri, tls.tls_uri_with(None)]}
    ssh_tcp, nokey, tls_tcp, tls_plain, tcp_ok = await probe(
        [*story["ssh-only"], *story["tls-only"], lab.host("hv-t1").uri], timeout=5)
    assert nokey.error is not None and nokey.error.kind is VirtErrorKind.SSH_AUTH
    assert "Permission denied (publickey" in nokey.error.message
    assert ssh_tcp.error is not None and ssh_tcp.error.kind is VirtErrorKind.REFUSED
    assert tls_tcp.error is not None and tls_tcp.error.kind is VirtErrorKind.REFUSED
    assert tls_plain.error is not None
    if not SYSTEM_CA.exists():
        assert tls_plain.error.kind is VirtErrorKind.TLS_CERT, tls_plain.error
    assert tcp_ok.ok and tcp_ok.transport == "tcp"


def test_start_demo_hands_the_engine_the_ssh_and_tls_uris() -> None:
    from vditui.launch import Options, resolve

    lab, target = start_demo()
    try:
        assert target.host_uris == demo_host_uris(lab)
        assert {n: u[-1] for n, u in target.host_uris.items()} == lab.client_uris()
        assert set(target.host_uris) == {"ssh-only", "tls-only"}
        assert target.notes == tuple(lab.fallbacks.values())
        start = resolve(Options(demo=True, lab=target), interactive=False)
        for name, uri in target.host_uris.items():
            assert start.settings.host_uris[name] == uri
        assert all(n in start.warnings for n in target.notes)
    finally:
        lab.stop()


def test_tls_port_is_libvirts(tls_lab: Lab) -> None:
    host = tls_lab.host("tlsonly")
    assert host.tls_proxy is not None and LIBVIRT_TLS_PORT == 16514
    assert parse(host.tls_uri).port is None  # the default port: 16514, through the proxy


def test_tls_failure_prints_nothing_on_the_terminal(tls_lab: Lab, tmp_path: Path) -> None:
    """libvirt logs a failed certificate check as a warning, to stderr unless told otherwise;
    vditui sends its client log to a file, so nothing lands behind the TUI."""
    vditui = str(Path(sys.executable).with_name("vditui"))
    assert tls_lab.pki is not None
    template = f"test+tls://{{ip}}/default?pkipath={tls_lab.pki.variant('unknown-ca')}"
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "VDITUI_PASSWORD": tls_lab.password, "LANG": "C.UTF-8"}
    r = subprocess.run([vditui, "probe", "tlsonly", "--url", tls_lab.vdi_url, "--user",
                        tls_lab.username, "--uri-template", template, "--timeout", "3"],
                       env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert r.stderr == "", r.stderr
    assert "tls-unknown-ca" in r.stdout, r.stdout
    logs = list((tmp_path / "state").rglob("libvirt-client.log"))
    assert logs and "known issuer" in logs[0].read_text()


def test_restarted_tls_daemon_serves_tls_again(scenario: Scenario) -> None:
    _quiet()
    with Lab(scenario) as lab:
        host = lab.host("tlsonly")
        port = host.daemon.tls_port
        lab.kill_daemon("tlsonly")
        with pytest.raises(libvirt.libvirtError):
            libvirt.open(host.tls_uri)
        lab.restart_daemon("tlsonly")
        assert host.daemon.tls_port == port
        assert _domains(host.tls_uri) == {"t-run": "running", "t-off": "shutoff"}
