"""A blocking TLS connection to the daemon, speaking the framed protocol."""

from __future__ import annotations

import os
import socket
import ssl
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from xcat_protocol import PROTOCOL_VERSION
from xcat_protocol.errors import ProtocolError, VersionMismatch
from xcat_protocol.framing import FrameDecoder, encode_frame
from xcat_protocol.messages import (
    NONCE_SIZE,
    STDIN_CHUNK,
    ClientMessage,
    ErrorFrame,
    Hello,
    Request,
    RequestBody,
    ServerMessage,
    StdinData,
    parse_server_message,
)
from xcat_protocol.signing import SigningKey, load_signing_key, sign_body
from xcat_protocol.tls import client_context, enrolling_context

from .credentials import Credentials, Target
from .errors import ClientError

CONNECT_TIMEOUT = 10
INLINE_STDIN = 4 << 20  # larger standard input is streamed after the request


class _ClosedBeforeHello(Exception):
    """The daemon closed the connection before its greeting."""


class Connection:
    def __init__(self, target: Target, credentials: Credentials) -> None:
        self.target = target
        self.credentials: Credentials | None = credentials
        self._key = load_signing_key(credentials.cred_pem)
        try:
            context = client_context(credentials.ca_file, credentials.cred_file)
        except (ssl.SSLError, ValueError) as exc:
            raise ClientError(f"unusable credentials in {credentials.directory}: {exc}") from None
        self._open(context)

    @classmethod
    def enrolling(cls, target: Target, key: SigningKey) -> Connection:
        """A connection of a node with no credentials yet, which may only
        enroll; it trusts no one until it has checked what it gets back
        (xcatd/servicenode/enroll.py)."""
        connection = cls.__new__(cls)
        connection.target, connection.credentials, connection._key = target, None, key
        connection._open(enrolling_context())
        return connection

    def _open(self, context: ssl.SSLContext) -> None:
        self._decoder = FrameDecoder()
        self._next_id = 1
        self.sock = self._connect(context)
        try:
            hello = self.receive()
        except _ClosedBeforeHello:
            raise ClientError(self._refusal()) from None
        if not isinstance(hello, Hello):
            raise ClientError(f"xcatd at {self.target} did not greet as expected")
        self.server = hello

    def _connect(self, context: ssl.SSLContext) -> ssl.SSLSocket:
        try:
            raw = socket.create_connection(
                (self.target.host, self.target.port), timeout=CONNECT_TIMEOUT
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ClientError(f"cannot reach xcatd at {self.target} (XCATHOST): {reason}") from None
        try:
            sock = context.wrap_socket(raw, server_hostname=self.target.host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            assert self.credentials is not None  # only a context with a CA verifies
            raise ClientError(
                f"the server at {self.target} is not trusted: its certificate is not from the "
                f"cluster CA in {self.credentials.ca_file} ({exc.verify_message})"
            ) from None
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            raw.close()
            raise ClientError(
                f"xcatd at {self.target} closed the connection during the TLS handshake: it "
                "admits only so many connections at once, from one address too (its log says "
                "which limit); try again, or raise the limit in its xcatd.toml"
            ) from None
        except (ssl.SSLError, OSError) as exc:
            raw.close()
            raise ClientError(f"TLS with xcatd at {self.target} failed: {exc}") from None
        sock.settimeout(None)
        return sock

    def request(self, cmd: str, args: list[str], stdin: bytes | None = None, **fields: Any) -> int:
        """Sign and send a request; return its id.

        Standard input that would make the request frame large is streamed
        after it in `stdin` frames, and the signed body carries its digest.
        """
        request_id = self._next_id
        self._next_id += 1
        streamed = stdin if stdin is not None and len(stdin) > INLINE_STDIN else None
        if streamed is not None:
            import hashlib  # only big inputs pay for it

            fields["stdin_sha256"] = hashlib.sha256(streamed).digest()
        body = RequestBody(
            cmd=cmd,
            args=args,
            ts=int(time.time() * 1000),
            nonce=os.urandom(NONCE_SIZE),
            stdin=None if streamed is not None else stdin,
            **fields,
        ).encode()
        self.send(Request(request_id, body, sign_body(self._key, body)))
        if streamed is not None:
            view = memoryview(streamed)
            for start in range(0, len(view), STDIN_CHUNK):
                self.send(StdinData(request_id, bytes(view[start : start + STDIN_CHUNK])))
            self.send(StdinData(request_id, b""))
        return request_id

    def send(self, message: ClientMessage) -> None:
        try:
            self.sock.sendall(encode_frame(message.to_wire()))
        except OSError as exc:
            raise ClientError(f"connection to xcatd at {self.target} lost: {exc}") from None

    def receive(self) -> ServerMessage:
        """The next message from the server; ClientError when the connection ends."""
        try:
            while (raw := self._decoder.next_message()) is None:
                data = self.sock.recv(65536)
                if not data:
                    if not hasattr(self, "server"):
                        raise _ClosedBeforeHello()
                    raise ClientError(f"xcatd at {self.target} closed the connection")
                self._decoder.feed(data)
            message = parse_server_message(raw)
        except VersionMismatch as exc:
            raise ClientError(self._mismatch(exc)) from None
        except ProtocolError as exc:
            raise ClientError(f"bad reply from xcatd at {self.target}: {exc}") from None
        except ssl.SSLError as exc:
            if not hasattr(self, "server"):
                raise _ClosedBeforeHello() from None
            raise ClientError(f"TLS with xcatd at {self.target} failed: {exc}") from None
        except OSError as exc:
            raise ClientError(f"connection to xcatd at {self.target} lost: {exc}") from None
        if isinstance(message, ErrorFrame):
            raise ClientError(message.text)
        return message

    def buffered(self) -> bool:
        """Whether `receive` has bytes to work on without waiting for the
        socket (TLS may hold decrypted data that select() cannot see)."""
        return self._decoder.pending > 0 or self.sock.pending() > 0

    def _mismatch(self, exc: VersionMismatch) -> str:
        """One line: the two protocol versions, and which side to upgrade."""
        release = f" (xcatd {exc.release})" if exc.release else ""
        where = f"xcatd at {self.target} speaks protocol {exc.theirs}{release}"
        if exc.peer_is_newer:
            return (
                f"{where}, newer than this client's {PROTOCOL_VERSION}: "
                "upgrade the client commands on this machine to its release"
            )
        return (
            f"{where}, older than this client's {PROTOCOL_VERSION}: "
            f"upgrade xcatd on {self.target.host} to this client's release"
        )

    def _refusal(self) -> str:
        """Why the daemon ended the connection before greeting us.

        It checks our certificate during the TLS 1.3 handshake, and a client
        learns of a refusal only as the connection closing at its first read,
        without a reason; so look at our own certificate to say why.  (Only on
        this failure path is cryptography's X.509 parser worth importing.)
        """
        from cryptography import x509

        if self.credentials is None:
            return f"xcatd at {self.target} closed the connection before greeting; see its log"
        where = f"xcatd at {self.target} refused our certificate {self.credentials.cred_file}"
        ours = x509.load_pem_x509_certificate(self.credentials.cred_pem)
        with open(self.credentials.ca_file, "rb") as f:
            ca = x509.load_pem_x509_certificate(f.read())
        try:
            ours.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            return f"{where}: it is not from this cluster's CA"
        if ours.not_valid_after_utc.timestamp() < time.time():
            return (
                f"{where}: it expired on {ours.not_valid_after_utc:%Y-%m-%d}; "
                "ask for a new one (xcatd mkusercert)"
            )
        return f"{where}; the xcatd log says why"

    def close(self) -> None:
        self.sock.close()
