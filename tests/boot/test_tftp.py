"""The TFTP server on loopback, as booting nodes and administrators meet it.

`serve_tftp` runs in the test's own nursery; real clients (tftp-hpa, curl,
atftp) fetch files from it, and a hand-made client sends the packets no
well-behaved client would: traversal, writes, garbage, duplicate ACKs, silence.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import trio

import xcatd.boot.tftp
from tests.boot.test_tftp_protocol import ack, data
from xcatd.boot.files import write_atomic
from xcatd.boot.tftp import CACHED_FILE, MAX_TRANSFERS_PER_HOST, serve_tftp
from xcatd.boot.tftp_protocol import MAX_RETRIES, ErrorCode

MAX_DATAGRAM = 65536


@dataclass
class Server:
    root: Path
    port: int

    def put(self, name: str, content: bytes) -> bytes:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return content


@pytest.fixture
async def tftp(nursery: trio.Nursery, tmp_path: Path) -> Server:
    root = tmp_path / "tftpboot"
    root.mkdir()
    port = await nursery.start(serve_tftp, root, "127.0.0.1", 0)
    return Server(root, port)


async def run(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a real client; the server keeps serving meanwhile, on this event loop."""
    with trio.fail_after(60):
        result = await trio.run_process(
            command, check=False, capture_stdout=True, capture_stderr=True
        )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def rrq(filename: str, mode: str = "octet", opcode: int = 1, **options: int) -> bytes:
    fields = [filename, mode, *(str(item) for pair in options.items() for item in pair)]
    return opcode.to_bytes(2, "big") + b"".join(field.encode() + b"\0" for field in fields)


def error_code(datagram: bytes) -> int:
    assert datagram[:2] == b"\x00\x05", f"expected an ERROR packet, got {datagram!r}"
    return int.from_bytes(datagram[2:4], "big")


class Client:
    """A hand-made TFTP client on one UDP socket, sending whatever a test asks."""

    def __init__(self, server: Server) -> None:
        self.server = ("127.0.0.1", server.port)
        self.sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        self.sender: tuple[str, int] | None = None  # where the last datagram came from

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()

    async def request(self, filename: str, **options: int) -> None:
        await self.sock.sendto(rrq(filename, **options), self.server)

    async def send(self, datagram: bytes) -> None:
        """Send to the transfer's port (its TID), learnt from the server's first answer."""
        assert self.sender is not None
        await self.sock.sendto(datagram, self.sender)

    async def receive(self) -> bytes:
        with trio.fail_after(10):
            datagram, self.sender = await self.sock.recvfrom(MAX_DATAGRAM)
        return datagram

    async def until_transfer_closed(self) -> None:
        """Wait until the transfer's port is closed; fail on anything it still sends."""
        await self.sock.connect(self.sender)  # so that the kernel reports the closed port
        with pytest.raises(ConnectionRefusedError):
            while True:
                await self.sock.send(b"\x00\x00")  # noise, which a transfer ignores
                with trio.move_on_after(0.2):
                    pytest.fail(f"unexpected {await self.receive()!r}")

    async def read_to_end(self, first: bytes, blksize: int = 512) -> bytes:
        """Acknowledge DATA from `first` on until the short last block; the file's content.

        Retransmitted blocks are skipped, as a real client does.
        """
        content, expected, datagram = [], 1, first
        while True:
            if datagram[:4] == data(expected % 65536, b""):
                content.append(datagram[4:])
                await self.send(ack(expected % 65536))
                if len(datagram) - 4 < blksize:
                    return b"".join(content)
                expected += 1
            datagram = await self.receive()


# Real clients


async def test_tftp_hpa_gets_files_with_or_without_a_leading_slash(tftp, tmp_path):
    loader = tftp.put("pxelinux.0", os.urandom(100_000))
    script = tftp.put("xcat/xnba/nodes/n1", b"#!ipxe\nexit\n")
    for remote, expected in [("pxelinux.0", loader), ("/pxelinux.0", loader),
                             ("/xcat/xnba/nodes/n1", script)]:  # fmt: skip
        local = tmp_path / "out"
        result = await run("tftp", "127.0.0.1", str(tftp.port), "-m", "binary",
                           "-c", "get", remote, str(local))  # fmt: skip
        assert result.stdout == ""
        assert local.read_bytes() == expected


