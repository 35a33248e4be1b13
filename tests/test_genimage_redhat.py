"""genimage of Red Hat family images: real `dnf --installroot` builds from a
real (test) RPM repository, through the real client and daemon."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from xcatd.images.build.genimage import STAGING, BuildError, Spec, preflight
from xcatd.images.osimage import INCOMPLETE, incomplete

from .media import Rpm, build_rpms, comps_xml, redhat_tree, run
from .waiting import wait_for

KERNEL = "5.14.0-1.xcat.x86_64"
PROC_LUA = (
    'local s = io.open("/proc/self/status")\n'
    'if s then s:close(); local f = io.open("/var/lib/xcat-test-proc/proc", "w"); '
    'f:write("mounted"); f:close() end'
)
ENV_LUA = (
    'local f = io.open("/var/lib/xcat-test-member/env", "w")\n'
    'f:write(os.getenv("XCAT_TEST_PASS") or "unset"); f:close()'
)
SLOW_LUA = (
    'local f = io.open("/var/lib/xcat-test-slow/started", "w"); f:write("x"); f:close()\n'
    "local t = os.time(); while os.time() - t < 8 do end\n"
    'local g = io.open("/var/lib/xcat-test-slow/finished", "w"); g:write("x"); g:close()'
)
RPMS = (
    Rpm("xcat-test-base"),
    Rpm("xcat-test-tools", requires="xcat-test-base"),
    Rpm("xcat-test-extra"),
    Rpm("xcat-test-docs"),
    Rpm("xcat-test-member", files=(("/var/lib/xcat-test-member/.keep", ""),), post_lua=ENV_LUA),
    Rpm("xcat-test-kernel", files=(
        (f"/lib/modules/{KERNEL}/modules.dep", ""), (f"/boot/vmlinuz-{KERNEL}", "kernel"))),
    Rpm("xcat-test-proc", files=(("/var/lib/xcat-test-proc/.keep", ""),), post_lua=PROC_LUA),
    Rpm("xcat-test-slow", files=(("/var/lib/xcat-test-slow/.keep", ""),), post_lua=SLOW_LUA),
    Rpm("xcat-test-broken", requires="xcat-test-absent"),  # there, but cannot be installed
)  # fmt: skip
BUILD_TIMEOUT = 180


@pytest.fixture(scope="module")
def rocky_tree(tmp_path_factory):
    where = tmp_path_factory.mktemp("rocky-media")
    return redhat_tree(where, rpms=RPMS, comps=comps_xml({"xcat-test-group": ["xcat-test-member"]}))


@pytest.fixture
def rocky(cluster, rocky_tree):
    """The cluster with the test media copied by copycds (osimages defined)."""
    result = cluster.run("copycds", str(rocky_tree))
    assert result.returncode == 0, result.stderr
    return cluster


def installdir(cluster) -> Path:
    return cluster.root.resolve() / "install"


def lists(cluster) -> Path:
    path = installdir(cluster) / "custom/netboot/rh"
    path.mkdir(parents=True, exist_ok=True)
    return path


def define(cluster, name: str, pkglist: str, **extra: str) -> Path:
    """An osimage `name` installing the packages of `pkglist` (its text)."""
    listed = lists(cluster) / f"{name}.pkglist"
    listed.write_text(pkglist)
    rootimgdir = installdir(cluster) / "netboot/rocky9.4/x86_64" / name
    values = {
        "imagetype": "linux", "provmethod": "netboot", "profile": "compute",
        "osvers": "rocky9.4", "osarch": "x86_64", "pkglist": str(listed),
        "rootimgdir": str(rootimgdir), **extra,
    }  # fmt: skip
    result = cluster.run(
        "mkdef", "-t", "osimage", "-o", name, *(f"{k}={v}" for k, v in values.items())
    )
    assert result.returncode == 0, result.stderr
    return rootimgdir


def genimage(cluster, *args: str) -> subprocess.CompletedProcess:
    return cluster.run("genimage", *args, timeout=BUILD_TIMEOUT)


def packages(rootimg: Path) -> dict[str, str]:
    listing = run("rpm", "--root", rootimg, "--dbpath", "/var/lib/rpm", "-qa",
                  "--qf", "%{NAME} %{VERSION}\\n")  # fmt: skip
    return dict(line.split() for line in listing.splitlines())


def attributes(cluster, name: str) -> dict[str, str]:
    shown = cluster.run("lsdef", "-t", "osimage", "-l", name).stdout.splitlines()[1:]
    return dict(line.strip().split("=", 1) for line in shown)


def host_mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as mounts:
        return [line for line in mounts if str(path) in line]


def processes_naming(path: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if str(path).encode() in cmdline:
                found.append(cmdline.decode(errors="replace"))
    return found


def test_passes_includes_groups_removals_otherpkgs_postinstall_and_records(rocky, tmp_path):
    cluster = rocky
    base = lists(cluster) / "common"
    base.mkdir()
    (base / "base.pkglist").write_text("# the base of every image\nxcat-test-base\n")
    otherpkgdir = installdir(cluster) / "post/otherpkgs/rocky9.4/x86_64"
    local = otherpkgdir / "xcat/local"
    local.mkdir(parents=True)
    for rpm in build_rpms(tmp_path / "other", [Rpm("xcat-test-other", requires="xcat-test-base")]):
        shutil.copy(rpm, local / rpm.name)
    otherlist = lists(cluster) / "img.otherpkgs.pkglist"
    otherlist.write_text("xcat/local/xcat-test-other\n")
    postinstall = lists(cluster) / "img.postinstall"
    postinstall.write_text(
        "#!/bin/sh\nset -e\n"
        'echo "postinstall says hello"\n'
        'printf "%s\\n" "$@" > "$1/postinstall.args"\n'
        'env | grep ^IMG_ | sort > "$1/postinstall.env"\n'
        'cp "$1/etc/fstab" "$1/fstab.seen"\n'
    )
    postinstall.chmod(0o755)
    rootimgdir = define(
        cluster, "img",
        "#INCLUDE:common/base.pkglist#\n"
        "xcat-test-extra\nxcat-test-kernel\nxcat-test-proc\n"
        "#NEW_INSTALL_LIST#\n"
        "#ENV:XCAT_TEST_PASS=two#\n"
        "-xcat-test-extra\n@xcat-test-group\nxcat-test-docs\n--xcat-test-docs\n",
        otherpkglist=str(otherlist), otherpkgdir=str(otherpkgdir), postinstall=str(postinstall),
    )  # fmt: skip
    cluster.run("chdef", "-t", "osimage", "img", "pkgdir=")  # xCAT's default: the copycds tree

    result = genimage(cluster, "img")

    assert result.returncode == 0, result.stdout + result.stderr
    rootimg = rootimgdir / "rootimg"
    out = result.stdout.splitlines()
    assert out[0] == f"Building a new image in {rootimg}"
    assert out[1] == "Checking that the 6 packages of the pkglist are in the repositories"
    pass_1 = out.index("Packages, pass 1 of 2: installing xcat-test-base xcat-test-extra "
                       "xcat-test-kernel xcat-test-proc")  # fmt: skip
    assert re.fullmatch(r"  done in \d+\.\d s: 4 packages", out[pass_1 + 1])
    assert "Packages, pass 2 of 2: removing xcat-test-extra" in out
    assert "postinstall says hello" in out  # the administrator's script: always shown
    assert re.fullmatch(rf"genimage of img is complete: {rootimg} \(\d+\.\d s\)", out[-1])
    # dnf's own lines are in the log beside the image, not on the screen.
    log = (rootimgdir / "genimage.log").read_text().splitlines()
    assert not any("xcat-test-kernel" in line and "Installing" in line for line in out)
    assert any(line.strip().startswith("Installing") and "xcat-test-kernel" in line
               for line in log)  # fmt: skip
    assert all(line in log for line in out[:-1])  # every phase line, in order
    assert "postinstall says hello" in log
    assert sorted(packages(rootimg)) == [
        "xcat-test-base", "xcat-test-kernel", "xcat-test-member", "xcat-test-other",
        "xcat-test-proc",
    ]  # fmt: skip
    # rpm scriptlets saw /proc, and pass 2's #ENV#.
    assert (rootimg / "var/lib/xcat-test-proc/proc").read_text() == "mounted"
    assert (rootimg / "var/lib/xcat-test-member/env").read_text() == "two"
    assert (local / "repodata/repomd.xml").is_file()  # indexed with createrepo_c
    fstab = (rootimg / "etc/fstab").read_text()
    assert fstab.splitlines()[-1] == "compute_x86_64    /   tmpfs   rw  0 1"
    assert "proc    /proc    proc     defaults       0 0" in fstab
    assert (rootimg / "fstab.seen").read_text() == fstab  # written before postinstall
    assert (rootimg / "postinstall.args").read_text().split() == [
        str(rootimg), "rocky9.4", "x86_64", "compute"]  # fmt: skip
    pkgdir = installdir(cluster) / "rocky9.4/x86_64"
    assert (rootimg / "postinstall.env").read_text().splitlines() == [
        "IMG_ARCH=x86_64",
        f"IMG_KERNELVERSION={KERNEL}",
        "IMG_NAME=img",
        "IMG_OSVER=rocky9.4",
        f"IMG_OTHERPKGDIR={otherpkgdir}",
        f"IMG_OTHERPKGLIST={otherlist}",
        f"IMG_PKGDIR={pkgdir}",
        f"IMG_PKGLIST={lists(cluster) / 'img.pkglist'}",
        "IMG_PROFILE=compute",
        f"IMG_ROOTIMGDIR={rootimgdir}",
    ]
    # The rpm database is where the image's own rpm looks, not in Debian's ~/.rpmdb.
    assert (rootimg / "var/lib/rpm/rpmdb.sqlite").is_file()
    assert not (rootimg / "root/.rpmdb").exists()
    assert not incomplete(rootimgdir)
    assert not host_mounts_under(rootimgdir)
    recorded = attributes(cluster, "img")
    assert {k: recorded[k] for k in ("pkgdir", "pkglist", "otherpkglist", "postinstall",
                                     "rootimgdir", "kernelver", "permission")} == {
        "pkgdir": str(pkgdir),
        "pkglist": str(lists(cluster) / "img.pkglist"),
        "otherpkglist": str(otherlist),
        "postinstall": str(postinstall),
        "rootimgdir": str(rootimgdir),
        "kernelver": KERNEL,
        "permission": "755",
    }  # fmt: skip


def test_progress_counts_packages_and_lines_are_info_records(rocky):
    from xcat_protocol.messages import Done, Output, Progress

    from .sessions import connect

    define(rocky, "counted", "xcat-test-tools\nxcat-test-docs\n")
    connection = connect(rocky)
    request = connection.request("genimage", ["counted"], user="root")
    progress, kinds, warnings = [], set(), []
    while not isinstance(message := connection.receive(), Done):
        if isinstance(message, Progress):
            progress.append((message.what, message.done, message.total, message.unit))
        elif isinstance(message, Output):
            kinds.add(message.kind)
            if message.kind == "warning":
                warnings.append(message.text)
    assert message == Done(request, 0)
    assert kinds == {"info", "warning"}
    # What a real image would have, the test packages lack: said, not fatal.
    assert warnings == [
        "the image has no systemd, so genimage installed no xcatd-report-boot.service: its "
        "nodes will not report booted",
        "genimage made no kernel and no initrd-stateless.gz: the image has no kernel: add the "
        "kernel package (linux-image-<arch>, kernel) to its pkglist",
    ]
    assert ("Installing packages", 3, 3, "packages") in progress
    assert progress[0][1:3] == (1, 3)


def test_update_installs_new_packages_and_upgrades_the_rest_unless_noupdate(rocky, tmp_path):
    cluster = rocky
    rootimgdir = define(cluster, "upd", "xcat-test-base\n")
    assert genimage(cluster, "upd").returncode == 0
    rootimg = rootimgdir / "rootimg"
    (rootimg / "kept-by-hand").write_text("an administrator's change\n")
    # A newer xcat-test-base appears in a new repository of the pkgdir tree.
    updates = installdir(cluster) / "rocky9.4/x86_64/Updates"
    updates.mkdir()
    for rpm in build_rpms(tmp_path / "v11", [Rpm("xcat-test-base", version="1.1")]):
        shutil.copy(rpm, updates)
    run("createrepo_c", "-q", updates)
    (lists(cluster) / "upd.pkglist").write_text("xcat-test-base\nxcat-test-tools\n")

    result = genimage(cluster, "upd")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == f"Updating the existing image {rootimg}"
    assert packages(rootimg) == {"xcat-test-base": "1.1", "xcat-test-tools": "1.0"}
    assert (rootimg / "kept-by-hand").exists()  # updated in place, not rebuilt

    for rpm in build_rpms(tmp_path / "v12", [Rpm("xcat-test-base", version="1.2")]):
        shutil.copy(rpm, updates)
    run("createrepo_c", "-q", "--update", updates)
    (lists(cluster) / "upd.pkglist").write_text("xcat-test-base\nxcat-test-tools\nxcat-test-docs\n")
    result = genimage(cluster, "upd", "--noupdate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert packages(rootimg) == {
        "xcat-test-base": "1.1", "xcat-test-tools": "1.0", "xcat-test-docs": "1.0"}  # fmt: skip
    assert "Upgrading the packages of the image" not in result.stdout


def _start(cluster, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [cluster.env["PATH"].split(":")[0] + "/genimage", *args],
        env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _slow_package_started(root: Path) -> None:
    """Until dnf runs the slow package's scriptlet in `root`."""
    marker = root / "var/lib/xcat-test-slow/started"
    wait_for(marker.exists, f"{marker} to appear", 60)


