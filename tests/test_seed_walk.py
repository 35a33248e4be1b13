"""The seed's "Diskless (Stateless) Installation" of service nodes
(/work/shared/SEED-diskless-service-nodes.txt), walked literally on Debian
12 as an administrator walks it, every output checked; README.md's
"Walk-through" shows the same session.

copycds of the Debian ISO, `lsdef -t osimage | grep -i service`, the
netboot-service osimage, its profile files where xCAT keeps them copied to
<installdir>/custom/netboot/debian/ (the postinstall's sample fstab lines
uncommented), `lsdef -l -z > file`, the stanza edited into a new image and
`mkdef -z < file`, `xcatd bundle` into the otherpkgdir (xCAT's xcat-core and
xcat-dep), genimage, the chroot tweaks (DHCP off until xcatd configures it,
/etc/exports for NFS hybrid mode), packimage, makenetworks, makedhcp -n,
nodeset; then what the node sees: the DHCP service's answer to its MAC (a
real DHCP client, tests/boot/dhcp_client.py, on a host of its own on the
lab's management network with the node's MAC and address), and every
address its boot file names serving it (TFTP, HTTP, the daemon's port, the
status report nodestat then shows).  Then the seed's update: new wheels,
genimage, packimage, nodeset.

The management node is an `xcatd lab`'s without machines (tests/lab.py),
which defined its management network (`mgmt`, br0) and started its DHCP
service, as xCAT's installer does: makenetworks finds the network defined,
makedhcp -n sets the service up again.  The media are those
`debian_service_image` (tests/images_debian.py) built for the session; the
lab is this test's own, because the shared one carries the nodes and
images of the tests that boot from it.  Its genimage is a second full build
(about a minute); the walk takes two to three minutes.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xcatd.images.profiles import SHIPPED

from .cluster import Cluster
from .images_debian import SERVICE, BuiltImage, service_packages
from .lab import Lab, lab_up
from .netboot import Machine
from .test_makedhcp import parent_of, reads
from .waiting import wait_for

REPOSITORY = Path(__file__).resolve().parents[1]
MYSERVICE = "debian12-x86_64-netboot-myservice"  # the seed's custom image
NODE, MAC, LAST = "sn01", "52:54:00:77:00:14", 20
PROFILE_FILES = ("service.x86_64.pkglist", "service.otherpkgs.pkglist", "service.exlist",
                 "service.postinstall")  # fmt: skip
BUILD_TIMEOUT = 900
CREATED = "1 object definitions have been created or modified.\n"
EXPORTS = "/install *(ro,no_root_squash,sync,fsid=13)\n"  # the seed's line


@dataclass
class Walk:
    """The management node: its cluster, its lab, and where things are."""

    cluster: Cluster
    lab: Lab
    iso: Path

    @property
    def installdir(self) -> Path:
        return self.cluster.root.resolve() / "install"

    @property
    def profiles(self) -> Path:
        """Where xCAT keeps the shipped profiles: /opt/xcat/share/xcat/netboot/debian."""
        return self.cluster.root.resolve() / "opt/xcat/share/xcat/netboot/debian"

    @property
    def custom(self) -> Path:
        return self.installdir / "custom/netboot/debian"

    @property
    def otherpkgdir(self) -> Path:
        return self.installdir / "post/otherpkgs/debian12/x86_64"

    def rootimgdir(self, profile: str) -> Path:
        return self.installdir / "netboot/debian12/x86_64" / profile

    def said(self, *command: str, input: str | None = None, timeout: float = 60) -> str:
        """What a command that must succeed, saying nothing on stderr, printed."""
        result = self.run(*command, input=input, timeout=timeout)
        assert (result.returncode, result.stderr) == (0, ""), result.stdout[-3000:]
        return result.stdout

    def run(self, *command: str, input: str | None = None, timeout: float = 60):
        """A client command, echoed with its output (pytest shows the session
        when the test fails; -s shows it always)."""
        started = time.monotonic()
        result = self.cluster.run(*command, input=input, timeout=timeout)
        took = time.monotonic() - started
        print(f"$ {shlex.join(command)}    # rc {result.returncode}, {took:.1f} s")
        print(result.stdout + result.stderr, end="", flush=True)
        return result


def the_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Debian ISO debian_service_image built in this session's temporary
    directory (tests/images_debian.py: `debian-service-media<N>`)."""
    found = tmp_path_factory.getbasetemp().glob("debian-service-media*/debian-12-amd64.iso")
    (iso,) = {path.resolve() for path in found}  # the numbered directory and its `current` link
    return iso


