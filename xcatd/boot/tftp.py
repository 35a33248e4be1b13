"""The read-only TFTP server: one UDP socket for requests, one more per transfer.

RFC 1350 has each transfer use a port of its own (its "transfer identifier"),
so the server socket only takes requests; each one gets a task in the
server's nursery with a fresh socket, bound to the address the request was
sent to and connected to the client, so the kernel drops datagrams from
anyone else and reports a client that has gone (ICMP port unreachable) as
ConnectionRefusedError.  Garbage is dropped unanswered, a repeated request
is left to the running transfer's retransmissions, and each client host
gets at most MAX_TRANSFERS_PER_HOST transfers at once.  Nothing one datagram
or transfer does ends the server: an unexpected error (a bug) is logged with
its traceback and costs that request alone.  Files are opened in worker
threads of the server's own (a storm of transfers must never take the
threads the daemon's requests run in), so a slow disk never stalls the event
loop.  Files of at most CACHED_FILE bytes, which is what TFTP carries here
(boot loaders, their configs), are read once and kept while they stay the
same file (SmallFiles): a thousand nodes fetching the iPXE program then cost
one read, not a thread hop per block each.  Larger ones are read a window
at a time.  The protocol itself is the sans-I/O `tftp_protocol`.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import trio

from .served import ServedFile, open_served
from .tftp_protocol import (
    ErrorCode,
    MalformedPacket,
    ReadTransfer,
    Request,
    State,
    TftpRefused,
    parse_packet,
    requested_path,
)

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65536
# Each transfer holds a socket and a window in memory; past this many at once
# new requests are refused instead of starving the daemon of descriptors.
MAX_TRANSFERS = 2000
# A node fetches a few files at a time; more at once from one host is a fault
# or an attack, and must not take the slots of every other host.
MAX_TRANSFERS_PER_HOST = 16
# Bigger files are read a window at a time, never kept.
CACHED_FILE = 4 << 20
CACHE_BYTES = 64 << 20  # at most this much kept; the least recently sent goes first
FILE_THREADS = 8  # opens and reads at once, in threads of the server's own
# Linux's value; Python 3.11's socket module does not name it.
IP_PKTINFO = getattr(trio.socket, "IP_PKTINFO", 8)
PKTINFO_SPACE = trio.socket.CMSG_SPACE(12)  # sizeof(struct in_pktinfo)


async def serve_tftp(
    root: Path,
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the files under root over TFTP on host:port (UDP) until cancelled.

    `task_status.started()` gets the bound port, so port 0 picks a free one.
    """
    files = SmallFiles(root.resolve())
    family = trio.socket.AF_INET6 if ":" in host else trio.socket.AF_INET
    with trio.socket.socket(family, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind((host, port))
        if family == trio.socket.AF_INET:
            sock.setsockopt(trio.socket.IPPROTO_IP, IP_PKTINFO, 1)  # see _reply_address
        listening, bound_port = sock.getsockname()[:2]
        log.info("TFTP: serving %s on %s port %d", files.root, host, bound_port)
        async with trio.open_nursery() as nursery:
            transfers = _Transfers(nursery)
            task_status.started(bound_port)
            while True:
                datagram, ancillary, _, client = await sock.recvmsg(MAX_DATAGRAM, PKTINFO_SPACE)
                local_address = _reply_address(ancillary, listening)
                await _on_datagram(datagram, client, local_address, files, sock, transfers)


class _Transfers:
    """The transfers under way, each a task in one nursery, known by who asked what.

    They are counted per client host, so that one host cannot take every
    slot; and a request that a client repeats byte for byte while its
    transfer runs (its own retransmission) is recognised, so that it does not
    start a second transfer: the first one's retransmissions answer it.  A
    different request from the same address is a new transfer, as a client
    that aborts one (PXE ROMs do, after learning tsize) may ask again at once.
    """

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._running: set[tuple[Any, bytes]] = set()
        self._per_host: Counter[str] = Counter()

    def is_running(self, client: Any, request: bytes) -> bool:
        return (client, request) in self._running

    def refusal(self, client: Any) -> TftpRefused | None:
        """Why a new transfer for this client may not start now, if it may not."""
        if len(self._running) >= MAX_TRANSFERS:
            return TftpRefused(ErrorCode.NOT_DEFINED, "server busy: too many transfers; try again")
        if self._per_host[client[0]] >= MAX_TRANSFERS_PER_HOST:
            return TftpRefused(ErrorCode.NOT_DEFINED, f"too many transfers from {client[0]}")
        return None

    def start(self, client: Any, request: bytes, serve: Callable[[], Awaitable[None]]) -> None:
        """Run serve() as the transfer of `request` to `client`."""
        self._running.add((client, request))
        self._per_host[client[0]] += 1
        self._nursery.start_soon(self._run, client, request, serve)

    async def _run(self, client: Any, request: bytes, serve: Callable[[], Awaitable[None]]) -> None:
        try:
            await serve()
        finally:
            self._running.remove((client, request))
            self._per_host[client[0]] -= 1
            if not self._per_host[client[0]]:
                del self._per_host[client[0]]  # not one entry for every host ever served


def _reply_address(ancillary: list[tuple[int, int, bytes]], listening: str) -> str:
    """The local address a request came to, for its transfer to answer from.

    On 0.0.0.0, a transfer socket bound there would answer from whichever
    address routing picks, which a client that sent elsewhere (or a firewall
    that tracks the exchange) would not take for the server.  IPv4 only: on
    IPv6 the transfer answers from the address the server listens on.
    """
    for level, kind, data in ancillary:
        if level == trio.socket.IPPROTO_IP and kind == IP_PKTINFO:
            # struct in_pktinfo {int ifindex; in_addr spec_dst; in_addr addr}:
            # spec_dst is the address to reply from, an interface's for a broadcast.
            return trio.socket.inet_ntoa(data[4:8])
    return listening


async def _on_datagram(
    datagram: bytes,
    client: Any,
    local_address: str,
    files: SmallFiles,
    sock: trio.socket.SocketType,
    transfers: _Transfers,
) -> None:
    """Take one datagram sent to the server's port; whatever it holds, the server carries on."""
    try:
        refusal = _take_request(datagram, client, local_address, files, sock, transfers)
        if refusal is not None:
            await _send_refusal(sock, client, refusal)
    except Exception:  # a bug: it must cost this request, never the server
        log.exception("TFTP: a datagram from %s could not be handled", _peer(client))


def _take_request(
    datagram: bytes,
    client: Any,
    local_address: str,
    files: SmallFiles,
    sock: trio.socket.SocketType,
    transfers: _Transfers,
) -> TftpRefused | None:
    """Start a transfer task, answering from local_address; what to answer from here if not."""
    try:
        packet = parse_packet(datagram)
    except MalformedPacket as exc:
        # Never answered: an ERROR for a 1-byte datagram would make this
        # server an amplifier for anyone who spoofs a victim's address.
        log.debug("TFTP: dropped a datagram from %s: %s", _peer(client), exc)
        return None
    if not isinstance(packet, Request):
        return None  # an ACK or ERROR for no transfer: never answer an ERROR (RFC 1350)
    if transfers.is_running(client, datagram):
        log.debug("TFTP: %s repeated its request for %s", _peer(client), packet.filename)
        return None
    refusal = transfers.refusal(client)
    if refusal is None:
        serve = partial(_serve_request, files, sock.family, local_address, packet, client)
        transfers.start(client, datagram, serve)
    return refusal


async def _send_refusal(sock: trio.socket.SocketType, client: Any, refusal: TftpRefused) -> None:
    log.info("TFTP: %s: %s", _peer(client), refusal)
    try:
        await sock.sendto(refusal.datagram, client)
    except OSError as exc:  # a spoofed or unreachable source must not stop the server
        log.debug("TFTP: cannot answer %s: %s", _peer(client), exc)


async def _serve_request(
    files: SmallFiles, family: int, local_address: str, request: Request, client: Any
) -> None:
    """Answer one request from a socket of its own, bound beside the server's."""
    peer = _peer(client)
    try:
        with trio.socket.socket(family, trio.socket.SOCK_DGRAM) as sock:
            await sock.bind((local_address, 0))
            await sock.connect(client)
            await _answer(sock, files, request, peer)
    except ConnectionRefusedError:
        log.info("TFTP: %s went away during %s", peer, request.filename)
    except OSError as exc:  # one transfer's failure must not end the server
        log.warning("TFTP: sending %s to %s failed: %s", request.filename, peer, exc)
    except Exception:  # nor must a bug
        log.exception("TFTP: sending %s to %s failed", request.filename, peer)


async def _answer(
    sock: trio.socket.SocketType, files: SmallFiles, request: Request, peer: str
) -> None:
    """Send the file, or an ERROR saying why not."""
    try:
        opened = await files.open(requested_path(request))
    except TftpRefused as refusal:
        log.info("TFTP: %s asked for %s: %s", peer, request.filename, refusal)
        await sock.send(refusal.datagram)
        return
    with opened:
        transfer = ReadTransfer(request.options, opened.size, trio.current_time())
        await _send_file(sock, opened, transfer)
    _log_outcome(transfer, peer, request.filename, opened.size)


async def _send_file(sock: trio.socket.SocketType, opened: _Opened, transfer: ReadTransfer) -> None:
    while not transfer.finished:
        if (wanted := transfer.wanted()) is not None:
            transfer.feed(await opened.read(*wanted), trio.current_time())
        for datagram in transfer.datagrams_to_send():
            await sock.send(datagram)
        with trio.move_on_at(transfer.deadline) as waiting:
            datagram = await sock.recv(MAX_DATAGRAM)
        if waiting.cancelled_caught:
            transfer.tick(trio.current_time())
        else:
            transfer.receive(datagram, trio.current_time())


class _Opened:
    """A file being sent: its bytes in memory when it is small, else its descriptor."""

    def __init__(
        self, size: int, content: bytes | None, fd: int | None, threads: trio.CapacityLimiter
    ) -> None:
        self.size, self._content, self._fd, self._threads = size, content, fd, threads

    async def read(self, offset: int, length: int) -> bytes:
        if self._content is not None:
            return self._content[offset : offset + length]
        assert self._fd is not None
        return await trio.to_thread.run_sync(
            os.pread, self._fd, length, offset, limiter=self._threads
        )

    def __enter__(self) -> _Opened:
        return self

    def __exit__(self, *_: object) -> None:
        if self._fd is not None:
            os.close(self._fd)


class SmallFiles:
    """Opens the files under root for TFTP; keeps the bytes of the small ones.

    A kept file is known by device, inode, size and modification time, so a
    file nodeset has replaced (a new inode) or that was rewritten in place is
    read again: every open still resolves and checks the path (open_served),
    it only skips the read.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._threads = trio.CapacityLimiter(FILE_THREADS)
        self._kept: OrderedDict[tuple[int, int, int, int], bytes] = OrderedDict()
        self._kept_bytes = 0

    async def open(self, relative: PurePosixPath) -> _Opened:
        """The file, or TftpRefused with the error TFTP answers."""
        fd, identity, content = await trio.to_thread.run_sync(
            self._open_and_read, relative, limiter=self._threads
        )
        if fd is None:  # kept before
            self._kept.move_to_end(identity)
        elif content is not None:  # read just now: kept from now on
            os.close(fd)
            fd = None
            self._keep(identity, content)
        return _Opened(identity[2], content, fd, self._threads)

    def _open_and_read(
        self, relative: PurePosixPath
    ) -> tuple[int | None, tuple[int, int, int, int], bytes | None]:
        """In a thread: the file's descriptor (None when its bytes were kept), its
        identity, and its bytes when it is small."""
        opened = _open(self.root, relative)
        info = os.fstat(opened.fd)
        identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        if info.st_size > CACHED_FILE:
            return opened.fd, identity, None
        if (content := self._kept.get(identity)) is not None:
            os.close(opened.fd)
            return None, identity, content
        try:
            content = os.pread(opened.fd, info.st_size, 0)
        except OSError as exc:
            os.close(opened.fd)
            raise TftpRefused(ErrorCode.ACCESS_VIOLATION, exc.strerror or str(exc)) from None
        return opened.fd, identity, content if len(content) == info.st_size else None

    def _keep(self, identity: tuple[int, int, int, int], content: bytes) -> None:
        if identity in self._kept:
            return
        self._kept[identity] = content
        self._kept_bytes += len(content)
        while self._kept_bytes > CACHE_BYTES:
            _, dropped = self._kept.popitem(last=False)
            self._kept_bytes -= len(dropped)


def _open(root: Path, relative: PurePosixPath) -> ServedFile:
    """The file, or TftpRefused with the error TFTP answers."""
    try:
        return open_served((root,), root / relative)
    except FileNotFoundError:
        raise TftpRefused(ErrorCode.FILE_NOT_FOUND, f"{relative}: no such file") from None
    except OSError as exc:
        raise TftpRefused(ErrorCode.ACCESS_VIOLATION, exc.strerror or str(exc)) from None


def _log_outcome(transfer: ReadTransfer, peer: str, filename: str, size: int) -> None:
    if transfer.state is State.DONE:
        log.info("TFTP: sent %s (%d bytes) to %s", filename, size, peer)
    elif transfer.state is State.TIMED_OUT:
        log.info("TFTP: %s stopped answering during %s", peer, filename)
    elif transfer.client_error is not None:
        error = transfer.client_error
        log.info("TFTP: %s ended %s: error %d: %s", peer, filename, error.code, error.message)


def _peer(client: Any) -> str:
    return f"{client[0]}:{client[1]}"
