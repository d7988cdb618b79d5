"""``psymatch simulate``: the behaviour model's draws, the invariant checks (each fails on a
seeded breach) and short simulations of the real operations on the test database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from db.models import Email, Platzsuche, TherapeutAnfragePatient, Therapeutenanfrage
from psymatch.domain import metrics, vocab
from tests.conftest import run_cli
from tools.simulate import Model, Simulation, SimulationError, invariants
from tools.simulate.model import Behaviour, Offered

CONTRACT = (
    "weeks", "therapists", "searches_opened", "placed", "placement_days_median",
    "placement_days_mean", "acceptance_rate", "response_rate_7d", "inquiries_per_placement",
    "staff_actions_per_placement", "conflicts", "invariant_breaches", "seconds",
)  # fmt: skip
T0 = dt.datetime(2026, 3, 2, 8, 0)


# --- the behaviour model ------------------------------------------------------------------


def draws(behaviour: Behaviour, order: list[int]) -> dict:
    out = {}
    for therapist_id in order:
        therapist = behaviour.therapist(therapist_id)
        offered = [Offered(p, (vocab.SYMPTOME[p % 5],), float(p % 40)) for p in range(1, 6)]
        out[therapist_id] = (
            dataclasses.astuple(therapist),
            behaviour.email_answer(therapist, therapist_id * 10, "anfrage"),
            behaviour.channel(therapist_id),
            behaviour.text_style(therapist_id),
            behaviour.reached(therapist_id),
            tuple(behaviour.decide(therapist, therapist_id, offered).items()),
            behaviour.session(therapist_id, 1),
            behaviour.arrivals_today(3000, therapist_id),
            behaviour.gives_up_after(therapist_id),
        )
    return out


def test_the_same_seed_gives_the_same_draws_in_any_order():
    ids = list(range(1, 60))
    first = draws(Behaviour(Model(), 11), ids)
    assert draws(Behaviour(Model(), 11), list(reversed(ids))) == first
    assert draws(Behaviour(Model(), 12), ids) != first


def test_the_draws_follow_the_table():
    behaviour = Behaviour(Model(), 5)
    therapists = [behaviour.therapist(i) for i in range(1, 4001)]
    shares = [sum(t.places == k for t in therapists) / len(therapists) for k in (0, 1, 2)]
    assert shares == pytest.approx([0.6, 0.3, 0.1], abs=0.03)
    assert sum(t.recorded for t in therapists) / len(therapists) == pytest.approx(0.3, abs=0.03)
    assert sum(t.responsiveness for t in therapists) / len(therapists) == pytest.approx(
        0.5, abs=0.02
    )
    assert all(len(t.favoured) == 2 for t in therapists)
    arrivals = [behaviour.arrivals_today(3000, day) for day in range(700)]
    assert sum(arrivals) / 100 == pytest.approx(150, rel=0.05)  # 5 % of 3000 a week
    quits = [behaviour.gives_up_after(i) for i in range(20000)]
    assert sum(q <= 7 for q in quits) / len(quits) == pytest.approx(0.01, abs=0.003)
    far = Offered(1, (), 50.0)
    assert behaviour.acceptance(therapists[0], far) == 0.0
    busy = dataclasses.replace(therapists[0], places=0)
    answers = behaviour.decide(busy, 9, [Offered(p, (), 1.0) for p in (1, 2)])
    assert set(answers.values()) == {vocab.ABGELEHNT_KAPAZITAET}


@pytest.mark.parametrize(
    "change",
    [
        {"call_reached": 1.5},
        {"free_places": (0.5, 0.5, 0.5)},
        {"answer_days_max": 0},
        {"text_form_share": 0.9, "text_vague_share": 0.2},
        {"arrivals_per_week": -1.0},
    ],
)
def test_a_model_value_out_of_range_is_refused(change):
    with pytest.raises(SimulationError):
        Simulation(therapists=10, weeks=1, seed=1, model=dataclasses.replace(Model(), **change))


# --- each invariant check fails on a seeded breach ----------------------------------------


def test_rate_limit_check():
    ok = [("a@x.de", T0), ("a@x.de", T0 + dt.timedelta(days=7)), ("b@x.de", T0)]
    assert invariants.rate_limit(ok, 7) == []
    seeded = [*ok, ("b@x.de", T0 + dt.timedelta(days=6, hours=23))]
    assert len(invariants.rate_limit(seeded, 7)) == 1


def row(anfrage_id, sent, answered=None, practice="p1"):
    return metrics.AnfrageRow(
        id=anfrage_id, therapist_id=1, erstellt_datum=sent, anfragegroesse=3,
        gesendet_datum=sent, antwort_datum=answered,
        antworttyp="vollstaendige_Ablehnung" if answered else None, practice=practice,
    )  # fmt: skip


def test_cooling_check():
    first = row(1, T0, T0 + dt.timedelta(days=2))
    after = row(2, T0 + dt.timedelta(days=30))
    assert invariants.cooling([first, after], {}, "Europe/Berlin", 28) == []
    inside = row(3, T0 + dt.timedelta(days=20))
    assert len(invariants.cooling([first, after, inside], {}, "Europe/Berlin", 28)) == 1
    elsewhere = row(4, T0 + dt.timedelta(days=20), practice="p2")
    assert invariants.cooling([first, elsewhere], {}, "Europe/Berlin", 28) == []
    # a conflict notice's alternatives answer the therapist's acceptance (§11.5): exempt,
    # while any other Anfrage inside the cooling period is still a breach
    rows = [first, after, inside]
    assert invariants.cooling(rows, {}, "Europe/Berlin", 28, frozenset({3})) == []
    assert len(invariants.cooling(rows, {}, "Europe/Berlin", 28, frozenset({2}))) == 1


def test_parallel_cap_check():
    assert invariants.parallel_cap({1: 5, 2: 1}, 5) == []
    assert len(invariants.parallel_cap({1: 6, 2: 1}, 5)) == 1


def test_placed_twice_check():
    assert invariants.placed_twice([(1, 10), (2, 20)], [(10, 7), (20, 8)]) == []
    assert len(invariants.placed_twice([(1, 10), (1, 11)], [])) == 1
    assert len(invariants.placed_twice([], [(10, 7), (10, 8)])) == 1


def test_placement_email_check():
    sent = {"vermittlung:10.7", "vermittlung:12.8.u3"}
    assert invariants.placement_emails([(10, 7), (12, 8)], sent) == []
    assert len(invariants.placement_emails([(10, 7), (11, 7)], sent)) == 1
    assert len(invariants.placement_emails([(12, 3)], sent)) == 1


def test_outbox_to_sink_check():
    assert invariants.outbox_to_sink(["<a>", "<b>"], ["<b>", "<a>"], 0, 0) == []
    assert len(invariants.outbox_to_sink(["<a>", "<b>"], ["<a>"], 0, 0)) == 1
    assert len(invariants.outbox_to_sink(["<a>"], ["<a>", "<a>"], 0, 0)) == 1
    assert len(invariants.outbox_to_sink(["<a>"], ["<a>"], 1, 0)) == 1
    assert len(invariants.outbox_to_sink(["<a>"], ["<a>"], 0, 2)) == 1


# --- the real operations, two weeks ------------------------------------------------------


def simulate(migrated, **kwargs):
    options = {"therapists": 800, "weeks": 2, "seed": 4, "database_url": migrated}
    return Simulation(**{**options, **kwargs}).run()


def test_two_weeks_keep_every_invariant_and_repeat_exactly(clean_db, migrated):
    from tests.conftest import empty_tables

    result = simulate(migrated)
    figures = result.figures
    for key in CONTRACT:
        assert key in figures, key
    assert figures["invariant_breaches"] == 0, result.breaches
    assert figures["searches_opened"] == Platzsuche.select().count() > 0
    assert figures["inquiries_sent"] > 0 and figures["staff_actions"] > 0
    assert Email.select().where(Email.status == "Gesendet").count() > figures["inquiries_sent"] / 2
    assert len(result.days) == 14

    # the loaders see breaches seeded into the database the run left behind
    anfrage = Therapeutenanfrage.select().where(Therapeutenanfrage.email.is_null(False)).first()
    email = Email.get_by_id(anfrage.email_id)
    Email.create(
        idempotenz_schluessel="seeded-breach", art="anfrage", betreff="x",
        empfaenger_email=email.empfaenger_email, absender_email=email.absender_email,
        status="Gesendet", gesendet_am=email.gesendet_am + dt.timedelta(days=1),
        in_warteschlange_am=email.gesendet_am + dt.timedelta(days=1),
        therapeutenanfrage=anfrage.id, therapist=anfrage.therapist_id,
    )  # fmt: skip
    breaches = invariants.check_all([])  # and the sink "received" nothing
    assert any(b.startswith("rate limit:") for b in breaches)
    assert any(b.startswith("outbox to sink:") for b in breaches)
    line = TherapeutAnfragePatient.select().first()
    for _ in range(6):
        extra = Therapeutenanfrage.create(therapist=anfrage.therapist_id, anfragegroesse=1)
        TherapeutAnfragePatient.create(
            therapeutenanfrage=extra.id, platzsuche=line.platzsuche_id, patient=line.patient_id,
            position_in_anfrage=1, status="anstehend",
        )  # fmt: skip
    assert invariants.check_parallel_cap()

    empty_tables()
    again = simulate(migrated)
    timing = {"seconds": 0, "cpu_seconds": 0}
    assert {**again.figures, **timing} == {**figures, **timing}


def test_the_manual_policy_composes_by_hand(clean_db, migrated):
    result = simulate(migrated, policy="manual", weeks=1)
    assert result.figures["invariant_breaches"] == 0, result.breaches
    kinds = result.figures["staff_actions_by_kind"]
    previews = kinds["compose"] + kinds.get("preview_without_bundle", 0)
    assert kinds["compose"] > 0 and previews <= 7 * Model().staff_bundles_per_day
    assert kinds["compose"] == Therapeutenanfrage.select().count()
    assert not Therapeutenanfrage.select().where(Therapeutenanfrage.ausloeser == "runde").exists()


def test_a_database_with_rows_is_refused(clean_db, migrated):
    from tests import factories

    factories.therapist()
    with pytest.raises(SimulationError, match="not empty"):
        simulate(migrated, weeks=1)


def test_cli_prints_the_contract_and_writes_the_report(cli_env, tmp_path):
    report = tmp_path / "report"
    args = ("simulate", "--therapists", "150", "--weeks", "1", "--seed", "2", "--json")
    result = run_cli(cli_env, *args, "--report", str(report), "--arrivals-per-week", "20")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for key in CONTRACT:
        assert key in figures, key
    assert figures["model"]["arrivals_per_week"] == 20.0 and figures["weeks"] == 1
    assert figures["rules"]["MAX_PARALLEL_ANFRAGEN"] >= 1
    page = (report / "index.html").read_text(encoding="utf-8")
    assert "arrivals_per_week" in page and "text_vague_share (assumed)" in page
    assert {p.name for p in report.glob("*.png")} == {
        "placement_days.png", "open_searches.png", "rates.png", "staff.png",
    }  # fmt: skip
    bad = run_cli(cli_env, "simulate", "--therapists", "10", "--weeks", "1", "--seed", "1",
                  "--call-reached", "2")  # fmt: skip
    assert bad.returncode == 1 and "call_reached must be between 0 and 1" in bad.stderr


def test_the_what_if_widget_runs_a_small_simulation_on_its_own_database(clean_db, migrated):
    from db import database
    from tests import factories
    from tools.simulate.widget import WhatIf

    factories.search()  # the console's own data: untouched, and bound again afterwards
    panel = WhatIf()
    panel.therapists.value, panel.weeks.value, panel.arrivals.value = 100, 1, 10
    panel.bundle_size.value = 4
    assert panel.simulation().rules["MAX_ANFRAGE_SIZE"] == 4
    panel.run()
    assert panel.result is not None and panel.progress.value == panel.progress.max == 7
    assert len(panel.plots.children) == 4
    assert "Vermittelt" in panel.figures.value and "keine Regelverstöße" in panel.status.value
    assert panel.result.rules["MAX_ANFRAGE_SIZE"] == 4
    database.init(migrated)
    assert Platzsuche.select().count() == 1


def test_a_refused_clock_job_fails_that_day_leaves_nothing_and_the_run_goes_on(clean_db):
    from db.database import write_transaction
    from db.models import AuditLog
    from operations import OperationError, audit

    simulation = Simulation(therapists=10, weeks=1, seed=1)

    def refuse(*_args, **_kwargs):
        audit.record("clock", "half_done", "test", 1)  # written, then refused
        raise OperationError("NO_ELIGIBLE_PATIENTS", "A1 has no patient left to offer")

    with write_transaction():  # the day's, as the simulation runs each day
        simulation._clock_job("follow_up", refuse, T0, actor="clock")
        audit.record("clock", "between", "test", 2)
        simulation._clock_job("follow_up", refuse, T0, actor="clock")
        simulation._clock_job(
            "expire_anfragen", lambda now: audit.record("clock", "done", "test", 3), T0
        )
    assert dict(simulation.job_failures) == {"follow_up": 2}
    assert simulation.job_failure_examples["follow_up"].startswith("NO_ELIGIBLE_PATIENTS")
    # each refusal rolled back to its savepoint; what happened around it was committed
    assert [row.action for row in AuditLog.select().order_by(AuditLog.id)] == ["between", "done"]