@pytest.fixture
def walk(
    debian_service_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Walk]:
    """A lab's management node, without machines: listening on its bridge
    (172.30.0.1), on the standard ports."""
    with lab_up("--service-nodes", "0", "--compute-nodes", "0") as lab:
        yield Walk(lab.cluster(), lab, the_iso(tmp_path_factory))


def test_the_seed_walked_on_debian(walk: Walk, tmp_path: Path):
    copycds(walk)
    custom_profiles(walk)
    custom_image(walk, tmp_path / "myservice.def")
    bundle(walk)
    rootimgdir = genimage(walk)
    chroot_tweaks(rootimgdir / "rootimg")
    packimage(walk, rootimgdir)
    dhcp_service(walk)
    assert walk.said("mkdef", NODE, "groups=service", f"mac={MAC}",
                     f"ip={walk.lab.host(LAST)}") == CREATED  # fmt: skip
    read_before = reads(walk.cluster)
    assert walk.said("nodeset", "service", f"osimage={MYSERVICE}") == (
        f"{NODE}: netboot debian12-x86_64-service\n"
    )
    wait_for(lambda: reads(walk.cluster) > read_before, "dnsmasq reading nodeset's entries", 30)
    with walk.lab.machine(LAST) as node:
        node.ip("link", "set", "eth0", "address", MAC)
        the_node_boots_from_what_it_is_told(walk, node, rootimgdir)
        the_update(walk, node, rootimgdir)
    logged = walk.cluster.logs()
    for command in (f"genimage {MYSERVICE}", f"packimage {MYSERVICE}", "makedhcp -n",
                    f"nodeset service osimage={MYSERVICE}"):  # fmt: skip
        assert re.search(rf"INFO xcatd\.commands: Allowed {command} for root from .*: rc 0, ",
                         logged), command  # fmt: skip


# -- the image ------------------------------------------------------------------------


def copycds(walk: Walk) -> None:
    """copycds of the ISO; the service osimages it defines, their files placed."""
    images = [f"debian12-x86_64-{kind}-{profile}" for kind in ("install", "netboot", "statelite")
              for profile in ("compute", "service")]  # fmt: skip
    assert walk.said("copycds", str(walk.iso), timeout=300) == (
        f"Copying media to {walk.installdir}/debian12/x86_64\n"
        "Media copy operation successful\n"
        + "".join(f"Created osimage definition {name}\n" for name in images)
    )
    listed = walk.said("lsdef", "-t", "osimage").splitlines()
    assert [line for line in listed if "service" in line.lower()] == [  # | grep -i service
        "debian12-x86_64-install-service  (osimage)",
        "debian12-x86_64-netboot-service  (osimage)",
        "debian12-x86_64-statelite-service  (osimage)",
    ]
    assert attributes(walk.said("lsdef", "-t", "osimage", "-l", SERVICE)) == {
        "Object name": SERVICE,
        "exlist": f"{walk.profiles}/service.exlist",
        "imagetype": "linux",
        "osarch": "x86_64",
        "osdistroname": "debian12-x86_64",
        "osname": "Linux",
        "osvers": "debian12",
        "otherpkgdir": str(walk.otherpkgdir),
        "otherpkglist": f"{walk.profiles}/service.otherpkgs.pkglist",
        "pkgdir": f"{walk.installdir}/debian12/x86_64",
        "pkglist": f"{walk.profiles}/service.x86_64.pkglist",
        "postinstall": f"{walk.profiles}/service.postinstall",
        "profile": "service",
        "provmethod": "netboot",
        "rootimgdir": str(walk.rootimgdir("service")),
    }


def attributes(listing: str) -> dict[str, str]:
    """lsdef -l of one object as {"Object name": name, attribute: value}."""
    first, *rest = listing.splitlines()
    name = first.removeprefix("Object name: ")
    return {"Object name": name, **dict(line.strip().split("=", 1) for line in rest)}


