"""Reading a root image for packing: which entries, in what order, and their bytes.

The walk is `find . -xdev` in a fixed order (names sorted bytewise, a
directory before its contents) filtered by an exlist `Selector`.  Packing
walks twice: the survey counts what the archive will hold (bytes for
progress, hard-link sets and their sizes inside the archive, entries no
format can hold), then the writers walk again and write.  What is kept in
memory is counters, the hard-link sets, a subdirectory count per directory
and the names of the directories being walked: no file data, no list of
every entry, whatever the image size.

A file is read only through a descriptor opened without following links and
checked to be the file that was listed; when its size or modification time
moves while it is read, or it vanishes, packing stops with `TreeChanged`
rather than write an archive whose contents are no snapshot of anything.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ...errors import XcatdError
from .exlist import Selector

CHUNK = 1 << 20
PROGRESS_EVERY = 32 << 20


class PackError(XcatdError):
    """Packing cannot go on; the message says why, in words for the administrator."""


class TreeChanged(PackError):
    pass


def _changed(rel: bytes, what: str) -> TreeChanged:
    return TreeChanged(
        f"{os.fsdecode(rel)} {what} while the image was being packed; nothing was "
        "written. Stop whatever is changing the image and run packimage again."
    )


@dataclass
class _Frame:
    rel: bytes
    st: os.stat_result
    names: Iterator[bytes]
    emitted: bool


def walk(root: bytes, selector: Selector) -> Iterator[tuple[bytes, os.stat_result]]:
    """(path as find prints it, lstat) of every entry the image keeps, in order."""
    top = _lstat(root, b".")
    if not stat.S_ISDIR(top.st_mode):
        raise PackError(f"{os.fsdecode(root)} is not a directory")
    yield b".", top
    device = top.st_dev
    stack = [_Frame(b".", top, iter(_listdir(root, b".")), True)]
    while stack:
        frame = stack[-1]
        name = next(frame.names, None)
        if name is None:
            stack.pop()
            continue
        rel = frame.rel + b"/" + name
        st = _lstat(root, rel)
        kept = selector.keeps(rel)
        if kept:
            for above in stack:  # directories kept only for what is below them
                if not above.emitted:
                    above.emitted = True
                    yield above.rel, above.st
            yield rel, st
        if (
            stat.S_ISDIR(st.st_mode)
            and st.st_dev == device  # -xdev: list a mount point, never go into it
            and not selector.drops_below(rel)
        ):
            stack.append(_Frame(rel, st, iter(_listdir(root, rel)), kept))


def full_path(root: bytes, rel: bytes) -> bytes:
    return root + rel[1:]


def _lstat(root: bytes, rel: bytes) -> os.stat_result:
    try:
        return os.lstat(full_path(root, rel))
    except FileNotFoundError:
        raise _changed(rel, "vanished") from None
    except OSError as exc:
        raise PackError(f"cannot read {os.fsdecode(rel)}: {exc.strerror}") from None


def _listdir(root: bytes, rel: bytes) -> list[bytes]:
    try:
        return sorted(os.listdir(full_path(root, rel)))
    except FileNotFoundError:
        raise _changed(rel, "vanished") from None
    except NotADirectoryError:
        raise _changed(rel, "stopped being a directory") from None
    except OSError as exc:
        raise PackError(f"cannot read directory {os.fsdecode(rel)}: {exc.strerror}") from None


# -- the survey ---------------------------------------------------------------


@dataclass
class LinkSet:
    """Hard links of one file that the archive holds: how many, and the last one."""

    count: int
    last: bytes


@dataclass
class Survey:
    entries: int = 0
    total_bytes: int = 0  # file contents to read, each hard-linked file once
    links: dict[tuple[int, int], LinkSet] = field(default_factory=dict)
    subdirs: dict[bytes, int] = field(default_factory=dict)  # kept subdirectories
    sockets: list[bytes] = field(default_factory=list)
    too_big: list[tuple[bytes, int]] = field(default_factory=list)
    with_xattrs: int = 0
    xattr_example: bytes = b""


def survey(
    root: bytes,
    selector: Selector,
    *,
    max_size: int | None = None,
    look_for_xattrs: bool = False,
    check_cancelled: Callable[[], None] = lambda: None,
) -> Survey:
    found = Survey()
    for rel, st in walk(root, selector):
        found.entries += 1
        if found.entries % 4096 == 0:
            check_cancelled()
        mode = st.st_mode
        if stat.S_ISREG(mode):
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                links = found.links.get(key)
                if links is None:
                    found.links[key] = LinkSet(1, rel)
                    found.total_bytes += st.st_size
                else:
                    links.count += 1
                    links.last = rel
            else:
                found.total_bytes += st.st_size
            if max_size is not None and st.st_size > max_size:
                found.too_big.append((rel, st.st_size))
            if look_for_xattrs and _has_xattrs(root, rel):
                found.with_xattrs += 1
                found.xattr_example = found.xattr_example or rel
        elif stat.S_ISDIR(mode):
            parent = rel.rpartition(b"/")[0]
            if parent:
                found.subdirs[parent] = found.subdirs.get(parent, 0) + 1
        elif stat.S_ISSOCK(mode):
            found.sockets.append(rel)
    return found


def _has_xattrs(root: bytes, rel: bytes) -> bool:
    try:
        return bool(os.listxattr(full_path(root, rel), follow_symlinks=False))
    except OSError:
        return False


def xattrs(root: bytes, rel: bytes) -> dict[str, bytes]:
    """Extended attributes of an entry (not following a symbolic link)."""
    path = full_path(root, rel)
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except FileNotFoundError:
        raise _changed(rel, "vanished") from None
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise PackError(f"cannot read attributes of {os.fsdecode(rel)}: {exc.strerror}") from None
    values = {}
    for name in sorted(names):
        try:
            values[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                continue  # removed since it was listed
            raise PackError(
                f"cannot read attribute {name} of {os.fsdecode(rel)}: {exc.strerror}"
            ) from None
    return values


def readlink(root: bytes, rel: bytes) -> bytes:
    try:
        return os.readlink(full_path(root, rel))
    except FileNotFoundError:
        raise _changed(rel, "vanished") from None
    except OSError:
        raise _changed(rel, "stopped being a symbolic link") from None


# -- reading file contents ------------------------------------------------------


class Meter:
    """Bytes read so far; reports progress and notices a cancel every few MiB."""

    def __init__(
        self,
        total: int,
        progress: Callable[[int, int], None],
        check_cancelled: Callable[[], None],
        every: int = PROGRESS_EVERY,
    ) -> None:
        self.total, self.done, self._next = total, 0, every
        self._every, self._progress, self._check_cancelled = every, progress, check_cancelled

    def add(self, count: int) -> None:
        self.done += count
        if self.done >= self._next:
            self._next = self.done + self._every
            self._check_cancelled()
            self._progress(self.done, max(self.total, self.done))

    def finish(self) -> None:
        self._progress(self.done, max(self.total, self.done))


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NOATIME", 0)


class OpenFile:
    """A listed regular file, opened and checked to be that file."""

    def __init__(self, root: bytes, rel: bytes, listed: os.stat_result) -> None:
        self.rel = rel
        path = full_path(root, rel)
        try:
            try:
                self.fd = os.open(path, _OPEN_FLAGS)
            except PermissionError:  # O_NOATIME on a file we do not own
                self.fd = os.open(path, _OPEN_FLAGS & ~getattr(os, "O_NOATIME", 0))
        except FileNotFoundError:
            raise _changed(rel, "vanished") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _changed(rel, "became a symbolic link") from None
            raise PackError(f"cannot read {os.fsdecode(rel)}: {exc.strerror}") from None
        self.st = os.fstat(self.fd)
        if not stat.S_ISREG(self.st.st_mode) or (self.st.st_dev, self.st.st_ino) != (
            listed.st_dev,
            listed.st_ino,
        ):
            os.close(self.fd)
            raise _changed(rel, "was replaced")
        self.size = self.st.st_size

    def __enter__(self) -> OpenFile:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def chunks(self, meter: Meter) -> Iterator[bytes]:
        """Exactly `size` bytes, as they were when opened, else TreeChanged."""
        left = self.size
        while left > 0:
            chunk = self.read(min(left, CHUNK), meter)
            left -= len(chunk)
            yield chunk
        self.verify()

    def read(self, count: int, meter: Meter) -> bytes:
        """`count` bytes (fewer only when the file shrank: TreeChanged)."""
        chunk = os.read(self.fd, count)
        while len(chunk) < count:
            more = os.read(self.fd, count - len(chunk))
            if not more:
                raise _changed(self.rel, "shrank")
            chunk += more
        meter.add(count)
        return chunk

    def verify(self) -> None:
        """After reading: the file must still be as it was when opened."""
        now = os.fstat(self.fd)
        if now.st_size != self.size or now.st_mtime_ns != self.st.st_mtime_ns:
            raise _changed(self.rel, "was modified")
