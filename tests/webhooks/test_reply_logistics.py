"""Issue 17 through the webhook: the decision is recorded, logistics go to the notes and
the open questions, the words behind a reading are stored and shown in the review queue,
and a form that disagrees with the text goes to review (the wrong acceptance of the issue).
"""

from __future__ import annotations

import datetime as dt

import pytest

from console import queries
from db.models import AuditLog, InboundMessage, TherapeutAnfragePatient, Therapeutenanfrage
from operations import replies as ops
from operations.bundles import create_anfrage
from operations.errors import OperationError
from tests import factories as f
from tests import webhook_payloads as wp
from webhooks import inbound
from webhooks.app import create_app

LATER = f.NOW + dt.timedelta(hours=2)


@pytest.fixture
def client(clean_db):
    app = create_app({"TESTING": True})
    inbound.register(app)
    return app.test_client()


@pytest.fixture
def sent(clean_db):
    therapist = f.therapist()
    f.searches(2)
    created = create_anfrage(therapist.id, now=f.NOW)
    f.mark_sent(created.anfrage_id, f.NOW)
    return created.anfrage_id, [p.patient_id for p in created.selection.patients]


def deliver(client, anfrage_id: int, text: str) -> InboundMessage:
    body = wp.postmark(anfrage_id=anfrage_id, text=text)
    response = client.post("/webhooks/inbound/postmark", json=body, headers=wp.postmark_auth())
    assert response.status_code == 202
    row_id = response.get_json()["id"]
    ops.process_inbound(row_id, now=LATER)
    return InboundMessage.get_by_id(row_id)


def outcomes(anfrage_id: int) -> dict:
    return {
        r.patient_id: r.antwortergebnis
        for r in TherapeutAnfragePatient.select().where(
            TherapeutAnfragePatient.therapeutenanfrage == anfrage_id
        )
    }


def test_yes_with_a_question_is_recorded_and_the_question_is_open(client, sent):
    anfrage_id, patients = sent
    text = "Gerne beide! Wann können Sie anrufen? Ich bin Di 8–9 erreichbar."
    row = deliver(client, anfrage_id, text)
    assert row.status == "verarbeitet", row.review_reason
    assert set(outcomes(anfrage_id).values()) == {"angenommen"}
    notes = Therapeutenanfrage.get_by_id(anfrage_id).notizen
    assert "Hinweis aus der Antwort: Wann können Sie anrufen? / Ich bin Di 8–9 erreichbar" in notes
    assert row.result["decision"]["evidence"] == ["'Gerne beide': Annahme für all"]
    [question] = ops.open_questions(now=LATER)
    assert question["inbound_id"] == row.id and question["anfrage_id"] == anfrage_id
    assert question["text"] == "Wann können Sie anrufen?"
    assert question["received_at"] == row.received_at and question["therapist"]
    # staff answer it: it leaves the list, once
    ops.close_open_question(row.id, "Anna", now=LATER)
    assert ops.open_questions(now=LATER) == []
    with pytest.raises(OperationError) as again:
        ops.close_open_question(row.id, "Anna", now=LATER)
    assert again.value.code == "ALREADY_PROCESSED"
    assert AuditLog.select().where(AuditLog.action == "close_open_question").count() == 1


@pytest.mark.parametrize(
    ("inbound_id", "actor", "code"),
    [(999_999, "Anna", "NOT_FOUND"), ("row", " ", "ACTOR_REQUIRED")],
)
def test_close_open_question_refusals(client, sent, inbound_id, actor, code):
    anfrage_id, _ = sent
    row = deliver(client, anfrage_id, "Leider keine Kapazität.")
    with pytest.raises(OperationError) as caught:
        ops.close_open_question(row.id if inbound_id == "row" else inbound_id, actor)
    assert caught.value.code == code
    # a reply without question is no open question either
    with pytest.raises(OperationError) as none:
        ops.close_open_question(row.id, "Anna")
    assert none.value.code == "NOT_FOUND"


