"""Signed reply addresses and one-click link tokens."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from psymatch import settings
from psymatch.domain import tokens

NOW = dt.datetime(2025, 8, 19, 9, 0)


@pytest.fixture(autouse=True)
def signing_settings():
    before = settings.get()
    settings.override(
        SIGNING_KEY="test-key-1",
        REPLY_DOMAIN="Antwort.Example.org",
        PUBLIC_BASE_URL="https://psymatch.example/",
        LINK_TTL_DAYS=30,
    )
    yield
    settings.override(
        SIGNING_KEY=before.SIGNING_KEY,
        REPLY_DOMAIN=before.REPLY_DOMAIN,
        PUBLIC_BASE_URL=before.PUBLIC_BASE_URL,
        LINK_TTL_DAYS=before.LINK_TTL_DAYS,
    )


def test_reply_address_is_lowercase_short_and_round_trips():
    address = tokens.reply_address(42)
    local, domain = address.split("@")
    assert domain == "antwort.example.org"
    assert re.fullmatch(r"antwort\+a42\.[a-z2-7]{16}", local)
    assert tokens.parse_reply_address(address) == 42
    # case folding by a mail system, a display name around it
    assert tokens.parse_reply_address(f'"Praxis Dr. X" <{address.upper()}>') == 42
    longest = tokens.reply_local_part(10**18 - 1)
    assert len(longest) <= 64


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.replace("a42.", "a43."),  # another Anfrage, same signature
        lambda a: a[:-30] + ("b" if a[-30] != "b" else "c") + a[-29:],  # one mac char changed
        lambda a: a.replace("antwort.example.org", "evil.example.org"),
        lambda a: a.replace("antwort+", "reply+"),
        lambda a: a.split("@")[0],
        lambda a: "",
    ],
)
def test_forged_or_foreign_reply_addresses_are_refused(mutate):
    forged = mutate(tokens.reply_address(42))
    assert tokens.parse_reply_address(forged) is None


def test_reply_address_signed_with_another_key_is_refused():
    address = tokens.reply_address(7)
    settings.override(SIGNING_KEY="another-key")
    assert tokens.parse_reply_address(address) is None


def test_find_reply_anfrage_scans_header_values():
    genuine = tokens.reply_address(9)
    values = ["staff@psymatch.example, someone@else.org", f"Antwort <{genuine}>"]
    assert tokens.find_reply_anfrage(values) == 9
    assert tokens.find_reply_anfrage(["a@b.de"]) is None


@pytest.mark.parametrize("answer", tokens.LINK_ANSWERS)
def test_link_token_round_trips_every_answer(answer):
    token = tokens.make_link_token(42, 1234, answer, now=NOW)
    assert re.fullmatch(r"[0-9A-Za-z._-]+", token)
    claim = tokens.read_link_token(token, NOW + dt.timedelta(days=29))
    assert (claim.anfrage_id, claim.patient_id, claim.answer) == (42, 1234, answer)
    assert claim.expires_at == NOW + dt.timedelta(days=30)


def test_link_url_uses_the_public_base_url():
    token = tokens.make_link_token(1, 2, "angenommen", now=NOW)
    assert tokens.link_url(token) == f"https://psymatch.example/r/{token}"


def test_expired_link_raises_expired_with_its_claim():
    token = tokens.make_link_token(42, 5, "abgelehnt_Kapazitaet", now=NOW)
    with pytest.raises(tokens.ExpiredToken) as caught:
        tokens.read_link_token(token, NOW + dt.timedelta(days=30))
    assert caught.value.claim.anfrage_id == 42
    assert caught.value.claim.answer == "abgelehnt_Kapazitaet"
    # an aware "now" is understood as well
    aware = (NOW + dt.timedelta(days=31)).replace(tzinfo=dt.UTC)
    with pytest.raises(tokens.ExpiredToken):
        tokens.read_link_token(token, aware)


def test_changed_answer_patient_or_expiry_is_forged_not_expired():
    token = tokens.make_link_token(42, 5, "abgelehnt_Kapazitaet", now=NOW)
    version, anfrage, patient, code, expires, mac = token.split(".")
    tampered = [
        ".".join([version, anfrage, patient, "j", expires, mac]),  # capacity -> accept
        ".".join([version, anfrage, "6", code, expires, mac]),
        ".".join([version, "43", patient, code, expires, mac]),
        ".".join([version, anfrage, patient, code, str(int(expires) + 86400 * 365), mac]),
        ".".join([version, anfrage, patient, code, "1", mac]),  # expired AND forged: forged
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        "garbage",
        "",
    ]
    for candidate in tampered:
        with pytest.raises(tokens.ForgedToken):
            tokens.read_link_token(candidate, NOW)


def test_link_token_from_another_key_is_forged():
    token = tokens.make_link_token(1, 2, "angenommen", now=NOW)
    settings.override(SIGNING_KEY="rotated")
    with pytest.raises(tokens.ForgedToken):
        tokens.read_link_token(token, NOW)


def test_reply_signature_is_not_a_link_signature():
    # the same HMAC key signs both; the prefixes keep the kinds apart
    reply_mac = tokens.reply_address(3).split(".")[1].split("@")[0]
    assert reply_mac not in tokens.make_link_token(3, 3, "angenommen", now=NOW)


@pytest.mark.parametrize(
    "args",
    [(0, 1, "angenommen"), (1, -1, "angenommen"), (1, 1, "abgelehnt_sonstiges"), (1, 1, "ja")],
)
def test_bad_link_arguments_are_refused(args):
    with pytest.raises(ValueError):
        tokens.make_link_token(*args, now=NOW)