def custom_profiles(walk: Walk) -> None:
    """The profile's files, viewed where xCAT keeps them and copied to
    /install/custom/netboot/debian; the postinstall's sample fstab uncommented."""
    for name in PROFILE_FILES:
        assert (walk.profiles / name).read_bytes() == (SHIPPED / "debian" / name).read_bytes()
    # The analog of xcat/xcat-core/xCATsn, which the seed says must be there.
    assert "xcat/wheels/xcatd" in (walk.profiles / "service.otherpkgs.pkglist").read_text()
    walk.custom.mkdir(parents=True)
    for name in PROFILE_FILES:
        shutil.copy2(walk.profiles / name, walk.custom)
    postinstall = walk.custom / "service.postinstall"
    lines = postinstall.read_text().splitlines(keepends=True)
    start, end = lines.index('#cat <<END >"$rootimg/etc/fstab"\n'), lines.index("#END\n")
    sample = [at for at in range(start, end + 1) if not lines[at].startswith("##")]
    for at in sample:
        lines[at] = lines[at].removeprefix("#")
    postinstall.write_text("".join(lines))
    assert len(sample) == 8  # cat, six fstab lines, END


def custom_image(walk: Walk, stanza_file: Path) -> None:
    """`lsdef -l -z > file`, the file edited (name, the custom files,
    rootimgdir), `cat file | mkdef -z`."""
    stanza_file.write_text(walk.said("lsdef", "-t", "osimage", "-l", SERVICE, "-z"))
    edits = {
        f"\n{SERVICE}:\n": (f"\n{MYSERVICE}:\n", 1),
        f"={walk.profiles}/": (f"={walk.custom}/", 4),
        f"rootimgdir={walk.rootimgdir('service')}\n": (
            f"rootimgdir={walk.rootimgdir('myservice')}\n", 1),
    }  # fmt: skip
    text = stanza_file.read_text()
    for old, (new, times) in edits.items():
        assert text.count(old) == times, (old, text)
        text = text.replace(old, new)
    stanza_file.write_text(text)
    assert walk.said("mkdef", "-z", input=stanza_file.read_text()) == CREATED
    shown = attributes(walk.said("lsdef", "-t", "osimage", "-l", MYSERVICE))
    edited = ("pkglist", "otherpkglist", "exlist", "postinstall", "rootimgdir", "profile")
    assert {key: shown[key] for key in edited} == {
        "pkglist": f"{walk.custom}/service.x86_64.pkglist",
        "otherpkglist": f"{walk.custom}/service.otherpkgs.pkglist",
        "exlist": f"{walk.custom}/service.exlist",
        "postinstall": f"{walk.custom}/service.postinstall",
        "rootimgdir": str(walk.rootimgdir("myservice")),
        "profile": "service",
    }
    assert walk.said("lsdef", "-t", "osimage", "-o", MYSERVICE, "-i", "otherpkgdir") == (
        f"Object name: {MYSERVICE}\n    otherpkgdir={walk.otherpkgdir}\n"
    )


def bundle(walk: Walk) -> None:
    """`xcatd bundle` into <otherpkgdir>/xcat, where xCAT puts xcat-core and xcat-dep."""
    wheels = walk.otherpkgdir / "xcat/wheels"
    bundled = walk.cluster.xcatd("bundle", str(wheels))  # outside the namespace: PyPI
    print(f"$ xcatd bundle {wheels}\n{bundled.stdout}{bundled.stderr}", end="")
    assert bundled.returncode == 0, bundled.stderr
    count = len(list(wheels.glob("*.whl")))
    assert bundled.stdout == f"{count} wheels for Python 3.11 on x86_64 in {wheels}\n"
    assert len(list(wheels.glob("xcatd-*.whl"))) == 1


