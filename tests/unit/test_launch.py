"""One settings definition and one launch module: every setting reaches the engine from the
file, each is checked by its own bounds, and both faces start from `vditui.launch.resolve`."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from vditui.cli import build_parser
from vditui.config import ConfigError, load_config
from vditui.config.checks import FIELDS
from vditui.config.profile import Profile
from vditui.core.settings import DEFAULTS, SETTINGS, EngineSettings, Settings
from vditui.core.vdi import VdiClient
from vditui.launch import (
    DEMO_GRACE,
    DEMO_TIMEOUT,
    INSECURE_WARNING,
    LabTarget,
    Options,
    resolve,
)

ENV = {"VDITUI_PASSWORD": "pw-from-env"}
HEAD = '[profiles.p]\nurl = "http://10.0.0.2:8088"\nusername = "ops"\n'


def other_value(f: Any) -> Any:
    """A valid value for setting ``f`` that differs from its default."""
    kind, default = f.metadata["kind"], getattr(DEFAULTS, f.name)
    if kind == "flag":
        return not default
    if kind == "seconds":
        return default + 1.5
    if kind == "count":
        return default + 1
    if kind == "templates":
        return ("qemu+tcp://{name}:16510/system",)
    raise AssertionError(f"no test value for {f.name} ({kind})")


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return repr(value)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_every_setting_written_in_the_file_reaches_the_engine_and_the_sessions(
        tmp_path: Path) -> None:
    # hosts and ack are tables of their own (tests/unit/test_config.py, tests/unit/test_acks.py).
    settable = [f for f in SETTINGS if f.metadata["kind"] not in ("hosts", "acks")]
    assert len(settable) == len(SETTINGS) - 2 >= 12
    wanted = {f.name: other_value(f) for f in settable}
    lines = "".join(f"{name} = {toml(v)}\n" for name, v in wanted.items())
    path = write(tmp_path, HEAD + lines + '[profiles.p.hosts."hv-01"]\nuri = "qemu:///system"\n')
    start = resolve(Options(config=path), interactive=False, env=ENV)
    settings = start.settings
    assert (settings.url, settings.username, settings.password) == (
        "http://10.0.0.2:8088", "ops", "pw-from-env")
    assert settings.host_uris == {"hv-01": ("qemu:///system",)}
    session = settings.session_settings()
    for name, value in wanted.items():
        assert getattr(settings, name) == value, name
        assert getattr(session, name) == value, name
    # verify_ssl is among the settings flipped from their default.
    assert (start.config_path, start.profile, start.warnings) == (path, "p", (INSECURE_WARNING,))


def test_each_setting_is_checked_by_its_own_bounds_with_file_line_and_key(tmp_path: Path) -> None:
    for f in SETTINGS:
        kind = f.metadata["kind"]
        if kind not in ("seconds", "count"):
            continue
        minimum = f.metadata["minimum"]
        bad = minimum - 1 if kind == "count" or f.metadata["inclusive"] else minimum
        text = HEAD + f"# a comment\n{f.name} = {bad!r}\n"
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, text))
        expected = ("a whole number >= " if kind == "count" else
                    f"a number of seconds {'>=' if f.metadata['inclusive'] else '>'} ")
        assert str(info.value) == (f"{tmp_path / 'config.toml'}:5: profiles.p.{f.name}: "
                                   f"expected {expected}{minimum:g}, got {bad!r}"), f.name


def test_profile_engine_and_checks_are_derived_from_the_one_definition() -> None:
    names = [f.name for f in SETTINGS]
    assert [f.name for f in fields(Profile)][: len(names)] == names
    assert [f.name for f in fields(EngineSettings)][: len(names)] == names
    assert issubclass(Profile, Settings) and issubclass(EngineSettings, Settings)
    assert set(names) - {"host_uris", "ack"} <= set(FIELDS)
    assert all(f.metadata["doc"].strip() for f in SETTINGS)
    # The platform client's defaults are the settings' defaults.
    client = VdiClient("http://127.0.0.1:9", "u", "p")
    assert (client.connect_timeout, client.timeout, client.page_size) == (
        DEFAULTS.connect_timeout, DEFAULTS.call_timeout, DEFAULTS.page_size)


def test_options_come_from_the_real_parser_before_or_after_the_command() -> None:
    for argv in (["--url", "http://h:1", "--uri-template", "qemu:///system", "check"],
                 ["check", "--url", "http://h:1", "--uri-template", "qemu:///system"]):
        options = Options.from_args(build_parser().parse_args(argv))
        assert options == Options(url="http://h:1", uri_templates=("qemu:///system",))
    options = Options.from_args(build_parser().parse_args(
        ["--config", "~/c.toml", "--timeout", "3", "--grace", "0", "--insecure", "--demo"]))
    assert options == Options(config=Path("~/c.toml"), timeout=3.0, grace=0.0, insecure=True,
                              demo=True)


def test_a_lab_target_is_the_whole_configuration(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # A broken default file must not matter: --demo reads no file.
    monkeypatch.setattr("vditui.config.paths.config_dir", lambda: tmp_path)
    write(tmp_path, "this is not TOML")
    lab = LabTarget(url="http://127.0.0.1:8088", username="admin", password="lab-pw",
                    uri_template="qemu+tcp://{ip}:16509/system",
                    config_path=tmp_path / "demo-config.toml")
    start = resolve(Options(demo=True, lab=lab), interactive=False,
                    env={"VDITUI_URL": "http://elsewhere:1", "VDITUI_PASSWORD": "not-this"})
    s = start.settings
    assert (s.url, s.username, s.password) == ("http://127.0.0.1:8088", "admin", "lab-pw")
    assert s.uri_templates == ("qemu+tcp://{ip}:16509/system",)
    assert (s.connect_timeout, s.grace) == (DEMO_TIMEOUT, DEMO_GRACE)
    assert (start.config_path, start.profile, start.warnings) == (
        tmp_path / "demo-config.toml", "default", ())
    tuned = resolve(Options(demo=True, lab=lab, timeout=7.0, grace=0.0, insecure=True),
                    interactive=False, env={})
    assert (tuned.settings.connect_timeout, tuned.settings.grace) == (7.0, 0.0)
    assert not tuned.settings.verify_ssl and tuned.warnings == (INSECURE_WARNING,)
    assert "lab-pw" not in repr(lab) + repr(s)


def test_a_lab_mixing_drivers_hands_every_template(tmp_path: Path) -> None:
    templates = ("qemu+tcp://{ip}:16510/system", "test+tcp://{ip}/default")
    lab = LabTarget(url="http://127.0.0.1:8088", username="admin", password="lab-pw",
                    uri_template=templates[0], uri_templates=templates,
                    config_path=tmp_path / "demo-config.toml")
    assert resolve(Options(demo=True, lab=lab), interactive=False,
                   env={}).settings.uri_templates == templates


def test_without_a_password_source_resolve_says_so_and_never_prompts(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "verify_ssl = false\n")
    with pytest.raises(ConfigError, match="no password: set VDITUI_PASSWORD"):
        resolve(Options(config=path), interactive=False, env={})
    start = resolve(Options(config=path), interactive=False, env=ENV)
    assert start.warnings == (INSECURE_WARNING,)


def test_the_tui_starts_from_launch_with_its_settings_or_the_problem(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vditui import cli
    from vditui.ui.app import VdiApp

    started: list[VdiApp] = []
    monkeypatch.setattr(VdiApp, "run", lambda app, *a, **k: started.append(app))
    monkeypatch.setenv("VDITUI_PASSWORD", "pw-from-env")
    path = write(tmp_path, HEAD + "grace = 2.5\n")
    assert cli.run_face(build_parser().parse_args(["--config", str(path)])) == 0
    app = started.pop()
    assert app.problem is None and app.settings is not None
    assert (app.settings.url, app.settings.grace, app.settings.password) == (
        "http://10.0.0.2:8088", 2.5, "pw-from-env")
    assert (app.config_path, app.profile_name) == (path, "p")

    missing = ["--config", str(tmp_path / "missing.toml")]
    assert cli.run_face(build_parser().parse_args(missing)) == 0
    app = started.pop()
    assert app.settings is None and app.problem is not None
    assert app.problem[:2] == ("Configuration problem",
                               f"{tmp_path / 'missing.toml'}: config file not found")


def test_a_setting_of_a_kind_without_a_check_fails_loudly() -> None:
    from dataclasses import dataclass, field

    from vditui.config.checks import check_of

    @dataclass
    class Odd:
        ratio: float = field(default=0.5, metadata={"doc": "a ratio", "kind": "ratio"})

    with pytest.raises(TypeError, match="setting 'ratio': no check for kind 'ratio'"):
        check_of(fields(Odd)[0])


def test_demo_hands_the_lab_to_launch_and_stops_it(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from vditui import cli, demo
    from vditui.ui.app import VdiApp

    stopped: list[bool] = []

    class FakeLab:
        def stop(self) -> None:
            stopped.append(True)

    target = LabTarget(url="http://127.0.0.1:8088", username="admin", password="lab-pw",
                       uri_template="qemu+tcp://{ip}/system", config_path=tmp_path / "d.toml")
    rates: list[float] = []

    def start_demo(chaos: float = 0.0) -> tuple[FakeLab, LabTarget]:
        rates.append(chaos)
        return FakeLab(), target

    monkeypatch.setattr(demo, "start_demo", start_demo)
    started: list[VdiApp] = []
    monkeypatch.setattr(VdiApp, "run", lambda app, *a, **k: started.append(app))
    assert cli.run_face(build_parser().parse_args(["--demo", "--grace", "1"])) == 0
    (app,) = started
    assert app.settings is not None and app.problem is None
    assert (app.settings.url, app.settings.password, app.settings.grace) == (
        target.url, "lab-pw", 1.0)
    assert (app.config_path, rates, stopped) == (target.config_path, [1.0], [True])


def test_the_audit_trail_and_history_live_in_the_state_dir_or_the_demo_s_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vditui.launch.state_dir", lambda: tmp_path / "state")
    start = resolve(Options(config=write(tmp_path, HEAD)), interactive=False, env=ENV)
    assert start.settings.audit_path == tmp_path / "state" / "audit.jsonl"
    assert start.settings.history_path == tmp_path / "state" / "history.sqlite3"
    lab = LabTarget(url="http://127.0.0.1:8088", username="admin", password="lab-pw",
                    uri_template="test:///default", config_path=tmp_path / "lab" / "d.toml")
    demo = resolve(Options(demo=True, lab=lab), interactive=False, env={})
    # Not in the lab's dir, which goes when the demo ends: in a demo dir that outlives it.
    assert demo.settings.audit_path == tmp_path / "state" / "demo" / "audit.jsonl"
    assert demo.settings.history_path == tmp_path / "state" / "demo" / "history.sqlite3"


def test_read_only_comes_from_the_flag_or_the_profile(tmp_path: Path) -> None:
    plain = write(tmp_path, HEAD)
    assert not resolve(Options(config=plain), interactive=False, env=ENV).settings.read_only
    for argv in (["--read-only", "act", "sync"], ["act", "sync", "--read-only"]):
        options = Options.from_args(build_parser().parse_args(["--config", str(plain), *argv]))
        assert options.read_only
        assert resolve(options, interactive=False, env=ENV).settings.read_only
    locked = write(tmp_path, HEAD + "read_only = true\n")
    assert resolve(Options(config=locked), interactive=False, env=ENV).settings.read_only
