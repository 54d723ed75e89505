"""Decryption of encrypted SDK payloads (AES-128-CBC, PKCS#7), as GrowthBook encrypts them.

The ``cryptography`` package is optional (``pip install 'liftkit[crypto]'``); the standard
library has no AES. Without it, an encrypted payload raises a clear MissingDependencyError
instead of crashing with an ImportError deep in a request.
"""

from __future__ import annotations

import base64
import binascii

from liftkit.sdk.errors import DecryptionError, MissingDependencyError


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise DecryptionError(f"the {what} is not valid base64") from None


def decrypt(encrypted: str, key: str) -> str:
    """Decrypt ``base64(iv) + "." + base64(ciphertext)`` with a base64 AES-128 key."""
    try:
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise MissingDependencyError(
            "this payload is encrypted; decrypting it needs the 'cryptography' package "
            "(pip install 'liftkit[crypto]')"
        ) from None
    if "." not in encrypted:
        raise DecryptionError("an encrypted payload is 'iv.ciphertext'; the '.' is missing")
    iv_text, cipher_text = encrypted.split(".", 1)
    key_bytes = _b64(key, "decryption key")
    iv = _b64(iv_text, "initialisation vector")
    data = _b64(cipher_text, "ciphertext")
    if len(key_bytes) not in (16, 24, 32):
        raise DecryptionError("the decryption key must be 16 bytes (AES-128), base64-encoded")
    if len(iv) != 16:
        raise DecryptionError("the initialisation vector must be 16 bytes")
    if not data or len(data) % 16:
        raise DecryptionError("the ciphertext is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key_bytes), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        return plain.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise DecryptionError("decryption failed: wrong key or corrupt data") from None
