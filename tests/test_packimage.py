"""packimage through the real client against a real daemon.

Each output is unpacked with the standard tools (GNU cpio, GNU tar, bsdtar,
unsquashfs) and compared with the source tree minus the exclusions, where
"the exclusions" are computed the way xCAT computes them: `find . -xdev !
-path ...` plus `find . -path <+ line>`, with the directories above what
stays (which our archives always hold, so that nothing unpacks into a
directory the archive does not describe).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from xcat_protocol.messages import Done, Output, Progress

from .cluster import BIN
from .sessions import connect
from .test_nodeset import make_image
from .waiting import wait_for

FIXED_TIME = 1_600_000_000  # 2020-09-13, so that mtimes are checked, not "now"
EXLIST = """\
# Documentation and translations stay out ...
./usr/share/man*
./usr/share/doc*     # a comment after a pattern
./usr/share/locale*
# ... but one file is put back
+./usr/share/locale/locale.alias
./junk*
#INCLUDE:more.exlist#
"""
MORE_EXLIST = "./tmp/*.tmp\n"


# -- a root image with everything a root image can hold ------------------------


def make_tree(rootimg: Path) -> Path:
    """Files, modes, owners, hard links (one set split by ./junk*), symbolic links
    (dangling, absolute, loops), devices, a fifo, a socket, empty and odd names."""
    rootimg.mkdir(parents=True)
    r = os.fsencode(rootimg)

    def write(rel: str | bytes, data: bytes = b"", mode: int = 0o644, owner=(0, 0)) -> None:
        path = os.path.join(r, os.fsencode(rel))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        os.chown(path, *owner)

    write("bin/tool", os.urandom(1536 * 1024) + b"end", 0o755)  # more than one 1 MiB chunk
    write("bin/suid", b"#!/bin/sh\n", 0o4755)
    write("bin/sgid", b"#!/bin/sh\n", 0o2711)
    write("etc/hostname", b"node01\n")
    write("etc/shadow", b"root:*:1:0:99999:7:::\n", 0o640, (0, 42))
    write("etc/owned", b"someone else's\n", 0o600, (1234, 5678))
    write("etc/cap", b"has an attribute\n")
    os.setxattr(os.path.join(r, b"etc/cap"), "user.xcat-test", b"\x00\x01binary\xff")
    write("usr/share/man/man1/ls.1.gz", b"manual")
    write("usr/share/doc/pkg/README", b"doc")
    write("usr/share/locale/locale.alias", b"alias\n")
    write("usr/share/locale/de/LC_MESSAGES/x.mo", b"mo")
    write("usr/share/misc/keep", b"kept\n")
    write("tmp/a.tmp", b"scratch")
    write("tmp/keep.txt", b"kept")
    os.chmod(os.path.join(r, b"tmp"), 0o1777)
    write("empty")
    write(b"caf\xe9", b"latin-1 name\n")
    write(b"d\xff\xfe/inside", b"in a directory whose name is not UTF-8\n")
    write("name with spaces\tand tab", b"odd\n")
    write("links/one", b"linked data\n" * 100, 0o640, (7, 8))
    os.link(os.path.join(r, b"links/one"), os.path.join(r, b"links/two"))
    os.makedirs(os.path.join(r, b"junk"))
    os.link(os.path.join(r, b"links/one"), os.path.join(r, b"junk/three"))
    write("junk/other", b"junk")
    write("pair/x", b"two links, both kept\n")
    os.link(os.path.join(r, b"pair/x"), os.path.join(r, b"pair/y"))
    os.makedirs(os.path.join(r, b"sym"))
    for name, target in (("rel", "../etc/hostname"), ("abs", "/etc/hostname"),
                         ("dangling", "nowhere/at/all"), ("loop1", "loop2"), ("loop2", "loop1"),
                         ("self", "self"), ("dirloop", ".")):  # fmt: skip
        os.symlink(target, os.path.join(r, b"sym", name.encode()))
    os.makedirs(os.path.join(r, b"dev"))
    os.mknod(os.path.join(r, b"dev/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(os.path.join(r, b"dev/loop0"), 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    os.makedirs(os.path.join(r, b"run"))
    os.mkfifo(os.path.join(r, b"run/initctl"), 0o600)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(os.path.join(r, b"run/daemon.sock"))
    os.makedirs(os.path.join(r, b"opt/xcat"))
    for directory, dirs, files in os.walk(r, topdown=False):
        for name in files + dirs:
            os.utime(os.path.join(directory, name), (FIXED_TIME, FIXED_TIME),
                     follow_symlinks=False)  # fmt: skip
    return rootimg


def write_exlists(where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "more.exlist").write_text(MORE_EXLIST)
    main = where / "service.exlist"
    main.write_text(EXLIST)
    return main


# -- what a tree holds, and what it should hold --------------------------------


def snapshot(root: Path, keep: set[bytes] | None = None, xattrs: bool = True) -> dict:
    """Every entry: path -> its type, mode, owner, contents... and the hard-link sets."""
    entries, inodes = {}, {}
    base = os.fsencode(root)
    for directory, dirs, files in os.walk(base):
        names = dirs + files
        if directory == base:
            names = [b"", *names]
        for name in names:
            path = os.path.join(directory, name) if name else directory
            rel = b"." + path[len(base) :]
            if keep is not None and rel not in keep:
                continue
            st = os.lstat(path)
            mode = st.st_mode
            entry = {"mode": mode, "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISREG(mode):
                with open(path, "rb") as f:
                    entry["sha256"] = hashlib.sha256(f.read()).hexdigest()
                entry["mtime"] = int(st.st_mtime)
                inodes.setdefault(st.st_ino, set()).add(rel)
            elif stat.S_ISLNK(mode):
                entry["target"] = os.readlink(path)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                entry["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            if xattrs and not stat.S_ISLNK(mode):
                entry["xattrs"] = {
                    n: os.getxattr(path, n) for n in os.listxattr(path) if n.startswith("user.")
                }
            entries[rel] = entry
    links = sorted(sorted(group) for group in inodes.values() if len(group) > 1)
    return {"entries": entries, "links": links}


def xcat_selection(rootimg: Path, exlist_text: str = EXLIST + MORE_EXLIST) -> set[bytes]:
    """What xCAT's packimage would pack, by its own method (find), plus the
    directories above each kept path, minus sockets."""
    excludes, includes = [], []
    for line in exlist_text.splitlines():
        line = line.split("#")[0].strip()
        if line:
            (includes if line.startswith("+") else excludes).append(line.lstrip("+"))
    command = ["find", ".", "-xdev"]
    for pattern in excludes:
        command += ["!", "-path", pattern]
    found = subprocess.run([*command, "-print0"], cwd=rootimg, capture_output=True, check=True)
    paths = set(found.stdout.split(b"\0")) - {b""}
    if includes:
        command = ["find", ".", "-xdev", "("]
        for i, pattern in enumerate(includes):
            command += (["-o"] if i else []) + ["-path", pattern]
        command += [")", "-print0"]
        found = subprocess.run(command, cwd=rootimg, capture_output=True, check=True)
        paths |= set(found.stdout.split(b"\0")) - {b""}
    for path in list(paths):
        while b"/" in path:
            path = path.rpartition(b"/")[0]
            paths.add(path)
    base = os.fsencode(rootimg)
    return {p for p in paths if not stat.S_ISSOCK(os.lstat(base + p[1:]).st_mode)}


def unpack(archive: Path, into: Path) -> None:
    """Unpack with the standard tool for the archive's kind."""
    name = archive.name
    if name == "rootimg.sfs":
        subprocess.run(["unsquashfs", "-no-progress", "-d", str(into), str(archive)],
                       check=True, capture_output=True)  # fmt: skip
        return
    into.mkdir()
    if name.startswith("rootimg.cpio."):
        decompress = {"gz": "gzip", "xz": "xz", "zst": "zstd"}[name.rsplit(".", 1)[1]]
        subprocess.run(f"{decompress} -dc {archive} | cpio -idm --quiet", shell=True,
                       cwd=into, check=True)  # fmt: skip
    elif name.endswith(".zst"):  # bsdtar, for a change
        subprocess.run(["bsdtar", "--xattrs", "--numeric-owner", "-xpf", str(archive)],
                       cwd=into, check=True)  # fmt: skip
    else:  # GNU tar
        subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf",
                        str(archive)], cwd=into, check=True)  # fmt: skip


