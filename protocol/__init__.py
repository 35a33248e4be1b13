"""The xcatd wire protocol, sans I/O.

Framing, message validation, request signing and TLS context construction.
Nothing here opens a socket, starts a thread or imports trio: the daemon and
the thin client each bring their own I/O and drive these pieces with bytes.

PROTOCOL_VERSION is sent in the daemon's hello and in every request body.
It changes only when a peer of the previous version could no longer read
what is sent (a field added that an older peer may ignore does not change
it); peers of different versions do not talk, and each says which side to
upgrade.  Peers from before it was sent spoke version 1.
"""

PROTOCOL_VERSION = 1
DEFAULT_PORT = 3001
