"""`xcatd enroll`: a service node gets its certificate when it boots.

The node's image holds no key (anyone on the network can download it), so
at boot the node makes an Ed25519 key in memory and asks the management node
named on its kernel command line (`XCAT=<host>:<port>`, written by nodeset)
to certify it: an `enroll` request carrying a CSR, signed by that key, on a
connection without a client certificate.  The management node admits it
once, from the node's own address, while the enrollment nodeset armed is in
its window (xcatd/enrollment.py).

Nothing received is trusted until it has been checked against the CA's
fingerprint on the kernel command line (`XCATCA=sha256:<hex>`): the CA
certificate must have that fingerprint, the server's certificate must be the
management node's from that CA, and the certificate issued must be for this
node and this key.  A rogue server can therefore neither enroll the node
nor make it trust another CA.  Then the key, the certificate and the CA go
where the node's xcatd serves with them, its configuration gets the node's
name, and its database the default policy.  With it come SSH certificates
from the cluster's SSH CA (xcatd/sshca.py) for the node's SSH host key and
its root's SSH key, made here if the node has none: administrators reach
the node, and the node its own nodes, with no secret in any image.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from xcat_client.connection import Connection
from xcat_client.credentials import Target
from xcat_client.errors import ClientError
from xcat_protocol.messages import Done, Output

from ..admin import seed_policy
from ..ca import cert_pem, key_pem, name_of, role_of, write_private, write_public
from ..config import Config
from ..enrollment import ENROLL
from ..errors import XcatdError
from ..layout import Layout
from ..sshca import certificate_file, ensure_key
from ..store import Store

RETRY_SECONDS = 5  # between attempts while the management node cannot be reached


class EnrollError(XcatdError):
    """Enrollment failed for good; the message says why and what to do."""


@dataclass(frozen=True)
class BootArguments:
    """What nodeset put on the node's kernel command line for enrolling."""

    master: Target  # XCAT=<host>:<port>
    ca_fingerprint: bytes  # XCATCA=sha256:<hex>
    node: str  # NODE=<name>

    @classmethod
    def parse(cls, cmdline: str) -> BootArguments:
        words = dict(word.partition("=")[::2] for word in cmdline.split())
        missing = [name for name in ("XCAT", "XCATCA", "NODE") if not words.get(name)]
        if missing:
            raise EnrollError(
                f"the kernel command line has no {', '.join(missing)}=: boot the node "
                "after nodeset <node> osimage=<service image>"
            )
        algorithm, _, digest = words["XCATCA"].partition(":")
        try:
            fingerprint = bytes.fromhex(digest)
            target = Target.parse(words["XCAT"]) if ":" in words["XCAT"] else None
        except ValueError:
            fingerprint, target = b"", None
        if algorithm != "sha256" or len(fingerprint) != 32 or target is None:
            raise EnrollError(
                f"XCAT={words['XCAT']} XCATCA={words['XCATCA']} are not <host>:<port> and "
                "sha256:<64 hex digits>: run nodeset for this node again"
            )
        return cls(target, fingerprint, words["NODE"])


@dataclass(frozen=True)
class Enrolled:
    certificate: x509.Certificate
    ca: x509.Certificate
    key: ed25519.Ed25519PrivateKey
    ssh_host_certificate: str  # for the node's SSH host key
    ssh_user_certificate: str  # for its root's SSH key


def enroll_until(
    boot: BootArguments, layout: Layout, deadline: float, say: Callable[[str], None] = print
) -> Enrolled:
    """Enroll, trying again while the management node cannot be reached
    (the network may come up after us); a refusal is final."""
    while True:
        try:
            return enroll(boot, layout)
        except ClientError as exc:
            if time.monotonic() + RETRY_SECONDS > deadline:
                raise EnrollError(f"cannot enroll with xcatd at {boot.master}: {exc}") from None
            say(f"{exc}; trying again in {RETRY_SECONDS} s")
            time.sleep(RETRY_SECONDS)


