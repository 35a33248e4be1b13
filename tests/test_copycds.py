"""copycds of real Debian and Red Hat family media, through the real client."""

from __future__ import annotations

import fcntl
import subprocess

import pytest

from .media import debian_tree, iso, redhat_tree

DEBIAN_PACKAGES = ["hostname", "netbase", "less", "xz-utils"]
SIX = [
    f"{{os}}-x86_64-{method}-{profile}"
    for method in ("install", "netboot", "statelite")
    for profile in ("compute", "service")
]
NO_OSIMAGES = "Error: Could not get objects of type 'osimage'.\n"  # xCAT's lsdef, none defined


@pytest.fixture(scope="module")
def debian_iso(tmp_path_factory):
    where = tmp_path_factory.mktemp("debian-media")
    return iso(debian_tree(where, DEBIAN_PACKAGES), where / "debian-12-amd64.iso", "Debian 12")


@pytest.fixture(scope="module")
def rocky_tree(tmp_path_factory):
    return redhat_tree(tmp_path_factory.mktemp("rocky-media"))


def test_copycds_of_the_debian_iso_copies_it_and_defines_six_osimages(cluster, debian_iso):
    result = cluster.run("copycds", str(debian_iso))
    assert result.returncode == 0, result.stderr
    installdir = cluster.root.resolve() / "install"
    assert result.stdout.splitlines() == [
        f"Copying media to {installdir}/debian12/x86_64",
        "Media copy operation successful",
        *(f"Created osimage definition {name.format(os='debian12')}" for name in SIX),
    ]
    tree = installdir / "debian12/x86_64"
    assert (tree / "dists/bookworm/Release").is_file()
    assert sorted(p.name.split("_")[0] for p in (tree / "pool/main").iterdir()) == sorted(
        DEBIAN_PACKAGES
    )
    assert (tree / "debian").is_symlink()
    listing = cluster.run("lsdef", "-t", "osimage")
    assert listing.stdout == "".join(f"{n.format(os='debian12')}  (osimage)\n" for n in SIX)


def test_the_netboot_service_osimage_has_the_reference_layout(cluster, debian_iso):
    cluster.run("copycds", str(debian_iso))
    shown = cluster.run("lsdef", "-t", "osimage", "-l", "debian12-x86_64-netboot-service")
    installdir = cluster.root.resolve() / "install"
    profiles = _placed(cluster, "debian")
    assert shown.stdout.splitlines() == [
        "Object name: debian12-x86_64-netboot-service",
        f"    exlist={profiles}/service.exlist",
        "    imagetype=linux",
        "    osarch=x86_64",
        "    osdistroname=debian12-x86_64",
        "    osname=Linux",
        "    osvers=debian12",
        f"    otherpkgdir={installdir}/post/otherpkgs/debian12/x86_64",
        f"    otherpkglist={profiles}/service.otherpkgs.pkglist",
        f"    pkgdir={installdir}/debian12/x86_64",
        f"    pkglist={profiles}/service.x86_64.pkglist",
        f"    postinstall={profiles}/service.postinstall",
        "    profile=service",
        "    provmethod=netboot",
        f"    rootimgdir={installdir}/netboot/debian12/x86_64/service",
    ]


def _placed(cluster, family: str) -> str:
    """Where `xcatd init` placed the shipped profiles, as xCAT keeps them."""
    return str(cluster.root.resolve() / "opt/xcat/share/xcat/netboot" / family)


def test_custom_profiles_win_over_the_shipped_ones(cluster, debian_iso):
    custom = cluster.root.resolve() / "install/custom/netboot/debian"
    custom.mkdir(parents=True)
    (custom / "service.pkglist").write_text("#INCLUDE:/dev/null#\nvim\n")
    cluster.run("copycds", str(debian_iso))
    shown = cluster.run(
        "lsdef", "-t", "osimage", "debian12-x86_64-netboot-service", "-i", "pkglist"
    )
    # The shipped list is more specific (service.x86_64.pkglist) but custom wins first.
    assert shown.stdout.splitlines()[1] == f"    pkglist={custom}/service.pkglist"


