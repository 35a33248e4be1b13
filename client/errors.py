class ClientError(Exception):
    """A failure the user can act on; the message is one line saying what and where."""
