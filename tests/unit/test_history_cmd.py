"""``vditui history``'s --since: spans and ISO dates, and a clear error for anything else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vditui.commands.history import parse_since

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("text", "back"), [("30m", 1800), ("12h", 43200), ("7d", 604800),
                                            ("45s", 45), ("2w", 1209600), (" 3 h ", 10800)])
def test_spans_count_back_from_now(text: str, back: int) -> None:
    assert parse_since(text, NOW) == NOW - back


def test_iso_dates_and_times() -> None:
    assert parse_since("2026-12-01T14:00+00:00", NOW) == datetime(
        2026, 12, 1, 14, tzinfo=UTC).timestamp()
    assert parse_since("2026-12-01", NOW) == datetime(2026, 12, 1).timestamp()  # local midnight


@pytest.mark.parametrize("text", ["yesterday", "7", "7y", "-3d", "", "2026-13-01"])
def test_anything_else_says_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_since(text, NOW)
    assert str(err.value) == ("--since: expected a span like 30m, 12h or 7d, or an ISO date "
                              f"like 2026-12-01 or 2026-12-01T14:00, got {text!r}")