def genimage(walk: Walk) -> Path:
    """genimage of the custom image: a line a phase, the programs' output in
    genimage.log; the copied pkglist's include read from the shipped lists."""
    rootimgdir = walk.rootimgdir("myservice")
    rootimg = rootimgdir / "rootimg"
    lines = built(walk)
    assert phases(lines) == [
        f"Building a new image in {rootimg}",
        f"Checking that the {len(service_packages())} packages of the pkglist are in the "
        "repositories",
        f"Packages: installing {' '.join(service_packages())}",
        "Creating the Python environment /opt/xcat in the image",
        "Installing xcatd into /opt/xcat from wheels",
        "Writing /etc/fstab",
        "Enabling xcatd-report-boot.service xcatd-ssh-hostkeys.service xcatd-enroll.service "
        "xcatd.service in the image",
        f"Running postinstall script {walk.custom}/service.postinstall",
        "Removing SSH host keys from the image: ssh_host_ecdsa_key ssh_host_ecdsa_key.pub "
        "ssh_host_ed25519_key ssh_host_ed25519_key.pub ssh_host_rsa_key ssh_host_rsa_key.pub",
        f"Copying kernel {kernelver(rootimg)} to {rootimgdir}/kernel",
        f"Making {rootimgdir}/initrd-stateless.gz with dracut for kernel {kernelver(rootimg)}, "
        "network drivers virtio_net e1000 e1000e igb ixgbe i40e tg3 bnx2 bnx2x mlx5_core",
        f"Looking for private keys in {rootimg}",
    ]
    installed = re.fullmatch(r"  done in \d+\.\d s: (\d+) packages", lines[4])
    assert installed and int(installed[1]) > 150, lines[4]
    assert re.fullmatch(rf"genimage of {MYSERVICE} is complete: {rootimg} \(\d+\.\d s\)",
                        lines[-1])  # fmt: skip
    assert len((rootimgdir / "genimage.log").read_text().splitlines()) > 500
    # The postinstall's sample, uncommented, with its profile and arch.
    assert (rootimg / "etc/fstab").read_text().splitlines()[:6] == [
        "proc            /proc    proc   rw 0 0",
        "sysfs           /sys     sysfs  rw 0 0",
        "devpts          /dev/pts devpts rw,gid=5,mode=620 0 0",
        "service_x86_64      /        tmpfs  rw 0 1",
        "none            /tmp     tmpfs  defaults,size=10m 0 2",
        "none            /var/tmp tmpfs  defaults,size=10m 0 2",
    ]
    return rootimgdir


def phases(lines: list[str]) -> list[str]:
    """genimage's phase lines: without the times under them and the closing line."""
    return [line for line in lines[:-1] if not line.startswith("  done in ")]