def test_copycds_of_a_red_hat_family_tree(cluster, rocky_tree):
    result = cluster.run("copycds", str(rocky_tree))
    assert result.returncode == 0, result.stderr
    tree = cluster.root.resolve() / "install/rocky9.4/x86_64"
    assert (tree / "BaseOS/repodata/repomd.xml").is_file()
    assert len(list((tree / "BaseOS/Packages").glob("*.rpm"))) == 2
    names = cluster.run("lsdef", "-t", "osimage", "-s").stdout.split()
    assert [n for n in names if n != "(osimage)"] == [n.format(os="rocky9.4") for n in SIX]
    shown = cluster.run("lsdef", "-t", "osimage", "rocky9.4-x86_64-netboot-compute", "-i",
                        "pkglist,pkgdir,osvers")  # fmt: skip
    assert shown.stdout.splitlines()[1:] == [  # sorted, as xCAT lists -i attributes
        "    osvers=rocky9.4",
        f"    pkgdir={tree}",
        f"    pkglist={_placed(cluster, 'rh')}/compute.pkglist",
    ]


def test_inspection_identifies_without_copying(cluster, debian_iso, rocky_tree):
    result = cluster.run("copycds", "-i", str(debian_iso), str(rocky_tree))
    assert result.stdout.splitlines() == [
        f"OS Image:{debian_iso}",
        "DISTNAME:debian12",
        "ARCH:x86_64",
        "DISCNO:1",
        f"OS Image:{rocky_tree}",
        "DISTNAME:rocky9.4",
        "ARCH:x86_64",
        "DISCNO:1",
    ]
    assert not (cluster.root / "install/debian12").exists()
    assert cluster.run("lsdef", "-t", "osimage").stderr == NO_OSIMAGES


def test_unknown_media_asks_for_n_and_a(cluster, tmp_path):
    plain = tmp_path / "media"
    (plain / "Packages").mkdir(parents=True)
    result = cluster.run("copycds", str(plain))
    assert (result.returncode, result.stderr) == (
        1,
        f"Error: could not identify the distribution on {plain}: give it with -n DISTNAME "
        "-a ARCH\n",
    )
    named = cluster.run("copycds", "-n", "rhels9.4", "-a", "x86_64", str(plain))
    assert named.returncode == 0, named.stderr
    assert (cluster.root / "install/rhels9.4/x86_64/Packages").is_dir()


def test_a_relative_path_is_found_from_the_clients_directory(cluster, rocky_tree):
    result = subprocess.run(
        [cluster.env["PATH"].split(":")[0] + "/copycds", "-i", rocky_tree.name],
        cwd=rocky_tree.parent, env=cluster.env, capture_output=True, text=True,
    )  # fmt: skip
    assert "DISTNAME:rocky9.4" in result.stdout, result.stderr


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda tmp: "/etc/hostname",
         "Error: /etc/hostname is neither an ISO image nor a directory\n"),
        (lambda tmp: "/etc/hostname/x", "Error: cannot read /etc/hostname/x: Not a directory\n"),
        (lambda tmp: str(tmp / "nowhere.iso"), "Error: {tmp}/nowhere.iso does not exist\n"),
    ],
)  # fmt: skip
def test_what_is_not_media_is_refused(cluster, tmp_path, make, error):
    result = cluster.run("copycds", make(tmp_path))
    assert (result.returncode, result.stderr) == (1, error.format(tmp=tmp_path))


@pytest.mark.parametrize("kept", [0.5, 0.9])
def test_a_truncated_iso_leaves_no_tree_that_looks_complete(cluster, debian_iso, tmp_path, kept):
    truncated = tmp_path / "truncated.iso"
    data = debian_iso.read_bytes()
    truncated.write_bytes(data[: int(len(data) * kept)])
    result = cluster.run("copycds", str(truncated))
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {truncated} is damaged or truncated: ")
    parent = cluster.root / "install/debian12"
    assert not (parent / "x86_64").exists()
    if parent.exists():  # nothing half-copied is left beside the lock
        assert [p.name for p in parent.iterdir()] == [".x86_64.copycds.lock"]
    assert cluster.run("lsdef", "-t", "osimage").stderr == NO_OSIMAGES
    # The whole ISO then copies as if nothing had happened.
    assert cluster.run("copycds", str(debian_iso)).returncode == 0