async def test_tftp_hpa_is_told_what_is_missing_and_that_netascii_is_not_served(tftp, tmp_path):
    tftp.put("pxelinux.cfg/default", b"DEFAULT xcat\n")
    missing = await run("tftp", "127.0.0.1", str(tftp.port), "-m", "binary",
                        "-c", "get", "pxelinux.cfg/n1", str(tmp_path / "n1"))  # fmt: skip
    assert missing.stdout == "Error code 1: pxelinux.cfg/n1: no such file\n"
    ascii_mode = await run("tftp", "127.0.0.1", str(tftp.port),  # ascii is its default mode
                           "-c", "get", "pxelinux.cfg/default", str(tmp_path / "d"))  # fmt: skip
    assert ascii_mode.stdout == (
        "Error code 4: mode 'netascii' is not served; use octet (binary)\n"
    )


@pytest.mark.parametrize("blksize", [8, 512, 1468, 65464])
async def test_curl_negotiates_its_block_size(tftp, tmp_path, blksize):
    kernel = tftp.put("xcat/osimage/rocky9/kernel", os.urandom(200_000))
    local = tmp_path / "kernel"
    result = await run("curl", "-sS", "--tftp-blksize", str(blksize), "-o", str(local),
                       f"tftp://127.0.0.1:{tftp.port}/xcat/osimage/rocky9/kernel")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert local.read_bytes() == kernel


async def test_curl_exits_with_tftp_not_found(tftp, tmp_path):
    result = await run("curl", "-sS", "-o", str(tmp_path / "x"), f"tftp://127.0.0.1:{tftp.port}/x")
    assert result.returncode == 68  # CURLE_TFTP_NOTFOUND: the server said error code 1


async def test_atftp_gets_a_file_in_windows(tftp, tmp_path):
    initrd = tftp.put("initrd.img", os.urandom(1_000_000))
    local = tmp_path / "initrd"
    result = await run("atftp", "--option", "windowsize 16", "--option", "blksize 1468",
                       "-g", "-r", "initrd.img", "-l", str(local),
                       "127.0.0.1", str(tftp.port))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Option windowsize = 16" in result.stderr
    assert local.read_bytes() == initrd


async def test_block_numbers_roll_over_past_65535_for_a_real_client(tftp, tmp_path):
    blocks = 65536 + 100  # blksize 8 keeps the file small; windows keep it quick
    image = tftp.put("big", os.urandom(8 * blocks + 3))
    local = tmp_path / "big"
    result = await run("atftp", "--option", "windowsize 32", "--option", "blksize 8",
                       "-g", "-r", "big", "-l", str(local),
                       "127.0.0.1", str(tftp.port))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert local.read_bytes() == image


