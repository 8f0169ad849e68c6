"""DriftTracker: the grace period between seeing a drift and believing it."""

from __future__ import annotations

import pytest

from vditui.core.drift import DriftChange, DriftState, DriftStatus, DriftTracker
from vditui.core.models import Drift, DriftKind, Severity


def drift(
    key: str = "vm-1",
    kind: DriftKind = DriftKind.STATE,
    message: str = "platform says running, libvirt says shutoff",
    severity: Severity = Severity.CRITICAL,
    subject: str | None = None,
) -> Drift:
    return Drift(kind, severity, key, subject or key, "h1", message, "running", "shutoff")


def status(t: DriftTracker, ident: tuple[str, str]) -> DriftStatus | None:
    st = t.states().get(ident)
    return st.status if st is not None else None


def having(t: DriftTracker, status: DriftStatus) -> list[tuple[str, str]]:
    """The idents of the tracked drifts with ``status``, sorted."""
    return sorted(i for i, st in t.states().items() if st.status is status)


def test_pending_then_confirmed_then_resolved() -> None:
    t = DriftTracker(grace=10)
    d = drift()
    assert t.update([d], now=100) == [DriftChange(d, DriftStatus.PENDING, 100)]
    assert status(t, d.ident) is DriftStatus.PENDING
    assert (having(t, DriftStatus.PENDING), having(t, DriftStatus.CONFIRMED)) == ([d.ident], [])

    assert t.update([d], now=109.9) == []
    assert status(t, d.ident) is DriftStatus.PENDING

    assert t.update([d], now=110) == [DriftChange(d, DriftStatus.CONFIRMED, 100)]
    assert status(t, d.ident) is DriftStatus.CONFIRMED
    assert (having(t, DriftStatus.PENDING), having(t, DriftStatus.CONFIRMED)) == ([], [d.ident])

    assert t.update([d], now=120) == []  # still there: no news

    assert t.update([], now=130) == [DriftChange(d, DriftStatus.RESOLVED, 130)]
    assert status(t, d.ident) is None
    assert t.states() == {}
    assert t.update([], now=140) == []  # resolved once, not again


def test_grace_zero_confirms_at_once() -> None:
    t = DriftTracker(grace=0)
    d = drift()
    assert t.update([d], now=5) == [DriftChange(d, DriftStatus.CONFIRMED, 5)]
    assert t.states() == {d.ident: DriftState(DriftStatus.CONFIRMED, 5)}
    assert t.next_deadline() is None
    assert t.update([], now=6) == [DriftChange(d, DriftStatus.RESOLVED, 6)]


def test_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="grace"):
        DriftTracker(grace=-1)


def test_pending_drift_that_vanishes_is_dropped_silently() -> None:
    t = DriftTracker(grace=10)
    d = drift()
    t.update([d], now=0)
    assert t.update([], now=5) == []
    assert status(t, d.ident) is None
    assert having(t, DriftStatus.PENDING) == []


def test_flapping_drift_restarts_its_clock() -> None:
    t = DriftTracker(grace=10)
    d = drift()
    t.update([d], now=0)
    t.update([], now=5)  # gone before grace
    assert t.update([d], now=6) == [DriftChange(d, DriftStatus.PENDING, 6)]
    # On the old clock it would confirm at 10; on the new one only at 16.
    assert t.update([d], now=12) == []
    assert t.next_deadline() == 16
    assert t.update([d], now=16) == [DriftChange(d, DriftStatus.CONFIRMED, 6)]


def test_resolved_drift_that_returns_starts_pending_again() -> None:
    t = DriftTracker(grace=10)
    d = drift()
    t.update([d], now=0)
    t.update([d], now=10)
    t.update([], now=20)
    assert t.update([d], now=25) == [DriftChange(d, DriftStatus.PENDING, 25)]
    assert t.update([d], now=34) == []
    assert t.update([d], now=35) == [DriftChange(d, DriftStatus.CONFIRMED, 25)]


def test_changed_message_keeps_first_seen_and_reports_latest() -> None:
    t = DriftTracker(grace=10)
    first = drift(message="platform says running, libvirt says paused")
    later = drift(message="platform says running, libvirt says shutoff")
    assert first.ident == later.ident
    t.update([first], now=0)
    assert t.update([later], now=4) == []  # same ident: not a new drift
    assert t.states() == {later.ident: DriftState(DriftStatus.PENDING, 0)}
    assert t.update([later], now=10) == [DriftChange(later, DriftStatus.CONFIRMED, 0)]
    assert t.update([], now=11) == [DriftChange(later, DriftStatus.RESOLVED, 11)]


