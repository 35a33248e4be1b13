"""Writing the files booting nodes read, so that no node ever reads half of one.

A node may fetch its boot file at any moment, also while nodeset rewrites
it; so every file is written beside its final name and renamed over it
(rename is atomic), and links are made the same way; a failed write
leaves no temporary behind.  A file that already
holds what would be written is left alone: re-running nodeset over
thousands of unchanged nodes then costs reads, not inode churn.  Paths are
plain strings: nodeset writes tens of thousands of files, and pathlib's
objects cost more than the system calls.  `Links` finds the links by MAC
or IP address a node no longer has (its MAC or IP changed), which would
otherwise boot the next node given that address with its file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
import threading
from collections.abc import Container, Iterable, Iterator

MODE = 0o644  # world-readable: dnsmasq reads its files as 'nobody'
Pathish = str | os.PathLike


def _temporary(path: str) -> str:
    # Unique per writing thread: two requests writing the same file each
    # rename a whole file of their own, and the last one wins.
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}.{os.getpid()}-{threading.get_ident()}.tmp"


@contextlib.contextmanager
def _replacing(path: str) -> Iterator[str]:
    """A temporary name beside `path`, renamed over it when the block succeeds;
    removed when anything fails (a full disk, say), so none are left behind."""
    temporary = _temporary(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_atomic(path: Pathish, data: bytes, mode: int = MODE) -> bool:
    """Put `data` at `path` whole; False when it already held exactly that."""
    path = os.fspath(path)
    if _holds(path, data):
        return False
    with _replacing(path) as temporary:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(descriptor, "wb") as out:  # a file object writes all of it, or raises
            out.write(data)
            os.fchmod(descriptor, mode)  # the umask must not narrow it
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
    with _replacing(path) as temporary:
        with contextlib.suppress(FileNotFoundError):  # left by a writer that died
            os.unlink(temporary)
        os.symlink(target, temporary)


@contextlib.contextmanager
def one_writer(lock: Pathish) -> Iterator[None]:
    """Hold an flock on the file `lock` for the block, waiting for its holder:
    one writer of a file at a time, in this daemon or in any other process."""
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def copy_if_changed(source: Pathish, destination: Pathish, *, link: bool = False) -> bool:
    """Copy `source` to `destination` (atomically) unless it already has the same
    size and modification time; True when it copied.

    With `link`, for a source that is only ever replaced by a rename and
    never rewritten in place, `destination` becomes a hard link to it where
    both are on one filesystem and the source is already MODE: no bytes are
    written (a service node would otherwise write every image twice), and
    one is current when it is the source's inode.  A node being served the
    old file keeps it whole when the source is replaced: the old inode lives
    on until the next call links the new one.  The linked inode is the
    source's: its mode and times are left as they are."""
    given = os.stat(source)
    linking = link and stat.S_IMODE(given.st_mode) == MODE
    try:
        present = os.stat(destination)
        if _current(present, given, linking):
            return False
    except FileNotFoundError:
        pass
    with _replacing(os.fspath(destination)) as temporary:
        if not (linking and _linked(source, temporary)):
            shutil.copyfile(source, temporary)
            os.chmod(temporary, MODE)
            os.utime(temporary, ns=(given.st_atime_ns, given.st_mtime_ns))
    return True


def _current(present: os.stat_result, given: os.stat_result, linking: bool) -> bool:
    if linking and present.st_dev == given.st_dev:
        return present.st_ino == given.st_ino
    return (present.st_size, present.st_mtime_ns) == (given.st_size, given.st_mtime_ns)


def _linked(source: Pathish, temporary: str) -> bool:
    """`temporary` made a hard link to `source`; False where the filesystem
    cannot (another filesystem, or one without hard links)."""
    with contextlib.suppress(FileNotFoundError):  # left by a writer that died
        os.unlink(temporary)
    try:
        os.link(source, temporary)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            return False
        raise
    return True


class Links:
    """The symbolic links in some directories under `root`, by the path (under
    `root`) each points to: read with one scan, so that the links thousands
    of files no longer have are found without a scan for each."""

    def __init__(self, root: str, directories: Iterable[str]) -> None:
        self._root = root
        self._by_target: dict[str, dict[str, str]] = {}  # target -> {link: its text}
        for directory in directories:
            try:
                entries = list(os.scandir(f"{root}/{directory}"))
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.is_symlink():
                    try:
                        text = os.readlink(entry.path)
                    except FileNotFoundError:  # another writer's temporary, renamed since
                        continue
                    link = os.path.join(directory, entry.name)
                    target = os.path.normpath(os.path.join(directory, text))
                    self._by_target.setdefault(target, {})[link] = text

    def remove_others(self, target: str, keep: Container[str] = ()) -> None:
        """Remove the links to `target` not in `keep`, unless one has been made
        to point elsewhere since the scan."""
        for link, text in self._by_target.get(target, {}).items():
            if link not in keep:
                path = f"{self._root}/{link}"
                with contextlib.suppress(FileNotFoundError):
                    if os.readlink(path) == text:
                        os.unlink(path)
