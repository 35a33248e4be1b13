"""Whether nodes answer, and which of their services accept connections:
what nodestat shows (xcatd/commands/status.py).

As xCAT's nodestat with fping: every IPv4 address gets ICMP echo requests,
all through one socket and all at once, ECHO_TRIES times ECHO_WAIT seconds
apart; the addresses that answer then get a TCP connection attempt on each
port of xCAT's services (SERVICES), at most `_sockets()` attempts at a time
over every request of the daemon, each given CONNECT_TIMEOUT seconds.  Nodes
that do not answer cost one echo round however many there are: a thousand
silent nodes take ECHO_TRIES x ECHO_WAIT seconds, not a thousand timeouts.

The echo goes through an unprivileged ICMP datagram socket where the host
allows one (net.ipv4.ping_group_range), else a raw socket (root, or
CAP_NET_RAW).  Where neither may be opened, and for IPv6 addresses, the
connection attempts decide alone, as `nmap --unprivileged` does: a port that
accepts or refuses a connection proves the node is up.  (Nodes that ICMP found
silent get no TCP attempts, as with xCAT's fping: one echo round costs 2 s,
a thousand nodes' connection timeouts much more; a node that drops echo
requests but runs sshd therefore shows `noping`, as it does in xCAT -f.)
"""

from __future__ import annotations

import contextlib
import enum
import functools
import ipaddress
import logging
import os
import resource
import socket
import struct
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import trio

log = logging.getLogger(__name__)

# xCAT's nodestat default applications and their ports (nodestat.pm).
SERVICES: tuple[tuple[str, int], ...] = (
    ("sshd", 22), ("https", 443), ("pbs", 15002), ("xend", 8002), ("rdp", 3389), ("msrpc", 135),
)  # fmt: skip
PING_PORTS = (("http", 80), ("https", 443), ("ssh", 22))  # xCAT's pping without ICMP (nmap -PA)
ECHO_WAIT = 1.0  # seconds an echo request gets for its reply (ping -w 1, as xCAT's pinghost)
ECHO_TRIES = 2  # requests to an address before it counts as silent
CONNECT_TIMEOUT = 1.0  # seconds for one TCP connection attempt
MAX_SOCKETS = 4096  # connection attempts at once; also at most a quarter of the open-files limit

ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0
ICMP_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
RECEIVE_SIZE = 2048
RECEIVE_BUFFER = 4 << 20  # bytes of replies waiting to be read (the kernel may give less)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux's numbers, where Python has none
SOL_RAW, ICMP_FILTER = 255, 1


class Knock(enum.Enum):
    """What one TCP connection attempt found."""

    OPEN = "open"  # accepted: the service listens
    REFUSED = "refused"  # the node is up, nothing listens there
    SILENT = "silent"  # no answer in time, or no way there


@dataclass(frozen=True)
class Answer:
    up: bool  # it answered an echo request or a connection attempt
    services: tuple[str, ...]  # the services that accept connections, sorted by name


async def probe(
    addresses: Collection[str], services: Sequence[tuple[str, int]] = SERVICES
) -> dict[str, Answer]:
    """Each IP address's answer."""
    wanted = set(addresses)
    if not wanted:
        return {}
    pinged, echoed = await _echo(wanted)
    knocks = await _knock_all(wanted - (pinged - echoed), services)
    return {address: _answer(address in echoed, knocks.get(address, {})) for address in wanted}


async def answering(addresses: Collection[str]) -> set[str]:
    """pping: the IP addresses that answer an echo request; those that
    cannot be pinged from here (IPv6, no ICMP socket allowed) answer by
    accepting or refusing a connection to PING_PORTS, as xCAT's pping
    (nmap --unprivileged -PA80,443,22) finds them."""
    wanted = set(addresses)
    pinged, echoed = await _echo(wanted)
    knocks = await _knock_all(wanted - pinged, PING_PORTS)
    return echoed | {address for address, found in knocks.items() if _answer(False, found).up}


async def _echo(addresses: set[str]) -> tuple[set[str], set[str]]:
    """The addresses pinged (the IPv4 ones, where an ICMP socket may be
    opened), and those of them that answered."""
    pinger = Pinger.open()
    if pinger is None:
        return set(), set()
    pinged = {a for a in addresses if _is_ipv4(a)}
    with pinger.sock:
        return pinged, await pinger.echo(pinged)


def _answer(echoed: bool, knocks: dict[str, Knock]) -> Answer:
    up = echoed or any(knock is not Knock.SILENT for knock in knocks.values())
    return Answer(up, tuple(sorted(name for name, knock in knocks.items() if knock is Knock.OPEN)))


async def resolve(names: Iterable[str]) -> dict[str, str]:
    """xCAT's getipaddr for each name: an IP address as it is, else the first
    address name resolution gives; names that do not resolve are left out."""
    found: dict[str, str] = {}

    async def one(name: str) -> None:
        try:
            results = await trio.socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except OSError:  # socket.gaierror: no such name, or no resolver to ask
            return
        if results:
            found[name] = str(results[0][4][0])

    async with trio.open_nursery() as nursery:
        for name in set(names):
            nursery.start_soon(one, name)
    return found


# -- TCP ----------------------------------------------------------------------


async def _knock_all(
    addresses: Iterable[str], services: Sequence[tuple[str, int]]
) -> dict[str, dict[str, Knock]]:
    """Every service port of every address, at most `_sockets()` attempts at
    a time over every request of the daemon."""
    limiter = _limiter()
    found: dict[str, dict[str, Knock]] = {}

    async def one(address: str, name: str, port: int) -> None:
        async with limiter:
            found.setdefault(address, {})[name] = await _knock(address, port)

    async with trio.open_nursery() as nursery:
        for address in addresses:
            for name, port in services:
                nursery.start_soon(one, address, name, port)
    return found


