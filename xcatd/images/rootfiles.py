"""Reading and writing single files inside a root image, from outside it.

Seen from the management node, a symbolic link inside the image points at
the host (`/opt -> /var/opt` in the image is the host's /var/opt from
here).  So every directory on the way is opened relative to the previous one
without following links, and a link in the file's own place is replaced,
never written through: nothing here can touch a file outside the image.

genimage (initrd, boot units) and packimage (xcatinfo, synclists) both
write into images with these; each says a RootFileError in its own terms.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from ..errors import XcatdError


class RootFileError(XcatdError):
    """A file of the image cannot be read or written as asked; the message says why."""


_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _parent(rootimg: Path, path: str, create: bool) -> tuple[int | None, str]:
    """An open descriptor of the directory that holds `path` (absolute in the
    image), and the file's name; (None, name) when a directory is missing."""
    *directories, name = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in directories or name == "..":
        raise RootFileError(f"{path}: '..' is not allowed in a path inside the image")
    fd = os.open(rootimg, _DIRECTORY)
    try:
        for part in directories:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                inner = os.open(part, _DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                if create:
                    raise
                os.close(fd)
                return None, name
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                raise RootFileError(
                    f"cannot write {path} in the image: /{part} there is not a directory "
                    "(symbolic links are not followed out of the image)"
                ) from None
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd, name


def read_in_image(rootimg: Path, path: str) -> bytes | None:
    """A file's contents, or None when there is no such (regular) file."""
    fd, name = _parent(rootimg, path, create=False)
    if fd is None:
        return None
    try:
        try:
            file = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(file).st_mode):
                return None
            chunks = []
            while chunk := os.read(file, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(file)
    finally:
        os.close(fd)


def write_in_image(
    rootimg: Path,
    path: str,
    data: bytes,
    mode: int,
    *,
    keep_mode: bool = False,
    mtime_ns: int | None = None,
) -> None:
    """Write `data` to `path` (absolute in the image), creating directories.
    The file gets `mode`, or keeps its own with `keep_mode`; owner root."""
    fd, name = _parent(rootimg, path, create=True)
    assert fd is not None
    try:
        with contextlib.suppress(FileNotFoundError):
            old = os.lstat(name, dir_fd=fd)
            if stat.S_ISLNK(old.st_mode):
                os.unlink(name, dir_fd=fd)
            elif not stat.S_ISREG(old.st_mode):  # a fifo would block, a device write the host's
                raise RootFileError(f"cannot write {path} in the image: it is not a regular file")
            elif keep_mode:
                mode = stat.S_IMODE(old.st_mode)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            out = os.open(name, flags, 0o600, dir_fd=fd)
        except IsADirectoryError:
            raise RootFileError(f"cannot write {path} in the image: it is a directory") from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]
            with contextlib.suppress(PermissionError):  # a daemon not run as root
                os.fchown(out, 0, 0)
            os.fchmod(out, mode)
            if mtime_ns is not None:
                os.utime(out, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(out)
    finally:
        os.close(fd)


def names_in_image(rootimg: Path, directory: str) -> list[str]:
    """The names in a directory of the image (none when it does not exist)."""
    fd, name = _parent(rootimg, directory, create=False)
    if fd is None:
        return []
    try:
        inner = os.open(name, _DIRECTORY, dir_fd=fd)
    except OSError:
        return []
    finally:
        os.close(fd)
    try:
        return sorted(os.listdir(inner))
    finally:
        os.close(inner)


def remove_in_image(rootimg: Path, path: str) -> bool:
    """Remove a file (or link) of the image; whether there was one."""
    fd, name = _parent(rootimg, path, create=False)
    if fd is None:
        return False
    try:
        os.unlink(name, dir_fd=fd)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)