def compare(source: Path, unpacked: Path, keep: set[bytes], *, xattrs: bool) -> None:
    expected = snapshot(source, keep, xattrs)
    got = snapshot(unpacked, None, xattrs)
    assert sorted(got["entries"]) == sorted(expected["entries"])
    for rel, entry in expected["entries"].items():
        have = got["entries"][rel]
        if rel == b".":  # the unpacking directory: its mode and owner only
            entry = {k: v for k, v in entry.items() if k in ("mode", "uid", "gid")}
            have = {k: v for k, v in have.items() if k in ("mode", "uid", "gid")}
        assert have == entry, rel
    assert got["links"] == expected["links"]


# -- fixtures -------------------------------------------------------------------


@pytest.fixture
def image(shared_cluster, tmp_path):
    """A new osimage whose rootimg is the tree above, with the exlist."""
    name = f"img-{uuid.uuid4().hex[:12]}"
    rootimgdir = tmp_path / "netboot" / "service"
    make_tree(rootimgdir / "rootimg")
    exlist = write_exlists(tmp_path / "custom")
    made = shared_cluster.run("mkdef", "-t", "osimage", "-o", name, "provmethod=netboot",
                              f"rootimgdir={rootimgdir}", f"exlist={exlist}")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return name, rootimgdir


