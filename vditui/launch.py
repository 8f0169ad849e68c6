"""Where every face gets its settings: the command line's options, the config file, the
environment and the password sources become one `Launch`, resolved once.

The TUI (``vditui.ui.run``) and the headless commands (``vditui.commands``) both call `resolve`;
neither asks the other. ``--demo`` does not change the options behind anyone's back: the entry
point starts the lab (``vditui.demo``) and hands its coordinates over as a `LabTarget`, so this
module never imports the lab and the UI never reaches it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from vditui.config import Config, Profile, load_config, resolve_password, resolve_profile
from vditui.config.paths import state_dir
from vditui.core.settings import EngineSettings, values
from vditui.logsetup import degraded

INSECURE_WARNING = "TLS verification is off (--insecure / verify_ssl = false): the platform's " \
                   "identity is not checked"
DEMO_TIMEOUT = 2.0
"""``--demo``'s connect timeout unless ``--timeout`` says otherwise: the lab is on loopback."""
DEMO_GRACE = 3.0
"""``--demo``'s grace unless ``--grace`` says otherwise: long enough to see drift pending."""
AUDIT_FILE, HISTORY_FILE = "audit.jsonl", "history.sqlite3"
"""The audit trail and the drift history, in the state dir (the demo: in its own below)."""


DEMO_DIR = "demo"
"""``--demo``'s own state (audit trail, history) under the state dir: it outlives the demo, so
``vditui audit --demo`` and ``history --demo`` read it afterwards, and it never mixes with the
operator's own platforms'."""


def audit_path(demo: bool = False) -> Path:
    """Where actions are audited (``demo``: the demo's own trail)."""
    return (state_dir() / DEMO_DIR if demo else state_dir()) / AUDIT_FILE


def history_path(demo: bool = False) -> Path:
    """Where the drift history is kept (``demo``: the demo's own history)."""
    return (state_dir() / DEMO_DIR if demo else state_dir()) / HISTORY_FILE


@dataclass(frozen=True)
class LabTarget:
    """A running lab, for ``--demo``: the platform, its account and the hosts' URI template."""

    url: str
    username: str
    password: str = field(repr=False)
    uri_template: str
    config_path: Path
    """Where the TUI saves per-host URIs during the demo (the lab's own directory)."""
    host_uris: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Host name -> the URIs to try, in order, for the hosts the lab serves without tcp
    (ssh-only, tls-only)."""
    notes: tuple[str, ...] = ()
    """What the lab could not serve as the scenario asked (its fallbacks), one line each."""
    uri_templates: tuple[str, ...] = ()
    """Every template the lab's hosts answer to, in order (a lab mixing qemu and test-driver
    hosts has two); empty: `uri_template` alone."""


@dataclass(frozen=True)
class Options:
    """What the command line asked for. The password is never a flag (other users can read
    process arguments): it comes from the environment, the config, or a prompt."""

    config: Path | None = None
    profile: str | None = None
    url: str | None = None
    user: str | None = None
    uri_templates: tuple[str, ...] | None = None
    timeout: float | None = None
    grace: float | None = None
    insecure: bool = False
    read_only: bool = False
    """``--read-only``: every action disabled (a profile's ``read_only = true`` does it too)."""
    demo: bool = False
    """``--demo`` was given: the entry point starts a lab and sets `lab`."""
    lab: LabTarget | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        """The common options of ``vditui.cli``'s parser (absent ones stay unset)."""
        config = getattr(args, "config", None)
        templates = getattr(args, "uri_templates", None)
        return cls(config=Path(config) if config else None,
                   profile=getattr(args, "profile", None), url=getattr(args, "url", None),
                   user=getattr(args, "user", None),
                   uri_templates=tuple(templates) if templates is not None else None,
                   timeout=getattr(args, "timeout", None), grace=getattr(args, "grace", None),
                   insecure=bool(getattr(args, "insecure", False)),
                   read_only=bool(getattr(args, "read_only", False)),
                   demo=bool(getattr(args, "demo", False)))


@dataclass(frozen=True)
class Launch:
    """What a face starts with."""

    settings: EngineSettings
    warnings: tuple[str, ...]
    """For the operator to read before anything else (a readable password file, no TLS)."""
    config_path: Path
    """The file per-host URIs are saved to (it may not exist yet)."""
    profile: str
    """The profile those URIs are saved under."""


def resolve(options: Options, *, interactive: bool,
            env: Mapping[str, str] | None = None) -> Launch:
    """The settings for ``options``; a ``ConfigError`` says what is missing or wrong.

    With ``interactive`` and a terminal on stdin, a missing password is asked for.
    """
    env = os.environ if env is None else env
    lab = options.lab
    if lab is not None:
        # The lab is the whole configuration: no file is read, the flags may still tune it.
        config = Config(path=lab.config_path)
        profile = resolve_profile(
            config, url=lab.url, user=lab.username,
            uri_templates=list(lab.uri_templates) or [lab.uri_template],
            timeout=DEMO_TIMEOUT if options.timeout is None else options.timeout,
            grace=DEMO_GRACE if options.grace is None else options.grace,
            insecure=options.insecure, read_only=options.read_only, env=env)
        password = lab.password
    else:
        config = load_config(options.config)
        profile = resolve_profile(
            config, profile=options.profile, url=options.url, user=options.user,
            uri_templates=None if options.uri_templates is None else list(options.uri_templates),
            timeout=options.timeout, grace=options.grace, insecure=options.insecure,
            read_only=options.read_only, env=env)
        password = resolve_password(
            profile, env, prompt=getpass.getpass if interactive and sys.stdin.isatty() else None)
    warnings = list(config.warnings)
    if degraded():
        warnings.append(degraded())  # logging is off: said once, with the other warnings
    if not profile.verify_ssl:
        warnings.append(INSECURE_WARNING)
    # The demo keeps its trail and history apart from the operator's, in a dir that outlives
    # the lab (whose own dir goes when the demo ends).
    demo = lab is not None
    audit, history = audit_path(demo), history_path(demo)
    settings = replace(engine_settings(profile, password), audit_path=audit,
                       history_path=history)
    if lab is not None:
        warnings += lab.notes
        settings = replace(settings, host_uris={**settings.host_uris, **lab.host_uris})
    return Launch(settings, tuple(warnings), config.path, profile.name)


def engine_settings(profile: Profile, password: str) -> EngineSettings:
    """A resolved profile (url and username set) as the engine's settings."""
    if profile.url is None or profile.username is None:
        raise ValueError("engine_settings needs a resolved profile (url and username set)")
    return EngineSettings(url=profile.url, username=profile.username, password=password,
                          **{**values(profile), "host_uris": dict(profile.host_uris)})
