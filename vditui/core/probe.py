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
    try:
        u = parse(uri)
        host, user, transport = u.host or "the host", u.user or "root", u.transport
    except UriError:
        host, user, transport = "the host", "root", ""
    if kind is VirtErrorKind.REFUSED:
        if transport == "tcp":
            return (f"nothing listens on {host}:16509: enable libvirtd's TCP listener "
                    "(listen_tcp=1, or libvirtd-tcp.socket) or try qemu+ssh://")
        if transport == "tls":
            return f"nothing listens on {host}:16514: enable libvirtd's TLS listener or try ssh"
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
    if kind is VirtErrorKind.TLS_CERT:
        return ("TLS certificates missing or invalid: the CA goes in /etc/pki/CA/cacert.pem, the "
                "client's in /etc/pki/libvirt/clientcert.pem and private/clientkey.pem "
                "(~/.pki/libvirt/ for a normal user)")
    if kind is VirtErrorKind.AUTH_REQUIRED:
        return (f"libvirtd on {host} wants authentication (SASL/polkit): configure credentials or "
                "use an SSH URI with a key")
    if kind is VirtErrorKind.INVALID_URI:
        return "check the URI: e.g. qemu+tcp://10.0.0.5/system or qemu+ssh://root@10.0.0.5/system"
    if kind is VirtErrorKind.CONNECTION_LOST:
        return f"the connection to {host} dropped; vditui reconnects by itself"
    return "see the detail for libvirt's own message"


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