def test_cancel_of_a_new_build_stops_dnf_and_leaves_no_image(rocky):
    from xcat_protocol.messages import Cancel, Done

    from .sessions import connect

    rootimgdir = define(rocky, "cancelled", "xcat-test-slow\n")
    connection = connect(rocky)
    request = connection.request("genimage", ["cancelled"], user="root")
    _slow_package_started(rootimgdir / STAGING)
    cancelled_at = time.monotonic()
    connection.send(Cancel(request))
    while not isinstance(message := connection.receive(), Done):
        pass
    assert message == Done(request, 130)
    assert time.monotonic() - cancelled_at < 8  # the 8 s scriptlet did not run to its end
    assert not processes_naming(rootimgdir)  # dnf's whole process group is gone
    assert not host_mounts_under(rootimgdir)
    assert not (rootimgdir / "rootimg").exists()
    assert not (rootimgdir / STAGING).exists()
    assert incomplete(rootimgdir)
    # The next genimage builds from scratch.
    (lists(rocky) / "cancelled.pkglist").write_text("xcat-test-base\n")
    result = genimage(rocky, "cancelled")
    assert result.returncode == 0, result.stderr
    assert packages(rootimgdir / "rootimg") == {"xcat-test-base": "1.0"}
    assert not incomplete(rootimgdir)


