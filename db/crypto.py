"""Encryption at rest for patient contact data (SECURITY.md).

Values are Fernet tokens (AES-128-CBC + HMAC-SHA256, random IV) under the keys of
``ENCRYPTION_KEYS``: a ``MultiFernet`` whose first key encrypts and every key
decrypts, so a key is rotated by prepending a new one, running
``psymatch crypto rotate`` (re-encrypts every stored value with the new key) and
then dropping the old one.

* ``EncryptedTextField``: always encrypted (patient names, contact data, email
  subjects and bodies). Such a column cannot be filtered or sorted in SQL.
* ``EncryptedDateField`` / ``EncryptedJSONField``: the same for a date (stored as
  its ISO text) and a JSON value (symptoms, audit details, reply results): the
  plaintext is serialised, then encrypted exactly like ``EncryptedTextField``.
* ``SealableTextField``: plaintext unless the value is ``Sealed`` (the recipient
  address of an email: therapist addresses stay plaintext for the weekly-rule
  index, patient addresses are sealed). Stored tokens are recognised by their
  Fernet prefix; an email address always contains ``@``, a token never does.

``blind_index`` is a keyed hash (HMAC-SHA256) of a value, for the rare column that must
be found by value without holding it: the geocoding cache's key for a patient's street
address. Its key is derived from each Fernet key of ``ENCRYPTION_KEYS``; the first one
writes, every one is tried when looking a value up (``blind_indexes``).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from peewee import TextField

from psymatch import settings

TOKEN_PREFIX = "gAAAAA"  # version byte 0x80 and a timestamp's leading zero bytes


class CryptoError(RuntimeError):
    """A stored value that no configured key decrypts, or an unusable key."""


# (the settings object it was built for, its keys, the MultiFernet)
_cache: tuple[object, tuple[str, ...], MultiFernet] | None = None


def fernet() -> MultiFernet:
    """The MultiFernet of the current ``ENCRYPTION_KEYS`` (rebuilt when they change).

    Settings are immutable and replaced as a whole when they change, so the keys are
    looked up again only for a new settings object. Every decryption (four per email
    sent) used to split the key list again, and in demo mode parse a URL: 7 µs each."""
    global _cache
    current = settings.get()
    if _cache is not None and _cache[0] is current:
        return _cache[2]
    keys = tuple(current.encryption_keys())
    if _cache is None or _cache[1] != keys:
        try:
            _cache = (current, keys, MultiFernet([Fernet(k.encode()) for k in keys]))
            _plaintext.cache_clear()
        except ValueError:
            raise CryptoError(
                "ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(generate one with 'psymatch crypto generate-key')"
            ) from None
    else:
        _cache = (current, keys, _cache[2])
    return _cache[2]


def encrypt(value: str | None) -> str | None:
    if value is None:
        return None
    return fernet().encrypt(str(value).encode()).decode("ascii")


def encrypt_many(values: Iterable[str | None]) -> list[str | None]:
    """``encrypt`` for many values (bulk inserts, demo data) with one key lookup.

    Deliberately the library's own Fernet for every value: a hand-made batch version
    of the cipher was several times faster, but encryption code of our own is a
    liability that a few seconds of demo-data loading do not justify.
    """
    current = fernet()
    return [
        None if value is None else current.encrypt(str(value).encode()).decode("ascii")
        for value in values
    ]


# Tokens up to this length (names, dates, symptom lists, addresses; not email bodies)
# keep their plaintext in ``_plaintext``'s cache.
_CACHED_TOKEN_LENGTH = 512


@functools.lru_cache(maxsize=32_768)
def _plaintext(token: str, box: MultiFernet) -> str:
    """A short token's plaintext, remembered per key set (``box``).

    The bundle round reads every open search's birth date and symptoms each day, and
    a patient offered to six therapists is read for each Anfrage: the same tokens,
    decrypted again and again (Fernet took 7 to 9 % of a simulated half year). The
    plaintext is in this process's memory while it is used anyway; the cache keeps at
    most 32,768 short values and is emptied when the keys change, so a token whose key
    was removed is refused as before."""
    return box.decrypt(token.encode("ascii")).decode()


def decrypt(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        box = fernet()
        if len(token) <= _CACHED_TOKEN_LENGTH:
            return _plaintext(token, box)
        return box.decrypt(token.encode("ascii")).decode()
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
    encryption); the column itself is TEXT, since a token is longer. Subclasses change
    only how a value becomes text and back (``to_text`` / ``from_text``).
    """

    def __init__(self, max_length: int | None = None, *args, **kwargs):
        self.max_length = max_length
        super().__init__(*args, **kwargs)

    def to_text(self, value) -> str:
        return str(value)

    def from_text(self, text: str):
        return text

    def db_value(self, value):
        return None if value is None else encrypt(self.to_text(value))

    def python_value(self, value):
        return None if value is None else self.from_text(decrypt(value))

    def db_values(self, values: Iterable) -> list[str | None]:
        """``db_value`` of many values at once (bulk inserts)."""
        return encrypt_many(None if v is None else self.to_text(v) for v in values)


