"""The steps of a script for :class:`~vditui.core.fake_engine.FakeEngine`: each one change of
the world, applied at its time after the engine starts.

    script = [(0.5, vm_state("hv-1", "vm-a", VirtState.SHUTOFF)),
              (1.0, platform_fails("db down")),
              (2.0, host_state("hv-2", ConnState.CONNECTED))]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vditui.core.models import ConnState, VirtError, VirtState

if TYPE_CHECKING:
    from vditui.core.fake_engine import FakeEngine

Step = Callable[["FakeEngine"], None]
"""One change of the world, applied by the engine."""


def vm_state(host: str, vm: str, state: VirtState) -> Step:
    """Libvirt on ``host`` changes ``vm`` to ``state`` (a lifecycle event)."""
    return lambda e: e.set_domain(host, vm, state)


def platform_vm(vm: str, status: int) -> Step:
    """The platform records ``vm`` with ``status``."""
    return lambda e: e.set_platform_vm(vm, status)


def host_state(host: str, state: ConnState, error: VirtError | None = None) -> Step:
    """The host's session goes to ``state``."""
    return lambda e: e.set_host(host, state, error)


def platform_fails(message: str) -> Step:
    """The platform stops answering."""
    return lambda e: e.fail_platform(message)


def platform_recovers() -> Step:
    """The platform answers again."""
    return lambda e: e.recover_platform()
