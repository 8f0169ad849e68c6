"""Secrets stay secret, files stay private, insecure settings say so, against the real lab.

The big test, :func:`test_no_secret_anywhere`, runs the TUI (Pilot) and every headless command
against a lab with DEBUG logging on (in-process to a temp dir; the subprocesses through
``VDITUI_LOG_LEVEL=DEBUG`` and a temp ``XDG_STATE_HOME``), drives the faults that produce error
text (wrong password, token expiry and re-login, HTTP 500, a platform that echoes secrets back),
collects everything vditui showed, printed, logged or wrote, and searches it for the lab's
password, its MD5 and every token the simulated platform issued.

(``test_headless.py`` already checks each CLI run's output and the INFO log of its runs; this
file adds DEBUG logs, the TUI, exceptions, files written and the config file.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import logging
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Input, RichLog

from tests.lab.cli_env import cli_env as shared_env
from tests.live import live_hosts
from vditui import logsetup
from vditui.cli import build_parser
from vditui.config.write import save_host_uri, write_private
from vditui.core.engine import Engine, EngineSettings
from vditui.core.events import EngineEvent, SnapshotReady
from vditui.core.vdi import VdiAuthError, VdiError, VdiHttpError, VdiNotJson, VdiStatusError
from vditui.lab.lab import Lab
from vditui.lab.vdi_server import VdiServer
from vditui.launch import INSECURE_WARNING, Options, resolve
from vditui.ui.app import VdiApp
from vditui.ui.screens.reconnect import ReconnectScreen
from vditui.ui.screens.simple import ExportScreen, HelpScreen, ProblemScreen
from vditui.ui.widgets.host_tree import HostTree
from vditui.ui.widgets.top_bar import TopBar
from vditui.ui.widgets.vm_table import VmTable

pytestmark = [pytest.mark.lab, pytest.mark.timeout(150)]

VDITUI = str(Path(sys.executable).with_name("vditui"))
SIZE = (160, 48)
FIXED_NOW = 1_764_000_000.0
WRONG = "wr0ng-Secret-Pa55"
PW_ENV = "LAB_VDI_PASSWORD"
INSECURE_HEAD = "TLS verification is off"
# A token or an MD5 digest: 32 hex digits on their own (UUIDs have hyphens, so never match).
HEX32 = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")


# --------------------------------------------------------------------------- collecting


@dataclass
class Evidence:
    """Everything vditui produced, by where it came from."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, text: str) -> None:
        self.items.append((where, text))

    def add_exception(self, where: str, exc: BaseException) -> None:
        self.add(f"{where}: str", str(exc))
        self.add(f"{where}: repr", repr(exc))
        self.add(f"{where}: attributes", repr(vars(exc)))
        self.add(f"{where}: traceback", "".join(traceback.format_exception(exc)))

    def add_file(self, where: str, path: Path) -> None:
        self.add(f"{where} {path.name}", path.read_text(encoding="utf-8", errors="replace"))

    def leaks(self, secrets: list[str], hex_ok: Callable[[str], bool]) -> list[str]:
        found = []
        for where, text in self.items:
            for s in secrets:
                forms = {s, s.upper(), html.escape(s), json.dumps(s)[1:-1]}
                if any(f in text for f in forms):
                    found.append(f"{where}: holds {s[:3]}…")
            if not hex_ok(where):
                found += [f"{where}: 32 hex digits {h[:3]}…" for h in HEX32.findall(text)]
        return found