def built(walk: Walk) -> list[str]:
    """What `genimage <custom image>` printed; its one warning checked: the
    copied pkglist's #INCLUDE:service.pkglist#, not copied along, is read
    from the shipped lists init placed (on a system install
    /opt/xcat/share/xcat/netboot/debian/service.pkglist)."""
    result = walk.run("genimage", MYSERVICE, timeout=BUILD_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    custom = re.escape(str(walk.custom))
    warned = re.fullmatch(
        rf"Warning: {custom}/service\.pkglist does not exist: read the shipped (\S+) in its "
        rf"place \(copy it to {custom} to change it\)\n",
        result.stderr,
    )
    assert warned, result.stderr
    assert Path(warned[1]) == walk.profiles / "service.pkglist"  # this cluster's placed one
    return result.stdout.splitlines()


def kernelver(rootimg: Path) -> str:
    (kernel,) = (rootimg / "boot").glob("vmlinuz-*")
    return kernel.name.removeprefix("vmlinuz-")


def chroot_tweaks(rootimg: Path) -> None:
    """The seed's: DHCP off until xcatd has configured it (`chkconfig dhcpd
    off` there, systemctl here), and /install exported for NFS hybrid mode."""
    disabled = in_chroot(rootimg, "systemctl", "disable", "dnsmasq.service")
    assert disabled.returncode == 0, disabled.stderr  # the shipped postinstall did it already
    enabled = in_chroot(rootimg, "systemctl", "is-enabled", "dnsmasq.service")
    assert (enabled.returncode, enabled.stdout) == (1, "disabled\n"), enabled.stderr
    (rootimg / "etc/exports").write_text(EXPORTS)


def in_chroot(rootimg: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["chroot", rootimg, *command], capture_output=True, text=True)


def packimage(walk: Walk, rootimgdir: Path) -> None:
    """packimage: its lines, and the chroot tweak in the archive the node unpacks."""
    rootimg = rootimgdir / "rootimg"
    packed = rootimgdir / "rootimg.cpio.gz"
    lines = walk.said("packimage", MYSERVICE, timeout=600).splitlines()
    assert lines[:3] == [f"Packing contents of {rootimg}", "archive method:cpio",
                         "compress method:gzip"]  # fmt: skip
    # ping and arping keep their capability only in tar or squashfs.
    assert re.fullmatch(r"Note: \d+ file\(s\) have extended attributes \(file capabilities, "
                        r"SELinux labels\.\.\.\), such as \./usr/bin/\w+, which cpio cannot hold; "
                        r"-m tar or -m squashfs keeps them", lines[3])  # fmt: skip
    assert re.fullmatch(rf"Packed {packed}: [\d.]+ MiB from [\d.]+ MiB in [\d,]+ entries "
                        r"\([\d.]+%\) in [\d.]+ s", lines[4])  # fmt: skip
    assert len(lines) == 5
    assert in_archive(packed, "etc/exports") == EXPORTS.encode()


def in_archive(packed: Path, name: str) -> bytes:
    """One file of a packed cpio.gz image, read with gzip and GNU cpio."""
    gunzip = subprocess.Popen(["gzip", "-dc", packed], stdout=subprocess.PIPE)
    taken = subprocess.run(["cpio", "-i", "--quiet", "--to-stdout", f"./{name}"],
                           stdin=gunzip.stdout, capture_output=True)  # fmt: skip
    gunzip.stdout.close()
    assert (gunzip.wait(), taken.returncode) == (0, 0), taken.stderr
    return taken.stdout


# -- the DHCP service and the boot -----------------------------------------------------


NETWORK = "172_30_0_0-255_255_255_0"


def dhcp_service(walk: Walk) -> None:
    """makenetworks -d shows the lab's network, which makenetworks -V finds
    defined (as `mgmt`); makedhcp -n leaves dnsmasq running."""
    stanza = (
        f"\n#From {walk.cluster.hostname}.\n{NETWORK}:\n    objtype=network\n"
        "    net=172.30.0.0\n    mask=255.255.255.0\n    gateway=<xcatmaster>\n"
        "    mgtifname=br0\n    tftpserver=172.30.0.1\n"
        "# Note: An equivalent xCAT network definition already exists.\n\n"
    )
    assert walk.said("makenetworks", "-d") == stanza
    assert walk.said("makenetworks", "-V") == (
        f"{NETWORK}: the network object mgmt defines it already\n"
    )
    directory = walk.cluster.root / "etc/xcat/dhcp"
    wrote, runs = walk.said("makedhcp", "-n").splitlines()
    assert wrote == (
        f"Wrote {directory}/dnsmasq.conf, dnsmasq-opts and dhcpd.conf for 1 network(s): mgmt"
    )
    started = re.fullmatch(r"The DHCP service runs: dnsmasq \(pid (\d+)\) on br0", runs)
    assert started, runs
    daemon = walk.lab.state.programs["xcatd"].pid
    assert parent_of(int(started[1])) == daemon  # the daemon's own


def the_node_boots_from_what_it_is_told(walk: Walk, node: Machine, rootimgdir: Path) -> None:
    """As the node's firmware and initrd would: DHCP, then every address the
    answer and the boot file name, from the node's own address."""
    cluster, server = walk.cluster, walk.cluster.address
    answer = {"address": walk.lab.host(LAST), "next_server": server, "hostname": NODE}
    assert dhcp_offer(node) == {**answer, "bootfile": "xcat/xnba.kpxe"}
    tftpdir = cluster.root / "tftpboot"
    loader = fetch(node, f"tftp://{server}/xcat/xnba.kpxe")  # port 69, as PXE asks
    assert loader == (tftpdir / "xcat/xnba.kpxe").read_bytes()
    script_url = dhcp_offer(node, ipxe=True)["bootfile"]
    assert script_url == (
        f"http://${{next-server}}:{cluster.http_port}{cluster.root}/tftpboot/xcat/xnba/nodes/"
        "${hostname}"
    )
    script = fetch(node, script_url.replace("${next-server}", server).replace(
        "${hostname}", NODE)).decode()  # fmt: skip
    assert script == (tftpdir / "xcat/xnba/nodes" / NODE).read_text()
    http = f"http://{server}:{cluster.http_port}"
    urls = re.findall(r"http://\S+", script)
    assert urls and all(url.startswith(f"{http}/") for url in urls), script
    kernel, initrd = (re.search(rf"imgfetch -n {name} (\S+)", script)[1]
                      for name in ("kernel", "initrd"))  # fmt: skip
    assert fetch(node, kernel) == (rootimgdir / "kernel").read_bytes()
    assert fetch(node, initrd) == (rootimgdir / "initrd-stateless.gz").read_bytes()
    arguments = dict(arg.split("=", 1) for arg in kernel_arguments(script) if "=" in arg)
    assert arguments["XCAT"] == f"{server}:{cluster.port}"
    assert arguments["XCATSTATUS"] == f"{http}/xcatd/status"
    assert arguments["imgurl"] == f"{http}{rootimgdir}/rootimg.cpio.gz"
    checked_image(node, arguments["imgurl"])
    reaches(node, server, cluster.port)
    # The initrd's first report; nodestat probes the node and shows it.
    fetch(node, arguments["XCATSTATUS"], "--data", f"node={NODE}&state=netbooting")
    shown = walk.said("nodestat", "service", "-t")
    assert re.fullmatch(rf"{NODE}: netbooting \(\d\d-\d\d-\d{{4}} \d\d:\d\d:\d\d\)\n", shown), shown


def kernel_arguments(script: str) -> list[str]:
    (line,) = [line for line in script.splitlines() if line.startswith("imgargs kernel ")]
    return line.split()[2:]


def dhcp_offer(node: Machine, *, ipxe: bool = False) -> dict:
    """What the DHCP service offers the node's MAC: a DISCOVER from its eth0."""
    command = [*node.prefix, sys.executable, "-m", "tests.boot.dhcp_client", "--interface",
               "eth0", "--mac", MAC, *(["--ipxe"] if ipxe else [])]  # fmt: skip
    asked = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=REPOSITORY)
    assert asked.returncode == 0, asked.stdout + asked.stderr
    return json.loads(asked.stdout)


