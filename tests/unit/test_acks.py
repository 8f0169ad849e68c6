"""Acknowledgement rules: what a rule matches, expiry, the file's [[profiles.NAME.ack]] tables
(malformed ones named by file, line and key) and saving rules with the file's comments kept."""

from __future__ import annotations

import stat
from datetime import date
from pathlib import Path

import pytest

from vditui.config import ConfigError, load_config, parse_config
from vditui.config.write import save_ack_rules
from vditui.core.acks import AckBook, AckRule, acknowledge, parse_kind
from vditui.core.models import Drift, DriftKind, Severity

STATE = Drift(DriftKind.STATE, Severity.CRITICAL, "uuid-1", "lic", "h1",
              "platform says running, libvirt says shutoff", "running", "shutoff")
GONE = Drift(DriftKind.HOST_UNREACHABLE, Severity.CRITICAL, "h2", "hv-refuse", "h2", "refused")
HOSTS = {"h1": ("ocloud", "127.0.0.5"), "h2": ("hv-refuse", "127.0.0.9")}

RULES = """\
# the operators' notes: keep me
default_profile = "prod"

[profiles.prod]
url = "http://127.0.0.1:8088"   # the platform

[[profiles.prod.ack]]
vm = "lic"
host = "ocloud"
kind = "only in VDI"            # the words on screen work too
reason = "licence server kept out of libvirt on purpose"
expires = 2027-03-01

[[profiles.prod.ack]]
host = "hv-*"
kind = "unreachable"
field = "libvirt=*"
reason = "decommissioned"
"""


# --------------------------------------------------------------------------- matching


@pytest.mark.parametrize(("rule", "hit"), [
    (AckRule("r"), True),
    (AckRule("r", vm="lic"), True),
    (AckRule("r", vm="li*"), True),
    (AckRule("r", vm="LIC"), False),  # case-sensitive, like VM names
    (AckRule("r", vm="other"), False),
    (AckRule("r", host="ocloud"), True),
    (AckRule("r", host="127.0.0.*"), True),
    (AckRule("r", host="hv-*"), False),
    (AckRule("r", kind=DriftKind.STATE), True),
    (AckRule("r", kind=DriftKind.VCPU), False),
    (AckRule("r", field="libvirt=shutoff"), True),
    (AckRule("r", field="platform=running"), True),
    (AckRule("r", field="libvirt=running"), False),
])
def test_a_rule_matches_by_vm_host_kind_and_field(rule: AckRule, hit: bool) -> None:
    assert rule.matches(STATE, *HOSTS["h1"]) is hit


def test_a_rule_naming_a_vm_never_matches_a_host_drift() -> None:
    assert AckRule("r", vm="*").matches(GONE, *HOSTS["h2"]) is False
    assert AckRule("r", host="hv-refuse").matches(GONE, *HOSTS["h2"]) is True


def test_the_first_rule_in_file_order_wins() -> None:
    first, second = AckRule("one", vm="lic"), AckRule("two")
    got = acknowledge([STATE, GONE], [first, second], HOSTS)
    assert got == {STATE.ident: first, GONE.ident: second}


def test_a_rule_applies_through_its_last_day_and_is_said_expired_once() -> None:
    rule = AckRule("r", vm="lic", expires=date(2027, 3, 1))
    assert not rule.expired(date(2027, 3, 1))
    assert rule.expired(date(2027, 3, 2))
    book = AckBook([rule])
    assert book.apply([STATE], lambda: HOSTS, date(2027, 3, 1)) == ({STATE.ident: rule}, [])
    assert book.apply([STATE], lambda: HOSTS, date(2027, 3, 2)) == ({}, [rule])
    assert book.apply([STATE], lambda: HOSTS, date(2027, 3, 3)) == ({}, [])  # said once


@pytest.mark.parametrize(("text", "kind"), [
    ("only_in_vdi", DriftKind.ONLY_IN_VDI), ("only in VDI", DriftKind.ONLY_IN_VDI),
    ("vCPU", DriftKind.VCPU), ("offline but reachable", DriftKind.HOST_OFFLINE_BUT_REACHABLE),
    ("nonsense", None)])
def test_kinds_are_read_by_machine_name_or_words(text: str, kind: DriftKind | None) -> None:
    assert parse_kind(text) is kind


# --------------------------------------------------------------------------- the file


def test_rules_are_read_with_their_lines(tmp_path: Path) -> None:
    cfg = parse_config(RULES, tmp_path / "config.toml")
    first, second = cfg.profiles["prod"].ack
    assert first == AckRule("licence server kept out of libvirt on purpose", vm="lic",
                            host="ocloud", kind=DriftKind.ONLY_IN_VDI,
                            expires=date(2027, 3, 1), line=7)
    assert (second.host, second.kind, second.field, second.line) == (
        "hv-*", DriftKind.HOST_UNREACHABLE, "libvirt=*", 14)


