"""makehosts as an administrator uses it, through the real client against a real
daemon: the cluster's hosts file (under its root: <root>/etc/hosts) written
from the node definitions, keeping the lines that are not the nodes'."""

from __future__ import annotations

from pathlib import Path

import pytest

from xcatd.hostsfile import Style, host_line

from .cluster import Cluster

SITE_LINES = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n# the site's own\n10.9.9.9 gw\n"


@pytest.fixture(scope="module")
def mn(shared_cluster: Cluster) -> Cluster:
    """Nodes on 10.1.0.0/16 (no domain of its own: site.domain's) and an
    InfiniBand network with its own domain."""
    cluster = shared_cluster
    cluster.ok("chdef", "-t", "site", "domain=cluster.net")
    cluster.ok("mkdef", "-t", "network", "-o", "mgmt", "net=10.1.0.0", "mask=255.255.0.0")
    cluster.ok("mkdef", "-t", "network", "-o", "ib", "net=10.2.0.0", "mask=255.255.0.0",
               "domain=ib.cluster")  # fmt: skip
    cluster.ok("mkdef", "-t", "group", "-o", "compute", r"ip=|cn(\d+)|10.1.0.($1+0)|")
    cluster.ok("mkdef", "cn1,cn2", "groups=compute")
    cluster.ok("chdef", "cn2", "hostnames=cn2-alias,cn2.other.org")
    cluster.ok("mkdef", "sn1", "groups=service", "ip=10.1.0.100", "nicips.ib0=10.2.0.100",
               "otherinterfaces=-bmc:10.1.1.100")  # fmt: skip
    return cluster


def hosts(cluster: Cluster) -> Path:
    return cluster.root / "etc/hosts"


def test_makehosts_adds_the_nodes_lines_and_keeps_the_others(mn):
    hosts(mn).write_text(SITE_LINES)

    assert mn.outcome("makehosts", "compute,sn1") == (0, "", "")

    assert hosts(mn).read_text() == SITE_LINES + (
        "10.1.0.1 cn1 cn1.cluster.net\n"
        "10.1.0.2 cn2 cn2.other.org cn2-alias\n"
        "10.1.0.100 sn1 sn1.cluster.net\n"
        "10.1.1.100 sn1-bmc sn1-bmc.cluster.net\n"
        "10.2.0.100 sn1-ib0 sn1-ib0.ib.cluster\n"
    )
    assert (mn.root / "etc/hosts.xcatbak").read_text() == SITE_LINES


def test_a_changed_node_is_written_where_its_line_was_and_d_removes_lines(mn):
    hosts(mn).write_text(SITE_LINES)
    mn.ok("makehosts", "compute,sn1")
    mn.ok("chdef", "cn1", "ip=10.1.0.11")

    mn.ok("makehosts", "-l", "cn1")
    mn.ok("makehosts", "-d", "cn2,sn1")

    assert hosts(mn).read_text() == SITE_LINES + "10.1.0.11 cn1.cluster.net cn1\n"
    mn.ok("chdef", "cn1", "ip=")


def test_n_writes_the_file_anew_with_every_node_that_has_an_ip(mn):
    hosts(mn).write_text(SITE_LINES + "10.1.0.2 cn2-old\n")

    mn.ok("makehosts", "-n")

    assert hosts(mn).read_text() == (
        "127.0.0.1 localhost\n"
        "10.1.0.1 cn1 cn1.cluster.net\n"
        "10.1.0.2 cn2 cn2.other.org cn2-alias\n"
        "10.1.0.100 sn1 sn1.cluster.net\n"
        "10.1.1.100 sn1-bmc sn1-bmc.cluster.net\n"
        "10.2.0.100 sn1-ib0 sn1-ib0.ib.cluster\n"
    )


def test_site_fqdnfirst_puts_the_long_name_first(mn):
    hosts(mn).write_text(SITE_LINES)
    mn.ok("chdef", "-t", "site", "FQDNfirst=yes")
    try:
        mn.ok("makehosts", "cn1")
    finally:
        mn.ok("chdef", "-t", "site", "FQDNfirst=")
    assert hosts(mn).read_text() == SITE_LINES + "10.1.0.1 cn1.cluster.net cn1\n"


def test_m_writes_the_link_local_address_of_the_nodes_mac_in_place_of_its_line(mn):
    hosts(mn).write_text(SITE_LINES)
    mn.ok("makehosts", "cn1,cn2")
    mn.ok("chdef", "cn1", "mac=52:54:00:12:34:56")

    mn.ok("makehosts", "-m", "cn1")  # xCAT's finds cn1's line by its name, and replaces it

    assert hosts(mn).read_text() == SITE_LINES + (
        "fe80::5054:ff:fe12:3456 cn1 cn1.cluster.net\n10.1.0.2 cn2 cn2.other.org cn2-alias\n"
    )
    mn.ok("chdef", "cn1", "mac=")


def test_nodes_that_cannot_be_written_are_named_in_xcats_words(mn):
    mn.ok("mkdef", "noaddress", "groups=other")
    mn.ok("mkdef", "-t", "group", "-o", "badips", r"ip=|badaddress(\d+)|10.1.0.($1+300)|")
    mn.ok("mkdef", "badaddress1", "groups=badips")
    hosts(mn).write_text(SITE_LINES)

    assert mn.outcome("makehosts", "noaddress,badaddress1") == (
        0,
        "",
        "Warning: Ignoring node 'badaddress1', its ip address '10.1.0.301' is not valid.\n"
        "Warning: Ignoring node 'noaddress', it can not be resolved.\n",
    )
    mn.ok("chdef", "-t", "site", "domain=")
    try:
        assert mn.outcome("makehosts", "cn1") == (
            0,
            "",
            "Warning: No domain can be determined for node 'cn1'. The domain of the xCAT node "
            "must be provided in an xCAT network definition or the xCAT site definition.\n",
        )
    finally:
        mn.ok("chdef", "-t", "site", "domain=cluster.net")
    assert hosts(mn).read_text() == SITE_LINES
    mn.ok("rmdef", "noaddress,badaddress1")


def test_bad_input_gets_one_line(mn):
    assert mn.outcome("makehosts", "-d") == (
        1,
        "",
        "Error: -d removes the lines of a noderange's nodes: makehosts -d <noderange>\n",
    )
    assert mn.outcome("makehosts", "nosuchnode") == (
        1,
        "",
        "Error: Invalid nodes and/or groups in noderange: nosuchnode\n",
    )
    rc, out, err = mn.outcome("makehosts", "-h")
    assert (rc, out, err) == (
        0,
        "Usage: makehosts <noderange> [-d] [-n] [-l] [-a] [-o] [-m]\n       makehosts -h\n"
        "       makehosts -v\n",
        "",
    )


def test_the_line_as_xcat_shapes_it():
    plain = Style()
    assert host_line("10.0.0.1", "n1", "c.net", "n1-a n1", plain) == "10.0.0.1 n1 n1.c.net n1-a"
    assert host_line("10.0.0.1", "n1", "c.net", "n1-a", Style(others_first=True)) == (
        "10.0.0.1 n1-a n1.c.net n1"
    )
    assert host_line("10.0.0.1", "n1", "c.net", "a,b", Style(add_domain=True)) == (
        "10.0.0.1 n1 n1.c.net b.c.net a.c.net a b"
    )
    assert host_line("10.0.0.1", "n1.c.net", "c.net", "", plain) == "10.0.0.1 n1 n1.c.net"
