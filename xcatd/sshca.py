"""The cluster's SSH certificate authority: shell access with no secret in
any image (DESIGN.md §5).

Images carry only public material: the CA's public key, which their sshd
trusts for users (`TrustedUserCAKeys`) and their ssh for hosts
(`@cert-authority` in ssh_known_hosts).  The private material is handed
out at enrollment: a host certificate for the node's own host key, named
by its node name and address, and a user certificate for its root, with
which it reaches the nodes it serves.  The management node's root gets a
user certificate from `xcatd init`, so `ssh sn1` works with no password,
no key copied anywhere and no known_hosts prompt.  OpenSSH certificates,
made with `cryptography`.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import (
    SSHCertificate,
    SSHCertificateBuilder,
    SSHCertificateType,
)

from .ca import now, write_private, write_public
from .errors import XcatdError

# How long a service node's SSH certificates (its host's and its root's) are
# valid unless site.sshcertminutes says otherwise: its daemon renews them
# while a third of that is left (servicenode/trust.py), and it enrolls again
# at every boot.
DEFAULT_MINUTES = 30 * 24 * 60
BACKDATE = dt.timedelta(minutes=5)  # for clocks a little behind the management node's


class SshError(XcatdError):
    """A key that cannot be certified; the text says which and why."""


class SshAuthority:
    """The CA's key in `pki_dir`: ssh_ca (private) and ssh_ca.pub."""

    def __init__(self, pki_dir: Path) -> None:
        self.key_file = pki_dir / "ssh_ca"
        self.public_file = pki_dir / "ssh_ca.pub"

    def ensure(self) -> str:
        """The CA's public key line, made first if there is none yet."""
        if not self.key_file.exists():
            key = ed25519.Ed25519PrivateKey.generate()
            private = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
            write_private(self.key_file, private)
            write_public(self.public_file, _public_line(key.public_key(), "xcatd cluster SSH CA"))
        return self.public_file.read_text().strip()

    def host_certificate(
        self, public_line: str, names: tuple[str, ...], validity: dt.timedelta
    ) -> str:
        """A host certificate for a node's host key, valid for its names and addresses."""
        return self._certify(public_line, SSHCertificateType.HOST, names, names[0], validity)

    def user_certificate(
        self, public_line: str, principal: str, identity: str, validity: dt.timedelta
    ) -> str:
        """A user certificate letting the key's holder log in as `principal`."""
        return self._certify(public_line, SSHCertificateType.USER, (principal,), identity, validity)

    def _certify(
        self,
        public_line: str,
        kind: SSHCertificateType,
        principals: tuple[str, ...],
        identity: str,
        validity: dt.timedelta,
    ) -> str:
        self.ensure()
        subject = public_key(public_line)
        ca = serialization.load_ssh_private_key(self.key_file.read_bytes(), None)
        issued = now()
        builder = (
            SSHCertificateBuilder()
            .public_key(subject)
            .serial(int.from_bytes(os.urandom(8), "big"))
            .type(kind)
            .key_id(identity.encode())
            .valid_principals([p.encode() for p in principals])
            .valid_after(int((issued - min(BACKDATE, validity)).timestamp()))
            .valid_before(int((issued + validity).timestamp()))
        )
        if kind is SSHCertificateType.USER:
            for extension in (b"permit-pty", b"permit-port-forwarding", b"permit-agent-forwarding"):
                builder = builder.add_extension(extension, b"")
        certificate = builder.sign(ca)  # type: ignore[arg-type]
        return certificate.public_bytes().decode() + f" {identity}\n"


def public_key(line: str) -> ed25519.Ed25519PublicKey:
    """The Ed25519 key of an OpenSSH public key line, or SshError."""
    try:
        key = serialization.load_ssh_public_key(line.encode())
    except (ValueError, TypeError, UnicodeEncodeError):
        raise SshError(f"{line[:40]!r} is not an OpenSSH public key") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SshError("only Ed25519 SSH keys are certified")
    return key


def ensure_key(path: Path, comment: str) -> str:
    """An Ed25519 key pair at `path` (and `path`.pub), unless one is there;
    its public key line."""
    public = path.with_name(path.name + ".pub")
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        write_private(path, private)
        write_public(public, _public_line(key.public_key(), comment))
    return public.read_text().strip()


def validity(site: dict[str, str]) -> dt.timedelta:
    """How long the SSH certificates of service nodes are valid (site.sshcertminutes)."""
    return dt.timedelta(minutes=max(1, int(site.get("sshcertminutes") or DEFAULT_MINUTES)))


def renewal_due(certificate: Path, moment: dt.datetime) -> bool:
    """Whether an SSH certificate is missing, unreadable or has less than a
    third of its validity left: time to ask for a new one, while the old
    one still works."""
    try:
        cert = serialization.load_ssh_public_identity(certificate.read_bytes())
    except (OSError, ValueError):
        return True
    if not isinstance(cert, SSHCertificate):
        return True
    left = cert.valid_before - moment.timestamp()
    return left < (cert.valid_before - cert.valid_after) / 3


def certificate_file(key_path: Path) -> Path:
    """Where OpenSSH looks for the certificate of the key at `key_path`."""
    return key_path.with_name(key_path.name + "-cert.pub")


def _public_line(key: ed25519.Ed25519PublicKey, comment: str) -> bytes:
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return line + f" {comment}\n".encode()
