"""Conflicts done right (issue 15 points 3 and 6): the conflict notice's alternatives are a
real Anfrage the therapist answers like any other, conflicts have a settled state, and a
reassignment sends each therapist and the patient the email that matches the final state."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from db.models import (
    AuditLog,
    Email,
    KonfliktErledigung,
    OutboxItem,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from operations import conflicts as ops
from operations import replies
from operations.bundles import create_anfrage
from operations.errors import OperationError
from operations.responses import record_response
from operations.sending import (
    queue_acceptance_confirmation,
    queue_conflict_notice,
    queue_placement_email,
)
from operations.snapshot import email_last_queued
from psymatch import settings
from psymatch.domain import reply_parse, tokens
from tests import factories as f
from tests import webhook_payloads as wp
from webhooks import inbound
from webhooks.app import create_app

NOW = f.NOW
LATER = NOW + dt.timedelta(hours=2)


def sent(therapist) -> tuple[int, list[int]]:
    created = create_anfrage(therapist.id, now=NOW)
    f.mark_sent(created.anfrage_id, NOW)
    return created.anfrage_id, [p.patient_id for p in created.selection.patients]


def run_outbox(now=LATER) -> list[str]:
    """Run the open outbox items of the emails that follow answers and reassignments, as
    the workers would (rendering only; nothing is transmitted); returns their tasks."""
    from operations import conflicts

    handlers = {
        "send_conflict_notice": lambda p: queue_conflict_notice(**p, now=now),
        "send_acceptance_confirmation": lambda p: queue_acceptance_confirmation(**p, now=now),
        "send_placement_email": lambda p: queue_placement_email(**p, now=now),
        "send_reassignment_confirmation": lambda p: conflicts.queue_reassignment_confirmation(
            **p, now=now
        ),
        "send_reassignment_withdrawal": lambda p: conflicts.queue_reassignment_withdrawal(
            **p, now=now
        ),
    }
    done = []
    for item in (
        OutboxItem.select()
        .where((OutboxItem.status == "offen") & OutboxItem.task.in_(list(handlers)))
        .order_by(OutboxItem.id)
    ):
        handlers[item.task](dict(item.payload))
        OutboxItem.update(status="erledigt").where(OutboxItem.id == item.id).execute()
        done.append(item.task)
    return done


@pytest.fixture
def parallel_cap():
    before = settings.get().MAX_PARALLEL_ANFRAGEN
    yield lambda value: settings.override(MAX_PARALLEL_ANFRAGEN=value)
    settings.override(MAX_PARALLEL_ANFRAGEN=before)


@pytest.fixture
def conflict(clean_db, parallel_cap):
    """Patient X accepted by Erste first, then by Zweite (a conflict). Zweite declined D
    (for capacity: no exclusion, D is in no pending bundle); E has excluded Zweite; C is at
    the parallel cap (1) in Dritte's pending bundle; N is the one patient Zweite may be
    offered instead."""
    erste = f.therapist(vorname="Anna", nachname="Erste")
    zweite = f.therapist(vorname="Berta", nachname="Zweite", plz="10117")
    dritte = f.therapist(vorname="Carla", nachname="Dritte")
    x, d = f.search(days_waiting=40), f.search(days_waiting=30)
    a1, _ = sent(erste)
    a2, _ = sent(zweite)
    record_response(a1, {x.patient_id: "angenommen", d.patient_id: "abgelehnt_sonstiges"}, now=NOW)
    c = f.search(days_waiting=25)
    # D is not in Dritte's bundle: only Zweite's "no" keeps D out of the offer
    Platzsuche.update(ausgeschlossene_therapeuten=[dritte.id]).where(
        Platzsuche.id == d.id
    ).execute()
    a3, in_a3 = sent(dritte)
    assert in_a3 == [c.patient_id]
    n = f.search(days_waiting=5)
    e = f.search(days_waiting=50)
    Platzsuche.update(ausgeschlossene_therapeuten=[zweite.id]).where(
        Platzsuche.id == e.id
    ).execute()
    parallel_cap(1)
    record_response(
        a2, {x.patient_id: "angenommen", d.patient_id: "abgelehnt_Kapazitaet"}, now=LATER
    )
    return {
        "erste": erste,
        "zweite": zweite,
        "a1": a1,
        "a2": a2,
        "x": x,
        "d": d,
        "c": c,
        "n": n,
        "e": e,
    }


# --- the notice's alternatives are a real Anfrage --------------------------------------------


def test_the_notice_offers_a_real_anfrage_without_declined_excluded_or_capped_patients(conflict):
    c = conflict
    notice = queue_conflict_notice(c["a2"], [c["x"].patient_id], now=LATER)
    offer = Therapeutenanfrage.get(Therapeutenanfrage.konflikt_anfrage_id == c["a2"])
    lines = list(offer.zeilen.order_by(TherapeutAnfragePatient.position_in_anfrage))
    assert [line.patient_id for line in lines] == [c["n"].patient_id]
    assert {line.status for line in lines} == {"anstehend"}
    assert (offer.therapist_id, offer.gesendet_datum, offer.email_id) == (
        c["zweite"].id,
        LATER,
        notice.id,
    )
    assert offer.antwort_datum is None and offer.anfragegroesse == 1
    assert notice.art == "konflikt" and notice.therapeutenanfrage_id == offer.id
    text = notice.inhalt.inhalt_text
    assert f"Patient {c['x'].patient_id} hat inzwischen leider bereits" in text
    assert f"Antwort zu Ref: A{offer.id}" in text and "Antwort mit einem Klick" in text
    for left_out in ("d", "e", "c"):
        assert f"Patient {c[left_out].patient_id}\n" not in text
    assert notice.betreff.endswith(f"Ref: A{offer.id}")
    # the therapist keeps cooling and the notice does not count as an inquiry (rule 4)
    assert Therapist.get_by_id(c["zweite"].id).naechster_kontakt_moeglich > LATER.date()
    assert email_last_queued(c["zweite"].email) is None
    # a repeated message finds the notice and creates nothing
    assert queue_conflict_notice(c["a2"], [c["x"].patient_id], now=LATER).id == notice.id
    assert (
        Therapeutenanfrage.select()
        .where(Therapeutenanfrage.konflikt_anfrage_id.is_null(False))
        .count()
        == 1
    )
    audit = AuditLog.get(AuditLog.action == "conflict_notice")
    assert audit.details["alternativen_anfrage"] == offer.id


def _reply_headers(notice: Email) -> dict:
    from operations.emailing import headers

    return {
        "to": tokens.reply_address(notice.therapeutenanfrage_id),
        "in_reply_to": headers.message_id("anfrage", notice.therapeutenanfrage_id),
    }


@pytest.mark.parametrize("how", ["link", "reply"])
def test_yes_to_an_alternative_is_recorded_like_any_reply(conflict, how):
    c = conflict
    notice = queue_conflict_notice(c["a2"], [c["x"].patient_id], now=LATER)
    offer_id = notice.therapeutenanfrage_id
    app = create_app({"TESTING": True})
    inbound.register(app)
    client = app.test_client()
    if how == "link":
        yes = re.search(
            r"Ja, ich kann ein Erstgespräch anbieten:\s+(\S+)", notice.inhalt.inhalt_text
        )
        path = "/r/" + yes.group(1).rsplit("/r/", 1)[1]
        assert client.post(path).status_code == 200
    else:
        headers = _reply_headers(notice)
        body = wp.raw(
            sender=c["zweite"].email,
            text=f"Ja, ich nehme Patient {c['n'].patient_id} gerne auf.",
            subject=f"AW: {notice.betreff}",
            extra_headers={"In-Reply-To": headers["in_reply_to"]},
        ).replace(b"info@antwort.psymatch.example", headers["to"].encode())
        response = client.post("/webhooks/inbound/raw", data=body, headers=wp.raw_headers(body))
        assert response.status_code == 202, response.get_data(as_text=True)
        inbound_id = response.get_json()["id"]
        assert reply_parse.locate_anfrage  # the reply names the offer by its reply address
        assert replies.process_inbound(inbound_id, now=LATER) == "verarbeitet"
    offer = Therapeutenanfrage.get_by_id(offer_id)
    assert offer.antworttyp == "vollstaendige_Annahme"
    assert Platzsuche.get_by_id(c["n"].id).vermittelter_therapeut_id == c["zweite"].id
    action = AuditLog.get(
        (AuditLog.action == "record_response") & (AuditLog.entity_id == str(offer_id))
    )
    assert action.details["source"] == ("link" if how == "link" else "email")


def test_no_alternative_anfrage_while_the_practice_has_another_pending(conflict, parallel_cap):
    c = conflict
    parallel_cap(5)  # N stays eligible: only the practice rule keeps the offer back
    colleague = f.therapist(email=c["zweite"].email, nachname="Kollegin")
    Therapist.update(naechster_kontakt_moeglich=None).where(
        Therapist.id == c["zweite"].id
    ).execute()
    pending = create_anfrage(colleague.id, now=LATER)  # one open inquiry per practice
    Therapist.update(naechster_kontakt_moeglich=LATER.date() + dt.timedelta(days=28)).where(
        Therapist.id == c["zweite"].id
    ).execute()
    notice = queue_conflict_notice(c["a2"], [c["x"].patient_id], now=LATER)
    assert "keine weitere passende Patientin" in notice.inhalt.inhalt_text
    assert notice.therapeutenanfrage_id == c["a2"]
    assert (
        not Therapeutenanfrage.select()
        .where(Therapeutenanfrage.konflikt_anfrage_id.is_null(False))
        .exists()
    )
    assert Therapeutenanfrage.get_by_id(pending.anfrage_id).gesendet_datum is None


def test_an_inactive_therapist_gets_the_notice_without_an_anfrage(conflict):
    c = conflict
    Therapist.update(status="inaktiv").where(Therapist.id == c["zweite"].id).execute()
    notice = queue_conflict_notice(c["a2"], [c["x"].patient_id], now=LATER)
    assert "keine weitere passende Patientin" in notice.inhalt.inhalt_text
    assert Therapeutenanfrage.select().count() == 3


# --- listing and settling ------------------------------------------------------------------


def nothing_written(before: tuple) -> None:
    assert state() == before


def state() -> tuple:
    return (
        AuditLog.select().count(),
        KonfliktErledigung.select().count(),
        OutboxItem.select().count(),
        tuple(
            (s.id, s.vermittelter_therapeut_id, s.notizen, s.status)
            for s in Platzsuche.select().order_by(Platzsuche.id)
        ),
        tuple(
            (line.id, line.status)
            for line in TherapeutAnfragePatient.select().order_by(TherapeutAnfragePatient.id)
        ),
    )


def test_settled_conflicts_leave_the_default_list_and_reopen_on_a_new_acceptance(conflict):
    c = conflict
    search_id = c["x"].id
    [open_one] = ops.conflicts()
    assert (open_one["platzsuche_id"], open_one["state"]) == (search_id, "offen")
    assert ops.conflicts("erledigt") == []
    result = ops.settle_conflict(search_id, actor="anna", notiz="telefonisch geklärt", now=LATER)
    assert result == {
        "platzsuche_id": search_id,
        "art": "gewinner_bestaetigt",
        "therapist_id": c["erste"].id,
    }
    assert ops.conflicts() == []
    [settled] = ops.conflicts("erledigt")
    assert settled["erledigung"]["erledigt_von"] == "anna"
    assert settled["erledigung"]["label"] == "Erste Zusage bestätigt"
    assert settled["erledigung"]["erledigt_am"] == LATER
    assert len(ops.conflicts("alle")) == 1
    audit = AuditLog.get(AuditLog.action == "settle_conflict")
    assert (audit.actor, audit.entity_id, audit.reason) == (
        "anna",
        str(search_id),
        "telefonisch geklärt",
    )
    # a third therapist accepts X as well: the conflict is open again
    third = f.therapist(nachname="Vierte")
    a4 = create_anfrage(third.id, now=LATER)
    f.mark_sent(a4.anfrage_id, LATER)
    line = (
        TherapeutAnfragePatient.select()
        .where(TherapeutAnfragePatient.therapeutenanfrage == a4.anfrage_id)
        .first()
    )
    TherapeutAnfragePatient.create(
        therapeutenanfrage=a4.anfrage_id,
        platzsuche=search_id,
        patient=c["x"].patient_id,
        position_in_anfrage=line.position_in_anfrage + 10,
        status="anderweitig_vermittelt",
    )
    answers = {
        row.patient_id: "abgelehnt_Kapazitaet"
        for row in Therapeutenanfrage.get_by_id(a4.anfrage_id).zeilen
    }
    answers[c["x"].patient_id] = "angenommen"
    record_response(a4.anfrage_id, answers, now=LATER)
    assert [x["platzsuche_id"] for x in ops.conflicts()] == [search_id]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"actor": " "}, "ACTOR_REQUIRED"),
        ({"actor": "anna", "art": "neu_zugewiesen"}, "INVALID_HOW"),
        ({"actor": "anna", "art": "sonstiges"}, "NOTE_REQUIRED"),
        ({"actor": "anna", "art": "sonstiges", "notiz": "  "}, "NOTE_REQUIRED"),
        ({"actor": "anna", "notiz": "x" * 2001}, "NOTE_TOO_LONG"),
        ({"actor": "anna", "notiz": 5}, "INVALID_NOTE"),
        ({"actor": "anna", "platzsuche_id": 999_999}, "PLATZSUCHE_NOT_FOUND"),
        ({"actor": "anna", "platzsuche_id": "1"}, "PLATZSUCHE_NOT_FOUND"),
        ({"actor": "anna", "platzsuche_id": "n"}, "NO_CONFLICT"),
    ],
)
def test_settling_refuses_bad_input_and_writes_nothing(conflict, kwargs, code):
    kwargs = dict(kwargs)
    target = kwargs.pop("platzsuche_id", "x")
    search_id = conflict[target].id if target in ("x", "n") else target
    before = state()
    with pytest.raises(OperationError) as error:
        ops.settle_conflict(search_id, **kwargs)
    assert error.value.code == code
    nothing_written(before)


def test_settling_twice_or_an_unplaced_search_is_refused(conflict):
    search_id = conflict["x"].id
    Platzsuche.update(vermittelter_therapeut=None).where(Platzsuche.id == search_id).execute()
    before = state()
    with pytest.raises(OperationError) as error:
        ops.settle_conflict(search_id, actor="anna")
    assert error.value.code == "NOT_PLACED"
    nothing_written(before)
    ops.settle_conflict(search_id, "sonstiges", actor="anna", notiz="Patient hat abgesagt")
    before = state()
    with pytest.raises(OperationError) as error:
        ops.settle_conflict(search_id, "sonstiges", actor="anna", notiz="nochmal")
    assert (error.value.code, error.value.status) == ("ALREADY_SETTLED", 409)
    nothing_written(before)


def test_an_unknown_filter_is_refused(conflict):
    with pytest.raises(OperationError) as error:
        ops.conflicts("geschlossen")
    assert error.value.code == "INVALID_FILTER"


def test_the_alternatives_show_age_symptoms_distance_and_waiting(conflict):
    c = conflict
    queue_conflict_notice(c["a2"], [c["x"].patient_id], now=LATER)
    [listed] = ops.conflicts()
    [row] = ops.alternatives(listed["alternativen_anfragen"])
    assert (row["patient_id"], row["therapist_id"]) == (c["n"].patient_id, c["zweite"].id)
    assert row["geburtsdatum"] is not None and row["symptome"]
    assert row["distance_km"] is not None and row["waiting_days"] >= 5


# --- reassignment ---------------------------------------------------------------------------


def emails_to(therapist) -> list[Email]:
    return list(Email.select().where(Email.therapist == therapist.id).order_by(Email.id))


def test_reassignment_sends_each_one_the_email_of_the_final_state(conflict):
    c = conflict
    run_outbox()  # the emails of the answers: confirmations, placement email, notice
    x = c["x"]
    Email.update(status="Gesendet").execute()  # they went out (the placement one too)
    zweite_before = {e.art for e in emails_to(c["zweite"])}
    assert "konflikt" in zweite_before  # she was told the patient is placed elsewhere
    result = ops.reassign_conflict(
        x.id, c["zweite"].id, shown_therapist_id=c["erste"].id, actor="anna", now=LATER
    )
    assert result["former_therapist_id"] == c["erste"].id and result["number"] == 1
    search = Platzsuche.get_by_id(x.id)
    assert search.vermittelter_therapeut_id == c["zweite"].id
    lines = {
        line.therapeutenanfrage_id: (line.status, line.antwortergebnis)
        for line in TherapeutAnfragePatient.select().where(
            TherapeutAnfragePatient.platzsuche == x.id
        )
    }
    assert lines[c["a1"]] == ("anderweitig_vermittelt", "angenommen")  # her confirmation is void
    assert lines[c["a2"]] == ("angenommen", "angenommen")
    # the double click: refused, nothing written, no second email
    before = state()
    with pytest.raises(OperationError) as error:
        ops.reassign_conflict(
            x.id, c["zweite"].id, shown_therapist_id=c["erste"].id, actor="anna", now=LATER
        )
    assert (error.value.code, error.value.status) == ("ALREADY_ASSIGNED", 409)
    nothing_written(before)
    assert sorted(run_outbox()) == [
        "send_placement_email",
        "send_reassignment_confirmation",
        "send_reassignment_withdrawal",
    ]
    assert run_outbox() == []
    confirmation = emails_to(c["zweite"])[-1]
    assert confirmation.art == "annahme_bestaetigung"
    assert f"Patient {x.patient_id} wird nun an Sie vermittelt" in confirmation.inhalt.inhalt_text
    assert "bereits vermittelt" not in confirmation.betreff
    withdrawal = emails_to(c["erste"])[-1]
    assert withdrawal.art == "konflikt"
    assert "nicht mehr gültig" in withdrawal.inhalt.inhalt_text
    assert "wird nun an Sie vermittelt" not in withdrawal.inhalt.inhalt_text
    # Erste has a free place again: the withdrawal offers E as a real Anfrage (D she
    # declined, C and N are at the parallel cap)
    offer = Therapeutenanfrage.get(Therapeutenanfrage.konflikt_anfrage_id == c["a1"])
    assert [line.patient_id for line in offer.zeilen] == [c["e"].patient_id]
    assert (offer.therapist_id, offer.email_id) == (c["erste"].id, withdrawal.id)
    assert offer.gesendet_datum is not None and withdrawal.therapeutenanfrage_id == offer.id
    assert f"Antwort zu Ref: A{offer.id}" in withdrawal.inhalt.inhalt_text
    assert withdrawal.betreff.endswith(f"Ref: A{offer.id}")
    key = f"vermittlung:{x.id}.{c['zweite'].id}.u1"  # the email of reassignment 1
    placement = Email.get(Email.idempotenz_schluessel == key)
    text = placement.inhalt.inhalt_text
    assert "Berta Zweite" in text and "ersetzt unsere frühere Nachricht" in text
    assert "Anna Erste" in text  # named only as the one to no longer contact
    [settled] = ops.conflicts("erledigt")
    assert settled["erledigung"]["art"] == "neu_zugewiesen"
    assert settled["erledigung"]["therapist_id"] == c["zweite"].id
    audit = AuditLog.get(AuditLog.action == "reassign_conflict")
    assert (audit.actor, audit.details["from"], audit.details["to"]) == (
        "anna",
        c["erste"].id,
        c["zweite"].id,
    )


def test_a_phone_only_therapist_gets_no_email_and_staff_are_told_to_call(conflict):
    c = conflict
    run_outbox()
    Therapist.update(email=None, telefon="030 1234").where(Therapist.id == c["erste"].id).execute()
    result = ops.reassign_conflict(
        c["x"].id, c["zweite"].id, shown_therapist_id=c["erste"].id, actor="anna", now=LATER
    )
    assert result["phone_only"] == [c["erste"].id]
    before = Email.select().where(Email.therapist == c["erste"].id).count()
    run_outbox()
    assert Email.select().where(Email.therapist == c["erste"].id).count() == before
    assert emails_to(c["zweite"])[-1].art == "annahme_bestaetigung"


def test_an_unsent_placement_email_naming_the_former_therapist_is_withdrawn(conflict):
    c = conflict
    run_outbox()
    x = c["x"]
    key = f"vermittlung:{x.id}.{c['erste'].id}"
    assert Email.get(Email.idempotenz_schluessel == key).status == "In_Warteschlange"
    ops.reassign_conflict(
        x.id, c["zweite"].id, shown_therapist_id=c["erste"].id, actor="anna", now=LATER
    )
    assert Email.get_or_none(Email.idempotenz_schluessel == key) is None
    assert OutboxItem.get(OutboxItem.dedupe_key == f"send_email:{key}").status == "erledigt"
    run_outbox()
    key = f"vermittlung:{x.id}.{c['zweite'].id}.u1"  # the email of reassignment 1
    placement = Email.get(Email.idempotenz_schluessel == key)
    assert "ersetzt" not in placement.inhalt.inhalt_text  # the patient never heard of the other


def _reassign_before_the_notice_left(c, *, rendered: bool) -> None:
    from operations.sending import queue_acceptance_confirmation as thanks

    thanks(c["a1"], now=LATER)
    queue_placement_email(c["x"].id, therapist_id=c["erste"].id, now=LATER)
    if rendered:
        notice = queue_conflict_notice(c["a2"], [c["x"].patient_id], now=LATER)
        assert notice.status == "In_Warteschlange" and notice.therapeutenanfrage_id != c["a2"]
    OutboxItem.update(status="erledigt").where(
        OutboxItem.task.in_(
            ["send_acceptance_confirmation", "send_placement_email"]
            + (["send_conflict_notice"] if rendered else [])
        )
    ).execute()
    ops.reassign_conflict(
        c["x"].id, c["zweite"].id, shown_therapist_id=c["erste"].id, actor="anna", now=LATER
    )
    run_outbox()
    kinds = [e.art for e in emails_to(c["zweite"])]
    assert kinds == ["annahme_bestaetigung"]  # never "placed elsewhere" after the fact
    # no alternatives Anfrage for Zweite is left (Erste's withdrawal offers hers)
    assert (
        not Therapeutenanfrage.select()
        .where(
            (Therapeutenanfrage.therapist == c["zweite"].id)
            & Therapeutenanfrage.konflikt_anfrage_id.is_null(False)
        )
        .exists()
    )


def test_a_notice_not_rendered_yet_is_not_sent_after_the_reassignment(conflict):
    _reassign_before_the_notice_left(conflict, rendered=False)


def test_an_unsent_notice_and_its_offer_are_withdrawn_by_the_reassignment(conflict):
    _reassign_before_the_notice_left(conflict, rendered=True)
    audit = AuditLog.get(AuditLog.action == "reassign_conflict")
    assert audit.details["unsent_conflict_notice_withdrawn"] is not None


def test_back_and_forth_sends_only_what_matches_the_final_state(conflict):
    c = conflict
    run_outbox()
    x = c["x"]
    ops.reassign_conflict(x.id, c["zweite"].id, shown_therapist_id=c["erste"].id, actor="anna")
    ops.reassign_conflict(x.id, c["erste"].id, shown_therapist_id=c["zweite"].id, actor="anna")
    run_outbox()
    # the first reassignment's emails were overtaken: only the second one's went out
    assert (
        not Email.select()
        .where(
            Email.idempotenz_schluessel.startswith("umzuweisung_")
            & Email.idempotenz_schluessel.endswith(".1")
        )
        .exists()
    )
    assert emails_to(c["erste"])[-1].art == "annahme_bestaetigung"
    assert "nicht mehr gültig" in emails_to(c["zweite"])[-1].inhalt.inhalt_text
    assert KonfliktErledigung.get().umzuweisungen == 2


def emails_to_patient(search) -> list[Email]:
    return list(Email.select().where(Email.patient == search.patient_id).order_by(Email.id))


NAMES = {"erste": "Anna Erste", "zweite": "Berta Zweite"}


def test_every_flip_sends_the_emails_of_its_final_state_even_when_a_state_repeats(conflict):
    """Reported: A->B, B->A, A->B sent the patient no placement email on the third flip
    (the one of the first flip had the same key). Each real change of assignment tells
    the patient and both therapists the new final state; a repeated click sends nothing."""
    c = conflict
    x = c["x"]
    run_outbox()
    Email.update(status="Gesendet").execute()  # the placement email naming Erste went out
    flips = [("zweite", "erste"), ("erste", "zweite"), ("zweite", "erste")]
    for number, (new, former) in enumerate(flips, start=1):
        at = LATER + dt.timedelta(hours=number)
        result = ops.reassign_conflict(
            x.id, c[new].id, shown_therapist_id=c[former].id, actor="anna", now=at
        )
        assert result["number"] == number
        before = state()
        with pytest.raises(OperationError) as error:  # the double click on this state
            ops.reassign_conflict(
                x.id, c[new].id, shown_therapist_id=c[former].id, actor="anna", now=at
            )
        assert error.value.code == "ALREADY_ASSIGNED"
        nothing_written(before)
        assert sorted(run_outbox(now=at)) == [
            "send_placement_email",
            "send_reassignment_confirmation",
            "send_reassignment_withdrawal",
        ]
        assert run_outbox(now=at) == []  # each email once
        Email.update(status="Gesendet").where(Email.status == "In_Warteschlange").execute()
        placement = emails_to_patient(x)[-1]
        text = placement.inhalt.inhalt_text
        assert placement.art == "vermittlung" and placement.status == "Gesendet"
        assert f"{NAMES[new]} hat zugesagt" in text, (number, text)
        assert f"nicht an {NAMES[former]}, sondern an {NAMES[new]}" in text
        confirmation = emails_to(c[new])[-1]
        assert confirmation.art == "annahme_bestaetigung"
        assert (
            f"Patient {x.patient_id} wird nun an Sie vermittelt" in confirmation.inhalt.inhalt_text
        )
        withdrawal = emails_to(c[former])[-1]
        assert withdrawal.art == "konflikt" and "nicht mehr gültig" in withdrawal.inhalt.inhalt_text
    placements = [e for e in emails_to_patient(x) if e.art == "vermittlung"]
    assert len(placements) == 4  # at acceptance, then one per flip
    assert len({e.message_id for e in placements}) == 4  # no mail client hides one as a copy
    assert Platzsuche.get_by_id(x.id).vermittelter_therapeut_id == c["zweite"].id
    # the Today page and the reminder count from the placement email of the final state
    from operations import placements as placement_ops

    [row] = [r for r in placement_ops.awaiting_confirmation(LATER + dt.timedelta(days=1))]
    assert (row["therapist_id"], row["email_status"]) == (c["zweite"].id, "Gesendet")
    assert row["sent_at"] == placements[-1].gesendet_am
    assert placement_ops.placement_sent_at(x.id, c["zweite"].id) == placements[-1].gesendet_am


def test_flips_before_the_workers_ran_send_only_the_final_state(conflict):
    """Three flips while the acceptance's own placement email still waits for a worker:
    the patient gets one placement email, naming the final therapist; the therapists only
    the last reassignment's emails."""
    c = conflict
    x = c["x"]
    for new, former in [("zweite", "erste"), ("erste", "zweite"), ("zweite", "erste")]:
        ops.reassign_conflict(x.id, c[new].id, shown_therapist_id=c[former].id, actor="anna")
    # the acceptance's message, already handed to Redis before the flips, runs late
    assert queue_placement_email(x.id, therapist_id=c["erste"].id, now=LATER) is None
    run_outbox()
    run_outbox()
    [placement] = [e for e in emails_to_patient(x) if e.art == "vermittlung"]
    text = placement.inhalt.inhalt_text
    assert "Berta Zweite hat zugesagt" in text and "ersetzt" not in text
    reassignment_emails = [
        e.idempotenz_schluessel
        for e in Email.select().where(Email.idempotenz_schluessel.startswith("umzuweisung_"))
    ]
    assert sorted(reassignment_emails) == [
        f"umzuweisung_ruecknahme:{x.id}.3",
        f"umzuweisung_zusage:{x.id}.3",
    ]
    # and back to Erste: the acceptance's email is not sent beside the reassignment's
    Email.update(status="Gesendet").where(Email.status == "In_Warteschlange").execute()
    ops.reassign_conflict(x.id, c["erste"].id, shown_therapist_id=c["zweite"].id, actor="anna")
    assert queue_placement_email(x.id, therapist_id=c["erste"].id, now=LATER) is None
    run_outbox()
    placements = [e for e in emails_to_patient(x) if e.art == "vermittlung"]
    assert len(placements) == 2 and "Anna Erste hat zugesagt" in placements[-1].inhalt.inhalt_text


