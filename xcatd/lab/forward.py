"""The lab's door from this host: a listening socket made on the host (by
`xcatd lab up`, which passes it on as a file descriptor) whose connections
are carried, byte for byte, to the daemon inside the lab's namespace.  TLS
runs end to end through it: the client checks the daemon's certificate
(issued for 127.0.0.1 too) exactly as on a real management node.

    python -m xcatd.lab.forward FD HOST:PORT
"""

from __future__ import annotations

import socket
import sys

import trio

from ..accepting import serve_listeners

BUFFER = 65536


async def forward(listening: socket.socket, host: str, port: int) -> None:
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(listening))
    print(f"forwarding {listening.getsockname()} to {host}:{port}", flush=True)

    async def carry(client: trio.SocketStream) -> None:
        # One connection's trouble is its own: the forwarder goes on.
        try:
            async with (
                client,
                await trio.open_tcp_stream(host, port) as daemon,
                trio.open_nursery() as nursery,
            ):
                nursery.start_soon(_copy, client, daemon)
                nursery.start_soon(_copy, daemon, client)
        except* (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    await serve_listeners(carry, [listener])


async def _copy(source: trio.SocketStream, sink: trio.SocketStream) -> None:
    """Until `source` ends, then the end of `sink`'s sending side too."""
    while data := await source.receive_some(BUFFER):
        await sink.send_all(data)
    await sink.send_eof()


def main(argv: list[str]) -> None:
    fd, target = argv
    host, _, port = target.rpartition(":")
    listening = socket.socket(fileno=int(fd))
    trio.run(forward, listening, host, int(port))


if __name__ == "__main__":
    main(sys.argv[1:])
