"""The config file: profiles, the legacy layout, precedence, passwords, errors and writing."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import traceback
from pathlib import Path

import platformdirs
import pytest

from vditui.config import (
    Config,
    ConfigError,
    Profile,
    Secret,
    display_path,
    load_config,
)
from vditui.config import paths as config
from vditui.config.resolve import resolve_password, resolve_profile, run_password_command
from vditui.config.write import save_host_uri
from vditui.core.settings import DEFAULTS
from vditui.tomlpos import find_line

SECRET = "hunter2-s3cret"
# Code that prints SECRET without the command line itself containing it.
PRINT_SECRET = "print('hunter2' + '-s3cret'"

EXAMPLE = """\
# Operators' own notes: keep me.
default_profile = "prod"

[profiles.prod]
url = "https://vdi.example.com:8088"
username = "admin"
password_env = "OCV_PASSWORD"          # where the password lives
verify_ssl = true
uri_templates = ["qemu+tcp://{ip}/system", "qemu+ssh://root@{ip}/system"]
refresh_interval = 15.0   # seconds between VDI re-reads
grace = 3
connect_timeout = 2.5
call_timeout = 7
page_size = 50
page_concurrency = 2
keepalive_interval = 0
keepalive_count = 1
reread_interval = 0
max_backoff = 60

[profiles.prod.hosts."hv-01"]
uri = "qemu+tcp://10.0.0.5/system"

[profiles.lab]
url = "http://127.0.0.1:8088/"
username = "lab"
"""

LEGACY = """\
# written by hand years ago
[vdi]
base_url = "https://old.example.com"
username = "ops"
verify_ssl = false
connect_timeout = 8

[libvirt]
uri = "qemu+ssh://root@{ip}/system"   # every host the same way
"""


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the one dir-lookup function at a temporary directory for every test."""
    home = tmp_path / "xdg" / "vditui"
    monkeypatch.setattr(config, "config_dir", lambda: home)
    return home


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def error_of(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "bad.toml", text))
    return info.value


# --- where the file is -----------------------------------------------------------------------


def test_dirs_come_from_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real config_dir, not the fixture's
    assert config.config_dir() == Path(platformdirs.user_config_dir("vditui"))
    assert config.default_config_path() == config.config_dir() / "config.toml"
    assert config.log_dir() == Path(platformdirs.user_log_dir("vditui"))


def test_missing_default_file_is_an_empty_config(config_home: Path) -> None:
    loaded = load_config(None)
    assert loaded == Config(path=config_home / "config.toml", found=False)
    assert loaded.profiles == {} and loaded.warnings == []


def test_default_file_is_read_from_the_patched_dir(config_home: Path) -> None:
    write(config_home / "config.toml", EXAMPLE)
    loaded = load_config(None)
    assert loaded.found and loaded.path == config_home / "config.toml"
    assert set(loaded.profiles) == {"prod", "lab"}


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_config(tmp_path / "nope.toml")
    assert str(tmp_path / "nope.toml") in str(info.value)


def test_display_path_abbreviates_home() -> None:
    path = Path.home() / ".config" / "vditui" / "config.toml"
    assert display_path(path) == "~/.config/vditui/config.toml"
    assert display_path(Path("/etc/vditui.toml")) == "/etc/vditui.toml"


# --- profiles --------------------------------------------------------------------------------


