"""Signatures cover the exact body bytes, prefixed by the protocol's context."""

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from xcat_protocol.signing import SIGNING_CONTEXT, load_signing_key, sign_body, signature_is_valid


def pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_an_ed25519_signature_verifies_and_a_changed_body_does_not():
    key = ed25519.Ed25519PrivateKey.generate()
    sig = sign_body(key, b"body")
    assert signature_is_valid(key.public_key(), b"body", sig)
    assert not signature_is_valid(key.public_key(), b"bodY", sig)


def test_an_ecdsa_p256_signature_verifies():
    key = ec.generate_private_key(ec.SECP256R1())
    sig = sign_body(key, b"body")
    assert signature_is_valid(key.public_key(), b"body", sig)
    assert not signature_is_valid(key.public_key(), b"other", sig)


def test_another_keys_signature_is_refused():
    mine, theirs = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    assert not signature_is_valid(mine.public_key(), b"body", sign_body(theirs, b"body"))


def test_the_context_prefix_is_part_of_what_is_signed():
    key = ed25519.Ed25519PrivateKey.generate()
    bare = key.sign(b"body")  # a signature made for some other purpose
    assert not signature_is_valid(key.public_key(), b"body", bare)
    assert signature_is_valid(key.public_key(), b"body", key.sign(SIGNING_CONTEXT + b"body"))


def test_keys_load_from_a_bundle_with_the_certificate_first():
    ed = ed25519.Ed25519PrivateKey.generate()
    loaded = load_signing_key(
        b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n" + pem(ed)
    )
    assert loaded.public_key() == ed.public_key()
    p256 = ec.generate_private_key(ec.SECP256R1())
    assert load_signing_key(pem(p256)).public_key() == p256.public_key()


def test_unsupported_curves_are_refused():
    import pytest

    with pytest.raises(ValueError, match="unsupported key type"):
        load_signing_key(pem(ec.generate_private_key(ec.SECP384R1())))