def fetch(node: Machine, url: str, *options: str) -> bytes:
    """`url`, fetched by curl from the node (TFTP or HTTP); failing on an error status."""
    fetched = subprocess.run([*node.prefix, "curl", "-sS", "--fail", *options, url],
                             capture_output=True, timeout=120)  # fmt: skip
    assert fetched.returncode == 0, (url, fetched.stderr)
    return fetched.stdout


def checked_image(node: Machine, imgurl: str) -> None:
    """The packed image, checked as the initrd checks it: against <imgurl>.sha256."""
    expected = fetch(node, f"{imgurl}.sha256").decode().split()[0]
    assert hashlib.sha256(fetch(node, imgurl)).hexdigest() == expected


def reaches(node: Machine, address: str, port: int) -> None:
    """A TCP connection from the node to the daemon's port (XCAT=)."""
    probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=10).close()"
    connected = subprocess.run([*node.prefix, sys.executable, "-c", probe], capture_output=True,
                               text=True)  # fmt: skip
    assert connected.returncode == 0, connected.stderr


# -- the update -------------------------------------------------------------------------


def the_update(walk: Walk, node: Machine, rootimgdir: Path) -> None:
    """The seed's update: new wheels in the otherpkgdir, genimage (in place),
    packimage (which rewrites the boot files of the nodes set to the image),
    nodeset; the node then boots the new packed image."""
    bundle(walk)
    rootimg = rootimgdir / "rootimg"
    lines = built(walk)
    assert lines[0] == f"Updating the existing image {rootimg}"
    assert "Installing xcatd into /opt/xcat from wheels" in lines
    assert f"Keeping {rootimgdir}/initrd-stateless.gz: the same kernel, drivers, dracut module " \
        "and packages made it" in lines  # fmt: skip
    assert (rootimg / "etc/exports").read_text() == EXPORTS  # the tweak stays
    packed = walk.said("packimage", MYSERVICE, timeout=600).splitlines()
    assert packed[-1] == f"packimage: updated the boot files of 1 node set to {MYSERVICE}"
    assert walk.said("nodeset", "service", f"osimage={MYSERVICE}") == (
        f"{NODE}: netboot debian12-x86_64-service\n"
    )
    script = (walk.cluster.root / "tftpboot/xcat/xnba/nodes" / NODE).read_text()
    imgurl = next(arg for arg in kernel_arguments(script) if arg.startswith("imgurl="))
    checked_image(node, imgurl.removeprefix("imgurl="))
