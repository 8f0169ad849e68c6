"""The lab: real libvirtd hosts and a simulated OCloudView platform on loopback.

It never imports ``vditui.core``: it is the world the engine is tested against, not its mirror.
"""

from vditui.lab.daemon import LabError
from vditui.lab.scenario import Scenario, ScenarioError, generate, load, load_default

__all__ = ["LabError", "Scenario", "ScenarioError", "generate", "load", "load_default"]