def attributes(cluster, name: str) -> dict[str, str]:
    shown = cluster.run("lsdef", "-t", "osimage", "-l", name)
    return dict(line.strip().split("=", 1) for line in shown.stdout.splitlines()[1:])


# -- every format, unpacked and compared ---------------------------------------

FORMATS = [
    ("cpio", "gzip", "rootimg.cpio.gz"),
    ("cpio", "xz", "rootimg.cpio.xz"),
    ("cpio", "zstd", "rootimg.cpio.zst"),
    ("tar", "gzip", "rootimg.tar.gz"),
    ("tar", "xz", "rootimg.tar.xz"),
    ("tar", "zstd", "rootimg.tar.zst"),
    ("squashfs", "gzip", "rootimg.sfs"),
    ("squashfs", "xz", "rootimg.sfs"),
    ("squashfs", "zstd", "rootimg.sfs"),
]


@pytest.mark.parametrize(("method", "compression", "output"), FORMATS)
def test_each_format_unpacks_to_the_tree_minus_the_exclusions(
    shared_cluster, image, tmp_path, method, compression, output
):
    name, rootimgdir = image
    result = shared_cluster.run("packimage", "-m", method, "-c", compression, name)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"Packing contents of {rootimgdir}/rootimg",
        f"archive method:{method}",
        f"compress method:{compression}",
    ]
    assert "Note: left out 1 socket(s), which no archive can hold: ./run/daemon.sock" in lines
    assert lines[-1].startswith(f"Packed {rootimgdir}/{output}: ")
    assert [p.name for p in sorted(rootimgdir.iterdir())] == [
        ".genimage.lock", ".packimage.lock", "rootimg", output, f"{output}.sha256"]  # fmt: skip
    rootimg = rootimgdir / "rootimg"
    keep = xcat_selection(rootimg)
    assert b"./usr/share/locale/locale.alias" in keep and b"./junk/three" not in keep
    unpacked = tmp_path / "unpacked"
    unpack(rootimgdir / output, unpacked)
    compare(rootimg, unpacked, keep, xattrs=method != "cpio")
    if method == "cpio":  # a second, independent reader of the format: libarchive
        again = tmp_path / "bsdtar"
        again.mkdir()
        subprocess.run(["bsdtar", "--numeric-owner", "-xpf", str(rootimgdir / output)],
                       cwd=again, check=True)  # fmt: skip
        compare(rootimg, again, keep, xattrs=False)


