"""Who wrote the reply (issue 14.1): a reply is recorded automatically only when it names
its Anfrage with proof (signed reply address or signed Message-ID) and comes from the
practice's address (or one staff confirmed). Everything else waits in review, with the
reason; the sender is stored with the message and named in the audit row."""

from __future__ import annotations

import pytest

from db.models import (
    AuditLog,
    InboundMessage,
    OutboxItem,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from operations import replies, senders
from operations.bundles import create_anfrage
from operations.emailing import headers
from operations.errors import OperationError
from psymatch import settings
from tests import factories as f
from tests import webhook_payloads as wp
from webhooks import inbound
from webhooks.app import create_app
from workers.reply_actors import process_reply

OUTSIDER = "mallory@evil.example"
ATTACK_TEXT = "Ja, ich nehme Patient {patient} gerne auf"
RAW = "/webhooks/inbound/raw"


@pytest.fixture
def client(clean_db):
    app = create_app({"TESTING": True})
    inbound.register(app)
    return app.test_client()


@pytest.fixture
def sent(clean_db):
    """A sent one-patient Anfrage: "Ja, Patient N" is an unambiguous acceptance."""
    therapist = f.therapist(email="Praxis.Berg@Example.org ")
    f.searches(1)
    created = create_anfrage(therapist.id, now=f.NOW)
    f.mark_sent(created.anfrage_id, f.NOW)
    return therapist, created.anfrage_id, created.selection.patients[0].patient_id


def deliver(client, *, sender: str, text: str, anfrage_id=None, **kwargs) -> int:
    body = wp.raw(anfrage_id=anfrage_id, sender=sender, text=text, **kwargs)
    response = client.post(RAW, data=body, headers=wp.raw_headers(body))
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["id"]


def nothing_recorded(therapist, anfrage_id: int) -> None:
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    assert anfrage.antwort_datum is None and anfrage.antworttyp is None
    lines = TherapeutAnfragePatient.select().where(
        TherapeutAnfragePatient.therapeutenanfrage == anfrage_id
    )
    assert {(line.status, line.antwortergebnis) for line in lines} == {("anstehend", None)}
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich is None  # no cooling
    tasks = {item.task for item in OutboxItem.select()}
    assert "send_acceptance_confirmation" not in tasks
    assert not AuditLog.select().where(AuditLog.action == "record_response").exists()


def recorded(therapist, anfrage_id: int, sender: str) -> None:
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    assert anfrage.antworttyp == "vollstaendige_Annahme"
    assert Therapist.get_by_id(therapist.id).naechster_kontakt_moeglich is not None
    assert "send_acceptance_confirmation" in {item.task for item in OutboxItem.select()}
    row = AuditLog.get(AuditLog.action == "record_response")
    assert (row.actor, row.details["source"], row.details["sender"]) == ("email", "email", sender)


@pytest.mark.parametrize(
    "how",
    [
        {"subject": "AW: Suche Psychotherapieplätze - Ref: A{anfrage}"},
        {"extra_headers": {"In-Reply-To": "<anfrage-{anfrage}.anfrage@{domain}>"}},
    ],
    ids=["subject-only", "guessed-in-reply-to"],
)
def test_the_attack_from_an_outside_address_without_proof_goes_to_review(client, sent, how):
    therapist, anfrage_id, patient = sent
    domain = settings.get().REPLY_DOMAIN
    kwargs = {
        key: (
            value.format(anfrage=anfrage_id, domain=domain)
            if isinstance(value, str)
            else {k: v.format(anfrage=anfrage_id, domain=domain) for k, v in value.items()}
        )
        for key, value in how.items()
    }
    inbound_id = deliver(
        client, sender=OUTSIDER, text=ATTACK_TEXT.format(patient=patient), **kwargs
    )
    assert process_reply(inbound_id) == "pruefung"
    row = InboundMessage.get_by_id(inbound_id)
    assert row.therapeutenanfrage_id == anfrage_id  # recognised for the reviewer ...
    assert "nicht signiert" in row.review_reason  # ... but not as proof
    assert row.sender == OUTSIDER
    assert row.result["absender"] == OUTSIDER
    assert row.result["decision"]["decisions"] == {str(patient): "angenommen"}
    nothing_recorded(therapist, anfrage_id)


def test_subject_only_from_the_practice_itself_goes_to_review_too(client, sent):
    therapist, anfrage_id, patient = sent
    inbound_id = deliver(
        client,
        sender="praxis.berg@example.org",
        text=ATTACK_TEXT.format(patient=patient),
        subject=f"AW: Ref: A{anfrage_id}",
    )
    assert process_reply(inbound_id) == "pruefung"
    reason = InboundMessage.get_by_id(inbound_id).review_reason
    assert reason == "Anfrage nur am Betreff erkannt, nicht signiert"
    nothing_recorded(therapist, anfrage_id)


def test_legitimate_reply_to_the_signed_address_is_recorded(client, sent):
    therapist, anfrage_id, patient = sent
    inbound_id = deliver(
        client,
        anfrage_id=anfrage_id,
        sender="praxis.berg@example.org",
        text=ATTACK_TEXT.format(patient=patient),
    )
    assert process_reply(inbound_id) == "verarbeitet"
    row = InboundMessage.get_by_id(inbound_id)
    assert row.sender == "praxis.berg@example.org"
    assert row.result["erkannt_ueber"] == "antwortadresse"
    recorded(therapist, anfrage_id, "praxis.berg@example.org")


def test_reply_quoting_the_signed_message_id_is_recorded(client, sent):
    therapist, anfrage_id, patient = sent
    inbound_id = deliver(
        client,
        sender="PRAXIS.BERG@example.org",
        text=ATTACK_TEXT.format(patient=patient),
        extra_headers={"In-Reply-To": headers.message_id("anfrage", anfrage_id)},
    )
    assert process_reply(inbound_id) == "verarbeitet"
    assert InboundMessage.get_by_id(inbound_id).result["erkannt_ueber"] == "message_id"
    recorded(therapist, anfrage_id, "praxis.berg@example.org")


def test_signed_address_but_a_foreign_sender_goes_to_review(client, sent):
    therapist, anfrage_id, patient = sent
    inbound_id = deliver(
        client, anfrage_id=anfrage_id, sender=OUTSIDER, text=ATTACK_TEXT.format(patient=patient)
    )
    assert process_reply(inbound_id) == "pruefung"
    row = InboundMessage.get_by_id(inbound_id)
    assert row.review_reason == f"Absender {OUTSIDER} gehört nicht zur Praxis von A{anfrage_id}"
    nothing_recorded(therapist, anfrage_id)


def test_a_colleague_of_the_practice_answers_from_its_address(client, clean_db):
    """Therapists sharing one email form one practice: the address answers for all."""
    owner = f.therapist(email="team@praxis-nord.example")
    colleague = f.therapist(email="Team@Praxis-Nord.example")
    f.searches(1)
    created = create_anfrage(colleague.id, now=f.NOW)
    f.mark_sent(created.anfrage_id, f.NOW)
    patient = created.selection.patients[0].patient_id
    senders.confirm_sender(owner.id, "Sekretariat <empfang@praxis-nord.example>", "staff:anna")
    inbound_id = deliver(
        client,
        anfrage_id=created.anfrage_id,
        sender="empfang@praxis-nord.example",
        text=ATTACK_TEXT.format(patient=patient),
    )
    assert process_reply(inbound_id) == "verarbeitet"
    therapist = Therapist.get_by_id(Therapeutenanfrage.get_by_id(created.anfrage_id).therapist_id)
    recorded(therapist, created.anfrage_id, "empfang@praxis-nord.example")


def test_staff_confirmed_address_is_recorded_and_audited(client, sent):
    therapist, anfrage_id, patient = sent
    first = deliver(
        client,
        anfrage_id=anfrage_id,
        sender="dr.berg@privat.example",
        text="Hallo, ich melde mich morgen.",
    )
    assert process_reply(first) == "pruefung"
    assert "gehört nicht zur Praxis" in InboundMessage.get_by_id(first).review_reason
    confirmed = senders.confirm_sender(therapist.id, " Dr.Berg@Privat.example ", "staff:anna")
    assert confirmed == ["dr.berg@privat.example"]
    assert senders.confirm_sender(therapist.id, "dr.berg@privat.example", "staff:anna") == confirmed
    audit = list(AuditLog.select().where(AuditLog.action == "confirm_sender"))
    assert [(a.actor, a.entity_id, a.details) for a in audit] == [
        ("staff:anna", str(therapist.id), {"address": "dr.berg@privat.example"})
    ]
    inbound_id = deliver(
        client,
        anfrage_id=anfrage_id,
        sender="dr.berg@privat.example",
        text=ATTACK_TEXT.format(patient=patient),
    )
    assert process_reply(inbound_id) == "verarbeitet"
    recorded(therapist, anfrage_id, "dr.berg@privat.example")


def test_confirm_sender_refuses_what_is_no_address(clean_db):
    therapist = f.therapist()
    for bad in ("", "kein-at", "a@x.example, b@y.example"):
        with pytest.raises(OperationError) as error:
            senders.confirm_sender(therapist.id, bad, "staff:anna")
        assert error.value.code == "INVALID_ADDRESS"
    with pytest.raises(OperationError) as error:
        senders.confirm_sender(therapist.id + 99, "a@x.example", "staff:anna")
    assert error.value.code == "NOT_FOUND"


def test_review_decision_names_the_sender_in_the_audit_row(client, sent):
    therapist, anfrage_id, patient = sent
    inbound_id = deliver(
        client,
        sender=OUTSIDER,
        text=ATTACK_TEXT.format(patient=patient),
        subject=f"AW: Ref: A{anfrage_id}",
    )
    assert process_reply(inbound_id) == "pruefung"
    replies.decide_review(inbound_id, {patient: "abgelehnt_Kapazitaet"}, "staff:anna")
    row = AuditLog.get(AuditLog.action == "record_response")
    assert (row.actor, row.details["source"], row.details["sender"]) == (
        "staff:anna",
        "email_review",
        OUTSIDER,
    )
