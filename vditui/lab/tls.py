"""The lab's TLS certificates, made with GnuTLS's ``certtool`` at lab start.

One throwaway CA signs a server certificate per TLS-served host (its loopback IP as CN and as
IP SAN, as libvirt's client checks it) and one client certificate. Everything lives under the
lab's work dir; nothing is read from or written to the system's ``/etc/pki``.

Clients reach a TLS host with ``...+tls://IP/...?pkipath=DIR``, where DIR holds the three files
libvirt's client looks for: ``cacert.pem``, ``clientcert.pem`` and ``clientkey.pem``. Besides
the working DIR (:attr:`LabPki.client_dir`), the lab makes the pkipaths operators get wrong, so
every TLS failure can be reproduced against a real daemon (:attr:`LabPki.variants`):

* ``unknown-ca`` -- a consistent set from another CA: the server's certificate has an unknown
  issuer.
* ``no-client-cert`` -- the right CA, but no client certificate or key.
* ``refused-client`` -- a client certificate from the right CA whose name the hosts' libvirtd
  does not allow (``tls_allowed_dn_list``): the server refuses it after the handshake.
* ``foreign-client`` -- the right CA with a client certificate another CA signed: libvirt's
  client refuses to offer it.

RSA keys: libvirt insists that certificates permit key encipherment, which ECDSA keys do not.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vditui.lab.errors import LabError

CA_NAME = "vditui lab CA"
CLIENT_DN_PARTS = (("country", "XX"), ("organization", "vditui lab"),
                   ("cn", "vditui-lab-client"))
#: The client name every lab libvirtd allows (``tls_allowed_dn_list``), as GnuTLS writes it.
ALLOWED_CLIENT_DN = "C=XX,O=vditui lab,CN=vditui-lab-client"
VARIANTS = ("unknown-ca", "no-client-cert", "refused-client", "foreign-client")
_DAYS = 30


def find_certtool() -> str:
    path = shutil.which("certtool")
    if path is None:
        raise LabError("certtool not found: install gnutls-bin with "
                       "`sudo apt-get install --no-install-recommends gnutls-bin` "
                       "(or run `make setup`)")
    return path


@dataclass(frozen=True)
class ServerFiles:
    """What one libvirtd needs to serve TLS."""

    key: Path
    cert: Path
    ca: Path
    allowed_dn: tuple[str, ...] = (ALLOWED_CLIENT_DN,)


class LabPki:
    """A CA and the certificates and pkipath directories made from it, under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.dir = Path(workdir)
        self.ca = (self.dir / "ca" / "cakey.pem", self.ca_cert)
        self._certtool = ""

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca" / "cacert.pem"

    @property
    def client_dir(self) -> Path:
        """The working pkipath: this CA, and a client certificate the hosts accept."""
        return self.dir / "client"

    def variant(self, name: str) -> Path:
        """The pkipath of one failure (see the module docstring)."""
        if name not in VARIANTS:
            raise LabError(f"no pkipath variant {name!r}; use one of {', '.join(VARIANTS)}")
        return self.dir / name

    # ------------------------------------------------------------------ making
    def _run(self, *args: str) -> None:
        r = subprocess.run([self._certtool, *args], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60, check=False)
        if r.returncode != 0:
            why = r.stderr.decode(errors="replace").strip().splitlines()
            raise LabError(f"certtool {args[0]} failed: {why[-1] if why else r.returncode}")

    def _key(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._run("--generate-privkey", "--key-type=rsa", "--bits=2048", "--outfile", str(path))
        path.chmod(0o600)
        return path

    def _template(self, path: Path, lines: list[str]) -> Path:
        path.write_text("\n".join([*lines, f"expiration_days = {_DAYS}"]) + "\n",
                        encoding="utf-8")
        return path

    def _ca(self, where: Path, name: str) -> tuple[Path, Path]:
        key = self._key(where / "cakey.pem")
        tpl = self._template(where / "ca.info", [f'cn = "{name}"', "ca", "cert_signing_key"])
        cert = where / "cacert.pem"
        self._run("--generate-self-signed", "--load-privkey", str(key), "--template", str(tpl),
                  "--outfile", str(cert))
        return key, cert

    def _issue(self, ca: tuple[Path, Path], key: Path, out: Path, lines: list[str]) -> Path:
        templates = self.dir / "templates"  # not in a pkipath: libvirt wants only its files
        templates.mkdir(parents=True, exist_ok=True)
        tpl = self._template(templates / f"{out.parent.name}-{out.stem}.info",
                             [*lines, "encryption_key", "signing_key"])
        self._run("--generate-certificate", "--load-privkey", str(key),
                  "--load-ca-privkey", str(ca[0]), "--load-ca-certificate", str(ca[1]),
                  "--template", str(tpl), "--outfile", str(out))
        return out

    def _client(self, ca: tuple[Path, Path], where: Path, cn: str) -> None:
        key = self._key(where / "clientkey.pem")
        parts = [f'{k} = "{cn if k == "cn" else v}"' for k, v in CLIENT_DN_PARTS]
        self._issue(ca, key, where / "clientcert.pem", [*parts, "tls_www_client"])

    def make(self) -> LabPki:
        """The CA, the working client pkipath and the failure variants."""
        self._certtool = find_certtool()
        self._ca(self.dir / "ca", CA_NAME)
        other = self._ca(self.dir / "other-ca", "another CA")
        self._client(self.ca, self.client_dir, "vditui-lab-client")
        shutil.copy(self.ca_cert, self.client_dir / "cacert.pem")

        unknown = self.variant("unknown-ca")
        self._client(other, unknown, "vditui-lab-client")
        shutil.copy(other[1], unknown / "cacert.pem")

        missing = self.variant("no-client-cert")
        missing.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca_cert, missing / "cacert.pem")

        refused = self.variant("refused-client")
        self._client(self.ca, refused, "not-on-the-list")
        shutil.copy(self.ca_cert, refused / "cacert.pem")

        foreign = self.variant("foreign-client")
        foreign.mkdir(parents=True, exist_ok=True)
        for f in ("clientcert.pem", "clientkey.pem"):
            shutil.copy(unknown / f, foreign / f)
        shutil.copy(self.ca_cert, foreign / "cacert.pem")
        return self

    def server(self, name: str, ip: str) -> ServerFiles:
        """A key and certificate for the host ``name`` at ``ip`` (CN and IP SAN)."""
        where = self.dir / "servers" / name
        key = self._key(where / "serverkey.pem")
        cert = self._issue(self.ca, key, where / "servercert.pem",
                           ['organization = "vditui lab"', f'cn = "{ip}"', f"ip_address = {ip}",
                            "tls_www_server"])
        return ServerFiles(key=key, cert=cert, ca=self.ca_cert)
