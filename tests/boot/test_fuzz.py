"""The boot services' parsers fed whatever a peer may send, by Hypothesis.

Every function that reads a peer's bytes either answers or raises its own
documented error, never anything else, and takes a bounded time (each
example's deadline); a TFTP transfer, whatever datagrams come, ends within
its bound of silence and never hands a client a wrong byte; and the HTTP
server, fed arbitrary requests on a live socket, answers or closes each
connection, logs no error, and serves the next client.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.boot.test_http import Reply
from tests.boot.test_tftp import Client, rrq
from tests.boot.test_tftp import Server as TftpServer
from tests.boot.test_tftp_protocol import ack
from xcatd.boot.byteranges import ByteRange, Unsatisfiable, parse_range
from xcatd.boot.http import decode_target, parse_form, serve_http
from xcatd.boot.served import open_served
from xcatd.boot.statusport import BadLine, reported_state
from xcatd.boot.tftp import serve_tftp
from xcatd.boot.tftp_protocol import (
    MAX_BLKSIZE,
    MAX_RETRIES,
    MAX_TIMEOUT,
    MAX_WINDOW_BYTES,
    MAX_WINDOWSIZE,
    MIN_BLKSIZE,
    MIN_TIMEOUT,
    Ack,
    ErrorPacket,
    MalformedPacket,
    ReadTransfer,
    Request,
    State,
    TftpRefused,
    negotiate,
    parse_packet,
    requested_path,
)

# Modest, so that the whole set runs in seconds; no example database is
# written into the source tree.
fuzz = settings(max_examples=300, deadline=timedelta(seconds=1), database=None)


# Shared by the TFTP and HTTP tests


# Paths of pieces that make traversal and confusion; the roots hold the names.
PATHS = st.lists(
    st.sampled_from(["", ".", "..", "%2e%2e", "%2E.", ".%2e", "%2f", "%2F", "%00", "%", "%%",
                     "%25", "%252e", "%c0%ae", "file", "link-out", "loop", "dir", "?", "?a=..",
                     "#", "//", "\\", "[", "]", "http:", "é", "x" * 300]),
    max_size=8,
).map("/".join)  # fmt: skip


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """installdir and tftpdir, with a file, a directory, a link out and a link loop."""
    base = tmp_path_factory.mktemp("roots")
    (base / "secret").write_bytes(b"not to be served")
    install, tftpboot = base / "install", base / "tftpboot"
    for root in (install, tftpboot):
        (root / "dir").mkdir(parents=True)
        (root / "file").write_bytes(b"served")
        (root / "link-out").symlink_to(base / "secret")
        (root / "loop").symlink_to("loop")
    return install.resolve(), tftpboot.resolve()


class ErrorRecords(logging.Handler):
    """What a logger logs as errors within a with block."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logging.ERROR)
        self.logger = logger
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> list[logging.LogRecord]:
        self.logger.addHandler(self)
        return self.records

    def __exit__(self, *exc_info: object) -> None:
        self.logger.removeHandler(self)


# TFTP


