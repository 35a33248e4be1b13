"""The one exception type the protocol layer raises."""


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow.

    The message is a complete sentence fit to show to a person.  A receiver
    that gets one should send an error frame (where it still can) and close.
    """
