"""The boot services against peers that go away at every step, or send junk.

A booting node crashes, loses its link or is reset at any moment; a port
scanner sends anything.  Whatever a peer does, it may cost its own exchange
only: each test does something rude to a server running in this process,
then a bystander (an ordinary download, an ordinary status line) must still
be served, no descriptor may be left open, and nothing may be logged as an
error, for a peer's rudeness is not the server's bug.  Where a test plants
a bug in the handling of one request instead, that request fails, with its
traceback in the log, and the server serves on.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import trio

import xcatd.boot.http
import xcatd.boot.tftp
from tests.boot.test_http import RawClient, curl, start
from tests.boot.test_http import Server as HttpServer
from tests.boot.test_tftp import Client, rrq
from tests.boot.test_tftp import Server as TftpServer
from tests.boot.test_tftp_protocol import ack, data
from xcatd.boot.room import Room
from xcatd.boot.statusport import MAX_LINE, serve_status_port
from xcatd.boot.tftp import serve_tftp
from xcatd.boot.tftp_protocol import MAX_RETRIES

SETTLE = 5.0  # seconds the servers get to close what a fault left them with


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def no_descriptor_left(before: int) -> None:
    """Wait until this process has no more descriptors open than `before`; fail if it stays."""
    with trio.move_on_after(SETTLE):
        while open_descriptors() > before:
            await trio.sleep(0.05)
    assert open_descriptors() <= before


async def logged(log: pytest.LogCaptureFixture, text: str) -> None:
    """Wait until a server has logged `text`."""
    with trio.fail_after(SETTLE):
        while text not in log.text:
            await trio.sleep(0.05)


def reset(sock: socket.socket | trio.socket.SocketType) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a node that crashes or is reset does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """What the servers log; at the end of the test, none of it may be an error."""
    caplog.set_level(logging.INFO, logger="xcatd")
    yield caplog
    assert [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR] == []  # fmt: skip


# HTTP


IMAGE = "netboot/rootimg.cpio.gz"  # under installdir
SCRIPT = "xcat/xnba/nodes/n1.ipxe"  # under tftpdir


@pytest.fixture
async def http(nursery: trio.Nursery, tmp_path: Path) -> HttpServer:
    """The HTTP server with a 16 MiB image and a node's boot script."""
    server = await start(nursery, tmp_path)
    server.put(server.install / IMAGE, os.urandom(16 << 20))
    server.put(server.tftpboot / SCRIPT, b"#!ipxe\nchain http://server/image\n")
    return server


async def download(server: HttpServer) -> None:
    """The bystander: curl fetches the whole image."""
    reply = await curl(server.url(server.install / IMAGE))
    assert (reply.status, reply.body) == (200, (server.install / IMAGE).read_bytes())


def request(path: Path) -> bytes:
    """A GET that keeps the connection open, as iPXE's."""
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()


async def reset_in_request_line(server: HttpServer, client: RawClient) -> None:
    await client.stream.send_all(request(server.install / IMAGE)[:9])


async def reset_mid_headers(server: HttpServer, client: RawClient) -> None:
    whole = request(server.install / IMAGE)
    await client.stream.send_all(whole[: whole.index(b"Host: ") + 3])


async def reset_before_the_response(server: HttpServer, client: RawClient) -> None:
    await client.stream.send_all(request(server.install / IMAGE))


async def reset_mid_body(server: HttpServer, client: RawClient) -> None:
    await client.stream.send_all(request(server.install / IMAGE))
    received = 0
    while received < 1 << 20:  # of 16 MiB: the server is still sending
        chunk = await client.stream.receive_some(65536)
        assert chunk, "the server closed mid-body"
        received += len(chunk)


async def reset_while_kept_alive(server: HttpServer, client: RawClient) -> None:
    reply = await client.ask(request(server.tftpboot / SCRIPT))
    assert reply.status == 200
    await trio.sleep(0.1)  # the server waits for the next request


@pytest.mark.parametrize(
    "rudeness",
    [reset_in_request_line, reset_mid_headers, reset_before_the_response, reset_mid_body,
     reset_while_kept_alive],
)  # fmt: skip
async def test_an_http_client_reset_at_any_step_costs_its_connection_alone(
    http: HttpServer, server_log, rudeness
) -> None:
    before = open_descriptors()
    for _ in range(3):
        client = await RawClient.connect(http)
        await rudeness(http, client)
        reset(client.stream.socket)
    await download(http)
    await no_descriptor_left(before)


async def test_a_reset_before_the_server_accepts_costs_nothing(
    http: HttpServer, server_log
) -> None:
    before = open_descriptors()
    for _ in range(20):  # reset at once: the server may see it before it asks who it is
        with socket.socket() as sock:
            sock.connect(("127.0.0.1", http.port))
            reset(sock)
    await download(http)
    await no_descriptor_left(before)


