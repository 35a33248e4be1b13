"""The image as a POSIX (pax) tar, through the standard library's tarfile.

Names are the bytes on disk (`./usr/bin/ls`; names that are not UTF-8 go in
pax headers as raw bytes), owners numeric only (empty user and group names,
so an unpacking tar never maps them through the host's passwd), times in
whole seconds, and every extended attribute as a `SCHILY.xattr.<name>` pax
record, which GNU tar (`--xattrs`), bsdtar and mksquashfs read.  The first
link of a hard-link set carries the data; the others are link entries to it.
Sockets are left out.  The same stream, without its `.` entry, feeds
mksquashfs.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable

from .compress import Sink
from .exlist import Selector
from .tree import CHUNK, Meter, OpenFile, readlink, walk, xattrs


class _Reader:
    """What tarfile reads a file's data from: exactly the size it was told."""

    def __init__(self, file: OpenFile, meter: Meter) -> None:
        self._file, self._meter = file, meter

    def read(self, count: int) -> bytes:
        return self._file.read(count, self._meter)


def write_tar(
    root: bytes,
    selector: Selector,
    sink: Sink,
    meter: Meter,
    check_cancelled: Callable[[], None],
    *,
    include_root: bool = True,
) -> int:
    """Write the archive of the kept entries; the number of entries written."""
    archive = tarfile.TarFile(
        fileobj=sink,  # type: ignore[arg-type]
        mode="w",
        format=tarfile.PAX_FORMAT,
        encoding="utf-8",
        errors="surrogateescape",
        copybufsize=CHUNK,
    )
    first_links: dict[tuple[int, int], str] = {}
    count = 0
    for rel, st in walk(root, selector):
        count += 1
        if count % 1024 == 0:
            check_cancelled()
        mode = st.st_mode
        if stat.S_ISSOCK(mode) or (rel == b"." and not include_root):
            continue
        info = tarfile.TarInfo(os.fsdecode(rel))
        info.uname = info.gname = ""
        attributes = xattrs(root, rel)
        if attributes:
            info.pax_headers = {
                f"SCHILY.xattr.{name}": value.decode("utf-8", "surrogateescape")
                for name, value in attributes.items()
            }
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in first_links:
                _describe(info, st, tarfile.LNKTYPE)
                info.linkname = first_links[key]
                archive.addfile(info)
                continue
            if st.st_nlink > 1:
                first_links[key] = info.name
            with OpenFile(root, rel, st) as file:
                _describe(info, file.st, tarfile.REGTYPE)
                info.size = file.size
                archive.addfile(info, _Reader(file, meter))  # type: ignore[arg-type]
                file.verify()
            continue
        if stat.S_ISDIR(mode):
            _describe(info, st, tarfile.DIRTYPE)
        elif stat.S_ISLNK(mode):
            _describe(info, st, tarfile.SYMTYPE)
            info.linkname = os.fsdecode(readlink(root, rel))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            _describe(info, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        else:
            _describe(info, st, tarfile.FIFOTYPE)
        archive.addfile(info)
    archive.close()  # the end-of-archive blocks; the sink stays open
    return count


def _describe(info: tarfile.TarInfo, st: os.stat_result, kind: bytes) -> None:
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
