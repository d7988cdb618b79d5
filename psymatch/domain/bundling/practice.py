"""Practice groups, their owner and the serving order of therapists (docs/domain.md §3, §6.2)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from .data import TherapistData

_TRANSLITERATION = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


@lru_cache(maxsize=200_000)
def normalize_email(email: str | None) -> str | None:
    """Trimmed and lowercased; None for a missing or blank address."""
    if not email or not email.strip():
        return None
    return email.strip().lower()


def usable_email(therapist) -> str | None:
    """The normalised address this therapist may be emailed at: None without one, or when
    a permanent delivery failure marked it invalid (then inquiries go by phone). Practice
    membership still follows the address itself (``group_key``). ``therapist``: a
    ``TherapistData`` or any object with ``email`` (and ``email_ungueltig_seit``)."""
    if getattr(therapist, "email_ungueltig_seit", None) is not None:
        return None
    return normalize_email(therapist.email)


def group_key(therapist: TherapistData) -> str | int:
    """Therapists sharing one normalised email form one practice; without email, a group of one.

    The key is the normalised address, or the therapist's id (an int never equals a str).
    """
    return normalize_email(therapist.email) or therapist.id


def groups(therapists: Iterable[TherapistData]) -> dict[str | int, list[TherapistData]]:
    out: dict[str | int, list[TherapistData]] = {}
    for therapist in therapists:
        key = normalize_email(therapist.email) or therapist.id
        if key in out:
            out[key].append(therapist)
        else:
            out[key] = [therapist]
    return out


def _title_rank(titel: str | None) -> int:
    if titel and "Prof" in titel:
        return 1
    if titel and "Dr" in titel:
        return 2
    return 3


def practice_owner(members: list[TherapistData]) -> TherapistData:
    """The representative of a practice among ``members`` (first rule that decides wins).

    a. a member whose transliterated, lowercased surname occurs in the email (lowest id);
    b. else the best title: ``Prof`` before ``Dr`` (ties: lowest id);
    c. else the lowest id.
    """
    by_id = sorted(members, key=lambda t: t.id)
    email = normalize_email(by_id[0].email) or ""
    if email:
        for member in by_id:
            surname = (member.nachname or "").lower().translate(_TRANSLITERATION)
            if surname and surname in email:
                return member
    ranked = min(by_id, key=lambda t: (_title_rank(t.titel), t.id))
    if _title_rank(ranked.titel) < 3:
        return ranked
    return by_id[0]


def tier(therapist: TherapistData) -> int:
    """0..7: potentially available first, informed next, email-reachable before phone-only
    (an address marked invalid reaches nobody)."""
    has_email = usable_email(therapist) is not None
    base = 0 if has_email else 4
    return (
        base
        + (0 if therapist.potenziell_verfuegbar else 2)
        + (0 if therapist.ueber_curavani_informiert else 1)
    )


def order_key(therapist: TherapistData) -> tuple:
    """(tier, nachname, vorname, id): names compare as plain Unicode strings."""
    return (tier(therapist), therapist.nachname or "", therapist.vorname or "", therapist.id)
