"""The whole path, for real: machines boot the packed Debian service image
from the network and report `booted`, with nothing in between but dnsmasq
and xcatd.

The image is the session's (tests/images_debian.py: copycds of the test ISO,
xcatd bundle, genimage through the real client), its cluster an `xcatd lab`
with two service nodes and a compute node, their machines powered off
behind their BMCs, their DHCP service running (the lab's makedhcp -n).
Here the administrator packs the images, chooses how each node boots,
runs nodeset, and powers the machines on with rnetboot through their BMCs.
sn1's image has been through the seed's update flow first: the wheels of a
newer xcatd (this source, its version changed, built by pip) in the image's
otherpkgdir, genimage updating the built image in place, packimage; sn1's
daemon then answers `lsxcatd -v` with the newer version, sn2's (the image
as first built) with this one, until sn2 takes the update too, as the seed
has it: nodeset to the updated image and a reboot (while cn1 boots).  The
update is made on a copy of the service image, which the other tests share.


- sn1 (virtio-net, netboot=xnba): QEMU's iPXE ROM asks dnsmasq, fetches its
  iPXE script, kernel and initrd from xcatd's HTTP server;
- sn2 (e1000, netboot=pxe): iPXE chains pxelinux.0, which loads its
  configuration, the kernel and the initrd from xcatd's TFTP server.

In both, the initrd downloads the image over HTTP, checks it, switches root;
the booted system enrolls with the management node for its certificate
(xcatd-enroll.service: its key made in memory, the CA pinned by the
fingerprint nodeset put on the kernel command line), starts its own xcatd
as a service node with it, and reports `booted`.  sn1's boot is watched as
the administrator watches it, with rcons on a terminal: the kernel's
messages, the login prompt, which answers what is typed.  All the while
their syslog goes to the management node's rsyslog (run by the test with
the drop-in `xcatd init` wrote), which keeps it in <logdir>/nodes/<node>.log;
cn1's goes through sn1, which serves cn1 the compute image (packed with
zstd) from the management node's installdir, mounted read-only over NFS
(site.installloc; the management node's NFS server is NFS-Ganesha,
tests/nfs.py, as this host's kernel has no nfsd).  Without working KVM
(these machines' case) QEMU emulates (TCG): minutes, not seconds.  Run alone, as root:
`.venv/bin/python -m pytest tests/test_netboot.py -s` (prints the times).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.images_debian import BuiltImage
from tests.lab import Lab
from tests.nfs import ganesha, installdir_of
from tests.syslogs import Syslog, receiver
from tests.terminal import HELP, LEAVE, Terminal
from tests.waiting import wait_for
from xcatd import __version__
from xcatd.lab.qemu import kvm_works

MACHINES = {"sn1": "xnba", "sn2": "pxe"}  # node: netboot (sn2's NICs are the lab's e1000s)
# sn1 serves cn1 on its compute network (the lab's sn1-net), which the
# management node is not on: sn1's eth1 has the network's gateway address.
SN1_COMPUTE_NET, SN1_COMPUTE_ADDRESS = "sn1-net", "172.30.1.1"
COMPUTE = "debian12-x86_64-netboot-compute"
# sn1's image: the service image after the seed's update flow, which brings
# the wheels of a newer xcatd.
UPDATED = "debian12-x86_64-netboot-service-updated"
NEWER = f"{__version__}+update"
REPOSITORY = Path(__file__).resolve().parents[1]
BOOT_LIMIT = 240 if kvm_works() else 1200  # seconds from power-on to `booted`
LOGIN = " login: "  # getty's prompt on the serial console


@pytest.fixture
def mn_nfs(debian_service_image: BuiltImage, tmp_path: Path) -> Iterator[Path]:
    """The management node's NFS server (NFS-Ganesha: this kernel has no
    nfsd), in its namespace; the directory of its log."""
    cluster = debian_service_image.cluster
    with ganesha(cluster.prefix, cluster.root, tmp_path / "ganesha"):
        yield tmp_path / "ganesha"


@pytest.fixture
def mn_syslog(debian_service_image: BuiltImage, tmp_path: Path) -> Iterator[Syslog]:
    """The management node's rsyslog, receiving the nodes' logs as `xcatd init` set it up."""
    image = debian_service_image
    rsyslog_d = image.cluster.root / "etc/rsyslog.d"
    with receiver(image.cluster.prefix, tmp_path / "mn-syslog", rsyslog_d) as syslog:
        yield syslog


def test_service_nodes_boot_the_packed_image_and_report_booted(
    debian_service_image: BuiltImage,
    mn_syslog: Syslog,
    mn_nfs: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
):
    image = debian_service_image
    cluster, lab = image.cluster, image.lab
    address = {node.name: node.ip for node in lab.state.nodes}
    nodes_logs = cluster.root / "var/log/xcat/nodes"
    phases = Phases()
    cluster.ok("packimage", "-m", "squashfs", "-c", "zstd", image.name, timeout=600)
    # The compute image, from the same media (sn1 boots cn1 with it).
    built = cluster.run("genimage", COMPUTE, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    packed = cluster.ok("packimage", "-c", "zstd", COMPUTE, timeout=600)
    assert "compress method:zstd" in packed.splitlines(), packed
    phases.done("compute image built and packed")
    # The kernel names the NICs eth0, eth1 in order: what nicips.eth1 names.
    cluster.ok("chdef", "-t", "osimage", image.name, "addkcmdline=net.ifnames=0")
    updated = the_seeds_update(image, tmp_path, phases)
    for node, netboot in MACHINES.items():
        cluster.ok("chdef", node, f"netboot={netboot}")
    cluster.ok("chdef", "sn1", f"nicips.eth1={SN1_COMPUTE_ADDRESS}",
               f"nicnetworks.eth1={SN1_COMPUTE_NET}")  # fmt: skip
    # The service nodes mount the MN's installdir over NFS (xCAT's
    # site.installloc): nodeset of sn1 and sn2 exports it to them.
    cluster.ok("chdef", "-t", "site", f"installloc={installdir_of(cluster)}")
    assert cluster.ok("nodeset", "sn1", f"osimage={updated}") == (
        "sn1: netboot debian12-x86_64-service\n"
    )
    assert cluster.ok("nodeset", "sn2", f"osimage={image.name}") == (
        "sn2: netboot debian12-x86_64-service\n"
    )

    # sn1's console on the administrator's terminal while it boots.
    console = Terminal(cluster, "rcons", "sn1")
    try:
        console.wait_for(HELP)
        started = time.monotonic()
        assert sorted(cluster.ok("rnetboot", "sn1,sn2").splitlines()) == [
            "sn1: Success", "sn2: Success"
        ]  # fmt: skip
        reported = wait_for_reports(cluster, set(MACHINES), started)
        for node, seconds in sorted(reported.items()):
            phases.took(f"{node}: power-on to 'booted'", seconds)
        the_console_shows_the_boot_and_answers(console, started)
    finally:
        console.close()

    log = cluster.logs()
    for node in MACHINES:
        assert f"xcatd: root image of {node} ready" in lab.serial(node)  # the initrd's word
        assert fetched(log, "HTTP: 200 GET", "rootimg.sfs", address[node])
    # sn1's iPXE took kernel and initrd over HTTP; sn2's pxelinux over TFTP.
    assert fetched(log, "HTTP: 200 GET", "initrd-stateless.gz", address["sn1"])
    assert fetched(log, "TFTP: sent", "pxelinux.0", address["sn2"])
    assert fetched(log, "TFTP: sent", "initrd-stateless.gz", address["sn2"])
    shown = cluster.ok("lsdef", "-t", "node", "-o", "sn1", "-i", "status")
    assert "    status=booted\n" in shown
    # Their boot in their logs on the management node, and in its syslog.
    for node in MACHINES:
        assert_boot_logged(nodes_logs / f"{node}.log", node)
        assert kernel_started(mn_syslog.text(), node)

    # Each enrolled once, and its daemon serves with that certificate: root
    # on the management node reaches it.
    assert enrollments(cluster) == [("sn1", "allowed"), ("sn2", "allowed")]
    assert lsxcatd_at(cluster, address["sn1"], "-t") == "This is a Service Node\n"
    # Each runs the xcatd of its image: sn1 the update's, sn2 the first build's.
    assert lsxcatd_at(cluster, address["sn1"], "-v") == f"Version {NEWER}\n"
    assert lsxcatd_at(cluster, address["sn2"], "-v") == f"Version {__version__}\n"
    # And root reaches it over SSH: its certificate from `xcatd init`, the
    # node's host certificate from its enrollment; no key or password in the
    # image, no known_hosts prompt.
    shell = ssh_from_mn(cluster, address["sn1"], "systemctl", "is-active", "xcatd")
    assert (shell.returncode, shell.stdout) == (0, "active\n"), shell.stderr

    a_compute_node_boots_through_sn1_while_sn2_takes_the_update(cluster, lab, phases, updated)
    with capsys.disabled():  # the times belong in CI's output, also when the test passes
        print(phases.report())


def the_console_shows_the_boot_and_answers(console: Terminal, started: float) -> None:
    """rcons, as the administrator sees it: the kernel's messages, then the
    login prompt, which a keystroke reaches (Enter: the prompt again)."""
    console.wait_for("Linux version ")
    remaining = max(BOOT_LIMIT - (time.monotonic() - started), 60)
    prompt = console.wait_for(f"sn1{LOGIN}", remaining)
    console.type(b"\r")
    console.wait_for(f"sn1{LOGIN}", after=prompt)
    console.type(LEAVE)
    assert console.exit_code() == 0


def a_compute_node_boots_through_sn1_while_sn2_takes_the_update(
    cluster: Cluster, lab: Lab, phases: Phases, updated: str
) -> None:
    """cn1, on sn1's compute network only: the management node's commands
    for it run on sn1, which answers its DHCP, serves its boot files and
    image, and relays its report.  Meanwhile the seed's update reaches sn2,
    which runs the first build: nodeset to the updated image, rnetboot
    (a reset, as it is on), and its xcatd answers with the newer version."""
    sn1, cn1, sn2 = lab.node("sn1").ip, lab.node("cn1").ip, lab.node("sn2").ip
    cluster.ok("chdef", "cn1", "netboot=xnba")
    phases.restart()
    dhcp = cluster.ok("makedhcp", "-n")
    # sn1's own DHCP service, on its interfaces on both networks.
    assert re.search(r"^sn1: The DHCP service runs: dnsmasq \(pid \d+\) on eth0, eth1$", dhcp,
                     re.MULTILINE), dhcp  # fmt: skip
    assert cluster.ok("nodeset", "cn1", f"osimage={COMPUTE}", timeout=600) == (
        "cn1: netboot debian12-x86_64-compute\n"
    )
    phases.done("makedhcp -n and nodeset cn1 through sn1 (the image on its NFS mount)")
    assert cluster.ok("nodeset", "sn2", f"osimage={updated}") == (
        "sn2: netboot debian12-x86_64-service\n"
    )
    started = time.monotonic()
    assert sorted(cluster.ok("rnetboot", "cn1,sn2").splitlines()) == [
        "cn1: Success", "sn2: Success"
    ]  # fmt: skip
    phases.took("cn1: power-on to 'booted', served by sn1",
                wait_for_reports(cluster, {"cn1"}, started)["cn1"])  # fmt: skip
    console = lab.serial("cn1")
    # The image packed with zstd, served by sn1 from the MN's installdir,
    # which its daemon mounted read-only over NFS.
    mounted = ssh_from_mn(cluster, sn1, "nsenter", "-m", "-t",
                          "$(systemctl show -p MainPID --value xcatd)", "findmnt", "-n", "-o",
                          "FSTYPE,OPTIONS,SOURCE", "/install")  # fmt: skip
    fstype, options, source = mounted.stdout.split() or ("", "", "")
    installloc = f"{cluster.address}:{installdir_of(cluster)}"
    assert (fstype, options.split(",")[0], source) == ("nfs4", "ro", installloc), mounted.stderr
    assert re.search(rf"xcatd: downloading http://{re.escape(SN1_COMPUTE_ADDRESS)}\S*"
                     r"/rootimg\.cpio\.zst\b", console), console[-3000:]  # fmt: skip
    assert "xcatd: root image of cn1 ready" in console
    assert "    status=booted\n" in cluster.ok("lsdef", "cn1", "-i", "status")
    # From the MN into sn1, and from sn1 into cn1: sn1's root holds its
    # certificate from enrollment, cn1's host key came with its report.
    hop = ssh_from_mn(cluster, sn1, *STRICT_SSH, f"root@{cn1}", "cat /proc/cmdline")
    assert hop.returncode == 0 and " NODE=cn1 " in hop.stdout, hop.stderr
    # xdsh reaches both, cn1 from sn1 (the management node carries it there).
    shown = cluster.ok("xdsh", "sn1,cn1", "tr ' ' '\\n' < /proc/cmdline | grep ^NODE=")
    assert sorted(shown.splitlines()) == ["cn1: NODE=cn1", "sn1: NODE=sn1"], shown
    # cn1's boot in its log on sn1, and passed on to the management node.
    assert_boot_logged(cluster.root / "var/log/xcat/nodes/cn1.log", "cn1")
    on_sn1 = ssh_from_mn(cluster, sn1, "cat", "/var/log/xcat/nodes/cn1.log")
    assert kernel_started(on_sn1.stdout, "cn1"), on_sn1.stderr
    newer = f"Version {NEWER}\n"
    limit = max(BOOT_LIMIT - (time.monotonic() - started), 60)
    wait_for(lambda: version_at(cluster, sn2) == newer, lambda: f"sn2 answering {newer}", limit,
             interval=5)  # fmt: skip
    phases.took(
        "sn2: reset to its xcatd answering the update's version", time.monotonic() - started
    )


def the_seeds_update(image: BuiltImage, tmp_path: Path, phases: Phases) -> str:
    """The seed's update flow, for sn1: a newer xcatd's wheels in the image's
    otherpkgdir, genimage (an update of the existing image), packimage; the
    image's name.  On a copy of the service image, its definition (lsdef -z,
    mkdef -z) and files, each in a directory of its own: the session's image
    stays as the other tests built and checked it, and sn2 boots it."""
    cluster = image.cluster
    wheel = wheel_of_version(NEWER, tmp_path)
    phases.done(f"the update: xcatd {NEWER}'s wheel built by pip")
    rootimgdir = image.rootimgdir.with_name(f"{image.rootimgdir.name}-updated")
    otherpkgdir = image.otherpkgdir.with_name(f"{image.otherpkgdir.name}-updated")
    stanza = cluster.ok("lsdef", "-t", "osimage", "-l", image.name, "-z")
    copied = cluster.run(
        "mkdef", "-z", input=stanza.replace(f"\n{image.name}:\n", f"\n{UPDATED}:\n")
    )
    assert copied.returncode == 0, copied.stderr
    cluster.ok("chdef", "-t", "osimage", UPDATED, f"rootimgdir={rootimgdir}",
               f"otherpkgdir={otherpkgdir}")  # fmt: skip
    rootimgdir.mkdir()
    for item in image.rootimgdir.iterdir():  # what genimage made, not what packimage packed
        if item.name == "rootimg":
            subprocess.run(["cp", "-a", item, rootimgdir], check=True)  # devices, owners, links
        elif item.is_file() and not item.name.startswith("rootimg."):
            shutil.copy2(item, rootimgdir)
    shutil.copytree(image.otherpkgdir, otherpkgdir)
    shutil.copy2(wheel, otherpkgdir / "xcat/wheels")  # beside the first build's
    phases.done("the update: the service image copied (definition, files, otherpkgdir)")
    built = cluster.run("genimage", UPDATED, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    lines = built.stdout.splitlines()
    assert lines[0] == f"Updating the existing image {rootimgdir / 'rootimg'}", lines
    assert "Installing xcatd into /opt/xcat from wheels" in lines
    version = subprocess.run(["chroot", rootimgdir / "rootimg", "/opt/xcat/bin/xcatd",
                              "--version"], capture_output=True, text=True)  # fmt: skip
    assert version.stdout == f"xcatd {NEWER}\n", version.stderr
    phases.done(f"the update: genimage {UPDATED} (in place)")
    cluster.ok("packimage", "-m", "squashfs", "-c", "zstd", UPDATED, timeout=600)
    phases.done(f"the update: packimage {UPDATED}")
    return UPDATED


def wheel_of_version(version: str, tmp_path: Path) -> Path:
    """This project's wheel, built by pip (as `xcatd bundle` builds it) from a
    copy of its source whose xcatd.__version__ is `version`."""
    source, out = tmp_path / "source", tmp_path / "wheel"
    for package in ("xcatd", "client", "protocol"):
        shutil.copytree(REPOSITORY / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPOSITORY / name, source)
    init = source / "xcatd/__init__.py"
    line = f'__version__ = "{__version__}"'
    assert line in init.read_text()
    init.write_text(init.read_text().replace(line, f'__version__ = "{version}"'))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", out,
                            source], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = out.glob(f"xcatd-{version}-*.whl")
    return wheel


def lsxcatd_at(cluster: Cluster, address: str, option: str) -> str:
    """What `lsxcatd OPTION` prints, answered by the daemon at `address`."""
    answered = _lsxcatd_at(cluster, address, option)
    assert answered.returncode == 0, answered.stderr
    return answered.stdout


def version_at(cluster: Cluster, address: str) -> str | None:
    """`lsxcatd -v` answered at `address`; None while nothing answers there."""
    answered = _lsxcatd_at(cluster, address, "-v")
    return answered.stdout if answered.returncode == 0 else None


def _lsxcatd_at(cluster: Cluster, address: str, option: str) -> subprocess.CompletedProcess:
    return cluster.run(
        "lsxcatd", option, env={**cluster.env, "XCATHOST": f"{address}:{cluster.port}"}
    )


class Phases:
    """The times of the test's phases, printed together at its end."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.restart()

    def restart(self) -> None:
        self.started = time.monotonic()

    def done(self, what: str) -> None:
        self.took(what, time.monotonic() - self.started)
        self.restart()

    def took(self, what: str, seconds: float) -> None:
        self.lines.append(f"{what}: {seconds:.0f} s")

    def report(self) -> str:
        how = "KVM" if kvm_works() else "TCG emulation"
        return "".join(f"\n{line} ({how})" for line in self.lines)


