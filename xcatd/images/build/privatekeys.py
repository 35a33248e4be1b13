"""Finding private keys in a root image.

A stateless image is downloaded by anything on the network, so it must hold
no private key (DESIGN.md section 5): genimage refuses to finish an image
that has one, and the tests scan every image they build.

A private key is a PEM block (PKCS#1, PKCS#8, EC, DSA, encrypted, and the
OpenSSH format): its BEGIN line, optional headers, then base64.  The BEGIN
line alone is not enough - ssh-keygen and sshd carry it as a string to
write keys with - so real base64 must follow it.  Every regular file is
read (through a memory map, without following links), documentation
included: an example key in a manual page is still a key anyone can use.
Compiled programs and libraries (ELF) are not: the keys they hold are
published test vectors (GnuTLS's self-tests), the same in every copy.
"""

from __future__ import annotations

import mmap
import os
import re
import stat
from pathlib import Path

MARKER = b"PRIVATE KEY-----"
ELF = b"\x7fELF"
PEM_KEY = re.compile(
    rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----\r?\n"
    rb"(?:[A-Za-z-]+: [^\r\n]*\r?\n)*\r?\n?"  # Proc-Type, DEK-Info of legacy encrypted keys
    rb"[A-Za-z0-9+/=]{40,}"
)


def private_keys(root: Path) -> list[Path]:
    """Every file under `root` that holds a private key, sorted."""
    found = []
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if holds_private_key(path):
                found.append(path)
    return sorted(found)


def holds_private_key(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # a link, or gone
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            return False
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as data:
            if data[:4] == ELF or data.find(MARKER) < 0:
                return False
            return PEM_KEY.search(data) is not None
    finally:
        os.close(fd)
