"""Checks for the values of settings, shared by the config file reader and the command line.

Each check takes the value as ``tomllib`` (or a flag) gave it and returns the value to store,
or raises `Invalid` saying what was expected. Which check a setting gets is derived from the
``kind`` (and bounds) in its field's metadata (see `vditui.core.settings`): the tables at the
bottom map every key the file may hold to its `Profile` field and check.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable
from dataclasses import Field, fields
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from vditui.config.errors import UNSET
from vditui.config.profile import Profile, Secret
from vditui.core.acks import parse_kind, valid_field
from vditui.core.models import DriftKind
from vditui.core.uris import redact_uri

Check = Callable[[Any], Any]
"""A check: the value as read in, to the value to store; raises `Invalid`."""


class Invalid(Exception):
    """A value a check rejects: ``expected`` describes what it wanted."""

    def __init__(self, expected: str, got: Any = UNSET) -> None:
        self.expected = expected
        self.got = got  # when the culprit is one element of the value


_TEMPLATE_HINT = "a libvirt URI string containing :// (placeholders: {ip}, {name})"


def url(value: Any) -> str:
    expected = "an http(s)://host[:port] URL"
    if not isinstance(value, str):
        raise Invalid(expected)
    parts = urlsplit(value.strip())
    if parts.password is not None:
        # Never echo it back: the error would print the password on the terminal.
        raise Invalid(expected + " without a password in it (use VDITUI_PASSWORD)",
                      redact_uri(value))
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise Invalid(expected) from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise Invalid(expected)
    return f"{parts.scheme}://{parts.netloc}"


def template(value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise Invalid(_TEMPLATE_HINT)
    # A typo such as {IP} would otherwise reach libvirt as a literal host name.
    if re.search(r"[{}]", value.replace("{ip}", "").replace("{name}", "")):
        raise Invalid(_TEMPLATE_HINT)
    return value


def templates(value: Any) -> tuple[str, ...]:
    expected = (
        "a non-empty array of libvirt URI templates containing :// (e.g. qemu+tcp://{ip}/system)"
    )
    return _each_uri(value, expected)


def _each_uri(value: Any, expected: str) -> tuple[str, ...]:
    """``value``, a non-empty array whose every element contains ``://``; else ``expected``."""
    if not isinstance(value, list) or not value:
        raise Invalid(expected)
    for element in value:
        try:
            template(element)
        except Invalid:
            raise Invalid(expected, element) from None
    return tuple(value)


def uri_list(value: Any) -> tuple[str, ...]:
    """A host's URIs, tried in order: a non-empty array of distinct libvirt URIs."""
    expected = ("a non-empty array of libvirt URIs containing ://, tried in order "
                '(e.g. ["qemu+ssh://root@10.0.0.5/system", "qemu+tcp://10.0.0.5/system"])')
    uris = _each_uri(value, expected)
    if len(set(uris)) != len(uris):
        twice = next(v for v in uris if uris.count(v) > 1)
        raise Invalid("each URI once (this one is listed twice)", twice)
    return uris


def single_template(value: Any) -> tuple[str, ...]:
    return (template(value),) if isinstance(value, str) else templates(value)


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("a non-empty string")
    return value


def secret(value: Any) -> Secret:
    if not isinstance(value, str):
        raise Invalid("a string")
    return Secret(value)


def env_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise Invalid("an environment variable name such as OCV_PASSWORD")
    return value


def command(value: Any) -> str:
    expected = 'a command line such as "pass show vdi/prod"'
    try:
        if isinstance(value, str) and shlex.split(value):
            return value
    except ValueError:
        pass
    raise Invalid(expected)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("true or false")
    return value


def seconds(minimum: float, inclusive: bool) -> Check:
    expected = f"a number of seconds {'>=' if inclusive else '>'} {minimum:g}"

    def check(value: Any) -> float:
        # bool is an int to Python, but `grace = true` is a mistake, not 1 second.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(expected)
        if not math.isfinite(value) or value < minimum or (not inclusive and value == minimum):
            raise Invalid(expected)
        return float(value)

    return check


def whole(minimum: int) -> Check:
    expected = f"a whole number >= {minimum}"

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise Invalid(expected)
        return value

    return check


_BY_KIND: dict[str, Check] = {
    "flag": boolean,
    "templates": templates,
    "url": url,
    "text": text,
    "secret": secret,
    "env_name": env_name,
    "command": command,
}


def check_of(f: Field[Any]) -> Check | None:
    """The check for a `Profile` field, from the kind in its metadata; None for a field the
    file cannot set (``name``) or that is read apart (``hosts``, ``ack``: see `ACK_KEYS`)."""
    kind = f.metadata.get("kind")
    if kind == "seconds":
        return seconds(f.metadata["minimum"], f.metadata["inclusive"])
    if kind == "count":
        return whole(f.metadata["minimum"])
    if kind is None or kind in ("hosts", "acks"):
        return None
    if kind not in _BY_KIND:  # a new kind of setting needs its check here, not silence
        raise TypeError(f"setting {f.name!r}: no check for kind {kind!r}")
    return _BY_KIND[kind]


FIELDS: dict[str, Check] = {f.name: c for f in fields(Profile) if (c := check_of(f)) is not None}
"""The check for each `Profile` field that a profile table may set."""
# key in the file -> (Profile field, check); "hosts" and "ack" are nested tables handled apart.
PROFILE_KEYS = {key: (key, check) for key, check in FIELDS.items()}
LEGACY_VDI_KEYS = {
    "base_url": ("url", url),
    **{k: PROFILE_KEYS[k] for k in ("username", "password", "password_env", "password_command")},
    **{k: PROFILE_KEYS[k] for k in ("verify_ssl", "connect_timeout", "call_timeout")},
}
LEGACY_LIBVIRT_KEYS = {"uri": ("uri_templates", single_template)}
TOP_KEYS = ("default_profile", "profiles", "vdi", "libvirt")


# --------------------------------------------------------------------------- acknowledgements


def glob(value: Any) -> str:
    """A name, IP or ``fnmatch`` glob."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid("a non-empty name or glob (e.g. \"lic\" or \"build-*\")")
    return value.strip()


def drift_kind(value: Any) -> DriftKind:
    kind = parse_kind(value) if isinstance(value, str) else None
    if kind is None:
        raise Invalid("a drift kind: " + ", ".join(k.value for k in DriftKind))
    return kind


def ack_field(value: Any) -> str:
    if not isinstance(value, str) or not valid_field(value):
        raise Invalid('one side\'s value as SIDE=VALUE, SIDE platform or libvirt '
                      '(e.g. "libvirt=shutoff")')
    return value.strip()


def day(value: Any) -> date:
    # tomllib gives a datetime (a subclass of date) for 2027-03-01T00:00: a day is wanted.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise Invalid("a TOML date, unquoted, such as 2027-03-01 (the last day the rule "
                      "applies)")
    return value


ACK_KEYS: dict[str, Check] = {"vm": glob, "host": glob, "kind": drift_kind, "field": ack_field,
                              "reason": text, "expires": day}
"""The keys of one ``[[profiles.NAME.ack]]`` table (`vditui.core.acks.AckRule`'s fields)."""