def record_tokens(vdi: VdiServer) -> set[str]:
    """Every token the platform issues from now on (the login route wrapped)."""
    issued: set[str] = set()
    for i, (method, pattern, template, handler) in enumerate(vdi._routes):
        if template == "POST /ocloud/v1/login":
            def login(r: Any, handler: Callable[[Any], dict[str, Any]] = handler) -> Any:
                doc = handler(r)
                issued.add(doc["data"]["token"])
                return doc

            vdi._routes[i] = (method, pattern, template, login)
    return issued


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def screen_text(svg: str) -> str:
    """The characters of a screenshot, tags stripped."""
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def debug_logging(directory: Path) -> Iterator[Path]:
    """vditui's own logging set-up at DEBUG into ``directory``, as the entry point does it;
    the process's logging is put back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.lastResort, logsetup._done,
             list(warnings.filters))
    logsetup._done = False
    path = logsetup.setup_logging(level=logging.DEBUG, directory=directory)
    assert path is not None
    try:
        yield path
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        handlers, level, last, done, filters = saved
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)
        logging.lastResort = last
        logsetup._done = done
        logging.captureWarnings(False)
        warnings.filters[:] = filters


# --------------------------------------------------------------------------- the CLI


@dataclass
class Run:
    args: list[str]
    code: int
    out: str
    err: str


def cli_env(home: Path, password: str | None) -> dict[str, str]:
    return shared_env(home, password, password_env=PW_ENV, VDITUI_LOG_LEVEL="DEBUG")


def run_cli(home: Path, *args: str, password: str | None, timeout: float = 40) -> Run:
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([VDITUI, *args], env=cli_env(home, password), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd=home)
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(list(args), proc.returncode, proc.stdout, proc.stderr)


def watch_for(home: Path, ready: Callable[[dict[str, Any]], bool],
              during: Callable[[], None], done: Callable[[dict[str, Any]], bool],
              *args: str) -> Run:
    """``vditui watch --jsonl``: once a record satisfies ``ready``, run ``during``; once one
    satisfies ``done`` (or 15 s passed), Ctrl-C."""
    home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([VDITUI, "watch", "--jsonl", *args],
                            env=cli_env(home, os.environ[PW_ENV]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=home)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    out: list[str] = []
    deadline = time.monotonic() + 15
    try:
        for wanted, then in ((ready, during), (done, lambda: None)):
            while time.monotonic() < deadline:
                try:
                    line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if line is None:
                    break
                out.append(line)
                if wanted(json.loads(line)):
                    then()
                    break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
        while (line := lines.get_nowait() if not lines.empty() else None) is not None:
            out.append(line)
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()
    assert "Traceback" not in err, err
    return Run(["watch", "--jsonl", *args], proc.returncode, "".join(out), err)


def write_config(path: Path, lab: Lab, *, password: str | None = None,
                 verify_ssl: bool = True, file_mode: int = 0o644) -> Path:
    """A profile "lab" reaching ``lab``; the password in the file, or named by password_env."""
    pw = f"password = {json.dumps(password)}" if password else f'password_env = "{PW_ENV}"'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'# the operator\'s file\ndefault_profile = "lab"\n\n[profiles.lab]\n'
                    f'url = "{lab.vdi_url}"\nusername = "{lab.username}"\n{pw}\n'
                    f'uri_templates = {json.dumps(list(lab.uri_templates))}\n'
                    'connect_timeout = 2.0\n'
                    f'grace = 0.0\nverify_ssl = {str(verify_ssl).lower()}\n')
    path.chmod(file_mode)
    return path


def tui_settings(config: Path, insecure: bool) -> tuple[EngineSettings, list[str]]:
    """What run_tui gets for ``vditui --config FILE [--insecure]``, through the real parser."""
    args = build_parser().parse_args(["--config", str(config), *(["--insecure"] * insecure)])
    start = resolve(Options.from_args(args), interactive=False)
    return start.settings, list(start.warnings)


# --------------------------------------------------------------------------- the TUI


async def wait_for(pilot: Any, predicate: Callable[[], object], what: str,
                   timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.02)


def settled(app: VdiApp) -> bool:
    engine, cmp = app.engine, app.comparison
    if engine is None or cmp is None or app.query_one("#vms", VmTable).flushes == 0:
        return False
    sessions = live_hosts(engine)
    if not sessions or not all(s.settled for s in sessions.values()):
        return False
    views = {h.host.id: h.view for h in cmp.hosts}
    return all((v := views.get(hid)) is not None and v.state is s.state
               and v.read_at == s.read_at for hid, s in sessions.items())


def header(app: VdiApp) -> str:
    return str(app.query_one("#top", TopBar).render())


async def tui_session(app: VdiApp, lab: Lab, ev: Evidence, out_dir: Path,
                      config: Path) -> dict[str, Any]:
    """Main screen, reconnect (with a typed URI that carries the password, and a save), help,
    export to md/json/csv; every screen's screenshot goes into ``ev``."""
    seen: dict[str, Any] = {}
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: settled(app), "the TUI to settle")
        await pilot.pause(0.2)
        ev.add("TUI main screen", app.export_screenshot())
        seen["header"] = header(app)

        # Reconnect hv-refuse: probe, type URIs, adopt the one that works, save it.
        engine = app.engine
        assert engine is not None
        assert app.snapshot is not None
        host_id = next(h for h, link in app.snapshot.hosts.items() if link.name == "hv-refuse")
        tree = app.query_one("#hosts", HostTree)
        tree.focus()
        tree.move_cursor(next(h for p in tree.root.children for h in p.children
                              if h.data is not None and h.data.id == host_id))
        await pilot.pause()
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ReconnectScreen), "reconnect")
        screen = app.screen
        assert isinstance(screen, ReconnectScreen)
        await wait_for(pilot, lambda: all(u in screen.results for u in screen.uris),
                       "every candidate probed")
        ev.add("TUI reconnect screen", app.export_screenshot())

        await pilot.press("i")
        box = screen.query_one("#rc-input", Input)
        await wait_for(pilot, lambda: box.has_focus, "the URI box focused")
        box.cursor_blink = False
        # An operator pastes a URI with the platform password in it: refused, not echoed.
        box.value = f"test+tcp://{lab.username}:{lab.password}@{lab.hosts['hv-refuse'].ip}/default"
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.title == "invalid URI" for n in app._notifications),
                       "the invalid-URI notice")
        seen["uri_error"] = [n.message for n in app._notifications if n.title == "invalid URI"]
        # What the operator typed stays in the box until they clear it (their own keystrokes);
        # the error shown for it must not repeat the password.
        box.value = ""
        await pilot.pause()
        ev.add("TUI reconnect screen, URI with a password rejected", app.export_screenshot())

        direct = lab.hosts["hv-refuse"].daemon.uri
        box.focus()
        await pilot.pause()
        box.value = direct
        await pilot.press("enter")
        await wait_for(pilot, lambda: direct in screen.results, "the typed URI probed")
        await pilot.press("a")
        await wait_for(pilot, lambda: screen.adopted == direct, "the URI adopted")
        await pilot.press("w")
        await wait_for(pilot, lambda: "hv-refuse" in config.read_text(), "the config saved")
        await pilot.pause(0.1)
        ev.add("TUI reconnect screen, saved", app.export_screenshot())
        detail = screen.query_one("#rc-detail").render()
        ev.add("TUI reconnect detail", str(detail))
        rc_table = screen.query_one("#rc-table", DataTable)
        ev.add("TUI reconnect table", repr([rc_table.get_row_at(i)
                                            for i in range(rc_table.row_count)]))
        await pilot.press("escape")
        await pilot.pause()

        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        ev.add("TUI help screen", app.export_screenshot())
        await pilot.press("escape")
        await pilot.pause()

        for fmt in ("md", "json", "csv"):
            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), "export")
            if fmt == "md":
                ev.add("TUI export screen", app.export_screenshot())
            target = out_dir / f"tui-report.{fmt}"
            app.screen.query_one("#export-path", Input).value = str(target)
            await pilot.press("enter")
            await wait_for(pilot, target.exists, f"{target.name} written")

        # A platform failure while running: the header says so, and still warns about TLS.
        assert lab.vdi is not None
        lab.vdi.set_fault("http500")
        await pilot.press("r")
        await wait_for(pilot, lambda: app.query_one("#top", TopBar).vdi_error != "",
                       "the platform error in the header")
        await pilot.pause(0.1)
        svg = app.export_screenshot()
        ev.add("TUI main screen, platform failing", svg)
        seen["header_failing"] = header(app)
        seen["screen_failing"] = screen_text(svg)
        lab.vdi.set_fault(None)

        log = app.query_one("#events", RichLog)
        ev.add("TUI event log", "\n".join(line.text for line in log.lines))
        ev.add("TUI notifications", "\n".join(f"{n.title}: {n.message}"
                                              for n in app._notifications))
        ev.add("TUI engine repr", repr(engine) + repr(engine._settings) + repr(engine._client))
    return seen


