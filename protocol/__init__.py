"""The xcatd wire protocol, sans I/O.

Framing, message validation, request signing and TLS context construction.
Nothing here opens a socket, starts a thread or imports trio: the daemon and
the thin client each bring their own I/O and drive these pieces with bytes.
"""

PROTOCOL_VERSION = 1
DEFAULT_PORT = 3001
