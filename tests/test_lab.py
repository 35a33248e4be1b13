"""`xcatd lab` as an administrator uses it: up, status, down, and each
refusal; the client on this host reaching the lab's daemon, the real BMCs
powering real QEMU machines that boot from the lab's network, and a
crashed lab taken down whole.

Each lab here has a namespace, a root and a port of its own (tests/lab.py)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from xcatd.lab import netns
from xcatd.lab.chassis_control import Machine
from xcatd.lab.media import profile_packages
from xcatd.lab.process import running
from xcatd.lab.state import State

from .cluster import BIN
from .lab import Lab
from .media import CACHE
from .terminal import HELP, LEAVE, Terminal
from .waiting import wait_for

BOOT_TIMEOUT = 180  # power-on to iPXE asking DHCP, under TCG beside other tests


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory: a machine's QMP socket path must fit in 108 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="xcatd-lab-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def lab(short_dir: Path) -> Iterator[Lab]:
    lab = Lab(short_dir / "lab")
    yield lab
    if State.load(lab.root) is not None:  # the test failed before its own `down`
        lab.xcatd("down")


def up(lab: Lab, *args: str) -> str:
    result = lab.xcatd("up", *args)
    assert result.returncode == 0, result.stderr + lab.logs()
    return result.stdout


def refused(lab: Lab, *args: str, env: dict[str, str] | None = None, there=()) -> str:
    """`xcatd lab up ARGS` must fail with one line, having made nothing
    (what was `there` before is still there)."""
    result = lab.xcatd("up", *args, env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert lab.left_behind() == list(there)
    return result.stderr


# -- up, status, down -----------------------------------------------------------------


def test_up_defines_the_machines_powered_off_and_status_shows_them(lab):
    printed = up(lab, "--service-nodes", "1", "--compute-nodes", "2")

    assert f"Lab up under {lab.root}\n" in printed
    status = lab.xcatd("status")
    assert status.returncode == 0, status.stderr
    assert status.stdout in printed  # up ends with the status
    assert f"export XCATHOST=127.0.0.1:{lab.port} XCAT_CRED_DIR={lab.root}/mn/.xcat" in (
        status.stdout
    )
    table = status.stdout.split("console log\n", 1)[1].splitlines()
    assert [line.split()[:6] for line in table] == [
        ["sn1", "service", "52:54:00:30:00:01", "172.30.0.11", "172.30.0.101:623", "off"],
        ["cn1", "compute", "52:54:00:30:02:01", "172.30.1.11", "172.30.0.151:623", "off"],
        ["cn2", "compute", "52:54:00:30:02:02", "172.30.1.12", "172.30.0.152:623", "off"],
    ]
    assert table[0].split()[6] == f"{lab.root}/bmc/sn1/serial.log"
    # The nodes, through the daemon from this host, as an administrator defined them.
    assert lab.ok("nodels", "service") == "sn1\n"
    assert lab.ok("nodels", "compute") == "cn1\ncn2\n"
    cn1 = lab.ok("lsdef", "cn1", "-i", "bmc,bmcusername,mgt,cons,mac,servicenode,xcatmaster")
    assert cn1 == ("Object name: cn1\n    bmc=172.30.0.151\n    bmcusername=admin\n"
                   "    cons=ipmi\n    mac=52:54:00:30:02:01\n    mgt=ipmi\n"
                   "    servicenode=sn1\n    xcatmaster=172.30.1.1\n")  # fmt: skip
    # Powered off until asked, as the BMCs say.
    assert sorted(lab.ok("rpower", "all", "stat").splitlines()) == [
        "cn1: off", "cn2: off", "sn1: off"
    ]  # fmt: skip
    # A second up on it is refused, and leaves it running.
    again = lab.xcatd("up")
    assert (again.returncode, again.stderr) == (
        1, f"Error: a lab is already up under {lab.root} (namespace {lab.namespace}): "
        "'xcatd lab down' first\n",
    )  # fmt: skip
    assert lab.ok("rpower", "sn1", "stat") == "sn1: off\n"
    # The management network's router advertisements (for QEMU's iPXE, which
    # waits for one): a host there takes an address in the prefix, and no
    # IPv6 default route from a router that says it is none.
    with lab.machine(20) as host:
        wait_for(lambda: "inet6 fd00:172:30:0:" in netns.ip("-n", host.name, "-6", "addr"),
                 "an address from the advertised prefix", timeout=60)  # fmt: skip
        assert netns.ip("-n", host.name, "-6", "route", "show", "default") == ""

    down = lab.xcatd("down")

    assert (down.returncode, down.stderr) == (0, "")
    assert down.stdout == (f"Lab under {lab.root} taken down: 6 programs stopped, namespace "
                           f"{lab.namespace} deleted\n")  # fmt: skip
    assert lab.left_behind() == []
    nothing = lab.xcatd("down")
    assert (nothing.returncode, nothing.stderr) == (1, f"Error: no lab is up under {lab.root}\n")


def test_a_crashed_lab_is_taken_down_whole(lab):
    up(lab, "--service-nodes", "0", "--compute-nodes", "1")
    lab.ok("rpower", "cn1", "on")
    state = State.load(lab.root)
    machine = Machine(Path(state.nodes[0].directory)).pid()
    assert machine is not None
    # The daemon and the BMC die at once (their children do not: the
    # daemon's dnsmasq, the BMC's machine).
    for name in ("xcatd", "bmc-cn1"):
        os.kill(state.programs[name].pid, signal.SIGKILL)
    wait_for(lambda: not state.programs["xcatd"].alive(), "xcatd killed")

    status = lab.xcatd("status")
    assert "Not running: xcatd, bmc-cn1: the lab crashed; 'xcatd lab down' cleans it" in (
        status.stdout
    )
    left = netns.pids(lab.namespace)
    assert machine in left

    down = lab.xcatd("down")

    assert down.returncode == 0, down.stderr
    assert "2 programs stopped" in down.stdout  # the forwarder, the router adverts; the rest killed
    assert lab.left_behind() == []
    assert [pid for pid in left if running(pid)] == []


def test_a_lab_whose_up_was_killed_half_way_is_taken_down(lab):
    argv = [BIN / "xcatd", "lab", "up", "--root", str(lab.root), "--namespace", lab.namespace,
            "--port", str(lab.port), "--service-nodes", "1", "--compute-nodes", "0"]  # fmt: skip
    making = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Killed once the daemon runs, before the BMCs and the definitions.
        wait_for(lambda: (state := State.load(lab.root)) and "xcatd" in state.programs,
                 "lab up started xcatd", timeout=120)  # fmt: skip
    finally:
        making.kill()
        making.wait()
    state = State.load(lab.root)
    assert netns.exists(lab.namespace)

    down = lab.xcatd("down")

    assert down.returncode == 0, down.stderr
    assert lab.left_behind() == []
    assert not [program for program in state.programs.values() if running(program.pid)]


# -- refusals -------------------------------------------------------------------------


def test_up_refuses_bad_input_in_one_line_and_makes_nothing(lab, short_dir):
    assert refused(lab, "--service-nodes", "41") == "Error: --service-nodes must be 0 to 40\n"
    assert refused(lab, "--compute-nodes", "-1") == "Error: --compute-nodes must be 0 to 90\n"
    assert refused(lab, "--nic-model", "sn1") == (
        "Error: --nic-model sn1: give NODE=MODEL, such as sn2=e1000\n"
    )
    assert refused(lab, "--nic-model", "cn3=e1000") == (
        "Error: --nic-model cn3=e1000: this lab has no machine cn3\n"
    )
    assert refused(lab, "--nic-model", "sn1=rtl8139") == (
        "Error: --nic-model sn1=rtl8139: the models are virtio-net-pci, e1000, e1000e\n"
    )
    assert refused(lab, "--memory", "100000000").endswith(
        "MiB is available: ask for fewer machines or less --memory\n"
    )
    with socket.create_server(("127.0.0.1", lab.port)):
        assert refused(lab) == (f"Error: port {lab.port} on 127.0.0.1 is taken (Address already "
                                "in use): give another with --port\n")  # fmt: skip
    netns.add(lab.namespace)
    try:
        assert refused(lab, there=[f"namespace {lab.namespace}"]) == (
            f"Error: network namespace {lab.namespace} exists already: "
            "take it down, or give another name with --namespace\n"
        )
    finally:
        netns.delete(lab.namespace)
    # A program missing: a PATH holding all but QEMU.
    bin_dir = short_dir / "bin"
    bin_dir.mkdir()
    for program in ("ipmi_sim", "dnsmasq", "ip", "ss"):
        (bin_dir / program).symlink_to(shutil.which(program))
    assert refused(lab, env=os.environ | {"PATH": str(bin_dir)}) == (
        "Error: qemu-system-x86_64 is not installed: install the Debian package qemu-system-x86\n"
    )
    # A directory of something else's.
    lab.root.mkdir()
    (lab.root / "mine").write_text("")
    assert lab.xcatd("up").stderr == (
        f"Error: {lab.root} is not empty: give a new or empty directory with --root\n"
    )
    assert (lab.root / "mine").exists() and not netns.exists(lab.namespace)
    (lab.root / "mine").unlink()
    lab.root.rmdir()


def test_up_refuses_without_root_or_tun(lab):
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    result = subprocess.run([*as_nobody, BIN / "xcatd", "lab", "up", "--root", str(lab.root)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (result.returncode, result.stderr) == (
        1, "Error: lab up needs root (network namespaces, bridges, taps): run it as root\n"
    )  # fmt: skip
    # /dev/net hidden by an empty file system, in a mount namespace of its own.
    hidden = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /dev/net && exec "$@"', "-"]
    result = subprocess.run([*hidden, BIN / "xcatd", "lab", "up", "--root", str(lab.root)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (result.returncode, result.stderr) == (
        1, "Error: /dev/net/tun is missing, and the machines' NICs need it: load the tun module "
        "(modprobe tun)\n",
    )  # fmt: skip
    assert lab.left_behind() == []


def test_down_with_nothing_up_says_so(lab):
    result = lab.xcatd("down")
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", f"Error: no lab is up under {lab.root}\n"
    )  # fmt: skip


# -- a machine boots from the lab's network, through its BMC ------------------------


def test_rnetboot_boots_a_service_node_from_the_labs_network_on_its_console(lab):
    up(lab, "--service-nodes", "1", "--compute-nodes", "0")
    assert lab.ok("rpower", "sn1", "stat") == "sn1: off\n"
    lab.ok("makedhcp", "sn1")  # its address, as nodeset would also give it
    console = Terminal(lab, "rcons", "sn1", env=lab.env)
    try:
        console.wait_for(HELP)

        assert lab.ok("rnetboot", "sn1") == "sn1: Success\n"

        # The firmware's network boot, on the console through the BMC's SOL.
        console.wait_for("Open Source Network Boot Firmware", BOOT_TIMEOUT)
        console.wait_for("net0: 52:54:00:30:00:01", BOOT_TIMEOUT)
        daemon_log = lab.root / "logs/xcatd.log"
        wait_for(lambda: "DHCPOFFER(br0) 172.30.0.11 52:54:00:30:00:01" in daemon_log.read_text(),
                 lambda: f"sn1 offered its address:\n{daemon_log.read_text()[-3000:]}",
                 BOOT_TIMEOUT)  # fmt: skip
        assert lab.ok("rpower", "sn1", "stat") == "sn1: on\n"
        console.type(LEAVE)
        assert console.exit_code() == 0
    finally:
        console.close()
    state = State.load(lab.root)
    machine = Machine(Path(state.nodes[0].directory)).pid()
    assert machine is not None

    assert lab.xcatd("down").returncode == 0

    assert lab.left_behind() == []
    assert not running(machine)
    assert not [program for program in state.programs.values() if running(program.pid)]


# -- media ----------------------------------------------------------------------------


def test_lab_media_is_a_debian_iso_that_copycds_takes(cluster, tmp_path):
    (tmp_path / "media").mkdir()
    disc = tmp_path / "media/debian-12-amd64.iso"
    command = [BIN / "xcatd", "lab", "media", "--out", str(disc), "--cache", str(CACHE)]

    made = subprocess.run(command, capture_output=True, text=True, timeout=900)

    assert made.returncode == 0, made.stderr
    assert re.fullmatch(rf"Wrote {disc} \(\d+ packages, \d+ MiB\): copycds {disc}\n", made.stdout)
    assert [p.name for p in disc.parent.iterdir()] == [disc.name]  # its work tree is gone
    copied = cluster.run("copycds", str(disc), timeout=300)
    assert copied.returncode == 0, copied.stderr
    osimages = cluster.ok("lsdef", "-t", "osimage").splitlines()
    assert "debian12-x86_64-netboot-service  (osimage)" in osimages
    assert "debian12-x86_64-netboot-compute  (osimage)" in osimages
    # The service profile's packages are on it, with what they need.
    pool = cluster.root / "install/debian12/x86_64/pool/main"
    names = {deb.name.split("_")[0] for deb in pool.iterdir()}
    assert set(profile_packages("service", "compute")) <= names
    again = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert (again.returncode, again.stderr) == (
        1, f"Error: {disc} exists: remove it or give another --out\n"
    )  # fmt: skip
