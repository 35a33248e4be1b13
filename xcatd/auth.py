"""Who sent a request, and may it be believed.

Identity is the certificate whose key signed the request: `chain[0]` when a
chain is sent, else the TLS peer's certificate.  It must come from the
cluster CA, be in date and not be revoked, and its key must have made the
signature.  A request signed by someone other than the TLS peer is relayed,
which only service nodes and the management node may do: the end user's
identity survives every hop and no relay can forge it.  A timestamp window and
a cache of recent nonces stop a captured request from being played again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from xcat_protocol.messages import Request, RequestBody
from xcat_protocol.signing import signature_is_valid

from .ca import fingerprint, name_of, role_of, write_public
from .errors import XcatdError

RELAY_ROLES = ("servicenode", "master")


class AuthError(XcatdError):
    """The request cannot be accepted; the message says why, for the sender."""


@dataclass(frozen=True)
class Identity:
    name: str
    role: str
    serial: int
    fingerprint: bytes
    cert: x509.Certificate


@dataclass(frozen=True)
class Caller:
    """Who signed a request, and which peer handed it to us."""

    signer: Identity
    peer: Identity

    @property
    def relayed(self) -> bool:
        return self.peer.fingerprint != self.signer.fingerprint

    @property
    def name(self) -> str:
        return self.signer.name


class RevocationList:
    """The CA's CRL file, re-read whenever it changes on disk.

    One `stat` per check is all it costs while the file is unchanged, and a
    `xcatd revoke` takes effect on the very next request.  A service node
    has no CA key: it takes the management node's list whenever that
    changed (`adopt`, servicenode/trust.py), which the list's `stamp` tells.
    """

    def __init__(self, path: Path, ca_cert: x509.Certificate) -> None:
        self.path = path
        self._ca_key = ca_cert.public_key()
        self._file: tuple[int, int, int] | None = None
        self._serials: frozenset[int] = frozenset()
        self._crl: x509.CertificateRevocationList | None = None
        self._data = b""
        self._stamp: int | None = None

    def is_revoked(self, serial: int) -> bool:
        self._refresh()
        return serial in self._serials

    @property
    def stamp(self) -> int | None:
        """A number that changes with the list (from its bytes); None while there is none."""
        self._refresh()
        return self._stamp

    @property
    def pem(self) -> bytes:
        """The list as published, for a service node to take."""
        self._refresh()
        if self._crl is None:
            raise AuthError(f"there is no revocation list at {self.path}: run 'xcatd init'")
        return self._data

    def adopt(self, pem: bytes) -> int:
        """Make the management node's list this host's, if the cluster CA
        signed it and it is not older than the one here (an older list
        would lift revocations); how many certificates it revokes."""
        try:
            crl = x509.load_pem_x509_crl(pem)
        except ValueError:
            raise AuthError("the revocation list received is not a PEM CRL") from None
        self._check(crl, "received")
        self._refresh()
        if self._crl is not None and crl.last_update_utc < self._crl.last_update_utc:
            raise AuthError(
                f"the revocation list received is older ({crl.last_update_utc:%Y-%m-%d %H:%M:%S}"
                f" UTC) than this host's ({self._crl.last_update_utc:%Y-%m-%d %H:%M:%S} UTC)"
            )
        write_public(self.path, pem)
        self._refresh()
        return len(self._serials)

    def _check(self, crl: x509.CertificateRevocationList, what: str) -> None:
        if not crl.is_signature_valid(self._ca_key):  # type: ignore[arg-type]
            raise AuthError(f"the revocation list {what} is not signed by the cluster CA")

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._file, self._serials, self._crl, self._stamp = None, frozenset(), None, None
            self._data = b""
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._file:
            return
        data = self.path.read_bytes()
        crl = x509.load_pem_x509_crl(data)
        self._check(crl, str(self.path))
        self._serials = frozenset(entry.serial_number for entry in crl)
        self._crl, self._data, self._file = crl, data, stamp
        self._stamp = int.from_bytes(hashlib.sha256(data).digest()[:7], "big")


class ReplayGuard:
    """Refuses timestamps outside the window and (signer, nonce) pairs seen in it.

    A pair is remembered until its timestamp leaves the window, after which
    the timestamp check alone refuses it; so memory is bounded by the request
    rate times the window, and by `capacity` beyond that.  The pairs live in
    memory only, so a request signed before the guard was made (before the
    daemon started) is refused too: a restart never reopens the window for a
    captured request.
    """

    def __init__(self, window: float, not_before: float, capacity: int = 500_000) -> None:
        self.window = window
        self.not_before = not_before
        self.capacity = capacity
        self._seen: set[bytes] = set()
        self._expiry: list[tuple[float, bytes]] = []

    def check(self, signer: bytes, ts_ms: int, nonce: bytes, now: float) -> None:
        ts = ts_ms / 1000
        if abs(ts - now) > self.window:
            raise AuthError(
                f"request timestamp is {ts - now:+.0f} s from the server's clock, outside the "
                f"±{self.window:.0f} s window: check the clocks"
            )
        if ts < self.not_before:
            raise AuthError(
                "request was signed before xcatd started, and could be a replay: run it "
                "again (if this repeats, this host's clock is behind the server's)"
            )
        while self._expiry and self._expiry[0][0] < now:
            self._seen.discard(heapq.heappop(self._expiry)[1])
        key = signer[:16] + nonce
        if key in self._seen:
            raise AuthError("request refused: it was already received once (replay)")
        if len(self._seen) >= self.capacity:
            raise AuthError("server is busy: too many requests in the replay window, retry")
        self._seen.add(key)
        heapq.heappush(self._expiry, (ts + self.window, key))


class Authenticator:
    def __init__(
        self, ca_cert: x509.Certificate, crl_file: Path, replay_window: float, started: float
    ) -> None:
        self.ca_cert = ca_cert
        self.revocations = RevocationList(crl_file, ca_cert)
        self.replay = ReplayGuard(replay_window, not_before=started)
        # Parsing and checking the issuer's signature is done once per certificate.
        self._known: OrderedDict[bytes, Identity] = OrderedDict()

    def identity(self, der: bytes) -> Identity:
        """The identity a DER certificate proves, if the cluster CA issued it
        and it is in date and not revoked."""
        identity = self._known.get(der)
        if identity is None:
            identity = self._parse(der)
            self._known[der] = identity
            if len(self._known) > 4096:
                self._known.popitem(last=False)
        cert = identity.cert
        moment = dt.datetime.now(dt.UTC)
        if moment > cert.not_valid_after_utc:
            raise AuthError(
                f"the certificate of '{identity.name}' expired on "
                f"{cert.not_valid_after_utc:%Y-%m-%d}"
            )
        if moment < cert.not_valid_before_utc:
            raise AuthError(f"the certificate of '{identity.name}' is not valid yet")
        if self.revocations.is_revoked(identity.serial):
            raise AuthError(f"the certificate of '{identity.name}' has been revoked")
        return identity

    def _parse(self, der: bytes) -> Identity:
        try:
            cert = x509.load_der_x509_certificate(der)
            cert.verify_directly_issued_by(self.ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            raise AuthError("the signer's certificate was not issued by the cluster CA") from None
        return Identity(name_of(cert), role_of(cert), cert.serial_number, fingerprint(cert), cert)

    def authenticate(
        self, request: Request, body: RequestBody, peer_der: bytes | None, now: float
    ) -> Caller:
        """The caller of a request, or AuthError saying why it is refused.

        `peer_der` is the TLS peer's certificate, None when it sent none (only
        `enroll`, which comes with node enrollment, will be served then).  Both
        the peer and the signer are checked on every request, so a revocation
        applies to connections that are already open.
        """
        if peer_der is None:
            raise AuthError(
                f"'{body.cmd}' needs a client certificate: set XCAT_CRED_DIR to a directory "
                "holding ca.pem and client-cred.pem"
            )
        peer = self.identity(peer_der)
        signer = self.identity(request.chain[0]) if request.chain else peer
        caller = Caller(signer, peer)
        if caller.relayed and peer.role not in RELAY_ROLES:
            raise AuthError(f"'{peer.name}' may not relay requests signed by '{signer.name}'")
        if not signature_is_valid(signer.cert.public_key(), request.body, request.sig):
            raise AuthError("request signature does not match its body")
        self.replay.check(signer.fingerprint, body.ts, body.nonce, now)
        return caller