async def _knock(address: str, port: int) -> Knock:
    family = socket.AF_INET if _is_ipv4(address) else socket.AF_INET6
    with trio.socket.socket(family, socket.SOCK_STREAM) as sock:
        with trio.move_on_after(CONNECT_TIMEOUT):
            try:
                await sock.connect((address, port))
            except ConnectionRefusedError:
                return Knock.REFUSED
            except OSError:  # unreachable: the network or the host said so
                return Knock.SILENT
            return Knock.OPEN
    return Knock.SILENT


@functools.cache
def _limiter() -> trio.CapacityLimiter:
    return trio.CapacityLimiter(_sockets())


def _sockets() -> int:
    """Connection attempts at once: MAX_SOCKETS, but never more than a
    quarter of this process's open-files limit (the daemon's own clients
    need the rest)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_SOCKETS
    return max(1, min(MAX_SOCKETS, soft // 4))


def _is_ipv4(address: str) -> bool:
    return ipaddress.ip_address(address).version == 4


# -- ICMP ---------------------------------------------------------------------


class Pinger:
    """ICMP echo to many IPv4 addresses through one socket.  A reply counts
    when it carries this round's random token (and, on a raw socket, which
    sees every ICMP packet the host receives, this round's identifier).

    The socket is a plain non-blocking one driven through trio's
    wait_readable/wait_writable, so that the listener can take every reply
    waiting at each wake-up: a thousand replies arrive within milliseconds,
    and those that do not fit the socket's buffer are lost."""

    _announced: str | None = None  # the way of pinging last logged

    def __init__(self, sock: socket.socket, raw: bool) -> None:
        self.sock = sock
        self.raw = raw
        self.token = os.urandom(8)
        # A datagram socket's identifier is chosen by the kernel, which also
        # routes the replies: only a raw socket needs its own.
        self.identifier = int.from_bytes(os.urandom(2), "big")

    @classmethod
    def open(cls) -> Pinger | None:
        """A datagram ICMP socket, else a raw one; None when neither is allowed."""
        for kind, how in (
            (socket.SOCK_DGRAM, "an ICMP datagram socket"),
            (socket.SOCK_RAW, "a raw ICMP socket"),
        ):
            try:
                sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
            except OSError:  # EACCES: outside ping_group_range; EPERM: no CAP_NET_RAW
                continue
            cls._announce(f"nodestat and pping ping through {how}")
            _prepare(sock, raw=kind == socket.SOCK_RAW)
            return cls(sock, kind == socket.SOCK_RAW)
        cls._announce(
            "nodestat and pping cannot send ICMP echo requests (no CAP_NET_RAW, and this group is "
            "outside net.ipv4.ping_group_range): they try the nodes' service ports only"
        )
        return None

    @classmethod
    def _announce(cls, how: str) -> None:
        if how != cls._announced:
            cls._announced = how
            log.info("%s", how)

    async def echo(self, addresses: set[str]) -> set[str]:
        """The addresses that answered."""
        answered: set[str] = set()
        if not addresses:
            return answered
        everyone = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._listen, addresses, answered, everyone)
            for sequence in range(ECHO_TRIES):
                for address in addresses - answered:
                    await self._send(address, sequence)
                with trio.move_on_after(ECHO_WAIT):
                    await everyone.wait()
                if everyone.is_set():
                    break
            nursery.cancel_scope.cancel()
        return answered

    async def _send(self, address: str, sequence: int) -> None:
        header = ICMP_HEADER.pack(ICMP_ECHO_REQUEST, 0, 0, self.identifier, sequence)
        checksum = _checksum(header + self.token)
        packet = ICMP_HEADER.pack(ICMP_ECHO_REQUEST, 0, checksum, self.identifier, sequence)
        while True:
            try:
                self.sock.sendto(packet + self.token, (address, 0))
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.sock)
                continue
            except OSError:  # no route there, or one that refuses: it stays silent
                pass
            break
        await trio.lowlevel.checkpoint()  # the listener takes the replies as they come

    async def _listen(self, addresses: set[str], answered: set[str], everyone: trio.Event) -> None:
        while True:
            await trio.lowlevel.wait_readable(self.sock)
            while True:
                try:
                    data, (source, _) = self.sock.recvfrom(RECEIVE_SIZE)
                except OSError:  # nothing more for now (or an error queued, now taken)
                    break
                if source in addresses and self._is_reply(data):
                    answered.add(source)
                    if len(answered) == len(addresses):
                        everyone.set()

    def _is_reply(self, data: bytes) -> bool:
        if self.raw:  # a raw socket receives the IP header too
            data = data[(data[0] & 0x0F) * 4 :] if data else data
        if len(data) < ICMP_HEADER.size + len(self.token):
            return False
        kind, code, _, identifier, _ = ICMP_HEADER.unpack_from(data)
        if (kind, code) != (ICMP_ECHO_REPLY, 0) or (self.raw and identifier != self.identifier):
            return False
        return data[ICMP_HEADER.size : ICMP_HEADER.size + len(self.token)] == self.token


def _prepare(sock: socket.socket, raw: bool) -> None:
    """Non-blocking, with room for many replies at once; a raw socket also
    told to pass echo replies only (ICMP_FILTER), not every ICMP packet."""
    sock.setblocking(False)
    try:  # beyond net.core.rmem_max: root (CAP_NET_ADMIN) only
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    if raw:
        passed = ~(1 << ICMP_ECHO_REPLY) & 0xFFFFFFFF  # a set bit filters its type out
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", passed))


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
