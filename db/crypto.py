"""Encryption at rest for patient contact data (SECURITY.md).

Values are Fernet tokens (AES-128-CBC + HMAC-SHA256, random IV) under the keys of
``ENCRYPTION_KEYS``: a ``MultiFernet`` whose first key encrypts and every key
decrypts, so a key is rotated by prepending a new one, running
``psymatch crypto rotate`` (re-encrypts every stored value with the new key) and
then dropping the old one.

* ``EncryptedTextField``: always encrypted (patient names, contact data, email
  subjects and bodies). Such a column cannot be filtered or sorted in SQL.
* ``SealableTextField``: plaintext unless the value is ``Sealed`` (the recipient
  address of an email: therapist addresses stay plaintext for the weekly-rule
  index, patient addresses are sealed). Stored tokens are recognised by their
  Fernet prefix; an email address always contains ``@``, a token never does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
import time
from collections.abc import Iterable

import numpy as np
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from peewee import TextField

from psymatch import settings

TOKEN_PREFIX = "gAAAAA"  # version byte 0x80 and a timestamp's leading zero bytes


class CryptoError(RuntimeError):
    """A stored value that no configured key decrypts, or an unusable key."""


_cache: tuple[tuple[str, ...], MultiFernet] | None = None


def fernet() -> MultiFernet:
    """The MultiFernet of the current ``ENCRYPTION_KEYS`` (rebuilt when they change)."""
    global _cache
    keys = tuple(settings.get().encryption_keys())
    if _cache is None or _cache[0] != keys:
        try:
            _cache = (keys, MultiFernet([Fernet(k.encode()) for k in keys]))
        except ValueError:
            raise CryptoError(
                "ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(generate one with 'psymatch crypto generate-key')"
            ) from None
    return _cache[1]


def encrypt(value: str | None) -> str | None:
    if value is None:
        return None
    return fernet().encrypt(str(value).encode()).decode("ascii")


def encrypt_many(values: Iterable[str | None]) -> list[str | None]:
    """``encrypt`` for many values (bulk inserts, demo data), several times faster.

    Produces standard Fernet tokens (version 0x80, timestamp, random IV, AES-128-CBC
    of the PKCS7-padded text, HMAC-SHA256 over all of it) but runs the CBC chains of
    all values side by side: block j of every value is XORed with its predecessor
    (the IV for j = 0) in numpy and encrypted in one AES call. Tests check that
    ``Fernet.decrypt`` reads every token.
    """
    texts = [None if v is None else str(v).encode() for v in values]
    out: list[str | None] = [None] * len(texts)
    # Long texts would widen every row of the batch: they take the ordinary path.
    batch = [i for i, t in enumerate(texts) if t is not None and len(t) <= _BATCH_MAX_BYTES]
    for i, text in enumerate(texts):
        if text is not None and (len(batch) < _BATCH_MIN or len(text) > _BATCH_MAX_BYTES):
            out[i] = fernet().encrypt(text).decode("ascii")
    if len(batch) < _BATCH_MIN:
        return out
    fernet()  # validates the keys with a clear error
    key = base64.urlsafe_b64decode(settings.get().encryption_keys()[0].encode())
    for i, token in zip(batch, _fernet_batch(key, [texts[i] for i in batch]), strict=True):
        out[i] = token
    return out


_BATCH_MIN = 32
_BATCH_MAX_BYTES = 1000
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _fernet_batch(key: bytes, texts: list[bytes]) -> list[str]:
    signing_key, encryption_key = key[:16], key[16:]
    count = len(texts)
    padded = [t + bytes([16 - len(t) % 16]) * (16 - len(t) % 16) for t in texts]
    blocks = [len(p) // 16 for p in padded]
    width = max(blocks) * 16
    plain = np.frombuffer(b"".join(p.ljust(width, b"\0") for p in padded), dtype=np.uint8)
    plain = plain.reshape(count, width)
    ivs = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16)
    cipher = np.empty_like(plain)
    ecb = Cipher(algorithms.AES(encryption_key), modes.ECB()).encryptor()
    previous = ivs
    for start in range(0, width, 16):
        mixed = np.bitwise_xor(plain[:, start : start + 16], previous)
        encrypted = np.frombuffer(ecb.update(mixed.tobytes()), dtype=np.uint8).reshape(count, 16)
        cipher[:, start : start + 16] = encrypted
        previous = encrypted
    header = b"\x80" + struct.pack(">Q", int(time.time()))
    b2a = binascii.b2a_base64
    block_key = signing_key.ljust(64, b"\0")
    inner_start = hashlib.sha256(bytes(b ^ 0x36 for b in block_key))
    outer_start = hashlib.sha256(bytes(b ^ 0x5C for b in block_key))
    iv_bytes, cipher_bytes = ivs.tobytes(), cipher.tobytes()
    tokens = []
    for i, n in enumerate(blocks):
        row = i * width
        parts = header + iv_bytes[16 * i : 16 * i + 16] + cipher_bytes[row : row + n * 16]
        inner = inner_start.copy()
        inner.update(parts)
        outer = outer_start.copy()
        outer.update(inner.digest())
        mac = outer.digest()  # HMAC-SHA256 (RFC 2104) from precomputed pad states
        tokens.append(b2a(parts + mac, newline=False).translate(_URLSAFE).decode("ascii"))
    return tokens


def decrypt(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeEncodeError):
        raise CryptoError(
            "a stored value cannot be decrypted with any key of ENCRYPTION_KEYS "
            "(wrong or missing key, or plaintext in an encrypted column)"
        ) from None


def is_token(value) -> bool:
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX) and "@" not in value


def rotate_token(token: str) -> str:
    """The same plaintext encrypted with the first key (MultiFernet.rotate)."""
    try:
        return fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise CryptoError(
            "a stored value cannot be decrypted with any key of ENCRYPTION_KEYS"
        ) from None


class Sealed(str):
    """A text to be stored encrypted in a ``SealableTextField``."""


class EncryptedTextField(TextField):
    """Text stored as a Fernet token; reads give the plaintext.

    ``max_length`` is the limit of the plaintext (checked by the validation before
    encryption); the column itself is TEXT, since a token is longer.
    """

    def __init__(self, max_length: int | None = None, *args, **kwargs):
        self.max_length = max_length
        super().__init__(*args, **kwargs)

    def db_value(self, value):
        return None if value is None else encrypt(value)

    def python_value(self, value):
        return None if value is None else decrypt(value)


class SealableTextField(TextField):
    """Plaintext, except ``Sealed`` values, which are stored (and read back) encrypted."""

    def db_value(self, value):
        return encrypt(value) if isinstance(value, Sealed) else value

    def python_value(self, value):
        return Sealed(decrypt(value)) if is_token(value) else value


def encrypted_columns(models) -> list[tuple[str, str, bool]]:
    """(table, column, sealable) of every encrypted column of ``models``."""
    out = []
    for model in models:
        for field in model._meta.sorted_fields:
            if isinstance(field, EncryptedTextField | SealableTextField):
                out.append(
                    (
                        model._meta.table_name,
                        field.column_name,
                        isinstance(field, SealableTextField),
                    )
                )
    return out


def rotate(models, batch_size: int = 1000, report=print) -> dict[str, int]:
    """Re-encrypt every stored token of ``models`` with the first key; counts per column.

    Each batch is its own transaction; an interrupted run is simply run again
    (every key of ``ENCRYPTION_KEYS`` still decrypts). Only afterwards may the old
    key be removed from ``ENCRYPTION_KEYS``.
    """
    from .database import db

    fernet()  # fails early and clearly on an unusable key
    counts = {}
    for table, column, sealable in encrypted_columns(models):
        p = db.param
        last_id, done = 0, 0
        while True:
            rows = db.execute_sql(
                f'SELECT "id", "{column}" FROM "{table}" WHERE "id" > {p} '
                f'AND "{column}" IS NOT NULL ORDER BY "id" LIMIT {int(batch_size)}',
                (last_id,),
            ).fetchall()
            if not rows:
                break
            last_id = rows[-1][0]
            updates = [
                (rotate_token(value), row_id)
                for row_id, value in rows
                if not sealable or is_token(value)
            ]
            with db.atomic():
                if updates:
                    db.cursor().executemany(
                        f'UPDATE "{table}" SET "{column}" = {p} WHERE "id" = {p}', updates
                    )
            done += len(updates)
        counts[f"{table}.{column}"] = done
        report(f"{table}.{column}: {done} values re-encrypted")
    return counts


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")
