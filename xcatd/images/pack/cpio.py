"""The cpio "newc" (SVR4, 070701) format, written from a walk of the image.

What the kernel's initramfs unpacker, GNU cpio and busybox cpio read:

- A 110-byte ASCII header (13 fields of 8 hex digits), the name with its NUL
  padded to 4 bytes, the data padded to 4 bytes; `TRAILER!!!` at the end and
  the whole padded to 512 bytes, as GNU cpio does.
- Inode numbers are assigned here, one per entry and shared by a hard-link
  set, so they are small, unique inside the archive and the same on every
  run (64-bit inode numbers of the host would be cut to 32 bits).
- A hard-link set keeps its links: every link is an entry with the set's
  inode number and link count (the links the archive holds, which may be
  fewer than on disk when an exclusion splits the set), and the data goes
  once, with the last link, as GNU cpio writes it.
- Directories count 2 plus their subdirectories in the archive.
- Symbolic links hold their target as data; device nodes their numbers;
  fifos nothing.  Sockets cannot be archived and are left out.
- Sizes and times are 32-bit fields: a file of 4 GiB or more cannot be held
  (the survey refuses it before anything is written); times are clamped.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from .compress import Sink
from .exlist import Selector
from .tree import CHUNK, Meter, OpenFile, Survey, TreeChanged, readlink, walk

MAGIC = b"070701"
MAX_FIELD = 0xFFFFFFFF
MAX_FILE_SIZE = MAX_FIELD  # newc's filesize field
_FORMAT = MAGIC + b"%08X" * 13


def header(
    name: bytes,
    *,
    ino: int,
    mode: int,
    uid: int = 0,
    gid: int = 0,
    nlink: int = 1,
    mtime: int = 0,
    size: int = 0,
    rdevmajor: int = 0,
    rdevminor: int = 0,
) -> bytes:
    """One entry's header and name, padded so that its data starts aligned."""
    namesize = len(name) + 1
    fields = (ino, mode, uid, gid, nlink, max(0, min(mtime, MAX_FIELD)), size,
              0, 0, rdevmajor, rdevminor, namesize, 0)  # fmt: skip
    padding = -(110 + namesize) % 4
    return _FORMAT % fields + name + b"\0" * (1 + padding)


def padding(size: int) -> bytes:
    return b"\0" * (-size % 4)


def trailer(written: int) -> bytes:
    """The end-of-archive entry, and zeros up to a multiple of 512 bytes."""
    end = header(b"TRAILER!!!", ino=0, mode=0, nlink=1)
    return end + b"\0" * (-(written + len(end)) % 512)


def write_cpio(
    root: bytes,
    selector: Selector,
    survey: Survey,
    sink: Sink,
    meter: Meter,
    check_cancelled: Callable[[], None],
) -> int:
    """Write the archive of the kept entries; the number of entries written."""
    written = 0  # bytes, for the final padding
    count = 0
    next_ino = 1
    link_inos: dict[tuple[int, int], int] = {}
    link_seen: dict[tuple[int, int], int] = {}
    for rel, st in walk(root, selector):
        count += 1
        if count % 1024 == 0:
            check_cancelled()
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            continue
        common = {"mode": mode, "uid": st.st_uid, "gid": st.st_gid, "mtime": int(st.st_mtime)}
        if stat.S_ISREG(mode):
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                links = survey.links.get(key)
                if links is None:
                    raise TreeChanged(f"{os.fsdecode(rel)} gained a hard link while the image "
                                      "was being packed; nothing was written. Run packimage "
                                      "again when nothing changes the image.")  # fmt: skip
                ino = link_inos.setdefault(key, next_ino)
                if ino == next_ino:
                    next_ino += 1
                link_seen[key] = link_seen.get(key, 0) + 1
                if rel != links.last:
                    block = header(rel, ino=ino, nlink=links.count, size=0, **common)
                    sink.write(block)
                    written += len(block)
                    continue
                if link_seen[key] != links.count:
                    raise _links_changed(rel)
                nlink = links.count
            else:
                ino, nlink = next_ino, 1
                next_ino += 1
            written += _file(root, rel, st, ino, nlink, sink, meter)
            continue
        if stat.S_ISDIR(mode):
            block = header(rel, ino=next_ino, nlink=2 + survey.subdirs.get(rel, 0), **common)
        elif stat.S_ISLNK(mode):
            target = readlink(root, rel)
            block = header(rel, ino=next_ino, size=len(target), **common)
            block += target + padding(len(target))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            rdev = st.st_rdev
            block = header(rel, ino=next_ino, rdevmajor=os.major(rdev), rdevminor=os.minor(rdev),
                           **common)  # fmt: skip
        else:  # fifo
            block = header(rel, ino=next_ino, **common)
        next_ino += 1
        sink.write(block)
        written += len(block)
    for key, links in survey.links.items():
        if link_seen.get(key, 0) != links.count:
            raise _links_changed(links.last)
    sink.write(trailer(written))
    return count


def _links_changed(rel: bytes) -> TreeChanged:
    return TreeChanged(
        f"the hard links of {os.fsdecode(rel)} changed while the image was being packed; "
        "nothing was written. Run packimage again when nothing changes the image."
    )


def _file(
    root: bytes,
    rel: bytes,
    st: os.stat_result,
    ino: int,
    nlink: int,
    sink: Sink,
    meter: Meter,
) -> int:
    with OpenFile(root, rel, st) as file:
        if file.size > MAX_FILE_SIZE:
            raise TreeChanged(f"{os.fsdecode(rel)} grew past 4 GiB while the image was being "
                              "packed; cpio cannot hold it")  # fmt: skip
        now = file.st  # what the data will be: the open file's own status
        block = header(rel, ino=ino, mode=now.st_mode, uid=now.st_uid, gid=now.st_gid,
                       nlink=nlink, mtime=int(now.st_mtime), size=file.size)  # fmt: skip
        tail = padding(file.size)
        if file.size <= CHUNK:  # most files: one read, one write
            data = file.read(file.size, meter) if file.size else b""
            file.verify()
            sink.write(block + data + tail)
        else:
            sink.write(block)
            for chunk in file.chunks(meter):
                sink.write(chunk)
            sink.write(tail)
        return len(block) + file.size + len(tail)