def test_a_hard_link_set_split_by_an_exclusion_counts_only_the_links_it_holds(
    shared_cluster, image
):
    name, rootimgdir = image
    assert shared_cluster.run("packimage", name).returncode == 0
    listing = subprocess.run(f"gzip -dc {rootimgdir}/rootimg.cpio.gz | cpio -itv --quiet",
                             shell=True, capture_output=True, check=True)  # fmt: skip
    lines = listing.stdout.decode(errors="replace").splitlines()
    rows = {line.split()[-1]: line.split() for line in lines}
    # ./links/one and ./links/two are kept, ./junk/three is not: two links.
    assert rows["./links/one"][1] == rows["./links/two"][1] == "2"
    assert rows["./pair/x"][1] == rows["./pair/y"][1] == "2"
    # The data goes once, with the last link (GNU cpio's way).
    sizes = (rows["./links/one"][4], rows["./links/two"][4])
    assert sizes == ("0", str(len(b"linked data\n") * 100))


def test_the_pack_is_recorded_with_a_checksum_file_and_xcatinfo(shared_cluster, image):
    name, rootimgdir = image
    assert shared_cluster.run("packimage", "-c", "pigz", name).returncode == 0
    packed = rootimgdir / "rootimg.cpio.gz"
    digest = hashlib.sha256(packed.read_bytes()).hexdigest()
    assert (rootimgdir / "rootimg.cpio.gz.sha256").read_text() == f"{digest}  rootimg.cpio.gz\n"
    subprocess.run(["sha256sum", "-c", "--quiet", "rootimg.cpio.gz.sha256"], cwd=rootimgdir,
                   check=True)  # fmt: skip
    assert stat.S_IMODE(packed.stat().st_mode) == 0o644
    recorded = attributes(shared_cluster, name)
    assert recorded["packfile"] == str(packed)
    assert (recorded["packmethod"], recorded["packcompression"]) == ("cpio", "gzip")
    assert recorded["packsize"] == str(packed.stat().st_size)
    assert recorded["packsha256"] == digest
    assert time.strptime(recorded["packtime"], "%m-%d-%Y %H:%M:%S")
    info = (rootimgdir / "rootimg/opt/xcat/xcatinfo").read_text().splitlines()
    assert info[0] == f"IMAGENAME='{name}'"
    assert info[1] == f"IMAGEUUID='{recorded['packuuid']}'"
    assert info[2].startswith("TIMESTAMP='") and info[2].endswith("'")
    # And the image that was packed holds that same file.
    listing = subprocess.run(f"gzip -dc {packed} | cpio -i --to-stdout ./opt/xcat/xcatinfo",
                             shell=True, capture_output=True, check=True)  # fmt: skip
    assert listing.stdout.decode().splitlines() == info


def test_a_new_pack_replaces_the_old_files_only_once_it_is_complete(shared_cluster, image):
    name, rootimgdir = image
    (rootimgdir / "rootimg.gz").write_text("xCAT's old name")
    assert shared_cluster.run("packimage", name).returncode == 0
    assert shared_cluster.run("packimage", "-m", "tar", "-c", "zstd", name).returncode == 0
    assert sorted(p.name for p in rootimgdir.iterdir()) == [".genimage.lock", ".packimage.lock",
        "rootimg", "rootimg.tar.zst", "rootimg.tar.zst.sha256"]  # fmt: skip
    recorded = attributes(shared_cluster, name)
    assert (recorded["packmethod"], recorded["packcompression"]) == ("tar", "zstd")


def test_progress_frames_count_bytes_read_up_to_the_total(shared_cluster, image):
    name, _ = image
    connection = connect(shared_cluster)
    try:
        request_id = connection.request("packimage", [name], user="root")
        frames, rc = [], None
        while rc is None:
            message = connection.receive()
            if isinstance(message, Progress) and message.id == request_id:
                frames.append(message)
            elif isinstance(message, Done) and message.id == request_id:
                rc = message.rc
            elif isinstance(message, Output) and message.kind == "error":
                raise AssertionError(message.text)
    finally:
        connection.close()
    assert rc == 0
    assert {(f.what, f.unit) for f in frames} == {("Packing", "bytes")}
    assert [f.done for f in frames] == sorted(f.done for f in frames)
    assert frames[-1].done == frames[-1].total > 1536 * 1024


