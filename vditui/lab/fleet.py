"""A fleet: many test-driver hosts served by one ``libvirtd``, for sizes one machine cannot give
a daemon each (1,000 hosts on 2 cores).

Each host is still its own libvirt host to a client: its own loopback address, its own fault
proxy on libvirt's port (its own latency, faults and wire counts, as in :class:`Lab`) and its
own URI. The daemon behind all the proxies is one process; what keeps the hosts apart is the
test driver's *custom file*: a URI whose path names a file (``test+tcp://IP/DIR/NAME.xml``) opens
a private test driver loaded from that file, one per connection, so every host's URI reaches
that host's domains and only them. Those files are written from the scenario (states through
the test driver's ``runstate`` element), and the URI template is
``test+tcp://{ip}/DIR/{name}.xml``.

The price of one daemon: each connection has its own copy of its host's state, so nothing the
lab changes reaches a client (no chaos, no platform actions, no killing one host's daemon). A
fleet measures reading an estate (cold inventory, scrapes, shards); a :class:`Lab` is for
everything that changes. Like the rest of the lab, nothing here imports ``vditui.core``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from vditui.lab.bringup import quiet_libvirt
from vditui.lab.daemon import LibvirtDaemon
from vditui.lab.front import VDI_PORT, PlatformFront
from vditui.lab.host import LIBVIRT_PORT, domain_xml
from vditui.lab.lab import claim_subnet, host_ip
from vditui.lab.proxy import FaultProxy, ProxyHub
from vditui.lab.scenario import Scenario, VmSpec
from vditui.lab.vdi_server import VdiServer

log = logging.getLogger("vditui.lab")

#: The test driver's XML namespace, whose ``runstate`` sets a domain's state in a custom file.
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
#: libvirt's virDomainState numbers for the states a scenario uses.
RUNSTATE = {"running": 1, "paused": 3, "shutoff": 5}


@dataclass
class FleetHost:
    """One host of a fleet: its address, the file its domains live in, its proxy."""

    name: str
    ip: str
    path: Path
    proxy: FaultProxy | None = None

    @property
    def proxies(self) -> list[FaultProxy]:
        return [self.proxy] if self.proxy is not None else []


def node_xml(vms: list[VmSpec]) -> str:
    """A test-driver custom file holding ``vms``, each in its scenario state."""
    doms = []
    for vm in vms:
        assert vm.virt is not None
        state = f"<test:runstate>{RUNSTATE.get(vm.virt.state, 5)}</test:runstate></domain>"
        doms.append(domain_xml(vm).replace("</domain>", state))
    return f"<node xmlns:test='{TEST_NS}'>" + "".join(doms) + "</node>"


class Fleet(PlatformFront):
    """A scenario's hosts behind one libvirtd (test driver, custom files) and the simulated
    platform, each host on its own address behind its own proxy; started and stopped together,
    with the same client-facing surface as :class:`vditui.lab.lab.Lab` (``vdi_url``,
    ``username``, ``password``, ``uri_template``, ``hosts``, ``set_delay``)."""

    def __init__(self, scenario: Scenario, workdir: Path | None = None) -> None:
        bad = [h.name for h in scenario.hosts if h.driver != "test" or h.transports != ("tcp",)
               or h.fault != "none"]
        if bad:
            raise ValueError(f"a fleet serves plain test-driver hosts over tcp; not {bad[:5]} "
                             "(use vditui.lab.lab.Lab for qemu, tls, ssh or faulty hosts)")
        self.scenario = scenario
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="vditui-fleet-"))
        self.hosts: dict[str, FleetHost] = {}
        self.hub = ProxyHub()
        self.daemon: LibvirtDaemon | None = None
        self.vdi: VdiServer | None = None
        self.vdi_proxy: FaultProxy | None = None
        self.prefix = ""

    @property
    def host_dir(self) -> Path:
        return self.workdir / "hosts"

    @property
    def uri_template(self) -> str:
        """``test+tcp://{ip}/DIR/{name}.xml``: each host's proxy, each host's file."""
        return f"test+tcp://{{ip}}{self.host_dir}/{{name}}.xml"

    @property
    def uri_templates(self) -> tuple[str, ...]:
        return (self.uri_template,)

    def start(self) -> Fleet:
        quiet_libvirt()
        hosts = self.scenario.hosts
        # One more address than hosts: the daemon's own, after theirs.
        self.prefix, claim = claim_subnet(len(hosts) + 1)
        try:
            self.hub.start()
            self.host_dir.mkdir(parents=True, exist_ok=True)
            by_host: dict[str, list[VmSpec]] = {h.name: [] for h in hosts}
            for vm in self.scenario.vms:
                if vm.virt is not None:
                    by_host[vm.virt.host].append(vm)
            daemon_ip = host_ip(self.prefix, len(hosts))
            self.daemon = LibvirtDaemon("libvirtd", self.workdir, daemon_ip,
                                        clients=2 * len(hosts) + 100)
            self.daemon.start()
            for i, spec in enumerate(hosts):
                h = FleetHost(spec.name, host_ip(self.prefix, i),
                              self.host_dir / f"{spec.name}.xml")
                h.path.write_text(node_xml(by_host[spec.name]), encoding="utf-8")
                self.hosts[spec.name] = h
            self.daemon.wait_ready()
            for h in self.hosts.values():
                h.proxy = self.hub.add((h.ip, LIBVIRT_PORT), (daemon_ip, self.daemon.port),
                                       name=h.name)
            self.vdi = VdiServer(self.scenario, {n: h.ip for n, h in self.hosts.items()},
                                 address=f"{self.prefix}.1", port=0)
            self.vdi.start()
            claim.close()
            self.vdi_proxy = self.hub.add((f"{self.prefix}.1", VDI_PORT),
                                          (f"{self.prefix}.1", self.vdi.port), name="vdi")
        except BaseException:
            claim.close()
            self.stop()
            raise
        log.info("fleet up: %s hosts on one libvirtd at %s.x, VDI at %s", len(self.hosts),
                 self.prefix, self.vdi_url)
        return self

    def stop(self) -> None:
        """Stop everything; safe to call twice and after a failed start."""
        self.hub.stop()
        if self.vdi is not None:
            self.vdi.stop()
        if self.daemon is not None:
            self.daemon.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_delay(self, ms: float, host: str | None = None) -> None:
        """Added round-trip delay for one host (``vdi`` for the platform), or everything."""
        if host == "vdi":
            proxies = [self.vdi_proxy]
        elif host is not None:
            proxies = list(self.hosts[host].proxies)
        else:
            proxies = [self.vdi_proxy, *(p for h in self.hosts.values() for p in h.proxies)]
        for p in proxies:
            if p is not None:
                p.set_delay(ms)


