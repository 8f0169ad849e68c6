"""libvirt connection URIs: parsed properly, validated, and built from templates.

A URI typed by an operator is parsed and checked here before libvirt sees it; it is never handed
to a shell. ``driver[+transport]://[user@][host][:port]/path[?query]``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

TRANSPORTS = ("tcp", "tls", "ssh", "libssh", "libssh2", "unix", "ext")
DEFAULT_TEMPLATES = ("qemu+tcp://{ip}/system", "qemu+ssh://root@{ip}/system",
                     "qemu+tls://{ip}/system")
_SCHEME = re.compile(r"^[a-z][a-z0-9]*(\+[a-z0-9]+)?$")
# Query parameters that make libvirt run a program or read a file of the user's choosing are
# only allowed because the operator typed them; we never add them ourselves.
_SSH = ("ssh", "libssh", "libssh2")
# Never in a URI, raw or percent-encoded: libvirt hands parts of an SSH URI (user, netcat,
# socket) to ssh and to a shell on the remote host, and none of these belongs in a URI anyway.
_SHELL_CHARS = " \t\\\"'`$;|&<>"


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
        """The URI without any secret query values (libvirt URIs should carry none)."""
        q = [(k, REDACTED if is_secret_key(k) else v) for k, v in self.query]
        return _unsplit(self, q)


def parse(uri: str) -> LibvirtUri:
    """Parse and validate ``uri``; raises :class:`UriError` naming the bad part.

    Rejected: control and other non-printable characters, spaces, quotes and shell characters
    (also when percent-encoded), fragments, passwords (``user:secret@``), unknown transports,
    network transports without a host, and bad hosts or ports. Error messages never repeat a
    password that was typed into the URI."""
    if not isinstance(uri, str) or not uri.strip():
        raise UriError("empty URI: expected e.g. qemu+tcp://10.0.0.5/system")
    uri = uri.strip()
    shown = repr(redact_uri(uri))
    # '&' separates query parameters; anywhere else (or doubled) it is a shell's "and then".
    before_query, q_mark, raw_query = uri.partition("?")
    bad = _bad_char(before_query) or _bad_char(raw_query, allow="&")
    if bad:
        raise UriError(f"{shown}: contains a {bad}")
    if q_mark and "" in raw_query.split("&"):
        raise UriError(f"{shown}: empty query parameter (an '&' too many)")
    if "://" not in uri:
        raise UriError(f"{shown}: missing '://' (expected driver[+transport]://host/path)")
    if "#" in uri:
        raise UriError(f"{shown}: a URI fragment ('#...') is not allowed")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise UriError(f"{shown}: {exc}") from None
    if parts.password is not None:
        raise UriError(f"{shown}: a password in the URI is not supported (libvirt would not "
                       "use it): use SSH keys or an agent, SASL or TLS certificates")
    scheme = parts.scheme.lower()
    if not _SCHEME.match(scheme):
        raise UriError(f"{shown}: bad scheme {parts.scheme!r} (expected e.g. qemu+tcp)")
    driver, _, transport = scheme.partition("+")
    if transport and transport not in TRANSPORTS:
        raise UriError(f"{shown}: unknown transport {transport!r} "
                       f"(known: {', '.join(TRANSPORTS)})")
    host = parts.hostname or ""
    if transport in ("tcp", "tls", *_SSH) and not host:
        raise UriError(f"{shown}: transport {transport} needs a host")
    if host and not _valid_host(host):
        raise UriError(f"{shown}: bad host {host!r}")
    user = unquote(parts.username or "")
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    for what, value in (("user name", user), ("path", unquote(parts.path)),
                        *((f"query parameter {k!r}", f"{k}={v}") for k, v in query)):
        bad = _bad_char(value)
        if bad:
            raise UriError(f"{shown}: the {what} contains a percent-encoded {bad}")
    for k, v in query:
        if k == "pkipath" and not v.startswith("/"):
            raise UriError(f"{shown}: pkipath must be an absolute path (the directory holding "
                           f"cacert.pem, clientcert.pem and clientkey.pem), got {v!r}")
        if k == "no_verify" and v not in ("0", "1"):
            raise UriError(f"{shown}: no_verify must be 0 or 1, got {v!r}")
    return LibvirtUri(raw=uri, driver=driver, transport=transport, user=user,
                      host=host, port=port, path=parts.path or "/", query=query)


def _bad_char(text: str, allow: str = "") -> str:
    """What the first unsafe character of ``text`` is, e.g. "shell character (';')", or ""."""
    for c in text:
        if not c.isprintable():
            return f"control character ({c!r})"
        if c in _SHELL_CHARS and c not in allow:
            return f"space, quote or shell character ({c!r})"
    return ""


REDACTED = "***"
_SECRET_KEY = re.compile(r"pass|secret|token|(^|_)key$|^auth$|credential", re.IGNORECASE)
# user:password@ right after a scheme's "://" (the user part stays: it names the account).
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:'\"]*):[^@\s/?#]*@")
# name=value after "?", "&" or ";": a URI's query, whole or quoted in a message.
_QUERY_PAIR = re.compile(r"(?P<head>[?&;](?P<key>[A-Za-z0-9_.%-]+)=)(?P<value>[^&;#\s'\"]*)")


def is_secret_key(name: str) -> bool:
    """A query parameter whose value is a secret (``password``, ``passphrase``, ``token``,
    ``key``, ``api_key``...), not a path to one (``keyfile``, ``pkipath`` stay shown)."""
    return _SECRET_KEY.search(unquote(name)) is not None


def redact_uri(text: str) -> str:
    """``text`` (a URI, or a message quoting any number of them) with every secret replaced by
    ``***``: the password of ``user:password@``, and the value of each secret query parameter
    (see :func:`is_secret_key`). The one redacting form: everything vditui shows or stores
    that may hold a URI goes through it."""
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m['head']}:{REDACTED}@", text)
    if "=" in text:
        text = _QUERY_PAIR.sub(
            lambda m: m["head"] + REDACTED if is_secret_key(m["key"]) and m["value"]
            else m[0], text)
    return text


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
    query_text = urlencode(list(query), quote_via=quote, safe="/*:,")
    return urlunsplit((scheme, netloc, u.path, query_text, ""))


def prepare(uri: str) -> str:
    """The URI as vditui opens it: validated, and for SSH with ``no_tty=1`` so that ssh never
    prompts on the terminal behind the TUI (a missing key or unknown host key then fails with a
    message instead of a prompt). Nothing else is added: never ``no_verify`` or
    ``known_hosts_verify``, so an unknown host key is only accepted if the operator typed so.
    A ``pkipath`` must name an existing directory (libvirt would only say a file is missing)."""
    u = parse(uri)
    pki = u.param("pkipath")
    if pki is not None and not os.path.isdir(pki):
        raise UriError(f"{redact_uri(u.raw)!r}: pkipath {pki!r} is not a directory: it must hold "
                       "cacert.pem, clientcert.pem and clientkey.pem")
    if u.transport in _SSH and u.param("no_tty") is None:
        return _unsplit(u, (*u.query, ("no_tty", "1")))
    return u.raw


def render(template: str, ip: str, name: str = "") -> str:
    """Build a host's URI from a template with ``{ip}`` and ``{name}``; IPv6 gets brackets.

    The IP and name come from the platform, not from the operator: each must be a plain IP
    address or host name, so that a platform record can never add a path or query parameter
    (``no_verify=1``, ``command=...``) to a URI built from the operator's template."""
    try:
        is_v6 = ipaddress.ip_address(ip).version == 6
    except ValueError:
        is_v6 = False
    for what, value in (("ip", ip), ("name", name)):
        if f"{{{what}}}" in template and not _valid_host(value):
            raise UriError(f"template {template!r}: the host's {what} {value!r} is not an IP "
                           "address or host name, so it cannot go into a URI")
    try:
        uri = template.format(ip=f"[{ip}]" if is_v6 else ip, name=name)
    except (KeyError, IndexError, ValueError) as exc:
        raise UriError(f"template {template!r}: only {{ip}} and {{name}} can be substituted "
                       f"({exc})") from None
    parse(uri)
    return uri


def candidates(templates: Sequence[str], ip: str, name: str,
               fixed: Sequence[str] = ()) -> list[str]:
    """The URIs to try for a host, in order: its fixed URIs first (in their order), then each
    template's rendering; each URI once."""
    out: list[str] = list(dict.fromkeys(fixed))
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
