"""Several URIs per host (``uris = [...]``): read from the file with file:line errors, tried in
order before the templates, and a URI saved from the reconnect screen put first."""

from __future__ import annotations

from pathlib import Path

import pytest

from vditui.config import ConfigError, load_config
from vditui.config.write import save_host_uri
from vditui.core.settings import EngineSettings
from vditui.core.uris import DEFAULT_TEMPLATES, candidates

SSH = "qemu+ssh://root@10.0.0.5/system"
TCP = "qemu+tcp://10.0.0.5/system"
TLS = "qemu+tls://hv-01.example/system"
HEAD = '[profiles.p]\nurl = "https://vdi.example"\nusername = "u"\n\n'


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def error_of(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "bad.toml", text))
    return info.value


def test_uris_list_keeps_its_order_beside_a_single_uri(tmp_path: Path) -> None:
    text = HEAD + (f'[profiles.p.hosts."hv-01"]\nuris = ["{SSH}", "{TCP}"]\n\n'
                   f'[profiles.p.hosts."10.0.0.9"]\nuri = "{TLS}"\n')
    profile = load_config(write(tmp_path / "c.toml", text)).profiles["p"]
    assert profile.host_uris == {"hv-01": (SSH, TCP), "10.0.0.9": (TLS,)}
    assert profile.fixed_uris("hv-01", "10.0.0.5") == (SSH, TCP)
    assert profile.fixed_uris("hv-09", "10.0.0.9") == (TLS,)


def test_uris_in_an_inline_table(tmp_path: Path) -> None:
    text = HEAD + f'[profiles.p.hosts]\nhv-01 = {{ uris = ["{TCP}", "{SSH}"] }}\n'
    assert load_config(write(tmp_path / "c.toml", text)).profiles["p"].host_uris == {
        "hv-01": (TCP, SSH)}


@pytest.mark.parametrize(("entry", "key", "message"), [
    ("uris = []", "uris", "expected a non-empty array of libvirt URIs containing ://"),
    (f'uris = "{SSH}"', "uris", "expected a non-empty array of libvirt URIs"),
    (f'uris = ["{SSH}", "10.0.0.5"]', "uris", 'got "10.0.0.5"'),
    (f'uris = ["{SSH}", 3]', "uris", "got 3"),
    (f'uris = ["{SSH}", "{TCP}", "{SSH}"]', "uris", "expected each URI once"),
    (f'uri = "{TCP}"\nuris = ["{SSH}"]', "uris", "give uri or uris, not both"),
    (f'url = "{TCP}"', "url", "unknown setting; did you mean uri? valid: uri, uris"),
])
def test_bad_host_entries_name_file_line_and_key(tmp_path: Path, entry: str, key: str,
                                                 message: str) -> None:
    text = HEAD + f'[profiles.p.hosts."hv-01"]\n# a comment\n{entry}\n'
    error = error_of(tmp_path, text)
    line = max(n for n, x in enumerate(text.splitlines(), 1) if x.startswith(f"{key} ="))
    assert (error.line, error.key) == (line, f"profiles.p.hosts.hv-01.{key}")
    assert str(error).startswith(f'{tmp_path / "bad.toml"}:{line}: profiles.p.hosts.hv-01.'
                                 f"{key}: ")
    assert message in str(error)


def test_a_host_entry_without_uri_or_uris(tmp_path: Path) -> None:
    error = error_of(tmp_path, HEAD + '[profiles.p.hosts."hv-01"]\n')
    assert (error.line, error.key) == (5, "profiles.p.hosts.hv-01")
    assert "missing uri (or uris" in str(error)


def test_candidates_try_every_fixed_uri_in_order_then_the_templates() -> None:
    got = candidates(DEFAULT_TEMPLATES, "10.0.0.5", "hv-01", (SSH, "qemu+tls://a/system"))
    assert got == [SSH, "qemu+tls://a/system", TCP, "qemu+tls://10.0.0.5/system"]
    # A fixed URI that a template renders again is tried once, where the operator put it.
    assert candidates(("qemu+tcp://{ip}/system",), "10.0.0.5", "hv-01", (TCP, SSH)) == [TCP, SSH]


def test_the_engine_settings_carry_the_lists_to_the_candidates() -> None:
    settings = EngineSettings(url="http://x", username="u", password="p",
                              uri_templates=("qemu+tcp://{ip}/system",),
                              host_uris={"hv-01": (SSH, TLS)})
    assert candidates(settings.uri_templates, "10.0.0.5", "hv-01",
                      settings.fixed_uris("hv-01", "10.0.0.5")) == [SSH, TLS, TCP]


def test_saving_a_uri_puts_it_first_in_an_existing_list(tmp_path: Path) -> None:
    body = f'[profiles.p.hosts."hv-01"]\nuris = [\n  "{SSH}",  # keys first\n  "{TCP}",\n]\n'
    path = write(tmp_path / "c.toml", HEAD + body)
    save_host_uri(path, "p", "hv-01", TCP)  # listed already: moved to the front
    assert load_config(path).profiles["p"].host_uris == {"hv-01": (TCP, SSH)}
    assert "# keys first" in path.read_text() and "uri =" not in path.read_text()
    save_host_uri(path, "p", "hv-01", TLS)  # new: goes first, the others stay as fallbacks
    assert load_config(path).profiles["p"].host_uris == {"hv-01": (TLS, TCP, SSH)}
    assert path.read_text().count(TLS) == 1


def test_saving_over_a_single_uri_still_replaces_it(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", HEAD + f'[profiles.p.hosts."hv-01"]\nuri = "{TCP}"\n')
    save_host_uri(path, "p", "hv-01", SSH)
    assert path.read_text() == HEAD + f'[profiles.p.hosts."hv-01"]\nuri = "{SSH}"\n'