async def problem_screenshot(lab: Lab, password: str) -> tuple[str, ProblemScreen]:
    settings = EngineSettings(url=lab.vdi_url, username=lab.username, password=password,
                              uri_templates=(lab.uri_template,), connect_timeout=1)
    app = VdiApp(settings, [], None, None, clock=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ProblemScreen), "problem screen")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ProblemScreen)
        return app.export_screenshot(), screen


# --------------------------------------------------------------------------- the faults


async def client_faults(lab: Lab, settings: EngineSettings, ev: Evidence,
                        client_tokens: set[str]) -> None:
    """Wrong password, token expiry with re-login, HTTP 500, non-JSON, a platform echoing the
    password, its MD5 and the live token: every exception's text goes into ``ev``."""
    assert lab.vdi is not None
    vdi = lab.vdi

    def listen(u: EngineEvent) -> None:
        # Every event a face may show, whole (a snapshot is the comparison, checked elsewhere).
        if not isinstance(u, SnapshotReady):
            ev.add(f"engine event ({type(u).__name__})", repr(u))

    wrong = Engine(EngineSettings(url=settings.url, username=settings.username,
                                  password=WRONG, uri_templates=settings.uri_templates))
    wrong.listen(listen)
    with pytest.raises(VdiAuthError) as err:
        await wrong.start(watch=False)
    await wrong.stop()
    ev.add_exception("wrong password", err.value)
    assert "refused" in str(err.value)

    engine = Engine(settings)
    engine.listen(listen)
    client = engine._client  # white box: the client's own token handling
    try:
        await engine.start(watch=False)
        await engine.wait_settled(5)
        first = client._token
        assert first
        vdi.expire_tokens()  # the next request is told the token expired, and logs in again
        await client.hosts()
        assert client._token and client._token != first
        client_tokens.update([first, client._token])

        vdi.set_fault("http500")
        with pytest.raises(VdiHttpError) as http:
            await client.hosts()
        ev.add_exception("HTTP 500", http.value)
        await engine.refresh()  # the engine keeps the error and tells its listeners
        assert engine.platform_error() is not None
        ev.add_exception("engine, HTTP 500", engine.platform_error())

        vdi.set_fault("not_json")
        with pytest.raises(VdiNotJson) as not_json:
            await client.vms()
        ev.add_exception("not JSON", not_json.value)

        # A platform that echoes the request (password, MD5, token) in its error message.
        live = client._token
        assert live
        echo = f"denied: password={lab.password} md5={md5(lab.password)} Token: {live}"
        vdi.set_fault("status", code=500, msg=echo)
        with pytest.raises(VdiStatusError) as status:
            await client.pools()
        ev.add_exception("echoing platform", status.value)
        assert "***" in str(status.value)

        # Every request says "token expired", login included: re-login fails, once.
        vdi.set_fault("status", code=401, msg="token expired, log in again")
        with pytest.raises(VdiAuthError) as expired:
            await client.hosts()
        ev.add_exception("token rejected after re-login", expired.value)
        client_tokens.update(t for t in [client._token, *client._old_tokens] if t)
        ev.add("client warnings", "\n".join(client.warnings))
    finally:
        vdi.set_fault(None)
        await engine.stop()


