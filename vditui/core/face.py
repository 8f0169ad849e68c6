"""The engine as a face sees it: the commands a face sends (:class:`EngineFace`), next to the
events it hears (:mod:`vditui.core.events`).

The real :class:`~vditui.core.engine.Engine` and the scripted
:class:`~vditui.core.fake_engine.FakeEngine` both satisfy this protocol (mypy checks it where
each is handed to a face: ``vditui.ui.app`` takes an engine factory typed with it), so a face
written against it runs on either. Nothing here imports libvirt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from vditui.core.acks import AckRule
from vditui.core.actions import Action, ActionPlan, ActionResult
from vditui.core.events import EngineEvent, SnapshotReady
from vditui.core.models import VdiHost
from vditui.core.probe import ProbeResult

Listener = Callable[[EngineEvent], None]
"""Called with every event, on the event loop; it must be quick."""


class EngineFace(Protocol):
    """The commands of an engine; everything else a face learns from its events."""

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` with every event from now on."""

    async def start(self, watch: bool = True) -> None:
        """Read the platform once (raises ``VdiError`` if it cannot), open every host; with
        ``watch``, keep following both."""

    async def stop(self) -> None:
        """Stop following; close what is open."""

    async def wait_settled(self, timeout: float | None = None) -> bool:
        """Wait until every host was read or failed once, then publish a snapshot; False if
        some host had not settled within ``timeout``."""

    async def check(self) -> SnapshotReady | None:
        """One pass under the grace period (for one-shot commands); after :meth:`wait_settled`."""

    def reconcile_now(self) -> SnapshotReady | None:
        """Reconcile now, in full, and publish the snapshot; None before the platform was read."""

    async def refresh(self) -> None:
        """Re-read the platform and every host now."""

    async def probe_host(self, host_id: str, extra: list[str] | None = None) -> list[ProbeResult]:
        """Try ``extra`` then every URI the host's session tries, each on its own."""

    async def probe_uris(self, uris: list[str]) -> list[ProbeResult]:
        """Try each of ``uris`` once, in parallel."""

    async def use_uri(self, host_id: str, uri: str) -> None:
        """Make the host's session connect with ``uri`` first, now."""

    def acknowledge(self, rule: AckRule) -> None:
        """Apply ``rule`` from the next snapshot on."""

    def find_host(self, name_or_ip: str) -> VdiHost | None:
        """The platform's host with this name, IP or id, from the last refresh."""

    def actions_for(self, keys: Sequence[str]) -> tuple[Action, ...]:
        """The actions that apply to these VM rows; () in read-only mode."""

    def plan(self, action: Action, keys: Sequence[str], force: bool = False) -> ActionPlan:
        """What ``action`` would send for these rows (no I/O); ``ActionError`` when nothing
        may be sent at all."""

    async def act(self, plan: ActionPlan) -> ActionResult:
        """Send ``plan`` once (re-checked) and follow each VM to agreement."""
