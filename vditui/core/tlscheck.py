"""Why a libvirt TLS connection failed, when libvirt's own message does not say.

libvirt's client gives one message for two different faults -- "authentication failed: Failed
to verify peer's certificate" for a server certificate from an unknown CA and for one that does
not name the host -- and one more for two others -- "Unable to read TLS confirmation:
Input/output error" when the server drops a client without a certificate and one whose
certificate it refuses. The detail goes to libvirt's log, not to the caller.

:func:`explain` finds out what an operator needs to know: it looks at the client's files (the
URI's ``pkipath`` or libvirt's default places) and, for a certificate libvirt would not verify,
repeats the handshake with Python's ``ssl`` against the same CA to learn which check failed.
Blocking (one TCP connection, bounded): call it from a worker thread.
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from vditui.core.uris import LibvirtUri, UriError, parse

TLS_PORT = 16514
SYSTEM_FILES = (Path("/etc/pki/CA/cacert.pem"), Path("/etc/pki/libvirt/clientcert.pem"),
                Path("/etc/pki/libvirt/private/clientkey.pem"))


@dataclass(frozen=True, slots=True)
class ClientFiles:
    """Where libvirt's client reads its CA, certificate and key for a URI."""

    ca: Path
    cert: Path
    key: Path

    @property
    def where(self) -> str:
        """The directory to name to an operator (the pkipath, or the CA's directory)."""
        return str(self.ca.parent)


def client_files(u: LibvirtUri) -> ClientFiles:
    """The files libvirt uses for ``u``: ``pkipath``'s when given; else, for a normal user,
    ``~/.pki/libvirt/`` where each exists, then the system's ``/etc/pki``."""
    pki = u.param("pkipath")
    if pki:
        d = Path(pki)
        return ClientFiles(d / "cacert.pem", d / "clientcert.pem", d / "clientkey.pem")
    files = list(SYSTEM_FILES)
    if os.geteuid() != 0:
        user = Path.home() / ".pki" / "libvirt"
        for i, name in enumerate(("cacert.pem", "clientcert.pem", "clientkey.pem")):
            if (user / name).exists():
                files[i] = user / name
    return ClientFiles(*files)


def explain(uri: str, message: str, timeout: float = 3.0) -> str:
    """A clause saying which TLS check failed, to add to libvirt's ``message``; "" when the
    URI is not TLS, the message not one of the ambiguous ones, or the cause cannot be found."""
    try:
        u = parse(uri)
    except UriError:
        return ""
    if u.transport != "tls":
        return ""
    low = message.lower()
    files = client_files(u)
    if "unable to read tls confirmation" in low:
        if not files.cert.exists():
            return (f"no client certificate at {files.cert}, and the server requires one")
        return (f"the server closed the connection after the handshake: it refused the client "
                f"certificate {files.cert}")
    if "failed to verify peer's certificate" in low:
        return _check_server(u, files, timeout)
    return ""


def _check_server(u: LibvirtUri, files: ClientFiles, timeout: float) -> str:
    """Handshake again with ``ssl``, trusting only the client's CA, to see what it rejects."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(str(files.ca))
        if files.cert.exists() and files.key.exists():
            ctx.load_cert_chain(str(files.cert), str(files.key))
    except (OSError, ssl.SSLError):
        return ""
    try:
        with socket.create_connection((u.host, u.port or TLS_PORT), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=u.host):
            return ""
    except ssl.SSLCertVerificationError as exc:
        why = exc.verify_message or str(exc)
        if exc.verify_code in (62, 64):  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH
            return f"the server's certificate does not name {u.host!r} ({why})"
        if exc.verify_code in (2, 18, 19, 20, 21):  # the issuer is not the client's CA
            return f"the server's certificate was not issued by the CA in {files.ca} ({why})"
        return f"the server's certificate failed verification ({why})"
    except (OSError, ssl.SSLError):
        return ""