def enroll(boot: BootArguments, layout: Layout) -> Enrolled:
    """One attempt: a new key, its CSR sent with the node's SSH host key and
    its root's SSH key (each made if the node has none yet), the answer checked."""
    ssh_keys = [
        ensure_key(path, f"root@{boot.node}") for path in (host_key(layout), user_key(layout))
    ]
    key = ed25519.Ed25519PrivateKey.generate()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, boot.node)]))
        .sign(key, None)
    )
    connection = Connection.enrolling(boot.master, key)
    try:
        server = connection.sock.getpeercert(binary_form=True)
        request_id = connection.request(
            ENROLL,
            [boot.node, *ssh_keys],
            stdin=csr.public_bytes(serialization.Encoding.PEM),
            user=boot.node,
        )
        answer, refusals = _answer(connection, request_id)
    finally:
        connection.close()
    if refusals or answer is None:
        raise EnrollError(
            f"xcatd at {boot.master} refused to enroll {boot.node}: "
            + ("; ".join(refusals) or "it gave no certificate")
        )
    return _checked(boot, key, server, answer)


def _answer(connection: Connection, request_id: int) -> tuple[dict | None, list[str]]:
    """The enroll request's data, and its error lines."""
    answer: dict | None = None
    refusals: list[str] = []
    while True:
        message = connection.receive()
        if isinstance(message, Done) and message.id == request_id:
            return answer, refusals
        if isinstance(message, Output) and message.id == request_id:
            if message.kind == "error":
                refusals.append(message.text or "")
            elif isinstance(message.data, dict):
                answer = message.data


def _checked(
    boot: BootArguments, key: ed25519.Ed25519PrivateKey, server: bytes | None, answer: dict
) -> Enrolled:
    """What the server sent, if it holds against the CA the node was booted to trust."""
    try:
        ca = x509.load_pem_x509_certificate(answer["ca"])
        certificate = x509.load_pem_x509_certificate(answer["certificate"])
        master = x509.load_der_x509_certificate(server or b"")
        ssh = (str(answer["ssh_host_certificate"]), str(answer["ssh_user_certificate"]))
    except (KeyError, TypeError, ValueError):
        raise EnrollError(f"xcatd at {boot.master} answered with no usable certificates") from None
    if hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).digest() != boot.ca_fingerprint:
        raise EnrollError(
            f"xcatd at {boot.master} is not certified by the cluster CA this node was booted "
            "to trust (XCATCA): refusing its certificate"
        )
    try:
        master.verify_directly_issued_by(ca)
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise EnrollError(
            f"a certificate from xcatd at {boot.master} was not issued by the cluster CA"
        ) from None
    if role_of(master) != "master":
        raise EnrollError(f"xcatd at {boot.master} is not the management node ({role_of(master)})")
    if name_of(certificate) != boot.node or _der(certificate.public_key()) != _der(
        key.public_key()
    ):
        raise EnrollError(f"xcatd at {boot.master} issued a certificate for another node or key")
    return Enrolled(certificate, ca, key, *ssh)


def _der(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def install(layout: Layout, boot: BootArguments, enrolled: Enrolled) -> list[Path]:
    """Put the node's credentials where its xcatd serves with them, name the
    node in its configuration, and give its database the default policy."""
    pki = layout.pki
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    key_file, cert_file, ca_file = pki / "server.key", pki / "server.pem", pki / "ca.pem"
    write_private(key_file, key_pem(enrolled.key))
    write_public(cert_file, cert_pem(enrolled.certificate))
    write_public(ca_file, cert_pem(enrolled.ca))
    ssh_files = [certificate_file(host_key(layout)), certificate_file(user_key(layout))]
    for path, certificate in zip(
        ssh_files, (enrolled.ssh_host_certificate, enrolled.ssh_user_certificate), strict=True
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_public(path, certificate.encode())
    node = boot.node
    config = Config.load(layout.config_file) if layout.config_file.exists() else None
    config = replace(
        config or Config(node), hostname=node, role="servicenode", master=str(boot.master)
    )
    write_public(layout.config_file, config.dump().encode())
    layout.state.mkdir(parents=True, exist_ok=True)
    store = Store(layout.database)
    try:
        seed_policy(store)
    finally:
        store.close()
    return [key_file, cert_file, ca_file, *ssh_files, layout.config_file]


def host_key(layout: Layout) -> Path:
    return layout.ssh / "ssh_host_ed25519_key"


def user_key(layout: Layout) -> Path:
    return layout.user_ssh / "id_ed25519"
