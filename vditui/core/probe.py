"""Connection-method probe: try every candidate URI for a host, and say why each failed.

The error-to-hint table turns libvirt's raw messages into a kind and one line an operator can
act on; the raw message is kept as detail. Pure: :func:`vditui.core.virt.probe` runs the
attempts (virt imports this module, never the other way round).
"""

from __future__ import annotations

from dataclasses import dataclass

from vditui.core.models import VirtError, VirtErrorKind
from vditui.core.present import transport
from vditui.core.uris import UriError, parse

# libvirt virErrorNumber values we classify by code (libvirt/virterror.h).
ERR_NO_SUPPORT = 3
ERR_INVALID_ARG = 8
ERR_AUTH_FAILED = 45
ERR_AUTH_CANCELLED = 79
ERR_AUTH_UNAVAILABLE = 94

# (kind, substrings of libvirt's message, lowercase) — first match wins, so specific ones first.
_PATTERNS: tuple[tuple[VirtErrorKind, tuple[str, ...]], ...] = (
    (VirtErrorKind.SSH_HOST_KEY, ("host key verification failed", "no ecdsa host key",
                                  "no ed25519 host key", "no rsa host key", "host key is not known",
                                  "remote host identification has changed")),
    (VirtErrorKind.SSH_AUTH, ("permission denied (publickey", "permission denied, please try again",
                              "too many authentication failures", "no more authentication methods",
                              "failed to authenticate", "ssh-agent")),
    # The TLS kinds below the generic one match libvirt's own words and the cause that
    # tlscheck.explain adds where libvirt's message hides it.
    (VirtErrorKind.TLS_NAME_MISMATCH, ("does not name", "owner does not match the hostname",
                                       "hostname mismatch", "ip address mismatch")),
    (VirtErrorKind.TLS_UNKNOWN_CA, ("was not issued by the ca in",)),
    (VirtErrorKind.TLS_CLIENT_MISSING, ("no client certificate at",)),
    (VirtErrorKind.TLS_CLIENT_REFUSED, ("refused the client certificate", "our own certificate")),
    (VirtErrorKind.TLS_CERT, ("ca certificate", "cacert", "client certificate", "clientcert",
                              "certificate", "gnutls", "tls handshake", "x509")),
    (VirtErrorKind.NAME_UNRESOLVED, ("name or service not known", "could not resolve hostname",
                                     "temporary failure in name resolution",
                                     "no address associated with hostname", "unable to resolve")),
    (VirtErrorKind.REFUSED, ("connection refused",)),
    (VirtErrorKind.TIMEOUT, ("timed out", "connection timed out", "no answer within",
                             "keepalive timeout", "no route to host", "network is unreachable")),
    (VirtErrorKind.AUTH_REQUIRED, ("authentication required", "authentication failed",
                                   "auth", "sasl", "polkit", "access denied")),
    (VirtErrorKind.INVALID_URI, ("no connection driver available", "unable to parse uri",
                                 "unsupported transport", "invalid uri", "unknown transport",
                                 "driver is not supported", "no hypervisor driver")),
    (VirtErrorKind.CONNECTION_LOST, ("end of file", "broken pipe", "connection reset",
                                     "client socket is closed", "cannot recv data",
                                     "cannot write data", "connection closed")),
)


def classify(uri: str, message: str, code: int | None = None,
             domain: int | None = None) -> VirtError:
    """Turn a libvirt failure into a typed :class:`VirtError` with a hint."""
    low = message.lower()
    kind = VirtErrorKind.OTHER
    for k, needles in _PATTERNS:
        if any(n in low for n in needles):
            kind = k
            break
    else:
        if code in (ERR_AUTH_FAILED, ERR_AUTH_CANCELLED, ERR_AUTH_UNAVAILABLE):
            kind = VirtErrorKind.AUTH_REQUIRED
        elif code in (ERR_NO_SUPPORT, ERR_INVALID_ARG):
            kind = VirtErrorKind.INVALID_URI
    return VirtError(kind=kind, uri=uri, message=message.strip() or "no message", code=code,
                     domain=domain, hint=hint(kind, uri))


def timeout_error(uri: str, seconds: float, during: str = "connect") -> VirtError:
    msg = f"no answer within {seconds:g} s ({during})"
    return VirtError(kind=VirtErrorKind.TIMEOUT, uri=uri, message=msg,
                     hint=hint(VirtErrorKind.TIMEOUT, uri))


def invalid_uri_error(uri: str, exc: UriError) -> VirtError:
    return VirtError(kind=VirtErrorKind.INVALID_URI, uri=uri, message=str(exc),
                     hint=hint(VirtErrorKind.INVALID_URI, uri))