def test_an_interrupted_update_stays_incomplete_until_genimage_resumes_it(rocky):
    from xcat_protocol.messages import Cancel, Done

    from .sessions import connect

    rootimgdir = define(rocky, "resumed", "xcat-test-base\n")
    assert genimage(rocky, "resumed").returncode == 0
    (lists(rocky) / "resumed.pkglist").write_text("xcat-test-base\nxcat-test-slow\n")
    connection = connect(rocky)
    request = connection.request("genimage", ["resumed"], user="root")
    _slow_package_started(rootimgdir / "rootimg")
    connection.send(Cancel(request))
    while not isinstance(message := connection.receive(), Done):
        pass
    assert message == Done(request, 130)
    assert (rootimgdir / INCOMPLETE).exists() and incomplete(rootimgdir)
    assert not host_mounts_under(rootimgdir)
    (lists(rocky) / "resumed.pkglist").write_text("xcat-test-base\nxcat-test-tools\n")
    result = genimage(rocky, "resumed")
    assert result.returncode == 0, result.stderr
    rootimg = rootimgdir / "rootimg"
    assert result.stdout.splitlines()[0] == f"Resuming the interrupted genimage of {rootimg}"
    assert "xcat-test-tools" in packages(rootimg)
    assert not incomplete(rootimgdir)


