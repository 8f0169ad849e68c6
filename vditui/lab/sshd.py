"""A private ``sshd`` per SSH-served lab host, so libvirt's ``+ssh`` transport runs for real.

Everything lives in the lab's work dir: a throwaway host key and client key pair (made with
``ssh-keygen``, no passphrase), an ``authorized_keys`` holding only the lab's client key, a
``known_hosts`` holding only the lab's host key, the ``sshd_config``, pid file and log. Nothing
under ``~/.ssh`` or ``/etc/ssh`` is read or written.

libvirt's ``ssh`` transport runs the OpenSSH client, which has no URI parameter for a
known_hosts file. Rather than switch host-key checking off (``no_verify=1``), the lab writes small
wrappers around ``ssh`` and names them with ``command=``: each pins ssh to the lab's own files
(``-F /dev/null``, ``UserKnownHostsFile``, ``StrictHostKeyChecking=yes``, no agent), so host keys
ARE verified, and the user's own keys, agent and config never leak into a lab run:

* ``ssh-lab`` -- verifies the host key against the lab's ``known_hosts``; identities come only
  from the URI's ``keyfile=`` (``-i``).
* ``ssh-lab-nokey`` -- the same, with no identity at all (``IdentityFile=none``): the keyless
  URI fails with ssh's "Permission denied (publickey)", as a host without the operator's key does.
* :meth:`LabSshd.write_wrapper` makes others, e.g. one with an empty known_hosts file to
  reproduce "Host key verification failed".

The remote end of the transport is ``nc -U <the host's libvirtd socket>`` (``proxy=netcat`` and
``socket=``): each lab daemon has its own socket dir, which the default remote helper
(``virt-ssh-helper``) would not find.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from vditui.lab.daemon import LabError, _die_with_parent, free_port, stop_process

SSH_PORT = 2222
PRIVSEP_DIR = Path("/run/sshd")


def find_sshd() -> str:
    path = shutil.which("sshd") or next(
        (p for p in ("/usr/sbin/sshd", "/sbin/sshd") if os.access(p, os.X_OK)), None)
    if path is None:
        raise LabError("sshd not found: install openssh-server with "
                       "`sudo apt-get install --no-install-recommends openssh-server` "
                       "(or run `make setup`)")
    return path


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise LabError(f"{name} not found: install {package} with "
                       f"`sudo apt-get install --no-install-recommends {package}` "
                       "(or run `make setup`)")
    return path


def _port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def current_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _password_locked(user: str) -> bool:
    """Whether ``user``'s shadow password is locked (``!...``), as it is for root on many
    desktops. sshd with ``UsePAM no`` turns such an account away even for key logins (it logs
    "account is locked" at a level the lab does not keep); only root's sshd can read
    ``/etc/shadow``, so only root is affected."""
    try:
        for line in Path("/etc/shadow").read_text(errors="replace").splitlines():
            name, _, rest = line.partition(":")
            if name == user:
                return rest.startswith("!")
    except OSError:
        pass
    return False


class LabSshd:
    """An ``sshd`` on ``ip:port`` that lets the current user in with the lab's key only."""

    def __init__(self, workdir: Path, ip: str, port: int | None = None) -> None:
        self.dir = Path(workdir)
        self.ip = ip
        self.port = port or (SSH_PORT if _port_free(ip, SSH_PORT) else free_port(ip))
        self.user = current_user()
        self.proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ files
    host_key = property(lambda self: self.dir / "ssh_host_ed25519_key")
    client_key = property(lambda self: self.dir / "id_ed25519")
    authorized_keys = property(lambda self: self.dir / "authorized_keys")
    known_hosts = property(lambda self: self.dir / "known_hosts")
    config = property(lambda self: self.dir / "sshd_config")
    pid_file = property(lambda self: self.dir / "sshd.pid")
    log_path = property(lambda self: self.dir / "sshd.log")
    wrapper = property(lambda self: self.dir / "ssh-lab")
    wrapper_nokey = property(lambda self: self.dir / "ssh-lab-nokey")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _keygen(self, path: Path, comment: str) -> None:
        keygen = _tool("ssh-keygen", "openssh-client")
        for p in (path, path.with_name(path.name + ".pub")):
            p.unlink(missing_ok=True)
        r = subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment,
                            "-f", str(path)], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=30, check=False)
        if r.returncode != 0:
            raise LabError(f"ssh-keygen failed for {path}: "
                           f"{r.stderr.decode(errors='replace').strip() or r.returncode}")

    def write_wrapper(self, path: Path, known_hosts: Path, with_identity: bool = True) -> Path:
        """An executable ``ssh`` wrapper for a URI's ``command=``: host keys checked strictly
        against ``known_hosts`` only; no config file, no agent; no identity at all unless
        ``with_identity`` (then only what the URI's ``keyfile=`` passes as ``-i``)."""
        ssh = _tool("ssh", "openssh-client")
        opts = ["-F", "/dev/null", "-o", f"UserKnownHostsFile={known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "UpdateHostKeys=no", "-o", "IdentitiesOnly=yes",
                "-o", "IdentityAgent=none", "-o", "PasswordAuthentication=no",
                "-o", "KbdInteractiveAuthentication=no", "-o", "ConnectTimeout=10"]
        if not with_identity:
            opts += ["-o", "IdentityFile=none"]
        path.write_text("#!/bin/sh\n# written by the vditui lab: ssh pinned to the lab's own "
                        "host key and identities\n"
                        f"exec {ssh} {' '.join(opts)} \"$@\"\n", encoding="utf-8")
        path.chmod(0o755)
        return path

    def prepare(self) -> None:
        """Keys, authorized_keys, known_hosts, wrappers and sshd_config in the work dir."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._keygen(self.host_key, f"vditui-lab-host@{self.ip}")
        self._keygen(self.client_key, "vditui-lab-client")
        client_pub = self.client_key.with_name(self.client_key.name + ".pub").read_text()
        self.authorized_keys.write_text(client_pub, encoding="utf-8")
        self.authorized_keys.chmod(0o600)
        host_pub = self.host_key.with_name(self.host_key.name + ".pub").read_text().split()
        self.known_hosts.write_text(f"[{self.ip}]:{self.port} {host_pub[0]} {host_pub[1]}\n",
                                    encoding="utf-8")
        self.write_wrapper(self.wrapper, self.known_hosts)
        self.write_wrapper(self.wrapper_nokey, self.known_hosts, with_identity=False)
        lines = [
            f"ListenAddress {self.ip}:{self.port}",
            f"HostKey {self.host_key}",
            f"PidFile {self.pid_file}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "StrictModes no",
            f"UsePAM {'yes' if self._use_pam() else 'no'}",
            f"AllowUsers {self.user}",
            "AllowAgentForwarding no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PrintMotd no",
            "MaxStartups 100:30:200",
            "LogLevel ERROR",
        ]
        if os.getuid() == 0:
            lines.append("PermitRootLogin prohibit-password")
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _use_pam(self) -> bool:
        # PAM only where sshd would otherwise refuse a locked account (see _password_locked):
        # with PAM, key logins to it work, as on a real host.
        return (os.getuid() == 0 and Path("/etc/pam.d/sshd").exists()
                and _password_locked(self.user))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Prepare the files and start sshd (call from a thread that outlives the lab: the
        child is told to die with the thread that started it)."""
        binary = find_sshd()
        # The far end of libvirt's ssh transport (proxy=netcat) runs `nc -U <socket>`.
        _tool("nc", "netcat-openbsd")
        self.prepare()
        if os.getuid() == 0 and not PRIVSEP_DIR.is_dir():
            # sshd running as root insists on its privilege separation dir.
            try:
                PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
            except OSError as exc:
                raise LabError(f"cannot create {PRIVSEP_DIR} (sshd's privilege separation "
                               f"dir): {exc}") from None
        out = open(self.dir / "sshd.stderr", "wb")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [binary, "-D", "-f", str(self.config), "-E", str(self.log_path)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                preexec_fn=_die_with_parent, close_fds=True)
        except OSError as exc:
            raise LabError(f"cannot run {binary}: {exc}") from None
        finally:
            out.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until sshd accepts TCP connections; on failure, say why and stop it.

        Ready means: sshd wrote its pid file (it does so once it listens), so the port is
        ours and not someone else's, and a connection there gets an SSH banner. The check
        answers with a banner of its own, so sshd does not log an aborted key exchange."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                why = self._why()
                self.stop()
                raise LabError(f"sshd on {self.ip}:{self.port} exited at start: {why}")
            try:
                if self.pid_file.read_text().strip() == str(self.proc.pid):
                    with socket.create_connection((self.ip, self.port), timeout=2) as c:
                        if c.recv(256).startswith(b"SSH-"):
                            c.sendall(b"SSH-2.0-vditui-lab-probe\r\n")
                            return
            except OSError:
                pass
            time.sleep(0.01)
        why = self._why()
        self.stop()
        raise LabError(f"sshd did not listen on {self.ip}:{self.port} within {timeout:.0f} s: "
                       f"{why}")

    def _why(self) -> str:
        text = ""
        for f in (self.dir / "sshd.stderr", self.log_path):
            with contextlib.suppress(OSError):
                text += f.read_text(errors="replace")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        last = lines[-1] if lines else "no message (see sshd's log)"
        if "Address already in use" in text:
            return f"address {self.ip}:{self.port} already in use ({last})"
        if "privilege separation" in text.lower():
            return f"{last}; sshd running as root needs {PRIVSEP_DIR} (owned by root, mode 755)"
        return last[-400:]

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    # ------------------------------------------------------------------ URIs
    def uri(self, socket_path: Path | str, path: str = "/default", driver: str = "test",
            keyfile: Path | bool = True, command: Path | None = None) -> str:
        """A libvirt ``driver+ssh`` URI to this sshd, relayed by ``nc -U socket_path`` on the
        far side. ``keyfile=True`` uses the lab's client key, a path another key; ``False``
        gives none, and then the keyless wrapper unless ``command`` names another."""
        key = self.client_key if keyfile is True else (keyfile or None)
        cmd = command or (self.wrapper if key else self.wrapper_nokey)
        params: list[tuple[str, str]] = []
        if key:
            params.append(("keyfile", str(key)))
        params += [("socket", str(socket_path)), ("proxy", "netcat"), ("no_tty", "1"),
                   ("command", str(cmd))]
        query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in params)
        return f"{driver}+ssh://{self.user}@{self.ip}:{self.port}{path}?{query}"
