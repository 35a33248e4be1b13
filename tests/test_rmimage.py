"""rmimage as an administrator uses it, through the real client against a real
daemon: an image packed by the real packimage and set on a node by the real
nodeset, then removed; and what it refuses to remove."""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

import pytest

from .cluster import Cluster
from .test_nodeset import make_image


@pytest.fixture(scope="module")
def cluster(shared_cluster: Cluster) -> Cluster:
    shared_cluster.ok("mkdef", "-t", "network", "-o", "loopback", "net=127.0.0.0",
       "mask=255.0.0.0")  # fmt: skip
    shared_cluster.ok("makedhcp", "-n")
    return shared_cluster


def visible(directory: Path) -> list[str]:
    """What is left, but for genimage's and packimage's lock files."""
    return sorted(path.name for path in directory.iterdir() if not path.name.endswith(".lock"))


def test_rmimage_removes_the_image_files_and_warns_of_the_nodes_set_to_it(cluster):
    rootimgdir = make_image(cluster, "old")
    cluster.ok("mkdef", "old1", "groups=olds", "mac=52:54:00:00:09:01", "ip=127.0.9.1")
    cluster.ok("nodeset", "old1", "osimage=old")
    boot_copy = cluster.root / "tftpboot/xcat/osimage/old"
    assert boot_copy.is_dir()

    assert cluster.outcome("rmimage", "old") == (
        0,
        f"Removing directory {rootimgdir}/rootimg\n"
        f"Removing file {rootimgdir}/kernel\n"
        f"Removing file {rootimgdir}/initrd-stateless.gz\n"
        f"Removing file {rootimgdir}/rootimg.cpio.zst\n"
        f"Removing file {rootimgdir}/rootimg.cpio.zst.sha256\n"
        f"Removing directory {boot_copy}\n"
        "Image files have been removed successfully from this management node.\n",
        "Warning: 1 node(s) set to boot old cannot boot it any more: old1; set them to another "
        "image (nodeset <noderange> osimage=<image>)\n",
    )
    assert visible(rootimgdir) == []
    assert not boot_copy.exists()
    assert cluster.ok("lsdef", "-t", "osimage", "old").startswith("Object name: old\n")


def test_xcatdef_removes_the_definition_too(cluster):
    rootimgdir = make_image(cluster, "gone", pack=False)

    rc, out, err = cluster.outcome("rmimage", "-V", "gone", "--xcatdef")

    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "image name is gone",
        "For osimage gone: osver = debian12, arch = x86_64, profile = service, method = netboot "
        "in osimage table",
        f"image directory is {rootimgdir}",
        f"Removing directory {rootimgdir}/rootimg",
        f"Removing file {rootimgdir}/kernel",
        f"Removing file {rootimgdir}/initrd-stateless.gz",
        "Image files have been removed successfully from this management node.",
        "Removing osimage definition for gone.",
        "osimage definition for gone is removed successfully.",
    ]
    assert cluster.outcome("lsdef", "-t", "osimage", "gone")[0] == 1


def test_an_image_in_use_by_genimage_or_packimage_is_refused(cluster):
    rootimgdir = make_image(cluster, "busy", pack=False)
    with (rootimgdir / ".genimage.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # as a packimage of it holds it
        assert cluster.outcome("rmimage", "busy") == (
            1,
            "",
            f"Error: genimage or packimage is using {rootimgdir}/rootimg: run rmimage when it "
            "has finished\n",
        )
    assert visible(rootimgdir) == ["initrd-stateless.gz", "kernel", "rootimg"]


def test_a_rootimgdir_outside_the_install_directory_is_refused(cluster, tmp_path):
    (tmp_path / "rootimg").mkdir()
    installdir = cluster.root.resolve() / "install"
    for name, rootimgdir in (("outside", tmp_path), ("climbing", installdir / "../etc")):
        cluster.ok("mkdef", "-t", "osimage", "-o", name, "provmethod=netboot",
                   f"rootimgdir={rootimgdir}")  # fmt: skip
        assert cluster.outcome("rmimage", name) == (
            1,
            "",
            f"Error: rootimgdir {rootimgdir} of osimage {name} is not inside the install "
            f"directory {installdir}: rmimage removes files only there\n",
        )
    assert (tmp_path / "rootimg").is_dir()
    assert (cluster.root / "etc/xcat/xcatd.toml").is_file()


def test_a_mount_inside_the_root_image_is_refused(cluster):
    rootimgdir = make_image(cluster, "mounted", pack=False)
    point = rootimgdir / "rootimg/proc"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", point], check=True)
    try:
        (point / "a host file").write_text("must stay")
        assert cluster.outcome("rmimage", "mounted") == (
            1,
            "",
            f"Error: {point} is mounted inside {rootimgdir}/rootimg: unmount it (umount "
            f"{point}) and run rmimage again; removing through it would remove the host's "
            "files\n",
        )
        assert (point / "a host file").read_text() == "must stay"
    finally:
        subprocess.run(["umount", point], check=True)


def test_bad_input_gets_one_line(cluster):
    cluster.ok("mkdef", "-t", "osimage", "-o", "diskful", "provmethod=install")
    assert cluster.outcome("rmimage", "nosuchimage") == (
        1,
        "",
        "Error: Cannot find image 'nosuchimage' from the osimage table.\n",
    )
    assert cluster.outcome("rmimage", "diskful") == (
        1,
        "",
        'Error: Invalid method "install", the rmimage command can only be used to remove the '
        "netboot or statelite image files\n",
    )
    usage = (
        "\nUsage:\n    rmimage [-h | --help]\n    rmimage [-V | --verbose] imagename [--xcatdef]\n"
    )
    assert cluster.outcome("rmimage", "-h") == (0, usage, "")
    assert cluster.outcome("rmimage")[:2] == (1, usage)
