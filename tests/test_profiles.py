"""Image profiles where xCAT keeps them: `xcatd init` places the shipped ones
under /opt/xcat/share/xcat/netboot/<family>/, keeps what the administrator
changed there, and copycds and genimage look for a profile's files in
/install/custom/netboot/<family>/ first, as xCAT does."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from xcatd.images import profiles
from xcatd.images.build import pkglist
from xcatd.images.osimage import Distro
from xcatd.images.profiles import SHIPPED, file_names, find_profile_file, postinstall_names

from .cluster import Cluster

NETBOOT = "opt/xcat/share/xcat/netboot"
ABOUT_PROFILES = ("Kept ", "Updated ", "Removed ")  # init's lines on the profiles
DEBIAN12 = Distro("debian12", "x86_64", "debian")
RHELS94 = Distro("rhels9.4", "x86_64", "rh")


def shipped_files() -> list[str]:
    return sorted(
        f"{family.name}/{f.name}" for family in SHIPPED.iterdir() for f in family.iterdir()
    )


def test_init_places_every_shipped_profile_under_opt_xcat(tmp_path):
    cluster = Cluster(tmp_path / "c")
    assert cluster.init().returncode == 0
    netboot = cluster.root / NETBOOT
    placed = sorted(
        f"{d.name}/{f.name}" for d in netboot.iterdir() if d.is_dir() for f in d.iterdir()
    )
    assert placed == shipped_files()
    for relative in placed:
        assert (netboot / relative).read_bytes() == (SHIPPED / relative).read_bytes()
    assert os.access(netboot / "rh/service.postinstall", os.X_OK)
    assert not os.access(netboot / "rh/service.pkglist", os.X_OK)
    # What init placed is listed for sha256sum, so the administrator can see changes too.
    check = subprocess.run(
        ["sha256sum", "--quiet", "-c", profiles.MANIFEST], cwd=netboot, capture_output=True
    )
    assert check.returncode == 0, check.stdout


def test_a_profile_the_administrator_changed_survives_init_and_a_line_says_so(tmp_path):
    cluster = Cluster(tmp_path / "c")
    cluster.init()
    netboot = cluster.root.resolve() / NETBOOT
    changed = netboot / "debian/service.pkglist"
    changed.write_text(changed.read_text() + "vim\n")
    (netboot / "rh/compute.exlist").unlink()
    for _ in range(2):  # and again: still the administrator's
        again = cluster.init()
        assert again.returncode == 0, again.stderr
        said = [line for line in again.stdout.splitlines() if line.startswith(ABOUT_PROFILES)]
        assert said == [
            f"Kept {changed}: changed since xcatd init placed it "
            f"(the shipped one is {SHIPPED}/debian/service.pkglist)"
        ]
        assert changed.read_text().endswith("ipxe\npxelinux\nsyslinux-common\nvim\n")
    # A file removed is not a change to keep: init puts it back.
    assert (netboot / "rh/compute.exlist").read_bytes() == (
        SHIPPED / "rh/compute.exlist"
    ).read_bytes()
    # Changed back to what was shipped, it is init's again, silently.
    shutil.copy(SHIPPED / "debian/service.pkglist", changed)
    assert "Kept" not in cluster.init().stdout


def test_init_refreshes_what_it_placed_when_the_shipped_profiles_change(tmp_path, monkeypatch):
    """A newer xcatd: changed files are updated, ones no longer shipped
    removed, except where the administrator changed them."""
    old, new, netboot = tmp_path / "old", tmp_path / "new", tmp_path / "netboot"
    for version, files in (
        (old, {"compute.pkglist": "bash\n", "compute.exlist": "./a\n", "gone.pkglist": "x\n",
               "service.pkglist": "dnsmasq\n"}),
        (new, {"compute.pkglist": "bash\nless\n", "compute.exlist": "./b\n",
               "service.pkglist": "dnsmasq\nnfs\n", "compute.x86_64.pkglist": "k\n"}),
    ):  # fmt: skip
        for name, text in files.items():
            (version / "debian").mkdir(parents=True, exist_ok=True)
            (version / "debian" / name).write_text(text)
    monkeypatch.setattr(profiles, "SHIPPED", old)
    assert list(profiles.install_shipped(netboot)) == []
    (netboot / "debian/compute.exlist").write_text("./mine\n")
    monkeypatch.setattr(profiles, "SHIPPED", new)
    assert list(profiles.install_shipped(netboot)) == [
        f"Kept {netboot}/debian/compute.exlist: changed since xcatd init placed it "
        f"(the shipped one is {new}/debian/compute.exlist)",
        f"Updated {netboot}/debian/compute.pkglist",
        f"Updated {netboot}/debian/service.pkglist",
        f"Removed {netboot}/debian/gone.pkglist: no longer shipped",
    ]
    assert sorted(p.name for p in (netboot / "debian").iterdir()) == [
        "compute.exlist", "compute.pkglist", "compute.x86_64.pkglist", "service.pkglist",
    ]  # fmt: skip
    assert (netboot / "debian/compute.pkglist").read_text() == "bash\nless\n"
    assert (netboot / "debian/compute.exlist").read_text() == "./mine\n"


def test_a_profile_init_did_not_place_is_kept(tmp_path, monkeypatch):
    """xCAT's own files on a management node that ran xCAT are left alone."""
    netboot = tmp_path / "netboot"
    theirs = netboot / "rh/service.pkglist"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("#INCLUDE:/opt/xcat/share/xcat/netboot/rh/compute.rhels9.pkglist#\n")
    lines = list(profiles.install_shipped(netboot))
    assert lines == [
        f"Kept {theirs}: it differs from the shipped {SHIPPED}/rh/service.pkglist, "
        "which init did not place"
    ]
    assert theirs.read_text().startswith("#INCLUDE:/opt/xcat")


