"""Opening a file a boot service may hand out: a regular file under a root.

TFTP and HTTP follow symbolic links (nodeset links the MAC- and IP-named
boot files to a node's own) but only to places inside one of their roots,
never block on opening a FIFO, and hand out nothing but regular files.
Blocking (it walks the filesystem): run it in a worker thread.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# O_NONBLOCK: a FIFO must not hang the open waiting for a writer; O_NOCTTY: a
# terminal must not become the daemon's; O_NOFOLLOW: the resolved path's last
# part cannot have become a link since.
OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NOFOLLOW | os.O_NONBLOCK


@dataclass(frozen=True)
class ServedFile:
    fd: int  # the caller closes it
    size: int
    mtime: float


def open_served(roots: Sequence[Path], path: Path) -> ServedFile:
    """Open `path` for reading if what it really is lies under one of `roots`
    (resolved paths).  FileNotFoundError when there is nothing there;
    PermissionError (or another OSError) when it may not be handed out."""
    try:
        real = path.resolve()
    except RuntimeError:  # how Python 3.11 reports a symbolic link loop
        raise PermissionError(f"{path}: symbolic link loop") from None
    if not any(real.is_relative_to(root) for root in roots):
        raise PermissionError(f"{path} leads outside the served directories")
    fd = os.open(real, OPEN_FLAGS)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise PermissionError(f"{path} is not a regular file")
    return ServedFile(fd, info.st_size, info.st_mtime)