# -- the exlist cases ------------------------------------------------------------


def _pack_with_exlist(cluster, name: str, rootimgdir: Path, text: str) -> set[bytes]:
    exlist = rootimgdir / "test.exlist"
    exlist.write_text(text)
    assert cluster.run("chdef", "-t", "osimage", "-o", name, f"exlist={exlist}").returncode == 0
    result = cluster.run("packimage", "-c", "zstd", name)
    assert result.returncode == 0, result.stderr
    listing = subprocess.run(f"zstd -dc {rootimgdir}/rootimg.cpio.zst | cpio -it --quiet",
                             shell=True, capture_output=True, check=True)  # fmt: skip
    return set(listing.stdout.split(b"\n")) - {b""}


def test_an_empty_exlist_packs_everything_but_the_socket(shared_cluster, image):
    name, rootimgdir = image
    packed = _pack_with_exlist(shared_cluster, name, rootimgdir, "")
    everything = xcat_selection(rootimgdir / "rootimg", "")
    assert packed == everything
    assert b"./run/daemon.sock" not in packed and b"./junk/three" in packed


def test_an_exlist_that_excludes_everything_but_one_plus_line(shared_cluster, image):
    name, rootimgdir = image
    text = "./*\n+./etc/hostname\n"
    packed = _pack_with_exlist(shared_cluster, name, rootimgdir, text)
    assert packed == {b".", b"./etc", b"./etc/hostname"}
    assert packed == xcat_selection(rootimgdir / "rootimg", text)


def test_a_missing_exlist_is_an_error_and_nothing_is_packed(shared_cluster, image):
    name, rootimgdir = image
    chdef = shared_cluster.run("chdef", "-t", "osimage", "-o", name, "exlist=/nonexistent.exlist")
    assert chdef.returncode == 0
    result = shared_cluster.run("packimage", name)
    assert result.returncode == 1
    assert result.stderr == "Error: exlist /nonexistent.exlist does not exist\n"
    assert not list(rootimgdir.glob("rootimg.*"))


# -- refusals, failures and cancels ---------------------------------------------


def test_only_netboot_and_statelite_images_are_packed(shared_cluster, tmp_path):
    made = shared_cluster.run("mkdef", "-t", "osimage", "-o", "installer", "provmethod=install",
                              f"rootimgdir={tmp_path}")  # fmt: skip
    assert made.returncode == 0
    result = shared_cluster.run("packimage", "installer")
    assert result.returncode == 1
    assert result.stderr == (
        "Error: 'installer' cannot be used to build a diskless image. "
        "Make sure osimage.provmethod is 'netboot' or 'statelite'.\n"
    )
    missing = shared_cluster.run("packimage", "nosuchimage")
    assert (missing.returncode, missing.stderr) == (
        1, "Error: Cannot find image 'nosuchimage' from the osimage table.\n")  # fmt: skip
    unbuilt = shared_cluster.run("mkdef", "-t", "osimage", "-o", "unbuilt",
                                 "provmethod=statelite", f"rootimgdir={tmp_path}/x")  # fmt: skip
    assert unbuilt.returncode == 0
    result = shared_cluster.run("packimage", "unbuilt")
    assert result.returncode == 1
    assert f"{tmp_path}/x/rootimg does not exist, run genimage unbuilt first" in result.stderr
    bad = shared_cluster.run("packimage", "-c", "bzip2", "unbuilt")
    assert bad.returncode == 1 and "invalid choice: 'bzip2'" in bad.stderr


def _previous_pack(cluster, name: str, rootimgdir: Path) -> dict[str, bytes]:
    assert cluster.run("packimage", name).returncode == 0
    return {p.name: p.read_bytes() for p in rootimgdir.glob("rootimg.*") if p.is_file()}