def test_profiles_are_read_with_every_setting(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path / "c.toml", EXAMPLE))
    assert loaded.default_profile == "prod"
    assert loaded.profiles["prod"] == Profile(
        name="prod",
        url="https://vdi.example.com:8088",
        username="admin",
        password_env="OCV_PASSWORD",
        verify_ssl=True,
        uri_templates=("qemu+tcp://{ip}/system", "qemu+ssh://root@{ip}/system"),
        host_uris={"hv-01": ("qemu+tcp://10.0.0.5/system",)},
        refresh_interval=15.0,
        grace=3.0,
        connect_timeout=2.5,
        call_timeout=7.0,
        page_size=50,
        page_concurrency=2,
        keepalive_interval=0,
        keepalive_count=1,
        reread_interval=0.0,
        max_backoff=60.0,
    )
    lab = loaded.profiles["lab"]
    assert lab.url == "http://127.0.0.1:8088"  # trailing slash dropped
    assert lab.uri_templates == DEFAULTS.uri_templates
    assert (lab.grace, lab.refresh_interval, lab.connect_timeout, lab.call_timeout) == (
        10.0,
        30.0,
        5.0,
        10.0,
    )
    assert (lab.page_size, lab.page_concurrency, lab.reread_interval, lab.max_backoff) == (
        100,
        4,
        300.0,
        4.0,
    )
    assert (lab.keepalive_interval, lab.keepalive_count, lab.verify_ssl) == (2, 2, True)
    assert isinstance(loaded.profiles["prod"].grace, float)


def test_default_profile_is_used_and_profile_flag_beats_it(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path / "c.toml", EXAMPLE))
    assert resolve_profile(loaded, env={}).name == "prod"
    assert resolve_profile(loaded, profile="lab", env={}).username == "lab"


def test_only_profile_is_chosen_without_default_profile(tmp_path: Path) -> None:
    text = '[profiles.solo]\nurl = "https://a.example"\nusername = "u"\n'
    loaded = load_config(write(tmp_path / "c.toml", text))
    assert loaded.default_profile is None
    assert resolve_profile(loaded, env={}).name == "solo"


def test_several_profiles_without_default_need_a_choice(tmp_path: Path) -> None:
    loaded = load_config(
        write(tmp_path / "c.toml", EXAMPLE.replace('default_profile = "prod"', ""))
    )
    with pytest.raises(ConfigError, match=r"choose one with --profile \(prod, lab\)"):
        resolve_profile(loaded, env={})


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path / "c.toml", EXAMPLE))
    with pytest.raises(ConfigError) as info:
        resolve_profile(loaded, profile="staging", env={})
    assert "unknown profile 'staging'; known profiles: prod, lab" in str(info.value)
    assert str(tmp_path / "c.toml") in str(info.value)


def test_unknown_profile_without_any_file(config_home: Path) -> None:
    with pytest.raises(ConfigError, match="no profiles are defined"):
        resolve_profile(load_config(None), profile="prod", url="https://a", user="u", env={})


def test_host_uri_is_found_by_name_then_ip() -> None:
    profile = Profile(host_uris={"hv-01": ("qemu+tcp://a/system",),
                                 "10.0.0.9": ("qemu+tcp://b/system", "qemu+tls://b/system")})
    assert profile.fixed_uris("hv-01", "10.0.0.1") == ("qemu+tcp://a/system",)
    assert profile.fixed_uris("hv-09", "10.0.0.9") == ("qemu+tcp://b/system",
                                                       "qemu+tls://b/system")
    assert profile.fixed_uris("hv-02", "10.0.0.2") == ()


# --- the legacy layout -----------------------------------------------------------------------


def test_legacy_layout_becomes_the_default_profile(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path / "c.toml", LEGACY))
    assert loaded.default_profile == "default"
    profile = resolve_profile(loaded, env={})
    assert profile == Profile(
        name="default",
        url="https://old.example.com",
        username="ops",
        verify_ssl=False,
        connect_timeout=8.0,
        uri_templates=("qemu+ssh://root@{ip}/system",),
    )


def test_legacy_layout_with_a_plain_uri_and_saved_hosts(tmp_path: Path) -> None:
    text = LEGACY.replace("root@{ip}", "root@10.0.0.1") + (
        '\n[libvirt.hosts."10.0.0.2"]\nuri = "qemu+tcp://10.0.0.2/system"\n'
    )
    profile = load_config(write(tmp_path / "c.toml", text)).profiles["default"]
    assert profile.uri_templates == ("qemu+ssh://root@10.0.0.1/system",)
    assert profile.host_uris == {"10.0.0.2": ("qemu+tcp://10.0.0.2/system",)}


