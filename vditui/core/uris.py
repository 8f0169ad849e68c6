"""libvirt connection URIs: parsed properly, validated, and built from templates.

A URI typed by an operator is parsed and checked here before libvirt sees it; it is never handed
to a shell. ``driver[+transport]://[user@][host][:port]/path[?query]``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

TRANSPORTS = ("tcp", "tls", "ssh", "libssh", "libssh2", "unix", "ext")
DEFAULT_TEMPLATES = ("qemu+tcp://{ip}/system", "qemu+ssh://root@{ip}/system",
                     "qemu+tls://{ip}/system")
_SCHEME = re.compile(r"^[a-z][a-z0-9]*(\+[a-z0-9]+)?$")
# Query parameters that make libvirt run a program or read a file of the user's choosing are
# only allowed because the operator typed them; we never add them ourselves.
_SSH = ("ssh", "libssh", "libssh2")


class UriError(ValueError):
    """A URI that libvirt would reject or that is unsafe: says which part and why."""


@dataclass(frozen=True, slots=True)
class LibvirtUri:
    raw: str
    driver: str
    transport: str  # "" for a local driver URI, else tcp/tls/ssh/...
    user: str
    host: str  # without IPv6 brackets
    port: int | None
    path: str
    query: tuple[tuple[str, str], ...]

    @property
    def is_remote(self) -> bool:
        return bool(self.host) or self.transport not in ("", "unix")

    def param(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None

    @property
    def display(self) -> str:
        """The URI without any password-like query values (libvirt URIs should carry none)."""
        q = [(k, "***" if "pass" in k.lower() else v) for k, v in self.query]
        return _unsplit(self, q)


def parse(uri: str) -> LibvirtUri:
    """Parse and validate ``uri``; raises :class:`UriError` naming the bad part."""
    if not isinstance(uri, str) or not uri.strip():
        raise UriError("empty URI: expected e.g. qemu+tcp://10.0.0.5/system")
    uri = uri.strip()
    if any(ord(c) < 32 or c in " \t\\\"'`$;|&<>" for c in uri):
        raise UriError(f"{uri!r}: contains a space, quote or shell character")
    if "://" not in uri:
        raise UriError(f"{uri!r}: missing '://' (expected driver[+transport]://host/path)")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise UriError(f"{uri!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if not _SCHEME.match(scheme):
        raise UriError(f"{uri!r}: bad scheme {parts.scheme!r} (expected e.g. qemu+tcp)")
    driver, _, transport = scheme.partition("+")
    if transport and transport not in TRANSPORTS:
        raise UriError(f"{uri!r}: unknown transport {transport!r} (known: {', '.join(TRANSPORTS)})")
    host = parts.hostname or ""
    if transport in ("tcp", "tls", *_SSH) and not host:
        raise UriError(f"{uri!r}: transport {transport} needs a host")
    if host and not _valid_host(host):
        raise UriError(f"{uri!r}: bad host {host!r}")
    if parts.fragment:
        raise UriError(f"{uri!r}: a URI fragment ('#...') is not allowed")
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    return LibvirtUri(raw=uri, driver=driver, transport=transport, user=parts.username or "",
                      host=host, port=port, path=parts.path or "/", query=query)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", host) is not None


def _unsplit(u: LibvirtUri, query: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> str:
    scheme = f"{u.driver}+{u.transport}" if u.transport else u.driver
    host = f"[{u.host}]" if ":" in u.host else u.host
    netloc = (f"{quote(u.user, safe='')}@" if u.user else "") + host
    if u.port is not None:
        netloc += f":{u.port}"
    return urlunsplit((scheme, netloc, u.path, urlencode(list(query)), ""))


def prepare(uri: str) -> str:
    """The URI as vditui opens it: validated, and for SSH with ``no_tty=1`` so that ssh never
    prompts on the terminal behind the TUI (a missing key or unknown host key then fails with a
    message instead of a prompt)."""
    u = parse(uri)
    if u.transport in _SSH and u.param("no_tty") is None:
        return _unsplit(u, (*u.query, ("no_tty", "1")))
    return u.raw


def render(template: str, ip: str, name: str = "") -> str:
    """Build a host's URI from a template with ``{ip}`` and ``{name}``; IPv6 gets brackets."""
    try:
        is_v6 = ipaddress.ip_address(ip).version == 6
    except ValueError:
        is_v6 = False
    try:
        uri = template.format(ip=f"[{ip}]" if is_v6 else ip, name=name)
    except (KeyError, IndexError, ValueError) as exc:
        raise UriError(f"template {template!r}: only {{ip}} and {{name}} can be substituted "
                       f"({exc})") from None
    parse(uri)
    return uri


def candidates(templates: tuple[str, ...] | list[str], ip: str, name: str,
               override: str | None = None) -> list[str]:
    """The URIs to try for a host, in order: its override first, then each template."""
    out: list[str] = []
    if override:
        out.append(override)
    for t in templates:
        uri = render(t, ip, name)
        if uri not in out:
            out.append(uri)
    return out


def alternatives(uri: str) -> list[str]:
    """The same host and path over the other network transports (tcp, ssh as root, tls), for
    an operator troubleshooting which method a host accepts."""
    try:
        u = parse(uri)
    except UriError:
        return []
    if not u.host:
        return []
    out = []
    for transport in ("tcp", "ssh", "tls"):
        if transport == u.transport:
            continue
        user = (u.user or "root") if transport == "ssh" else ""
        alt = LibvirtUri(raw="", driver=u.driver, transport=transport, user=user, host=u.host,
                         port=None, path=u.path, query=())
        out.append(_unsplit(alt, ()))
    return out