def test_identity_is_key_and_kind() -> None:
    t = DriftTracker(grace=10)
    state = drift(kind=DriftKind.STATE)
    vcpu = drift(kind=DriftKind.VCPU, severity=Severity.WARNING)
    other_vm = drift(key="vm-2")
    changes = t.update([state, vcpu, other_vm], now=0)
    assert len(changes) == 3
    t.update([state, other_vm], now=5)  # vcpu gone while pending
    assert status(t, vcpu.ident) is None
    assert status(t, state.ident) is DriftStatus.PENDING
    assert status(t, ("vm-2", "state")) is DriftStatus.PENDING


def test_changes_are_sorted_most_severe_first() -> None:
    t = DriftTracker(grace=0)
    info = drift(key="k1", kind=DriftKind.ONLY_IN_LIBVIRT, severity=Severity.INFO, subject="a")
    warn = drift(key="k2", kind=DriftKind.VCPU, severity=Severity.WARNING, subject="b")
    crit_b = drift(key="k3", severity=Severity.CRITICAL, subject="b")
    crit_a = drift(key="k4", severity=Severity.CRITICAL, subject="a")
    changes = t.update([info, warn, crit_b, crit_a], now=0)
    assert [c.drift for c in changes] == [crit_a, crit_b, warn, info]
    assert having(t, DriftStatus.CONFIRMED) == sorted(d.ident for d in (crit_a, crit_b, warn,
                                                                         info))


def test_confirm_and_resolve_in_one_update() -> None:
    t = DriftTracker(grace=10)
    old, new = drift(key="old"), drift(key="new")
    t.update([old], now=0)
    t.update([old], now=10)
    t.update([old, new], now=15)
    changes = t.update([new], now=25)
    assert changes == [
        DriftChange(new, DriftStatus.CONFIRMED, 15),
        DriftChange(old, DriftStatus.RESOLVED, 25),
    ]


def test_next_deadline() -> None:
    t = DriftTracker(grace=10)
    assert t.next_deadline() is None
    a, b = drift(key="a"), drift(key="b")
    t.update([a], now=0)
    t.update([a, b], now=3)
    assert t.next_deadline() == 10
    t.update([a, b], now=10)  # a confirms
    assert t.next_deadline() == 13
    t.update([a, b], now=13)
    assert t.next_deadline() is None
    assert having(t, DriftStatus.PENDING) == []


def test_unknown_ident() -> None:
    t = DriftTracker(grace=1)
    assert status(t, ("nope", "state")) is None
    assert ("nope", "state") not in t.states()


# --------------------------------------------------------------------------- seeds (restarts)


def test_a_seeded_drift_keeps_its_first_seen_time_and_confirmation() -> None:
    confirmed = Drift(DriftKind.STATE, Severity.WARNING, "a", "vm-a", "h", "m")
    pending = Drift(DriftKind.VCPU, Severity.WARNING, "b", "vm-b", "h", "m")
    new = Drift(DriftKind.MEMORY, Severity.WARNING, "c", "vm-c", "h", "m")
    t = DriftTracker(grace=10.0)
    t.seed(confirmed.ident, 100.0, confirmed=True)
    t.seed(pending.ident, 495.0, confirmed=False)
    t.seed(("gone", "state"), 50.0, confirmed=True)
    changes = {c.drift.ident: (c.status, c.since) for c in t.update([confirmed, pending, new],
                                                                    500.0)}
    assert changes == {confirmed.ident: (DriftStatus.CONFIRMED, 100.0),
                       pending.ident: (DriftStatus.PENDING, 495.0),
                       new.ident: (DriftStatus.PENDING, 500.0)}
    # The pending seed's grace runs from its first sighting, before the restart.
    assert t.next_deadline() == 505.0
    assert t.drop_seeds() == [("gone", "state")]
    t.update([], 600.0)
    t.seed(confirmed.ident, 100.0, confirmed=True)
    t.drop_seeds()
    assert t.update([confirmed], 700.0)[0].since == 700.0  # a dropped seed is forgotten


def test_a_pending_seed_older_than_grace_is_confirmed_at_once() -> None:
    d = Drift(DriftKind.STATE, Severity.WARNING, "a", "vm-a", "h", "m")
    t = DriftTracker(grace=10.0)
    t.seed(d.ident, 100.0, confirmed=False)
    (ch,) = t.update([d], 200.0)
    assert (ch.status, ch.since) == (DriftStatus.CONFIRMED, 100.0)