async def curl_get(tftp: Server, remote: str, local: Path, *options: str) -> bytes:
    result = await run("curl", "-sS", "--tftp-blksize", "1468", *options, "-o", str(local),
                       f"tftp://127.0.0.1:{tftp.port}/{remote}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return local.read_bytes()


async def test_a_boot_loader_rewritten_by_nodeset_is_sent_as_it_now_is(tftp, tmp_path):
    # Small files are kept in memory after the first transfer: the next
    # must still see a file replaced (nodeset renames a new one over it).
    first = tftp.put("xcat/xnba.kpxe", os.urandom(74_213))
    assert await curl_get(tftp, "xcat/xnba.kpxe", tmp_path / "a") == first
    assert await curl_get(tftp, "xcat/xnba.kpxe", tmp_path / "b") == first
    second = os.urandom(80_000)
    write_atomic(tftp.root / "xcat/xnba.kpxe", second)
    assert await curl_get(tftp, "xcat/xnba.kpxe", tmp_path / "c") == second
    (tftp.root / "xcat/xnba.kpxe").unlink()
    gone = await run("curl", "-sS", "-o", str(tmp_path / "d"),
                     f"tftp://127.0.0.1:{tftp.port}/xcat/xnba.kpxe")  # fmt: skip
    assert gone.returncode == 68  # not found: nothing is served from memory alone


async def test_a_file_too_big_to_keep_is_read_as_it_goes(tftp, tmp_path):
    initrd = tftp.put("initrd.img", os.urandom(CACHED_FILE + 100_000))
    assert await curl_get(tftp, "initrd.img", tmp_path / "initrd") == initrd


async def test_tftp_serves_while_every_thread_of_the_daemon_is_busy(tftp, tmp_path):
    # The daemon's requests run in trio's default worker threads: a boot
    # storm must neither take them nor wait for them (it did, once).
    daemon_threads = trio.to_thread.current_default_thread_limiter()
    holders = [object() for _ in range(int(daemon_threads.total_tokens))]
    for holder in holders:
        daemon_threads.acquire_on_behalf_of_nowait(holder)
    try:
        kernel = tftp.put("xcat/kernel", os.urandom(CACHED_FILE + 1))
        loader = tftp.put("xcat/xnba.kpxe", os.urandom(74_213))
        for remote, content in (("xcat/xnba.kpxe", loader), ("xcat/kernel", kernel)):
            # Not trio.run_process: it starts the program in a default worker thread.
            fetched = await trio.to_thread.run_sync(
                partial(subprocess.run, ["curl", "-sS", "--tftp-blksize", "1468",
                        f"tftp://127.0.0.1:{tftp.port}/{remote}"], capture_output=True, timeout=30),
                limiter=trio.CapacityLimiter(1),
            )  # fmt: skip
            assert fetched.stdout == content, fetched.stderr
    finally:
        for holder in holders:
            daemon_threads.release_on_behalf_of(holder)


async def test_symlinks_inside_the_root_are_followed(tftp, tmp_path):
    config = tftp.put("boot/grub2/n1", b"linux /xcat/kernel\n")
    link = "boot/grub2/grub.cfg-01-52-54-00-12-34-56"
    (tftp.root / link).symlink_to("n1")
    local = tmp_path / "grub.cfg"
    result = await run("tftp", "127.0.0.1", str(tftp.port), "-m", "binary",
                       "-c", "get", f"/{link}", str(local))  # fmt: skip
    assert result.stdout == ""
    assert local.read_bytes() == config


# Hand-made packets


@pytest.mark.parametrize(
    ("filename", "code"),
    [
        ("../secret", ErrorCode.ACCESS_VIOLATION),
        ("/../secret", ErrorCode.ACCESS_VIOLATION),
        ("xcat/../../secret", ErrorCode.ACCESS_VIOLATION),
        ("escape", ErrorCode.ACCESS_VIOLATION),  # a symlink to ../secret
        ("etc-link/passwd", ErrorCode.ACCESS_VIOLATION),  # a symlink to /etc
        ("xcat", ErrorCode.ACCESS_VIOLATION),  # a directory
        ("fifo", ErrorCode.ACCESS_VIOLATION),  # must not hang the server either
        ("loop", ErrorCode.ACCESS_VIOLATION),  # a symlink to itself
        ("dangling", ErrorCode.FILE_NOT_FOUND),
        ("no/such/file", ErrorCode.FILE_NOT_FOUND),
    ],
)
async def test_nothing_outside_the_root_or_not_a_file_is_served(tftp, filename, code):
    (tftp.root.parent / "secret").write_text("the CA key")
    tftp.put("xcat/xnba/nodes/n1", b"#!ipxe\n")
    (tftp.root / "escape").symlink_to("../secret")
    (tftp.root / "etc-link").symlink_to("/etc")
    (tftp.root / "dangling").symlink_to("nowhere")
    (tftp.root / "loop").symlink_to("loop")
    os.mkfifo(tftp.root / "fifo")
    with Client(tftp) as client:
        await client.request(filename)
        assert error_code(await client.receive()) == code


async def test_writes_are_refused_from_the_transfers_own_port(tftp):
    with Client(tftp) as client:
        await client.sock.sendto(rrq("pxelinux.0", opcode=2), client.server)
        answer = await client.receive()
        assert answer == b"\x00\x05\x00\x02this TFTP server is read-only\x00"
        assert client.sender != client.server  # a new TID, as RFC 1350 wants
    assert not (tftp.root / "pxelinux.0").exists()


async def test_malformed_packets_are_not_answered_and_the_server_carries_on(tftp):
    content = tftp.put("pxelinux.0", b"loader")
    with Client(tftp) as client:
        # No answer to garbage (an amplifier for spoofed sources), nor to an
        # ERROR (RFC 1350) or a stray ACK: the first answer is to the request.
        for garbage in [b"", b"\x00", b"\x00\x01no-nul", b"\x00\x01\x00octet\x00",
                        b"\x00\x03\x00\x01data", b"\xff\xff\xff\xff"]:  # fmt: skip
            await client.sock.sendto(garbage, client.server)
        await client.sock.sendto(b"\x00\x05\x00\x00oops\x00", client.server)
        await client.sock.sendto(ack(1), client.server)
        await client.request("pxelinux.0")
        assert await client.receive() == data(1, content)


async def test_duplicate_acks_are_not_answered(tftp):
    content = tftp.put("kernel", os.urandom(1200))  # blocks 1 and 2 full, 3 short
    with Client(tftp) as client:
        await client.request("kernel", timeout=10)  # no retransmission can interfere
        assert await client.receive() == b"\x00\x06timeout\x0010\x00"
        await client.send(ack(0))
        assert await client.receive() == data(1, content[:512])
        for _ in range(3):
            await client.send(ack(1))
        assert await client.receive() == data(2, content[512:1024])
        await client.send(ack(2))
        # A sorcerer's apprentice would have sent DATA 2 twice more by now.
        assert await client.receive() == data(3, content[1024:])
        await client.send(ack(3))


async def test_a_window_restarts_after_the_last_block_the_client_got(tftp):
    content = tftp.put("initrd", os.urandom(10 * 512 + 100))

    def blocks(*numbers: int) -> list[bytes]:
        return [data(n, content[512 * (n - 1) : 512 * n]) for n in numbers]

    with Client(tftp) as client:
        await client.request("initrd", windowsize=4, tsize=0)
        oack = b"\x00\x06windowsize\x004\x00tsize\x00" + str(len(content)).encode() + b"\x00"
        assert await client.receive() == oack
        await client.send(ack(0))
        assert [await client.receive() for _ in range(4)] == blocks(1, 2, 3, 4)
        await client.send(ack(4))
        assert [await client.receive() for _ in range(4)] == blocks(5, 6, 7, 8)
        await client.send(ack(6))  # as if 7 had been lost
        assert [await client.receive() for _ in range(4)] == blocks(7, 8, 9, 10)
        await client.send(ack(10))
        assert await client.receive() == blocks(11)[0]
        await client.send(ack(11))


async def test_a_lost_first_block_restarts_the_window_without_waiting(tftp):
    content = tftp.put("initrd", os.urandom(8 * 512 + 100))

    def blocks(*numbers: int) -> list[bytes]:
        return [data(n, content[512 * (n - 1) : 512 * n]) for n in numbers]

    with Client(tftp) as client:
        await client.request("initrd", windowsize=4, timeout=10)  # no timeout interferes
        assert await client.receive() == b"\x00\x06windowsize\x004\x00timeout\x0010\x00"
        await client.send(ack(0))
        assert [await client.receive() for _ in range(4)] == blocks(1, 2, 3, 4)
        await client.send(ack(4))
        assert [await client.receive() for _ in range(4)] == blocks(5, 6, 7, 8)
        await client.send(ack(4))  # as if 5 had been lost
        assert [await client.receive() for _ in range(4)] == blocks(5, 6, 7, 8)
        await client.send(ack(8))
        assert await client.receive() == blocks(9)[0]
        await client.send(ack(9))


async def test_a_repeated_request_is_answered_by_the_transfer_already_running(tftp, mock_clock):
    mock_clock.autojump_threshold = 0.1  # idle for 0.1 s of real time: skip to the next timeout
    tftp.put("kernel", b"boot")
    with Client(tftp) as client:
        await client.request("kernel")
        await client.request("kernel")  # as a client does when its first answer is late
        senders = set()
        for _ in range(1 + MAX_RETRIES):
            assert await client.receive() == data(1, b"boot")
            senders.add(client.sender)
        assert len(senders) == 1  # one transfer, not two
        await client.until_transfer_closed()


async def test_one_host_cannot_take_every_transfer(tftp):
    tftp.put("kernel", b"boot")
    clients = [Client(tftp) for _ in range(MAX_TRANSFERS_PER_HOST + 1)]
    try:
        for client in clients[:-1]:
            await client.request("kernel")
            assert await client.receive() == data(1, b"boot")
        greedy = clients[-1]
        await greedy.request("kernel")
        assert await greedy.receive() == b"\x00\x05\x00\x00too many transfers from 127.0.0.1\x00"
        other_host = Client(tftp)
        clients.append(other_host)
        await other_host.sock.bind(("127.0.0.2", 0))
        await other_host.request("kernel")
        assert await other_host.receive() == data(1, b"boot")
    finally:
        for client in clients:
            client.sock.close()


async def test_a_silent_client_is_retried_then_its_transfer_ends(tftp, mock_clock):
    mock_clock.autojump_threshold = 0.1  # idle for 0.1 s of real time: skip to the next timeout
    tftp.put("kernel", b"boot")
    with Client(tftp) as client:
        await client.request("kernel")
        for _ in range(1 + MAX_RETRIES):
            assert await client.receive() == data(1, b"boot")
        # No more retransmissions: what the client hears next is that the port is closed.
        await client.until_transfer_closed()


async def test_past_the_transfer_limit_requests_are_told_the_server_is_busy(tftp, monkeypatch):
    monkeypatch.setattr(xcatd.boot.tftp, "MAX_TRANSFERS", 1)
    tftp.put("kernel", b"boot")
    with Client(tftp) as first, Client(tftp) as second:
        await first.request("kernel")
        assert await first.receive() == data(1, b"boot")
        await second.request("kernel")
        busy = await second.receive()
        assert busy == b"\x00\x05\x00\x00server busy: too many transfers; try again\x00"
        await first.send(ack(1))
        await first.until_transfer_closed()
        await second.request("kernel")  # room again
        assert await second.receive() == data(1, b"boot")


# Run inside a network namespace of its own: a server on every address
# (0.0.0.0) is never opened on the test machine's own network.
EVERY_ADDRESS_CHECK = """
import sys, tempfile, pathlib, socket, trio
from xcatd.boot.tftp import serve_tftp
from tests.boot.test_tftp import rrq

async def main():
    root = pathlib.Path(tempfile.mkdtemp())
    (root / "kernel").write_bytes(b"boot")
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_tftp, root, "0.0.0.0", 0)
        with trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            await client.sendto(rrq("kernel"), ("127.0.0.2", port))  # not what routing picks
            with trio.fail_after(10):
                answer, sender = await client.recvfrom(2048)
        print(sender[0], answer[4:].decode())
        nursery.cancel_scope.cancel()

trio.run(main)
"""


def test_on_every_address_each_transfer_answers_from_the_address_asked():
    namespace = f"xcatd-tftp-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "-n", namespace, "link", "set", "lo", "up"], check=True)
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", EVERY_ADDRESS_CHECK],
            capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2],
        )  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], check=True)
    assert result.stdout == "127.0.0.2 boot\n", result.stderr


async def test_500_transfers_at_once(tftp):
    transfers = 500
    content = tftp.put("xcat/xnba/nodes/n", os.urandom(1300))
    # A real boot storm spreads its requests over seconds; here at most 50 wait
    # for an answer at a time, so the server socket's buffer never overflows.
    requesting = trio.Semaphore(50)
    waiting = transfers
    all_started = trio.Event()
    ports, received = set(), []

    async def node(number: int) -> None:
        nonlocal waiting
        with Client(tftp) as client:
            # Each node has an address of its own: one host gets only a few transfers.
            await client.sock.bind((f"127.0.{number // 250 + 1}.{number % 250 + 1}", 0))
            async with requesting:
                await client.request("xcat/xnba/nodes/n")
                first = await client.receive()
            ports.add(client.sender)
            waiting -= 1
            if waiting == 0:
                all_started.set()
            await all_started.wait()  # every transfer is under way before any ends
            received.append(await client.read_to_end(first))

    async with trio.open_nursery() as nodes:
        for number in range(transfers):
            nodes.start_soon(node, number)
    assert len(ports) == transfers
    assert received == [content] * transfers
