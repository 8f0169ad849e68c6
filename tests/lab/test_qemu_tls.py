"""A qemu host served over TLS only: the lab's ``qemu+tls://IP/system?pkipath=...`` URI opens its
QEMU driver and lists the scenario's real guests; its tcp port refuses; and vditui's engine,
reaching it with the lab's client URI, reads it with no drift.

Every libvirtd also carries libvirt's built-in test driver, and qemu and test hosts share the
TLS port: the URI's driver picks which one answers. The last test pins that down, so that a
change of URI scheme in the lab (or in a template) cannot silently read the stock ``test``
domain instead of the guests.

One small lab for the module: one host, two guests, one running. Skipped with the lab's own
reason where QEMU or certtool cannot run (this suite is meant to run them).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import libvirt
import pytest

from tests.live import live_hosts
from vditui.lab.lab import LIBVIRT_PORT, QEMU_PORT, Lab
from vditui.lab.scenario import parse

pytestmark = [
    pytest.mark.lab,
    pytest.mark.timeout(90),
    pytest.mark.skipif(
        shutil.which("certtool") is None,
        reason="SKIPPED LOUDLY: certtool is not installed, so the lab cannot make certificates; "
               "install gnutls-bin (scripts/setup.sh / `make setup` does)"),
]

SCENARIO = """
name = "qemu-tls"
[[pool]]
id = "p"
name = "Real"

[[host]]
name = "kvm-tls"
pool = "p"
driver = "qemu"
transports = ["tls"]

[[vm]]
name = "q-run"
host = "kvm-tls"
state = "running"
vcpu = 1
vcpu_max = 2
memory_mb = 64