def test_a_full_disk_is_reported_and_the_partial_copy_removed(cluster, debian_iso, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", small], check=True)
    try:
        result = cluster.run("copycds", "-o", "-p", str(small / "debian"), str(debian_iso))
        assert (result.returncode, result.stderr) == (
            1,
            f"Error: no space left on the disk of {small} while copying\n",
        )
        assert sorted(p.name for p in small.iterdir()) == [".debian.copycds.lock"]
    finally:
        subprocess.run(["umount", small], check=True)


def test_a_second_copycds_to_the_same_place_is_refused_while_one_runs(cluster, debian_iso):
    parent = cluster.root.resolve() / "install/debian12"
    parent.mkdir(parents=True)
    with (parent / ".x86_64.copycds.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a running copycds holds it
        result = cluster.run("copycds", str(debian_iso))
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: another copycds is copying to {parent}/x86_64; wait for it to finish\n"
    )


def test_w_never_overwrites_and_a_second_copycds_keeps_changed_osimages(cluster, debian_iso):
    assert cluster.run("copycds", str(debian_iso)).returncode == 0
    cluster.run("chdef", "-t", "osimage", "debian12-x86_64-netboot-compute", "netdrivers=igb")
    refused = cluster.run("copycds", "-w", str(debian_iso))
    assert refused.returncode == 1
    assert refused.stderr.endswith("/install/debian12/x86_64 exists and -w never overwrites it\n")
    again = cluster.run("copycds", str(debian_iso))
    assert again.returncode == 0
    assert "Created osimage" not in again.stdout
    kept = cluster.run("lsdef", "-t", "osimage", "debian12-x86_64-netboot-compute", "-i",
                       "netdrivers")  # fmt: skip
    assert kept.stdout.splitlines()[1] == "    netdrivers=igb"


def test_the_copy_reports_progress_in_bytes(cluster, tmp_path):
    from xcat_protocol.messages import Done, Progress

    from .sessions import connect

    media = _sparse_media(tmp_path, 64 << 20)
    connection = connect(cluster)
    request = connection.request(
        "copycds", ["-o", "-n", "rhels9.4", "-a", "x86_64", str(media)], user="root"
    )
    progress = []
    while not isinstance(message := connection.receive(), Done):
        if isinstance(message, Progress):
            progress.append((message.what, message.done, message.total, message.unit))
    assert message == Done(request, 0)
    assert progress[-1] == ("Copying media", 64 << 20, 64 << 20, "bytes")
    assert len(progress) >= 4  # every 16 MiB
    assert [done for _, done, _, _ in progress] == sorted(done for _, done, _, _ in progress)


def test_a_cancelled_copy_leaves_nothing_that_looks_complete(cluster, tmp_path):
    from xcat_protocol.messages import Cancel, Done, Progress

    from .sessions import connect

    media = _sparse_media(tmp_path, 1 << 30)
    connection = connect(cluster)
    request = connection.request(
        "copycds", ["-o", "-n", "rhels9.4", "-a", "x86_64", str(media)], user="root"
    )
    while not isinstance(connection.receive(), Progress):
        pass
    connection.send(Cancel(request))
    while not isinstance(message := connection.receive(), Done):
        pass
    assert message == Done(request, 130)
    parent = cluster.root / "install/rhels9.4"
    assert [p.name for p in parent.iterdir()] == [".x86_64.copycds.lock"]


def _sparse_media(tmp_path, size: int):
    """A media directory with one large (sparse, so cheap to make) file."""
    media = tmp_path / "big-media"
    (media / "images").mkdir(parents=True)
    with (media / "images/install.img").open("wb") as f:
        f.truncate(size)
    return media


def test_h_and_no_arguments_in_xcats_words(cluster):
    assert cluster.outcome("copycds", "-h") == (
        0,
        "copycds [{-p|--path} path] [{-n|--name|--osver} distroname] [{-a|--arch} "
        "architecture] [-i|--inspection] [{-o|--noosimage}] [{-w|--nonoverwrite}] 1st.iso "
        "[2nd.iso ...].\n",
        "",
    )
    assert cluster.outcome("copycds") == (
        1, "", "Error: copycds needs at least one full path to ISO currently.\n"
    )  # fmt: skip
