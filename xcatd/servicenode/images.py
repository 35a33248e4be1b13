"""A service node's copies of the packed images its nodes boot.

Without an NFS-mounted /install (site.installloc), a service node keeps its
own copy of each packed image it serves: the packed root image, its
`.sha256`, the kernel and the stateless initrd, fetched over HTTP from the
management node's boot HTTP server into the same place under this node's
installdir.  The copy is taken again when the management node's `.sha256`
differs from the one kept (packimage always writes a new one), checked
against it while it streams in, and put in place by renames only once every
file is whole: an image changed on the management node reaches the service
node on the next nodeset, and is never served half-written.  Nothing here
rewrites a file in place, so nodeset links the kernel and the initrd into
tftpdir instead of copying them (boot/files.py, copy_if_changed); they are
made world-readable, as every file served to nodes is.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import trio

from ..boot.files import MODE
from ..errors import XcatdError
from ..images.osimage import INITRD, KERNEL
from .replica import Copy, moved

CHUNK = 1 << 20
TIMEOUT = 60  # seconds without a byte from the management node


class ImageCopyError(XcatdError):
    """An image could not be copied; the one it has (if any) is left as it was."""


@dataclass(frozen=True)
class Source:
    """Where the management node's files are: its HTTP server and installdir."""

    host: str
    http_port: int
    installdir: str

    def url(self, path: Path) -> str:
        return f"http://{self.host}:{self.http_port}{path}"


def source_of(copy: Copy, host: str, default_port: int) -> Source:
    return Source(host, int(copy.site.get("httpport") or default_port), copy.installdir)


async def provide(source: Source, installdir: Path, packfile: Path) -> bool:
    """The image whose packed file is `packfile` (a path of this host), made
    current; whether it was copied anew."""
    return await trio.to_thread.run_sync(_provide, source, installdir, packfile)


def _provide(source: Source, installdir: Path, packfile: Path) -> bool:
    remote = Path(moved(str(packfile), str(installdir), source.installdir))
    sums = packfile.with_name(packfile.name + ".sha256")
    wanted = _get(source.url(remote.with_name(sums.name)), limit=4096).decode()
    expected = wanted.split()[0] if wanted.split() else ""
    if len(expected) != 64:
        raise ImageCopyError(f"{source.url(remote)}.sha256 does not hold a SHA-256")
    if sums.is_file() and sums.read_text() == wanted and packfile.is_file():
        return False
    rootimgdir = packfile.parent
    rootimgdir.mkdir(parents=True, exist_ok=True)
    names = (KERNEL, INITRD, packfile.name)
    # The .sha256 is the packed file's: only its bytes are hashed as they come.
    packed = hashlib.sha256()
    try:
        for name in names:
            url = source.url(remote.with_name(name))
            _download(url, rootimgdir / name, packed if name == packfile.name else None)
        if packed.hexdigest() != expected:
            raise ImageCopyError(
                f"{source.url(remote)} does not match its .sha256 (changed while copied? "
                "run nodeset again)"
            )
        for name in names:
            os.replace(_partial(rootimgdir / name), rootimgdir / name)
        tmp = _partial(sums)
        tmp.write_text(wanted)
        os.replace(tmp, sums)
    finally:
        for name in (KERNEL, INITRD, packfile.name):
            _partial(rootimgdir / name).unlink(missing_ok=True)
    return True


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _download(url: str, target: Path, digest: hashlib._Hash | None) -> None:
    """`url` into the partial file of `target`, and into `digest` when given."""
    buffer = memoryview(bytearray(CHUNK))  # one buffer for the whole file
    try:
        with (
            urllib.request.urlopen(url, timeout=TIMEOUT) as response,
            open(_created(_partial(target)), "wb") as out,
        ):
            while size := response.readinto(buffer):
                chunk = buffer[:size]
                if digest is not None:
                    digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise ImageCopyError(f"cannot copy {url}: {_reason(exc)}") from None


def _created(path: Path) -> int:
    """`path` opened to be written anew, MODE whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, MODE)
    os.fchmod(descriptor, MODE)
    return descriptor


def _get(url: str, limit: int) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.read(limit)
    except (urllib.error.URLError, OSError) as exc:
        raise ImageCopyError(f"cannot read {url}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
    return str(reason)