def test_form_ja_above_a_refusal_of_everyone_goes_to_review_with_its_words(client, sent):
    anfrage_id, patients = sent
    text = wp.reply_text(patients, {patients[0]: "ja"}).replace(
        "anbei meine Antwort.", "Leider kann ich momentan niemanden aufnehmen."
    )
    row = deliver(client, anfrage_id, text)
    assert row.status == "pruefung"
    assert "form says angenommen" in row.review_reason
    assert set(outcomes(anfrage_id).values()) == {None}
    [item] = [i for i in queries.reviews() if i.get("inbound_id") == row.id]
    assert item["evidence"] and "niemanden" in " ".join(item["evidence"])


def test_silence_on_the_others_declines_them_for_capacity(client, sent):
    anfrage_id, patients = sent
    row = deliver(client, anfrage_id, f"Patient {patients[1]} nehme ich gerne.")
    assert row.status == "verarbeitet", row.review_reason
    assert outcomes(anfrage_id) == {
        patients[0]: "abgelehnt_Kapazitaet",
        patients[1]: "angenommen",
    }
    assert any("§0.14" in e for e in row.result["decision"]["evidence"])


def test_a_later_answer_announced_records_the_acceptance_and_leaves_the_rest_open(client):
    therapist = f.therapist()
    f.searches(3)
    created = create_anfrage(therapist.id, now=f.NOW)
    f.mark_sent(created.anfrage_id, f.NOW)
    anfrage_id = created.anfrage_id
    first, second, third = [p.patient_id for p in created.selection.patients]
    row = deliver(client, anfrage_id, f"Patient {first} gerne, zu den anderen melde ich mich.")
    assert row.status == "verarbeitet", row.review_reason
    assert outcomes(anfrage_id) == {first: "angenommen", second: None, third: None}
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    assert anfrage.antwort_datum is None and anfrage.antworttyp is None  # still pending
    assert "Teilantwort" in anfrage.notizen
    assert row.result["response"]["antworttyp"] == "offen"
    assert row.result["response"]["still_open"] == 2
    # the announced answer: it names the rest; the counters count the whole bundle
    later = deliver(client, anfrage_id, "Für die beiden anderen habe ich leider keinen Platz.")
    assert later.status == "verarbeitet", later.review_reason
    assert outcomes(anfrage_id) == {
        first: "angenommen",
        second: "abgelehnt_Kapazitaet",
        third: "abgelehnt_Kapazitaet",
    }
    anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
    assert anfrage.antworttyp == "teilweise_Annahme"
    assert (anfrage.angenommen_anzahl, anfrage.abgelehnt_anzahl) == (1, 2)
    assert anfrage.keine_antwort_anzahl == 0


def test_today_lists_the_open_question_and_marks_it_done(client, sent):
    from console.today import TodayPanel

    anfrage_id, _ = sent
    row = deliver(client, anfrage_id, "Gerne beide! Wann können Sie anrufen?")
    panel = TodayPanel(today=LATER.date(), now=LATER, actor="anna", refresh_seconds=0)
    assert panel.counts()["questions"] == 1
    assert "Wann können Sie anrufen?" in panel.text()
    panel.buttons[("questions", row.id)].click()
    assert "Frage als erledigt markiert" in panel.status.value
    assert panel.counts()["questions"] == 0
    assert AuditLog.get(AuditLog.action == "close_open_question").actor == "anna"


def test_the_review_queue_shows_the_words_a_reading_rests_on(client, sent):
    from console.responses import ReviewQueuePanel

    anfrage_id, _ = sent
    row = deliver(client, anfrage_id, "Vielleicht kann ich ab Januar jemanden nehmen.")
    assert row.status == "pruefung"
    panel = ReviewQueuePanel(actor="anna")
    panel.item_select.value = ("email", row.id)
    words = row.result["decision"]["evidence"]
    assert words and all(w in panel.reason.value or w.replace("'", "&#x27;") in panel.reason.value
                          for w in words)  # fmt: skip
    assert "Gelesen aus" in panel.reason.value