def test_legacy_and_profile_layouts_can_share_a_file(tmp_path: Path) -> None:
    text = LEGACY + '\n[profiles.new]\nurl = "https://new.example"\nusername = "n"\n'
    loaded = load_config(write(tmp_path / "c.toml", text))
    assert set(loaded.profiles) == {"default", "new"}
    assert loaded.default_profile is None


def test_legacy_layout_clashes_with_a_profile_named_default(tmp_path: Path) -> None:
    text = LEGACY + '\n[profiles.default]\nurl = "https://new.example"\n'
    error = error_of(tmp_path, text)
    assert error.line == 11 and error.key == "profiles.default"
    assert "already defined by the [vdi]/[libvirt] tables" in str(error)


# --- precedence: flag > profile > VDITUI_URL / VDITUI_USER -----------------------------------


def test_flags_beat_the_profile(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path / "c.toml", EXAMPLE))
    env = {"VDITUI_URL": "https://env.example", "VDITUI_USER": "env-user"}
    profile = resolve_profile(
        loaded,
        url="https://flag.example:9000",
        user="flag-user",
        uri_templates=["qemu+tls://{name}/system"],
        grace=0,
        insecure=True,
        env=env,
    )
    assert profile.url == "https://flag.example:9000"
    assert profile.username == "flag-user"
    assert profile.uri_templates == ("qemu+tls://{name}/system",)
    assert profile.grace == 0.0
    assert profile.verify_ssl is False
    assert profile.host_uris == {"hv-01": ("qemu+tcp://10.0.0.5/system",)}  # untouched


def test_profile_beats_the_environment(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path / "c.toml", EXAMPLE))
    env = {"VDITUI_URL": "https://env.example", "VDITUI_USER": "env-user"}
    profile = resolve_profile(loaded, env=env)
    assert (profile.url, profile.username) == ("https://vdi.example.com:8088", "admin")


def test_environment_fills_what_the_profile_lacks(tmp_path: Path) -> None:
    text = '[profiles.p]\nuri_templates = ["qemu+tcp://{ip}/system"]\n'
    loaded = load_config(write(tmp_path / "c.toml", text))
    env = {"VDITUI_URL": "https://env.example", "VDITUI_USER": "env-user"}
    profile = resolve_profile(loaded, env=env)
    assert (profile.name, profile.url, profile.username) == (
        "p",
        "https://env.example",
        "env-user",
    )


def test_timeout_sets_connect_and_raises_call_timeout(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path / "c.toml", EXAMPLE))  # connect 2.5, call 7
    short = resolve_profile(loaded, timeout=3, env={})
    assert (short.connect_timeout, short.call_timeout) == (3.0, 7.0)
    long = resolve_profile(loaded, timeout=20, env={})
    assert (long.connect_timeout, long.call_timeout) == (20.0, 20.0)


def test_no_file_needed_with_url_user_and_password_from_outside(config_home: Path) -> None:
    env = {"VDITUI_PASSWORD": SECRET, "VDITUI_USER": "env-user"}
    profile = resolve_profile(load_config(None), url="https://vdi.example.com", env=env)
    assert profile.name == "default"
    assert (profile.url, profile.username) == ("https://vdi.example.com", "env-user")
    assert profile.uri_templates == DEFAULTS.uri_templates
    assert resolve_password(profile, env, prompt=None) == SECRET
    assert not (config_home / "config.toml").exists()


def test_missing_url_and_user_say_how_to_give_them(config_home: Path) -> None:
    with pytest.raises(ConfigError, match="no VDI URL: pass --url, set VDITUI_URL"):
        resolve_profile(load_config(None), user="u", env={})
    with pytest.raises(ConfigError, match="no user name: pass --user, set VDITUI_USER"):
        resolve_profile(load_config(None), url="https://a.example", env={})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "vdi.example.com"}, '--url: expected an http(s)://host[:port] URL, got "vdi.'),
        ({"uri_templates": ["qemu"]}, "--uri: expected a non-empty array of libvirt URI"),
        ({"timeout": 0}, "--timeout: expected a number of seconds > 0, got 0"),
        ({"grace": -1}, "--grace: expected a number of seconds >= 0, got -1"),
    ],
)
def test_bad_flags_are_named(kwargs: dict[str, object], message: str) -> None:
    base = {"url": "https://a.example", "user": "u"}
    with pytest.raises(ConfigError) as info:
        resolve_profile(Config(), **{**base, **kwargs}, env={})  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_bad_environment_url_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^VDITUI_URL: expected an http"):
        resolve_profile(Config(), user="u", env={"VDITUI_URL": "ftp://x"})


