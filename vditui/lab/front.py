"""What a client needs of a started lab or fleet: the platform's address and its login."""

from __future__ import annotations

from vditui.lab.scenario import Scenario

VDI_PORT = 8088


class PlatformFront:
    """The simulated platform's URL and credentials, for :class:`vditui.lab.lab.Lab` and
    :class:`vditui.lab.fleet.Fleet` alike (both claim a loopback prefix 127.A.B; the platform
    answers at 127.A.B.1 on :data:`VDI_PORT`, as the real one does on 8088)."""

    scenario: Scenario
    prefix: str

    @property
    def vdi_url(self) -> str:
        return f"http://{self.prefix}.1:{VDI_PORT}"

    @property
    def username(self) -> str:
        return self.scenario.vdi.username

    @property
    def password(self) -> str:
        return self.scenario.vdi.password
