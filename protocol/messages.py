"""The messages of the protocol, as typed values, and their validation.

Each message is an immutable NamedTuple with `to_wire()` giving the map that goes in
a frame.  `parse_client_message` and `parse_server_message` turn a received
map back into one of them, or raise ProtocolError naming what was wrong, so a
program never touches an unchecked map.  (NamedTuple rather than dataclass:
the thin client imports this, and dataclasses would cost it 5 ms a command.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import msgpack

from . import PROTOCOL_VERSION
from .errors import ProtocolError, VersionMismatch
from .framing import unpack_map

NONCE_SIZE = 16
# A command line is parsed by the daemon; these bound the work a single
# request can ask of its option parser (argparse is quadratic in arguments).
MAX_ARGS = 4096
MAX_ARGS_BYTES = 4 << 20
MAX_UINT64 = 2**64 - 1
# stderr: a line for the user's standard error as it is (a remote command's own).
OUTPUT_KINDS = ("data", "info", "warning", "error", "stderr")
OutputKind = Literal["data", "info", "warning", "error", "stderr"]


# -- field checks ------------------------------------------------------------

_MISSING = object()


def _field(
    message: dict[str, Any],
    what: str,
    key: str,
    check: Callable[[Any], bool],
    *,
    optional: bool = False,
) -> Any:
    value = message.get(key, _MISSING)
    if value is _MISSING or (optional and value is None):
        if optional:
            return None
        raise ProtocolError(f"{what} is missing '{key}'")
    if not check(value):
        raise ProtocolError(f"{what} has a bad '{key}': {check.__doc__}")
    return value


def _uint(value: Any) -> bool:
    """expected an unsigned 64-bit integer"""
    return type(value) is int and 0 <= value <= MAX_UINT64


def _int(value: Any) -> bool:
    """expected an integer"""
    return type(value) is int


def _str(value: Any) -> bool:
    """expected a string"""
    return isinstance(value, str)


def _bin(value: Any) -> bool:
    """expected binary data"""
    return isinstance(value, bytes)


def _str_list(value: Any) -> bool:
    """expected a list of strings"""
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _bin_list(value: Any) -> bool:
    """expected a list of binary certificates"""
    return isinstance(value, list) and all(isinstance(item, bytes) for item in value)


def _str_map(value: Any) -> bool:
    """expected a map of strings to strings"""
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _nonce(value: Any) -> bool:
    """expected 16 random bytes"""
    return isinstance(value, bytes) and len(value) == NONCE_SIZE


def _kind(value: Any) -> bool:
    """expected one of data, info, warning, error"""
    return value in OUTPUT_KINDS


def _same_protocol(message: dict[str, Any], what: str) -> None:
    """Raise VersionMismatch unless the message is of this protocol version.

    Read before any other field: a peer of another version may send other
    fields, and it is told which side to upgrade, not what it left out.  A
    message without the field is from a peer older than the field (version 1).
    """
    theirs = _field(message, what, "protocol", _uint, optional=True)
    theirs = 1 if theirs is None else theirs
    if theirs != PROTOCOL_VERSION:
        release = message.get("version")
        raise VersionMismatch(theirs, release if isinstance(release, str) else None)


# -- client to server --------------------------------------------------------


class RequestBody(NamedTuple):
    """What a request asks for; signed byte for byte by its sender."""

    cmd: str
    args: list[str]
    user: str
    ts: int
    nonce: bytes
    noderange: str | None = None
    stdin: bytes | None = None  # standard input that fits in the request
    stdin_sha256: bytes | None = None  # or the digest of input streamed in `stdin` frames
    cwd: str | None = None
    env: dict[str, str] | None = None
    protocol: int = PROTOCOL_VERSION  # the sender's; the receiver refuses another

    def encode(self) -> bytes:
        body: bytes = msgpack.packb(
            {
                "protocol": self.protocol,
                "cmd": self.cmd,
                "args": self.args,
                "noderange": self.noderange,
                "stdin": self.stdin,
                "stdin_sha256": self.stdin_sha256,
                "cwd": self.cwd,
                "env": self.env or {},
                "user": self.user,
                "ts": self.ts,
                "nonce": self.nonce,
            },
            use_bin_type=True,
        )
        return body

    @classmethod
    def decode(cls, body: bytes) -> RequestBody:
        message = unpack_map(body, "request body")
        what = "request body"
        _same_protocol(message, what)
        return cls(
            cmd=_field(message, what, "cmd", _str),
            args=_field(message, what, "args", _str_list),
            user=_field(message, what, "user", _str),
            ts=_field(message, what, "ts", _int),
            nonce=_field(message, what, "nonce", _nonce),
            noderange=_field(message, what, "noderange", _str, optional=True),
            stdin=_field(message, what, "stdin", _bin, optional=True),
            stdin_sha256=_field(message, what, "stdin_sha256", _bin, optional=True),
            cwd=_field(message, what, "cwd", _str, optional=True),
            env=_field(message, what, "env", _str_map, optional=True),
        )._bounded()

    def _bounded(self) -> RequestBody:
        if len(self.args) > MAX_ARGS:
            raise ProtocolError(
                f"too many arguments ({len(self.args)}; at most {MAX_ARGS}): "
                "give the nodes as one noderange, or a file with ^FILE"
            )
        if sum(map(len, self.args)) > MAX_ARGS_BYTES:
            raise ProtocolError(
                f"the arguments are over {MAX_ARGS_BYTES >> 20} MiB: "
                "give the nodes as one noderange, or a file with ^FILE"
            )
        return self


class Request(NamedTuple):
    """A signed request: the body's exact bytes, their signature, and optionally
    the signer's certificate chain (present when the signer is not the TLS peer)."""

    id: int
    body: bytes
    sig: bytes
    chain: tuple[bytes, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"t": "req", "id": self.id, "body": self.body, "sig": self.sig}
        if self.chain:
            wire["chain"] = list(self.chain)
        return wire