def test_two_different_images_build_at_the_same_time(rocky):
    first = define(rocky, "one", "xcat-test-slow\n")
    second = define(rocky, "two", "xcat-test-slow\n")
    started = time.monotonic()
    running = [_start(rocky, "one"), _start(rocky, "two")]
    results = [(p.wait(BUILD_TIMEOUT), *p.communicate()) for p in running]
    assert [rc for rc, _, _ in results] == [0, 0], results
    # Each spent 8 s in its scriptlet; built one after the other it would take 16 s.
    assert time.monotonic() - started < 16
    for rootimgdir in (first, second):
        assert (rootimgdir / "rootimg/var/lib/xcat-test-slow/finished").exists()


def test_the_same_image_twice_at_once_refuses_the_second(rocky):
    rootimgdir = define(rocky, "once", "xcat-test-slow\n")
    first = _start(rocky, "once")
    _slow_package_started(rootimgdir / STAGING)
    second = genimage(rocky, "once")
    assert (second.returncode, second.stderr) == (
        1,
        f"Error: another genimage or a packimage is using {rootimgdir}/rootimg; wait for it "
        "to finish\n",
    )
    assert first.wait(BUILD_TIMEOUT) == 0, first.communicate()
    assert packages(rootimgdir / "rootimg") == {"xcat-test-slow": "1.0"}