def main(argv: list[str] | None = None) -> int:
    """``python -m vditui.lab.fleet HxV [--delay MS]``: serve a generated fleet until Ctrl-C,
    printing where (the platform, its login, the URI template to give vditui)."""
    import argparse
    import re
    import signal

    from vditui.lab.scenario import generate

    p = argparse.ArgumentParser(prog="python -m vditui.lab.fleet", description=main.__doc__)
    p.add_argument("size", help="HOSTSxVMS, e.g. 1000x20")
    p.add_argument("--delay", type=float, default=20.0,
                   help="added round-trip ms on every host and the platform (default 20)")
    args = p.parse_args(argv)
    m = re.fullmatch(r"(\d+)x(\d+)", args.size)
    if m is None:
        p.error(f"{args.size!r}: expected HOSTSxVMS such as 1000x20")
    hosts, vms = int(m.group(1)), int(m.group(2))
    with Fleet(generate(hosts, vms, pools=max(2, hosts // 100))) as fleet:
        fleet.set_delay(args.delay)
        print(f"VDI platform: {fleet.vdi_url}\n  user: {fleet.username}   password: "
              f"{fleet.password}\nlibvirt URI template: {fleet.uri_template}\n"
              f"{hosts} hosts x {vms} VMs on one libvirtd; Ctrl-C stops", flush=True)
        # SIGTERM leaves as Ctrl-C does: through the with, which stops the fleet.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
