"""The whole reply corpus through storing and processing, on the test database's backend.

Each reply of tests/domain/fixtures/replies answers an Anfrage made for it (its patients,
in bundle order, sent; the reply signed and from the practice). A clear reply must be
recorded with exactly the expected outcomes (a reply announcing a later answer for some
patients leaves those and the Anfrage pending), a hedge must land in the review queue
with nothing recorded, and the reason of either is stored with the message. Automatic replies
(out-of-office, bounces) are left to tests/webhooks/test_bounces_absences.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from cli.replies import read_reply
from db.models import (
    InboundMessage,
    Patient,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
)
from operations import replies as ops
from psymatch.domain import tokens
from tests import factories as f

CORPUS = Path(__file__).parents[1] / "domain" / "fixtures" / "replies"
SENT = f.NOW
LATER = SENT + dt.timedelta(days=2)


def _anfrage_for(patient_ids: list[int]) -> Therapeutenanfrage:
    therapist = f.therapist()
    anfrage = Therapeutenanfrage.create(
        therapist=therapist, anfragegroesse=len(patient_ids), gesendet_datum=SENT
    )
    for position, pid in enumerate(patient_ids, 1):
        patient = Patient.get_or_none(Patient.id == pid) or f.patient(id=pid)
        search = Platzsuche.get_or_none(
            (Platzsuche.patient == pid) & (Platzsuche.status == "aktiv")
        ) or f.search(patient_obj=patient)
        TherapeutAnfragePatient.create(
            therapeutenanfrage=anfrage,
            platzsuche=search,
            patient=patient,
            position_in_anfrage=position,
        )
    return anfrage


def test_the_whole_corpus_is_recorded_or_reviewed_as_expected(clean_db):
    expected = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
    checked = wrong = 0
    misses = []
    for name, case in sorted(expected.items()):
        want = case["expected"]
        if want == "auto":
            continue
        anfrage = _anfrage_for(case["patients"])
        sender = anfrage.therapist.email
        message = dataclasses.replace(
            read_reply(CORPUS / name),
            sender=f"Praxis <{sender}>",
            recipients=[tokens.reply_address(anfrage.id)],
        )
        row, created = ops.store_inbound(
            "corpus", f"corpus:{name}", "{}", sender, None, message.subject, message=message
        )
        assert created
        status = ops.process_inbound(row.id, now=LATER)
        assert ops.process_inbound(row.id, now=LATER) == status  # idempotent
        stored = InboundMessage.get_by_id(row.id)
        outcomes = {
            str(r.patient_id): r.antwortergebnis
            for r in TherapeutAnfragePatient.select().where(
                TherapeutAnfragePatient.therapeutenanfrage == anfrage.id
            )
        }
        checked += 1
        if want == "review":
            ok = status == "pruefung" and set(outcomes.values()) == {None}
            ok = ok and bool(stored.review_reason)
        else:  # patients with a later answer announced stay open (domain §0.14)
            full = {**{str(p): None for p in case.get("pending", [])}, **want}
            ok = status == "verarbeitet" and outcomes == full
            ok = ok and bool(stored.result["decision"]["evidence"])
            answered = Therapeutenanfrage.get_by_id(anfrage.id).antwort_datum is not None
            ok = ok and answered != bool(case.get("pending"))
        if not ok:
            misses.append((name, status, stored.review_reason, outcomes, want))
            wrong += any(
                v == "angenommen" and (not isinstance(want, dict) or want.get(k) != v)
                for k, v in outcomes.items()
            )
    assert checked >= 250
    assert wrong == 0, misses
    assert misses == []
