"""What a person search compares: normalised name tokens, email and phone (issue 15.2).

Pure functions. Patients' names, email and phone are encrypted at rest, so they are found
through a keyed blind index of these normalised values (db/crypto.py ``blind_index``):
``search_terms`` lists what is indexed for a patient, ``query_terms`` what a search text
looks for. Names match by whole tokens (a keyed hash has no prefixes).
"""

from __future__ import annotations

import re
import unicodedata

_TRANSLITERATION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def name_tokens(*names: str | None) -> list[str]:
    """Lowercased words without accents (ä -> ae, é -> e), sorted and unique."""
    text = " ".join(n for n in names if n).lower().translate(_TRANSLITERATION)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return sorted({t for t in re.split(r"[\W_]+", text) if t})


def normal_email(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value if "@" in value else None


def normal_phone(value: str | None) -> str | None:
    """Digits only, +49/0049 written as a leading 0; None below five digits."""
    text = (value or "").strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+49"):
        digits = "0" + digits[2:]
    elif digits.startswith("0049"):
        digits = "0" + digits[4:]
    return digits if len(digits) >= 5 else None


def search_terms(vorname, nachname, email, telefon) -> list[str]:
    """The terms indexed for one patient: ``name:<token>``, ``email:<…>``, ``tel:<digits>``."""
    terms = [f"name:{token}" for token in name_tokens(vorname, nachname)]
    if address := normal_email(email):
        terms.append(f"email:{address}")
    if phone := normal_phone(telefon):
        terms.append(f"tel:{phone}")
    return terms


def query_terms(text: str) -> tuple[str, list[str]]:
    """What a search text means: (kind, terms); kind is ``plz``, ``email``, ``tel`` or
    ``name`` (every term must match)."""
    text = text.strip()
    if re.fullmatch(r"[0-9]{5}", text):
        return "plz", [text]
    if "@" in text:
        address = normal_email(text)
        return "email", [f"email:{address}"] if address else []
    if re.fullmatch(r"[+0-9 ()/.-]+", text) and (phone := normal_phone(text)):
        return "tel", [f"tel:{phone}"]
    return "name", [f"name:{token}" for token in name_tokens(text)]


_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def index_word(digest: str) -> str:
    """A keyed hash (``hmac:`` and hex) as the stored word: its first 32 hex digits (128
    bits) written in letters only, so that a full-text parser keeps it one word."""
    return digest.removeprefix("hmac:")[:32].translate(_LETTERS)


def index_text(terms, hasher) -> str | None:
    """The stored index: the words of the keyed hashes of ``terms`` (``hasher``),
    space-separated with a space at both ends (`` <word> `` finds one); None without terms."""
    words = sorted({index_word(hasher(term)) for term in terms})
    return f" {' '.join(words)} " if words else None
