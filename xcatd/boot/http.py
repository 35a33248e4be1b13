"""The daemon's read-only HTTP server: boot files out, status reports in.

xCAT's convention is that a URL's path is the file's absolute path
(imgurl=http://<server>/install/netboot/<os>/<arch>/<profile>/rootimg.cpio.gz
for rootimgdir=/install/netboot/<os>/<arch>/<profile>), so the path,
percent-decoded once, is opened as it is, and served only when the file it
really is (symlinks resolved) lies under one of the roots (installdir and
tftpdir).  Anything else is 404: paths with `..` or an encoded `/`, symlinks
leading out, directories (no listings), special files.

GET and HEAD, single byte ranges (see byteranges.py for what is honoured),
HTTP/1.1 persistent connections.  h11 is the HTTP state machine; this module
is the I/O around it.  File bodies go from the page cache to the socket with
os.sendfile on the sendfile pump's low-priority threads (pump.py), never
through Python: h11 is handed a stand-in that has the body's length, as its
documentation describes for sendfile.  Files of at most SMALL_FILE bytes
(iPXE scripts, boot loader configs) are read whole when opened and sent
from memory on the event loop: a thousand nodes' scripts then cost no
thread hop each.

POST /xcatd/status is where booting nodes report `state=netbooting` and the
like: the form goes to the daemon's StatusHandler with the peer's address.

Limits, so that bad or slow clients cannot exhaust the daemon: a request
head (request line and header fields) over 16 KiB is refused with 431, be it
still unfinished or whole in one read; a request body (only status forms
have one) of at most 4 KiB (413); a request must arrive whole within
request_timeout of the server being ready for it (slowloris; also how long
an idle keep-alive connection lives); a client that takes no bytes for
send_timeout is dropped; connections past max_connections in all, or past
max_connections_per_host from one address, are closed as soon as they are
accepted (a node opens one or two at a time; a thousand booting nodes must
all get theirs however many one broken or hostile host opens).  Whatever a
client sends costs its own connection at most: an unexpected error (a bug)
is logged with its traceback, and the server carries on.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from pathlib import Path, PurePosixPath

import h11
import trio

from ..accepting import serve_listeners
from .byteranges import ByteRange, Unsatisfiable, parse_range, unsatisfied_content_range
from .pump import Pump, open_pump, sendfile_while_room
from .room import Room
from .served import ServedFile, open_served

log = logging.getLogger(__name__)

StatusHandler = Callable[[str, dict[str, str]], Awaitable[tuple[int, str]]]
"""(peer's IP address, form fields) -> (HTTP status code, one line of text)."""

STATUS_PATH = "/xcatd/status"
FILE_METHODS = (b"GET", b"HEAD")
MAX_HEAD = 16 * 1024
RECEIVE_SIZE = 16 * 1024  # requests are small
MAX_FORM = 4 * 1024
MAX_FORM_FIELDS = 32
FORM_TYPE = "application/x-www-form-urlencoded"
SENDFILE_TURN = 8 << 20  # at most this much per pump piece, so other connections get a turn
SMALL_FILE = 64 << 10  # files up to this size are read when opened and sent from memory
OPENING_THREADS = 8  # opens at once: a limiter of its own, never the daemon's threads
TEXT_SUFFIXES = frozenset({".ipxe", ".cfg", ".txt"})  # boot-loader scripts and configs


async def serve_http(
    roots: Sequence[Path],
    host: str,
    port: int,
    status: StatusHandler | None = None,
    *,
    request_timeout: float = 30.0,
    send_timeout: float = 60.0,
    max_connections: int = 4096,
    max_connections_per_host: int = 256,
    task_status=trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve files under `roots` on host:port until cancelled.

    Reports the bound port to task_status (so port 0 picks a free one); every
    connection is a task of serve_listeners' nursery (accepting.py), inside this call.
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    async with open_pump() as pump:
        server = _Server(
            roots=tuple(root.resolve() for root in roots),
            status=status,
            request_timeout=request_timeout,
            send_timeout=send_timeout,
            room=Room(max_connections, max_connections_per_host),
            pump=pump,
        )
        task_status.started(listeners[0].socket.getsockname()[1])
        await serve_listeners(server.handle, listeners)


@dataclass
class _Server:
    roots: tuple[Path, ...]
    status: StatusHandler | None
    request_timeout: float
    send_timeout: float
    room: Room  # connections in all and per host
    pump: Pump
    opening: trio.CapacityLimiter = field(
        default_factory=lambda: trio.CapacityLimiter(OPENING_THREADS)
    )

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve one accepted connection; serve_listeners closes it after."""
        try:
            host = peer_address(stream)
        except OSError:  # reset before it was accepted
            return
        if refusal := self.room.refusal(host):
            log.warning("HTTP: refusing a connection from %s: %s", host, refusal)
            return
        with self.room.held(host):
            try:
                await _Connection(self, stream, host).serve()
            except (trio.BrokenResourceError, trio.TooSlowError, OSError) as exc:
                log.debug("HTTP connection dropped: %s", exc)
            except Exception:  # a bug: it must cost this connection, never the server
                log.exception(
                    "HTTP: serving a connection failed; it is dropped, the server carries on"
                )


@dataclass(frozen=True)
class _Request:
    head: h11.Request
    body: bytes

    @property
    def method(self) -> bytes:
        return self.head.method

    def header(self, name: bytes) -> str | None:
        """The field's value, repeated fields joined as RFC 9110 §5.3 says; None if absent."""
        values = [value.decode("latin-1") for key, value in self.head.headers if key == name]
        return ", ".join(values) if values else None


class _FormTooLarge(Exception):
    pass


class _Connection:
    """One client's connection: requests answered one after another."""

    def __init__(self, server: _Server, stream: trio.SocketStream, peer: str) -> None:
        self.server = server
        self.stream = stream
        self.peer = peer
        self.http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.head_only = False  # the request being answered is a HEAD: no body goes out

    async def serve(self) -> None:
        while True:
            self.head_only = False
            request = await self._next_request()
            if request is None:
                return
            self.head_only = request.method == b"HEAD"
            await self._respond(request)
            if self.http.our_state is not h11.DONE or self.http.their_state is not h11.DONE:
                return  # one side asked to close, or the request was cut short
            self.http.start_next_cycle()

    async def _next_request(self) -> _Request | None:
        """The next whole request; None when the client is gone, too slow, or sent a bad one."""
        try:
            with trio.move_on_after(self.server.request_timeout):
                return await self._receive_request()
            return None  # slow or idle: just close, as nginx does
        except h11.RemoteProtocolError as exc:
            await self._send_text(exc.error_status_hint, close=True)
        except _FormTooLarge:
            await self._send_text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, close=True)
        return None

    async def _receive_request(self) -> _Request | None:
        head, body = None, bytearray()
        while True:
            event = self._next_event()
            if event is h11.NEED_DATA:
                self.http.receive_data(await self.stream.receive_some(RECEIVE_SIZE))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_FORM:
                    raise _FormTooLarge
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None  # h11 sends a Request before its end
                return _Request(head, bytes(body))
            else:
                return None  # ConnectionClosed

    def _next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        """h11's next event; RemoteProtocolError (431) for a request head over MAX_HEAD.

        h11's max_incomplete_event_size bounds only a head still waiting for
        its end: one that arrives whole in a read is taken at any size.  So
        the head's size is what parsing it took out of h11's buffer.
        """
        unparsed = len(self.http.trailing_data[0])
        event = self.http.next_event()
        if isinstance(event, h11.Request) and unparsed - len(self.http.trailing_data[0]) > MAX_HEAD:
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        return event

    async def _respond(self, request: _Request) -> None:
        path = decode_target(request.head.target)
        if path == STATUS_PATH:
            if self.server.status is None:
                await self._send_text(HTTPStatus.NOT_FOUND)
            elif request.method != b"POST":
                await self._send_text(HTTPStatus.METHOD_NOT_ALLOWED, headers=[("allow", "POST")])
            else:
                await self._report_status(request, self.server.status)
        elif request.method not in FILE_METHODS:
            await self._send_text(HTTPStatus.METHOD_NOT_ALLOWED, headers=[("allow", "GET, HEAD")])
        elif path is None:
            await self._send_text(HTTPStatus.NOT_FOUND)
        else:
            await self._send_file(request, path)

    async def _report_status(self, request: _Request, status: StatusHandler) -> None:
        content_type = (request.header(b"content-type") or "").partition(";")[0]
        if content_type.strip().lower() != FORM_TYPE:
            await self._send_text(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"send {FORM_TYPE}")
            return
        try:
            fields = parse_form(request.body)
        except ValueError as exc:
            await self._send_text(HTTPStatus.BAD_REQUEST, str(exc))
            return
        try:
            code, text = await status(self.peer, fields)
        except Exception:
            log.exception("HTTP: status report from %s failed", self.peer)
            code, text = HTTPStatus.INTERNAL_SERVER_ERROR, "status report failed"
        await self._send_text(code, text)

    async def _send_file(self, request: _Request, path: str) -> None:
        try:
            opened, content = await trio.to_thread.run_sync(
                _open_for_sending, self.server.roots, Path(path), limiter=self.server.opening
            )
        except OSError:  # not there, or not to be handed out: the same to the client
            await self._send_text(HTTPStatus.NOT_FOUND)
            return
        try:
            await self._send_opened(request, opened, content, path)
        finally:
            os.close(opened.fd)

    async def _send_opened(
        self, request: _Request, opened: ServedFile, content: bytes | None, path: str
    ) -> None:
        modified = formatdate(opened.mtime, usegmt=True)
        headers = [("content-type", content_type(path)), ("last-modified", modified),
                   ("accept-ranges", "bytes")]  # fmt: skip
        if request.header(b"if-range") not in (None, modified):
            asked = None  # the client's copy is of another version: send all of this one
        else:
            asked = request.header(b"range")
        try:
            span = parse_range(asked, opened.size)
        except Unsatisfiable:
            await self._send_text(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                headers=[("content-range", unsatisfied_content_range(opened.size))],
            )
            return
        if span is None:
            code, span = HTTPStatus.OK, ByteRange(0, opened.size)
        else:
            code = HTTPStatus.PARTIAL_CONTENT
            headers.append(("content-range", span.content_range(opened.size)))
        headers.append(("content-length", str(span.length)))
        await self._send_event(_response(code, headers))
        if self.head_only:
            pass
        elif content is not None:
            await self._send_event(h11.Data(data=content[span.start : span.stop]))
        else:
            await self._send_span(opened.fd, span)
        await self._send_event(h11.EndOfMessage())
        log.info("HTTP: %d %s %s (%d bytes) to %s", code, request.method.decode(), path,
                 span.length, self.peer)  # fmt: skip

    async def _send_span(self, fd: int, span: ByteRange) -> None:
        """Send bytes of the file with sendfile, h11 counting them through a stand-in."""
        stand_in = _Unsent(span.length)  # h11 takes only its len(), whatever its type says
        pieces = self.http.send_with_data_passthrough(h11.Data(data=stand_in))  # type: ignore[arg-type]
        assert pieces is not None  # None answers ConnectionClosed only
        for piece in pieces:
            if piece is stand_in:
                await self._sendfile(fd, span)
            else:
                await self._send_bytes(piece)

    async def _sendfile(self, fd: int, span: ByteRange) -> None:
        """Copy the span to the socket on the pump's threads, whenever the socket has room.

        In threads, a cold page cache never stalls the event loop, and the
        kernel's work (on loopback, the receiving side's too) spreads over
        the cores.  Measured with bench/http.py: somewhat faster than
        sendfile on the event loop, and far faster than reading 1 MiB chunks
        into Python in threads and sending them as h11 Data.
        """
        sock = self.stream.socket
        offset = span.start
        while offset < span.stop:
            with trio.fail_after(self.server.send_timeout):
                await trio.lowlevel.wait_writable(sock)
            count = min(span.stop - offset, SENDFILE_TURN)
            piece = partial(sendfile_while_room, sock.fileno(), fd, offset, count)
            offset += await self.server.pump.run(piece)

    async def _send_text(
        self,
        code: int,
        text: str = "",
        *,
        headers: Sequence[tuple[str, str]] = (),
        close: bool = False,
    ) -> None:
        """A whole response whose body is one line of text (the status's phrase by default)."""
        body = ((text or _phrase(code)) + "\n").encode()
        fields = [*headers, ("content-type", "text/plain; charset=utf-8"),
                  ("content-length", str(len(body)))]  # fmt: skip
        if close:
            fields.append(("connection", "close"))
        await self._send_event(_response(code, fields))
        if not self.head_only:
            await self._send_event(h11.Data(data=body))
        await self._send_event(h11.EndOfMessage())

    async def _send_event(self, event: h11.Event) -> None:
        data = self.http.send(event)
        if data:
            await self._send_bytes(data)

    async def _send_bytes(self, data: bytes) -> None:
        with trio.fail_after(self.server.send_timeout):
            await self.stream.send_all(data)


@dataclass(frozen=True)
class _Unsent:
    """Stands for body bytes that h11 counts but never sees: sendfile sends them."""

    length: int

    def __len__(self) -> int:
        return self.length


def _open_for_sending(roots: Sequence[Path], path: Path) -> tuple[ServedFile, bytes | None]:
    """The opened file, with its bytes when it is small enough to send from memory."""
    opened = open_served(roots, path)
    if opened.size > SMALL_FILE:
        return opened, None
    try:
        content = os.pread(opened.fd, opened.size, 0)
    except BaseException:
        os.close(opened.fd)
        raise
    if len(content) != opened.size:  # rewritten under us: nodeset renames, never truncates
        os.close(opened.fd)
        raise FileNotFoundError(f"{path} changed while it was read")
    return opened, content


def _response(code: int, headers: Sequence[tuple[str, str]]) -> h11.Response:
    """A response head with the fields every response carries."""
    fields = [("date", formatdate(usegmt=True)), ("server", "xcatd"), *headers]
    return h11.Response(status_code=code, headers=fields, reason=_phrase(code))


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:  # a code the status handler chose that Python does not name
        return ""


def decode_target(target: bytes) -> str | None:
    """The absolute path a request target names, percent-decoded once.

    None when it names none that may be served: not a path (nor a URL, such
    as `http://[/`), a `..` segment, an encoded `/` (which would make one
    segment two) or a NUL byte.
    """
    if target.startswith(b"/"):
        raw = target.partition(b"?")[0]
    else:  # absolute-form, http://host/path (RFC 9112 §3.2.2)
        try:
            raw = urllib.parse.urlsplit(target).path
        except ValueError:  # an unclosed "[" of an IPv6 host, or bytes that are not ASCII
            return None
    if b"%2f" in raw.lower():
        return None
    path = urllib.parse.unquote_to_bytes(raw)
    if not path.startswith(b"/") or b"\0" in path or b".." in path.split(b"/"):
        return None
    return os.fsdecode(path)


def content_type(path: str) -> str:
    if PurePosixPath(path).suffix in TEXT_SUFFIXES:
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def parse_form(body: bytes) -> dict[str, str]:
    """The fields of an application/x-www-form-urlencoded body; ValueError says what is wrong."""
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
            encoding="utf-8", errors="strict", max_num_fields=MAX_FORM_FIELDS,
        )  # fmt: skip
    except UnicodeDecodeError:
        raise ValueError("bad form: not URL-encoded UTF-8") from None
    except ValueError as exc:
        raise ValueError(f"bad form: {exc}") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise ValueError(f"bad form: field {name!r} given twice")
        fields[name] = value
    return fields


def peer_address(stream: trio.SocketStream) -> str:
    """The client's IP address, an IPv4 one even when it came through a dual-stack socket."""
    address = ipaddress.ip_address(stream.socket.getpeername()[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)