def test_profile_file_names_are_tried_in_xcats_order():
    assert file_names(RHELS94, "service", "pkglist") == [
        "service.rhels9.4.x86_64.pkglist", "service.rhels9.4.pkglist",
        "service.rhels9.x86_64.pkglist", "service.rhels9.pkglist",
        *(f"service.rhels9.{minor}{arch}.pkglist" for minor in (3, 2, 1, 0)
          for arch in (".x86_64", "")),
        "service.x86_64.pkglist", "service.pkglist",
    ]  # fmt: skip
    assert file_names(Distro("ubuntu24.04", "aarch64", "debian"), "compute", "exlist") == [
        "compute.ubuntu24.04.aarch64.exlist", "compute.ubuntu24.04.exlist",
        "compute.ubuntu24.aarch64.exlist", "compute.ubuntu24.exlist",
        "compute.aarch64.exlist", "compute.exlist",
    ]  # fmt: skip
    assert postinstall_names(RHELS94, "service") == [
        "service.rhels9.4.x86_64.postinstall", "service.rhels9.x86_64.postinstall",
        "service.rhels9.4.postinstall", "service.rhels9.postinstall",
        "service.x86_64.postinstall", "service.postinstall",
    ]  # fmt: skip


def test_custom_directory_first_then_where_init_placed_them(tmp_path):
    installdir, netboot = tmp_path / "install", tmp_path / NETBOOT
    list(profiles.install_shipped(netboot))
    placed = netboot / "debian"
    # Nothing custom: the placed, most specific file.
    assert find_profile_file(DEBIAN12, "service", "pkglist", installdir, netboot) == (
        placed / "service.x86_64.pkglist"
    )
    # A custom file wins even with a less specific name; within a directory
    # the most specific name wins.
    custom = installdir / "custom/netboot/debian"
    custom.mkdir(parents=True)
    (custom / "service.pkglist").write_text("vim\n")
    assert find_profile_file(DEBIAN12, "service", "pkglist", installdir, netboot) == (
        custom / "service.pkglist"
    )
    (custom / "service.debian12.pkglist").write_text("vim\n")
    assert find_profile_file(DEBIAN12, "service", "pkglist", installdir, netboot) == (
        custom / "service.debian12.pkglist"
    )
    # A postinstall that is not executable is passed over, as xCAT does.
    (custom / "service.postinstall").write_text("#!/bin/sh\n")
    assert find_profile_file(DEBIAN12, "service", "postinstall", installdir, netboot) == (
        placed / "service.postinstall"
    )
    (custom / "service.postinstall").chmod(0o755)
    assert find_profile_file(DEBIAN12, "service", "postinstall", installdir, netboot) == (
        custom / "service.postinstall"
    )