class EncryptedDateField(EncryptedTextField):
    """A date stored as the token of its ISO text (``1990-05-01``); reads give a ``date``.
    Accepts a ``date``, a ``datetime`` (its date) or ISO text."""

    def to_text(self, value) -> str:
        if isinstance(value, dt.datetime):
            value = value.date()
        elif isinstance(value, str):
            value = dt.date.fromisoformat(value.strip())
        if not isinstance(value, dt.date):
            raise TypeError(f"{self.name}: a date is needed, not {type(value).__name__}")
        return value.isoformat()

    def from_text(self, text: str) -> dt.date:
        return dt.date.fromisoformat(text)


class EncryptedJSONField(EncryptedTextField):
    """A JSON value (list, dict, ...) stored as the token of its JSON text."""

    def to_text(self, value) -> str:
        return json.dumps(value, ensure_ascii=False)

    def from_text(self, text: str):
        return json.loads(text)


class SealableTextField(TextField):
    """Plaintext, except ``Sealed`` values, which are stored (and read back) encrypted."""

    def db_value(self, value):
        return encrypt(value) if isinstance(value, Sealed) else value

    def python_value(self, value):
        return Sealed(decrypt(value)) if is_token(value) else value


def encrypted_columns(models) -> list[tuple[str, str, str, bool]]:
    """(table, key column, column, sealable) of every encrypted column of ``models``."""
    out = []
    for model in models:
        key = model._meta.primary_key.column_name
        for field in model._meta.sorted_fields:
            if isinstance(field, EncryptedTextField | SealableTextField):
                out.append(
                    (
                        model._meta.table_name,
                        key,
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
    for table, key, column, sealable in encrypted_columns(models):
        p = db.param
        last_id, done = 0, 0
        while True:
            rows = db.execute_sql(
                f'SELECT "{key}", "{column}" FROM "{table}" WHERE "{key}" > {p} '
                f'AND "{column}" IS NOT NULL ORDER BY "{key}" LIMIT {int(batch_size)}',
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
                        f'UPDATE "{table}" SET "{column}" = {p} WHERE "{key}" = {p}', updates
                    )
            done += len(updates)
        counts[f"{table}.{column}"] = done
        report(f"{table}.{column}: {done} values re-encrypted")
    return counts


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


# --- blind index ------------------------------------------------------------------------------

BLIND_PREFIX = "hmac:"
_BLIND_CONTEXT = b"psymatch blind index v1"
# (the Fernet keys they were derived from, the derived HMAC keys)
_blind_cache: tuple[tuple[str, ...], tuple[bytes, ...]] | None = None


def _blind_keys() -> tuple[bytes, ...]:
    """One HMAC key per Fernet key of ``ENCRYPTION_KEYS`` (newest first), derived with HKDF
    (SHA-256, the library's) under a fixed context, so the Fernet key itself is never the
    MAC key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    global _blind_cache
    keys = tuple(settings.get().encryption_keys())
    if _blind_cache is None or _blind_cache[0] != keys:
        fernet()  # refuses an unusable key with the usual message
        derived = tuple(
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_BLIND_CONTEXT).derive(
                base64.urlsafe_b64decode(k.encode())
            )
            for k in keys
        )
        _blind_cache = (keys, derived)
    return _blind_cache[1]


def _blind(key: bytes, value: str) -> str:
    return BLIND_PREFIX + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def blind_index(value: str) -> str:
    """The keyed hash of ``value`` under the newest key: ``hmac:`` and 64 hex digits."""
    return _blind(_blind_keys()[0], value)


def blind_indexes(value: str) -> list[str]:
    """``value``'s keyed hash under every key of ``ENCRYPTION_KEYS``, newest first: what a
    lookup or a deletion by value compares with while keys are rotated."""
    return [_blind(key, value) for key in _blind_keys()]


def is_blind_index(value) -> bool:
    return isinstance(value, str) and value.startswith(BLIND_PREFIX)
