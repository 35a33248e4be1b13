"""makenetworks as an administrator uses it: the daemon runs in a network
namespace the test makes, whose interfaces (veth pairs, the peers without
addresses) and default route are known, so every network it must define,
and every one it must leave out, is the test's own."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from xcatd import __version__

from .cluster import Cluster

NAMESPACE = f"xcat-mkn-{os.getpid()}"
LINKS = {  # interface: (addresses, up)
    "mkd0": (["10.31.0.5/24"], True),  # the default route's gateway is on it
    "mkd1": (["172.20.16.1/20", "172.20.16.2/20"], True),  # two addresses, one network
    "mkd2": (["169.254.7.7/16"], True),  # link-local: left out
    "mkd3": (["192.168.50.1/24"], False),  # down: left out
    "mkd4": (["10.99.99.99/32"], True),  # a host address: no network
}
FIRST = "10_31_0_0-255_255_255_0"
SECOND = "172_20_16_0-255_255_240_0"
STANZAS = (
    "\n#From mn1.\n"
    f"{FIRST}:\n"
    "    objtype=network\n"
    "    net=10.31.0.0\n"
    "    mask=255.255.255.0\n"
    "    gateway=10.31.0.254\n"
    "    mgtifname=mkd0\n"
    "    tftpserver=10.31.0.5\n"
    "\n#From mn1.\n"
    f"{SECOND}:\n"
    "    objtype=network\n"
    "    net=172.20.16.0\n"
    "    mask=255.255.240.0\n"
    "    gateway=<xcatmaster>\n"
    "    mgtifname=mkd1\n"
    "    tftpserver=172.20.16.1\n"
)


def ip(*args: str) -> None:
    subprocess.run(["ip", "-n", NAMESPACE, *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def namespace() -> Iterator[str]:
    subprocess.run(["ip", "netns", "add", NAMESPACE], check=True, capture_output=True)
    try:
        ip("link", "set", "lo", "up")
        for link, (addresses, up) in LINKS.items():
            peer = link.replace("mkd", "mkp")
            ip("link", "add", link, "type", "veth", "peer", "name", peer)
            for address in addresses:
                ip("addr", "add", address, "dev", link)
            if up:
                ip("link", "set", peer, "up")
                ip("link", "set", link, "up")
        ip("route", "add", "default", "via", "10.31.0.254")
        yield NAMESPACE
    finally:
        subprocess.run(["ip", "netns", "del", NAMESPACE], check=True, capture_output=True)


@pytest.fixture(scope="module")
def mn(namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The management node: its daemon (and every command) in the namespace."""
    cluster = Cluster(tmp_path_factory.mktemp("mkn"), prefix=["ip", "netns", "exec", namespace])
    assert cluster.init().returncode == 0
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def networks(cluster: Cluster) -> str:
    return cluster.ok("lsdef", "-t", "network", "-l", "-z")


def test_d_shows_the_stanzas_of_this_hosts_networks_and_writes_nothing(mn):
    assert mn.ok("makenetworks", "-d") == STANZAS
    assert mn.outcome("lsdef", "-t", "network")[0] != 0  # none defined
    # As xCAT's man page has it: makenetworks -d > f; edit; mkdef -z < f.
    created = mn.run("mkdef", "-z", input=STANZAS)
    assert created.returncode == 0, created.stderr
    try:
        assert "    tftpserver=172.20.16.1\n" in networks(mn)
    finally:
        mn.ok("rmdef", "-t", "network", "-o", f"{FIRST},{SECOND}")


def test_defines_each_network_once_and_never_overwrites_one(mn):
    assert mn.ok("makenetworks") == ""
    defined = networks(mn)
    assert defined.count("objtype=network") == 2
    assert (
        f"{FIRST}:\n    objtype=network\n    gateway=10.31.0.254\n    mask=255.255.255.0\n"
        "    mgtifname=mkd0\n    net=10.31.0.0\n    tftpserver=<xcatmaster>\n"
    ) in defined
    assert f"{SECOND}:\n    objtype=network\n    gateway=<xcatmaster>\n" in defined
    mn.ok("chdef", "-t", "network", "-o", FIRST, "gateway=10.31.0.1")
    rc, out, err = mn.outcome("makenetworks")
    assert (rc, out) == (0, "")
    assert err == "".join(
        f"Warning: The network entry '{name}' already exists in xCAT networks table. "
        f"Cannot create a definition for '{name}'\n"
        for name in (FIRST, SECOND)
    )
    assert "gateway=10.31.0.1\n" in networks(mn)  # kept
    mn.ok("rmdef", "-t", "network", "-o", f"{FIRST},{SECOND}")


def test_a_network_defined_under_another_name_is_left_as_it_is(mn):
    mn.ok("mkdef", "-t", "network", "-o", "cluster", "net=10.31.0.0", "mask=255.255.255.0",
          "mgtifname=mkd0")  # fmt: skip
    try:
        out = mn.ok("makenetworks", "-V")
        assert out == (
            f"{FIRST}: the network object cluster defines it already\n"
            f"Defined network {SECOND}: net=172.20.16.0 mask=255.255.240.0 "
            "gateway=<xcatmaster> mgtifname=mkd1 tftpserver=<xcatmaster>\n"
        )
        assert mn.ok("lsdef", "-t", "network") == (f"{SECOND}  (network)\ncluster  (network)\n")
        shown = mn.ok("makenetworks", "-d")
        notes = "# Note: An equivalent xCAT network definition already exists.\n\n"
        assert shown.count(notes) == 2  # both exist now
    finally:
        mn.ok("rmdef", "-t", "network", "-o", f"cluster,{SECOND}")


def test_help_version_and_a_bad_option(mn):
    assert mn.ok("makenetworks", "-h") == (
        "\nUsage: makenetworks - Gather cluster network information and add it to the "
        "xCAT database.\n\n"
        "  makenetworks [-h|--help ]\n\n"
        "  makenetworks [-v|--version]\n\n"
        "  makenetworks [-V|--verbose] [-d|--display]\n\n"
    )
    assert mn.ok("makenetworks", "-v") == f"makenetworks - Version {__version__}\n"
    rc, out, err = mn.outcome("makenetworks", "--bogus")
    assert (rc, out) == (1, "")
    assert "unrecognized arguments: --bogus" in err


def test_with_only_loopback_it_says_what_to_do(tmp_path: Path):
    lonely = f"xcat-mkl-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", lonely], check=True)
    try:
        subprocess.run(["ip", "-n", lonely, "link", "set", "lo", "up"], check=True)
        cluster = Cluster(tmp_path / "c", prefix=["ip", "netns", "exec", lonely])
        assert cluster.init().returncode == 0
        cluster.start()
        try:
            assert cluster.outcome("makenetworks") == (
                0,
                "",
                "Warning: no interface of this host is on a network nodes can use (only "
                "loopback or link-local addresses): define one with mkdef -t network\n",
            )
        finally:
            cluster.stop()
    finally:
        subprocess.run(["ip", "netns", "del", lonely], check=True)
