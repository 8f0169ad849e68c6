"""Resolving: the config file's chosen profile, the command-line flags and the environment
become the one `Profile` to run with, and the password is fetched
(``VDITUI_PASSWORD``, ``password_env``, ``password_command``, the file, or a prompt).

Precedence is described in :mod:`vditui.config`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from vditui.config import checks
from vditui.config.checks import Check
from vditui.config.errors import UNSET, ConfigError
from vditui.config.profile import Config, Profile

PASSWORD_COMMAND_TIMEOUT = 10.0
"""Seconds a ``password_command`` may run; a hung pinentry must not freeze start-up forever."""


def resolve_profile(
    config: Config,
    *,
    profile: str | None = None,
    url: str | None = None,
    user: str | None = None,
    uri_templates: list[str] | None = None,
    timeout: float | None = None,
    grace: float | None = None,
    insecure: bool = False,
    read_only: bool = False,
    env: Mapping[str, str] | None = None,
) -> Profile:
    """The `Profile` to run with: the chosen profile, overridden by command-line options.

    ``profile`` falls back to ``default_profile``, then to the only profile there is. With no
    profiles at all, ``--url``/``--user`` (or ``VDITUI_URL``/``VDITUI_USER``) suffice.
    ``timeout`` sets ``connect_timeout`` and raises ``call_timeout`` to at least the same value:
    a call should never get less time than the connection it runs on.
    """
    env = os.environ if env is None else env
    source = config.path if config.found else None
    name = profile or config.default_profile
    if name is None and len(config.profiles) == 1:
        name = next(iter(config.profiles))
    if name is None and config.profiles:
        known = ", ".join(config.profiles)
        raise ConfigError(
            source,
            None,
            None,
            f"several profiles and no default_profile: choose one with --profile ({known})",
        )
    if name is None:
        base = Profile()
    elif name in config.profiles:
        base = config.profiles[name]
    else:
        known = ", ".join(config.profiles)
        listed = f"known profiles: {known}" if known else "no profiles are defined"
        raise ConfigError(source, None, None, f"unknown profile {name!r}; {listed}")

    changes: dict[str, Any] = {}
    for option, variable, value, current, field_name in (
        ("--url", "VDITUI_URL", url, base.url, "url"),
        ("--user", "VDITUI_USER", user, base.username, "username"),
    ):
        if value is None and current is None and env.get(variable):
            option, value = variable, env[variable]
        if value is not None:
            changes[field_name] = _option(option, value, checks.FIELDS[field_name])
    if uri_templates is not None:
        changes["uri_templates"] = _option("--uri", list(uri_templates),
                                           checks.FIELDS["uri_templates"])
    if timeout is not None:
        seconds = _option("--timeout", timeout, checks.FIELDS["connect_timeout"])
        changes["connect_timeout"] = seconds
        changes["call_timeout"] = max(base.call_timeout, seconds)
    if grace is not None:
        changes["grace"] = _option("--grace", grace, checks.FIELDS["grace"])
    if insecure:
        changes["verify_ssl"] = False
    if read_only:  # a flag can only turn read-only on; a profile's read_only = true stands
        changes["read_only"] = True
    resolved = replace(base, **changes)

    where = f"profile {resolved.name!r}" if name is not None else "a profile"
    if resolved.url is None:
        raise ConfigError(expected=f"no VDI URL: pass --url, set VDITUI_URL, or set url in {where}")
    if resolved.username is None:
        raise ConfigError(
            expected=f"no user name: pass --user, set VDITUI_USER, or set username in {where}"
        )
    return resolved


def _option(option: str, value: Any, check: Check) -> Any:
    try:
        return check(value)
    except checks.Invalid as exc:
        got = value if exc.got is UNSET else exc.got
        raise ConfigError(None, None, option, f"expected {exc.expected}", got) from None


def resolve_password(
    profile: Profile,
    env: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> str:
    """The password to log in with, from the first source that has one.

    Order: ``VDITUI_PASSWORD``; the variable named by ``password_env``; ``password_command``;
    ``password`` in the file; ``prompt`` (e.g. ``getpass.getpass``). A command that fails is an
    error rather than a fall-through: the operator configured it and should hear it broke.
    """
    env = os.environ if env is None else env
    if env.get("VDITUI_PASSWORD"):
        return env["VDITUI_PASSWORD"]
    if profile.password_env and env.get(profile.password_env):
        return env[profile.password_env]
    if profile.password_command:
        return run_password_command(profile.password_command)
    if profile.password is not None:
        return profile.password.reveal()
    if prompt is not None:
        entered = prompt(f"Password for {profile.username} at {profile.url}: ")
        if entered:
            return entered
        raise ConfigError(expected="no password entered")
    hint = ""
    if profile.password_env:
        hint = f" ({profile.password_env}, named by password_env, is not set)"
    raise ConfigError(
        expected="no password: set VDITUI_PASSWORD, password_env, password_command, "
        f"or run interactively{hint}"
    )


def run_password_command(command: str, timeout: float = PASSWORD_COMMAND_TIMEOUT) -> str:
    """The first line of ``command``'s output, stripped; a ``ConfigError`` if it fails.

    No shell, no stdin, stderr discarded. Errors name the command and exit code but never its
    output, and are raised ``from None`` so no traceback carries the output either.
    """
    key = "password_command"
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(None, None, key, f"cannot split {command!r}: {exc}") from None
    if not argv:
        raise ConfigError(None, None, key, "is empty")
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise ConfigError(None, None, key, f"{command!r}: program {argv[0]!r} not found") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(None, None, key, f"{command!r} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise ConfigError(None, None, key, f"{command!r} could not run: {exc.strerror}") from None
    if done.returncode != 0:
        raise ConfigError(None, None, key, f"{command!r} failed with exit code {done.returncode}")
    try:
        lines = done.stdout.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise ConfigError(None, None, key, f"{command!r} printed something not UTF-8") from None
    # First line only: `pass` entries keep the password there and notes below it.
    password = lines[0].strip() if lines else ""
    if not password:
        raise ConfigError(None, None, key, f"{command!r} printed no password")
    return password