def test_packages_that_do_not_exist_are_named_before_anything_is_installed(rocky):
    common = lists(rocky) / "common.pkglist"
    common.write_text("# shared\nxcat-test-base\nxcat-test-nosuch\n")
    rootimgdir = define(
        rocky, "typo",
        "#INCLUDE:common.pkglist#\nxcat-test-slow\n#NEW_INSTALL_LIST#\n@xcat-test-group\n"
        "xcat-test-tools xcat-test-misspelt\n@xcat-test-nogroup\n",
    )  # fmt: skip
    pkglist = lists(rocky) / "typo.pkglist"

    result = genimage(rocky, "typo")

    assert result.returncode == 1
    # Before the first pass: its 8 s scriptlet never ran, no image was started.
    assert result.stderr == (
        f"Error: packages xcat-test-nosuch ({common}:3), xcat-test-misspelt ({pkglist}:5), "
        f"@xcat-test-nogroup ({pkglist}:6) not found in the repositories of typo\n"
    )
    assert result.stdout.splitlines()[-1] == (
        "Checking that the 7 packages of the pkglist are in the repositories"
    )
    assert not (rootimgdir / "rootimg").exists() and not (rootimgdir / STAGING).exists()
    assert not (rootimgdir / INCOMPLETE).exists()


def test_a_finished_image_stays_finished_when_its_new_pkglist_has_a_typo(rocky):
    rootimgdir = define(rocky, "kept", "xcat-test-base\n")
    assert genimage(rocky, "kept").returncode == 0
    (lists(rocky) / "kept.pkglist").write_text("xcat-test-base\nxcat-test-tool\n")
    result = genimage(rocky, "kept")
    assert result.stderr == (
        f"Error: package xcat-test-tool ({lists(rocky) / 'kept.pkglist'}:2) not found in the "
        "repositories of kept\n"
    )
    assert not incomplete(rootimgdir)  # packimage still packs it