# --------------------------------------------------------------------------- the test


@pytest.fixture
def sec_lab(fresh_lab: Callable[..., Lab], subset: Any, default_scenario: Any) -> Lab:
    """The field report's host, a classroom host and a refusing host."""
    return fresh_lab(subset(default_scenario, ["ocloud", "hv-t1", "hv-refuse"], "security"))


async def test_no_secret_anywhere(sec_lab: Lab, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    lab = sec_lab
    assert lab.vdi is not None
    issued = record_tokens(lab.vdi)
    client_tokens: set[str] = set()
    ev = Evidence()
    home = tmp_path / "home"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.setenv(PW_ENV, lab.password)
    monkeypatch.delenv("VDITUI_PASSWORD", raising=False)
    config = write_config(home / "config" / "vditui" / "config.toml", lab)  # 0644, no password
    common = ["--config", str(config), "--insecure"]

    # ---- headless commands, DEBUG logs under $XDG_STATE_HOME
    def cli(*args: str, password: str | None = lab.password) -> Run:
        r = run_cli(home, *args, *common, password=password)
        ev.add(f"stdout of {' '.join(args)}", r.out)
        ev.add(f"stderr of {' '.join(args)}", r.err)
        return r

    reports = {fmt: out_dir / f"cli-report.{fmt}" for fmt in ("md", "json", "csv")}
    jobs: dict[str, Callable[[], Run]] = {
        "check": lambda: cli("check", "--json"),
        "probe ok": lambda: cli("probe", "hv-t1", "--json"),
        "probe refused": lambda: cli("probe", "hv-refuse", "--json"),
        **{f"report {f}": (lambda f=f: cli("report", "--format", f, "-o", str(reports[f])))
           for f in reports},
    }
    vm = lab.vm("lic")

    def flip() -> None:
        lab.act("ocloud", vm.uuid, "destroy")
        lab.act("ocloud", vm.uuid, "start")

    with ThreadPoolExecutor(len(jobs) + 1) as pool:
        futures = {name: pool.submit(fn) for name, fn in jobs.items()}
        watch = pool.submit(
            watch_for, home,
            lambda r: r["type"] == "host" and r["message"].startswith("ocloud: connected"), flip,
            lambda r: r["type"] == "state" and r["vm"] == "lic" and r["new"] == "running",
            *common)
        runs = {name: f.result() for name, f in futures.items()}
        w = watch.result()
    ev.add("watch stdout", w.out)
    ev.add("watch stderr", w.err)
    runs["wrong password"] = cli("check", "--json", password=WRONG)
    lab.vdi.set_fault("http500")
    try:
        runs["HTTP 500"] = cli("check")
    finally:
        lab.vdi.set_fault(None)
    lab.vdi.set_fault("status", code=500, msg=f"bad login {lab.password} {md5(lab.password)}")
    try:
        runs["echoing platform"] = cli("report", "--format", "json")
    finally:
        lab.vdi.set_fault(None)
    # Actions: a platform echoing the secrets in its refusal, then one that acts; both audited.
    lab.vdi.set_action_fault("status", code=500, msg=f"denied {lab.password} {md5(lab.password)}")
    try:
        runs["act, echoing platform"] = cli("act", "sync", "--vm", "class-a-04", "--yes")
    finally:
        lab.vdi.set_action_fault(None)
    runs["act"] = cli("act", "sync", "--vm", "class-a-04", "--yes", "--json")

    check = json.loads(runs["check"].out)
    assert check["exit_code"] == 2 and check["summary"]["hosts_unreachable"] == ["hv-refuse"]
    assert INSECURE_WARNING in check["warnings"]
    for name, r in runs.items():
        assert f"vditui: warning: {INSECURE_WARNING}" in r.err, name
    assert all(json.loads(runs[p].out) for p in ("probe ok", "probe refused"))
    for fmt, path in reports.items():
        assert runs[f"report {fmt}"].out == "" and path.stat().st_size > 0
        assert mode(path) == 0o600, path
        ev.add_file("CLI export", path)
    assert "lic" in reports["csv"].read_text()
    assert "TLS verification is off" in json.loads(reports["json"].read_text())["warnings"][0]
    watch_lines = [json.loads(line) for line in w.out.splitlines()]
    assert watch_lines[0] == {**watch_lines[0], "type": "platform",
                              "message": f"warning: {INSECURE_WARNING}"}
    assert any(r["type"] == "state" and r["vm"] == "lic" for r in watch_lines)
    assert f"vditui: warning: {INSECURE_WARNING}" in w.err
    assert runs["wrong password"].code == 2 and "refused" in runs["wrong password"].err
    assert "HTTP 500" in runs["HTTP 500"].err
    assert "bad login *** ***" in runs["echoing platform"].err
    assert runs["act, echoing platform"].code == 2
    assert "denied *** ***" in runs["act, echoing platform"].err
    assert runs["act"].code == 0, runs["act"].err
    trail = home / "state" / "vditui" / "audit.jsonl"
    assert mode(trail) == 0o600 and len(trail.read_text().splitlines()) == 4
    assert "denied *** ***" in trail.read_text()
    ev.add_file("audit trail", trail)

    # ---- in-process: the engine's faults and the TUI, with DEBUG logging to a temp dir
    with debug_logging(tmp_path / "inproc-log") as log_path:
        settings, warns = tui_settings(config, insecure=True)
        assert warns == [INSECURE_WARNING]
        ev.add("settings repr", repr(settings) + str(settings))
        await client_faults(lab, settings, ev, client_tokens)

        app = VdiApp(settings, warns, None, config, "lab", clock=lambda: FIXED_NOW)
        seen = await tui_session(app, lab, ev, out_dir, config)
        svg, problem = await problem_screenshot(lab, WRONG)
        ev.add("TUI problem screen (wrong password)", svg)
        ev.add("TUI problem screen text", f"{problem.title_text}\n{problem.detail}\n{problem.fix}")
        assert problem.title_text == "Login refused"
        logging.getLogger("vditui.test").debug("end of the in-process part")

    # ---- what the TUI showed
    assert INSECURE_HEAD in seen["header"]
    assert INSECURE_HEAD in seen["header_failing"], "the TLS warning must stay while failing"
    lines = seen["screen_failing"].splitlines()
    top = next(i for i, x in enumerate(lines) if "platform: HTTP 500" in x)
    # On screen, right under the failure (the header gives security warnings lines of their
    # own), not only in the widget's text.
    assert any(INSECURE_HEAD in x for x in lines[top:top + 3])
    (uri_error,) = seen["uri_error"]
    assert "a password in the URI is not supported" in uri_error and ":***@" in uri_error
    for fmt in ("md", "json", "csv"):
        path = out_dir / f"tui-report.{fmt}"
        assert mode(path) == 0o600, path
        ev.add_file("TUI export", path)

    # ---- the config the TUI saved: private, no secret, the operator's comment kept
    assert mode(config) == 0o600
    text = config.read_text()
    assert text.startswith("# the operator's file\n") and '"hv-refuse"' in text
    ev.add_file("saved config", config)

    # ---- the logs: DEBUG really was on, in both places
    logs = sorted(p for p in [*home.rglob("vditui.log*"), log_path] if p.is_file())
    assert len(logs) >= 2
    for p in logs:
        assert mode(p) == 0o600, p
        ev.add_file("log", p)
    joined = "\n".join(p.read_text() for p in logs)
    assert " DEBUG vditui.vdi: logged in to " in joined
    assert "token rejected" in joined  # the re-login after expiry was logged, the token not
    assert log_path.read_text().count(" DEBUG ") > 10

    # ---- nothing anywhere holds a secret
    tokens = issued | client_tokens
    assert len(issued) >= 8, "every CLI run and the in-process client logged in"
    assert client_tokens <= issued
    secrets = [lab.password, md5(lab.password), WRONG, md5(WRONG), *sorted(tokens)]
    assert len(ev.items) > 40
    leaks = ev.leaks(secrets, hex_ok=lambda where: "screen" in where and "text" not in where)
    assert leaks == [], "\n".join(leaks)
    planted = Evidence([("sanity", f"Token: {sorted(tokens)[-1].upper()}")])
    assert planted.leaks(secrets, hex_ok=lambda _where: True) != []  # the search does find
    # Screenshots (SVG) carry generated ids; their visible text must still hold no 32-hex run.
    for where, text in ev.items:
        if "screen" in where and text.lstrip().startswith("<svg"):
            assert HEX32.findall(screen_text(text)) == [], where


# --------------------------------------------------------------------------- smaller checks


async def test_plain_password_readable_by_others_warns(sec_lab: Lab, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    lab = sec_lab
    home = tmp_path / "home"
    monkeypatch.delenv("VDITUI_PASSWORD", raising=False)
    monkeypatch.delenv(PW_ENV, raising=False)
    config = write_config(tmp_path / "shared" / "vditui.toml", lab, password=lab.password)
    assert mode(config) == 0o644

    r = run_cli(home, "check", "--config", str(config), password=None)
    assert r.code == 2  # hv-refuse; the password came from the file and worked
    (line,) = [x for x in r.err.splitlines() if "holds a password" in x]
    assert line == (f"vditui: warning: {config} holds a password and other users can read it: "
                    f"run chmod 600 {config}")
    assert lab.password not in r.out + r.err

    settings, warns = tui_settings(config, insecure=False)
    assert warns == [line.removeprefix("vditui: warning: ")]
    app = VdiApp(settings, warns, None, config, "lab", clock=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.comparison is not None, "the first comparison")
        top = header(app)
        svg = app.export_screenshot()
    assert "⚠ " in top and "holds a password" in warns[0]
    # The header names the file (its standing warnings are cut to 60 characters each, so the
    # "chmod 600" advice itself is on stderr of the headless commands, above).
    assert str(config)[:20] in top
    assert lab.password not in svg and lab.password not in top

    # Private again: no warning.
    config.chmod(0o600)
    r = run_cli(home, "check", "--config", str(config), password=None)
    assert "holds a password" not in r.err
    # A password_env profile readable by others is fine: there is no secret in it.
    other = write_config(tmp_path / "env.toml", lab, file_mode=0o644)
    r = run_cli(home, "check", "--config", str(other), password=lab.password)
    assert r.err == "" and r.code == 2


async def test_verify_ssl_false_warns_in_header_and_headless(sec_lab: Lab, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    lab = sec_lab
    home = tmp_path / "home"
    monkeypatch.setenv(PW_ENV, lab.password)
    config = write_config(tmp_path / "insecure.toml", lab, verify_ssl=False, file_mode=0o600)
    for args in (["check"], ["check", "--json"], ["report", "--format", "csv"],
                 ["probe", "hv-t1"]):
        r = run_cli(home, *args, "--config", str(config), password=lab.password)
        assert r.err.splitlines()[0] == f"vditui: warning: {INSECURE_WARNING}", args
        if "--json" in args:
            assert json.loads(r.out)["warnings"] == [INSECURE_WARNING]

    settings, warns = tui_settings(config, insecure=False)
    assert not settings.verify_ssl and warns == [INSECURE_WARNING]
    app = VdiApp(settings, warns, None, config, "lab", clock=lambda: FIXED_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: settled(app), "the TUI to settle")
        assert INSECURE_HEAD in header(app)
        assert INSECURE_HEAD in screen_text(app.export_screenshot())
        await pilot.press("r")  # still there after a refresh and a second's redraws
        await pilot.pause(1.2)
        assert INSECURE_HEAD in header(app)
        assert INSECURE_HEAD in screen_text(app.export_screenshot())

    # Verification on: no warning anywhere.
    config = write_config(tmp_path / "secure.toml", lab, verify_ssl=True, file_mode=0o600)
    r = run_cli(home, "check", "--json", "--config", str(config), password=lab.password)
    assert r.err == "" and json.loads(r.out)["warnings"] == []


def test_files_vditui_writes_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        fresh = tmp_path / "new" / "config.toml"
        save_host_uri(fresh, "prod", "hv-01", "qemu+ssh://root@10.0.0.5/system")
        assert mode(fresh) == 0o600

        shared = tmp_path / "shared.toml"
        shared.write_text('[profiles.prod]\nurl = "http://10.0.0.2:8088"\nusername = "ops"\n')
        shared.chmod(0o644)
        save_host_uri(shared, "prod", "hv-01", "qemu+tcp://10.0.0.5/system")
        assert mode(shared) == 0o600  # rewritten private, not left as it was

        report = tmp_path / "report.md"
        report.write_text("old")
        report.chmod(0o644)
        write_private(report, "new")
        assert mode(report) == 0o600 and report.read_text() == "new"
        assert not [p for p in tmp_path.rglob(".*.tmp")]  # no temp file left behind
    finally:
        os.umask(old)


def test_log_level_comes_from_the_environment(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(logsetup.LEVEL_ENV, "debug")
    assert logsetup.level_from_env() == (logging.DEBUG, "")
    monkeypatch.setenv(logsetup.LEVEL_ENV, "15")
    assert logsetup.level_from_env() == (15, "")
    monkeypatch.setenv(logsetup.LEVEL_ENV, "loud")
    level, complaint = logsetup.level_from_env()
    assert level == logging.INFO and "VDITUI_LOG_LEVEL='loud' is not a log level" in complaint
    monkeypatch.delenv(logsetup.LEVEL_ENV)
    assert logsetup.level_from_env() == (logging.INFO, "")


def test_exceptions_never_carry_the_password() -> None:
    """The client scrubs its secrets from every message it builds, even ones the platform
    echoes; its repr and the settings' repr show none."""
    async def run() -> None:
        from vditui.core.vdi import VdiClient

        client = VdiClient("http://127.0.0.1:9", "ops", "s3cret-Pa55word")
        try:
            assert "s3cret" not in repr(client)
            settings = EngineSettings(url="http://127.0.0.1:9", username="ops",
                                      password="s3cret-Pa55word")
            assert "s3cret" not in repr(settings)
            with pytest.raises(VdiError) as err:
                await client.hosts()  # nothing listens on port 9
            for text in (str(err.value), repr(err.value),
                         "".join(traceback.format_exception(err.value))):
                assert "s3cret" not in text and md5("s3cret-Pa55word") not in text
            scrubbed = client._scrub(f"x s3cret-Pa55word {md5('s3cret-Pa55word')} y")
            assert scrubbed == "x *** *** y"
        finally:
            await client.aclose()
        # Credentials in the platform URL would go into every message: refused, unrepeated.
        with pytest.raises(VdiError) as err:
            VdiClient("http://ops:s3cret-Pa55word@127.0.0.1:9", "ops", "x")
        assert "s3cret" not in str(err.value) + repr(err.value) + err.value.url
        assert "do not belong in the platform URL" in str(err.value)

    asyncio.run(run())
