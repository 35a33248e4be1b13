"""The pure parts of packimage, and packing called directly where a test must
reach into the middle of a pack (files that vanish or change while read)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

from xcatd.images.pack import exlist as exlists
from xcatd.images.pack import sync as packsync
from xcatd.images.pack.compress import Sink
from xcatd.images.pack.cpio import header, trailer, write_cpio
from xcatd.images.pack.exlist import Exlist, ExlistError, Selector, glob_regex, read_lists
from xcatd.images.pack.packimage import PackRequest, pack
from xcatd.images.pack.tree import Meter, OpenFile, PackError, TreeChanged, survey, walk
from xcatd.images.rootfiles import RootFileError, write_in_image

# -- exlist parsing ---------------------------------------------------------------


def exlist(tmp_path: Path, text: str) -> Exlist:
    listed = tmp_path / "list.exlist"
    listed.write_text(text)
    return read_lists([listed])


def test_comments_blank_lines_plus_and_minus_lines(tmp_path):
    text = """
# a comment
./usr/share/man*
./usr/share/doc*   # trailing comment
   ./var/log/*.log
-./boot/*.old
+./usr/share/doc/copyright
/opt/absolute*
+/opt/absolute/keep
"""
    parsed = exlist(tmp_path, text)
    assert parsed.exclude == ["./usr/share/man*", "./usr/share/doc*", "./var/log/*.log",
                              "./boot/*.old", "./opt/absolute*"]  # fmt: skip
    assert parsed.include == ["./usr/share/doc/copyright", "./opt/absolute/keep"]


def test_lists_combine_in_order_with_includes_and_any_bytes(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "main.exlist").write_text("./a* #INCLUDE:sub/one.exlist# ./z*\n")
    (tmp_path / "sub/one.exlist").write_text("./b*\n+./b/keep # kept\n")
    (tmp_path / "more.exlist").write_bytes(b"./caf\xe9*\n")
    combined = read_lists([tmp_path / "main.exlist", tmp_path / "more.exlist"])
    assert combined.exclude == ["./a*", "./b*", "./z*", os.fsdecode(b"./caf\xe9*")]
    assert combined.include == ["./b/keep"]
    assert not Selector(combined).keeps(b"./caf\xe9/x")
    with pytest.raises(ExlistError, match=f"^exlist {tmp_path}/gone does not exist$"):
        read_lists([tmp_path / "gone"])


def test_an_empty_list_keeps_everything(tmp_path):
    selector = Selector(exlist(tmp_path, ""))
    assert selector.keeps(b".") and selector.keeps(b"./usr/share/man")
    assert not selector.drops_below(b"./usr")


# -- matching, checked against GNU find itself ----------------------------------

NAMES = [b"usr/share/man/man1/ls.1.gz", b"usr/share/manpages", b"usr/share/doc/a/README",
         b"var/log/syslog.log", b"var/log/sub/x.log", b"etc/a1", b"etc/b2", b"etc/c3",
         b"etc/star*name", b"etc/q?mark", b"etc/[br]acket", b"caf\xe9/x",
         b"etc/.hidden"]  # fmt: skip
PATTERNS = ["./usr/share/man*", "./usr/*/doc", "*.log", "./var/log/*.log", "./etc/[ab]?",
            "./etc/[!ab]3", "./etc/[^a]1", "./etc/star\\*name", "./etc/q\\?mark",
            "./etc/\\[br]acket", "./etc/[br", "./caf?/*", "*/.hidden", "./etc/?1", "."]  # fmt: skip


@pytest.fixture(scope="module")
def named_tree(tmp_path_factory):
    root = os.fsencode(tmp_path_factory.mktemp("names"))
    for name in NAMES:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()
    return root


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_glob_matches_what_find_path_matches(named_tree, pattern):
    found = subprocess.run(["find", ".", "-path", pattern, "-print0"], cwd=named_tree,
                           capture_output=True, check=True).stdout  # fmt: skip
    expected = set(found.split(b"\0")) - {b""}
    every = subprocess.run(["find", ".", "-print0"], cwd=named_tree, capture_output=True,
                           check=True).stdout.split(b"\0")  # fmt: skip
    regex = exlists._compile([os.fsencode(pattern)])
    assert {p for p in every if p and regex.fullmatch(p)} == expected


def test_glob_regex_is_a_full_path_match():
    assert glob_regex(b"./a*") == b"\\./a.*"


