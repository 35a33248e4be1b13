"""A service node's installdir mounted read-only over NFS (site.installloc).

xCAT's site.installloc is where service nodes mount the management node's
installdir from: `hostname:/path`, or `/path` alone for the management
node; the path is the management node's installdir.  With it set, a
service node mounts it on its own installdir when its daemon starts (as
xCAT's AAsn.pm does) and before it sets up nodes, NFS version 4 and
read-only, and serves the packed images from there instead of copying them
(images.py copies them when installloc is unset).  A mount that fails is
one line in this node's log, and the nodes of every image it would have
served get an error saying the image cannot be reached: nothing is served
half from the mount and half from a copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import trio

from ..errors import XcatdError
from ..programs import run_program

log = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")
MOUNT_TIMEOUT = 60  # seconds for `mount` to reach the NFS server
# Read-only (the images are the management node's), version 4 only (no
# rpcbind or lock daemon on either side), one try per nodeset: the next
# nodeset tries again.
MOUNT_OPTIONS = "ro,vers=4,retry=0"


class MountError(XcatdError):
    """installloc could not be mounted here; the text says why."""


@dataclass(frozen=True)
class Installloc:
    """site.installloc: the NFS server (empty: the management node) and its path."""

    host: str
    path: str

    @classmethod
    def parse(cls, value: str) -> Installloc | None:
        """`hostname:/path` or `/path`; None when unset."""
        value = value.strip()
        if not value:
            return None
        host, colon, path = value.rpartition(":")
        if not colon:
            host, path = "", value
        if not path.startswith("/") or any(c.isspace() for c in value):
            raise MountError(
                f"site.installloc {value!r} is not hostname:/path or /path: "
                "chdef -t site installloc=<the management node's installdir>"
            )
        return cls(host, path)

    def source(self, master: str) -> str:
        """What mount is given: the server, the management node unless named."""
        return f"{self.host or master}:{self.path}"


def mounted_source(directory: Path) -> str | None:
    """What is NFS-mounted on `directory` (`host:/path`), or None."""
    wanted = str(directory)
    for line in MOUNTINFO.read_text().splitlines():
        fields = line.split()
        if len(fields) < 7 or _unescaped(fields[4]) != wanted:
            continue
        after = fields[fields.index("-") + 1 :]
        if after and after[0].startswith("nfs"):
            return _unescaped(after[1])
    return None


def _unescaped(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("040", "011", "012", "134"):
        field = field.replace("\\" + code, chr(int(code, 8)))
    return field


async def ensure_mounted(source: str, directory: Path) -> bool:
    """`source` mounted read-only on `directory` (another NFS mount there
    is taken off first); whether it was mounted now.  MountError, said in
    the log, when it cannot be."""
    there = mounted_source(directory)
    if there == source:
        return False
    try:
        if there is not None:
            await _run("umount", str(directory))
        directory.mkdir(parents=True, exist_ok=True)
        await _run("mount", "-t", "nfs4", "-o", MOUNT_OPTIONS, source, str(directory))
    except MountError as exc:
        log.error("site.installloc: cannot mount %s on %s: %s", source, directory, exc)
        raise
    log.info("site.installloc: mounted %s on %s read-only", source, directory)
    return True


async def ensure_unmounted(directory: Path) -> None:
    """No NFS mount on `directory` (installloc was unset): the images are
    copied there again."""
    there = mounted_source(directory)
    if there is not None:
        await _run("umount", str(directory))
        log.info("site.installloc unset: unmounted %s from %s", there, directory)


async def _run(*command: str) -> None:
    with trio.move_on_after(MOUNT_TIMEOUT):
        await run_program(*command, error=MountError, label=command[0])
        return
    raise MountError(f"{command[0]} did not finish within {MOUNT_TIMEOUT} s")