# --- passwords -------------------------------------------------------------------------------


def command(code: str) -> str:
    """A password_command running ``code`` in this Python, quoted as an operator would."""
    return shlex.join([sys.executable, "-c", code])


def test_vditui_password_beats_every_other_source() -> None:
    profile = Profile(
        password=Secret("file"), password_env="OCV", password_command=command("print('cmd')")
    )
    env = {"VDITUI_PASSWORD": "env", "OCV": "named"}
    assert resolve_password(profile, env, prompt=lambda _: "typed") == "env"


def test_password_env_beats_command_and_file() -> None:
    profile = Profile(
        password=Secret("file"), password_env="OCV", password_command=command("print('cmd')")
    )
    assert resolve_password(profile, {"OCV": "named"}, prompt=None) == "named"


def test_password_command_beats_file(tmp_path: Path) -> None:
    text = f"[profiles.p]\npassword_command = {json.dumps(command('print(7)'))}\npassword = 'f'\n"
    profile = load_config(write(tmp_path / "c.toml", text)).profiles["p"]
    assert resolve_password(profile, {}, prompt=None) == "7"


def test_password_command_uses_the_first_line_stripped() -> None:
    profile = Profile(password_command=command("print('  pw  '); print('user: admin')"))
    assert resolve_password(profile, {}, prompt=None) == "pw"


def test_password_command_runs_without_a_shell() -> None:
    code = "import sys; print(sys.argv[1])"
    profile = Profile(password_command=shlex.join([sys.executable, "-c", code, "$HOME;x"]))
    assert resolve_password(profile, {"HOME": "/nowhere"}, prompt=None) == "$HOME;x"


def test_failing_password_command_names_exit_code_never_output() -> None:
    code = f"import sys; {PRINT_SECRET}, file=sys.stderr); {PRINT_SECRET}); sys.exit(3)"
    with pytest.raises(ConfigError) as info:
        resolve_password(Profile(password_command=command(code)), {}, prompt=None)
    assert "exit code 3" in str(info.value)
    assert SECRET not in "".join(traceback.format_exception(info.value))


def test_hung_password_command_times_out_without_leaking() -> None:
    code = f"import time; {PRINT_SECRET}, flush=True); time.sleep(30)"
    with pytest.raises(ConfigError, match=r"timed out after 0\.5 s") as info:
        run_password_command(command(code), timeout=0.5)
    assert SECRET not in "".join(traceback.format_exception(info.value))
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_password_program_and_empty_output_are_errors() -> None:
    with pytest.raises(ConfigError, match="program 'no-such-vditui-helper' not found"):
        run_password_command("no-such-vditui-helper show vdi")
    with pytest.raises(ConfigError, match="printed no password"):
        run_password_command(command("pass"))


def test_plain_password_from_the_file(tmp_path: Path) -> None:
    text = f'[profiles.p]\npassword = "{SECRET}"\n'
    profile = load_config(write(tmp_path / "c.toml", text)).profiles["p"]
    assert resolve_password(profile, {}, prompt=None) == SECRET


def test_prompt_is_the_last_resort() -> None:
    asked: list[str] = []
    profile = Profile(url="https://a.example", username="admin", password_env="UNSET_VAR")

    def prompt(question: str) -> str:
        asked.append(question)
        return "typed"

    assert resolve_password(profile, {}, prompt=prompt) == "typed"
    assert asked == ["Password for admin at https://a.example: "]


