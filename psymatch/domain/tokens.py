"""Signed tokens in email: the reply address and the one-click answer links.

Both are HMAC-SHA256 signatures with the ``SIGNING_KEY`` setting, compared in
constant time. Each kind of token signs its own prefix (``reply:`` / ``link:``),
so a signature of one kind is never valid as the other.

Reply address (one per Therapeutenanfrage)
    ``antwort+a<anfrage_id>.<mac>@<REPLY_DOMAIN>``, all lowercase, where
    ``<mac>`` is the first 16 characters of the base32 encoding of
    HMAC(key, ``"reply:a<anfrage_id>"``), lowercased (80 bits). The local part
    stays far below the 64 characters RFC 5321 allows (``antwort+a`` + up to 18
    digits + ``.`` + 16 = at most 44). Lowercase base32 survives mail systems that
    fold the case of local parts. ``parse_reply_address`` accepts the bare address
    or a header value such as ``"Praxis" <ANTWORT+A42.ABC...@Antwort.Example>``
    and returns the Anfrage id, or None for any other format, another domain or a
    wrong signature.

Message-ID of an email about an Anfrage (inquiry, reminder, confirmation, conflict)
    ``<anfrage-<anfrage_id>.<kind>.<mac>@<REPLY_DOMAIN>>``, where ``<mac>`` is the
    first 16 characters of the lowercased base32 encoding of HMAC(key,
    ``"msgid:a<anfrage_id>.<kind>"``). A reply that quotes it in In-Reply-To or
    References proves it answers an email psymatch sent (``parse_message_id``).
    The unsigned ids of earlier versions (``<anfrage-42.anfrage@...>``) are
    guessable: ``parse_legacy_message_id`` still reads them, for review only.

One-click link token (one per Anfrage, patient and answer)
    ``1.<anfrage_id>.<patient_id>.<code>.<expires>.<mac>``

    - ``1``: format version;
    - ``<code>``: ``j`` = ``angenommen``, ``k`` = ``abgelehnt_Kapazitaet``,
      ``n`` = ``abgelehnt_nicht_geeignet``;
    - ``<expires>``: expiry as Unix seconds (UTC), creation + ``LINK_TTL_DAYS``;
    - ``<mac>``: URL-safe base64 without padding of the first 16 bytes of
      HMAC(key, ``"link:" + everything before the last dot``) (22 characters).

    Only ``[0-9A-Za-z._-]`` occur, so the token needs no escaping in a URL path.
    The link is ``PUBLIC_BASE_URL + "/r/" + token`` (``link_url``).
    ``read_link_token(token, now)`` checks the signature first and the expiry
    second: a token that was tampered with raises ``ForgedToken`` (whatever its
    expiry), a genuine but expired one raises ``ExpiredToken``, which still
    carries the claim so the ``/r/<token>`` page can name the Anfrage and ask for
    an email reply instead. A link token proves which answer the recipient
    clicked, not who clicked; the endpoint should show a confirmation page before
    it records the answer (mail scanners follow links).

Placement link token (one per search, placed therapist and outcome; to the patient)
    ``p1.<platzsuche_id>.<therapist_id>.<code>.<expires>.<mac>``

    - ``p1``: kind and format version;
    - ``<code>``: ``s`` = ``stattgefunden``, ``p`` = ``passt_nicht``, ``k`` = ``kein_termin``;
    - ``<expires>`` as above (creation + ``LINK_TTL_DAYS``);
    - ``<mac>``: as above over ``"plink:" + everything before the last dot``, so a
      therapist's link signature is never valid as a patient's and vice versa.

    The link is ``PUBLIC_BASE_URL + "/v/" + token`` (``placement_link``);
    ``read_placement_token`` raises ``ForgedToken`` / ``ExpiredPlacementToken`` like
    ``read_link_token``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import getaddresses

from psymatch import settings
from psymatch.domain import vocab

REPLY_LOCAL_PREFIX = "antwort+"
_REPLY_MAC_CHARS = 16
_LINK_MAC_BYTES = 16
_LINK_VERSION = "1"

ANSWER_CODES = {
    vocab.ANGENOMMEN: "j",
    vocab.ABGELEHNT_KAPAZITAET: "k",
    vocab.ABGELEHNT_NICHT_GEEIGNET: "n",
}
_CODE_ANSWERS = {code: answer for answer, code in ANSWER_CODES.items()}
LINK_ANSWERS = tuple(ANSWER_CODES)

MESSAGE_ID_KINDS = ("anfrage", "erinnerung", "annahme_bestaetigung", "konflikt")
_KIND_ALTERNATIVES = "|".join(MESSAGE_ID_KINDS)
_MESSAGE_ID = re.compile(
    rf"^<anfrage-([1-9][0-9]{{0,17}})\.({_KIND_ALTERNATIVES})\.([a-z2-7]{{16}})@([^<>@\s]+)>$"
)
_LEGACY_MESSAGE_ID = re.compile(
    rf"^<anfrage-([1-9][0-9]{{0,17}})\.(?:{_KIND_ALTERNATIVES})@([^<>@\s]+)>$"
)
_REPLY_LOCAL = re.compile(r"^antwort\+a([1-9][0-9]{0,17})\.([a-z2-7]{16})$")
_LINK = re.compile(
    r"^(1)\.([1-9][0-9]{0,17})\.([1-9][0-9]{0,17})\.([jkn])\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})$"
)


class TokenError(ValueError):
    """A link token that cannot be honoured."""


class ForgedToken(TokenError):
    """Malformed, or the signature does not match: not made by psymatch."""


class ExpiredToken(TokenError):
    """Made by psymatch, but older than its time to live."""

    def __init__(self, claim: LinkClaim):
        super().__init__(f"link for Anfrage A{claim.anfrage_id} expired at {claim.expires_at}")
        self.claim = claim


@dataclass(frozen=True)
class LinkClaim:
    """What a valid link token says: this answer for this patient of this Anfrage."""

    anfrage_id: int
    patient_id: int
    answer: str
    expires_at: dt.datetime  # naive UTC, like every stored timestamp


_DEMO_SIGNING_KEY = next(
    f.default for f in dataclasses.fields(settings.Settings) if f.name == "SIGNING_KEY"
)


def _key() -> bytes:
    """The signing key; refused where it is withheld (console kernels get it empty) and
    where only the public demo default is left outside demo mode: a link signed with the
    wrong key would be a dead link in a patient's or therapist's inbox."""
    global _key_cache
    s = settings.get()
    if _key_cache is not None and _key_cache[0] is s:  # settings are replaced, never mutated
        return _key_cache[1]
    key = s.SIGNING_KEY
    if not key or (key == _DEMO_SIGNING_KEY and not s.demo_mode):
        raise settings.SettingsError(
            "SIGNING_KEY is not available in this process (console kernels never get it: "
            "emails are rendered and signed by the workers)"
        )
    _key_cache = (s, key.encode("utf-8"))
    return _key_cache[1]


# (the settings object it was checked for, the key): the demo check parses URLs, and an
# email signs several tokens
_key_cache: tuple[settings.Settings, bytes] | None = None


def _mac(message: str) -> bytes:
    return hmac.new(_key(), message.encode("utf-8"), hashlib.sha256).digest()


# --- reply address -----------------------------------------------------------


def _reply_mac(anfrage_id: int) -> str:
    encoded = base64.b32encode(_mac(f"reply:a{anfrage_id}")).decode("ascii")
    return encoded[:_REPLY_MAC_CHARS].lower()


def reply_local_part(anfrage_id: int) -> str:
    if not isinstance(anfrage_id, int) or anfrage_id < 1:
        raise ValueError(f"Anfrage id must be a positive integer, got {anfrage_id!r}")
    return f"{REPLY_LOCAL_PREFIX}a{anfrage_id}.{_reply_mac(anfrage_id)}"


def reply_address(anfrage_id: int) -> str:
    """The Reply-To address of one Therapeutenanfrage."""
    return f"{reply_local_part(anfrage_id)}@{settings.get().REPLY_DOMAIN.lower()}"


def parse_reply_address(address: str) -> int | None:
    """The Anfrage id a reply address names, or None when it is not a genuine one."""
    if not isinstance(address, str):
        return None
    parsed = [addr for _, addr in getaddresses([address]) if addr]
    if len(parsed) != 1:
        return None
    local, at, domain = parsed[0].strip().lower().rpartition("@")
    if not at or domain != settings.get().REPLY_DOMAIN.lower():
        return None
    match = _REPLY_LOCAL.match(local)
    if not match:
        return None
    anfrage_id = int(match.group(1))
    if not hmac.compare_digest(match.group(2), _reply_mac(anfrage_id)):
        return None
    return anfrage_id


def find_reply_anfrage(header_values: Iterable[str]) -> int | None:
    """The Anfrage named by the first genuine reply address among header values.

    For inbound mail: pass the To, Cc and Delivered-To values (each may list
    several addresses).
    """
    for _, addr in getaddresses([v for v in header_values if isinstance(v, str)]):
        anfrage_id = parse_reply_address(addr) if addr else None
        if anfrage_id is not None:
            return anfrage_id
    return None


# --- Message-IDs -------------------------------------------------------------------


def _message_id_mac(anfrage_id: int, kind: str) -> str:
    encoded = base64.b32encode(_mac(f"msgid:a{anfrage_id}.{kind}")).decode("ascii")
    return encoded[:_REPLY_MAC_CHARS].lower()


def anfrage_message_id(kind: str, anfrage_id: int) -> str:
    """The signed Message-ID of the email of ``kind`` about one Anfrage."""
    if kind not in MESSAGE_ID_KINDS:
        raise ValueError(f"unknown Anfrage email kind {kind!r}")
    if not isinstance(anfrage_id, int) or anfrage_id < 1:
        raise ValueError(f"Anfrage id must be a positive integer, got {anfrage_id!r}")
    domain = settings.get().REPLY_DOMAIN.lower()
    return f"<anfrage-{anfrage_id}.{kind}.{_message_id_mac(anfrage_id, kind)}@{domain}>"


def parse_message_id(message_id: str) -> int | None:
    """The Anfrage id of a Message-ID psymatch signed, or None (any other id)."""
    if not isinstance(message_id, str):
        return None
    match = _MESSAGE_ID.match(message_id.strip().lower())
    if not match or match.group(4) != settings.get().REPLY_DOMAIN.lower():
        return None
    anfrage_id, kind = int(match.group(1)), match.group(2)
    if not hmac.compare_digest(match.group(3), _message_id_mac(anfrage_id, kind)):
        return None
    return anfrage_id


def parse_legacy_message_id(message_id: str) -> int | None:
    """The Anfrage id of an unsigned Message-ID of earlier versions (guessable: no proof)."""
    if not isinstance(message_id, str):
        return None
    match = _LEGACY_MESSAGE_ID.match(message_id.strip().lower())
    if not match or match.group(2) != settings.get().REPLY_DOMAIN.lower():
        return None
    return int(match.group(1))


# --- one-click links -------------------------------------------------------------


def _as_utc_naive(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _unix(moment: dt.datetime) -> int:
    return int(_as_utc_naive(moment).replace(tzinfo=dt.UTC).timestamp())


def _link_mac(body: str) -> str:
    digest = _mac(f"link:{body}")[:_LINK_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def make_link_token(
    anfrage_id: int,
    patient_id: int,
    answer: str,
    *,
    now: dt.datetime | None = None,
    ttl_days: int | None = None,
) -> str:
    """A signed token for "this answer for this patient of this Anfrage"."""
    if answer not in ANSWER_CODES:
        raise ValueError(f"answer must be one of {', '.join(LINK_ANSWERS)}, got {answer!r}")
    for name, value in (("anfrage_id", anfrage_id), ("patient_id", patient_id)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    now = now if now is not None else dt.datetime.now(dt.UTC)
    ttl = ttl_days if ttl_days is not None else settings.get().LINK_TTL_DAYS
    expires = _unix(now) + int(ttl) * 86400
    body = f"{_LINK_VERSION}.{anfrage_id}.{patient_id}.{ANSWER_CODES[answer]}.{expires}"
    return f"{body}.{_link_mac(body)}"


def read_link_token(token: str, now: dt.datetime) -> LinkClaim:
    """Check a link token; raises ``ForgedToken`` or ``ExpiredToken``."""
    match = _LINK.match(token) if isinstance(token, str) else None
    if not match:
        raise ForgedToken("not a psymatch link token")
    body, mac = token.rsplit(".", 1)
    if not hmac.compare_digest(mac, _link_mac(body)):
        raise ForgedToken("link token signature does not match")
    _, anfrage, patient, code, expires = match.groups()[:5]
    claim = LinkClaim(
        anfrage_id=int(anfrage),
        patient_id=int(patient),
        answer=_CODE_ANSWERS[code],
        expires_at=dt.datetime.fromtimestamp(int(expires), dt.UTC).replace(tzinfo=None),
    )
    if _unix(now) >= int(expires):
        raise ExpiredToken(claim)
    return claim


def link_url(token: str) -> str:
    return settings.get().PUBLIC_BASE_URL.rstrip("/") + "/r/" + token


def answer_link(anfrage_id: int, patient_id: int, answer: str, *, now=None) -> str:
    """The full one-click URL for one answer."""
    return link_url(make_link_token(anfrage_id, patient_id, answer, now=now))


# --- placement links (to the patient) ------------------------------------------------

PLACEMENT_CODES = {
    vocab.STATTGEFUNDEN: "s",
    vocab.PASST_NICHT: "p",
    vocab.KEIN_TERMIN: "k",
}
_CODE_PLACEMENT = {code: outcome for outcome, code in PLACEMENT_CODES.items()}
_PLACEMENT_VERSION = "p1"
_PLACEMENT = re.compile(
    r"^(p1)\.([1-9][0-9]{0,17})\.([1-9][0-9]{0,17})\.([spk])\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})$"
)


@dataclass(frozen=True)
class PlacementClaim:
    """What a valid placement token says: this outcome for this search and placed therapist."""

    platzsuche_id: int
    therapist_id: int
    outcome: str
    expires_at: dt.datetime  # naive UTC


class ExpiredPlacementToken(ExpiredToken):
    """A genuine placement link older than its time to live."""

    def __init__(self, claim: PlacementClaim):
        TokenError.__init__(
            self, f"link for search {claim.platzsuche_id} expired at {claim.expires_at}"
        )
        self.claim = claim


def _placement_mac(body: str) -> str:
    digest = _mac(f"plink:{body}")[:_LINK_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def make_placement_token(
    platzsuche_id: int,
    therapist_id: int,
    outcome: str,
    *,
    now: dt.datetime | None = None,
    ttl_days: int | None = None,
) -> str:
    """A signed token for "this outcome of the placement of this search with this therapist"."""
    if outcome not in PLACEMENT_CODES:
        raise ValueError(
            f"outcome must be one of {', '.join(vocab.VERMITTLUNGSERGEBNISSE)}, got {outcome!r}"
        )
    for name, value in (("platzsuche_id", platzsuche_id), ("therapist_id", therapist_id)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    now = now if now is not None else dt.datetime.now(dt.UTC)
    ttl = ttl_days if ttl_days is not None else settings.get().LINK_TTL_DAYS
    expires = _unix(now) + int(ttl) * 86400
    code = PLACEMENT_CODES[outcome]
    body = f"{_PLACEMENT_VERSION}.{platzsuche_id}.{therapist_id}.{code}.{expires}"
    return f"{body}.{_placement_mac(body)}"


def read_placement_token(token: str, now: dt.datetime) -> PlacementClaim:
    """Check a placement token; raises ``ForgedToken`` or ``ExpiredPlacementToken``."""
    match = _PLACEMENT.match(token) if isinstance(token, str) else None
    if not match:
        raise ForgedToken("not a psymatch placement link token")
    body, mac = token.rsplit(".", 1)
    if not hmac.compare_digest(mac, _placement_mac(body)):
        raise ForgedToken("placement link token signature does not match")
    _, search, therapist, code, expires = match.groups()[:5]
    claim = PlacementClaim(
        platzsuche_id=int(search),
        therapist_id=int(therapist),
        outcome=_CODE_PLACEMENT[code],
        expires_at=dt.datetime.fromtimestamp(int(expires), dt.UTC).replace(tzinfo=None),
    )
    if _unix(now) >= int(expires):
        raise ExpiredPlacementToken(claim)
    return claim


def placement_link(platzsuche_id: int, therapist_id: int, outcome: str, *, now=None) -> str:
    """The full one-click URL a placed patient uses to report the initial session."""
    token = make_placement_token(platzsuche_id, therapist_id, outcome, now=now)
    return settings.get().PUBLIC_BASE_URL.rstrip("/") + "/v/" + token
