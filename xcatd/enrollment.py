"""Service nodes enroll for their certificates at boot (DESIGN.md §5).

A service node's image is downloaded by anyone on the network, so it holds
no key.  `nodeset <sn> osimage=<service image>` arms a one-time enrollment
for the node; at boot the node makes its key in RAM and sends an `enroll`
request — on a connection without a client certificate, the only request
such a connection may make — carrying a certificate signing request and
signed by the key the CSR names.  The management node admits it only while
the enrollment is armed and in its window, only from the address the node
is defined with; then it disarms and signs CN=<node>, OU=servicenode for
the node's own key, valid as a server at the node's name and address too
(the service node's daemon serves TLS with it).  Every attempt is audited by
the request path like any request; re-arming takes an administrator's
nodeset.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlite_utils
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from xcat_protocol.messages import Request, RequestBody
from xcat_protocol.signing import signature_is_valid

from .ca import CertificateAuthority, cert_pem, certificate_row, name_of
from .errors import XcatdError
from .sshca import SshAuthority, SshError, public_key, validity
from .store import objects
from .store.nodes import Nodes

if TYPE_CHECKING:
    from .context import Replicating
    from .daemon import Daemon

log = logging.getLogger(__name__)

ENROLL = "enroll"  # the request's command
DEFAULT_WINDOW_MINUTES = 30  # site.enrollwindow
MAX_CSR = 16 << 10


class EnrollmentRefused(XcatdError):
    """Why a node may not enroll; the text is for the node's log and the audit."""


def window_minutes(site: dict[str, str]) -> int:
    """How long after nodeset a node may enroll (site.enrollwindow, in minutes)."""
    return int(site.get("enrollwindow") or DEFAULT_WINDOW_MINUTES)


def arm(db: sqlite_utils.Database, nodes: Iterable[str], *, until: float, by: str) -> None:
    """Let each node enroll once before `until` (seconds since the epoch);
    arming again replaces the earlier window."""
    db.table("enrollments").upsert_all(
        [{"node": node, "expires": until, "armed_by": by} for node in nodes], pk="node"
    )


@dataclass(frozen=True)
class Application:
    """What an enrolling node sends: its name, and a CSR for a key it holds."""

    node: str
    csr: x509.CertificateSigningRequest
    ssh_host_key: str | None = None  # OpenSSH public key lines, to certify
    ssh_user_key: str | None = None  # (the node's host key, its root's key)

    @property
    def key_id(self) -> bytes:
        """The node's key, as the replay guard knows signers."""
        der = self.csr.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).digest()

    @classmethod
    def of(cls, body: RequestBody, raw: bytes, sig: bytes) -> Application:
        """The application in a request, checked: one node name, a CSR whose
        own signature holds, and the signature of the CSR's key over the
        request's exact bytes (proof that the sender holds the key)."""
        if not 1 <= len(body.args) <= 3 or not body.args[0]:
            raise EnrollmentRefused(
                "enroll takes the node's name (then its SSH host key and its root's SSH key), "
                "and its CSR on standard input"
            )
        if not body.stdin or len(body.stdin) > MAX_CSR:
            raise EnrollmentRefused("enroll needs a PEM certificate signing request")
        try:
            csr = x509.load_pem_x509_csr(body.stdin)
        except ValueError:
            raise EnrollmentRefused("the certificate signing request is not PEM") from None
        if not csr.is_signature_valid:
            raise EnrollmentRefused("the certificate signing request's signature does not hold")
        if not signature_is_valid(csr.public_key(), raw, sig):
            raise EnrollmentRefused(
                "the request is not signed by the key of its CSR (an Ed25519 or ECDSA P-256 key)"
            )
        ssh_keys = body.args[1:]
        for line in ssh_keys:
            try:
                public_key(line)
            except SshError as exc:
                raise EnrollmentRefused(str(exc)) from None
        return cls(body.args[0], csr, *ssh_keys)


async def enroll(
    daemon: Daemon, request: Request, body: RequestBody, source: str
) -> dict[str, bytes | str]:
    """The certificate for an enrolling node, and the CA's, which the node
    checks against the fingerprint it was booted with."""
    application = Application.of(body, request.body, request.sig)
    daemon.auth.replay.check(application.key_id, body.ts, body.nonce, time.time())
    certificate = await daemon.store.run(
        lambda db: admit(db, daemon.ca, application, source, time.time())
    )
    ssh = await ssh_certificates(
        daemon, certificate, application.ssh_host_key, application.ssh_user_key
    )
    return {"certificate": cert_pem(certificate), "ca": cert_pem(daemon.ca.cert), **ssh}


async def ssh_certificates(
    daemon: Replicating,
    certificate: x509.Certificate,
    host_key: str | None,
    user_key: str | None,
) -> dict[str, str]:
    """SSH certificates for the service node `certificate` names: for its
    host key, at its name and address, and for its root's key, as long as
    site.sshcertminutes says (the SSH CA's public key is in its image
    already, and sent along).  At enrollment, and when it renews them."""
    node = name_of(certificate)
    addresses = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    names = (node, *(str(ip) for ip in addresses.value.get_values_for_type(x509.IPAddress)))
    lasting = validity(await daemon.store.run(objects.site))
    authority = SshAuthority(daemon.layout.pki)
    issued = {"ssh_ca": authority.ensure()}
    if host_key:
        issued["ssh_host_certificate"] = authority.host_certificate(host_key, names, lasting)
    if user_key:
        issued["ssh_user_certificate"] = authority.user_certificate(
            user_key, "root", f"root@{node}", lasting
        )
    return issued


def admit(
    db: sqlite_utils.Database,
    ca: CertificateAuthority,
    application: Application,
    source: str,
    now: float,
) -> x509.Certificate:
    """The node's certificate, if its enrollment is armed, in its window
    and asked from the node's own address; the enrollment is used up.  One
    transaction: two nodes racing for one enrollment cannot both win."""
    node = application.node
    with db.atomic():
        armed = next(db["enrollments"].rows_where("node = ?", [node]), None)
        if armed is None:
            raise EnrollmentRefused(
                f"no enrollment is armed for {node}: run nodeset {node} osimage=<service image>"
            )
        if armed["expires"] < now:
            db.table("enrollments").delete(node)
            expired = dt.datetime.fromtimestamp(armed["expires"], dt.UTC)
            raise EnrollmentRefused(
                f"the enrollment of {node} expired at {expired:%Y-%m-%d %H:%M:%S} UTC: "
                f"run nodeset {node} osimage=<service image> again"
            )
        address = Nodes.load(db).attribute(node, "ip")
        if address != source:
            # Kept armed: a stranger's attempt must not use up the node's enrollment.
            raise EnrollmentRefused(
                f"enroll for {node} came from {source}, not from its address {address or '(none)'}"
            )
        db.table("enrollments").delete(node)
        cert = ca.sign(
            application.csr.public_key(),
            node,
            "servicenode",
            dns_names=(node,),
            ip_addresses=(address,),
        )
        db.table("certificates").insert(certificate_row(cert))
    log.info("%s enrolled from %s: certificate %s", node, source, cert.serial_number)
    return cert