def nul_separated(fields: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Fields each ended by a NUL byte, as a TFTP request has them."""
    return st.lists(fields, max_size=7).map(lambda items: "".join(f"{i}\0" for i in items).encode())


OPTION_WORDS = st.sampled_from(["octet", "netascii", "blksize", "tsize", "timeout",
                                "windowsize", "0", "8", "65464", "99999999999", "-1", "",
                                "../etc/passwd", "/pxelinux.0", "x" * 300])  # fmt: skip
OPCODES = st.integers(0, 7).map(lambda opcode: opcode.to_bytes(2, "big"))
TFTP_DATAGRAMS = st.binary(max_size=600) | st.builds(
    bytes.__add__, OPCODES, st.binary(max_size=80) | nul_separated(OPTION_WORDS | st.text())
)
REQUEST_OPTIONS = st.dictionaries(OPTION_WORDS, OPTION_WORDS | st.text(max_size=12), max_size=5)


@fuzz
@given(TFTP_DATAGRAMS)
def test_any_datagram_is_a_packet_or_malformed(datagram: bytes) -> None:
    try:
        packet = parse_packet(datagram)
    except MalformedPacket:
        return
    assert isinstance(packet, Request | Ack | ErrorPacket)


@fuzz
@given(TFTP_DATAGRAMS.map(lambda datagram: b"\x00\x01" + datagram))
def test_any_request_names_a_file_under_the_root_or_is_refused(datagram: bytes) -> None:
    try:
        path = requested_path(parse_packet(datagram))
    except (MalformedPacket, TftpRefused):
        return
    assert not path.is_absolute()
    assert ".." not in path.parts


@fuzz
@given(REQUEST_OPTIONS, st.integers(0, 2**63))
def test_negotiated_options_are_within_the_limits(options: dict[str, str], size: int) -> None:
    accepted = negotiate(options, size)
    blksize = accepted.get("blksize", MIN_BLKSIZE)
    assert MIN_BLKSIZE <= blksize <= MAX_BLKSIZE
    assert 1 <= accepted.get("windowsize", 1) <= MAX_WINDOWSIZE
    assert accepted.get("windowsize", 1) * blksize <= MAX_WINDOW_BYTES
    assert MIN_TIMEOUT <= accepted.get("timeout", MIN_TIMEOUT) <= MAX_TIMEOUT
    assert accepted.get("tsize", size) == size


def serve_file(transfer: ReadTransfer, content: bytes, now: float) -> list[bytes]:
    """Give the transfer the file bytes it asks for, as the server does; what it sends then."""
    if (wanted := transfer.wanted()) is not None:
        offset, length = wanted
        transfer.feed(content[offset : offset + length], now)
    sent = transfer.datagrams_to_send()
    for datagram in sent:
        assert datagram[:2] == b"\x00\x06" or len(datagram) <= 4 + transfer.blksize
    assert len(sent) <= transfer.windowsize or sent[0][:2] == b"\x00\x06"
    return sent


CLIENT_DATAGRAMS = st.one_of(
    st.integers(0, 65535).map(ack),
    st.binary(max_size=12).map(lambda message: b"\x00\x05\x00\x00" + message),
    TFTP_DATAGRAMS,
)


@fuzz
@given(
    options=REQUEST_OPTIONS,
    size=st.integers(0, 5000),
    events=st.lists(CLIENT_DATAGRAMS | st.floats(0, 30), max_size=40),
)
def test_a_transfer_takes_anything_and_then_ends_within_its_bound_of_silence(
    options: dict[str, str], size: int, events: list[bytes | float]
) -> None:
    content = bytes(size)
    now = 0.0
    transfer = ReadTransfer(options, size, now)
    for event in events:  # a datagram from the client, or seconds of its silence
        serve_file(transfer, content, now)
        if isinstance(event, bytes):
            transfer.receive(event, now)
        else:
            now += event
            transfer.tick(now)
    silence_from = now
    while not transfer.finished:
        serve_file(transfer, content, now)
        now = transfer.deadline
        assert now - silence_from <= (MAX_RETRIES + 2) * MAX_TIMEOUT
        transfer.tick(now)


@dataclass
class Receiver:
    """A TFTP client's side as RFC 1350 and 7440 have it: it keeps the blocks
    that come in order, and acknowledges the last of them after each datagram."""

    blksize: int
    blocks: list[bytes] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.blocks) and len(self.blocks[-1]) < self.blksize

    def take(self, datagram: bytes) -> bytes:
        """The ACK that answers a datagram from the server."""
        block = int.from_bytes(datagram[2:4], "big")
        if datagram[:2] == b"\x00\x03" and block == len(self.blocks) + 1 and not self.complete:
            self.blocks.append(datagram[4:])
        return ack(len(self.blocks))  # 0 also answers the OACK


def noise(chance: random.Random) -> bytes:
    """Garbage on the transfer's port: anything but an ACK or an ERROR."""
    datagram = chance.randbytes(chance.randrange(20))
    return b"\x00\x03" + datagram if datagram[:2] in (b"\x00\x04", b"\x00\x05") else datagram


@fuzz
@given(
    size=st.integers(0, 3000),
    blksize=st.integers(MIN_BLKSIZE, 600),
    windowsize=st.integers(1, 8),
    loss=st.sampled_from([0.0, 0.1, 0.3]),
    chance=st.randoms(use_true_random=False),
)
def test_whatever_is_lost_or_added_a_client_never_gets_a_wrong_byte(
    size: int, blksize: int, windowsize: int, loss: float, chance: random.Random
) -> None:
    content = chance.randbytes(size)
    options = {"blksize": str(blksize), "windowsize": str(windowsize)}
    transfer, receiver, now = ReadTransfer(options, size, 0.0), Receiver(blksize), 0.0
    in_flight = serve_file(transfer, content, now)  # on the way to the client, in order
    for _ in range(100_000):
        if transfer.finished:
            break
        if not in_flight:  # all delivered or lost: the server waits for its timeout
            now = transfer.deadline
            transfer.tick(now)
            in_flight = serve_file(transfer, content, now)
            continue
        datagram = in_flight.pop(0)
        if chance.random() < loss:
            continue
        for arriving in (noise(chance), receiver.take(datagram)):
            if chance.random() >= loss:
                transfer.receive(arriving, now)
                in_flight += serve_file(transfer, content, now)
    assert transfer.state is State.DONE or (loss and transfer.state is State.TIMED_OUT)
    if transfer.state is State.DONE:
        assert b"".join(receiver.blocks) == content


async def tftp_then_a_bystander(root: Path, datagrams: list[bytes]) -> bytes:
    """What a node fetches from a fresh TFTP server after a scanner sent it `datagrams`.

    A server of its own for each example: a crash is then the example's own,
    and Hypothesis shrinks it to what caused it."""
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = TftpServer(root, await nursery.start(serve_tftp, root, "127.0.0.1", 0))
            with Client(server) as scanner:
                for datagram in datagrams:
                    await scanner.sock.sendto(datagram, scanner.server)
            with Client(server) as node:
                await node.request("file")
                received = await node.read_to_end(await node.receive())
            nursery.cancel_scope.cancel()
    return received


TFTP_REQUESTS = st.builds(rrq, PATHS) | st.builds(
    lambda path, mode, options: rrq(path, mode) + options,
    PATHS, OPTION_WORDS, nul_separated(OPTION_WORDS),
)  # fmt: skip


@fuzz
@given(datagrams=st.lists(TFTP_DATAGRAMS | TFTP_REQUESTS, max_size=8))
def test_the_tftp_server_takes_anything_and_serves_on(
    roots: tuple[Path, Path], datagrams: list[bytes]
) -> None:
    with ErrorRecords(logging.getLogger("xcatd.boot.tftp")) as errors:
        received = trio.run(tftp_then_a_bystander, roots[1], datagrams)
    assert [record.getMessage() for record in errors] == []
    assert received == b"served"


# HTTP


def url_paths(root: str) -> st.SearchStrategy[bytes]:
    """Request targets: paths under `root`, URLs, bare pieces, or any bytes."""
    targets = st.one_of(
        PATHS.map(lambda path: root + "/" + path),
        PATHS.map(lambda path: "http://host" + root + "/" + path),
        st.builds(str.__add__, st.sampled_from(["http://", "http://[", "https://[::1", "//"]),
                  PATHS),
        PATHS,
    )  # fmt: skip
    return targets.map(lambda target: target.encode()) | st.binary(max_size=100)


@fuzz
@given(data=st.data())
def test_any_target_is_a_file_under_a_root_or_not_found(
    roots: tuple[Path, Path], data: st.DataObject
) -> None:
    target = data.draw(url_paths(str(roots[0])) | url_paths(str(roots[1])))
    path = decode_target(target)
    if path is None:
        return
    assert path.startswith("/")
    assert "\0" not in path
    assert ".." not in path.split("/")
    try:
        opened = open_served(roots, Path(path))
    except OSError:
        return  # 404
    try:
        real = Path(os.readlink(f"/proc/self/fd/{opened.fd}"))
        assert any(real.is_relative_to(root) for root in roots)
    finally:
        os.close(opened.fd)


RANGE_TEXT = st.text(alphabet="0123456789-, \t=bytesBYTES", max_size=40)


@fuzz
@given(st.none() | RANGE_TEXT | RANGE_TEXT.map("bytes=".__add__) | st.text(), st.integers(0, 2**63))
def test_any_range_header_is_a_range_of_the_file_the_whole_file_or_416(
    value: str | None, size: int
) -> None:
    try:
        span = parse_range(value, size)
    except Unsatisfiable:
        return
    if span is not None:
        assert isinstance(span, ByteRange)
        assert 0 <= span.start < span.stop <= size


@fuzz
@given(st.binary(max_size=300) | st.text(alphabet="ab=&%2f;+", max_size=60).map(str.encode))
def test_any_form_is_fields_or_a_bad_request(body: bytes) -> None:
    try:
        fields = parse_form(body)
    except ValueError:
        return
    assert all(isinstance(name, str) and isinstance(value, str) for name, value in fields.items())


# The HTTP server on a live socket


async def send_raw(port: int, request: bytes) -> bytes:
    """Send bytes on a connection of their own, then the end of input; all that comes back."""
    reply = b""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        try:
            await stream.send_all(request)
            await stream.send_eof()
            while chunk := await stream.receive_some():
                reply += chunk
        except trio.BrokenResourceError:
            pass  # reset: the server closed with our bytes unread, refusing to read on
    return reply


async def refuse(peer: str, fields: dict[str, str]) -> tuple[int, str]:
    return 403, "refused"


async def then_a_bystander(roots: tuple[Path, Path], request: bytes) -> tuple[bytes, bytes]:
    """A fresh server's reply to `request`, then to a well-formed GET on another connection.

    A server of its own for each example: a crash is then the example's own,
    and Hypothesis shrinks it to what caused it."""
    bystander = f"GET {roots[0]}/file HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(partial(serve_http, roots, "127.0.0.1", 0, refuse))
            replies = await send_raw(port, request), await send_raw(port, bystander.encode())
            nursery.cancel_scope.cancel()
    return replies


def http_requests(root: str) -> st.SearchStrategy[bytes]:
    """Requests, well formed or not, one or several on a connection, or just bytes."""
    eol = st.sampled_from([b"\r\n", b"\n"])
    method = st.sampled_from([b"GET", b"HEAD", b"POST", b"PUT", b"get", b"", b"G\x00T"])
    version = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"HTTP/1.1x", b""])
    name = st.sampled_from([b"Host", b"Range", b"If-Range", b"Content-Length", b"Expect",
                            b"Content-Type", b"Transfer-Encoding", b"Connection", b"",
                            b"Bad Name"])  # fmt: skip
    value = st.binary(max_size=40) | st.sampled_from(
        [b"bytes=0-3", b"bytes=-2", b"bytes=9-", b"chunked", b"close", b"100-continue",
         b"application/x-www-form-urlencoded", b"99999999999999999999", b"-1", b"a" * 17000]
    )  # fmt: skip
    header = st.builds(lambda n, v, end: n + b": " + v + end, name, value, eol)
    request = st.builds(
        lambda m, t, v, end, headers, body: m + b" " + t + b" " + v + end
        + b"".join(headers) + end + body,
        method, url_paths(root), version, eol, st.lists(header, max_size=5),
        st.binary(max_size=30),
    )  # fmt: skip
    return st.lists(request, min_size=1, max_size=3).map(b"".join) | st.binary(max_size=2000)


@fuzz
@given(data=st.data())
def test_the_http_server_answers_anything_and_serves_on(
    roots: tuple[Path, Path], data: st.DataObject
) -> None:
    request = data.draw(http_requests(str(roots[0])))
    with ErrorRecords(logging.getLogger("xcatd.boot.http")) as errors:
        reply, bystander = trio.run(then_a_bystander, roots, request)
    assert [record.getMessage() for record in errors] == []
    if reply:
        assert reply.startswith(b"HTTP/1.1 ")
        assert Reply.parse(reply).status != 500
    assert Reply.parse(bystander).body == b"served"


# Status lines


@fuzz
@given(st.binary(max_size=200) | st.text().map(lambda line: f"installstatus {line}".encode()))
def test_any_status_line_is_a_state_or_a_bad_line(line: bytes) -> None:
    try:
        state = reported_state(line)
    except BadLine:
        return
    assert state
    assert state == state.strip()
