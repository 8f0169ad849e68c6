"""A running engine's hosts, read through its public API at every access: what the lab tests
used to read off the host sessions themselves (``engine._sessions``)."""

from __future__ import annotations

from vditui.core.engine import Engine
from vditui.core.models import ConnState, Domain, HostView, VirtError
from vditui.core.port import HostStats


class LiveHost:
    """One host of ``engine``, by name; every attribute is read anew."""

    def __init__(self, engine: Engine, host_id: str, name: str) -> None:
        self.engine, self.host_id, self.name = engine, host_id, name

    def view(self) -> HostView:
        return self.engine.host_views()[self.host_id]

    def stats(self) -> HostStats:
        return self.engine.stats().by_id()[self.host_id]

    @property
    def state(self) -> ConnState:
        return self.stats().state

    @property
    def error(self) -> VirtError | None:
        return self.view().error

    @property
    def uri(self) -> str:
        return self.stats().uri

    @property
    def read_at(self) -> float:
        return self.stats().read_at

    @property
    def domains(self) -> dict[str, Domain] | None:
        doms = self.view().domains
        return None if doms is None else {d.uuid: d for d in doms}

    @property
    def settled(self) -> bool:
        return self.stats().settled

    @property
    def reconnects(self) -> int:
        return self.stats().reconnects

    @property
    def created(self) -> float:
        return self.stats().created


def live_hosts(engine: Engine) -> dict[str, LiveHost]:
    """Host id -> the host, for every host with a session."""
    return {h.host_id: LiveHost(engine, h.host_id, h.name) for h in engine.stats().hosts}


def live_host(engine: Engine, name: str) -> LiveHost:
    """The host named ``name`` (exactly one)."""
    (h,) = [h for h in live_hosts(engine).values() if h.name == name]
    return h