def hint(kind: VirtErrorKind, uri: str) -> str:
    """One line an operator can act on, specific to the transport and host of ``uri``."""
    port: int | None = None
    try:
        u = parse(uri)
        host, user, transport, port = u.host or "the host", u.user or "root", u.transport, u.port
    except UriError:
        host, user, transport = "the host", "root", ""
    if kind is VirtErrorKind.REFUSED:
        if transport == "tcp":
            return (f"nothing listens on {host}:{port or 16509}: enable libvirtd's TCP listener "
                    "(listen_tcp=1, or libvirtd-tcp.socket) or try qemu+ssh://")
        if transport == "tls":
            return (f"nothing listens on {host}:{port or 16514}: enable libvirtd's TLS "
                    "listener or try ssh")
        return f"{host} refused the connection: is the service running and the port open?"
    if kind is VirtErrorKind.TIMEOUT:
        return (f"{host} accepted or dropped the connection but never answered: check firewalls, "
                "a hung libvirtd, or the network path")
    if kind is VirtErrorKind.NAME_UNRESOLVED:
        return f"cannot resolve {host}: use the IP address or fix DNS / /etc/hosts"
    if kind is VirtErrorKind.SSH_HOST_KEY:
        return f"ssh does not know {host}'s host key: run `ssh {user}@{host}` once and verify it"
    if kind is VirtErrorKind.SSH_AUTH:
        return (f"no SSH key accepted: run `ssh-copy-id {user}@{host}` "
                "(or add keyfile=... to the URI)")
    if kind in _TLS_HINTS:
        return _tls_hint(kind, uri, host)
    if kind is VirtErrorKind.AUTH_REQUIRED:
        return (f"libvirtd on {host} wants authentication (SASL/polkit): configure credentials or "
                "use an SSH URI with a key")
    if kind is VirtErrorKind.INVALID_URI:
        return "check the URI: e.g. qemu+tcp://10.0.0.5/system or qemu+ssh://root@10.0.0.5/system"
    if kind is VirtErrorKind.CONNECTION_LOST:
        return f"the connection to {host} dropped; vditui reconnects by itself"
    return "see the detail for libvirt's own message"


_TLS_HINTS = {
    VirtErrorKind.TLS_CERT:
        "TLS needs certificates: check cacert.pem, clientcert.pem and clientkey.pem in {dir}",
    VirtErrorKind.TLS_UNKNOWN_CA:
        "{host}'s certificate is not from the CA in {ca}: put the CA that signed it there",
    VirtErrorKind.TLS_NAME_MISMATCH:
        "{host}'s certificate does not name {host}: use a name or IP it lists (`certtool -i "
        "--infile servercert.pem` on the host) or reissue it",
    VirtErrorKind.TLS_CLIENT_MISSING:
        "no client certificate: put {cert} and {key}, signed by {host}'s CA, in place",
    VirtErrorKind.TLS_CLIENT_REFUSED:
        "{host} refused {cert}: it must be signed by {host}'s CA (`certtool --verify "
        "--load-ca-certificate {ca} --infile {cert}`) and its name (`virt-pki-query-dn {cert}`) "
        "be in tls_allowed_dn_list",
}
_NO_PKIPATH = ("TLS needs certificates: add ?pkipath=DIR to the URI, DIR holding cacert.pem, "
               "clientcert.pem and clientkey.pem (else libvirt reads /etc/pki)")


def _tls_hint(kind: VirtErrorKind, uri: str, host: str) -> str:
    try:
        pki = parse(uri).param("pkipath")
    except UriError:
        pki = None
    if pki:
        d = pki.rstrip("/") or "/"
        ca, cert, key = f"{d}/cacert.pem", f"{d}/clientcert.pem", f"{d}/clientkey.pem"
    elif kind is VirtErrorKind.TLS_CERT:
        return _NO_PKIPATH
    else:  # libvirt's default places (a normal user's ~/.pki/libvirt/ comes first)
        d = "/etc/pki"
        ca, cert, key = ("/etc/pki/CA/cacert.pem", "/etc/pki/libvirt/clientcert.pem",
                         "/etc/pki/libvirt/private/clientkey.pem")
    return _TLS_HINTS[kind].format(host=host, dir=d, ca=ca, cert=cert, key=key)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One candidate URI's outcome."""

    uri: str
    ok: bool
    latency: float  # seconds until success or failure
    libvirt_version: str = ""
    hostname: str = ""
    error: VirtError | None = None

    @property
    def transport(self) -> str:
        return transport(self.uri)