def _untouched(cluster, name, rootimgdir: Path, before: dict[str, bytes], recorded: dict) -> None:
    after = {p.name: p.read_bytes() for p in rootimgdir.glob("rootimg.*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in rootimgdir.iterdir() if p.name.startswith(".")) == [
        ".genimage.lock", ".packimage.lock"]  # no temporary file left behind  # fmt: skip
    assert attributes(cluster, name) == recorded


def test_a_file_cpio_cannot_hold_fails_the_pack_and_keeps_the_previous_image(shared_cluster, image):
    name, rootimgdir = image
    before = _previous_pack(shared_cluster, name, rootimgdir)
    recorded = attributes(shared_cluster, name)
    with open(rootimgdir / "rootimg/bin/huge", "wb") as huge:
        huge.truncate(4 << 30)  # sparse: 4 GiB that take no disk
    result = shared_cluster.run("packimage", "-c", "zstd", name)
    assert result.returncode == 1
    assert result.stderr == (
        "Error: cpio (newc) cannot hold files of 4 GiB or more: ./bin/huge (4,294,967,296 "
        "bytes). Leave them out with the exlist, or pack with -m tar or -m squashfs.\n"
    )
    _untouched(shared_cluster, name, rootimgdir, before, recorded)


def test_a_cancelled_pack_leaves_the_previous_image_untouched(shared_cluster, image):
    name, rootimgdir = image
    before = _previous_pack(shared_cluster, name, rootimgdir)
    recorded = attributes(shared_cluster, name)
    (rootimgdir / "rootimg/bin/random").write_bytes(os.urandom(96 << 20))  # xz takes seconds
    client = subprocess.Popen([BIN / "packimage", "-c", "xz", name], env=shared_cluster.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    partial = ".rootimg.cpio.xz.packimage-*"

    def writing() -> bool:
        assert client.poll() is None, client.communicate()
        return any(rootimgdir.glob(partial))

    wait_for(writing, "the pack writing", 30, interval=0.02)
    client.send_signal(signal.SIGINT)
    _, stderr = client.communicate(timeout=30)
    assert client.returncode == 130, stderr
    wait_for(lambda: not any(rootimgdir.glob(partial)), "the cancelled pack's file removed", 30)
    _untouched(shared_cluster, name, rootimgdir, before, recorded)
    # The lock went with it: the next pack runs.
    (rootimgdir / "rootimg/bin/random").unlink()
    assert shared_cluster.run("packimage", "-c", "zstd", name).returncode == 0


def test_one_pack_per_image_at_a_time(shared_cluster, image):
    name, rootimgdir = image
    with (rootimgdir / ".packimage.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a packimage in another process would
        result = shared_cluster.run("packimage", name)
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: another packimage is packing {rootimgdir}; wait for it to finish\n"
    )
    assert not list(rootimgdir.glob("rootimg.*"))


def test_no_pack_while_genimage_builds_or_after_it_failed(shared_cluster, image):
    name, rootimgdir = image
    with (rootimgdir / ".genimage.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as genimage holds it while it builds
        result = shared_cluster.run("packimage", name)
    assert (result.returncode, result.stderr) == (1, (
        f"Error: genimage is building {rootimgdir}/rootimg; pack it when genimage has "
        "finished\n"))  # fmt: skip
    (rootimgdir / ".genimage.incomplete").touch()  # what an interrupted genimage leaves
    result = shared_cluster.run("packimage", name)
    assert (result.returncode, result.stderr) == (1, (
        f"Error: the last genimage of {rootimgdir}/rootimg did not finish; run genimage "
        f"{name} again before packing\n"))  # fmt: skip
    assert not list(rootimgdir.glob("rootimg.*"))


def test_synclists_go_into_the_image_unless_nosyncfiles(shared_cluster, image, tmp_path):
    name, rootimgdir = image
    (tmp_path / "resolv.conf").write_text("nameserver 10.0.0.1\n")
    synclist = tmp_path / "image.synclist"
    synclist.write_text(f"{tmp_path}/resolv.conf -> /etc/resolv.conf\n")
    chdef = shared_cluster.run("chdef", "-t", "osimage", "-o", name, f"synclists={synclist}")
    assert chdef.returncode == 0, chdef.stderr
    skipped = shared_cluster.run("packimage", "--nosyncfiles", name)
    assert skipped.returncode == 0, skipped.stderr
    assert not (rootimgdir / "rootimg/etc/resolv.conf").exists()
    synced = shared_cluster.run("packimage", name)
    assert synced.returncode == 0, synced.stderr
    extract = f"gzip -dc {rootimgdir}/rootimg.cpio.gz | cpio -i --to-stdout ./etc/resolv.conf"
    packed = subprocess.run(extract, shell=True, capture_output=True, check=True)
    assert packed.stdout == b"nameserver 10.0.0.1\n"


# -- the nodes that boot the image ---------------------------------------------------


def test_a_pack_writes_again_the_boot_files_of_the_nodes_set_to_the_image(shared_cluster):
    cluster = shared_cluster
    rootimgdir = make_image(cluster, "refreshed")  # packed: rootimg.cpio.zst
    cluster.ok("mkdef", "pk[1-3]", "groups=packed", "mac=|pk(\\d+)|52:54:00:00:30:0($1)|",
               "ip=|pk(\\d+)|127.0.30.($1)|")  # fmt: skip
    cluster.ok("chdef", "pk3", "netboot=pxe")
    cluster.ok("nodeset", "pk1,pk2", "osimage=refreshed")
    cluster.ok("nodeset", "pk2", "boot")  # its provmethod stays; it boots from its disk
    ipxe = cluster.root / "tftpboot/xcat/xnba/nodes/pk1"
    url = f"imgurl=http://127.0.0.1:{cluster.http_port}{rootimgdir}"
    assert f"{url}/rootimg.cpio.zst " in ipxe.read_text()

    packed = cluster.ok("packimage", "-m", "squashfs", "refreshed").splitlines()
    assert packed[-2].startswith(f"Packed {rootimgdir}/rootimg.sfs: ")
    assert packed[-1] == "packimage: updated the boot files of 1 node set to refreshed"
    assert not (rootimgdir / "rootimg.cpio.zst").exists()
    assert f"{url}/rootimg.sfs " in ipxe.read_text()
    assert (cluster.root / "tftpboot/xcat/xnba/nodes/pk2").read_text() == "#!ipxe\n#boot\nexit\n"

    # pxelinux reads its file over TFTP, as it is on disk: it is written again too.
    cluster.ok("nodeset", "pk3", "osimage=refreshed")
    packed = cluster.ok("packimage", "-m", "tar", "-c", "zstd", "refreshed").splitlines()
    assert packed[-1] == "packimage: updated the boot files of 2 nodes set to refreshed"
    pxelinux = (cluster.root / "tftpboot/pxelinux.cfg/pk3").read_text()
    assert f"{url}/rootimg.tar.zst " in pxelinux and "rootimg.sfs" not in pxelinux
    assert f"{url}/rootimg.tar.zst " in ipxe.read_text()
    assert cluster.ok("nodeset", "packed", "stat") == (
        "pk1: netboot debian12-x86_64-service\npk2: boot\npk3: netboot debian12-x86_64-service\n"
    )


def test_a_node_whose_boot_files_cannot_be_written_again_is_named(shared_cluster):
    cluster = shared_cluster
    make_image(cluster, "refused")
    cluster.ok("mkdef", "pk9", "groups=packed", "mac=52:54:00:00:30:09", "ip=127.0.30.9")
    cluster.ok("nodeset", "pk9", "osimage=refused")
    cluster.ok("chdef", "pk9", "tftpserver=-oops")  # taken by chdef, refused by nodeset
    result = cluster.run("packimage", "refused")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith("Packed ")
    assert result.stderr == "pk9: Error: tftpserver '-oops' is not an IP address or host name\n"


def test_h_v_and_no_image_in_xcats_words(shared_cluster):
    assert shared_cluster.outcome("packimage", "-h") == (
        0,
        "Usage:\n   packimage [-m| --method=cpio|tar|squashfs] [-c| --compress=gzip|pigz|xz|zstd] "
        "[--nosyncfiles] <imagename>\n   packimage [-h| --help]\n   packimage [-v| --version]\n",
        "",
    )
    assert shared_cluster.outcome("packimage", "-v") == (0, "Version 0.1.0\n", "")
    assert shared_cluster.outcome("packimage") == (
        1, "", "Error: An image name is required, use 'packimage <osimage name>'.\n"
    )  # fmt: skip