def test_no_password_anywhere_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_password(Profile(password_env="OCV"), {}, prompt=None)
    assert str(info.value).startswith(
        "no password: set VDITUI_PASSWORD, password_env, password_command, or run interactively"
    )
    assert "OCV" in str(info.value)


# --- the secret stays secret -----------------------------------------------------------------


def test_secret_hides_itself() -> None:
    secret = Secret(SECRET)
    assert repr(secret) == str(secret) == f"{secret}" == "***"
    assert secret.reveal() == SECRET
    assert secret == Secret(SECRET) and secret != Secret("other")


def test_password_never_appears_in_reprs_or_errors(tmp_path: Path) -> None:
    text = f'[profiles.p]\nurl = "https://a.example"\npassword = "{SECRET}"\n'
    loaded = load_config(write(tmp_path / "c.toml", text))
    profile = resolve_profile(loaded, user="u", env={})
    assert profile.password == Secret(SECRET)
    for shown in (repr(profile), str(profile), repr(loaded), str(loaded), repr(profile.password)):
        assert SECRET not in shown
    with pytest.raises(ConfigError) as info:
        resolve_profile(loaded, profile="nope", env={})
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("value", [f'["{SECRET}"]', "{ value = '" + SECRET + "' }"])
def test_badly_typed_password_is_not_echoed(tmp_path: Path, value: str) -> None:
    error = error_of(tmp_path, f"[profiles.p]\npassword = {value}\n")
    assert str(error) == f"{tmp_path / 'bad.toml'}:2: profiles.p.password: expected a string"
    assert SECRET not in repr(error)


# --- permissions -----------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="mode bits")
def test_password_in_a_file_others_can_read_warns(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", f'[profiles.p]\npassword = "{SECRET}"\n', mode=0o644)
    (warning,) = load_config(path).warnings
    assert str(path) in warning and f"chmod 600 {path}" in warning
    assert SECRET not in warning
    path.chmod(0o600)
    assert load_config(path).warnings == []


@pytest.mark.skipif(os.name != "posix", reason="mode bits")
def test_readable_file_without_a_password_is_fine(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "c.toml", EXAMPLE, mode=0o644)).warnings == []


# --- validation: FILE:LINE: KEY: expected ..., got ... ----------------------------------------

PROFILE_HEAD = '# a comment\n\n[profiles.prod]\nurl = "https://a.example"\n'  # 4 lines


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ('grace = "ten"', "profiles.prod.grace", 'expected a number of seconds >= 0, got "ten"'),
        ("refresh_interval = 0", "profiles.prod.refresh_interval", "seconds > 0, got 0"),
        ("connect_timeout = -1", "profiles.prod.connect_timeout", "seconds > 0, got -1"),
        ("call_timeout = true", "profiles.prod.call_timeout", "seconds > 0, got true"),
        ("max_backoff = inf", "profiles.prod.max_backoff", "seconds > 0, got inf"),
        ("reread_interval = -5", "profiles.prod.reread_interval", "seconds >= 0, got -5"),
        ("page_size = 1.5", "profiles.prod.page_size", "a whole number >= 1, got 1.5"),
        ("page_concurrency = 0", "profiles.prod.page_concurrency", "whole number >= 1, got 0"),
        ("keepalive_count = 0", "profiles.prod.keepalive_count", "whole number >= 1, got 0"),
        ("keepalive_interval = -1", "profiles.prod.keepalive_interval", ">= 0, got -1"),
        ('verify_ssl = "yes"', "profiles.prod.verify_ssl", 'expected true or false, got "yes"'),
        ('username = ""', "profiles.prod.username", 'a non-empty string, got ""'),
        ('password_env = "1BAD"', "profiles.prod.password_env", "variable name"),
        ('password_command = ""', "profiles.prod.password_command", "a command line"),
        ('uri_templates = "qemu:///system"', "profiles.prod.uri_templates", 'got "qemu:///'),
        ("uri_templates = []", "profiles.prod.uri_templates", "non-empty array"),
        (
            'uri_templates = ["qemu+tcp://{ip}/system", "hv-01"]',
            "profiles.prod.uri_templates",
            'containing :// (e.g. qemu+tcp://{ip}/system), got "hv-01"',
        ),
        (
            'uri_templates = ["qemu+tcp://{IP}/system"]',
            "profiles.prod.uri_templates",
            'got "qemu+tcp://{IP}/system"',
        ),
        ("gracee = 1", "profiles.prod.gracee", "unknown setting; did you mean grace? valid: "),
        ("hosts = 3", "profiles.prod.hosts", "expected a table of hosts, got 3"),
    ],
)
def test_bad_profile_settings_name_file_line_and_key(
    tmp_path: Path, body: str, key: str, message: str
) -> None:
    error = error_of(tmp_path, PROFILE_HEAD + "\n" + body + "  # oops\n")
    assert str(error).startswith(f"{tmp_path / 'bad.toml'}:6: {key}: ")
    assert message in str(error)
    assert (error.line, error.key) == (6, key)


