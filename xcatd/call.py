"""One running request, as its command sees it.

A command reads its parsed options and the caller from the `Call`, uses the
daemon's store, settings and services through its `context` (context.py),
and sends its output through it: `info` and `data` lines for stdout, `warning`,
`error` and `stderr` (as it is) lines for stderr, `progress` for long work.  Any error makes the
request's return code 1 unless the command sets `rc` itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils
import trio
from cryptography.hazmat.primitives import serialization
from xcat_protocol.messages import (
    Output,
    OutputKind,
    Progress,
    Request,
    RequestBody,
    ServerMessage,
)

from .auth import Caller
from .context import Context
from .store.nodes import Nodes

Send = Callable[[ServerMessage], Awaitable[None]]


@dataclass
class Call:
    id: int
    caller: Caller
    body: RequestBody
    options: argparse.Namespace
    context: Context  # what the command may use of the daemon
    send: Send
    stdin: bytes | None = None  # what the user piped in, whether inline or streamed
    request: Request | None = None  # as signed, for carrying it to a service node
    # An interactive command's input (rcons): each `stdin` frame's data as it
    # arrives; empty data means the user is done.
    keystrokes: trio.MemoryReceiveChannel[bytes] | None = None
    errors: int = 0
    rc: int | None = None

    async def info(self, text: str, *, node: str | None = None, data: Any = None) -> None:
        await self._out("info", text, node, data)

    async def data(self, text: str | None, *, node: str | None = None, data: Any = None) -> None:
        await self._out("data", text, node, data)

    async def warning(self, text: str, *, node: str | None = None) -> None:
        await self._out("warning", text, node, None)

    async def stderr(self, text: str, *, node: str | None = None) -> None:
        """A line for the user's standard error as it is: a remote command's own."""
        await self._out("stderr", text, node, None)

    async def error(self, text: str, *, node: str | None = None, data: Any = None) -> None:
        self.errors += 1
        await self._out("error", text, node, data)

    async def progress(self, what: str, done: int, total: int | None, unit: str) -> None:
        await self.send(Progress(self.id, what, done, total, unit))

    def nodes(self, db: sqlite_utils.Database) -> Nodes:
        """The nodes as this caller may see them: all of them, except that a
        service node's certificate sees only the nodes it serves, and itself
        (DESIGN.md §9), whatever the policy lets it run."""
        if self.caller.signer.role == "servicenode":
            return self.context.served.nodes(db, self.caller.name)
        return Nodes.load(db)

    @property
    def relayed_by_master(self) -> bool:
        """Whether the management node carried this request here from its user
        (on a service node: a request for the nodes it serves)."""
        return self.caller.relayed and self.caller.peer.role == "master"

    def relayable(self) -> Request:
        """The request as its user signed it, with the signer's certificate,
        for another daemon to check and run as that user."""
        assert self.request is not None
        if self.request.chain:
            return self.request
        der = self.caller.signer.cert.public_bytes(serialization.Encoding.DER)
        return self.request._replace(chain=(der,))

    @property
    def return_code(self) -> int:
        if self.rc is not None:
            return self.rc
        return 1 if self.errors else 0

    async def _out(self, kind: OutputKind, text: str | None, node: str | None, data: Any) -> None:
        await self.send(Output(self.id, kind, text=text, node=node, data=data))
