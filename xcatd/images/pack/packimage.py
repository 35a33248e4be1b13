"""packimage's work: a root image packed into one file, all or nothing.

`<rootimgdir>/rootimg` becomes `<rootimgdir>/rootimg.<ext>` (cpio.gz,
cpio.xz, cpio.zst, tar.gz, tar.xz, tar.zst, sfs) with `rootimg.<ext>.sha256`
beside it in sha256sum's format, for the initrd to check what it downloaded.

- One pack per root image directory at a time: a lock file there, held with
  flock, makes a second packimage (from any process) refuse at once.
- Before packing, `/opt/xcat/xcatinfo` is written into the image as xCAT
  does (IMAGENAME, IMAGEUUID, TIMESTAMP) and the synclists are applied
  (sync.py), never following a symbolic link inside the image out of it.
- The archive is written to a hidden temporary name, synced, and renamed into
  place; only then are the other `rootimg.*` files removed.  A pack that
  fails or is cancelled removes its temporary file and leaves the packed
  image that was there untouched; temporary files left by a crash are
  removed by the next pack.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..locks import held
from ..osimage import ImageFiles
from ..rootfiles import RootFileError, write_in_image
from . import exlist as exlists
from . import sync
from .compress import open_sink
from .cpio import MAX_FILE_SIZE, write_cpio
from .tar import write_tar
from .tree import PROGRESS_EVERY, Meter, PackError, survey

EXTENSIONS = {"gzip": "gz", "xz": "xz", "zstd": "zst"}
TEMP_MARK = ".packimage-"
NOTE_EXAMPLES = 5


def output_name(method: str, compression: str) -> str:
    if method == "squashfs":
        return "rootimg.sfs"
    return f"rootimg.{method}.{EXTENSIONS[compression]}"


@dataclass
class PackRequest:
    imagename: str
    rootimgdir: Path
    method: str = "cpio"
    compression: str = "gzip"
    exlists: list[str] = field(default_factory=list)
    synclists: list[str] = field(default_factory=list)  # applied before packing

    @property
    def files(self) -> ImageFiles:
        return ImageFiles(self.rootimgdir)


@dataclass
class PackResult:
    path: Path
    size: int
    sha256: str
    source_bytes: int
    entries: int
    seconds: float
    imageuuid: str
    timestamp: str
    notes: list[str]


@contextlib.contextmanager
def pack_lock(files: ImageFiles) -> Iterator[None]:
    """Ours, exclusive; and genimage's, shared: no build while we pack, and
    no pack while a build runs."""
    with (
        held(
            files.pack_lock,
            PackError(f"another packimage is packing {files.rootimgdir}; wait for it to finish"),
        ),
        held(
            files.build_lock,
            PackError(f"genimage is building {files.rootimg}; pack it when genimage has finished"),
            shared=True,
        ),
    ):
        yield


def pack(
    request: PackRequest,
    progress: Callable[[int, int], None] = lambda done, total: None,
    check_cancelled: Callable[[], None] = lambda: None,
    progress_every: int | None = None,
) -> PackResult:
    """Pack the image (in a worker thread: it blocks for as long as packing takes)."""
    started = time.monotonic()
    rootimgdir = request.rootimgdir
    rootimg = request.files.rootimg
    if not rootimg.is_dir() or rootimg.is_symlink():
        raise PackError(f"{rootimg} does not exist, run genimage {request.imagename} first")
    selector = exlists.Selector(exlists.read_lists(request.exlists))
    root = os.fsencode(rootimg)
    with pack_lock(request.files):
        if request.files.incomplete():
            raise PackError(
                f"the last genimage of {rootimg} did not finish; run genimage "
                f"{request.imagename} again before packing"
            )
        _remove_leftovers(rootimgdir)
        image_uuid = str(uuid.uuid4())
        stamp = time.strftime("%a %b %e %H:%M:%S %Z %Y")
        write_xcatinfo(rootimg, request.imagename, image_uuid, stamp)
        sync_notes = sync.apply(rootimg, request.synclists)
        cpio = request.method == "cpio"
        found = survey(
            root,
            selector,
            max_size=MAX_FILE_SIZE if cpio else None,
            look_for_xattrs=cpio,
            check_cancelled=check_cancelled,
        )
        if found.too_big:
            names = ", ".join(f"{os.fsdecode(rel)} ({size:,} bytes)" for rel, size in
                              found.too_big[:NOTE_EXAMPLES])  # fmt: skip
            raise PackError(
                f"cpio (newc) cannot hold files of 4 GiB or more: {names}. Leave them out "
                "with the exlist, or pack with -m tar or -m squashfs."
            )
        name = output_name(request.method, request.compression)
        final = rootimgdir / name
        temp = rootimgdir / f".{name}{TEMP_MARK}{uuid.uuid4().hex[:8]}"
        meter = Meter(
            found.total_bytes, progress, check_cancelled, progress_every or PROGRESS_EVERY
        )
        progress(0, found.total_bytes)
        try:
            sink = open_sink(request.method, request.compression, temp, os.lstat(root))
            try:
                if cpio:
                    write_cpio(root, selector, found, sink, meter, check_cancelled)
                else:
                    write_tar(root, selector, sink, meter, check_cancelled,
                              include_root=request.method == "tar")  # fmt: skip
                check_cancelled()
            except BaseException:
                sink.abort()
                raise
            size, sha256 = sink.finish()
            meter.finish()
            _publish(temp, final, sha256)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise PackError(f"no space left on the disk of {rootimgdir} for {name}") from None
            raise PackError(f"packing {final} failed: {exc.strerror or exc}") from None
        finally:
            for leftover in (temp, _sums_temp(temp)):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        _remove_others(rootimgdir, keep={name, f"{name}.sha256"})
    return PackResult(
        path=final,
        size=size,
        sha256=sha256,
        source_bytes=found.total_bytes,
        entries=found.entries,
        seconds=time.monotonic() - started,
        imageuuid=image_uuid,
        timestamp=stamp,
        notes=sync_notes + _notes(found, request.method),
    )


def _sums_temp(temp: Path) -> Path:
    return temp.with_name(temp.name + ".sha256")


def _publish(temp: Path, final: Path, sha256: str) -> None:
    """The archive and its checksum file into place, both complete on disk."""
    sums = _sums_temp(temp)
    sums.write_text(f"{sha256}  {final.name}\n")
    for path in (temp, sums):
        os.chmod(path, 0o644)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    # No moment shows the new archive beside the old checksum: a node would
    # refuse a good image.  At worst (a crash just here) there is no checksum.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(final.with_name(final.name + ".sha256"))
    os.rename(temp, final)
    os.rename(sums, final.with_name(final.name + ".sha256"))
    fd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_others(rootimgdir: Path, keep: set[str]) -> None:
    """Packed images of other methods and compressions: only files, never rootimg."""
    for other in rootimgdir.glob("rootimg.*"):
        if other.name in keep or (other.is_dir() and not other.is_symlink()):
            continue
        # The new image is already in place: an old one that will not go is
        # only clutter, not a failed pack.
        with contextlib.suppress(OSError):
            other.unlink()


def _remove_leftovers(rootimgdir: Path) -> None:
    for leftover in rootimgdir.glob(f".rootimg.*{TEMP_MARK}*"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def _notes(found, method: str) -> list[str]:
    notes = []
    if found.sockets:
        names = ", ".join(os.fsdecode(rel) for rel in found.sockets[:NOTE_EXAMPLES])
        more = ", ..." if len(found.sockets) > NOTE_EXAMPLES else ""
        notes.append(
            f"left out {len(found.sockets)} socket(s), which no archive can hold: {names}{more}"
        )
    if method == "cpio" and found.with_xattrs:
        notes.append(
            f"{found.with_xattrs} file(s) have extended attributes (file capabilities, "
            f"SELinux labels...), such as {os.fsdecode(found.xattr_example)}, which cpio "
            "cannot hold; -m tar or -m squashfs keeps them"
        )
    return notes


def write_xcatinfo(rootimg: Path, imagename: str, image_uuid: str, timestamp: str) -> None:
    text = f"IMAGENAME='{imagename}'\nIMAGEUUID='{image_uuid}'\nTIMESTAMP='{timestamp}'\n"
    try:
        write_in_image(rootimg, "/opt/xcat/xcatinfo", text.encode(), 0o644)
    except RootFileError as exc:
        raise PackError(str(exc)) from None