@pytest.mark.parametrize(
    ("url", "got"),
    [
        ("vdi.example.com", '"vdi.example.com"'),
        ("ftp://vdi.example.com", '"ftp://vdi.example.com"'),
        ("https://vdi.example.com/api", '"https://vdi.example.com/api"'),
        ("https://vdi.example.com:port", '"https://vdi.example.com:port"'),
        ("https://", '"https://"'),
        ("https://a.example?x=1", '"https://a.example?x=1"'),
        (8088, "8088"),
    ],
)
def test_bad_urls(tmp_path: Path, url: object, got: str) -> None:
    value = f'"{url}"' if isinstance(url, str) else str(url)
    error = error_of(tmp_path, f"[profiles.prod]\nusername = 'u'\nurl = {value}\n")
    assert str(error) == (
        f"{tmp_path / 'bad.toml'}:3: profiles.prod.url: "
        f"expected an http(s)://host[:port] URL, got {got}"
    )


def test_unknown_setting_lists_the_valid_ones(tmp_path: Path) -> None:
    error = error_of(tmp_path, PROFILE_HEAD + "colour = 'red'\n")
    assert error.line == 5 and error.key == "profiles.prod.colour"
    for valid in ("grace", "url", "hosts", "uri_templates", "password_command"):
        assert valid in str(error)


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        ("# top\nprofile = 'prod'\n", 2, "profile", "did you mean profiles?"),
        ('default_profile = "nope"\n[profiles.a]\n', 1, "default_profile", '(a), got "nope"'),
        ("profiles = 3\n", 1, "profiles", "expected a table, got 3"),
        ("[profiles]\nprod = 3\n", 2, "profiles.prod", "expected a table, got 3"),
        (
            '[profiles.p.hosts."hv-01"]\nuri = "10.0.0.5"\n',
            2,
            "profiles.p.hosts.hv-01.uri",
            'containing :// (placeholders: {ip}, {name}), got "10.0.0.5"',
        ),
        (
            '[profiles.p.hosts."10.0.0.5"]\nurl = "qemu+tcp://10.0.0.5/system"\n',
            2,
            'profiles.p.hosts."10.0.0.5".url',
            "unknown setting; did you mean uri? valid: uri",
        ),
        ('[profiles.p.hosts."hv-01"]\n# nothing\n', 1, "profiles.p.hosts.hv-01", "missing uri"),
        ("[vdi]\nbase_url = 'https://a.example'\nurl = 'x'\n", 3, "vdi.url", "valid: base_url"),
        ("[vdi]\nhosts = {}\n", 2, "vdi.hosts", "unknown setting"),
        ("[vdi]\nconnect_timeout = 'slow'\n", 2, "vdi.connect_timeout", 'got "slow"'),
        ("\n[libvirt]\nuri = 'hv-01'\n", 3, "libvirt.uri", 'got "hv-01"'),
        ("[libvirt]\nuri = 'qemu:///system'\nurl = 1\n", 3, "libvirt.url", "valid: hosts, uri"),
        ("[profiles]\np = { url = 'https://a', grace = -1 }\n", 2, "profiles.p.grace", ">= 0"),
        ("[profiles.p]\ngrace = 1\n\n[profiles.p.x]\n", 4, "profiles.p.x", "unknown setting"),
    ],
)
def test_every_error_has_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    error = error_of(tmp_path, text)
    assert str(error).startswith(f"{tmp_path / 'bad.toml'}:{line}: {key}: ")
    assert message in str(error)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[profiles.p]\nurl = "https://a"\ngrace = \n', 3),
        ("# one\n# two\n[profiles.p\n", 3),
        ('[profiles.p]\nurl = "a"\nurl = "b"\n', 3),
        ("[profiles.p]\nuri_templates = [\n  'qemu:///system',\n", 3),
    ],
)
def test_toml_syntax_errors_name_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    error = error_of(tmp_path, text)
    assert str(error).startswith(f"{tmp_path / 'bad.toml'}:{line}: invalid TOML: ")
    assert error.line == line


