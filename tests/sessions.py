"""Protocol-level sessions with a running daemon, for tests that must craft
what the real client never sends: forged, replayed, relayed or broken requests."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from xcat_client.connection import Connection
from xcat_client.credentials import Credentials, Target
from xcat_protocol.messages import NONCE_SIZE, Done, Output, Request, RequestBody
from xcat_protocol.signing import SigningKey, load_signing_key, sign_body

from .cluster import Cluster


def connect(cluster: Cluster, cred_dir: Path | None = None) -> Connection:
    """A client connection holding the credentials in `cred_dir` (root's by default)."""
    directory = cred_dir or cluster.cred_dir
    credentials = Credentials.from_environment({"XCAT_CRED_DIR": str(directory)})
    return Connection(Target("localhost", cluster.port), credentials)


def key_of(cred_dir: Path) -> SigningKey:
    return load_signing_key((cred_dir / "client-cred.pem").read_bytes())


def body(cmd: str = "lsxcatd", *args: str, ts: int | None = None, nonce: bytes | None = None):
    return RequestBody(
        cmd=cmd,
        args=list(args or ("-v",)),
        user="tester",
        ts=int(time.time() * 1000) if ts is None else ts,
        nonce=nonce or os.urandom(NONCE_SIZE),
    ).encode()


def signed(request_id: int, key: SigningKey, payload: bytes, chain=()) -> Request:
    return Request(request_id, payload, sign_body(key, payload), tuple(chain))


def outcome(connection: Connection, request_id: int) -> tuple[list[str], int]:
    """The lines a request printed (errors as `Error: ...`) and its rc."""
    return outcomes(connection, [request_id])[request_id]


def outcomes(connection: Connection, ids: list[int]) -> dict[int, tuple[list[str], int]]:
    """Read until every request in `ids` is done; each one's lines and rc."""
    lines: dict[int, list[str]] = {request_id: [] for request_id in ids}
    done: dict[int, tuple[list[str], int]] = {}
    while len(done) < len(ids):
        message = connection.receive()
        if isinstance(message, Output) and message.id in lines:
            prefix = "Error: " if message.kind == "error" else ""
            lines[message.id].append(prefix + (message.text or ""))
        elif isinstance(message, Done) and message.id in lines:
            done[message.id] = (lines[message.id], message.rc)
    return done


def ask(connection: Connection, cmd: str = "lsxcatd", *args: str) -> tuple[list[str], int]:
    request_id = connection.request(cmd, list(args or ("-v",)), user="tester")
    return outcome(connection, request_id)


def credentials_for(cluster: Cluster, name: str, role: str, where: Path) -> Path:
    result = cluster.xcatd("mkusercert", name, "--role", role, "--out", str(where))
    assert result.returncode == 0, result.stderr
    return where


def mixed_credentials(ca_from: Path, cred_from: Path, where: Path) -> Path:
    """A credentials directory trusting one CA and holding another's certificate."""
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(ca_from / "ca.pem", where / "ca.pem")
    shutil.copy(cred_from / "client-cred.pem", where / "client-cred.pem")
    return where
