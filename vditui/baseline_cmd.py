"""``vditui baseline``: acknowledge every drift confirmed now, so a team starts from today's
known state instead of a first scan full of differences it already knows about.

One pass like ``check`` (the grace period honoured), then one rule per VM (exact name, not a
glob) and drift kind, on the VM's host, for every drift that counts now (confirmed, not yet
acknowledged); ``--kind`` narrows it to some kinds. The rules are shown, then written to the
profile's ``[[profiles.NAME.ack]]`` tables (`vditui.config.write.save_ack_rules`) once the
operator says yes, or at once with ``--yes``; without a terminal to ask on and without
``--yes``, nothing is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TextIO

from vditui.config import ConfigError, display_path
from vditui.core.acks import HOST_KINDS, AckRule, parse_kind
from vditui.core.events import SnapshotReady
from vditui.core.models import DriftKind
from vditui.core.present import kind_name
from vditui.launch import Launch

EXIT_OK, EXIT_REFUSED = 0, 2


def baseline_rules(snap: SnapshotReady, kinds: frozenset[DriftKind] | None,
                   reason: str) -> list[tuple[AckRule, str]]:
    """One rule per VM (or host, for a host's own drift) and kind for the drifts that count in
    ``snap`` (of ``kinds``, None: every kind), each with an example drift's sentence."""
    names = snap.comparison.host_names()
    rules: dict[AckRule, str] = {}
    for d in snap.counted():
        if kinds is not None and d.kind not in kinds:
            continue
        host = names.get(d.host_id)
        vm = None if d.kind in HOST_KINDS else d.subject
        rule = AckRule(reason=reason, vm=vm, host=host, kind=d.kind)
        rules.setdefault(rule, f"{kind_name(d.kind)}: {d.subject}: {d.message}")
    return list(rules.items())


def _kinds(args: argparse.Namespace) -> frozenset[DriftKind] | None:
    given = getattr(args, "kind", None)
    if not given:
        return None
    kinds = set()
    for text in given:
        kind = parse_kind(text)
        if kind is None:
            raise ConfigError(None, None, "--kind", "expected a drift kind: "
                              + ", ".join(k.value for k in DriftKind), text)
        kinds.add(kind)
    return frozenset(kinds)


async def cmd_baseline(args: argparse.Namespace, start: Launch, warnings: list[str],
                       out: TextIO = sys.stdout,
                       ask: Callable[[str], str] | None = None) -> int:
    """Run the pass, show the rules, ask (``ask``: a prompt function, by default ``input``
    when stdin is a terminal), and write them."""
    from vditui.config.write import save_ack_rules
    from vditui.headless import settled_snapshot

    kinds = _kinds(args)
    reason = (getattr(args, "reason", None) or "").strip() or (
        "baseline " + time.strftime("%Y-%m-%d"))
    snap = await settled_snapshot(start.settings, grace=True)
    for w in snap.platform_warnings:
        print(f"vditui: warning: {w}", file=sys.stderr)
    rules = baseline_rules(snap, kinds, reason)
    where = f"{display_path(start.config_path)} [[profiles.{start.profile}.ack]]"
    if not rules:
        out.write("baseline: no drift to acknowledge (none confirmed and not acknowledged "
                  f"on {start.settings.url})\n")
        return EXIT_OK
    n = f"{len(rules)} rule" + ("s" if len(rules) != 1 else "")
    out.write(f"baseline: {n} for the drifts confirmed now on "
              f"{start.settings.url}, reason {reason!r}, for {where}:\n")
    for rule, example in rules:
        out.write(f"  {rule.describe():<60} {example}\n")
    if not getattr(args, "yes", False):
        if ask is None and not sys.stdin.isatty():
            print("vditui: baseline: nothing written: no terminal to ask on; run again with "
                  "--yes to write them", file=sys.stderr)
            return EXIT_REFUSED
        out.flush()
        answer = (ask or input)(f"Write {n} to {where}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            out.write("baseline: nothing written\n")
            return EXIT_OK
    stamp = time.strftime("%Y-%m-%d")
    save_ack_rules(start.config_path, start.profile, [r for r, _ in rules],
                   note=f"vditui baseline, {stamp}")
    out.write(f"baseline: wrote {n} to {where}\n")
    return EXIT_OK
