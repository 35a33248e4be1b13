"""Finding the daemon and the user's credentials.

(os.path rather than pathlib, NamedTuple rather than dataclass: each would
add milliseconds to every command's start.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from xcat_protocol import DEFAULT_PORT

from .errors import ClientError


class Target(NamedTuple):
    host: str
    port: int

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Target:
        """XCATHOST as `host`, `host:port` or `[v6addr]:port`; default localhost:3001."""
        value = environ.get("XCATHOST", "").strip() or "localhost"
        try:
            return cls.parse(value)
        except ValueError:
            raise ClientError(f"XCATHOST={value!r} is not host[:port]") from None

    @classmethod
    def parse(cls, value: str) -> Target:
        """`host`, `host:port` or `[v6addr]:port`; ValueError for anything else."""
        host, port = value, str(DEFAULT_PORT)
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            if rest.startswith(":"):
                port = rest[1:]
        elif value.count(":") == 1:
            host, port = value.split(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host[:port]")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Credentials(NamedTuple):
    ca_file: str
    cred_file: str
    cred_pem: bytes

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Credentials:
        """ca.pem and client-cred.pem from XCAT_CRED_DIR (default ~/.xcat)."""
        directory = environ.get("XCAT_CRED_DIR") or os.path.expanduser("~/.xcat")
        ca_file = os.path.join(directory, "ca.pem")
        cred_file = os.path.join(directory, "client-cred.pem")
        _readable(ca_file)
        return cls(ca_file, cred_file, _readable(cred_file))

    @property
    def directory(self) -> str:
        return os.path.dirname(self.cred_file)


def _readable(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ClientError(
            f"cannot read credentials file {path}: {exc.strerror} (set XCAT_CRED_DIR)"
        ) from None
