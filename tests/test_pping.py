"""pping as an administrator uses it: the real client against a real daemon
that pings, all inside a private network namespace (tests/netboot.py), as
nodestat's tests do: nodes that answer are addresses of the namespace's
own bridge; silent ones are on a tap device no program reads, ARP off
(tests/blackhole.py), where every packet is dropped, as by a machine that
is off.  The namespace has its own /etc/hosts (`ip netns exec` puts
/etc/netns/<name>/hosts in its place), naming nodes without an ip
attribute and the `<node>-<interface>` hosts -i pings."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.blackhole import silent_network
from tests.cluster import Cluster
from tests.netboot import network
from tests.test_nodestat import started

HOSTS = (
    "127.0.0.1 localhost\n"
    "10.82.0.21 pp3\n"  # pp3 has no ip attribute: its name is resolved
    "10.82.0.22 pp1-ib0\n"
    "10.83.0.12 pp2-ib0\n"
    "10.82.0.23 pp2-ib1\n"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with network(tmp_path_factory.mktemp("pping-net"), "10.82.0.1/24") as net:
        silent_network(net, "10.83.0.1/24")
        for number in (21, 22, 23):
            net.ip("addr", "add", f"10.82.0.{number}/32", "dev", net.bridge)
        etc = Path("/etc/netns") / net.name
        etc.mkdir(parents=True)
        try:
            (etc / "hosts").write_text(HOSTS)
            cluster = started(tmp_path_factory.mktemp("pping-cluster"), net, net.prefix)
            try:
                yield cluster
            finally:
                cluster.stop()
        finally:
            shutil.rmtree(etc)


@pytest.fixture(scope="module")
def nodes(cluster: Cluster) -> Cluster:
    cluster.ok("mkdef", "pp1", "groups=pinged", "ip=10.82.0.21")
    cluster.ok("mkdef", "pp2", "groups=pinged", "ip=10.83.0.12")  # silent
    cluster.ok("mkdef", "pp3", "groups=pinged")
    cluster.ok("mkdef", "pp4", "groups=pinged")  # no ip, and its name resolves nowhere
    return cluster


def test_each_node_pings_or_not(nodes):
    assert nodes.outcome("pping", "pinged") == (
        0, "pp1: ping\npp2: noping\npp3: ping\npp4: noping\n", ""
    )  # fmt: skip
    # -f is xCAT's switch to fping, whose echo requests these are already.
    assert nodes.ok("pping", "-f", "pp1,pp2") == "pp1: ping\npp2: noping\n"
    assert nodes.ok("pping", "pp1,pp2", "--json") == (
        '{"node": "pp1", "status": "ping"}\n{"node": "pp2", "status": "noping"}\n'
    )
    assert "nodestat and pping ping through a raw ICMP socket" in nodes.logs()


def test_i_pings_each_interfaces_host_in_turn(nodes):
    assert nodes.ok("pping", "pp1,pp2", "-i", "ib0,ib1") == (
        "pp1-ib0: ping\npp2-ib0: noping\npp1-ib1: noping\npp2-ib1: ping\n"
    )


def test_bad_noderanges_and_options_are_one_line(nodes):
    assert nodes.outcome("pping", "nosuch") == (
        1, "", "Error: Invalid nodes and/or groups in noderange: nosuch\n"
    )  # fmt: skip
    usage = (
        "Usage: pping [-i|--interface interfaces][-f|--use_fping] noderange\n"
        "       pping -h|--help\n"
        "       pping -v|--version\n"
    )
    assert nodes.outcome("pping") == (1, usage, "")
    assert nodes.outcome("pping", "-h") == (0, usage, "")
    rc, out, err = nodes.outcome("pping", "pp1", "-x")
    assert (rc, out, err.splitlines()[0]) == (1, "", "Error: unrecognized arguments: -x")
