"""TLS contexts for both ends: TLS 1.3 only, the cluster CA as the only trust root."""

from __future__ import annotations

import ssl
from os import PathLike

StrPath = str | PathLike[str]


def server_context(cert_file: StrPath, key_file: StrPath, ca_file: StrPath) -> ssl.SSLContext:
    """The daemon's context.

    A client certificate is requested but optional at the TLS level: a node
    with no credentials yet may connect to send `enroll` and nothing else.
    Every other request is refused by the daemon when no certificate came.
    A certificate that is presented must chain to the cluster CA and be in
    date, or the handshake fails.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(cafile=ca_file)
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_context(ca_file: StrPath, cred_file: StrPath | None) -> ssl.SSLContext:
    """A client's context: trusts only the cluster CA and checks the host name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cafile=ca_file)
    if cred_file is not None:
        context.load_cert_chain(cred_file)
    return context


def enrolling_context() -> ssl.SSLContext:
    """The context of a node enrolling for its first certificate.

    It has no CA file yet, only the CA's fingerprint from its kernel command
    line, so it checks nothing during the handshake; it checks the server's
    certificate and everything it receives against the pinned CA before it
    uses any of it, and what it sends (a CSR) is public.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
