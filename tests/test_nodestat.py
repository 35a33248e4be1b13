"""nodestat probes the nodes, as xCAT's does, and shows what they reported.

Everything happens inside a private network namespace (tests/netboot.py):
the daemon and the client run there, and so do the "nodes":

- nodes that are up are addresses of the namespace's own (on its bridge);
  the services a node runs are real listeners on their real ports there,
  port 22 for sshd and 443 for https (the namespace has its own ports): all
  that xCAT's nodestat asks of sshd, as this one, is that port 22 accepts;
- nodes that are down are addresses on a tap device that no program reads,
  with ARP off (tests/blackhole.py): every packet sent there is dropped,
  neither answered nor refused, as by a dead machine;
- a node that reported `booted` from its address and then went away had
  that address removed from the bridge.

No packet leaves the namespace.  The daemon runs as root, so it pings with a
raw socket; a second daemon runs without CAP_NET_RAW (setpriv), first where
the namespace's ping_group_range lets no group open ICMP datagram sockets,
then where it lets root's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.blackhole import silent_network
from tests.cluster import Cluster
from tests.netboot import Network, network

BRIDGE_NET = "10.78.0.1/24"  # the daemon's address; the up nodes are more addresses here
DROPPED_NET = "10.79.0.1/24"  # on the tap device: every other address there is silent
UP = {"sn21": 21, "sn22": 22, "sn23": 23, "sn24": 24, "sn25": 25, "sn26": 26}
LISTENING = {"sn21": (22,), "sn24": (22, 443), "sn26": (22,)}  # node: its services' ports
LISTENER = (
    "import socket, sys\n"
    "server = socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
    "print('listening', flush=True)\n"
    "while True:\n"
    "    server.accept()[0].close()\n"
)
STAMP = r"\d\d-\d\d-\d{4} \d\d:\d\d:\d\d"  # xCAT's statustime
NO_NET_RAW = ["setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw"]


def up(node: str) -> str:
    return f"10.78.0.{UP[node]}"


@dataclass
class Lab:
    net: Network
    cluster: Cluster

    def report(self, node: str, state: str) -> None:
        """The node says `state` from its own address, as its boot scripts do."""
        url = f"http://{self.net.server}:{self.cluster.http_port}/xcatd/status"
        result = subprocess.run(
            [*self.net.prefix, "curl", "-sS", "--interface", up(node), "--data-urlencode",
             f"state={state}", url],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.stdout.rstrip("\n") == f"{node}: {state}", result.stderr


def define_nodes(cluster: Cluster) -> None:
    for node in UP:
        cluster.ok("mkdef", node, "groups=service", f"ip={up(node)}")
    cluster.ok("mkdef", "cn[01-03]", "groups=compute", "ip=|cn(\\d+)|10.79.0.($1+10)|")


def started(root: Path, net: Network, prefix: list[str]) -> Cluster:
    cluster = Cluster(root, address=net.server, prefix=prefix)
    initialised = cluster.init()
    assert initialised.returncode == 0, initialised.stderr
    cluster.start()
    return cluster


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with network(tmp_path_factory.mktemp("nodestat-net"), BRIDGE_NET) as net:
        silent_network(net, DROPPED_NET)
        for node in UP:
            net.ip("addr", "add", f"{up(node)}/32", "dev", net.bridge)
        for node, ports in LISTENING.items():
            for port in ports:
                listener = [sys.executable, "-c", LISTENER, up(node), str(port)]
                net.start(listener, f"{node}-{port}.log").wait_for("listening", 10)
        cluster = started(tmp_path_factory.mktemp("nodestat-cluster"), net, net.prefix)
        try:
            define_nodes(cluster)
            yield Lab(net, cluster)
        finally:
            cluster.stop()


def test_each_node_is_probed_and_shown_as_xcat_shows_it(lab):
    lab.report("sn22", "booted")
    lab.report("sn23", "booted")
    lab.net.ip("addr", "del", f"{up('sn23')}/32", "dev", lab.net.bridge)  # sn23 goes away
    lab.cluster.ok("mkdef", "nameless", "groups=lost")  # no ip, and the name resolves nowhere

    rc, out, err = lab.cluster.outcome("nodestat", "service,compute,lost")
    assert out == (
        "cn01: noping\ncn02: noping\ncn03: noping\n"
        "sn21: sshd\n"  # port 22 accepts connections
        "sn22: booted\n"  # answers, no service: what it reported
        "sn23: noping\n"  # reported booted, but answers no more
        "sn24: https,sshd\n"
        "sn25: ping\n"  # answers, no service, never reported
        "sn26: sshd\n"
    )
    assert (rc, err) == (
        1,
        "nameless: Error: no ip attribute, and the name nameless does not resolve: set its "
        "address with chdef nameless ip=<address>, or add it to /etc/hosts or DNS\n",
    )
    assert "nodestat and pping ping through a raw ICMP socket" in lab.cluster.logs()


def test_t_adds_the_last_report_and_when_it_came(lab):
    lab.report("sn21", "netbooting")
    lab.report("sn21", "booted")
    lines = lab.cluster.ok("nodestat", "sn21,sn22,sn23,sn25,cn01", "-t").splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "cn01: noping", "sn21: sshd", "sn22: booted", "sn23: noping", "sn25: ping",
    ]  # fmt: skip
    assert lines[0] == "cn01: noping"  # never reported: nothing to add
    assert re.fullmatch(rf"sn21: sshd \(booted {STAMP}\)", lines[1])
    assert re.fullmatch(rf"sn22: booted \({STAMP}\)", lines[2])  # the line shows the report
    assert re.fullmatch(rf"sn23: noping \(booted {STAMP}\)", lines[3])
    assert lines[4] == "sn25: ping"
    record = lab.cluster.ok("nodestat", "sn21", "--json")
    assert re.fullmatch(
        rf'\{{"node": "sn21", "status": "sshd", "reported": "booted", "statustime": "{STAMP}"\}}\n',
        record,
    )


def test_u_saves_the_outcome_as_each_nodes_status_until_it_reports_again(lab):
    assert lab.cluster.ok("nodestat", "cn02,sn25,sn26", "-u") == (
        "cn02: noping\nsn25: ping\nsn26: sshd\n"
    )
    shown = lab.cluster.ok("lsdef", "cn02,sn25,sn26", "-i", "status,statustime")
    assert re.fullmatch(
        rf"Object name: cn02\n    status=noping\n    statustime={STAMP}\n"
        rf"Object name: sn25\n    status=ping\n    statustime={STAMP}\n"
        rf"Object name: sn26\n    status=ping\n    statustime={STAMP}\n",  # as xCAT saves it
        shown,
    )
    lab.report("sn25", "booted")
    assert lab.cluster.ok("nodestat", "sn25") == "sn25: booted\n"


def test_p_asks_the_bmc_of_each_silent_node_and_says_why_it_cannot(lab):
    rc, out, err = lab.cluster.outcome("nodestat", "cn03,sn21", "-p")
    assert out == "cn03: noping\nsn21: sshd\n"
    assert (rc, err) == (1, "cn03: Error: mgt is not set: set it with chdef <node> mgt=ipmi\n")


def test_m_and_bad_nodes_say_so_in_one_line(lab):
    assert lab.cluster.outcome("nodestat", "sn21", "-m") == (
        1,
        "",
        "Error: -m reads xCAT's monsetting table, which xcatd does not have: nodestat tries "
        "xCAT's default services (sshd, https, pbs, xend, rdp, msrpc)\n",
    )
    assert lab.cluster.outcome("nodestat", "nosuch") == (
        1,
        "",
        "Error: Invalid nodes and/or groups in noderange: nosuch\n",
    )
    assert lab.cluster.ok("nodestat", "sn21", "-f") == "sn21: sshd\n"  # xCAT's fping option


def test_without_raw_sockets_it_pings_through_datagram_sockets_or_tries_the_ports(
    lab, tmp_path: Path
):
    unprivileged = started(tmp_path / "cluster", lab.net, [*lab.net.prefix, *NO_NET_RAW])
    expected = "cn01: noping\nsn21: sshd\nsn22: booted\nsn24: https,sshd\nsn25: ping\n"
    try:
        define_nodes(unprivileged)
        unprivileged.ok("chdef", "sn22", "status=booted")
        # No ICMP at all: a port that refuses the connection shows the node is up.
        assert unprivileged.ok("nodestat", "cn01,sn21,sn22,sn24,sn25") == expected
        assert "nodestat and pping cannot send ICMP echo requests" in unprivileged.logs()

        # Root's group may open ICMP datagram sockets: no privilege needed.
        sysctl = ["sysctl", "-w", "net.ipv4.ping_group_range=0 0"]
        subprocess.run([*lab.net.prefix, *sysctl], check=True, capture_output=True)
        assert unprivileged.ok("nodestat", "cn01,sn21,sn22,sn24,sn25") == expected
        assert "nodestat and pping ping through an ICMP datagram socket" in unprivileged.logs()
    finally:
        unprivileged.stop()


def test_h_v_and_no_noderange_answer_with_xcats_usage(shared_cluster):
    # nodestat.pm: its usage on stdout, with rc 1 when the noderange is missing.
    usage = (
        "Usage:\n"
        "  nodestat [noderange] [-m|--usemon] [-p|powerstat] [-f|--usefping] [-u|--updatedb]\n"
        "  nodestat [-h|--help|-v|--version]\n"
    )
    for args, rc, out in [(["-h"], 0, usage), ([], 1, usage), (["-v"], 0, "Version 0.1.0\n")]:
        assert shared_cluster.outcome("nodestat", *args) == (rc, out, "")
