"""Bundle operations against the real database: rounds, preview, staff composition."""

from __future__ import annotations

import datetime as dt

import pytest

from db.models import (
    AuditLog,
    OutboxItem,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from operations import OperationError, flags
from operations.bundles import (
    create_anfrage,
    list_selectable_therapists,
    preview_anfrage,
    run_bundle_round,
)
from tests import factories as f

NOW = f.NOW


def counts():
    return (
        Therapeutenanfrage.select().count(),
        TherapeutAnfragePatient.select().count(),
        OutboxItem.select().count(),
    )


def test_round_creates_bundles_lines_outbox_and_audit_in_one_go(clean_db):
    therapist = f.therapist()
    waiting = f.searches(8)
    result = run_bundle_round(NOW, actor="test")
    assert len(result.created) == 1
    anfrage = Therapeutenanfrage.get_by_id(result.created[0])
    assert (anfrage.therapist_id, anfrage.anfragegroesse, anfrage.ausloeser) == (
        therapist.id,
        6,
        "runde",
    )
    assert anfrage.gesendet_datum is None and anfrage.antwort_datum is None
    lines = list(anfrage.zeilen.order_by(TherapeutAnfragePatient.position_in_anfrage))
    # the six longest waiting of the eight, longest first
    expected = sorted(waiting, key=lambda s: s.created_at)[:6]
    assert [line.platzsuche_id for line in lines] == [s.id for s in expected]
    assert [line.position_in_anfrage for line in lines] == [1, 2, 3, 4, 5, 6]
    assert all(line.status == "anstehend" for line in lines)
    explanation = lines[0].auswahl
    assert explanation["waiting_days"] == 17 and explanation["relaxation_level"] == 4
    assert explanation["soft_passed"] == ["S1", "S2", "S3", "S4"]
    assert 0 < explanation["distance_km"] < 5
    outbox = OutboxItem.get()
    assert (outbox.task, outbox.payload, outbox.dedupe_key) == (
        "send_anfrage",
        {"anfrage_id": anfrage.id},
        f"send_anfrage:{anfrage.id}",
    )
    assert AuditLog.select().where(AuditLog.action == "create_anfrage").count() == 1
    assert AuditLog.select().where(AuditLog.action == "bundle_round").count() == 1


def test_a_second_round_at_the_same_moment_creates_nothing(clean_db):
    for _ in range(3):
        f.therapist()
    f.searches(10)
    first = run_bundle_round(NOW)
    assert len(first.created) == 3
    before = counts()
    second = run_bundle_round(NOW)
    assert second.created == [] and counts() == before
    assert set(second.skipped.values()) == {"pending_anfrage"}


def test_dry_run_stores_nothing_but_shows_the_same_bundles(clean_db):
    f.therapist()
    f.searches(4)
    dry = run_bundle_round(NOW, dry_run=True)
    assert counts() == (0, 0, 0) and len(dry.bundles) == 1
    real = run_bundle_round(NOW)
    assert [p.search_id for p in real.bundles[0].patients] == [
        p.search_id for p in dry.bundles[0].patients
    ]


def test_round_below_the_minimum_creates_nothing(clean_db):
    therapist = f.therapist()
    f.searches(2)
    result = run_bundle_round(NOW)
    assert result.created == [] and counts() == (0, 0, 0)
    assert result.skipped == {therapist.id: "TOO_FEW_ELIGIBLE_PATIENTS"}


def test_feature_flag_off_skips_rounds_and_rollout_takes_a_stable_share(clean_db):
    f.therapist()
    waiting = f.searches(40)
    flags.set_auto_rounds(False, 100, actor="test")
    assert run_bundle_round(NOW).disabled and counts() == (0, 0, 0)
    flags.set_auto_rounds(True, 30, actor="test")
    result = run_bundle_round(NOW)
    chosen = {p.search_id for p in result.bundles[0].patients}
    assert chosen and all(flags.in_rollout(s, 30) for s in chosen)
    assert any(not flags.in_rollout(s.id, 30) for s in waiting)
    assert AuditLog.select().where(AuditLog.action == "set_flag").count() == 2


def test_searches_that_are_placed_or_not_aktiv_are_never_offered(clean_db):
    therapist = f.therapist()
    f.searches(3)
    f.search(days_waiting=99, status="pausiert")
    f.search(days_waiting=98, vermittelter_therapeut=therapist)
    result = run_bundle_round(NOW)
    offered = {p.search_id for p in result.bundles[0].patients}
    old = {s.id for s in Platzsuche.select().where(Platzsuche.created_at < NOW - dt.timedelta(90))}
    assert len(offered) == 3 and not offered & old


def test_preview_stores_nothing_and_explains(clean_db):
    therapist = f.therapist(arbeitszeiten={"dienstag": ["09:00-12:00"]})
    f.search(days_waiting=5)  # patient available Monday only: fails S1
    selection = preview_anfrage(therapist.id, now=NOW)
    assert counts() == (0, 0, 0)
    assert len(selection.patients) == 1
    assert selection.patients[0].soft_passed == ("S2", "S3", "S4")
    assert selection.patients[0].relaxation_level == 0


@pytest.mark.parametrize(
    "setup,code",
    [
        (lambda: None, "THERAPIST_NOT_FOUND"),
        (lambda: f.therapist(status="gesperrt"), "THERAPIST_NOT_CONTACTABLE"),
        (
            lambda: f.therapist(naechster_kontakt_moeglich=dt.date(2026, 12, 1)),
            "THERAPIST_NOT_CONTACTABLE",
        ),
        (lambda: f.therapist(plz="80331"), "NO_ELIGIBLE_PATIENTS"),
    ],
)
def test_staff_composition_refusals_store_nothing(clean_db, setup, code):
    f.searches(2)
    therapist = setup()
    therapist_id = therapist.id if therapist else 999_999
    with pytest.raises(OperationError) as error:
        create_anfrage(therapist_id, now=NOW)
    assert error.value.code == code
    assert counts() == (0, 0, 0)


def test_staff_composition_with_prefix_and_size_rules(clean_db):
    therapist = f.therapist()
    f.search(days_waiting=3)
    with pytest.raises(OperationError) as error:
        create_anfrage(therapist.id, plz_prefix="1", now=NOW)
    assert error.value.code == "INVALID_PLZ_PREFIX"
    with pytest.raises(OperationError) as error:
        create_anfrage(therapist.id, plz_prefix="20", now=NOW)
    assert error.value.code == "NO_ELIGIBLE_PATIENTS"
    created = create_anfrage(therapist.id, plz_prefix="10", now=NOW, actor="anna")
    anfrage = Therapeutenanfrage.get_by_id(created.anfrage_id)
    assert (anfrage.anfragegroesse, anfrage.ausloeser) == (1, "personal")
    assert OutboxItem.select().count() == 0  # staff send it themselves
    assert AuditLog.get(AuditLog.action == "create_anfrage").actor == "anna"
    with pytest.raises(OperationError) as error:  # one pending Anfrage per practice
        create_anfrage(therapist.id, now=NOW)
    assert (error.value.code, error.value.details["reason"]) == (
        "THERAPIST_NOT_CONTACTABLE",
        "pending_anfrage",
    )


def test_too_few_for_the_configured_staff_minimum(clean_db):
    from psymatch import settings

    therapist = f.therapist()
    f.searches(2)
    previous = settings.get().MIN_ANFRAGE_SIZE
    settings.override(MIN_ANFRAGE_SIZE=3)
    try:
        with pytest.raises(OperationError) as error:
            create_anfrage(therapist.id, now=NOW)
    finally:
        settings.override(MIN_ANFRAGE_SIZE=previous)
    assert (error.value.code, error.value.details["count"]) == ("TOO_FEW_ELIGIBLE_PATIENTS", 2)
    assert counts() == (0, 0, 0)


def test_selectable_therapists_collapse_practices_and_keep_order(clean_db):
    shared = "Praxis-Mueller@Example.org"
    owner = f.therapist(nachname="Müller", email=shared, potenziell_verfuegbar=True)
    f.therapist(nachname="Adler", email=" praxis-mueller@example.org ")
    phone_only = f.therapist(nachname="Zeh", email=None)
    f.therapist(plz="20095")
    cooling = f.therapist(naechster_kontakt_moeglich=dt.date(2027, 1, 1))
    listed = [t.id for t in list_selectable_therapists("10", now=NOW)]
    assert listed[0] == owner.id and phone_only.id == listed[-1]
    assert cooling.id not in listed and len(listed) == 2
    with pytest.raises(OperationError):
        list_selectable_therapists("abc", now=NOW)
    assert Therapist.select().count() == 5