def test_the_package_copy_serves_a_host_where_init_placed_none(tmp_path):
    installdir, netboot = tmp_path / "install", tmp_path / "empty"
    assert profiles.shipped_dir("rh", netboot) == SHIPPED / "rh"
    assert find_profile_file(RHELS94, "compute", "exlist", installdir, netboot) == (
        SHIPPED / "rh/compute.exlist"
    )
    assert find_profile_file(RHELS94, "compute", "nosuch", installdir, netboot) is None


def test_the_seeds_walk_copy_a_profile_and_define_an_image_from_it(cluster, tmp_path):
    """cd /opt/xcat/share/xcat/netboot/debian; copy the list and the script
    to /install/custom/netboot/debian (not the lists it includes); copycds
    defines the image from the copies, and the list still reads whole."""
    root = cluster.root.resolve()
    placed, custom = root / NETBOOT / "debian", root / "install/custom/netboot/debian"
    custom.mkdir(parents=True)
    for name in ("service.x86_64.pkglist", "service.postinstall"):
        shutil.copy2(placed / name, custom / name)
    with (custom / "service.x86_64.pkglist").open("a") as copy:
        copy.write("vim\n")
    media = tmp_path / "media"
    (media / "pool").mkdir(parents=True)
    cluster.ok("copycds", "-n", "debian12", "-a", "x86_64", str(media))
    shown = cluster.ok("lsdef", "-t", "osimage", "debian12-x86_64-netboot-service",
                       "-i", "pkglist,exlist,postinstall,otherpkglist")  # fmt: skip
    assert shown.splitlines()[1:] == [
        f"    exlist={placed}/service.exlist",
        f"    otherpkglist={placed}/service.otherpkgs.pkglist",
        f"    pkglist={custom}/service.x86_64.pkglist",
        f"    postinstall={custom}/service.postinstall",
    ]
    read = pkglist.read(f"{custom}/service.x86_64.pkglist")
    assert read.install[-3:] == ["syslinux-common", "linux-image-amd64", "vim"]
    assert "systemd" in read.install  # from compute.pkglist, which service.pkglist includes
    used = profiles.shipped_dir("debian") / "service.pkglist"
    assert read.notes == [
        f"{custom}/service.pkglist does not exist: read the shipped {used} in its place "
        f"(copy it to {custom} to change it)"
    ]


@pytest.mark.parametrize("family", ["debian", "rh"])
@pytest.mark.parametrize("profile", ["compute", "service"])
def test_the_postinstall_sample_fstab_works_once_uncommented(tmp_path, family, profile):
    """The seed: "uncomment the sample fstab lines and change as needed"."""
    shipped = SHIPPED / family / f"{profile}.postinstall"
    rootimg = tmp_path / "rootimg"
    (rootimg / "etc").mkdir(parents=True)
    (rootimg / "etc/fstab").write_text("what genimage wrote\n")

    def run(script):
        command = [str(script), str(rootimg), "osvers", "x86_64", profile]
        return subprocess.run(command, capture_output=True, text=True)

    assert run(shipped).returncode == 0
    assert (rootimg / "etc/fstab").read_text() == "what genimage wrote\n"

    lines = shipped.read_text().splitlines(keepends=True)
    start = lines.index('#cat <<END >"$rootimg/etc/fstab"\n')
    end = lines.index("#END\n", start)
    mine = tmp_path / f"{profile}.postinstall"
    mine.write_text(
        "".join(lines[:start] + [x[1:] for x in lines[start : end + 1]] + lines[end + 1 :])
    )
    mine.chmod(0o755)
    result = run(mine)
    assert result.returncode == 0, result.stderr
    fstab = [line.split() for line in (rootimg / "etc/fstab").read_text().splitlines()]
    assert fstab[:6] == [
        ["proc", "/proc", "proc", "rw", "0", "0"],
        ["sysfs", "/sys", "sysfs", "rw", "0", "0"],
        ["devpts", "/dev/pts", "devpts", "rw,gid=5,mode=620", "0", "0"],
        [f"{profile}_x86_64", "/", "tmpfs", "rw", "0", "1"],
        ["none", "/tmp", "tmpfs", "defaults,size=10m", "0", "2"],
        ["none", "/var/tmp", "tmpfs", "defaults,size=10m", "0", "2"],
    ]
    # Anything more is a comment until the administrator takes its '#' off.
    assert all(words[0].startswith("#") for words in fstab[6:])
    assert len(fstab) == (9 if profile == "service" else 6)
