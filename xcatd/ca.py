"""The cluster certificate authority.

One Ed25519 CA signs every certificate in the cluster: the daemons' server
certificates, users' client certificates and service nodes' certificates.
A certificate carries its holder's name in the CN and its role (`user`,
`servicenode`, `master`) in the OU.  Revocation is a CRL signed by the CA,
written atomically beside it, which the daemon re-reads as soon as it changes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROLES = ("user", "servicenode", "master")
CA_DAYS = 20 * 365
SERVER_DAYS = 10 * 365
USER_DAYS = 2 * 365


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def key_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def name_of(cert: x509.Certificate) -> str:
    return _subject_value(cert, NameOID.COMMON_NAME)


def role_of(cert: x509.Certificate) -> str:
    return _subject_value(cert, NameOID.ORGANIZATIONAL_UNIT_NAME)


def _subject_value(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


@dataclass(frozen=True)
class Issued:
    """A freshly issued certificate and the new key that goes with it."""

    cert: x509.Certificate
    key: ed25519.Ed25519PrivateKey

    def credentials_pem(self) -> bytes:
        """Certificate and key in one file, as xCAT's client-cred.pem."""
        return cert_pem(self.cert) + key_pem(self.key)


class CertificateAuthority:
    """The CA's files in `pki_dir`: ca.pem, ca.key, revoked.crl."""

    def __init__(self, pki_dir: Path) -> None:
        self.dir = pki_dir
        self.cert_file = pki_dir / "ca.pem"
        self.key_file = pki_dir / "ca.key"
        self.crl_file = pki_dir / "revoked.crl"
        self.server_cert_file = pki_dir / "server.pem"
        self.server_key_file = pki_dir / "server.key"
        self._cert: x509.Certificate | None = None
        self._key: ed25519.Ed25519PrivateKey | None = None

    def exists(self) -> bool:
        return self.cert_file.exists() and self.key_file.exists()

    @property
    def cert(self) -> x509.Certificate:
        if self._cert is None:
            self._cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        return self._cert

    @property
    def key(self) -> ed25519.Ed25519PrivateKey:
        if self._key is None:
            key = serialization.load_pem_private_key(self.key_file.read_bytes(), None)
            assert isinstance(key, ed25519.Ed25519PrivateKey)
            self._key = key
        return self._key

    def create(self, cluster: str) -> None:
        """Make a new CA key and self-signed certificate, and an empty CRL."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        key = ed25519.Ed25519PrivateKey.generate()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "xcatd"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"xcatd cluster CA {cluster}"),
            ]
        )
        start = now() - dt.timedelta(minutes=5)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, None)
        )
        write_private(self.key_file, key_pem(key))
        write_public(self.cert_file, cert_pem(cert))
        self._cert, self._key = cert, key
        self.write_crl([])

    def issue(
        self,
        name: str,
        role: str,
        *,
        days: int = USER_DAYS,
        not_before: dt.datetime | None = None,
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
    ) -> Issued:
        """A new key and a certificate for it with CN=name, OU=role."""
        key = ed25519.Ed25519PrivateKey.generate()
        cert = self.sign(
            key.public_key(),
            name,
            role,
            days=days,
            not_before=not_before,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
        )
        return Issued(cert, key)

    def sign(
        self,
        public_key: CertificatePublicKeyTypes,
        name: str,
        role: str,
        *,
        days: int = USER_DAYS,
        not_before: dt.datetime | None = None,
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
    ) -> x509.Certificate:
        """A certificate with CN=name, OU=role for a key someone else holds (a
        node's, which never leaves it); with names or addresses, it serves TLS too."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        start = not_before or now() - dt.timedelta(minutes=5)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if dns_names or ip_addresses:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                        x509.NameAttribute(NameOID.COMMON_NAME, name),
                    ]
                )
            )
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if dns_names or ip_addresses:
            alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
            alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        return builder.sign(self.key, None)

    def issue_server(self, hostname: str, addresses: tuple[str, ...]) -> Issued:
        """The daemon's certificate: a server to clients and, when it relays, a client."""
        dns_names = tuple(dict.fromkeys([hostname, "localhost"]))
        ips = tuple(dict.fromkeys(["127.0.0.1", "::1", *addresses]))
        issued = self.issue(
            hostname, "master", days=SERVER_DAYS, dns_names=dns_names, ip_addresses=ips
        )
        write_private(self.server_key_file, key_pem(issued.key))
        write_public(self.server_cert_file, cert_pem(issued.cert))
        return issued

    def write_crl(self, revoked: list[tuple[int, dt.datetime]]) -> None:
        """Publish the list of revoked serial numbers, atomically."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now())
            .next_update(now() + dt.timedelta(days=CA_DAYS))
        )
        for serial, when in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
            )
        crl = builder.sign(self.key, None)
        write_public(self.crl_file, crl.public_bytes(serialization.Encoding.PEM))


def fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def certificate_row(cert: x509.Certificate) -> dict[str, str | None]:
    """A certificate as the `certificates` table records it, so that
    `xcatd revoke` can find every certificate issued to a name."""
    return {
        "serial": str(cert.serial_number),
        "name": name_of(cert),
        "role": role_of(cert),
        "not_after": cert.not_valid_after_utc.isoformat(timespec="seconds"),
        "issued": now().isoformat(timespec="seconds"),
        "revoked": None,
    }
