"""``--demo``: start the lab's default scenario in-process and point vditui at it.

Only the entry point wires the lab to the engine: the core never knows it runs in a lab, and the
settings are built the normal way, by ``vditui.launch`` from the `LabTarget` returned here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vditui.launch import LabTarget

if TYPE_CHECKING:
    from vditui.lab.lab import Lab


def start_demo(chaos: float = 0.0) -> tuple[Lab, LabTarget]:
    """Start the lab (with ``chaos`` state changes per second, if any); return it, for the caller
    to stop, and where it is."""
    from vditui.lab.lab import Lab
    from vditui.lab.scenario import load_default

    lab = Lab(load_default()).start()
    try:
        target = LabTarget(url=lab.vdi_url, username=lab.username, password=lab.password,
                           uri_template=lab.uri_template, uri_templates=lab.uri_templates,
                           config_path=lab.workdir / "demo-config.toml")
        if chaos > 0:
            lab.chaos(chaos)
    except BaseException:
        lab.stop()
        raise
    return lab, target
