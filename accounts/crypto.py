"""Authenticated encryption of mailbox passwords at rest (Fernet under WEBMAIL_ENCRYPTION_KEYS).

The first key encrypts; every key decrypts, so keys can be rotated: add the new key in front,
run `manage.py reencrypt_secrets`, then drop the old one.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac


class EncryptionKeyError(Exception):
    """No usable key: refuse to go on rather than store or send a secret unprotected."""


_UNREADABLE = (
    "A stored password cannot be decrypted: the key that encrypted it is not in WEBMAIL_ENCRYPTION_KEYS."
)


def _fernet() -> MultiFernet:
    keys = list(settings.WEBMAIL_ENCRYPTION_KEYS)
    if not keys:
        raise EncryptionKeyError(
            "WEBMAIL_ENCRYPTION_KEYS is not set: mailbox passwords cannot be encrypted or read."
        )
    return MultiFernet([Fernet(key.encode("ascii")) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise EncryptionKeyError(_UNREADABLE) from None


def reencrypt(token: str) -> str:
    """The same secret under the newest key (MultiFernet.rotate)."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise EncryptionKeyError(_UNREADABLE) from None


def secret_digest(plaintext: str) -> str:
    """A keyed digest, so the web process can tell "the same password as tested" without decrypting."""
    return salted_hmac("postane.secret-digest", plaintext, algorithm="sha256").hexdigest()
