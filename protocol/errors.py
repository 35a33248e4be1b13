"""The exceptions the protocol layer raises: ProtocolError, and the one kind
of it a receiver answers differently, VersionMismatch."""

from __future__ import annotations

from . import PROTOCOL_VERSION


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow.

    The message is a complete sentence fit to show to a person.  A receiver
    that gets one should send an error frame (where it still can) and close.
    """


class VersionMismatch(ProtocolError):
    """The peer speaks another version of the protocol, so nothing else it
    sent is read: each side words the one line that says which to upgrade.
    `release` is the peer's software version, when it said."""

    def __init__(self, theirs: int, release: str | None = None) -> None:
        super().__init__(f"the peer speaks protocol {theirs}, this side {PROTOCOL_VERSION}")
        self.theirs = theirs
        self.release = release

    @property
    def peer_is_newer(self) -> bool:
        return self.theirs > PROTOCOL_VERSION
