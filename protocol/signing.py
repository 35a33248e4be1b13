"""Request signatures.

The sender signs `SIGNING_CONTEXT + body`, the exact body bytes it sends, so
the receiver verifies what arrived without re-encoding anything.  Ed25519 is
preferred; ECDSA P-256 with SHA-256 is accepted for keys kept in hardware that
cannot do Ed25519.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    SigningKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
else:
    SigningKey = Any

SIGNING_CONTEXT = b"xcat-req-v1\0"

# The ECDSA modules are imported where ECDSA is used: every client command
# signs with Ed25519, and its start-up should not pay for the other curve.

# RFC 8410 section 7: an Ed25519 key in PKCS#8 is always this DER header and
# then the 32-byte seed.  Reading it directly spares every client command the
# 11 ms import of cryptography's general key parsers.
_ED25519_PKCS8_HEADER = bytes.fromhex("302e020100300506032b657004220420")
_PEM_BEGIN, _PEM_END = b"-----BEGIN PRIVATE KEY-----", b"-----END PRIVATE KEY-----"


def load_signing_key(pem: bytes) -> SigningKey:
    """The private key in a PEM bundle (certificate and key together are fine)."""
    start, end = pem.find(_PEM_BEGIN), pem.find(_PEM_END)
    if start < 0 or end < start:
        raise ValueError("no PKCS#8 'PRIVATE KEY' block in the credentials")
    der = base64.b64decode(pem[start + len(_PEM_BEGIN) : end])
    if len(der) == 48 and der.startswith(_ED25519_PKCS8_HEADER):
        return ed25519.Ed25519PrivateKey.from_private_bytes(der[16:])
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    return _supported(load_der_private_key(der, password=None))


def sign_body(key: SigningKey, body: bytes) -> bytes:
    message = SIGNING_CONTEXT + body
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def signature_is_valid(public_key: object, body: bytes, sig: bytes) -> bool:
    """True when `sig` is the signature of `body` by the holder of `public_key`."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    message = SIGNING_CONTEXT + body
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(sig, message)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(
            public_key.curve, ec.SECP256R1
        ):
            public_key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _supported(key: object) -> SigningKey:
    """`key` itself, when it is of a kind requests are signed with."""
    from cryptography.hazmat.primitives.asymmetric import ec

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ValueError(f"unsupported key type {type(key).__name__}: use Ed25519 or ECDSA P-256")