def test_a_failing_package_manager_shows_its_last_lines_and_the_log(rocky):
    rootimgdir = define(rocky, "broken", "xcat-test-base\n#NEW_INSTALL_LIST#\nxcat-test-broken\n")
    result = genimage(rocky, "broken")
    assert result.returncode == 1
    assert result.stderr == "Error: dnf install failed with exit code 1\n"
    out = result.stdout.splitlines()
    log = rootimgdir / "genimage.log"
    header = next(i for i, line in enumerate(out) if line.startswith("The last "))
    assert re.fullmatch(rf"The last \d+ lines of its output \(all of it in {log}\):", out[header])
    shown = out[header + 1 :]
    assert 0 < len(shown) <= 20
    assert any("nothing provides xcat-test-absent" in line for line in shown)
    logged = log.read_text().splitlines()
    assert logged[-len(shown) - 2 : -2] == shown  # then "+ exit code 1" and the end
    assert "Installing" not in "\n".join(out[:header])  # pass 1's lines were not shown


def test_verbose_shows_what_the_package_manager_prints(rocky):
    define(rocky, "loud", "xcat-test-tools\n")
    quiet = genimage(rocky, "loud")
    assert quiet.returncode == 0, quiet.stderr
    loud = genimage(rocky, "-V", "loud")
    assert loud.returncode == 0, loud.stderr
    assert len(loud.stdout.splitlines()) > len(quiet.stdout.splitlines()) + 5
    assert "Complete!" in loud.stdout.splitlines()  # dnf's last word
    assert "Complete!" not in quiet.stdout.splitlines()


def test_a_failing_postinstall_is_named_with_its_exit_code(rocky):
    script = lists(rocky) / "failing.postinstall"
    script.write_text("#!/bin/sh\necho trying\nexit 3\n")
    script.chmod(0o755)
    rootimgdir = define(rocky, "failing", "xcat-test-base\n", postinstall=str(script))
    result = genimage(rocky, "failing")
    assert result.returncode == 1
    # (After the warning that the test image has no systemd for the boot report unit.)
    assert result.stderr.splitlines()[-1] == (
        f"Error: postinstall script {script} failed with exit code 3"
    )
    assert "trying" in result.stdout.splitlines()
    assert incomplete(rootimgdir)
    script.write_text("#!/bin/sh\nexit 0\n")
    again = genimage(rocky, "failing")
    assert again.returncode == 0, again.stderr
    assert not incomplete(rootimgdir)


@pytest.mark.parametrize(
    ("attrs", "error"),
    [
        ({"pkgdir": "/nonexistent/pkgdir"}, "pkgdir /nonexistent/pkgdir does not exist"),
        ({"pkgdir": "/etc"}, "pkgdir /etc holds no package repository (no repodata/): "
                             "run copycds of the distribution media first"),
        ({"provmethod": "install"}, "'bad' cannot be used to build a diskless image. Make "
                                    "sure osimage.provmethod is 'netboot' or 'statelite'."),
    ],
)  # fmt: skip
def test_what_cannot_be_built_is_refused(rocky, attrs, error):
    define(rocky, "bad", "xcat-test-base\n", **attrs)
    result = genimage(rocky, "bad")
    assert (result.returncode, result.stderr) == (1, f"Error: {error}\n")


