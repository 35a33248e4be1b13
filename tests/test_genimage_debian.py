"""One real Debian 12 genimage with mmdebstrap from the host's own apt
sources (no pkgdir): a small image (variant apt) with two install passes,
otherpkgs from a directory of .deb files, a postinstall, and the records."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from xcatd.images.build import incomplete

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
    rootimg = rootimgdir / "rootimg"
    out = result.stdout.splitlines()
    assert out[0] == f"Building a new image in {rootimg}"
    assert any(line.startswith("I: success in") for line in out)  # mmdebstrap's own words
    assert any(line.startswith("Setting up netbase") for line in out)  # apt, in pass 2
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


def test_a_service_image_gets_xcatd_from_the_bundle(cluster, tmp_path):
    """The analog of xCAT's xCATsn from xcat-core: otherpkgs names the wheels
    `xcatd bundle` made, and xcatd lands in /opt/xcat with the image's Python."""
    installdir = cluster.root.resolve() / "install"
    custom = installdir / "custom/netboot/debian"
    custom.mkdir(parents=True)
    pkglist = custom / "sn.pkglist"
    pkglist.write_text("#ENV:MMDEBSTRAP_VARIANT=apt#\npython3\npython3-venv\n")
    otherpkgdir = installdir / "post/otherpkgs/debian12/x86_64"
    bundled = cluster.xcatd("bundle", str(otherpkgdir / "xcat/wheels"))
    assert bundled.returncode == 0, bundled.stderr
    otherlist = custom / "sn.otherpkgs.pkglist"
    otherlist.write_text("xcat/wheels/xcatd\n")
    rootimgdir = installdir / "netboot/debian12/x86_64/sn"
    defined = cluster.run(
        "mkdef", "-t", "osimage", "-o", "debian12-x86_64-netboot-sn", "imagetype=linux",
        "provmethod=netboot", "profile=sn", "osvers=debian12", "osarch=x86_64",
        f"pkglist={pkglist}", f"otherpkglist={otherlist}", f"otherpkgdir={otherpkgdir}",
    )  # fmt: skip
    assert defined.returncode == 0, defined.stderr

    result = cluster.run("genimage", "debian12-x86_64-netboot-sn", timeout=BUILD_TIMEOUT)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "Installing xcatd into /opt/xcat from wheels" in result.stdout
    rootimg = rootimgdir / "rootimg"
    version = subprocess.run(
        ["chroot", rootimg, "/opt/xcat/bin/xcatd", "--version"], capture_output=True, text=True
    )
    assert (version.returncode, version.stdout) == (0, "xcatd 0.1.0\n"), version.stderr
    assert not (rootimg / str(otherpkgdir).lstrip("/")).exists()  # its bind mount point
    assert not host_mounts_under(rootimgdir)
