"""TFTP without I/O: packets, option negotiation, and one read transfer as a state machine.

RFC 1350 (the protocol), RFC 2347 (option negotiation), RFC 2348 (blksize),
RFC 2349 (timeout, tsize) and RFC 7440 (windowsize), for a read-only server.
Nothing here touches a socket, a file or a clock: `tftp.py` feeds a
`ReadTransfer` the datagrams it receives, the file bytes it asks for and the
time, and sends what it hands back; the tests do the same packet by packet.

Decisions where the RFCs leave a choice:
- only octet mode is served; netascii would rewrite line ends, which no boot
  loader wants, and a kernel fetched in it would arrive corrupted;
- a leading "/" is ignored, so "/pxelinux.0" and "pxelinux.0" name the same
  file under the root (PXE ROMs send both; tftp-hpa -s behaves the same), and
  any ".." component is refused rather than resolved;
- block numbers roll over from 65535 to 0, as tftp-hpa and iPXE expect.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import Enum, IntEnum
from pathlib import PurePosixPath

from ..errors import XcatdError

DEFAULT_BLKSIZE = 512
MIN_BLKSIZE, MAX_BLKSIZE = 8, 65464  # RFC 2348
MAX_WINDOWSIZE = 65535  # RFC 7440
# RFC 2349 allows up to 255 s; so long a timeout would let one silent client
# hold a transfer for MAX_RETRIES x 255 s, so more than 10 s is left out.
MIN_TIMEOUT, MAX_TIMEOUT = 1, 10  # seconds
DEFAULT_TIMEOUT = 1.0  # seconds before a retransmission, as tftp-hpa
MAX_RETRIES = 5  # retransmissions without progress before the client counts as gone
# A window stays in memory until acknowledged; this bounds it per transfer.
MAX_WINDOW_BYTES = 256 * 1024
READ_AHEAD = 64 * 1024  # the least a file read asks for
BLOCK_NUMBERS = 65536

_SHORT = struct.Struct("!H")
_TWO_SHORTS = struct.Struct("!HH")


class Opcode(IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(IntEnum):
    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8  # RFC 2347


class MalformedPacket(XcatdError, ValueError):
    """A datagram that is not a packet a read-only TFTP server accepts."""


class TftpRefused(XcatdError):
    """A request this server will not serve; the message says why, in one line."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def datagram(self) -> bytes:
        return encode_error(self.code, str(self))


@dataclass(frozen=True)
class Request:
    """A read (RRQ) or write (WRQ) request; mode and option names in lower case."""

    opcode: Opcode
    filename: str
    mode: str
    options: dict[str, str]


@dataclass(frozen=True)
class Ack:
    block: int


@dataclass(frozen=True)
class ErrorPacket:
    code: int
    message: str


