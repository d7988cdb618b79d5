"""Inbound email webhooks (Mailgun, Postmark, raw), one-click links and reply processing."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from db import crypto, database
from db.models import (
    InboundMessage,
    LinkKlick,
    OutboxItem,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    WebhookReplayMarker,
)
from operations import replies as ops
from operations.bundles import create_anfrage
from operations.errors import OperationError
from psymatch import settings
from psymatch.domain import reply_parse, tokens
from tests import factories as f
from tests import webhook_payloads as wp
from webhooks import inbound, providers
from webhooks.app import create_app
from workers.reply_actors import process_link_klick, process_reply

LATER = f.NOW + dt.timedelta(hours=2)
MAILGUN = "/webhooks/inbound/mailgun"
POSTMARK = "/webhooks/inbound/postmark"
RAW = "/webhooks/inbound/raw"


@pytest.fixture
def app(clean_db):
    app = create_app({"TESTING": True})
    inbound.register(app)
    inbound.register(app)  # idempotent
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


def counts() -> tuple[int, int]:
    return InboundMessage.select().count(), OutboxItem.select().count()


def post(client, provider: str, payload, **kwargs):
    if provider == "mailgun":
        return client.post(MAILGUN, data=payload, **kwargs)
    if provider == "postmark":
        headers = {**wp.postmark_auth(), **kwargs.pop("headers", {})}
        return client.post(POSTMARK, json=payload, headers=headers, **kwargs)
    return client.post(RAW, data=payload, headers=wp.raw_headers(payload), **kwargs)


def payload(provider: str, **kwargs):
    return getattr(wp, provider)(**kwargs)


# --- accepting, refusing, duplicates ------------------------------------------------------


@pytest.mark.parametrize("provider", ["mailgun", "postmark", "raw"])
def test_good_delivery_is_stored_once_with_its_outbox_item(client, provider):
    body = payload(provider, text="Hallo", subject="AW: Anfrage A77")
    response = post(client, provider, body)
    assert response.status_code == 202, response.get_data(as_text=True)
    row = InboundMessage.get_by_id(response.get_json()["id"])
    assert (row.provider, row.status, row.sender) == (provider, "neu", wp.SENDER)
    assert row.subject == "AW: Anfrage A77"
    assert json.loads(row.raw_payload)
    item = OutboxItem.get()
    assert (item.task, item.payload, item.dedupe_key) == (
        "process_reply",
        {"inbound_id": row.id},
        f"process_reply:{row.id}",
    )
    again = post(client, provider, body)
    assert again.status_code == 200
    assert again.get_json() == {"status": "duplicate", "id": row.id}
    assert counts() == (1, 1)


def test_mailgun_retry_with_a_new_token_is_a_duplicate(client):
    first = wp.mailgun(text="Hallo", message_id="<same@example.org>")
    retry = wp.mailgun(text="Hallo", message_id="<same@example.org>")
    assert post(client, "mailgun", first).status_code == 202
    assert post(client, "mailgun", retry).status_code == 200
    assert counts() == (1, 1)
    # the retry's token is remembered as well: with another message it is a replay
    assert WebhookReplayMarker.select().count() == 2
    forged = wp.mailgun(text="anders", timestamp=retry["timestamp"], token=retry["token"])
    assert post(client, "mailgun", forged).status_code == 406
    assert post(client, "mailgun", retry).status_code == 200  # answered by a read
    assert (counts(), WebhookReplayMarker.select().count()) == ((1, 1), 2)


def test_message_without_id_is_keyed_by_content(client):
    body = wp.mailgun(text="ohne id")
    del body["Message-Id"]
    body["message-headers"] = json.dumps([["From", wp.SENDER]])
    assert post(client, "mailgun", body).status_code == 202
    resent = {**body, **wp.mailgun()}  # fresh signature fields, same content
    resent.update({k: body[k] for k in body if k not in ("timestamp", "token", "signature")})
    resent.pop("Message-Id", None)
    assert post(client, "mailgun", resent).status_code == 200
    assert InboundMessage.get(InboundMessage.provider == "mailgun").message_key.startswith(
        "sha256:"
    )


def test_bad_mailgun_signature_is_401(client):
    body = wp.mailgun()
    body["signature"] = ("0" if body["signature"][0] != "0" else "1") + body["signature"][1:]
    assert post(client, "mailgun", body).status_code == 401
    missing = wp.mailgun()
    del missing["signature"]
    assert post(client, "mailgun", missing).status_code == 401
    assert counts() == (0, 0)


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_stale_or_future_mailgun_timestamp_is_406(client, offset):
    body = wp.mailgun(timestamp=int(time.time()) + offset)
    response = post(client, "mailgun", body)
    assert response.status_code == 406
    assert response.get_json()["error"] == "timestamp_stale"
    assert counts() == (0, 0)


def test_reused_mailgun_token_with_another_message_is_406(client):
    first = wp.mailgun(text="eins")
    assert post(client, "mailgun", first).status_code == 202
    replay = wp.mailgun(text="gefälscht", timestamp=first["timestamp"], token=first["token"])
    response = post(client, "mailgun", replay)
    assert response.status_code == 406
    assert response.get_json()["error"] == "token_reused"
    assert counts() == (1, 1)


def test_token_replay_guard_keeps_its_marker_in_the_database(client):
    first = wp.mailgun(text="eins")
    assert post(client, "mailgun", first).status_code == 202
    assert post(client, "mailgun", first).status_code == 200  # same message: duplicate
    replay = wp.mailgun(text="zwei", timestamp=first["timestamp"], token=first["token"])
    assert post(client, "mailgun", replay).status_code == 406
    marker = WebhookReplayMarker.get()
    assert (marker.provider, marker.token) == providers.replay_marker(first["token"])
    assert marker.message_key == InboundMessage.get().message_key
    assert WebhookReplayMarker.select().count() == 1 and counts() == (1, 1)


def test_postmark_needs_basic_auth(client):
    body = wp.postmark()
    assert client.post(POSTMARK, json=body).status_code == 401
    wrong = wp.postmark_auth(password="falsch")
    assert client.post(POSTMARK, json=body, headers=wrong).status_code == 401
    wrong_user = wp.postmark_auth(user="jemand")
    assert client.post(POSTMARK, json=body, headers=wrong_user).status_code == 401
    assert counts() == (0, 0)


def test_raw_needs_a_valid_signature(client):
    body = wp.raw()
    bad = {"Content-Type": "message/rfc822", "X-Psymatch-Signature": "sha256=" + "0" * 64}
    assert client.post(RAW, data=body, headers=bad).status_code == 401
    other = wp.raw_headers(body, secret="anderes-geheimnis")
    assert client.post(RAW, data=body, headers=other).status_code == 401
    assert client.post(RAW, data=body, headers={"Content-Type": "message/rfc822"}).status_code == (
        401
    )
    octet = {**wp.raw_headers(body), "Content-Type": "application/octet-stream"}
    assert client.post(RAW, data=body, headers=octet).status_code == 202
    assert counts() == (1, 1)


@pytest.mark.parametrize("provider", ["mailgun", "postmark", "raw"])
def test_oversize_is_413(client, provider):
    settings.override(WEBHOOK_MAX_BYTES=20_000)
    try:
        body = payload(provider, text="x" * 30_000)
        response = post(client, provider, body)
        assert response.status_code == 413
    finally:
        settings.override(WEBHOOK_MAX_BYTES=settings.Settings.WEBHOOK_MAX_BYTES)
    assert counts() == (0, 0)


def test_wrong_content_type_is_415(client):
    assert client.post(MAILGUN, json=wp.mailgun()).status_code == 415
    assert (
        client.post(
            POSTMARK, data=json.dumps(wp.postmark()), headers=wp.postmark_auth()
        ).status_code
        == 415
    )
    body = wp.raw()
    headers = {**wp.raw_headers(body), "Content-Type": "text/plain"}
    assert client.post(RAW, data=body, headers=headers).status_code == 415
    assert counts() == (0, 0)


def test_malformed_but_authentic_is_400(client):
    no_recipient = wp.mailgun()
    del no_recipient["recipient"]
    assert post(client, "mailgun", no_recipient).status_code == 400
    broken_headers = wp.mailgun()
    broken_headers["message-headers"] = "[[1, 2"
    assert post(client, "mailgun", broken_headers).status_code == 400
    for broken in ({"From": 5, "To": "a@b.de"}, ["a"], {"To": "a@b.de"}):
        assert post(client, "postmark", broken).status_code == 400
    truncated = json.dumps(wp.postmark())[:50]
    response = client.post(
        POSTMARK,
        data=truncated,
        headers={**wp.postmark_auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    wrong_type = wp.postmark()
    wrong_type["Headers"] = "X-Spam: no"
    assert post(client, "postmark", wrong_type).status_code == 400
    assert post(client, "raw", b"   ").status_code == 400
    assert post(client, "raw", b"Subject: ohne Absender\r\n\r\nText").status_code == 400
    assert counts() == (0, 0)


@pytest.mark.parametrize("provider", ["mailgun", "postmark", "raw"])
def test_database_unavailable_is_503_and_stores_nothing(client, migrated, provider):
    body = payload(provider)
    database.init("postgresql://nobody@127.0.0.1:1/nowhere?connect_timeout=1")
    try:
        response = post(client, provider, body)
    finally:
        database.init(migrated)
    assert response.status_code == 503
    assert response.get_json()["error"] == "database_unavailable"
    assert InboundMessage.select().count() == 0
    assert OutboxItem.select().count() == 0
    assert post(client, provider, body).status_code == 202  # the provider's retry


# --- processing ------------------------------------------------------------------------------


@pytest.fixture
def sent(clean_db):
    therapist = f.therapist()
    f.searches(3)
    created = create_anfrage(therapist.id, now=f.NOW)
    f.mark_sent(created.anfrage_id, f.NOW)
    patients = [p.patient_id for p in created.selection.patients]
    return therapist, created.anfrage_id, patients


def outcomes(anfrage_id: int) -> dict[int, str | None]:
    return {
        line.patient_id: line.antwortergebnis
        for line in TherapeutAnfragePatient.select().where(
            TherapeutAnfragePatient.therapeutenanfrage == anfrage_id
        )
    }


def test_unknown_anfrage_is_stored_then_goes_to_review(client):
    response = post(client, "mailgun", wp.mailgun(text="Ja, gerne.", subject="Ihre Mail"))
    assert response.status_code == 202
    inbound_id = response.get_json()["id"]
    assert process_reply(inbound_id) == "pruefung"
    row = InboundMessage.get_by_id(inbound_id)
    assert (row.status, row.review_reason) == ("pruefung", "Anfrage nicht erkannt")
    assert process_reply(inbound_id) == "pruefung"  # idempotent


@pytest.mark.parametrize("provider", ["mailgun", "postmark", "raw"])
def test_structured_reply_is_recorded_end_to_end(client, sent, provider):
    therapist, anfrage_id, patients = sent
    first, second, third = patients
    text = wp.reply_text(patients, {first: "ja", second: "kap", third: "ng"})
    response = post(client, provider, payload(provider, anfrage_id=anfrage_id, text=text))
    assert response.status_code == 202
    inbound_id = response.get_json()["id"]
    assert process_reply(inbound_id) == "verarbeitet"
    assert outcomes(anfrage_id) == {
        first: "angenommen",
        second: "abgelehnt_Kapazitaet",
        third: "abgelehnt_nicht_geeignet",
    }
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    assert anfrage.antworttyp == "teilweise_Annahme"
    row = InboundMessage.get_by_id(inbound_id)
    assert row.therapeutenanfrage_id == anfrage_id
    assert row.result["response"]["antworttyp"] == "teilweise_Annahme"
    assert row.result["decision"]["decisions"] == {
        str(first): "angenommen",
        str(second): "abgelehnt_Kapazitaet",
        str(third): "abgelehnt_nicht_geeignet",
    }
    cooling = type(therapist).get_by_id(therapist.id).naechster_kontakt_moeglich
    assert cooling is not None and cooling.isoformat() == row.result["response"]["cooling_until"]
    # the duplicate delivery and a second run of the actor change nothing
    assert post(client, provider, payload(provider, anfrage_id=anfrage_id, text=text)).status_code
    assert process_reply(inbound_id) == "verarbeitet"


def test_second_reply_to_an_answered_anfrage_goes_to_review(client, sent):
    _, anfrage_id, patients = sent
    text = wp.reply_text(patients, dict.fromkeys(patients, "kap"))
    ids = [
        post(client, "mailgun", wp.mailgun(anfrage_id=anfrage_id, text=text)).get_json()["id"]
        for _ in range(2)
    ]
    assert ops.process_inbound(ids[0], now=LATER) == "verarbeitet"
    assert ops.process_inbound(ids[1], now=LATER) == "pruefung"
    assert InboundMessage.get_by_id(ids[1]).review_reason.startswith("ALREADY_ANSWERED")


def test_out_of_office_moves_the_follow_up_and_the_anfrage_stays_pending(client, sent):
    _, anfrage_id, patients = sent
    body = wp.mailgun(
        anfrage_id=anfrage_id,
        subject="Abwesenheitsnotiz: AW: Anfrage",
        text="Ich bin bis zum 14.12. nicht in der Praxis.",
        extra_headers=[["Auto-Submitted", "auto-replied"]],
    )
    inbound_id = post(client, "mailgun", body).get_json()["id"]
    # domain §0.12: the return date moves the follow-up; nothing is answered
    assert process_reply(inbound_id) == "verarbeitet"
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    assert anfrage.antwort_datum is None and anfrage.nachverfolgung_ab is not None
    assert set(outcomes(anfrage_id).values()) == {None}


def test_ambiguous_reply_goes_to_review(client, sent):
    _, anfrage_id, patients = sent
    text = wp.reply_text(patients, {patients[0]: "both", patients[1]: "ja", patients[2]: "ja"})
    inbound_id = post(client, "postmark", wp.postmark(anfrage_id=anfrage_id, text=text)).get_json()[
        "id"
    ]
    assert process_reply(inbound_id) == "pruefung"
    row = InboundMessage.get_by_id(inbound_id)
    assert row.review_reason and row.result["decision"]["review"] is True
    assert Therapeutenanfrage.get_by_id(anfrage_id).antwort_datum is None
    # staff decide from the review queue
    decided = dict.fromkeys(patients, "abgelehnt_Kapazitaet")
    result = ops.decide_review(inbound_id, decided, "staff:anna", now=LATER)
    assert result.antworttyp == "vollstaendige_Ablehnung"
    assert InboundMessage.get_by_id(inbound_id).status == "verarbeitet"
    with pytest.raises(OperationError) as error:
        ops.decide_review(inbound_id, decided, "staff:anna", now=LATER)
    assert error.value.code == "ALREADY_PROCESSED"


def test_a_review_item_can_be_decided_for_some_patients_and_stay_open_for_the_others(client, sent):
    """ "1 ja, bei den anderen unsicher": staff record the one and keep the reply in review."""
    _, anfrage_id, patients = sent
    text = wp.reply_text(patients, {patients[0]: "both", patients[1]: "ja", patients[2]: "ja"})
    inbound_id = post(client, "postmark", wp.postmark(anfrage_id=anfrage_id, text=text)).get_json()[
        "id"
    ]
    assert process_reply(inbound_id) == "pruefung"
    first = ops.decide_review(
        inbound_id, {patients[1]: "angenommen"}, "staff:anna", now=LATER, partial=True
    )
    assert first.still_open == 2
    row = InboundMessage.get_by_id(inbound_id)
    assert row.status == "pruefung" and len(row.result["partial_decisions"]) == 1
    assert outcomes(anfrage_id)[patients[1]] == "angenommen"
    assert Therapeutenanfrage.get_by_id(anfrage_id).antwort_datum is None
    rest = {patients[0]: "abgelehnt_Kapazitaet", patients[2]: "angenommen"}
    final = ops.decide_review(inbound_id, rest, "staff:bernd", now=LATER, partial=True)
    assert final.still_open == 0 and final.antworttyp == "teilweise_Annahme"
    assert InboundMessage.get_by_id(inbound_id).status == "verarbeitet"


def test_dismiss_review(client):
    inbound_id = post(client, "raw", wp.raw(text="Werbung")).get_json()["id"]
    assert process_reply(inbound_id) == "pruefung"
    ops.dismiss_review(inbound_id, "staff:anna", "Werbung")
    assert InboundMessage.get_by_id(inbound_id).status == "ignoriert"


# --- one-click links -------------------------------------------------------------------------


def link(anfrage_id: int, patient_id: int, answer: str, now=None) -> str:
    return "/r/" + tokens.make_link_token(anfrage_id, patient_id, answer, now=now)


def test_link_get_shows_a_confirmation_page_and_stores_nothing(client, sent):
    _, anfrage_id, patients = sent
    response = client.get(link(anfrage_id, patients[0], "angenommen"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"A{anfrage_id}" in page and str(patients[0]) in page
    assert "Bestätigen" in page and 'method="post"' in page and "aufnehmen" in page
    assert counts() == (0, 0)


def test_link_clicks_are_recorded_when_every_patient_has_one(client, sent):
    _, anfrage_id, (first, second, third) = sent
    response = client.post(link(anfrage_id, first, "angenommen"))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Ihre Antwort ist vermerkt" in page and f"Patient {second}" in page
    assert Therapeutenanfrage.get_by_id(anfrage_id).antwort_datum is None
    # a second click for the same patient shows what is noted and changes nothing
    again = client.post(link(anfrage_id, first, "abgelehnt_Kapazitaet"))
    assert "Ja – ich kann" in again.get_data(as_text=True)
    assert (LinkKlick.select().count(), OutboxItem.select().count()) == (1, 1)
    noted = LinkKlick.get()
    assert (noted.patient_id, noted.answer, noted.remote_addr) == (first, "angenommen", "127.0.0.1")
    stored_addr = database.db.execute_sql('SELECT "remote_addr" FROM "link_klick"').fetchone()[0]
    assert crypto.is_token(stored_addr)  # the address is personal data: encrypted at rest
    assert OutboxItem.get().dedupe_key == f"process_link_klick:{noted.id}"
    client.post(link(anfrage_id, second, "abgelehnt_Kapazitaet"))
    last = client.post(link(anfrage_id, third, "abgelehnt_nicht_geeignet"))
    assert last.status_code == 200 and "Antwort erfasst" in last.get_data(as_text=True)
    assert outcomes(anfrage_id) == {
        first: "angenommen",
        second: "abgelehnt_Kapazitaet",
        third: "abgelehnt_nicht_geeignet",
    }
    clicks = list(LinkKlick.select())
    assert {c.status for c in clicks} == {"verarbeitet"} and len(clicks) == 3
    assert counts()[0] == 0  # clicks are no inbound messages
    queued = OutboxItem.select().where(OutboxItem.task == "process_link_klick")
    assert sorted(i.payload["klick_id"] for i in queued) == sorted(c.id for c in clicks)
    # the outbox items for the clicks run later and change nothing
    for click in clicks:
        assert process_link_klick(click.id) == "verarbeitet"
    # clicking again on an answered Anfrage shows the recorded outcome and stores nothing
    shown = client.get(link(anfrage_id, second, "angenommen"))
    assert "Erfasst für Patient" in shown.get_data(as_text=True)
    assert "keine Kapazität" in shown.get_data(as_text=True)
    assert client.post(link(anfrage_id, second, "angenommen")).status_code == 200
    assert LinkKlick.select().count() == 3


def test_email_answer_retires_waiting_clicks(client, sent):
    _, anfrage_id, patients = sent
    client.post(link(anfrage_id, patients[0], "angenommen"))
    text = wp.reply_text(patients, dict.fromkeys(patients, "kap"))
    inbound_id = post(client, "mailgun", wp.mailgun(anfrage_id=anfrage_id, text=text)).get_json()[
        "id"
    ]
    assert ops.process_inbound(inbound_id, now=LATER) == "verarbeitet"
    click = LinkKlick.get()
    assert click.status == "ignoriert"


def test_forged_and_expired_links(client, sent):
    _, anfrage_id, patients = sent
    good = link(anfrage_id, patients[0], "angenommen")
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    for method in (client.get, client.post):
        response = method(forged)
        assert response.status_code == 401 and "ungültig" in response.get_data(as_text=True)
        assert method("/r/nonsense").status_code == 401
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    expired = link(anfrage_id, patients[0], "angenommen", now=old)
    for method in (client.get, client.post):
        response = method(expired)
        assert response.status_code == 406
        assert f"A{anfrage_id}" in response.get_data(as_text=True)
        assert "abgelaufen" in response.get_data(as_text=True)
    assert counts() == (0, 0)


def test_link_for_unknown_anfrage_is_404(client):
    assert client.get(link(424242, 7, "angenommen")).status_code == 404
    assert client.post(link(424242, 7, "angenommen")).status_code == 404
    assert counts() == (0, 0)


def test_concurrent_deliveries_sharing_a_token_store_one_message(clean_db):
    """Racing transactions: the token's marker and the message are decided once."""
    from concurrent.futures import ThreadPoolExecutor

    message = reply_parse.message_from_parts(subject="s", sender="a@b.de", recipients=[])

    def deliver(token: str, key: str):
        with database.connection():
            try:
                row, created = ops.store_inbound(
                    "mailgun",
                    key,
                    "{}",
                    None,
                    None,
                    None,
                    message=message,
                    replay=providers.replay_marker(token),
                )
            except ops.TokenReused:
                return False, None, False
            return True, row.id, created

    with ThreadPoolExecutor(4) as pool:
        for round_ in range(15):
            token, key = f"t{round_}", f"mid:m{round_}"
            same = list(pool.map(lambda _, t=token, k=key: deliver(t, k), range(4)))
            assert all(allowed for allowed, _, _ in same)
            assert sum(created for _, _, created in same) == 1
            assert len({row_id for _, row_id, _ in same}) == 1
            keys = [f"mid:x{round_}-{i}" for i in range(4)]
            other = list(pool.map(lambda k, t=f"u{round_}": deliver(t, k), keys))
            assert sum(allowed for allowed, _, _ in other) == 1
            assert [created for allowed, _, created in other if allowed] == [True]
    assert counts() == (30, 30)
    assert WebhookReplayMarker.select().count() == 30


