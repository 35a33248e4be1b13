"""Real Debian 12 genimage builds.

The service image as an administrator makes it - copycds of the Debian ISO,
`xcatd bundle`, genimage of the shipped service profile (tests/images_debian.py
builds it once per session) - checked for its kernel, its stateless initrd,
xcatd in /opt/xcat, the units and no private key; then an update that
keeps the initrd, and --onlyinitrd (and geninitrd) that makes it again.  And a
small image from the host's own apt sources (no pkgdir): two install passes,
otherpkgs from a directory of .deb files, a postinstall, and the records.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from xcatd.config import Config
from xcatd.images.build.genimage import STAGING
from xcatd.images.build.privatekeys import private_keys
from xcatd.images.osimage import incomplete
from xcatd.images.shipped import SHARE

from .media import build_deb
from .test_genimage_redhat import attributes, host_mounts_under

BUILD_TIMEOUT = 540


def installed(rootimg: Path) -> set[str]:
    status = (rootimg / "var/lib/dpkg/status").read_text()
    found, name = set(), None
    for line in status.splitlines():
        if line.startswith("Package: "):
            name = line.split()[1]
        elif line == "Status: install ok installed":
            found.add(name)
    return found


def initrd_listing(initrd: Path) -> list[str]:
    """The paths in a gzip-compressed cpio initrd, as GNU cpio lists them."""
    unpacked = subprocess.run(["gzip", "-dc", initrd], capture_output=True, check=True).stdout
    listed = subprocess.run(["cpio", "-t", "--quiet"], input=unpacked, capture_output=True)
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.decode().splitlines()


def in_image(rootimg: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["chroot", rootimg, *command], capture_output=True, text=True)


def test_the_service_image_from_the_debian_iso(debian_service_image):
    image = debian_service_image
    rootimg, rootimgdir = image.rootimg, image.rootimgdir
    out = image.genimage.stdout.splitlines()
    assert image.genimage.stderr == ""
    # A line a phase for people and scripts; the programs' thousands in the log.
    assert len(out) < 40, image.genimage.stdout
    log = (rootimgdir / "genimage.log").read_text().splitlines()
    assert len(log) > 500
    assert any(line.startswith("I: success in") for line in log)  # mmdebstrap's own words
    packages = len(installed(rootimg))
    first_pass = next(i for i, line in enumerate(out) if line.startswith("Packages: installing"))
    counted = re.fullmatch(r"  done in \d+\.\d s: (\d+) packages", out[first_pass + 1])
    assert counted and int(counted.group(1)) > packages / 2  # apt's "Setting up" lines
    assert "Installing xcatd into /opt/xcat from wheels" in out
    assert "Enabling xcatd-report-boot.service xcatd-ssh-hostkeys.service " \
        "xcatd-enroll.service xcatd.service in the image" in out  # fmt: skip
    assert any(line.startswith("Removing SSH host keys from the image: ssh_host_") for line in out)
    kernelver = attributes(image.cluster, image.name)["kernelver"]
    assert (rootimgdir / "kernel").read_bytes() == (
        rootimg / f"boot/vmlinuz-{kernelver}"
    ).read_bytes()
    listing = initrd_listing(rootimgdir / "initrd-stateless.gz")
    assert {
        "usr/lib/dracut/hooks/cmdline/90-parse-xcatd.sh",
        "usr/lib/dracut/hooks/mount/90-xcatd-root.sh",
        "usr/lib/dracut/hooks/initqueue/timeout/90-xcatd-no-network.sh",
        "usr/lib/xcatd-lib.sh",
        "usr/bin/curl",
        "usr/sbin/dhclient",
    } <= set(listing)
    drivers = {Path(path).name.split(".ko")[0] for path in listing if ".ko" in path}
    assert {"virtio_net", "virtio_pci", "e1000", "e1000e", "overlay", "squashfs"} <= drivers
    assert "r8169" not in drivers  # dracut's network module would take every wired driver
    assert not any(path.endswith("bin/systemctl") for path in listing)  # dracut's shell init
    # xcatd, in service-node mode, enabled but waiting for the certificate the
    # node enrolls for at boot.
    version = in_image(rootimg, "/opt/xcat/bin/xcatd", "--version")
    assert (version.returncode, version.stdout) == (0, "xcatd 0.1.0\n"), version.stderr
    assert Config.load(rootimg / "etc/xcat/xcatd.toml").role == "servicenode"
    units = rootimg / "etc/systemd/system"
    assert (units / "xcatd.service").read_bytes() == (SHARE / "systemd/xcatd.service").read_bytes()
    assert "ConditionPathExists=/etc/xcat/pki/server.pem" in (
        units / "xcatd.service.d/xcatd-enrolled.conf").read_text()  # fmt: skip
    enabled = {
        str(link.relative_to(units)): str(link.readlink()) for link in units.glob("*.wants/*")
    }
    assert {
        "multi-user.target.wants/xcatd.service": "/etc/systemd/system/xcatd.service",
        "multi-user.target.wants/xcatd-enroll.service":
            "/etc/systemd/system/xcatd-enroll.service",
        "multi-user.target.wants/xcatd-report-boot.service":
            "/etc/systemd/system/xcatd-report-boot.service",
        "ssh.service.wants/xcatd-ssh-hostkeys.service":
            "/etc/systemd/system/xcatd-ssh-hostkeys.service",
    }.items() <= enabled.items()  # fmt: skip
    # Its syslog goes to its xcatmaster, and it receives its own nodes' logs:
    # the image's rsyslog, enabled, accepts Debian's configuration with ours.
    assert (units / "multi-user.target.wants/rsyslog.service").exists()
    assert "ExecStartPre=/usr/lib/xcatd/syslog-forward" in (
        units / "rsyslog.service.d/xcatd.conf").read_text()  # fmt: skip
    assert (rootimg / "usr/lib/xcatd/syslog-forward").stat().st_mode & 0o111
    drop_ins = sorted(path.name for path in (rootimg / "etc/rsyslog.d").glob("xcatd-*"))
    assert drop_ins == ["xcatd-forward.conf", "xcatd-nodes.conf"]
    checked = in_image(rootimg, "rsyslogd", "-N1")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Nothing secret: no host key, no private key of any kind anywhere.
    assert not list((rootimg / "etc/ssh").glob("ssh_host_*"))
    assert private_keys(rootimg) == []
    assert not incomplete(rootimgdir)
    assert not host_mounts_under(rootimgdir)


def test_an_update_keeps_the_initrd_and_onlyinitrd_makes_it_again(debian_service_image):
    image = debian_service_image
    initrd = image.rootimgdir / "initrd-stateless.gz"
    before = initrd.stat().st_mtime_ns
    update = image.cluster.run("genimage", image.name, timeout=BUILD_TIMEOUT)
    assert update.returncode == 0, update.stdout[-3000:] + update.stderr
    assert f"Keeping {initrd}: the same kernel, drivers, dracut module and packages made it" in (
        update.stdout.splitlines())  # fmt: skip
    assert initrd.stat().st_mtime_ns == before
    wrong = image.cluster.run("genimage", "--onlyinitrd", "-n", "nosuchnic", image.name)
    kernelver = attributes(image.cluster, image.name)["kernelver"]
    assert (wrong.returncode, wrong.stderr) == (
        1,
        f"Error: kernel {kernelver} of the image has no network driver nosuchnic "
        "(-n or the osimage's netdrivers)\n",
    )
    assert initrd.stat().st_mtime_ns == before

    again = image.cluster.run(
        "genimage", "--onlyinitrd", "-n", "8139cp", image.name, timeout=BUILD_TIMEOUT
    )

    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    out = again.stdout.splitlines()
    assert not any(line.startswith(("Packages", "Building", "Updating")) for line in out)
    assert any(line.startswith(f"Making {initrd} with dracut") and "8139cp" in line for line in out)
    drivers = {Path(path).name.split(".ko")[0] for path in initrd_listing(initrd) if ".ko" in path}
    assert {"8139cp", "virtio_net"} <= drivers
    assert attributes(image.cluster, image.name)["netdrivers"] == "8139cp"


def test_geninitrd_makes_the_initrd_again_as_genimage_onlyinitrd(debian_service_image):
    image = debian_service_image
    initrd = image.rootimgdir / "initrd-stateless.gz"
    before = initrd.stat().st_mtime_ns

    again = image.cluster.run("geninitrd", image.name, timeout=BUILD_TIMEOUT)

    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    out = again.stdout.splitlines()
    assert any(line.startswith(f"Making {initrd} with dracut") for line in out)
    assert out[-1].startswith(f"genimage of {image.name} is complete: {image.rootimg}")
    assert initrd.stat().st_mtime_ns > before


def test_geninitrd_refuses_an_image_genimage_has_not_built(shared_cluster, tmp_path):
    cluster = shared_cluster
    cluster.ok("mkdef", "-t", "osimage", "-o", "unbuilt", "provmethod=netboot",
               "osvers=debian12", "osarch=x86_64", f"rootimgdir={tmp_path}")  # fmt: skip
    cluster.ok("mkdef", "-t", "osimage", "-o", "nodir", "provmethod=netboot",
               "osvers=debian12", "osarch=x86_64")  # fmt: skip
    cluster.ok("mkdef", "-t", "osimage", "-o", "diskful", "provmethod=install",
               "osvers=debian12", "osarch=x86_64")  # fmt: skip
    for name, error in (
        ("unbuilt", "The genimage should be run before running geninitrd."),
        ("nodir", "The rootimgdir attribute for the osimage should be set."),
        ("nosuchimage", "The osimage [nosuchimage] was not defined or [osvers, osarch] "
         "attributes were not set."),
        ("diskful", "osimage diskful is a diskful (install) image: xcatd provisions diskless "
         "images, whose initrd geninitrd makes (provmethod netboot or statelite)"),
    ):  # fmt: skip
        assert cluster.outcome("geninitrd", name) == (1, "", f"Error: {error}\n")
    usage = "Usage: geninitrd <imagename> [--ignorekernelchk] [-h | --help]\n"
    assert cluster.outcome("geninitrd", "-h") == (0, usage, "")
    assert cluster.outcome("geninitrd", "--nosuchoption", "unbuilt") == (
        1,
        "",
        f"Error: unrecognized arguments: --nosuchoption\n{usage}",
    )


def test_private_keys_are_found_in_any_file_but_not_in_programs(tmp_path):
    keys = tmp_path / "etc/keys"
    keys.mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys / "ssh"], check=True)
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-out", keys / "tls.key"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout",
                    "-out", keys / "ec.pem"], check=True)  # fmt: skip
    doc = tmp_path / "usr/share/doc/example"
    doc.mkdir(parents=True)
    shutil.copy(keys / "tls.key", doc / "README.example")
    (doc / "marker-only").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n(your key here)\n")
    shutil.copy("/usr/bin/ssh-keygen", tmp_path / "ssh-keygen")  # writes keys: holds the marker
    (tmp_path / "link").symlink_to(keys / "ssh")

    assert private_keys(tmp_path) == sorted(
        [keys / "ssh", keys / "tls.key", keys / "ec.pem", doc / "README.example"]
    )


def test_a_debian_image_from_the_hosts_apt_sources(cluster, tmp_path):
    installdir = cluster.root.resolve() / "install"
    custom = installdir / "custom/netboot/debian"
    custom.mkdir(parents=True)
    pkglist = custom / "small.pkglist"
    pkglist.write_text(
        "# essential + apt: the smallest image apt can still update\n"
        "#ENV:MMDEBSTRAP_VARIANT=apt#\n"
        "iproute2\nless\n"
        "#NEW_INSTALL_LIST#\n"
        "-less\nnetbase\n"
    )
    otherpkgdir = installdir / "post/otherpkgs/debian12/x86_64"
    (otherpkgdir / "local").mkdir(parents=True)
    shutil.copy(build_deb(tmp_path, "xcat-test-deb", depends="netbase"), otherpkgdir / "local")
    otherlist = custom / "small.otherpkgs.pkglist"
    otherlist.write_text("local/xcat-test-deb\n")
    postinstall = custom / "small.postinstall"
    postinstall.write_text(
        "#!/bin/sh\nset -e\n"
        'printf "%s\\n" "$@" > "$1/postinstall.args"\n'
        'env | grep ^IMG_ | sort > "$1/postinstall.env"\n'
        "chroot \"$1\" dpkg-query -W -f '${Package} ${Status}\\n' iproute2 "
        '> "$1/postinstall.chroot"\n'
    )
    postinstall.chmod(0o755)
    rootimgdir = installdir / "netboot/debian12/x86_64/small"
    defined = cluster.run(
        "mkdef", "-t", "osimage", "-o", "debian12-x86_64-netboot-small", "imagetype=linux",
        "provmethod=netboot", "profile=small", "osvers=debian12", "osarch=x86_64",
        f"pkglist={pkglist}", f"otherpkglist={otherlist}", f"otherpkgdir={otherpkgdir}",
        f"postinstall={postinstall}",
    )  # fmt: skip
    assert defined.returncode == 0, defined.stderr

    result = cluster.run("genimage", "debian12-x86_64-netboot-small", timeout=BUILD_TIMEOUT)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert result.stderr == (
        "Warning: the image has no systemd, so genimage installed no xcatd-report-boot.service: "
        "its nodes will not report booted\n"
        "Warning: genimage made no kernel and no initrd-stateless.gz: the image has no kernel: "
        "add the kernel package (linux-image-<arch>, kernel) to its pkglist\n"
    )
    rootimg = rootimgdir / "rootimg"
    out = result.stdout.splitlines()
    assert out[:2] == [
        f"Building a new image in {rootimg}",
        "Checking that the 3 packages of the pkglist are in the repositories",
    ]
    assert re.fullmatch(r"  done in \d+\.\d s", out[2])
    assert out[3] == f"Indexing {otherpkgdir / 'local'} with apt-ftparchive"
    first = out.index("Packages, pass 1 of 2: installing iproute2 less")
    assert re.fullmatch(r"  done in \d+\.\d s: \d+ packages", out[first + 1])
    removing = out.index("Packages, pass 2 of 2: removing less")
    assert out.index("Packages, pass 2 of 2: installing netbase") > removing
    assert not any(line.startswith(("I: ", "Setting up")) for line in out)
    log = (rootimgdir / "genimage.log").read_text().splitlines()
    assert any(line.startswith("I: success in") for line in log)  # mmdebstrap's own words
    assert any(line.startswith("Setting up netbase") for line in log)  # apt, in pass 2
    packages = installed(rootimg)
    assert {"apt", "iproute2", "netbase", "xcat-test-deb"} <= packages
    assert "less" not in packages  # -less in pass 2
    assert "systemd" not in packages  # variant apt, nothing more
    assert (rootimg / "postinstall.args").read_text().split() == [
        str(rootimg), "debian12", "x86_64", "small"]  # fmt: skip
    lines = (rootimg / "postinstall.env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines)
    assert env["IMG_NAME"] == "debian12-x86_64-netboot-small"
    assert env["IMG_PKGDIR"] == "" and env["IMG_KERNELVERSION"] == ""
    assert env["IMG_ROOTIMGDIR"] == str(rootimgdir)
    assert (rootimg / "postinstall.chroot").read_text() == "iproute2 install ok installed\n"
    assert (rootimg / "etc/fstab").read_text().splitlines()[-1] == (
        "small_x86_64    /   tmpfs   rw  0 1"
    )
    # Nothing of the build is left in the image or on the host.
    assert not (rootimg / "usr/sbin/policy-rc.d").exists()
    assert not (rootimg / "etc/apt/sources.list.d/xcat-otherpkgs.list").exists()
    assert not list((rootimg / "var/cache/apt/archives").glob("*.deb"))
    assert not (rootimg / str(otherpkgdir).lstrip("/")).exists()  # its bind mount point
    assert not host_mounts_under(rootimgdir)
    assert not incomplete(rootimgdir)
    recorded = attributes(cluster, "debian12-x86_64-netboot-small")
    assert "pkgdir" not in recorded and "kernelver" not in recorded
    assert {k: recorded[k] for k in ("pkglist", "otherpkglist", "postinstall", "rootimgdir",
                                     "permission")} == {
        "pkglist": str(pkglist), "otherpkglist": str(otherlist),
        "postinstall": str(postinstall), "rootimgdir": str(rootimgdir), "permission": "755",
    }  # fmt: skip


def test_a_misspelt_package_is_named_before_mmdebstrap_runs(cluster):
    custom = cluster.root.resolve() / "install/custom/netboot/debian"
    custom.mkdir(parents=True)
    pkglist = custom / "typo.pkglist"
    pkglist.write_text("iproute2\n#NEW_INSTALL_LIST#\nnetbase iproute\n")
    defined = cluster.run(
        "mkdef", "-t", "osimage", "-o", "typo", "imagetype=linux", "provmethod=netboot",
        "profile=typo", "osvers=debian12", "osarch=x86_64", f"pkglist={pkglist}",
    )  # fmt: skip
    assert defined.returncode == 0, defined.stderr

    result = cluster.run("genimage", "typo", timeout=BUILD_TIMEOUT)

    assert (result.returncode, result.stderr) == (
        1,
        f"Error: package iproute ({pkglist}:3) not found in the repositories of typo\n",
    )
    rootimgdir = cluster.root.resolve() / "install/netboot/debian12/x86_64/typo"
    assert not any(line.startswith("Packages") for line in result.stdout.splitlines())
    assert not (rootimgdir / "rootimg").exists() and not (rootimgdir / STAGING).exists()
    log = (rootimgdir / "genimage.log").read_text()
    # apt's own words, in the log: iproute is only a name other packages refer to
    assert "E: Package 'iproute' has no installation candidate\n" in log
    assert "mmdebstrap" not in log


def test_h_and_v_answer_as_xcats_genimage(shared_cluster):
    rc, out, err = shared_cluster.outcome("genimage", "-h")
    assert (rc, err) == (0, "")
    assert out.startswith(
        "Usage:\n    genimage [-n <nodenetdrivers>] [-k <kernelver>] [--onlyinitrd] "
        "[--noupdate] [-V|--verbose] <imagename>\n\nExamples:\n"
    )
    assert shared_cluster.outcome("genimage", "-v") == (0, "Version 0.1.0\n", "")
    assert shared_cluster.outcome("genimage")[:2] == (1, out)
