"""Which distribution a medium holds, from the files each family ships."""

from __future__ import annotations

import pytest

from xcatd.images.media.detect import detect
from xcatd.images.media.read import open_media
from xcatd.images.osimage import Distro


def media(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return open_media(str(tmp_path))


def treeinfo(family: str, version: str, arch: str = "x86_64") -> str:
    return (
        f"[general]\nfamily = {family}\nversion = {version}\narch = {arch}\n"
        f"[release]\nname = {family}\nversion = {version}\n[tree]\narch = {arch}\n"
    )


@pytest.mark.parametrize(
    ("family", "version", "arch", "expected"),
    [
        ("Red Hat Enterprise Linux", "9.4", "x86_64", Distro("rhels9.4", "x86_64", "rh")),
        ("Rocky Linux", "9.4", "aarch64", Distro("rocky9.4", "aarch64", "rh")),
        ("AlmaLinux", "8.10", "ppc64le", Distro("alma8.10", "ppc64le", "rh")),
        ("CentOS Stream", "9", "x86_64", Distro("centos-stream9", "x86_64", "rh")),
        ("Fedora", "40", "x86_64", Distro("fedora40", "x86_64", "rh")),
    ],
)
def test_the_red_hat_family_from_treeinfo(tmp_path, family, version, arch, expected):
    assert detect(media(tmp_path, {".treeinfo": treeinfo(family, version, arch)})) == expected


def test_discinfo_alone_is_enough_and_gives_the_disc_number(tmp_path):
    found = detect(
        media(tmp_path, {".discinfo": "1716.0\nRed Hat Enterprise Linux 8.9\nx86_64\n2\n"})
    )
    assert found == Distro("rhels8.9", "x86_64", "rh", "2")


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ('Debian GNU/Linux 12.5.0 "Bookworm" - Official amd64 DVD Binary-1 20240210-11:28',
         Distro("debian12", "x86_64", "debian")),
        ('Ubuntu-Server 24.04 LTS "Noble Numbat" - Release amd64 (20240423)',
         Distro("ubuntu24.04", "x86_64", "debian")),
        ('Debian GNU/Linux 12.5.0 "Bookworm" - Official arm64 DVD Binary-2 20240210-11:28',
         Distro("debian12", "aarch64", "debian", "2")),
    ],
)  # fmt: skip
def test_debian_and_ubuntu_from_disk_info(tmp_path, info, expected):
    assert detect(media(tmp_path, {".disk/info": info})) == expected


def test_a_mirror_style_debian_tree_from_its_release_file(tmp_path):
    release = "Origin: Debian\nVersion: 12.8\nCodename: bookworm\nArchitectures: ppc64el\n"
    found = detect(media(tmp_path, {"dists/bookworm/Release": release}))
    assert found == Distro("debian12", "ppc64le", "debian")


def test_unknown_media_is_not_guessed(tmp_path):
    assert detect(media(tmp_path, {"README": "hello"})) is None
    assert detect(media(tmp_path, {".treeinfo": treeinfo("Plan 9", "4")})) is None
