"""Whose records ``audit`` and ``history`` show: the configured platform's (its URL and user,
from the flags, the environment or the profile, as the other commands resolve them, without
a password), every platform's with ``--all-platforms``, or the demo's own with ``--demo``."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from vditui.config import ConfigError, load_config, resolve_profile
from vditui.launch import audit_path, history_path


@dataclass(frozen=True)
class Scope:
    """The files to read and the platform whose records to keep."""

    audit: Path
    history: Path
    url: str | None
    """None: every platform's records."""
    user: str | None
    said: str
    """The scope in words, for the operator: whose records these are, and how to see all."""

    def keeps(self, platform: object, user: object) -> bool:
        """Whether a record of ``platform`` (URL) and ``user`` is in scope."""
        return self.url is None or (platform == self.url
                                    and (self.user is None or user == self.user))


def scope_of(args: argparse.Namespace) -> Scope:
    """The scope ``args`` ask for; a ConfigError for a profile that does not resolve."""
    if getattr(args, "demo", False):
        audit = audit_path(demo=True)
        return Scope(audit, history_path(demo=True), None, None,
                     f"the demo's records ({audit.parent})")
    audit, history = audit_path(), history_path()
    if getattr(args, "all_platforms", False):
        return Scope(audit, history, None, None, "every platform's records")
    try:
        config = load_config(Path(args.config) if getattr(args, "config", None) else None)
        profile = resolve_profile(config, profile=getattr(args, "profile", None),
                                  url=getattr(args, "url", None),
                                  user=getattr(args, "user", None), env=os.environ)
    except ConfigError:
        if getattr(args, "profile", None):
            raise  # asked for by name: a mistake to say, not a reason to show everything
        url, user = getattr(args, "url", None), getattr(args, "user", None)
        if url:  # a platform named by its URL alone (no password is needed to read records)
            who = f" as {user}" if user else ""
            return Scope(audit, history, url, user,
                         f"{url}{who} (--all-platforms: every platform's)")
        return Scope(audit, history, None, None,
                     "every platform's records (no platform configured)")
    return Scope(audit, history, profile.url, profile.username,
                 f"{profile.url} as {profile.username} (--all-platforms: every platform's)")
