"""rpower, rsetboot and rnetboot as an administrator uses them, through the
real client against a real daemon, driving real BMCs: OpenIPMI's ipmi_sim
on loopback, each in front of a real QEMU machine (tests/bmc.py,
xcatd/lab/chassis_control.py).  What the commands print is checked against what
happened to the machine: whether its QEMU process runs, what QMP says, the
events QEMU reported, the boot device it was started with.  Then every
reason one node can fail, each one line, while the other nodes go on."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .bmc import QEMU_CHASSIS, USER, Bmc, BmcLab, bmc_lab
from .cluster import BIN, Cluster, free_port
from .test_security import audit_rows, wait_for_audit
from .waiting import wait_for

NODE_ERROR = "{node}: Error: {text}"  # xCAT's form of an error about one node


@pytest.fixture
def bmcs() -> Iterator[BmcLab]:
    """Simulated BMCs for one test, each owning a QEMU machine, all stopped after."""
    with bmc_lab(QEMU_CHASSIS) as lab:
        yield lab


def define(cluster: Cluster, node: str, simulator: Bmc, **changed: str) -> None:
    cluster.ok("mkdef", node, "groups=power", *simulator.attributes(**changed))


def rpower(cluster: Cluster, noderange: str, action: str) -> str:
    return cluster.ok("rpower", noderange, action)


def qemu_command_line(bmc: Bmc) -> str:
    pid = bmc.machine.pid()
    assert pid is not None, f"{bmc.name}'s machine is not running"
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def events(bmc: Bmc) -> list[str]:
    """What QEMU reported doing (RESET, POWERDOWN), oldest first."""
    machine = bmc.machine
    return machine.events.read_text().split() if machine.events.exists() else []


# -- rpower ----------------------------------------------------------------------------


def test_on_stat_and_off_start_and_end_the_machine(cluster, bmcs):
    (bmc,) = bmcs.start(1)
    define(cluster, "pw1", bmc)
    assert rpower(cluster, "pw1", "stat") == "pw1: off\n"
    assert bmc.machine.pid() is None

    assert rpower(cluster, "pw1", "on") == "pw1: on\n"
    started = bmc.machine.pid()
    assert started is not None
    assert bmc.machine.status() == "prelaunch"  # QMP answers: a live QEMU
    assert rpower(cluster, "pw1", "state") == "pw1: on\n"
    assert rpower(cluster, "pw1", "status") == "pw1: on\n"  # xCAT's docs: rpower vm1 status
    assert rpower(cluster, "pw1", "on") == "pw1: on\n"  # already on: nothing sent
    assert bmc.machine.pid() == started

    assert rpower(cluster, "pw1", "off") == "pw1: off\n"
    assert bmc.machine.pid() is None
    assert rpower(cluster, "pw1", "stat") == "pw1: off\n"


def test_reset_softoff_and_cycle_reach_the_running_machine(cluster, bmcs):
    (bmc,) = bmcs.start(1)
    define(cluster, "pw2", bmc)
    rpower(cluster, "pw2", "on")
    started = bmc.machine.pid()

    assert rpower(cluster, "pw2", "reset") == "pw2: reset\n"
    assert (events(bmc), bmc.machine.pid()) == (["RESET"], started)

    # The ACPI power button: QEMU passes it on, and a machine without an
    # operating system (as this one) stays on.
    assert rpower(cluster, "pw2", "softoff") == "pw2: softoff\n"
    assert events(bmc) == ["RESET", "POWERDOWN"]
    assert rpower(cluster, "pw2", "stat") == "pw2: on\n"

    # Off, then on again a second later: a new QEMU process.
    assert rpower(cluster, "pw2", "cycle") == "pw2: cycle\n"
    wait_for(lambda: bmc.machine.pid() not in (None, started), "a new machine", timeout=10)
    assert rpower(cluster, "pw2", "stat") == "pw2: on\n"


def test_boot_powers_on_a_machine_that_is_off_and_resets_one_that_is_on(cluster, bmcs):
    (bmc,) = bmcs.start(1)
    define(cluster, "pw3", bmc)
    assert rpower(cluster, "pw3", "boot") == "pw3: on\n"
    started = bmc.machine.pid()
    assert started is not None and events(bmc) == []
    assert rpower(cluster, "pw3", "boot") == "pw3: reset\n"
    assert (events(bmc), bmc.machine.pid()) == (["RESET"], started)
    # What needs a machine that is on leaves one that is off alone.
    rpower(cluster, "pw3", "off")
    for action in ("off", "softoff", "reset"):
        assert rpower(cluster, "pw3", action) == "pw3: off\n"
    assert bmc.machine.pid() is None and events(bmc) == ["RESET"]


def test_json_gives_one_record_per_node(cluster, bmcs):
    first, second = bmcs.start(2)
    define(cluster, "js1", first)
    define(cluster, "js2", second)
    # power, when set, beats mgt (a BMC's attributes need mgt=ipmi when they are set, as in xCAT)
    cluster.ok("chdef", "js2", "mgt=kvm", "power=ipmi")
    out = cluster.ok("rpower", "js1,js2", "stat", "--json")
    assert sorted(out.splitlines()) == [
        '{"node": "js1", "power": "off"}',
        '{"node": "js2", "power": "off"}',
    ]


def test_an_unknown_action_is_a_usage_error(cluster):
    cluster.ok("mkdef", "us1", "groups=power")
    rc, out, err = cluster.outcome("rpower", "us1", "dance")
    assert (rc, out) == (1, "")
    assert "argument action: invalid choice: 'dance'" in err
    assert cluster.outcome("rpower", "nosuch", "stat") == (
        1, "", "Error: Invalid nodes and/or groups in noderange: nosuch\n"
    )  # fmt: skip


# -- rsetboot and rnetboot -----------------------------------------------------------


def test_rsetboot_sets_the_next_boot_only(cluster, bmcs):
    (bmc,) = bmcs.start(1)
    define(cluster, "sb1", bmc)
    for device, said, kept in [
        ("hd", "Hard Drive", "default"),  # ipmi_sim's name for the disk
        ("cd", "CD/DVD", "cdrom"),
        ("def", "boot override inactive", "none"),
        ("net", "Network", "pxe"),
    ]:
        assert cluster.ok("rsetboot", "sb1", device) == f"sb1: {said}\n"
        assert bmc.machine.override() == kept
    # The override is used by the next power-on, and only by it.
    rpower(cluster, "sb1", "on")
    assert "-boot once=n" in qemu_command_line(bmc)
    assert bmc.machine.override() == "none"
    started = bmc.machine.pid()
    rpower(cluster, "sb1", "reset")
    assert (bmc.machine.pid(), events(bmc)) == (started, ["RESET"])
    # Set again (for every boot, UEFI: ipmi_sim passes neither on to its
    # chassis), it makes the next reset a restart from the network.
    cluster.ok("rsetboot", "sb1", "net", "-p", "-u")
    rpower(cluster, "sb1", "reset")
    assert bmc.machine.pid() != started
    assert "-boot once=n" in qemu_command_line(bmc)
    # ipmi_sim never marks the override it reports as valid, so a reading
    # says none is in force, as xCAT would print it.
    assert cluster.ok("rsetboot", "sb1") == "sb1: boot override inactive\n"


def test_rnetboot_boots_each_node_from_the_network(cluster, bmcs):
    was_off, was_on = bmcs.start(2)
    # Credentials shared by the nodes live on their group (xCAT's passwd table).
    cluster.ok("mkdef", "-t", "group", "ipmi", "mgt=ipmi", "bmcusername=admin",
       "bmcpassword=ipmi-secret")  # fmt: skip
    for node, bmc in (("nb1", was_off), ("nb2", was_on)):
        cluster.ok("mkdef", node, "groups=ipmi", f"bmc={bmc.address}", f"bmcport={bmc.port}")
    rpower(cluster, "nb2", "on")
    before = was_on.machine.pid()

    assert sorted(cluster.ok("rnetboot", "nb1,nb2").splitlines()) == [
        "nb1: Success",
        "nb2: Success",
    ]
    for bmc in (was_off, was_on):
        assert "-boot once=n" in qemu_command_line(bmc)
    assert was_on.machine.pid() != before  # reset: restarted to boot from the network


def test_a_node_without_credentials_uses_the_passwd_tables_ipmi_row(cluster, bmcs):
    (bmc,) = bmcs.start(1)
    address = [f"bmc={bmc.address}", f"bmcport={bmc.port}"]
    cluster.ok("mkdef", "pt1", "groups=power", "mgt=ipmi", *address)
    cluster.ok("chtab", "key=ipmi", f"passwd.username={USER}", f"passwd.password={bmc.password}")

    assert rpower(cluster, "pt1", "on") == "pt1: on\n"
    assert bmc.machine.pid() is not None  # what the BMC did with those credentials
    assert rpower(cluster, "pt1", "stat") == "pt1: on\n"

    # A node's own pair wins over the table's (xCAT's getIPMIAuth): half a pair is refused.
    cluster.ok("mkdef", "pt2", "groups=power", "mgt=ipmi", *address, f"bmcusername={USER}")
    cluster.ok("chtab", "key=ipmi", "passwd.password=not-the-password")
    cluster.ok("mkdef", "pt3", "groups=power", "mgt=redfish", "bmc=127.77.255.2")
    result = cluster.run("rpower", "pt1,pt2,pt3", "stat")
    assert (result.returncode, result.stdout) == (1, "")
    assert sorted(result.stderr.splitlines()) == [
        NODE_ERROR.format(node="pt1", text=f"BMC {bmc.address}:{bmc.port} refused the password "
                          f"of user '{USER}': check passwd.password (key=ipmi)"),
        NODE_ERROR.format(node="pt2", text="bmcpassword is not set: set them on the node or one "
                          "of its groups (chdef <group> bmcusername=<user> bmcpassword=<password>"
                          "), or the defaults (chtab key=ipmi passwd.username=<user> "
                          "passwd.password=<password>)"),
        NODE_ERROR.format(node="pt3", text="bmcusername and bmcpassword are not set: set them on "
                          "the node or one of its groups (chdef <group> bmcusername=<user> "
                          "bmcpassword=<password>), or the defaults (chtab key=redfish "
                          "passwd.username=<user> passwd.password=<password>)"),
    ]  # fmt: skip

    cluster.ok("chtab", "key=ipmi", f"passwd.password={bmc.password}", "passwd.disable=1")
    assert cluster.outcome("rpower", "pt1", "stat")[2].startswith(
        "pt1: Error: bmcusername and bmcpassword are not set: "
    )  # a disabled row is no default
    cluster.ok("chtab", "key=ipmi", "passwd.disable=")
    assert rpower(cluster, "pt1", "off") == "pt1: off\n"
    assert bmc.machine.pid() is None
    assert bmc.password not in cluster.logs()


# -- what stops one node, and not the others -------------------------------------------


def lines_as_they_come(cluster: Cluster, *args: str) -> tuple[int, list[tuple[float, str]], str]:
    """Run a client command; its rc, each stdout line with the seconds after
    which it arrived, and its stderr."""
    started = time.monotonic()
    process = subprocess.Popen(
        [BIN / args[0], *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=cluster.env,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    lines = [(time.monotonic() - started, line.rstrip("\n")) for line in process.stdout]
    err = process.stderr.read()
    return process.wait(timeout=60), lines, err


def test_each_node_that_cannot_be_controlled_says_why_and_the_others_go_on(cluster, bmcs):
    good, other, hanging = bmcs.start(3)
    define(cluster, "ok1", good)
    cluster.ok("mkdef", "no-mgt", "groups=power")
    cluster.ok("mkdef", "kvm1", "groups=power", "mgt=kvm")  # a kvm node has no BMC
    cluster.ok("mkdef", "no-bmc", "groups=power", "mgt=ipmi")
    cluster.ok("mkdef", "no-creds", "groups=power", "mgt=ipmi", f"bmc={other.address}")
    define(cluster, "bad-pass", other, bmcpassword="not-the-password")
    define(cluster, "bad-user", other, bmcusername="nobody")
    define(cluster, "bad-port", other, bmcport="70000")
    # Nothing listens there: no answer, ever.
    silent_port = free_port()
    define(cluster, "silent", other, bmc="127.77.255.1", bmcport=str(silent_port))
    # A regular-expression value that fails for this node (6/0).
    cluster.ok("mkdef", "-t", "group", "badrack", "mgt=ipmi", "bmc=|bad(\\d+)|127.77.9.(6/($1-7))|")
    cluster.ok("mkdef", "bad7", "groups=power,badrack", "mgt=ipmi")
    # Answers whether the machine is on, then stops answering.
    define(cluster, "hangs", hanging)
    hanging.hang()

    rc, lines, err = lines_as_they_come(cluster, "rpower", "power", "on")
    assert rc == 1
    assert [line for _, line in lines] == ["ok1: on"]
    assert lines[0][0] < 5, "the good node waited for the others"
    assert good.machine.pid() is not None
    assert sorted(err.splitlines()) == sorted(
        NODE_ERROR.format(node=node, text=text)
        for node, text in [
            ("no-mgt", "mgt is not set: set it with chdef <node> mgt=ipmi"),
            ("kvm1", "mgt=kvm: xcatd has no kvm hardware control (it has ipmi, redfish)"),
            ("no-bmc", "no BMC: set one with chdef <node> bmc=<address>"),
            ("no-creds", "bmcusername and bmcpassword are not set: set them on the node or "
                         "one of its groups (chdef <group> bmcusername=<user> "
                         "bmcpassword=<password>), or the defaults (chtab key=ipmi "
                         "passwd.username=<user> passwd.password=<password>)"),
            ("bad-pass", f"BMC {other.address}:{other.port} refused the password of user "
                         "'admin': check bmcpassword"),
            ("bad-user", f"BMC {other.address}:{other.port} has no user 'nobody': "
                         "check bmcusername"),
            ("bad-port", "bmcport '70000' is not a port number"),
            ("bad7", "Bad regular expression value '|bad(\\d+)|127.77.9.(6/($1-7))|' for "
                     "node 'bad7': division by zero"),
            ("silent", f"no answer from BMC 127.77.255.1:{silent_port} (2 tries)"),
            ("hangs", f"no answer from BMC {hanging.address}:{hanging.port} (2 tries)"),
        ]
    )  # fmt: skip
    # The daemon goes on serving, the other BMCs too.
    assert rpower(cluster, "ok1", "stat") == "ok1: on\n"


def test_bmc_passwords_reach_neither_the_log_nor_the_audit_trail(cluster, bmcs):
    (bmc,) = bmcs.start(1, password="Sekr1t-bmc-pw")
    define(cluster, "pw9", bmc)
    define(cluster, "pw10", bmc, bmcpassword="Wr0ng-bmc-pw")
    assert cluster.outcome("rpower", "pw9,pw10", "stat")[:2] == (1, "pw9: off\n")
    defined = wait_for_audit(
        cluster, lambda row: row["command"] == "mkdef" and "pw10" in row["args"]
    )
    assert "bmcpassword=******" in defined["args"]
    for secret in ("Sekr1t-bmc-pw", "Wr0ng-bmc-pw"):
        assert secret not in cluster.logs()
        assert secret not in str(audit_rows(cluster))


def test_h_v_and_no_arguments_answer_with_xcats_usage(cluster):
    # xCAT's AAAusage.pm: -h, or no arguments, prints the command's usage
    # (Usage.pm) with rc 0; -v the version.
    usage = (
        "Usage:\n    Common:\n"
        "       rpower <noderange> [on|off|stat|state|status|reset|boot|cycle|softoff]\n"
        "       rpower [-h|--help|-v|--version]\n"
    )
    assert cluster.outcome("rpower", "-h") == (0, usage, "")
    assert cluster.outcome("rpower") == (0, usage, "")
    assert cluster.outcome("rsetboot", "--help") == (
        0,
        "Usage: rsetboot <noderange> [net|hd|cd|def|default|stat] [-u] [-p]\n"
        "       rsetboot [-h|--help|-v|--version]\n",
        "",
    )
    rnetboot = "Usage: rnetboot <noderange>\n       rnetboot [-h|--help|-v|--version]\n"
    assert cluster.outcome("rnetboot") == (0, rnetboot, "")
    for command in ("rpower", "rsetboot", "rnetboot"):
        assert cluster.outcome(command, "-v") == (0, "Version 0.1.0\n", "")
    rc, out, err = cluster.outcome("rpower", "-x")
    assert (rc, out) == (1, "") and err.endswith(usage)