STRICT_SSH = ("ssh", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
              "-o", "ConnectTimeout=30")  # fmt: skip


def ssh_from_mn(cluster: Cluster, address: str, *command: str) -> subprocess.CompletedProcess:
    """`command` as root at `address`, from the management node's root: its
    key and certificate from `xcatd init`, the node's host certificate from
    its enrollment; no key or password in the image, no known_hosts prompt."""
    ssh = cluster.root / ".ssh"
    return subprocess.run(
        [*cluster.prefix, *STRICT_SSH, "-i", ssh / "id_ed25519", "-F", "/dev/null",
         "-o", f"UserKnownHostsFile={ssh / 'known_hosts'}", f"root@{address}", *command],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def assert_boot_logged(path: Path, node: str) -> None:
    """The node's log holds its boot: the kernel's first line, and systemd's."""

    def shown() -> bool:
        text = path.read_text() if path.exists() else ""
        return kernel_started(text, node) and f" {node} systemd[1]: " in text

    wait_for(shown, lambda: f"{node}'s kernel and systemd lines in {path}", timeout=120)


def kernel_started(log: str, node: str) -> bool:
    """Whether a syslog text has the node kernel's first line (after its time stamp)."""
    return re.search(rf" {node} kernel: (\[ *[0-9.]+\] )?Linux version ", log) is not None


def enrollments(cluster) -> list[tuple[str, str]]:
    with sqlite3.connect(cluster.root / "var/lib/xcat/xcat.sqlite") as db:
        return sorted(
            db.execute("select user, status from audit where command = 'enroll'").fetchall()
        )


def fetched(log: str, served: str, name: str, address: str) -> bool:
    """Whether the daemon's log shows `name` served whole to `address`."""
    pattern = rf"{served} \S*{re.escape(name)} \(\d+ bytes\) to {re.escape(address)}\b"
    return re.search(pattern, log) is not None


def wait_for_reports(cluster, nodes: set[str], started: float) -> dict[str, float]:
    """Seconds from power-on until each node's status became `booted`; a node
    that reports `failed` (or the time limit) fails the test."""
    reported: dict[str, float] = {}
    while set(reported) != nodes:
        assert time.monotonic() - started < BOOT_LIMIT, f"not booted: {nodes - set(reported)}"
        # The reports themselves: nodestat would show `sshd` once sshd is up.
        for line in cluster.ok("nodels", ",".join(sorted(nodes)), "nodelist.status").splitlines():
            node, _, state = line.partition(": ")
            assert state != "failed", f"{node} reported failed:\n{cluster.logs()[-3000:]}"
            if state == "booted" and node not in reported:
                reported[node] = time.monotonic() - started
        time.sleep(2)
    return reported
