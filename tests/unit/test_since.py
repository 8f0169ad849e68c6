"""``--since``, one parser for ``audit`` and ``history``: the table of what it takes, and the
same one-line error for anything else, through both commands."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime

import pytest

from vditui.commands import audit as audit_cmd
from vditui.commands import history as history_cmd
from vditui.core.since import EXPECTED, parse_since

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("text", "back"), [
    ("90m", 5400), ("1.5h", 5400), ("12h", 43200), ("7d", 604800), ("45s", 45),
    ("2w", 1209600), (" 3 h ", 10800), ("0.5d", 43200)])
def test_spans_count_back_from_now(text: str, back: int) -> None:
    assert parse_since(text, NOW) == NOW - back


@pytest.mark.parametrize(("text", "at"), [
    ("2026-12-01T14:00+00:00", datetime(2026, 12, 1, 14, tzinfo=UTC)),
    ("2026-12-01T14:00:30Z", datetime(2026, 12, 1, 14, 0, 30, tzinfo=UTC)),
    ("2026-12-01 14:00+01:00", datetime(2026, 12, 1, 13, tzinfo=UTC)),
    ("2026-12-01", datetime(2026, 12, 1).astimezone()),  # local midnight
    ("2026-12-01T08:00", datetime(2026, 12, 1, 8).astimezone()),  # local time
])
def test_dates_and_times(text: str, at: datetime) -> None:
    assert parse_since(text, NOW) == at.timestamp()


BAD = ["yesterday", "7", "7y", "-3d", "", "2026-13-01", "1.5.2h", "99999999999999w",
       "0001-01-01T00:00+14:00"]


@pytest.mark.parametrize("text", BAD)
def test_anything_else_says_what_is_expected_in_one_line(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_since(text, NOW)
    message = str(err.value)
    assert message.startswith(f"--since {text!r}: ") and message.endswith(EXPECTED)
    assert "\n" not in message


@pytest.mark.parametrize("text", ["99999999999999w", "1.5.2h", "7y"])
def test_audit_and_history_give_the_same_error_and_exit_2(
        text: str, capsys: pytest.CaptureFixture[str]) -> None:
    errors = []
    for run, extra in ((audit_cmd.cmd_audit, {}),
                       (history_cmd.run, {"vm": None, "host": None, "json": False,
                                          "csv": False})):
        args = argparse.Namespace(since=text, **extra)
        assert run(args, io.StringIO()) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        errors.append(err)
    assert errors[0] == errors[1]
    assert errors[0].startswith(f"vditui: --since {text!r}: ")