def test_what_the_selector_prunes_and_what_it_must_walk():
    selector = Selector(Exlist(exclude=["./usr/share/man*", "./var/log/*.log", "./opt*"],
                               include=["./opt/xcat/keep*"]))  # fmt: skip
    assert selector.drops_below(b"./usr/share/man")
    assert selector.drops_below(b"./usr/share/man/man1")
    assert not selector.keeps(b"./usr/share/man/man1/ls.1.gz")
    assert not selector.drops_below(b"./var/log")  # not excluded as a whole
    assert not selector.keeps(b"./var/log/syslog.log") and selector.keeps(b"./var/log/x.gz")
    # ./opt is excluded, but a + line reaches below it.
    assert not selector.drops_below(b"./opt") and not selector.drops_below(b"./opt/xcat")
    assert selector.drops_below(b"./opt/other")
    assert selector.keeps(b"./opt/xcat/keep/x") and not selector.keeps(b"./opt/xcat/other")
    # A + line that could match anywhere ('*.conf') means nothing can be skipped.
    anywhere = Selector(Exlist(exclude=["./usr*"], include=["*.conf"]))
    assert not anywhere.drops_below(b"./usr") and anywhere.keeps(b"./usr/a.conf")


def test_the_walk_keeps_the_directories_above_what_stays(tmp_path):
    for rel in ("a/b/c/file", "a/other", "z"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    selector = Selector(Exlist(exclude=["./*"], include=["./a/b/c/file"]))
    walked = [rel for rel, _ in walk(os.fsencode(tmp_path), selector)]
    assert walked == [b".", b"./a", b"./a/b", b"./a/b/c", b"./a/b/c/file"]
    everything = [rel for rel, _ in walk(os.fsencode(tmp_path), Selector())]
    assert everything == [b".", b"./a", b"./a/b", b"./a/b/c", b"./a/b/c/file", b"./a/other",
                          b"./z"]  # fmt: skip


def test_the_walk_does_not_go_into_other_file_systems(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname").write_text("x")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "none", str(tmp_path / "proc")],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        (tmp_path / "proc/1").write_text("not part of the image")
        walked = [rel for rel, _ in walk(os.fsencode(tmp_path), Selector())]
    finally:
        subprocess.run(["umount", str(tmp_path / "proc")], check=True)
    assert walked == [b".", b"./etc", b"./etc/hostname", b"./proc"]


# -- the cpio format ------------------------------------------------------------------


def test_a_newc_header_as_gnu_cpio_writes_it():
    block = header(b"./etc/hostname", ino=5, mode=0o100644, uid=1, gid=2, nlink=1,
                   mtime=0x5F5E1000, size=7)  # fmt: skip
    assert block[:110] == (b"070701" + b"00000005" + b"000081A4" + b"00000001" + b"00000002"
                           + b"00000001" + b"5F5E1000" + b"00000007" + b"00000000" * 4
                           + b"0000000F" + b"00000000")  # fmt: skip
    assert block[110:] == b"./etc/hostname" + b"\0" * 4  # NUL, then up to 128 = 110 + 14 + 4
    assert header(b"x", ino=1, mode=0, mtime=-5)[46:54] == b"00000000"  # times clamped
    assert header(b"x", ino=1, mode=0, mtime=1 << 40)[46:54] == b"FFFFFFFF"


def test_the_trailer_pads_the_archive_to_512_bytes():
    for written in (0, 4, 400, 512, 1000):
        assert (written + len(trailer(written))) % 512 == 0
    assert trailer(0).startswith(b"070701") and b"TRAILER!!!\0" in trailer(0)


class _Collect(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def _put(self, data: bytes) -> None:
        self.data += data

    def finish(self) -> bytes:
        self._drain()
        return bytes(self.data)


def _cpio_bytes(root: Path, selector: Selector | None = None) -> bytes:
    selector = selector or Selector()
    found = survey(os.fsencode(root), selector)
    sink = _Collect()
    meter = Meter(found.total_bytes, lambda done, total: None, lambda: None)
    write_cpio(os.fsencode(root), selector, found, sink, meter, lambda: None)
    return sink.finish()


def _entries(archive: bytes) -> list[dict]:
    """A small newc reader: each entry's fields, name and data."""
    entries, at = [], 0
    while True:
        assert archive[at : at + 6] == b"070701"
        fields = [int(archive[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        keys = ("ino", "mode", "uid", "gid", "nlink", "mtime", "size", "devmajor", "devminor",
                "rdevmajor", "rdevminor", "namesize", "check")  # fmt: skip
        entry = dict(zip(keys, fields, strict=True))
        name_end = at + 110 + entry["namesize"] - 1
        entry["name"] = archive[at + 110 : name_end]
        at = (name_end + 1 + 3) & ~3
        entry["data"] = archive[at : at + entry["size"]]
        at = (at + entry["size"] + 3) & ~3
        if entry["name"] == b"TRAILER!!!":
            assert set(archive[at:]) <= {0} and len(archive) % 512 == 0
            return entries
        entries.append(entry)


def test_the_archive_is_the_same_on_every_run_and_links_share_one_inode(tmp_path):
    (tmp_path / "d/sub").mkdir(parents=True)
    (tmp_path / "d/a").write_bytes(b"A" * 5000)
    os.link(tmp_path / "d/a", tmp_path / "d/b")
    os.link(tmp_path / "d/a", tmp_path / "z")
    (tmp_path / "d/sub/c").write_bytes(b"")
    os.symlink("sub/c", tmp_path / "d/link")
    first = _cpio_bytes(tmp_path)
    assert _cpio_bytes(tmp_path) == first
    entries = {e["name"]: e for e in _entries(first)}
    assert list(entries) == [b".", b"./d", b"./d/a", b"./d/b", b"./d/link", b"./d/sub",
                             b"./d/sub/c", b"./z"]  # fmt: skip
    a, b, z = entries[b"./d/a"], entries[b"./d/b"], entries[b"./z"]
    assert a["ino"] == b["ino"] == z["ino"] and a["nlink"] == b["nlink"] == z["nlink"] == 3
    assert (a["size"], b["size"], z["data"]) == (0, 0, b"A" * 5000)
    inos = [e["ino"] for name, e in entries.items() if name not in (b"./d/b", b"./z")]
    assert len(set(inos)) == len(inos)  # unique otherwise
    assert entries[b"./d/link"]["data"] == b"sub/c"
    assert entries[b"./d"]["nlink"] == 3 and entries[b"./d/sub"]["nlink"] == 2  # 2 + subdirs
    # Leave ./z out: the set has two links in the archive, the data on ./d/b.
    split = _entries(_cpio_bytes(tmp_path, Selector(Exlist(exclude=["./z"]))))
    held = {e["name"]: e for e in split}
    assert b"./z" not in held
    assert held[b"./d/a"]["nlink"] == held[b"./d/b"]["nlink"] == 2
    assert held[b"./d/b"]["data"] == b"A" * 5000


# -- files that change while they are packed -------------------------------------


@pytest.fixture
def packed_once(tmp_path):
    """A root image packed once (the image nodes boot now) and a way to pack it again."""
    rootimg = tmp_path / "rootimg"
    rootimg.mkdir()
    (rootimg / "a-big").write_bytes(os.urandom(3 << 20))
    (rootimg / "b-small").write_bytes(b"small\n")
    (rootimg / "c-linked").write_bytes(b"linked\n")
    os.link(rootimg / "c-linked", rootimg / "d-linked")
    pack(PackRequest("img", tmp_path, "cpio", "zstd"))
    before = {p.name: p.read_bytes() for p in tmp_path.glob("rootimg.*")}
    return tmp_path, before


def _pack_while(tmp_path: Path, change, method: str = "cpio", *, reading: bool = True) -> None:
    """Pack, calling `change()` once: when reading has begun (the first progress
    report after some bytes), or else between the survey and the writing."""
    calls = []

    def progress(done: int, total: int) -> None:
        if not calls and (done > 0 or not reading):
            calls.append(done)
            change()

    pack(PackRequest("img", tmp_path, method, "zstd"), progress, progress_every=1)


def _left_as_it_was(tmp_path: Path, before: dict[str, bytes]) -> None:
    assert {p.name: p.read_bytes() for p in tmp_path.glob("rootimg.*")} == before
    assert [p.name for p in tmp_path.iterdir() if ".packimage-" in p.name] == []


@pytest.mark.parametrize("method", ["cpio", "tar"])
@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda r: (r / "b-small").unlink(), "./b-small vanished"),
        (lambda r: os.truncate(r / "a-big", 1000), "./a-big shrank"),
        (lambda r: (r / "a-big").open("ab").write(b"more"), "./a-big was modified"),
        (lambda r: os.utime(r / "a-big", (0, 0)), "./a-big was modified"),
    ],
)  # fmt: skip
def test_a_file_that_changes_during_the_pack_stops_it_and_keeps_the_old_image(
    packed_once, change, said, method
):
    tmp_path, before = packed_once
    with pytest.raises(TreeChanged, match=f"^{said} while the image was being packed"):
        _pack_while(tmp_path, lambda: change(tmp_path / "rootimg"), method)
    _left_as_it_was(tmp_path, before)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: (r / "d-linked").unlink(),  # a link less
        lambda r: os.link(r / "c-linked", r / "e-linked"),  # a link more
    ],
)
def test_hard_links_that_change_after_the_survey_stop_the_pack(packed_once, change):
    tmp_path, before = packed_once
    with pytest.raises(TreeChanged, match=r"the hard links of \./[cde]-linked changed"):
        _pack_while(tmp_path, lambda: change(tmp_path / "rootimg"), reading=False)
    _left_as_it_was(tmp_path, before)


def test_a_file_replaced_before_it_is_reached_is_packed_as_it_is_then(packed_once):
    """Consistent, not an error: the archive holds what the walk found."""
    tmp_path, _ = packed_once
    rootimg = tmp_path / "rootimg"

    def replace() -> None:
        (rootimg / "b-small").unlink()
        (rootimg / "b-small").symlink_to("a-big")

    _pack_while(tmp_path, replace)
    listing = subprocess.run(f"zstd -dc {tmp_path}/rootimg.cpio.zst | cpio -itv --quiet",
                             shell=True, capture_output=True, check=True).stdout  # fmt: skip
    assert b"./b-small -> a-big" in listing


def test_a_file_replaced_between_listing_and_opening_is_refused(tmp_path):
    (tmp_path / "f").write_text("first")
    listed = os.lstat(tmp_path / "f")
    (tmp_path / "f").rename(tmp_path / "old")  # kept, so the new file gets another inode
    (tmp_path / "f").write_text("second")
    with pytest.raises(TreeChanged, match=r"^\./f was replaced"):
        OpenFile(os.fsencode(tmp_path), b"./f", listed)
    (tmp_path / "f").unlink()
    (tmp_path / "f").symlink_to("elsewhere")
    with pytest.raises(TreeChanged, match=r"^\./f became a symbolic link"):
        OpenFile(os.fsencode(tmp_path), b"./f", listed)


def test_what_does_not_change_packs_normally_after_all(packed_once):
    tmp_path, _ = packed_once
    result = pack(PackRequest("img", tmp_path, "cpio", "zstd"), progress_every=1)
    assert result.entries == 8
    listing = subprocess.run(f"zstd -dc {result.path} | cpio -it --quiet", shell=True,
                             capture_output=True, check=True).stdout.split()  # fmt: skip
    assert listing == [b".", b"./a-big", b"./b-small", b"./c-linked", b"./d-linked", b"./opt",
                       b"./opt/xcat", b"./opt/xcat/xcatinfo"]  # fmt: skip


# -- writing inside the image -------------------------------------------------------


def test_xcatinfo_is_never_written_through_a_link_out_of_the_image(tmp_path):
    outside = tmp_path / "host-opt"
    outside.mkdir()
    rootimg = tmp_path / "rootimg"
    rootimg.mkdir()
    (rootimg / "opt").symlink_to(outside)
    with pytest.raises(RootFileError, match="/opt there is not a directory"):
        write_in_image(rootimg, "/opt/xcat/xcatinfo", b"x", 0o644)
    assert list(outside.iterdir()) == []
    (rootimg / "opt").unlink()
    (rootimg / "opt/xcat").mkdir(parents=True)
    (rootimg / "opt/xcat/xcatinfo").symlink_to(outside / "victim")
    write_in_image(rootimg, "/opt/xcat/xcatinfo", b"IMAGENAME='x'\n", 0o644)
    assert not (outside / "victim").exists()
    assert (rootimg / "opt/xcat/xcatinfo").read_bytes() == b"IMAGENAME='x'\n"


def test_files_of_4_gib_are_refused_for_cpio_before_anything_is_written(tmp_path):
    (tmp_path / "rootimg").mkdir()
    with open(tmp_path / "rootimg/huge", "wb") as huge:
        huge.truncate(4 << 30)
    with contextlib.suppress(FileNotFoundError):
        (tmp_path / "rootimg.cpio.gz").unlink()
    with pytest.raises(PackError, match=r"cpio \(newc\) cannot hold files of 4 GiB or more"):
        pack(PackRequest("img", tmp_path, "cpio", "gzip"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".genimage.lock",
        ".packimage.lock",
        "rootimg",
    ]


# -- synclists ---------------------------------------------------------------------


def test_a_synclist_parses_copies_appends_and_skips_what_is_for_nodes():
    text = """# comment
/etc/hosts -> /etc/hosts
/a /b -> /etc/dir/
(compute) /x -> /x
EXECUTE:
/tmp/script
APPEND:
/srv/motd -> /etc/motd
MERGE:
/srv/passwd -> /etc/passwd
"""
    parsed = packsync.parse(text)
    assert parsed.copies == [(["/etc/hosts"], "/etc/hosts"), (["/a", "/b"], "/etc/dir/")]
    assert parsed.appends == [("/srv/motd", "/etc/motd")]
    assert parsed.skipped == ["(compute) /x -> /x", "/tmp/script", "/srv/passwd -> /etc/passwd"]
    with pytest.raises(PackError, match=r"line 1: expected 'source \.\.\. -> destination'"):
        packsync.parse("/etc/hosts /etc/hosts\n")
    with pytest.raises(PackError, match="line 1: the destination must be absolute"):
        packsync.parse("/etc/hosts -> etc/hosts\n")


def test_a_synclist_is_applied_inside_the_image_only(tmp_path):
    source = tmp_path / "src"
    (source / "tree/sub").mkdir(parents=True)
    (source / "hosts").write_text("10.0.0.1 mn\n")
    (source / "hosts").chmod(0o640)
    (source / "a.conf").write_text("a")
    (source / "b.conf").write_text("b")
    (source / "tree/sub/deep").write_text("deep")
    (source / "motd").write_text("more\n")
    rootimg = tmp_path / "rootimg"
    (rootimg / "etc").mkdir(parents=True)
    (rootimg / "etc/motd").write_text("hello\n")
    (rootimg / "etc/motd").chmod(0o600)
    outside = tmp_path / "host-etc"
    outside.mkdir()
    (rootimg / "etc/app").symlink_to(outside)  # must not be written through
    synclist = tmp_path / "image.synclist"
    synclist.write_text(f"""{source}/hosts -> /etc/hosts
{source}/*.conf -> /etc/conf.d/
{source}/tree -> /opt/tree
APPEND:
{source}/motd -> /etc/motd
EXECUTE:
/bin/true
""")
    notes = packsync.apply(rootimg, [str(synclist)])
    assert notes == [f"{synclist}: 1 line(s) for nodes (EXECUTE, MERGE, noderanges) are not "
                     "applied to an image"]  # fmt: skip
    assert (rootimg / "etc/hosts").read_text() == "10.0.0.1 mn\n"
    assert oct((rootimg / "etc/hosts").stat().st_mode & 0o777) == "0o640"
    assert sorted(p.name for p in (rootimg / "etc/conf.d").iterdir()) == ["a.conf", "b.conf"]
    assert (rootimg / "opt/tree/sub/deep").read_text() == "deep"
    assert (rootimg / "etc/motd").read_text() == "hello\nmore\n"
    assert oct((rootimg / "etc/motd").stat().st_mode & 0o777) == "0o600"
    packsync.apply(rootimg, [str(synclist)])  # packing again appends once, not twice
    assert (rootimg / "etc/motd").read_text() == "hello\nmore\n"
    synclist.write_text(f"{source}/hosts -> /etc/app/hosts\n")
    with pytest.raises(PackError, match=r"/app there is not a directory"):
        packsync.apply(rootimg, [str(synclist)])
    assert list(outside.iterdir()) == []
    synclist.write_text(f"{source}/missing -> /etc/x\n")
    with pytest.raises(PackError, match=f"{source}/missing does not exist"):
        packsync.apply(rootimg, [str(synclist)])


def test_an_invalid_glob_in_an_exlist_is_named(tmp_path):
    with pytest.raises(ExlistError, match=r"exlist pattern '\./foo\[z-a\]\*' is not a valid glob"):
        Selector(exlist(tmp_path, "./foo[z-a]*\n"))