async def test_a_bug_met_serving_one_http_request_costs_that_request_alone(
    http: HttpServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = http.put(http.install / "bug.ipxe", b"#!ipxe\n")
    content_type = xcatd.boot.http.content_type

    def buggy(path: str) -> str:
        if path == str(planted):
            raise RuntimeError("a planted bug")
        return content_type(path)

    monkeypatch.setattr(xcatd.boot.http, "content_type", buggy)
    before = open_descriptors()
    failed = await trio.run_process(
        ["curl", "-sS", http.url(planted)], check=False, capture_stdout=True, capture_stderr=True
    )
    assert b"Empty reply from server" in failed.stderr
    await logged(caplog, "RuntimeError: a planted bug")
    await download(http)
    await no_descriptor_left(before)


# TFTP


@pytest.fixture
async def tftp(nursery: trio.Nursery, tmp_path: Path) -> TftpServer:
    root = tmp_path / "tftpboot"
    root.mkdir()
    server = TftpServer(root, await nursery.start(serve_tftp, root, "127.0.0.1", 0))
    server.put("xcat/xnba.kpxe", os.urandom(3000))  # 6 blocks of 512, the last one short
    return server


async def fetch(server: TftpServer) -> None:
    """The bystander: a node fetches its boot loader, block after block."""
    with Client(server) as client:
        await client.request("xcat/xnba.kpxe")
        received = await client.read_to_end(await client.receive())
    assert received == (server.root / "xcat/xnba.kpxe").read_bytes()


async def test_a_tftp_client_that_falls_silent_mid_transfer_is_given_up(
    tftp: TftpServer, server_log, mock_clock
) -> None:
    mock_clock.autojump_threshold = 0.1  # idle for 0.1 s of real time: skip to the next timeout
    before = open_descriptors()
    with Client(tftp) as client:
        await client.request("xcat/xnba.kpxe")
        assert (await client.receive())[:4] == data(1, b"")
        await client.send(ack(1))
        for _ in range(1 + MAX_RETRIES):  # DATA 2, then each retransmission of it
            assert (await client.receive())[:4] == data(2, b"")
        await client.until_transfer_closed()
    await fetch(tftp)
    await no_descriptor_left(before)


@pytest.mark.parametrize("acknowledged", [0, 2])
async def test_a_tftp_client_whose_port_closes_ends_its_transfer(
    tftp: TftpServer, server_log, acknowledged: int
) -> None:
    before = open_descriptors()
    with Client(tftp) as client:
        await client.request("xcat/xnba.kpxe")
        for block in range(1, acknowledged + 1):
            assert (await client.receive())[:4] == data(block, b"")
            await client.send(ack(block))
    # The port is closed: the next block the server sends is refused (ICMP
    # port unreachable), and the server ends the transfer at once.
    await logged(server_log, "went away during xcat/xnba.kpxe")
    await fetch(tftp)
    await no_descriptor_left(before)


async def test_a_refusal_to_a_client_already_gone_costs_nothing(
    tftp: TftpServer, server_log, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xcatd.boot.tftp, "MAX_TRANSFERS", 0)
    before = open_descriptors()
    with Client(tftp) as client:
        await client.request("xcat/xnba.kpxe")
    # The server's own socket, not connected to anyone, gets the ICMP answer.
    await logged(server_log, "server busy")
    monkeypatch.undo()
    await fetch(tftp)
    await no_descriptor_left(before)


# Neither ACKs nor ERRORs, which a transfer would take: anything else.
GARBAGE = [b"", b"\x00", b"\x00\x03", b"\x00\x01\x00\x00", b"\x00\x01a\x00octet",
           b"\x00\x04\xff", b"\x00\x06blksize\x008\x00", b"\xff" * 70, b"\xa5" * 1400,
           b"\x00\x01" + b"A" * 1400 + b"\x00octet\x00", b"\x00\x02x\x00octet\x00"]  # fmt: skip


async def test_garbage_to_the_server_and_to_a_transfer_changes_nothing(
    tftp: TftpServer, server_log
) -> None:
    before = open_descriptors()
    content = (tftp.root / "xcat/xnba.kpxe").read_bytes()
    with Client(tftp) as scanner, Client(tftp) as node:
        for garbage in GARBAGE:
            await scanner.sock.sendto(garbage, scanner.server)
        await node.request("xcat/xnba.kpxe")
        first = await node.receive()
        assert first == data(1, content[:512])
        for garbage in GARBAGE:  # to the transfer's own port
            await node.send(garbage)
        assert await node.read_to_end(first) == content
    await fetch(tftp)
    await no_descriptor_left(before)


async def test_an_error_from_the_client_mid_transfer_ends_it(tftp: TftpServer, server_log) -> None:
    before = open_descriptors()
    with Client(tftp) as client:
        await client.request("xcat/xnba.kpxe")
        assert (await client.receive())[:4] == data(1, b"")
        await client.send(ack(1))
        assert (await client.receive())[:4] == data(2, b"")
        await client.send(b"\x00\x05\x00\x00disk full\x00")
        await client.until_transfer_closed()
    await logged(server_log, "ended xcat/xnba.kpxe: error 0: disk full")
    await fetch(tftp)
    await no_descriptor_left(before)


async def test_a_bug_met_in_one_tftp_request_costs_that_request_alone(
    tftp: TftpServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    parse_packet, requested_path = xcatd.boot.tftp.parse_packet, xcatd.boot.tftp.requested_path

    def buggy_parse(datagram: bytes):  # on the server's port
        if b"parse-bug" in datagram:
            raise RuntimeError("a planted bug in parsing")
        return parse_packet(datagram)

    def buggy_path(request):  # in the transfer's task
        if request.filename == "transfer-bug":
            raise RuntimeError("a planted bug in a transfer")
        return requested_path(request)

    monkeypatch.setattr(xcatd.boot.tftp, "parse_packet", buggy_parse)
    monkeypatch.setattr(xcatd.boot.tftp, "requested_path", buggy_path)
    before = open_descriptors()
    with Client(tftp) as client:
        await client.sock.sendto(rrq("parse-bug"), client.server)
        await client.sock.sendto(rrq("transfer-bug"), client.server)
        await fetch(tftp)
    await logged(caplog, "RuntimeError: a planted bug in parsing")
    await logged(caplog, "RuntimeError: a planted bug in a transfer")
    await no_descriptor_left(before)


# Status lines (port 3002)


class Reports:
    """Takes every report, as StatusReports does from a node's own address."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, str]] = []

    async def report(self, peer: str, state: str) -> str:
        self.taken.append((peer, state))
        return "n1"


@pytest.fixture
async def status_port(nursery: trio.Nursery) -> tuple[int, Reports]:
    reports = Reports()
    port = await nursery.start(partial(serve_status_port, reports, "127.0.0.1", 0))
    return port, reports


async def status_line(port: int, line: bytes) -> bytes:
    """The bystander: a node sends its line and reads the answer, as xCAT's scripts do."""
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(line)
            answer = b""
            while chunk := await stream.receive_some():
                answer += chunk
    return answer


@pytest.mark.parametrize(
    "sent",
    [b"", b"installstatus booted\n", b"installstatus boo", b"x" * (MAX_LINE + 1),
     os.urandom(1 << 20)],
    ids=["nothing", "a line", "part of a line", "a line too long", "a megabyte"],
)  # fmt: skip
async def test_a_node_reset_after_sending_anything_costs_its_connection_alone(
    status_port: tuple[int, Reports], server_log, sent: bytes
) -> None:
    port, reports = status_port
    before = open_descriptors()
    for _ in range(3):
        sock = trio.socket.socket()
        await sock.connect(("127.0.0.1", port))
        try:
            await sock.send(sent)  # as much as the socket takes
        finally:
            reset(sock)
    assert await status_line(port, b"installstatus installing\n") == b"ok\n"
    assert reports.taken[-1] == ("127.0.0.1", "installing")
    await no_descriptor_left(before)


async def test_one_address_holding_connections_open_leaves_the_others_room(
    nursery: trio.Nursery, server_log
) -> None:
    reports = Reports()
    room = Room(size=6, per_address=4)
    port = await nursery.start(partial(serve_status_port, reports, "127.0.0.1", 0, room))
    stranger = []
    for _ in range(room.size):  # enough to fill the room, were it let
        sock = trio.socket.socket()
        await sock.bind(("127.0.0.2", 0))
        await sock.connect(("127.0.0.1", port))
        stranger.append(sock)
    with trio.fail_after(5):  # past its four, closed unanswered; the four stay open
        assert [await sock.recv(100) for sock in stranger[4:]] == [b"", b""]
    assert await status_line(port, b"installstatus booted\n") == b"ok\n"
    assert reports.taken == [("127.0.0.1", "booted")]
    for sock in stranger:
        sock.close()


async def test_a_line_with_no_end_is_cut_off_unanswered(
    status_port: tuple[int, Reports], server_log
) -> None:
    port, reports = status_port
    before = open_descriptors()
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            with pytest.raises(trio.BrokenResourceError):  # the server stops reading: closed
                while True:
                    await stream.send_all(b"x" * 65536)
    assert reports.taken == []
    assert await status_line(port, b"installstatus booted\n") == b"ok\n"
    await no_descriptor_left(before)
