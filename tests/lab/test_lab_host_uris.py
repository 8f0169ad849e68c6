"""Several URIs per host, on the default scenario's ssh-only and tls-only hosts: the session
tries them in order and keeps the first that connects, and the host's probe shows why the
others failed (the demo's story: no SSH key, no TLS certificates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vditui.core.engine import Engine
from vditui.core.models import ConnState, VirtErrorKind
from vditui.core.uris import parse
from vditui.demo import demo_host_uris
from vditui.lab.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(90)]

SYSTEM_CA = Path("/etc/pki/CA/cacert.pem")


async def test_each_host_connects_through_its_second_uri_and_probes_the_first(
        lab: Lab, engine_settings: Any, start_engine: Any) -> None:
    ssh, tls = lab.host("ssh-only"), lab.host("tls-only")
    if ssh.sshd is None or tls.pki is None:
        pytest.skip(f"the lab fell back: {lab.fallbacks}")
    uris = demo_host_uris(lab)
    keyless, keyed = ssh.ssh_uri_without_key, ssh.ssh_uri
    plain, with_pki = tls.tls_uri_with(None), tls.tls_uri
    assert uris == {"ssh-only": (keyless, keyed), "tls-only": (plain, with_pki)}
    # ssh forks a client and nc per attempt: give a loaded machine time for two of them.
    engine: Engine = await start_engine(
        engine_settings(lab, host_uris=uris, connect_timeout=10.0), watch=False)
    assert await engine.wait_settled(30)
    snap = engine.reconcile_now()
    assert snap is not None
    links = {link.name: link for link in snap.hosts.values()}
    for name, (first, second) in uris.items():
        link = links[name]
        # Tried in the order given, before the templates.
        assert list(link.uris[:2]) == [first, second], link.uris
        assert link.view.state is ConnState.CONNECTED, (name, link.view.error)
        assert link.view.uri == second  # the first failed, so the session kept the second
        want = sorted(v.name for v in lab.scenario.vms_on(name))
        assert sorted(d.name for d in link.view.domains or ()) == want

    results = {r.uri: r for r in await engine.probe_host(links["ssh-only"].host_id)}
    denied = results[keyless]
    assert not denied.ok and denied.error is not None
    assert denied.error.kind is VirtErrorKind.SSH_AUTH, denied.error
    assert "Permission denied (publickey" in denied.error.message
    assert "ssh-copy-id" in denied.error.hint
    assert results[keyed].ok and results[keyed].transport == "ssh"
    assert results[ssh.uri].error is not None  # tcp, from the template: not served here
    assert results[ssh.uri].error.kind is VirtErrorKind.REFUSED

    results = {r.uri: r for r in await engine.probe_host(links["tls-only"].host_id)}
    assert results[with_pki].ok and parse(with_pki).transport == "tls"
    assert not results[plain].ok and results[plain].error is not None
    if not SYSTEM_CA.exists():
        assert results[plain].error.kind is VirtErrorKind.TLS_CERT, results[plain].error