def test_the_stored_message_is_provider_neutral(client, sent):
    """Processing reads the message decoded at the webhook, never the provider's payload."""
    _, anfrage_id, patients = sent
    text = wp.reply_text(patients, dict.fromkeys(patients, "kap"))
    ids = {}
    for provider in ("mailgun", "postmark", "raw"):
        body = payload(provider, anfrage_id=anfrage_id, text=text, message_id=f"<n-{provider}@x>")
        ids[provider] = post(client, provider, body).get_json()["id"]
    decoded = {p: ops.stored_message(InboundMessage.get_by_id(i)) for p, i in ids.items()}
    for message in decoded.values():
        assert isinstance(message, reply_parse.Message)
        assert wp.sender_of(anfrage_id) in message.sender and "Kapazität" in message.text
        assert reply_parse.identify_anfrage(message) == anfrage_id
    # the raw payload is kept for audit only: processing does not need it
    InboundMessage.update(raw_payload="{}").where(InboundMessage.id == ids["raw"]).execute()
    assert process_reply(ids["raw"]) == "verarbeitet"
    assert outcomes(anfrage_id) == dict.fromkeys(patients, "abgelehnt_Kapazitaet")


def test_a_message_without_decoded_form_is_marked_fehler(client):
    """A delivery the webhook could not decode is kept (nothing lost) and marked ``fehler``."""
    row, created = ops.store_inbound(
        "raw", "mid:kaputt", "{}", wp.SENDER, None, "x", message=None, unreadable="Bad header"
    )
    assert created and process_reply(row.id) == "fehler"
    assert InboundMessage.get_by_id(row.id).review_reason == ("Nachricht nicht lesbar: Bad header")


def test_no_bench_route_in_the_app(app):
    rules = [rule.rule for rule in app.url_map.iter_rules()]
    assert not [rule for rule in rules if "bench" in rule]
    assert app.test_client().get("/bench/bare").status_code == 404