def test_an_unknown_osimage_and_an_unknown_kernel(rocky):
    result = genimage(rocky, "nosuch")
    assert (result.returncode, result.stderr) == (
        1, "Error: Cannot find image 'nosuch' from the osimage table.\n")  # fmt: skip
    define(rocky, "kern", "xcat-test-kernel\n")
    result = genimage(rocky, "-k", "9.9.9", "kern")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (  # after the warning: the image has no systemd
        f"Error: kernel 9.9.9 (-k) is not in the image; it has: {KERNEL}"
    )
    ok = genimage(rocky, "-k", KERNEL, "-n", "virtio_net,e1000", "kern")
    assert ok.returncode == 0, ok.stderr
    recorded = attributes(rocky, "kern")
    assert (recorded["kernelver"], recorded["netdrivers"]) == (KERNEL, "virtio_net,e1000")


def test_onlyinitrd_needs_a_finished_image_with_dracut(rocky):
    define(rocky, "unbuilt", "xcat-test-kernel\n")
    unbuilt = genimage(rocky, "--onlyinitrd", "unbuilt")
    rootimg = installdir(rocky) / "netboot/rocky9.4/x86_64/unbuilt/rootimg"
    assert (unbuilt.returncode, unbuilt.stderr) == (
        1, f"Error: {rootimg} is not a finished image: run genimage unbuilt without "
        "--onlyinitrd\n")  # fmt: skip
    assert genimage(rocky, "unbuilt").returncode == 0  # the test kernel, and no dracut: a warning
    again = genimage(rocky, "--onlyinitrd", "unbuilt")
    assert (again.returncode, again.stderr) == (
        1, "Error: the image has no dracut: add dracut and dracut-network to the pkglist of "
        "unbuilt\n")  # fmt: skip


def test_an_image_holding_a_private_key_is_refused(rocky, tmp_path):
    key = tmp_path / "node.key"
    run("openssl", "genpkey", "-algorithm", "ED25519", "-out", key)
    script = lists(rocky) / "leaky.postinstall"
    script.write_text(f'#!/bin/sh\nmkdir -p "$1/etc/pki"\ncp {key} "$1/etc/pki/node.key"\n')
    script.chmod(0o755)
    rootimgdir = define(rocky, "leaky", "xcat-test-base\n", postinstall=str(script))
    result = genimage(rocky, "leaky")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "Error: the image holds 1 private key file(s), which anyone who can download it can "
        "read: /etc/pki/node.key; remove them (in a postinstall script)"
    )
    assert incomplete(rootimgdir)  # so packimage refuses it


def test_no_disk_space_is_refused_before_building(rocky, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small], check=True)
    try:
        rocky.run("mkdef", "-t", "osimage", "-o", "tiny", "imagetype=linux",
                  "provmethod=netboot", "profile=compute", "osvers=rocky9.4", "osarch=x86_64",
                  f"rootimgdir={small}/tiny")  # fmt: skip
        result = genimage(rocky, "tiny")
        assert result.returncode == 1
        assert result.stderr == (
            f"Error: not enough space on the disk of {small}/tiny: 1 MiB free, genimage needs "
            "at least 512 MiB\n"
        )
    finally:
        subprocess.run(["umount", small], check=True)


def _spec(tmp_path) -> Spec:
    return Spec("x", "rocky9.4", "x86_64", "compute", "rh", tmp_path / "img", "")


def test_not_root_is_refused(tmp_path):
    with pytest.raises(BuildError) as caught:
        preflight(_spec(tmp_path), {}, euid=1000)
    assert str(caught.value) == (
        "genimage must run as root: xcatd runs as uid 1000, and package managers need root "
        "to build an image"
    )


def test_a_missing_tool_names_the_debian_package(tmp_path):
    with pytest.raises(BuildError) as caught:
        preflight(_spec(tmp_path), {"dnf": "dnf", "xcat-no-such-tool": "xcat-tool-pkg"})
    assert str(caught.value) == (
        "xcat-no-such-tool is not installed: install the Debian package xcat-tool-pkg"
    )
