"""The HTTP server on loopback, as booting nodes and administrators meet it.

`serve_http` runs in the test's own nursery over a temporary installdir and
tftpdir; the real curl fetches from it, and a hand-made client on a raw TCP
connection sends what no well-behaved client would: traversal in every
spelling, huge heads, half a request, more connections than allowed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from pathlib import Path

import pytest
import trio

from xcatd.boot.http import MAX_HEAD, SMALL_FILE, serve_http
from xcatd.boot.pump import PUMP_NICE, PUMP_THREADS

GUARD = 60  # seconds any one exchange may take before the test is declared hung


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def parse_head(cls, head: bytes) -> Reply:
        status_line, *lines = head.decode("latin-1").split("\r\n")
        fields = (line.split(":", 1) for line in lines)
        headers = {name.strip().lower(): value.strip() for name, value in fields}
        return cls(int(status_line.split()[1]), headers, b"")

    @classmethod
    def parse(cls, raw: bytes) -> Reply:
        head, _, body = raw.partition(b"\r\n\r\n")
        reply = cls.parse_head(head)
        reply.body = body
        return reply


@dataclass
class Server:
    tmp: Path
    port: int
    reports: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def install(self) -> Path:
        return self.tmp / "install"

    @property
    def tftpboot(self) -> Path:
        return self.tmp / "tftpboot"

    def url(self, path: Path | str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path: Path, content: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path


async def start(nursery: trio.Nursery, tmp: Path, with_status: bool = True, **limits) -> Server:
    """serve_http over tmp/install and tmp/tftpboot, with a status handler that
    records every report and refuses it (as the daemon's would from a stranger)."""
    reports: list[tuple[str, dict[str, str]]] = []

    async def refuse(peer: str, fields: dict[str, str]) -> tuple[int, str]:
        reports.append((peer, fields))
        if "crash" in fields:
            raise RuntimeError("the handler has a bug")
        return 403, "refused"

    for root in ("install", "tftpboot"):
        (tmp / root).mkdir()
    roots = [tmp / "install", tmp / "tftpboot"]
    status = refuse if with_status else None
    port = await nursery.start(partial(serve_http, roots, "127.0.0.1", 0, status, **limits))
    return Server(tmp, port, reports)


@pytest.fixture
async def server(nursery: trio.Nursery, tmp_path: Path) -> Server:
    return await start(nursery, tmp_path)


@pytest.fixture
def image(server: Server) -> tuple[Path, bytes]:
    """A packed image where packimage puts one, 100 KB of random bytes."""
    content = os.urandom(100_000)
    path = server.install / "netboot/debian12/x86_64/service/rootimg.cpio.gz"
    return server.put(path, content), content


async def run(*command: str) -> subprocess.CompletedProcess[bytes]:
    """Run a real program; the server keeps serving meanwhile, on this event loop."""
    with trio.fail_after(GUARD):
        return await trio.run_process(
            command, check=False, capture_stdout=True, capture_stderr=True
        )


async def curl(*arguments: str) -> Reply:
    """One request with the real curl; its reply, head and body."""
    done = await run("curl", "-sS", "-i", *arguments)
    assert done.returncode == 0, done.stderr.decode()
    return Reply.parse(done.stdout)


class RawClient:
    """A hand-made client on one TCP connection, sending whatever bytes a test asks."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    @classmethod
    async def connect(cls, server: Server) -> RawClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", server.port))

    async def ask(self, request: bytes, head_only: bool = False) -> Reply:
        await self.stream.send_all(request)
        return await self.reply(head_only)

    async def reply(self, head_only: bool = False) -> Reply:
        with trio.fail_after(GUARD):
            while b"\r\n\r\n" not in self.buffer:
                await self._fill()
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            reply = Reply.parse_head(head)
            length = 0 if head_only else int(reply.headers.get("content-length", 0))
            while len(self.buffer) < length:
                await self._fill()
        reply.body, self.buffer = self.buffer[:length], self.buffer[length:]
        return reply

    async def closed_by_server(self) -> bool:
        """True once the server has closed the connection, having sent nothing more.

        A server closing with our request unread makes the kernel reset the
        connection: that is closed as well.
        """
        with trio.fail_after(GUARD):
            try:
                return await self.stream.receive_some(65536) == b""
            except trio.BrokenResourceError:
                return True

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError("the server closed the connection mid-reply")
        self.buffer += data


async def exchange(server: Server, request: bytes) -> Reply:
    """Send one raw request on a connection of its own; the reply, once the server closes."""
    client = await RawClient.connect(server)
    async with client.stream:
        reply = await client.ask(request)
        assert await client.closed_by_server()
    return reply


def get(target: str | bytes, *headers: str) -> bytes:
    """A raw GET that asks the server to close after answering."""
    raw_target = target.encode() if isinstance(target, str) else target
    lines = [b"GET " + raw_target + b" HTTP/1.1", b"Host: test", b"Connection: close",
             *(header.encode() for header in headers)]  # fmt: skip
    return b"\r\n".join(lines) + b"\r\n\r\n"


# Files, as curl gets them


async def test_get_sends_the_file_with_its_headers(server: Server, image) -> None:
    path, content = image
    reply = await curl(server.url(path))
    assert reply.status == 200
    assert reply.body == content
    assert reply.headers["content-length"] == str(len(content))
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.headers["last-modified"] == formatdate(path.stat().st_mtime, usegmt=True)
    assert reply.headers["accept-ranges"] == "bytes"


async def test_ipxe_scripts_are_text(server: Server) -> None:
    script = server.put(server.tftpboot / "xcat/xnba/nodes/cn1.ipxe", b"#!ipxe\nboot\n")
    reply = await curl(server.url(script))
    assert (reply.status, reply.body) == (200, b"#!ipxe\nboot\n")
    assert reply.headers["content-type"].startswith("text/plain")


async def test_head_sends_the_headers_alone(server: Server, image) -> None:
    path, content = image
    reply = await curl("-I", server.url(path))
    assert reply.status == 200
    assert reply.headers["content-length"] == str(len(content))
    assert reply.body == b""


@pytest.mark.parametrize(
    ("asked", "start", "stop"),
    [("10-19", 10, 20), ("99990-", 99990, 100_000), ("-5", 99995, 100_000),
     ("0-", 0, 100_000), ("99000-200000", 99000, 100_000)],
)  # fmt: skip
async def test_a_range_is_sent_as_partial_content(
    server: Server, image, asked: str, start: int, stop: int
) -> None:
    path, content = image
    reply = await curl("-r", asked, server.url(path))
    assert reply.status == 206
    assert reply.body == content[start:stop]
    assert reply.headers["content-range"] == f"bytes {start}-{stop - 1}/{len(content)}"
    assert reply.headers["content-length"] == str(stop - start)


async def test_a_range_past_the_end_is_not_satisfiable(server: Server, image) -> None:
    path, content = image
    reply = await curl("-r", "100000-", server.url(path))
    assert reply.status == 416
    assert reply.headers["content-range"] == f"bytes */{len(content)}"


@pytest.mark.parametrize("asked", ["bytes=0-9,20-29", "bytes=abc", "bytes=9-0", "lines=1-2"])
async def test_malformed_or_several_ranges_get_the_whole_file(
    server: Server, image, asked: str
) -> None:
    path, content = image
    reply = await curl("-H", f"Range: {asked}", server.url(path))
    assert (reply.status, reply.body) == (200, content)


async def test_if_range_sends_all_of_a_changed_file(server: Server, image) -> None:
    path, content = image
    current = formatdate(path.stat().st_mtime, usegmt=True)
    stale = formatdate(path.stat().st_mtime - 3600, usegmt=True)
    resumed = await curl("-r", "10-19", "-H", f"If-Range: {current}", server.url(path))
    assert (resumed.status, resumed.body) == (206, content[10:20])
    restarted = await curl("-r", "10-19", "-H", f"If-Range: {stale}", server.url(path))
    assert (restarted.status, restarted.body) == (200, content)


async def test_two_downloads_share_one_connection(server: Server, image) -> None:
    path, _ = image
    script = server.put(server.tftpboot / "cn1.ipxe", b"#!ipxe\n")
    urls = [server.url(path), server.url(script)]
    done = await run("curl", "-sS", "-o", "/dev/null", "-o", "/dev/null",
                     "-w", "%{http_code} %{num_connects}\n", *urls)  # fmt: skip
    assert done.stdout.decode().split("\n") == ["200 1", "200 0", ""]


async def test_pipelined_requests_are_answered_in_order(server: Server, image) -> None:
    path, content = image
    client = await RawClient.connect(server)
    async with client.stream:
        await client.stream.send_all(
            f"HEAD {path} HTTP/1.1\r\nHost: test\r\n\r\n"
            f"HEAD {path}.missing HTTP/1.1\r\nHost: test\r\n\r\n".encode()
            + get(str(path))
        )
        head, missing, whole = [await client.reply(head_only) for head_only in (True, True, False)]
        assert [head.status, missing.status, whole.status] == [200, 404, 200]
        assert whole.body == content
        assert await client.closed_by_server()


async def test_percent_encoding_is_decoded_once(server: Server) -> None:
    server.put(server.install / "100% ready.txt", b"ready\n")
    server.put(server.install / "%41", b"literal\n")
    reply = await curl(server.url(f"{server.install}/100%25%20ready.txt"))
    assert (reply.status, reply.body) == (200, b"ready\n")
    reply = await curl(server.url(f"{server.install}/%2541"))
    assert (reply.status, reply.body) == (200, b"literal\n")


async def test_symlinks_within_the_roots_are_followed(server: Server) -> None:
    server.put(server.tftpboot / "xcat/xnba/nodes/cn1", b"#!ipxe\n")
    link = server.install / "cn1-boot"
    link.symlink_to(server.tftpboot / "xcat/xnba/nodes/cn1")
    reply = await curl(server.url(link))
    assert (reply.status, reply.body) == (200, b"#!ipxe\n")


# What must never be served


@pytest.fixture
def secret(server: Server) -> bytes:
    """A file beside the roots, and two symlinks inside them leading to it."""
    content = b"root:secret-hash:19000::::::\n"
    server.put(server.tmp / "shadow", content)
    (server.install / "shadow-link").symlink_to(server.tmp / "shadow")
    (server.install / "outside").symlink_to(server.tmp)
    return content


async def test_dot_dot_is_refused_as_curl_sends_it(server: Server, secret: bytes) -> None:
    reply = await curl("--path-as-is", server.url(f"{server.install}/../shadow"))
    assert reply.status == 404
    assert secret not in reply.body


@pytest.mark.parametrize(
    "suffix",
    ["/%2e%2e/shadow", "/%2E%2E/shadow", "/.%2e/shadow", "%2f..%2fshadow", "/..%2Fshadow",
     "/../shadow", "/./../shadow", "/shadow-link", "/outside/shadow", "/%2e%2e%2fshadow",
     "/../shadow%00", "/%252e%252e/shadow"],
)  # fmt: skip
async def test_traversal_is_refused_in_every_spelling(
    server: Server, secret: bytes, suffix: str
) -> None:
    reply = await exchange(server, get(f"{server.install}{suffix}"))
    assert reply.status == 404
    assert secret not in reply.body


async def test_paths_outside_the_roots_are_not_found(server: Server, secret: bytes) -> None:
    for path in (server.tmp / "shadow", "/etc/passwd", "/", f"http://test{server.tmp}/shadow"):
        reply = await exchange(server, get(str(path)))
        assert reply.status == 404, path
        assert secret not in reply.body


async def test_an_absolute_form_target_is_served(server: Server, image) -> None:
    path, content = image
    reply = await exchange(server, get(f"http://test{path}"))
    assert (reply.status, reply.body) == (200, content)


async def test_directories_and_special_files_are_not_listed(server: Server, image) -> None:
    path, _ = image
    os.mkfifo(server.install / "fifo")
    for target in (path.parent, f"{path.parent}/", server.install, server.install / "fifo"):
        reply = await curl(server.url(target))
        assert reply.status == 404, target


async def test_other_methods_are_not_allowed(server: Server, image) -> None:
    path, _ = image
    for method in ("PUT", "DELETE", "OPTIONS"):
        reply = await curl("-X", method, server.url(path))
        assert reply.status == 405
        assert reply.headers["allow"] == "GET, HEAD"
    assert path.exists()


# Bad and slow clients


async def test_a_huge_head_is_refused_and_the_connection_closed(server: Server) -> None:
    request = get("/install/x", "X-Padding: " + "a" * 40_000)
    reply = await exchange(server, request)
    assert reply.status == 431


async def test_a_20_kib_head_is_refused_though_it_comes_whole(server: Server, image) -> None:
    path, _ = image
    done = await run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                     "-H", "X-Padding: " + "a" * 20 * 1024, server.url(path))  # fmt: skip
    assert done.stdout == b"431"


@pytest.mark.parametrize(("extra", "status"), [(0, 200), (1, 431)])
async def test_16_kib_is_the_largest_head_taken(
    server: Server, image, extra: int, status: int
) -> None:
    path, _ = image
    padding = MAX_HEAD + extra - len(get(str(path), "X-Padding: "))
    request = get(str(path), "X-Padding: " + "a" * padding)
    assert len(request) == MAX_HEAD + extra
    assert (await exchange(server, request)).status == status


async def test_a_malformed_absolute_url_is_not_found(server: Server, image) -> None:
    for target in ("http://[/install/x", "http://[::1/install/x"):
        assert (await exchange(server, get(target))).status == 404
    path, content = image
    assert (await curl(server.url(path))).body == content  # still serving


async def test_garbage_is_a_bad_request(server: Server) -> None:
    reply = await exchange(server, b"HELLO THERE\r\n\r\n")
    assert reply.status == 400


async def test_a_client_stalling_mid_head_is_cut_off(nursery: trio.Nursery, tmp_path) -> None:
    server = await start(nursery, tmp_path, request_timeout=0.5)
    client = await RawClient.connect(server)
    async with client.stream:
        await client.stream.send_all(b"GET /install/x HTTP/1.1\r\nHost: te")
        assert await client.closed_by_server()


async def test_an_idle_keep_alive_connection_is_closed(nursery: trio.Nursery, tmp_path) -> None:
    server = await start(nursery, tmp_path, request_timeout=0.5)
    path = server.put(server.install / "cn1.ipxe", b"#!ipxe\n")
    client = await RawClient.connect(server)
    async with client.stream:
        reply = await client.ask(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        assert (reply.status, reply.body) == (200, b"#!ipxe\n")
        assert await client.closed_by_server()


@asynccontextmanager
async def two_connections_held(server: Server, path: Path) -> AsyncIterator[RawClient]:
    """Two kept-alive connections from 127.0.0.1, each answered, where the server
    allows two: a third from there is refused.  The first, for the test to use."""
    keep_alive = f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()
    first, second = await RawClient.connect(server), await RawClient.connect(server)
    async with first.stream, second.stream:
        for client in (first, second):  # answered: both are being served
            assert (await client.ask(keep_alive)).status == 200
        refused = await run("curl", "-sS", server.url(path))
        assert refused.returncode != 0, refused.stdout
        yield first


async def test_connections_past_the_limit_are_refused(nursery: trio.Nursery, tmp_path) -> None:
    server = await start(nursery, tmp_path, max_connections=2)
    path = server.put(server.install / "cn1.ipxe", b"#!ipxe\n")
    async with two_connections_held(server, path) as first:
        # Once the server has closed one (it counts it gone before closing),
        # there is room again.
        assert (await first.ask(get(str(path)))).status == 200
        assert await first.closed_by_server()
        reply = await curl(server.url(path))
        assert (reply.status, reply.body) == (200, b"#!ipxe\n")


async def test_one_host_cannot_take_every_connection(nursery: trio.Nursery, tmp_path) -> None:
    # A thousand nodes boot at once: each must get its connections, however
    # many one broken or hostile host holds.
    server = await start(nursery, tmp_path, max_connections_per_host=2)
    path = server.put(server.tftpboot / "xcat/xnba/nodes/cn1", b"#!ipxe\n")
    async with two_connections_held(server, path):
        reply = await curl("--interface", "127.0.0.2", server.url(path))  # another node
        assert (reply.status, reply.body) == (200, b"#!ipxe\n")


async def test_file_bodies_are_sent_below_the_daemons_priority(server: Server) -> None:
    # The pump's threads copy file bodies niced: a storm of downloads gets
    # the CPU the event loop (status reports, administrators) leaves.
    path = server.put(server.install / "rootimg.cpio.zst", os.urandom(1 << 20))
    assert (await curl(server.url(path))).body == path.read_bytes()
    pumps = [t for t in threading.enumerate() if t.name.startswith("sendfile-pump-")]
    assert len(pumps) >= PUMP_THREADS  # this server's; another test's may be ending
    assert {os.getpriority(os.PRIO_PROCESS, t.native_id) for t in pumps} == {PUMP_NICE}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < PUMP_NICE


async def test_small_files_and_their_ranges_come_whole_from_memory(server: Server) -> None:
    script = os.urandom(SMALL_FILE)
    path = server.put(server.tftpboot / "xcat/xnba/nodes/cn1", script)
    assert (await curl(server.url(path))).body == script
    part = await curl("-r", "100-199", server.url(path))
    assert (part.status, part.body) == (206, script[100:200])
    head = await curl("-I", server.url(path))
    assert (head.headers["content-length"], head.body) == (str(SMALL_FILE), b"")


async def test_many_parallel_downloads_are_all_whole(server: Server) -> None:
    content = os.urandom(16 << 20)
    path = server.put(server.install / "netboot/big/rootimg.cpio.gz", content)
    expected = hashlib.sha256(content).hexdigest()
    digests: list[str] = []

    async def download() -> None:
        done = await run("bash", "-o", "pipefail", "-c",
                         f"curl -sS {server.url(path)} | sha256sum")  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        digests.append(done.stdout.decode().split()[0])

    async with trio.open_nursery() as downloads:
        for _ in range(200):
            downloads.start_soon(download)
    assert digests == [expected] * 200


# Status reports


def status_post(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> bytes:
    head = (f"POST /xcatd/status HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def test_a_status_report_reaches_the_handler(server: Server) -> None:
    reply = await curl("-d", "state=booted", "-d", "note=a%20b", server.url("/xcatd/status"))
    assert (reply.status, reply.body) == (403, b"refused\n")
    assert server.reports == [("127.0.0.1", {"state": "booted", "note": "a b"})]


@pytest.mark.parametrize(
    ("request_bytes", "status", "says"),
    [
        (status_post(b"state=booted", "text/plain"), 415, b"application/x-www-form-urlencoded"),
        (status_post(b"state=booted&state=failed"), 400, b"'state' given twice"),
        (status_post(b"state=%ff"), 400, b"bad form"),
        (status_post(b"state"), 400, b"bad form"),
        (status_post(b"state=" + b"x" * 5000), 413, b"Too Large"),
        (get("/xcatd/status"), 405, b"Not Allowed"),
    ],
)
async def test_bad_status_reports_never_reach_the_handler(
    server: Server, request_bytes: bytes, status: int, says: bytes
) -> None:
    reply = await exchange(server, request_bytes)
    assert reply.status == status
    assert says in reply.body
    assert server.reports == []


async def test_a_failing_handler_is_a_server_error(server: Server, image) -> None:
    reply = await exchange(server, status_post(b"state=booted&crash=1"))
    assert reply.status == 500
    path, content = image
    assert (await curl(server.url(path))).body == content  # still serving


async def test_without_a_handler_there_is_no_status_endpoint(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = await start(nursery, tmp_path, with_status=False)
    reply = await exchange(server, status_post(b"state=booted"))
    assert reply.status == 404
