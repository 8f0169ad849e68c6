"""Settings: which VDI platforms to watch, how to log in, and how to reach each host's libvirt.

The file is TOML in the platformdirs user config dir (``config_dir() / "config.toml"``, e.g.
``~/.config/vditui/config.toml``), or wherever ``--config`` points. It is read with ``tomllib``
(`vditui.config.load`) and written (`vditui.config.write`) with ``tomlkit``, so comments an
operator added survive. The package never imports Textual.

Each platform is a profile::

    default_profile = "prod"

    [profiles.prod]
    url = "https://vdi.example.com:8088"
    username = "admin"
    password_env = "OCV_PASSWORD"   # or password_command = "pass show vdi/prod",
                                    # or password = "..." (warns unless the file is chmod 600)
    verify_ssl = true
    uri_templates = ["qemu+tcp://{ip}/system", "qemu+ssh://root@{ip}/system"]
    refresh_interval = 30.0         # any field of vditui.core.settings.Settings may
    grace = 10.0                    # appear here (defaults and docs are there)

    [profiles.prod.hosts."hv-01"]   # per-host override, by VDI host name or IP
    uri = "qemu+tcp://10.0.0.5/system"

    [profiles.prod.hosts."hv-02"]   # or several, tried in order (uri or uris, not both)
    uris = ["qemu+ssh://root@10.0.0.6/system", "qemu+tcp://10.0.0.6/system"]

    [[profiles.prod.ack]]           # acknowledged drift: shown dimmed, not counted
    vm = "lic"                      # a VM name or glob; host = a name, IP or glob
    kind = "state"                  # a drift kind (machine name, or words: "only in VDI")
    field = "libvirt=shutoff"       # optional: one side's value (see vditui.core.acks)
    reason = "licence server kept off on purpose"   # required
    expires = 2027-03-01            # optional, a TOML date: the last day it applies

The layout operators used before profiles is still read, as a profile named "default"::

    [vdi]
    base_url = "https://vdi.example.com:8088"
    username = "admin"
    password = "..."
    verify_ssl = false
    connect_timeout = 5

    [libvirt]
    uri = "qemu+tcp://{ip}/system"  # one URI, or a template applied to every host

    [libvirt.hosts."hv-01"]         # where vditui saves per-host URIs for a legacy file
    uri = "qemu+ssh://root@10.0.0.5/system"

Templates may use ``{ip}`` and ``{name}`` (the host's VDI name); a host's ``uri`` (or each of
its ``uris``, in order) is tried before the templates, and the first that connects is kept
(``vditui.core.uris.candidates``). Saving from the reconnect screen replaces ``uri``, or puts
the URI first in ``uris`` (`vditui.config.write.save_host_uri`). The TUI's ``k`` key and
``vditui baseline`` append ``[[profiles.NAME.ack]]`` rules (`vditui.config.write.save_ack_rules`).
Both layouts may share a file, but then ``[profiles.default]`` is an error.

Precedence, highest first: command-line flag, then the chosen profile, then ``VDITUI_URL`` /
``VDITUI_USER`` (so an exported variable never silently retargets an explicit profile). The
password is the exception: ``VDITUI_PASSWORD`` beats every source in the file.
"""

from vditui.config.errors import ConfigError
from vditui.config.load import load_config, parse_config
from vditui.config.paths import config_dir, default_config_path, display_path, log_dir
from vditui.config.profile import LEGACY_PROFILE, Config, Profile, Secret
from vditui.config.resolve import resolve_password, resolve_profile

# `vditui.config.write` (tomlkit) is imported by the few callers that write.
__all__ = [
    "LEGACY_PROFILE",
    "Config",
    "ConfigError",
    "Profile",
    "Secret",
    "config_dir",
    "default_config_path",
    "display_path",
    "load_config",
    "log_dir",
    "parse_config",
    "resolve_password",
    "resolve_profile",
]
