"""Two processes at once: rounds never double a practice, a patient has exactly one winner."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest

from db.models import OutboxItem, Platzsuche, Therapeutenanfrage, Therapist
from operations.bundles import create_anfrage
from psymatch.domain.bundling.practice import normalize_email
from tests import concurrency_workers as work
from tests import factories as f

NOW = f.NOW


def in_two_processes(calls):
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(len(calls))
    with context.Pool(len(calls)) as pool:
        pending = [pool.apply_async(func, (args[0], barrier, *args[1:])) for func, args in calls]
        return [p.get(timeout=120) for p in pending]


def pending_per_practice():
    practice = {t.id: normalize_email(t.email) or t.id for t in Therapist.select()}
    pending = Therapeutenanfrage.select().where(Therapeutenanfrage.antwort_datum.is_null())
    return Counter(practice[a.therapist_id] for a in pending)


@pytest.fixture
def crowded(clean_db):
    for n in range(12):
        f.therapist(email=f"gemeinsam{n % 4}@praxis.example" if n < 8 else f"solo{n}@example.org")
    f.searches(40)


def test_concurrent_rounds_never_create_two_pending_bundles_for_one_practice(crowded, migrated):
    first, second = in_two_processes([(work.run_round, (migrated, NOW))] * 2)
    assert sorted([len(first), len(second)]) == [0, 8]  # serialised: one round did everything
    counts = pending_per_practice()
    assert len(counts) == 8 and set(counts.values()) == {1}


def test_round_and_staff_composition_at_once(crowded, migrated):
    solo = Therapist.get(Therapist.email == "solo9@example.org")
    round_ids, composed = in_two_processes(
        [(work.run_round, (migrated, NOW)), (work.compose, (migrated, NOW, solo.id))]
    )
    assert composed == "THERAPIST_NOT_CONTACTABLE" or len(composed) == 1
    assert set(pending_per_practice().values()) == {1}
    assert Therapeutenanfrage.select().count() == len(round_ids) + (
        1 if isinstance(composed, list) else 0
    )


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_double_acceptance_has_one_winner_and_one_conflict_notice(
    clean_db, migrated, attempt
):
    first, second = f.therapist(), f.therapist()
    search = f.search()
    anfragen = []
    for therapist in (first, second):
        created = create_anfrage(therapist.id, now=NOW)
        f.mark_sent(created.anfrage_id)
        anfragen.append(created.anfrage_id)
    patient = [search.patient_id]
    conflicts = in_two_processes(
        [(work.accept_all, (migrated, NOW, anfrage, patient)) for anfrage in anfragen]
    )
    assert sorted(map(len, conflicts)) == [0, 1]
    winner = (first, second)[conflicts.index([])]
    assert Platzsuche.get_by_id(search.id).vermittelter_therapeut_id == winner.id
    notices = list(OutboxItem.select().where(OutboxItem.task == "send_conflict_notice"))
    loser_anfrage = anfragen[conflicts.index(patient)]
    assert [n.payload for n in notices] == [
        {"anfrage_id": loser_anfrage, "patient_ids": [search.patient_id]}
    ]
