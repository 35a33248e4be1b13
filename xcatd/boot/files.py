"""Writing the files booting nodes read, so that no node ever reads half of one.

A node may fetch its boot file at any moment, also while nodeset rewrites
it; so every file is written beside its final name and renamed over it
(rename is atomic), and links are made the same way.  A file that already
holds what would be written is left alone: re-running nodeset over
thousands of unchanged nodes then costs reads, not inode churn.  Paths are
plain strings: nodeset writes tens of thousands of files, and pathlib's
objects cost more than the system calls.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading

MODE = 0o644  # world-readable: dnsmasq reads its files as 'nobody'
Pathish = str | os.PathLike


def _temporary(path: str) -> str:
    # Unique per writing thread: two requests writing the same file each
    # rename a whole file of their own, and the last one wins.
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}.{os.getpid()}-{threading.get_ident()}.tmp"


def write_atomic(path: Pathish, data: bytes, mode: int = MODE) -> bool:
    """Put `data` at `path` whole; False when it already held exactly that."""
    path = os.fspath(path)
    if _holds(path, data):
        return False
    temporary = _temporary(path)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(descriptor, data)
        os.fchmod(descriptor, mode)  # the umask must not narrow it
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
    return True


def _holds(path: str, data: bytes) -> bool:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.read(descriptor, len(data) + 1) == data
    except OSError:  # a directory, say: it will be replaced, or the rename will say why
        return False
    finally:
        os.close(descriptor)


def link_atomic(path: Pathish, target: str) -> None:
    """Make `path` a symbolic link to `target` (relative), replacing what was there."""
    path = os.fspath(path)
    try:
        if os.readlink(path) == target:
            return
    except OSError:
        pass
    temporary = _temporary(path)
    with contextlib.suppress(FileNotFoundError):  # left by a writer that died
        os.unlink(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, path)


def copy_if_changed(source: Pathish, destination: Pathish) -> bool:
    """Copy `source` to `destination` (atomically) unless it already has the same
    size and modification time; True when it copied."""
    given = os.stat(source)
    try:
        present = os.stat(destination)
        if (present.st_size, present.st_mtime_ns) == (given.st_size, given.st_mtime_ns):
            return False
    except FileNotFoundError:
        pass
    temporary = _temporary(os.fspath(destination))
    shutil.copyfile(source, temporary)
    os.chmod(temporary, MODE)
    os.utime(temporary, ns=(given.st_atime_ns, given.st_mtime_ns))
    os.replace(temporary, destination)
    return True