@pytest.mark.parametrize(
    "case",
    [
        "actor",
        "note",
        "search",
        "therapist_id",
        "therapist",
        "no_conflict",
        "stale",
        "not_accepted",
        "locked",
        "paused",
        "inactive",
    ],
)
def test_reassignment_refuses_bad_input_and_writes_nothing(conflict, case):
    c = conflict
    outsider = f.therapist(nachname="Fremd")
    args = {
        "platzsuche_id": c["x"].id,
        "therapist_id": c["zweite"].id,
        "shown_therapist_id": c["erste"].id,
        "actor": "anna",
    }
    code = {
        "actor": "ACTOR_REQUIRED",
        "note": "NOTE_TOO_LONG",
        "search": "PLATZSUCHE_NOT_FOUND",
        "therapist_id": "THERAPIST_NOT_FOUND",
        "therapist": "THERAPIST_NOT_FOUND",
        "no_conflict": "NO_CONFLICT",
        "stale": "STALE",
        "not_accepted": "NOT_AN_ACCEPTANCE",
        "locked": "THERAPIST_LOCKED",
        "paused": "SEARCH_NOT_ACTIVE",
        "inactive": "THERAPIST_INACTIVE",
    }[case]
    if case == "actor":
        args["actor"] = ""
    elif case == "note":
        args["notiz"] = "x" * 2001
    elif case == "search":
        args["platzsuche_id"] = 999_999
    elif case == "therapist_id":
        args["therapist_id"] = "2"
    elif case == "therapist":
        args["therapist_id"] = 999_999
    elif case == "no_conflict":
        args["platzsuche_id"] = c["n"].id
    elif case == "stale":
        args["shown_therapist_id"] = outsider.id
    elif case == "not_accepted":
        args["therapist_id"] = outsider.id
    elif case == "locked":
        Platzsuche.update(status="erfolgreich").where(Platzsuche.id == c["x"].id).execute()
    elif case == "paused":
        Platzsuche.update(status="pausiert").where(Platzsuche.id == c["x"].id).execute()
    elif case == "inactive":
        Therapist.update(status="gesperrt").where(Therapist.id == c["zweite"].id).execute()
    before = state()
    with pytest.raises(OperationError) as error:
        ops.reassign_conflict(**args)
    assert error.value.code == code
    nothing_written(before)