class Cancel(NamedTuple):
    id: int

    def to_wire(self) -> dict[str, Any]:
        return {"t": "cancel", "id": self.id}


STDIN_CHUNK = 1 << 20  # the data of one `stdin` frame of streamed input, at most


class StdinData(NamedTuple):
    """Input for a request that streams it (its body carries the digest of the
    whole), or for an interactive one; empty `data` means end of input."""

    id: int
    data: bytes

    def to_wire(self) -> dict[str, Any]:
        return {"t": "stdin", "id": self.id, "data": self.data}


ClientMessage = Request | Cancel | StdinData


def parse_client_message(message: dict[str, Any]) -> ClientMessage:
    kind = message.get("t")
    what = f"'{kind}' message"
    if kind == "req":
        chain = _field(message, what, "chain", _bin_list, optional=True) or []
        return Request(
            id=_field(message, what, "id", _uint),
            body=_field(message, what, "body", _bin),
            sig=_field(message, what, "sig", _bin),
            chain=tuple(chain),
        )
    if kind == "cancel":
        return Cancel(id=_field(message, what, "id", _uint))
    if kind == "stdin":
        return StdinData(
            id=_field(message, what, "id", _uint), data=_field(message, what, "data", _bin)
        )
    raise ProtocolError(f"unknown message type {kind!r} from client")


# -- server to client --------------------------------------------------------


class Hello(NamedTuple):
    """The daemon's greeting: its host name, its release, its protocol
    version; to a service node, also the stamp of the definitions it would
    take and that of the revocation list (it takes each again only when its
    stamp has changed)."""

    server: str
    version: str
    protocol: int = PROTOCOL_VERSION
    stamp: int | None = None
    crl: int | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "t": "hello",
            "server": self.server,
            "version": self.version,
            "protocol": self.protocol,
        }
        if self.stamp is not None:
            wire["stamp"] = self.stamp
        if self.crl is not None:
            wire["crl"] = self.crl
        return wire


class Output(NamedTuple):
    """One record of a command's output: `text` for people, `data` for programs."""

    id: int
    kind: OutputKind
    text: str | None = None
    node: str | None = None
    data: Any = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"t": "out", "id": self.id, "kind": self.kind}
        if self.node is not None:
            wire["node"] = self.node
        if self.text is not None:
            wire["text"] = self.text
        if self.data is not None:
            wire["data"] = self.data
        return wire


class Progress(NamedTuple):
    id: int
    what: str
    done: int
    total: int | None
    unit: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": "progress",
            "id": self.id,
            "what": self.what,
            "done": self.done,
            "total": self.total,
            "unit": self.unit,
        }


class Done(NamedTuple):
    id: int
    rc: int

    def to_wire(self) -> dict[str, Any]:
        return {"t": "done", "id": self.id, "rc": self.rc}


class ErrorFrame(NamedTuple):
    """A connection-level error, sent just before the server closes."""

    text: str

    def to_wire(self) -> dict[str, Any]:
        return {"t": "error", "text": self.text}


ServerMessage = Hello | Output | Progress | Done | ErrorFrame


def parse_server_message(message: dict[str, Any]) -> ServerMessage:
    kind = message.get("t")
    what = f"'{kind}' message"
    if kind == "out":
        return Output(
            id=_field(message, what, "id", _uint),
            kind=_field(message, what, "kind", _kind),
            text=_field(message, what, "text", _str, optional=True),
            node=_field(message, what, "node", _str, optional=True),
            data=message.get("data"),
        )
    if kind == "progress":
        return Progress(
            id=_field(message, what, "id", _uint),
            what=_field(message, what, "what", _str),
            done=_field(message, what, "done", _int),
            total=_field(message, what, "total", _int, optional=True),
            unit=_field(message, what, "unit", _str),
        )
    if kind == "done":
        return Done(id=_field(message, what, "id", _uint), rc=_field(message, what, "rc", _int))
    if kind == "hello":
        _same_protocol(message, what)
        return Hello(
            server=_field(message, what, "server", _str),
            version=_field(message, what, "version", _str),
            stamp=_field(message, what, "stamp", _int, optional=True),
            crl=_field(message, what, "crl", _int, optional=True),
        )
    if kind == "error":
        return ErrorFrame(text=_field(message, what, "text", _str))
    raise ProtocolError(f"unknown message type {kind!r} from server")