@pytest.mark.parametrize(("rule", "line", "key", "expected"), [
    ('vm = "lic"\n', 3, "profiles.p.ack[1].reason", "missing: every acknowledgement needs "
                                                     "a reason"),
    ('vm = "lic"\nreason = "  "\n', 5, "profiles.p.ack[1].reason", "expected a non-empty"),
    ('reason = "r"\nkind = "stat"\n', 5, "profiles.p.ack[1].kind",
     "expected a drift kind: only_in_vdi, only_in_libvirt, state"),
    ('reason = "r"\nexpires = "2027-03-01"\n', 5, "profiles.p.ack[1].expires",
     "expected a TOML date, unquoted, such as 2027-03-01"),
    ('reason = "r"\nexpires = 2027-03-01T10:00:00\n', 5, "profiles.p.ack[1].expires",
     "expected a TOML date"),
    ('reason = "r"\nvms = "lic"\n', 5, "profiles.p.ack[1].vms",
     "unknown key; did you mean vm? valid: expires, field, host, kind, reason, vm"),
    ('reason = "r"\nfield = "state"\n', 5, "profiles.p.ack[1].field",
     "expected one side's value as SIDE=VALUE"),
])
def test_malformed_rules_name_file_line_key_and_what_is_expected(
        tmp_path: Path, rule: str, line: int, key: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[profiles.p]\n\n[[profiles.p.ack]]\n' + rule)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    e = err.value
    assert (e.path, e.line, e.key) == (path, line, key), str(e)
    assert e.expected.startswith(expected), str(e)
    assert str(e).startswith(f"{path}:{line}: {key}: ")


def test_the_second_rule_is_numbered_and_located_as_such(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[profiles.p]\n[[profiles.p.ack]]\nreason = "fine"\n\n'
                    '[[profiles.p.ack]]\nvm = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert (err.value.line, err.value.key) == (5, "profiles.p.ack[2].reason")


def test_ack_must_be_tables(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[profiles.p]\nack = "everything"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert (err.value.line, err.value.key) == (2, "profiles.p.ack")
    assert "an array of tables, each written [[profiles.p.ack]]" in err.value.expected


# --------------------------------------------------------------------------- writing


def test_saving_rules_keeps_comments_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(RULES)
    rule = AckRule("known: rebuilt monthly", vm="build-01", host="hv-t1", kind=DriftKind.VCPU,
                   expires=date(2027, 1, 31))
    save_ack_rules(path, "prod", [rule], note="acknowledged in vditui")
    text = path.read_text()
    assert text.startswith(RULES)  # every byte before, comments included, untouched
    assert text[len(RULES):] == (
        '\n[[profiles.prod.ack]]\n# acknowledged in vditui\nvm = "build-01"\nhost = "hv-t1"\n'
        'kind = "vcpu"\nreason = "known: rebuilt monthly"\nexpires = 2027-01-31\n')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path).profiles["prod"].ack[-1] == AckRule(
        rule.reason, vm="build-01", host="hv-t1", kind=DriftKind.VCPU,
        expires=date(2027, 1, 31), line=20)


def test_saving_into_a_new_file_and_refusing_the_legacy_layout(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    save_ack_rules(path, "lab", [AckRule("r", vm="x")])
    assert load_config(path).profiles["lab"].ack == (AckRule("r", vm="x", line=1),)
    legacy = tmp_path / "legacy.toml"
    legacy.write_text('[vdi]\nbase_url = "http://127.0.0.1:1"\n')
    with pytest.raises(ConfigError, match=r"\[vdi\]/\[libvirt\] layout"):
        save_ack_rules(legacy, "default", [AckRule("r")])
    assert legacy.read_text() == '[vdi]\nbase_url = "http://127.0.0.1:1"\n'


# --------------------------------------------------------------------------- watch's lines


def test_watch_says_an_acknowledged_drift_once_and_alerts_when_its_rule_expires() -> None:
    from vditui.commands.watch import WatchLines
    from vditui.core.drift import DriftChange, DriftState, DriftStatus
    from vditui.core.events import AckExpired, DriftChanged, SnapshotReady
    from vditui.core.models import Comparison

    rule = AckRule("known", vm="lic", expires=date(2027, 3, 1))
    cmp = Comparison(vms=(), hosts=(), drifts=(STATE,))
    states = {STATE.ident: DriftState(DriftStatus.CONFIRMED, 0.0)}

    def snap(acked: dict[tuple[str, str], AckRule]) -> SnapshotReady:
        return SnapshotReady(1.0, 0, cmp, states, {}, acknowledged=acked)

    lines = WatchLines()
    first = lines.records(snap({STATE.ident: rule}))
    assert [(r["type"], r["subject"], r["status"], r["acknowledged"]) for r in first] == [
        ("drift", "lic", "confirmed", {"reason": "known", "expires": "2027-03-01"})]
    # Said once: neither the next snapshot nor the drift's own change says it again.
    assert lines.records(snap({STATE.ident: rule})) == []
    change = DriftChange(STATE, DriftStatus.CONFIRMED, 0.0)
    assert lines.records(DriftChanged(1.0, change, rule)) == []
    expired = lines.records(AckExpired(2.0, rule))
    assert [r["type"] for r in expired] == ["ack"]
    assert "expired on 2027-03-01: vm=lic (known)" in expired[0]["message"]
    # The rule no longer applies: now it is an alert, once, without "acknowledged".
    (alert,) = lines.records(snap({}))
    assert (alert["subject"], alert["status"]) == ("lic", "confirmed")
    assert "acknowledged" not in alert
    assert lines.records(snap({})) == []


@pytest.mark.parametrize(("text", "got"), [
    ("", None), (" 2027-03-01 ", date(2027, 3, 1)), ("2024-02-29", date(2024, 2, 29)),
    ("2027-13-01", "not a date"), ("20270301", "write the date as YYYY-MM-DD"),
    ("2024-02-28", "give a day from today on")])
def test_the_expiry_typed_in_the_tui_is_a_day_from_today_on(text: str, got: object) -> None:
    from vditui.ui.screens.ack import parse_day

    today = date(2024, 2, 29)  # a leap day: the example date in the message must not fail
    if isinstance(got, str):
        with pytest.raises(ValueError, match=got):
            parse_day(text, today)
    else:
        assert parse_day(text, today) == got
