"""rinstall as an administrator uses it: the real client against a real
daemon, nodeset writing the boot files of a real packed image, and real
BMCs (OpenIPMI's ipmi_sim on loopback, each in front of a QEMU machine,
tests/bmc.py) told to boot from the network and powered.  What rinstall
prints is checked against what happened: the boot files and definitions,
the boot device QEMU was started with, whether it runs and was reset.
Then what stops one node and not the others, and the refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .bmc import QEMU_CHASSIS, Bmc, BmcLab, bmc_lab
from .cluster import Cluster, free_port
from .sessions import credentials_for
from .terminal import HELP, LEAVE, Terminal
from .test_nodeset import attributes, make_image, tftp
from .test_power import events, qemu_command_line

NETBOOT = "netboot debian12-x86_64-service"


@pytest.fixture(scope="module")
def cluster(shared_cluster: Cluster) -> Cluster:
    """One cluster for the module: its DHCP set up and an image to install."""
    shared_cluster.ok("mkdef", "-t", "network", "-o", "loopback", "net=127.0.0.0",
       "mask=255.0.0.0")  # fmt: skip
    shared_cluster.ok("makedhcp", "-n")
    make_image(shared_cluster, "svc")
    return shared_cluster


@pytest.fixture
def bmcs() -> Iterator[BmcLab]:
    with bmc_lab(QEMU_CHASSIS) as lab:
        yield lab


def define(cluster: Cluster, node: str, bmc: Bmc, number: int, *more: str) -> None:
    """A node that can boot from the network, its BMC `bmc`."""
    cluster.ok("mkdef", node, "groups=install", f"mac=52:54:00:00:0c:{number:02x}",
       f"ip=127.0.12.{number}", *bmc.attributes(), *more)  # fmt: skip


def test_rinstall_sets_the_nodes_up_then_boots_them_from_the_network(cluster, bmcs):
    was_off, was_on = bmcs.start(2)
    define(cluster, "ri1", was_off, 1)
    define(cluster, "ri2", was_on, 2)
    cluster.ok("rpower", "ri2", "on")
    running = was_on.machine.pid()

    # As xCAT's: the nodes named, then quiet when all went well.
    assert cluster.outcome("rinstall", "ri1,ri2", "osimage=svc") == (
        0, "Provision node(s): ri1 ri2\n", ""
    )  # fmt: skip
    for node in ("ri1", "ri2"):
        assert (
            tftp(cluster, f"xcat/xnba/nodes/{node}").read_text().startswith(f"#!ipxe\n#{NETBOOT}\n")
        )
        assert attributes(cluster, node, "currstate", "provmethod") == {
            "currstate": NETBOOT,
            "provmethod": "svc",
        }
    for bmc in (was_off, was_on):  # powered, to boot from the network
        assert "-boot once=n" in qemu_command_line(bmc)
    assert was_off.machine.pid() is not None and events(was_off) == []  # on
    assert was_on.machine.pid() != running  # reset: restarted to boot from the network
    assert sorted(cluster.ok("rpower", "ri1,ri2", "stat").splitlines()) == ["ri1: on", "ri2: on"]

    # Plain rinstall: the image each node's provmethod names, as nodeset osimage.
    assert cluster.ok("rinstall", "ri1") == "Provision node(s): ri1\n"


def test_V_shows_each_step_and_every_nodes_lines(cluster, bmcs):
    (bmc,) = bmcs.start(1)
    define(cluster, "rv1", bmc, 3)
    assert cluster.outcome("rinstall", "rv1", "boot", "-V", "-u") == (0, (
        "Provision node(s): rv1\n"
        "Run command: nodeset rv1 boot\n"
        "rv1: boot\n"
        "Run command: rsetboot rv1 net -u\n"
        "Run command: rpower rv1 boot\n"
        "rv1: on\n"
    ), "")  # fmt: skip
    # boot: the boot file leaves the network boot to the next device.
    assert "#boot" in tftp(cluster, "xcat/xnba/nodes/rv1").read_text()
    assert bmc.machine.pid() is not None


def test_a_node_nodeset_fails_for_is_not_powered_and_a_silent_bmc_is_one_line(cluster, bmcs):
    good, unset = bmcs.start(2)
    define(cluster, "rf1", good, 4, "provmethod=svc")
    define(cluster, "rf2", unset, 5)  # no provmethod: plain osimage has no image for it
    silent_port = free_port()  # nothing answers there
    cluster.ok("mkdef", "rf3", "groups=install", "mac=52:54:00:00:0c:06", "ip=127.0.12.6",
       "mgt=ipmi", "bmc=127.77.255.1", f"bmcport={silent_port}", "bmcusername=admin",
       "bmcpassword=x", "provmethod=svc")  # fmt: skip

    rc, out, err = cluster.outcome("rinstall", "rf1,rf2,rf3")
    assert (rc, out) == (1, "Provision node(s): rf1 rf2 rf3\n")
    assert err.splitlines() == [
        "rf2: Error: no osimage given and provmethod is not set: use osimage=<image>",
        "Error: Failed to run 'nodeset' against the following nodes: rf2",
        f"rf3: Error: no answer from BMC 127.77.255.1:{silent_port} (2 tries)",
        "Error: Failed to run 'rpower' against the following nodes: rf3",
    ]
    assert good.machine.pid() is not None  # the others went on
    assert unset.machine.pid() is None  # not set up: not powered
    assert attributes(cluster, "rf3", "currstate") == {"currstate": NETBOOT}

    # One node alone: xCAT's words for it.
    rc, _, err = cluster.outcome("rinstall", "rf2")
    assert (rc, err.splitlines()[-1]) == (1, "Error: Failed to run 'nodeset' against the node: rf2")


def test_what_xcatd_cannot_do_and_bad_options_are_one_line(cluster):
    cluster.ok("mkdef", "rb1,rb2", "groups=refused")
    for action, text in [
        ("shell", "rinstall shell boots xCAT's genesis image, which xcatd does not provide"),
        ("runcmd=bmcsetup", "rinstall runcmd= boots xCAT's genesis image, which xcatd does "
                            "not provide"),
        ("runimage=http://x/t.tgz", "rinstall runimage= boots xCAT's genesis image, which "
                                    "xcatd does not provide"),
        ("offline", "Invalid option offline: rinstall takes boot or osimage[=<imagename>]"),
    ]:  # fmt: skip
        assert cluster.outcome("rinstall", "rb1", action) == (1, "", f"Error: {text}\n")
    assert cluster.outcome("rinstall", "nosuch") == (
        1, "", "Error: Invalid nodes and/or groups in noderange: nosuch\n"
    )  # fmt: skip
    rc, out, err = cluster.outcome("rinstall", "rb1", "--dance")
    assert (rc, out, err.splitlines()[0]) == (1, "", "Error: unrecognized arguments: --dance")
    # -c opens one console: with two nodes, nothing is done.
    assert cluster.outcome("rinstall", "rb1,rb2", "-c") == (1, "", (
        "Error: rinstall -c/--console can only be run against one node! "
        "Please run wcons <noderange> after rinstall for multiple nodes.\n"
    ))  # fmt: skip


def test_h_and_no_arguments_answer_with_xcats_usage(cluster):
    usage = (
        "Usage:\n"
        "   rinstall <noderange> [boot] [-c|--console] [-u|--uefimode] [-V|--verbose]\n"
        "   rinstall <noderange> [osimage[=<imagename>]] [--noupdateinitrd] [--ignorekernelchk] "
        "[-c|--console] [-u|--uefimode] [-V|--verbose]\n"
        "   rinstall [-h|--help|-v|--version]\n"
    )
    assert cluster.outcome("rinstall") == (1, usage, "")
    assert cluster.outcome("rinstall", "-h") == (0, usage, "")


def test_c_opens_the_nodes_console_once_it_is_provisioning(cluster, terminals):
    with bmc_lab(QEMU_CHASSIS) as lab:
        (bmc,) = lab.start(1, console=True)
        define(cluster, "rc1", bmc, 7, "cons=ipmi")
        console = Terminal(cluster, "rinstall", "rc1", "osimage=svc", "-c")
        terminals.append(console)
        console.wait_for("Provision node(s): rc1")
        console.wait_for(HELP)  # rcons attached
        assert bmc.machine.pid() is not None
        console.type(LEAVE)
        assert console.exit_code() == 0


def test_a_user_allowed_rinstall_powers_the_nodes_without_being_allowed_rpower(
    cluster, bmcs, tmp_path
):
    """As in xCAT, the policy checks the command typed, rinstall, and not
    the steps it takes (README, the rinstall row)."""
    (bmc,) = bmcs.start(1)
    define(cluster, "rp1", bmc, 8)
    cluster.ok("mkdef", "-t", "policy", "-o", "6", "name=carol", "commands=rinstall", "rule=allow")
    creds = credentials_for(cluster, "carol", "user", tmp_path / "carol")
    env = {**cluster.env, "XCAT_CRED_DIR": str(creds)}
    try:
        assert cluster.run("rpower", "rp1", "on", env=env).stderr == (
            "Error: Permission denied for request\n"
        )
        installed = cluster.run("rinstall", "rp1", "osimage=svc", env=env)
        assert (installed.returncode, installed.stdout) == (0, "Provision node(s): rp1\n")
        assert bmc.machine.pid() is not None
    finally:
        cluster.ok("rmdef", "-t", "policy", "-o", "6")
