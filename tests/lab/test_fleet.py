"""The fleet: many test-driver hosts behind one libvirtd, each its own URI, address and proxy."""

from __future__ import annotations

from dataclasses import replace

import libvirt
import pytest

from vditui.lab.fleet import Fleet
from vditui.lab.scenario import generate


def test_each_host_uri_reaches_that_host_and_its_states() -> None:
    scen = generate(3, 4, seed=7)
    with Fleet(scen) as fleet:
        assert len({h.ip for h in fleet.hosts.values()}) == 3
        for h in fleet.hosts.values():
            conn = libvirt.open(fleet.uri_template.format(ip=h.ip, name=h.name))
            try:
                got = {d.UUIDString(): d.isActive() == 1 for d in conn.listAllDomains()}
            finally:
                conn.close()
            want = {vm.uuid: vm.virt.state == "running" for vm in scen.vms
                    if vm.virt is not None and vm.virt.host == h.name}
            assert got == want
            assert h.proxy is not None and h.proxy.accepted >= 1


def test_a_fleet_refuses_hosts_it_cannot_serve() -> None:
    scen = generate(2, 1)
    bad = replace(scen.hosts[0], transports=("tls",))
    with pytest.raises(ValueError, match="plain test-driver hosts"):
        Fleet(replace(scen, hosts=(bad, *scen.hosts[1:])))