[[vm]]
name = "q-off"
host = "kvm-tls"
state = "off"
vcpu = 2
memory_mb = 2048
current_memory_mb = 1024
"""

STATE_NAMES = {1: "running", 3: "paused", 5: "shutoff"}


def _quiet() -> None:
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def _read(uri: str) -> tuple[str, dict[str, str]]:
    """(driver type, guest name -> state) through ``uri``."""
    conn = libvirt.open(uri)
    try:
        return conn.getType(), {d.name(): STATE_NAMES.get(d.state()[0], "?")
                                for d in conn.listAllDomains()}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def tls_qemu_lab() -> Iterator[Lab]:
    _quiet()
    with Lab(parse(SCENARIO, "tests/lab/test_qemu_tls.py")) as lab:
        if lab.fallbacks:
            pytest.skip(f"the lab cannot serve this host as asked here: {lab.fallbacks}")
        yield lab


def test_the_tls_uri_opens_the_qemu_driver_and_lists_the_real_guests(tls_qemu_lab: Lab) -> None:
    lab = tls_qemu_lab
    h = lab.host("kvm-tls")
    assert h.driver == "qemu" and h.transports == ("tls",)
    assert lab.pki is not None
    assert h.tls_uri == f"qemu+tls://{h.ip}/system?pkipath={lab.pki.client_dir}"
    assert h.client_uri == h.tls_uri
    assert lab.client_uris() == {"kvm-tls": h.tls_uri}
    kind, guests = _read(h.tls_uri)
    assert kind == "QEMU"
    assert guests == {"q-run": "running", "q-off": "shutoff"}


def test_the_tcp_uris_to_it_are_refused(tls_qemu_lab: Lab) -> None:
    h = tls_qemu_lab.host("kvm-tls")
    assert h.uri == f"qemu+tcp://{h.ip}:{QEMU_PORT}/system"
    for uri in (h.uri, f"qemu+tcp://{h.ip}:{LIBVIRT_PORT}/system", f"test+tcp://{h.ip}/default"):
        with pytest.raises(libvirt.libvirtError) as err:
            libvirt.open(uri)
        assert "refused" in str(err.value).lower(), (uri, str(err.value))


def test_describe_says_qemu_over_tls_only(tls_qemu_lab: Lab) -> None:
    lines = tls_qemu_lab.describe().splitlines()
    h = tls_qemu_lab.host("kvm-tls")
    [row] = [ln for ln in lines if ln.strip().startswith("kvm-tls ")]
    assert "[no tcp: refused]" in row and "[qemu]" in row
    assert f"tls: {h.tls_uri}" in [ln.strip() for ln in lines]
    assert not any("FALLBACK" in ln or "unavailable" in ln for ln in lines)


async def test_the_engine_reads_it_over_tls_with_no_drift(tls_qemu_lab: Lab, engine_settings,
                                                          start_engine) -> None:
    lab = tls_qemu_lab
    engine = await start_engine(engine_settings(lab), watch=False)
    assert await engine.wait_settled(20)
    assert {s.name: s.uri for s in live_hosts(engine).values()} == \
        {"kvm-tls": lab.host("kvm-tls").tls_uri}
    cmp = engine.reconcile_now().comparison
    assert cmp.drifts == ()
    rows = {r.name: r for r in cmp.vms}
    assert set(rows) == {"q-run", "q-off"}
    assert all(r.checked for r in rows.values())
    assert (rows["q-run"].virt.vcpu, rows["q-run"].vdi.vcpu) == (1, 1)
    assert (rows["q-off"].virt.memory_kib, rows["q-off"].vdi.memory_mb) == (2048 * 1024, 2048)


def test_a_test_tls_uri_to_it_opens_the_stock_test_driver(tls_qemu_lab: Lab) -> None:
    """Both drivers share the TLS port: ``test+tls`` reaches the libvirtd's built-in test
    driver (one stock ``test`` domain), never the guests; hence the lab gives ``qemu+tls``."""
    h = tls_qemu_lab.host("kvm-tls")
    kind, guests = _read(h.tls_uri.replace("qemu+tls://", "test+tls://", 1)
                         .replace("/system?", "/default?", 1))
    assert kind == "TEST"
    assert guests == {"test": "running"}


def test_a_tls_qemu_host_whose_guests_cannot_start_falls_back_keeping_tls(monkeypatch,
                                                                          fresh_lab) -> None:
    """QEMU runs but refuses the guests (here: an emulator that is not there): the test driver
    serves the host, still over TLS only with the lab's certificates, and the lab says so."""
    from vditui.lab import host as lab_host
    from vditui.lab import qemu

    if qemu.unavailable():
        pytest.skip(f"QEMU cannot run here: {qemu.unavailable()}")
    monkeypatch.setattr(lab_host, "guest_xml", lambda vm, kind: qemu.guest_xml(vm, kind).replace(
        f"<emulator>{shutil.which(qemu.QEMU_BINARY)}</emulator>",
        "<emulator>/nonexistent/qemu-system-x86_64</emulator>"))
    _quiet()
    lab = fresh_lab(parse(SCENARIO, "tests/lab/test_qemu_tls.py"))
    h = lab.host("kvm-tls")
    assert h.driver == "test" and h.transports == ("tls",)
    assert set(lab.fallbacks) == {"kvm-tls"}
    assert lab.fallbacks["kvm-tls"].startswith("kvm-tls: QEMU unavailable (its QEMU libvirtd "
                                               "failed (")
    assert "/nonexistent/qemu-system-x86_64" in lab.fallbacks["kvm-tls"]
    assert lab.pki is not None and h.daemon.tls is not None
    assert h.tls_uri == f"test+tls://{h.ip}/default?pkipath={lab.pki.client_dir}"
    assert _read(h.tls_uri) == ("TEST", {"q-run": "running", "q-off": "shutoff"})
    with pytest.raises(libvirt.libvirtError):
        libvirt.open(h.uri)
    text = lab.describe()
    assert "QEMU unavailable, test driver instead for kvm-tls: its QEMU libvirtd failed" in text
    assert "[no tcp: refused]  [qemu: test driver instead]" in text


def test_a_failing_sshd_is_not_blamed_on_qemu(monkeypatch) -> None:
    """Only the hypervisor's own failures fall back to the test driver: a qemu host whose
    sshd does not come up stops the lab with the sshd's reason, not "QEMU unavailable"."""
    from vditui.lab import bringup, qemu, sshd
    from vditui.lab.daemon import LabError

    if qemu.unavailable() or bringup._ssh_unavailable():
        pytest.skip(f"QEMU or ssh cannot run here: {qemu.unavailable()} "
                    f"{bringup._ssh_unavailable()}")

    def not_ready(self: object, *args: object, **kwargs: object) -> None:
        raise LabError("sshd did not answer (simulated)")

    monkeypatch.setattr(sshd.LabSshd, "wait_ready", not_ready)
    _quiet()
    lab = Lab(parse(SCENARIO.replace('transports = ["tls"]', 'transports = ["tls", "ssh"]'),
                    "tests/lab/test_qemu_tls.py"))
    with pytest.raises(LabError, match=r"^kvm-tls: sshd did not answer \(simulated\)$"):
        lab.start()
    assert lab.fallbacks == {}