def parse_packet(datagram: bytes) -> Request | Ack | ErrorPacket:
    """Decode what a client may send a server; MalformedPacket for anything else."""
    if len(datagram) < 4:
        raise MalformedPacket(f"a {len(datagram)}-byte datagram is too short for TFTP")
    (opcode,) = _SHORT.unpack_from(datagram)
    if opcode in (Opcode.RRQ, Opcode.WRQ):
        return _parse_request(Opcode(opcode), datagram[2:])
    if opcode == Opcode.ACK:
        return Ack(_SHORT.unpack_from(datagram, 2)[0])
    if opcode == Opcode.ERROR:
        (code,) = _SHORT.unpack_from(datagram, 2)
        message = datagram[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
        return ErrorPacket(code, message)
    raise MalformedPacket(f"opcode {opcode} is not a request, an ACK or an ERROR")


def _parse_request(opcode: Opcode, body: bytes) -> Request:
    if not body.endswith(b"\0"):
        raise MalformedPacket("request fields must each end with a NUL byte")
    try:
        filename, mode, *options = body[:-1].decode().split("\0")
    except UnicodeDecodeError:
        raise MalformedPacket("request is not UTF-8 text") from None
    except ValueError:
        raise MalformedPacket("request without a transfer mode") from None
    if not filename:
        raise MalformedPacket("request without a file name")
    # Option names are case-insensitive (RFC 2347).  zip() drops a last name
    # without its value, as tftp-hpa does: some clients pad requests with NULs.
    pairs = zip(options[::2], options[1::2], strict=False)
    return Request(opcode, filename, mode.lower(), {name.lower(): value for name, value in pairs})


def encode_data(block: int, payload: bytes | memoryview) -> bytes:
    """A DATA packet; `block` counts on past 65535 and is sent modulo 65536."""
    return _TWO_SHORTS.pack(Opcode.DATA, block % BLOCK_NUMBERS) + payload


def encode_oack(options: dict[str, int]) -> bytes:
    fields = b"".join(f"{name}\0{value}\0".encode() for name, value in options.items())
    return _SHORT.pack(Opcode.OACK) + fields


def encode_error(code: ErrorCode, message: str) -> bytes:
    return _TWO_SHORTS.pack(Opcode.ERROR, code) + message.encode() + b"\0"


def requested_path(request: Request) -> PurePosixPath:
    """The file a request asks for, relative to the TFTP root; TftpRefused if it may not have it."""
    if request.opcode == Opcode.WRQ:
        raise TftpRefused(ErrorCode.ACCESS_VIOLATION, "this TFTP server is read-only")
    if request.mode != "octet":
        raise TftpRefused(
            ErrorCode.ILLEGAL_OPERATION, f"mode {request.mode!r} is not served; use octet (binary)"
        )
    path = PurePosixPath(request.filename.lstrip("/"))
    if ".." in path.parts:
        raise TftpRefused(ErrorCode.ACCESS_VIOLATION, f"{request.filename}: '..' is not allowed")
    return path


def negotiate(requested: dict[str, str], file_size: int) -> dict[str, int]:
    """The options to acknowledge in an OACK, with the values this server will use.

    Options not understood, or with values that are not numbers in range
    (blksize 7, windowsize 0), are left out, as RFC 2347 allows.  blksize and
    windowsize above the limits are lowered, as the client must accept less
    than it asked; windowsize also so that a window fits in MAX_WINDOW_BYTES.
    timeout must be echoed unchanged (RFC 2349), so one outside MIN_TIMEOUT..
    MAX_TIMEOUT is left out rather than clamped, and the default applies.
    tsize is answered with the file's size.
    """
    accepted: dict[str, int] = {}
    for name, text in requested.items():
        value = _number(text)
        if value is None:
            continue
        if name == "blksize" and value >= MIN_BLKSIZE:
            accepted[name] = min(value, MAX_BLKSIZE)
        elif name == "windowsize" and value >= 1:
            accepted[name] = min(value, MAX_WINDOWSIZE)
        elif name == "timeout" and MIN_TIMEOUT <= value <= MAX_TIMEOUT:
            accepted[name] = value
        elif name == "tsize":
            accepted[name] = file_size
    if "windowsize" in accepted:
        blksize = accepted.get("blksize", DEFAULT_BLKSIZE)
        accepted["windowsize"] = min(accepted["windowsize"], MAX_WINDOW_BYTES // blksize)
    return accepted


def _number(text: str) -> int | None:
    # At most 10 digits: int() of a huge digit string is slow or refused.
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None


class State(Enum):
    SENDING = "sending"
    DONE = "done"  # the client acknowledged the last block
    TIMED_OUT = "timed out"  # the client stopped answering
    ABORTED = "aborted"  # the client sent an ERROR


class ReadTransfer:
    """The server's side of one read request, from its first packet to the last ACK.

    Drive it with `receive()` for each datagram from the client, `tick()` when
    `deadline` passes, and `feed()` with the file bytes `wanted()` names; send
    what `datagrams_to_send()` returns after each call.  Blocks are counted
    from 1 without limit here and sent modulo 65536.  The window is the blocks
    sent and not yet acknowledged; an ACK inside it starts the next window
    after the acknowledged block (RFC 7440).  A repeated ACK of the block
    before the window means the client lost the window's first block: with
    windowsize > 1 the window is resent at once, but only once per window, so
    duplicates cannot start a storm; with windowsize 1 (and for any other ACK)
    only a timeout retransmits (no sorcerer's apprentice).  Without progress a
    transfer ends after at most (MAX_RETRIES + 2) x MAX_TIMEOUT seconds.
    """

    def __init__(self, options: dict[str, str], file_size: int, now: float) -> None:
        self.options = negotiate(options, file_size)
        self.blksize = self.options.get("blksize", DEFAULT_BLKSIZE)
        self.windowsize = self.options.get("windowsize", 1)
        self.timeout = float(self.options.get("timeout", DEFAULT_TIMEOUT))
        self.state = State.SENDING
        self.client_error: ErrorPacket | None = None
        self.deadline = math.inf
        self._acked = 0  # the last block the client acknowledged
        self._window: list[memoryview] = []  # payloads of blocks _acked + 1, _acked + 2, ...
        self._last_queued = False  # the window holds the last block
        self._ahead = memoryview(b"")  # file bytes read and not yet in the window
        self._read_offset = 0
        self._file_read = False  # a short read found the end of the file
        self._retries = 0
        self._window_restarted = False  # a repeated ACK already resent this window
        self._outbox: list[bytes] = []
        # Without options there is no OACK: DATA 1 is the answer (RFC 2347).
        self._oack = encode_oack(self.options) if self.options else None
        if self._oack:
            self._transmit(now)

    @property
    def finished(self) -> bool:
        return self.state is not State.SENDING

    def wanted(self) -> tuple[int, int] | None:
        """(offset, length) of the file bytes `feed()` needs before more can be sent.

        A shorter read than `length` means the file ends there.  Reads go at
        least READ_AHEAD bytes ahead, so that small blocks do not each cost a
        trip to a worker thread.
        """
        if self.finished or self._oack or self._last_queued:
            return None
        missing = (self.windowsize - len(self._window)) * self.blksize - len(self._ahead)
        return (self._read_offset, max(missing, READ_AHEAD)) if missing > 0 else None

    def feed(self, data: bytes, now: float) -> None:
        """Take the bytes `wanted()` asked for, and send the window they complete."""
        wanted = self.wanted()
        if wanted is None:
            raise RuntimeError("file data fed to a transfer that did not want any")
        self._read_offset += len(data)
        self._file_read = len(data) < wanted[1]
        self._ahead = memoryview(bytes(self._ahead) + data)
        self._fill_window()
        self._transmit(now)

    def receive(self, datagram: bytes, now: float) -> None:
        """Take a datagram from the client; anything but an ACK or ERROR is ignored."""
        if self.finished:
            return
        try:
            packet = parse_packet(datagram)
        except MalformedPacket:
            return  # noise on the transfer's port changes nothing
        if isinstance(packet, ErrorPacket):
            self.state, self.client_error = State.ABORTED, packet
        elif isinstance(packet, Ack):
            self._acknowledge(packet.block, now)

    def tick(self, now: float) -> None:
        """Let time pass: past the deadline, retransmit, or give up after MAX_RETRIES."""
        if self.finished or now < self.deadline:
            return
        if self._retries == MAX_RETRIES:
            self.state, self.deadline = State.TIMED_OUT, math.inf
            return
        self._retries += 1
        self._transmit(now)

    def datagrams_to_send(self) -> list[bytes]:
        """What to send now, in order; each call hands it over once."""
        outgoing, self._outbox = self._outbox, []
        return outgoing

    def _acknowledge(self, wire_block: int, now: float) -> None:
        if self._oack:
            if wire_block == 0:
                self._oack = None
                self._progress(now)
            return
        newly_acked = (wire_block - self._acked) % BLOCK_NUMBERS
        if newly_acked == 0:
            self._restart_window(now)
            return
        if newly_acked > len(self._window):
            return  # a block never sent
        del self._window[:newly_acked]
        self._acked += newly_acked
        if self._last_queued and not self._window:
            self.state, self.deadline = State.DONE, math.inf
        else:
            self._progress(now)

    def _restart_window(self, now: float) -> None:
        """Resend the window on a repeated ACK of the block before it (RFC 7440)."""
        if self.windowsize == 1 or self._window_restarted or self.wanted() is not None:
            return  # windowsize 1: answering duplicates is the sorcerer's apprentice
        self._window_restarted = True
        self._transmit(now)

    def _progress(self, now: float) -> None:
        self._retries = 0
        self._window_restarted = False
        self._fill_window()
        if self.wanted() is None:
            self._transmit(now)
        # else feed() sends the window once it has the file's bytes

    def _fill_window(self) -> None:
        """Cut blocks from the bytes read ahead until the window is full or they run out."""
        while len(self._window) < self.windowsize and not self._last_queued:
            if len(self._ahead) < self.blksize and not self._file_read:
                return
            block, self._ahead = self._ahead[: self.blksize], self._ahead[self.blksize :]
            self._window.append(block)
            # A short block, even an empty one, is how the client knows the file ended.
            self._last_queued = len(block) < self.blksize

    def _transmit(self, now: float) -> None:
        if self._oack:
            self._outbox.append(self._oack)
        else:
            first = self._acked + 1
            self._outbox += [encode_data(first + i, data) for i, data in enumerate(self._window)]
        self.deadline = now + self.timeout