def test_non_utf8_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"[profiles.p]\nusername = '\xff'\n")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config(path)


def test_find_line_handles_quotes_dots_and_multiline_strings() -> None:
    text = (
        "[profiles.p]\n"  # 1
        'note = """\n'  # 2
        "grace = 3\n"  # 3: inside a string, not a key
        '"""\n'  # 4
        "  grace = 4\n"  # 5
        "[ profiles . 'q' . hosts . \"a.b\" ]\n"  # 6
        "uri = 'x://y'\n"  # 7
        "[profiles]\n"  # 8
        "r.url = 'https://r'\n"  # 9
    )
    assert find_line(text, ["profiles", "p", "grace"]) == 5
    assert find_line(text, ["profiles", "q", "hosts", "a.b", "uri"]) == 7
    assert find_line(text, ["profiles", "r", "url"]) == 9
    assert find_line(text, ["profiles", "p", "missing"]) == 1  # the nearest parent
    assert find_line(text, ["nothing"]) is None


# --- writing ---------------------------------------------------------------------------------


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_save_host_uri_adds_a_table_and_keeps_everything_else(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", EXAMPLE)
    save_host_uri(path, "lab", "hv-02", "qemu+ssh://root@10.0.0.6/system")
    assert path.read_text() == EXAMPLE + (
        '\n[profiles.lab.hosts."hv-02"]\nuri = "qemu+ssh://root@10.0.0.6/system"\n'
    )
    save_host_uri(path, "prod", "10.0.0.7", "qemu+tcp://10.0.0.7/system")
    hv01 = '[profiles.prod.hosts."hv-01"]\nuri = "qemu+tcp://10.0.0.5/system"\n'
    added = '[profiles.prod.hosts."10.0.0.7"]\nuri = "qemu+tcp://10.0.0.7/system"\n'
    assert path.read_text() == EXAMPLE.replace(hv01, hv01 + "\n" + added) + (
        '\n[profiles.lab.hosts."hv-02"]\nuri = "qemu+ssh://root@10.0.0.6/system"\n'
    )
    hosts = load_config(path).profiles["prod"].host_uris
    assert hosts == {
        "hv-01": ("qemu+tcp://10.0.0.5/system",),
        "10.0.0.7": ("qemu+tcp://10.0.0.7/system",),
    }


def test_save_host_uri_for_a_profile_without_hosts_in_the_middle(tmp_path: Path) -> None:
    text = '# c\n[profiles.a]\nurl = "https://a.example"  # A\n\n[profiles.b]\ngrace = 1\n'
    path = write(tmp_path / "c.toml", text)
    save_host_uri(path, "a", "hv-01", "qemu+tcp://1.2.3.4/system")
    assert path.read_text() == (
        '# c\n[profiles.a]\nurl = "https://a.example"  # A\n\n'
        '[profiles.a.hosts."hv-01"]\nuri = "qemu+tcp://1.2.3.4/system"\n\n'
        "[profiles.b]\ngrace = 1\n"
    )


def test_save_host_uri_replaces_an_existing_uri(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", EXAMPLE)
    save_host_uri(path, "prod", "hv-01", "qemu+tls://hv-01.example/system")
    assert path.read_text() == EXAMPLE.replace(
        'uri = "qemu+tcp://10.0.0.5/system"', 'uri = "qemu+tls://hv-01.example/system"'
    )
    assert load_config(path).profiles["prod"].host_uris == {
        "hv-01": ("qemu+tls://hv-01.example/system",)
    }


def test_save_host_uri_into_inline_tables(tmp_path: Path) -> None:
    text = '[profiles]\np = { hosts = { a = { uri = "qemu+tcp://a/system" } } }\n'
    path = write(tmp_path / "c.toml", text)
    save_host_uri(path, "p", "b", "qemu+tcp://b/system")
    assert load_config(path).profiles["p"].host_uris == {
        "a": ("qemu+tcp://a/system",),
        "b": ("qemu+tcp://b/system",),
    }


@pytest.mark.skipif(os.name != "posix", reason="mode bits")
def test_save_host_uri_writes_mode_0600_atomically(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", EXAMPLE, mode=0o644)
    save_host_uri(path, "prod", "hv-03", "qemu+tcp://10.0.0.8/system")
    assert mode_of(path) == 0o600
    # No temp file left; the lock file beside it stays (it serialises writers).
    assert sorted(p.name for p in tmp_path.iterdir()) == [".c.toml.lock", "c.toml"]


def test_save_host_uri_creates_a_missing_file_and_dir(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.toml"
    save_host_uri(path, "default", "hv-01", "qemu+tcp://10.0.0.5/system")
    assert (
        path.read_text() == '[profiles.default.hosts."hv-01"]\nuri = "qemu+tcp://10.0.0.5/system"\n'
    )
    assert mode_of(path) == 0o600
    loaded = load_config(path)
    profile = resolve_profile(loaded, url="https://a.example", user="u", env={})
    assert profile.host_uris == {"hv-01": ("qemu+tcp://10.0.0.5/system",)}


def test_save_host_uri_in_a_legacy_file_goes_under_libvirt(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", LEGACY)
    save_host_uri(path, "default", "hv-01", "qemu+tcp://10.0.0.5/system")
    assert path.read_text() == LEGACY + (
        '\n[libvirt.hosts."hv-01"]\nuri = "qemu+tcp://10.0.0.5/system"\n'
    )
    profile = load_config(path).profiles["default"]
    assert profile.host_uris == {"hv-01": ("qemu+tcp://10.0.0.5/system",)}
    assert profile.uri_templates == ("qemu+ssh://root@{ip}/system",)


def test_save_host_uri_refuses_a_symlink_and_leaves_its_target(tmp_path: Path) -> None:
    # vditui may run as root: a link in place of the config is never written through.
    real = write(tmp_path / "dotfiles" / "vditui.toml", EXAMPLE, mode=0o644)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match=r"config\.toml: cannot use: is a symbolic link"):
        save_host_uri(link, "prod", "hv-01", "qemu+tcp://10.9.9.9/system")
    assert link.is_symlink()
    assert real.read_text() == EXAMPLE
    assert mode_of(real) == 0o644


def test_save_host_uri_refuses_a_broken_file_and_a_bad_uri(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[profiles.p]\ngrace = 'x'\n")
    with pytest.raises(ConfigError, match=r":2: profiles.p.grace: "):
        save_host_uri(path, "p", "hv-01", "qemu+tcp://a/system")
    assert path.read_text() == "[profiles.p]\ngrace = 'x'\n"
    with pytest.raises(ConfigError, match="uri: expected a libvirt URI"):
        save_host_uri(tmp_path / "other.toml", "p", "hv-01", "10.0.0.5")
    assert not (tmp_path / "other.toml").exists()
    path.write_text("[profiles.p]\nhosts = 3\n")
    with pytest.raises(ConfigError, match=r":2: profiles\.p\.hosts: expected a table of hosts"):
        save_host_uri(path, "p", "hv-01", "qemu+tcp://a/system")


def test_config_modules_never_import_textual() -> None:
    code = "import sys, vditui.config, vditui.config.write; sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
