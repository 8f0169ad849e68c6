"""The TLS part of the error-to-hint table, on the messages libvirt 9.0 really gave against the
lab (tests/lab/test_lab_tls.py provokes each one), and the checks on TLS URI parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from vditui.core.models import VirtErrorKind
from vditui.core.probe import classify
from vditui.core.tlscheck import client_files, explain
from vditui.core.uris import UriError, parse, prepare

PKI = "/srv/pki/ops"
URI = f"qemu+tls://10.0.0.5/system?pkipath={PKI}"
PEER = "authentication failed: Failed to verify peer's certificate"
CONFIRM = "Unable to read TLS confirmation: Input/output error"

# (libvirt's message, plus what tlscheck.explain adds where libvirt hides the cause) -> kind
CASES = [
    (f"{PEER}: the server's certificate was not issued by the CA in {PKI}/cacert.pem "
     "(unable to get local issuer certificate)", VirtErrorKind.TLS_UNKNOWN_CA),
    (f"{PEER}: the server's certificate does not name 'hv-01' (Hostname mismatch, certificate "
     "is not valid for 'hv-01'.)", VirtErrorKind.TLS_NAME_MISMATCH),
    (f"{CONFIRM}: no client certificate at {PKI}/clientcert.pem, and the server requires one",
     VirtErrorKind.TLS_CLIENT_MISSING),
    (f"{CONFIRM}: the server closed the connection after the handshake: it refused the client "
     f"certificate {PKI}/clientcert.pem", VirtErrorKind.TLS_CLIENT_REFUSED),
    (f"Our own certificate {PKI}/clientcert.pem failed validation against {PKI}/cacert.pem: "
     "The certificate hasn't got a known issuer.", VirtErrorKind.TLS_CLIENT_REFUSED),
    ("Cannot read CA certificate '/etc/pki/CA/cacert.pem': No such file or directory",
     VirtErrorKind.TLS_CERT),
    (PEER, VirtErrorKind.TLS_CERT),  # cause not found: still a certificate problem
    ("unable to connect to server at '10.0.0.5:16514': Connection refused",
     VirtErrorKind.REFUSED),
]


@pytest.mark.parametrize(("message", "kind"), CASES)
def test_tls_messages_get_their_kind(message: str, kind: VirtErrorKind) -> None:
    assert classify(URI, message).kind is kind


def test_each_tls_hint_is_one_line_naming_what_to_fix() -> None:
    hints = {kind: classify(URI, message).hint for message, kind in CASES}
    assert all("\n" not in h for h in hints.values())
    assert f"{PKI}/cacert.pem" in hints[VirtErrorKind.TLS_UNKNOWN_CA]
    assert "10.0.0.5's certificate does not name 10.0.0.5" in hints[VirtErrorKind.TLS_NAME_MISMATCH]
    assert "certtool -i" in hints[VirtErrorKind.TLS_NAME_MISMATCH]
    missing = hints[VirtErrorKind.TLS_CLIENT_MISSING]
    assert f"{PKI}/clientcert.pem" in missing and f"{PKI}/clientkey.pem" in missing
    refused = hints[VirtErrorKind.TLS_CLIENT_REFUSED]
    assert "tls_allowed_dn_list" in refused and "certtool --verify" in refused
    assert f"virt-pki-query-dn {PKI}/clientcert.pem" in refused
    assert PKI in hints[VirtErrorKind.TLS_CERT]
    assert len(set(hints.values())) == len(hints)  # each kind says something of its own


def test_without_pkipath_the_hint_says_how_to_give_one() -> None:
    err = classify("qemu+tls://10.0.0.5/system",
                   "Cannot read CA certificate '/etc/pki/CA/cacert.pem': No such file")
    assert err.kind is VirtErrorKind.TLS_CERT and "?pkipath=DIR" in err.hint
    refused = classify("qemu+tls://10.0.0.5/system",
                       "Our own certificate /etc/pki/libvirt/clientcert.pem failed validation")
    assert "/etc/pki/libvirt/clientcert.pem" in refused.hint


def test_ssh_messages_are_not_taken_for_tls() -> None:
    err = classify("qemu+ssh://root@10.0.0.5/system",
                   "Cannot recv data: root@10.0.0.5: Permission denied (publickey).")
    assert err.kind is VirtErrorKind.SSH_AUTH


def test_explain_tells_a_missing_client_certificate_from_a_refused_one(tmp_path: Path) -> None:
    uri = f"qemu+tls://10.0.0.5/system?pkipath={tmp_path}"
    assert "no client certificate at" in explain(uri, CONFIRM)
    (tmp_path / "clientcert.pem").write_text("x")
    assert "refused the client certificate" in explain(uri, CONFIRM)
    assert explain(uri, "Connection refused") == ""
    assert explain(f"qemu+tcp://10.0.0.5/system?pkipath={tmp_path}", CONFIRM) == ""


def test_client_files_follow_pkipath_or_libvirts_defaults() -> None:
    f = client_files(parse(URI))
    assert (str(f.ca), str(f.cert), str(f.key)) == (
        f"{PKI}/cacert.pem", f"{PKI}/clientcert.pem", f"{PKI}/clientkey.pem")
    d = client_files(parse("qemu+tls://10.0.0.5/system"))
    assert d.ca.name == "cacert.pem" and d.key.name == "clientkey.pem"


def test_pkipath_and_no_verify_are_checked(tmp_path: Path) -> None:
    with pytest.raises(UriError, match="pkipath must be an absolute path"):
        parse("qemu+tls://10.0.0.5/system?pkipath=pki")
    with pytest.raises(UriError, match="no_verify must be 0 or 1"):
        parse("qemu+tls://10.0.0.5/system?no_verify=yes")
    with pytest.raises(UriError, match=r"is not a directory: it must hold cacert\.pem"):
        prepare(f"qemu+tls://10.0.0.5/system?pkipath={tmp_path / 'gone'}")
    ok = f"qemu+tls://10.0.0.5/system?pkipath={tmp_path}&no_verify=1"
    assert prepare(ok) == ok


def test_refused_hint_names_the_uris_own_port() -> None:
    from vditui.core.probe import hint

    refused = VirtErrorKind.REFUSED
    assert "on 10.0.0.5:16509:" in hint(refused, "qemu+tcp://10.0.0.5/system")
    assert "on 10.0.0.5:16510:" in hint(refused, "qemu+tcp://10.0.0.5:16510/system")
    assert "on 10.0.0.5:16514:" in hint(refused, "qemu+tls://10.0.0.5/system")
    assert "on 10.0.0.5:1234:" in hint(refused, "qemu+tls://10.0.0.5:1234/system")
