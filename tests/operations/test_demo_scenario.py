"""The demo scenario (psymatch/demo_scenario.py): what it stages, refusals, the CLI flag."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from console import metrics_queries, queries
from db.models import (
    AuditLog,
    Email,
    InboundMessage,
    OutboxItem,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
)
from operations import demo_data as demo
from operations import demo_scenario
from operations.responses import list_conflicts
from tests.conftest import run_cli

TODAY = dt.date(2026, 11, 30)
TABLES = (
    Therapeutenanfrage,
    TherapeutAnfragePatient,
    Email,
    Telefonanruf,
    InboundMessage,
    OutboxItem,
    AuditLog,
)


def counts() -> dict[str, int]:
    return {m._meta.table_name: m.select().count() for m in TABLES}


def demo_data(therapists=300, patients=200):
    demo.generate(therapists=therapists, patients=patients, seed=1, today=TODAY, report=None)


def test_stage_creates_history_and_work_for_staff(clean_db):
    demo_data()
    result = demo_scenario.stage(TODAY, seed=1, report=None)
    sent = Therapeutenanfrage.select().where(Therapeutenanfrage.gesendet_datum.is_null(False))
    answered = sent.where(
        Therapeutenanfrage.antwort_datum.is_null(False)
        & (Therapeutenanfrage.antworttyp != "keine_Antwort")
    )
    assert result["bundles_sent"] == sent.count() >= 20
    assert result["bundles_answered"] == answered.count() >= 10
    assert result["bundles_unsent"] == 1
    assert (
        Therapeutenanfrage.select().where(Therapeutenanfrage.gesendet_datum.is_null()).count() == 1
    )
    # staff work, as the Today panel sees it on that day
    summary = queries.today_summary(TODAY)
    assert len(summary["reviews"]) == result["reviews"] >= 2
    assert len(summary["calls"]) == result["calls_due"] >= 2
    assert all(c["datum"] <= TODAY for c in summary["calls"])
    assert len(summary["conflicts"]) == len(list_conflicts()) == result["conflicts"] >= 1
    assert len(summary["unsent"]) == 1
    # placements with history for the dashboard
    placed = Platzsuche.select().where(Platzsuche.status == "erfolgreich")
    assert placed.count() == result["placements"] >= 1
    report = metrics_queries.report(TODAY - dt.timedelta(days=60), TODAY, _now())
    assert report.figure("Vermittlungen") == result["placements"]
    assert report.figure("Vermittlungstage Median") >= 0
    assert report.figure("Annahmerate") > 0 and report.figure("Konfliktrate") > 0
    assert report.figure("Show-Rate") > 0 and len(report.weekly) >= 6
    # every event lies before TODAY, every change went through an audited operation
    local_midnight = dt.datetime(2026, 11, 29, 23, 0)  # 30 Nov 00:00 in Berlin
    assert all(
        a.erstellt_datum < local_midnight and (a.antwort_datum or a.erstellt_datum) < local_midnight
        for a in Therapeutenanfrage.select()
    )
    actions = {a.action for a in AuditLog.select().where(AuditLog.actor == "demo-szenario")}
    assert {"create_anfrage", "send_anfrage", "record_response", "update_platzsuche"} <= actions


def _now() -> dt.datetime:
    return dt.datetime(2026, 11, 30, 8, 0)


def test_stage_is_deterministic(clean_db, scratch_database_url):
    demo_data()
    first = demo_scenario.stage(TODAY, seed=3, report=None)
    rows = [
        (a.therapist_id, a.gesendet_datum, a.antwort_datum, a.antworttyp)
        for a in Therapeutenanfrage.select().order_by(Therapeutenanfrage.id)
    ]
    from db import database, migrate, plz

    database.init(scratch_database_url)
    try:
        migrate.upgrade(report=lambda _: None)
        plz.ensure_loaded(report=None)
        demo_data()
        assert demo_scenario.stage(TODAY, seed=3, report=None) == first
        assert rows == [
            (a.therapist_id, a.gesendet_datum, a.antwort_datum, a.antworttyp)
            for a in Therapeutenanfrage.select().order_by(Therapeutenanfrage.id)
        ]
    finally:
        database.release(database.db.obj)


def test_a_second_run_is_refused_and_changes_nothing(clean_db):
    demo_data()
    demo_scenario.stage(TODAY, seed=1, report=None)
    before = counts()
    with pytest.raises(demo_scenario.ScenarioError, match="staged already"):
        demo_scenario.stage(TODAY, seed=1, report=None)
    assert counts() == before


def test_without_demo_data_or_with_too_little_nothing_is_written(clean_db):
    with pytest.raises(demo_scenario.ScenarioError, match="no demo data"):
        demo_scenario.stage(TODAY, report=None)
    demo_data(therapists=40, patients=30)
    before = counts()
    with pytest.raises(demo_scenario.ScenarioError, match="at least 100 aktiv searches"):
        demo_scenario.stage(TODAY, report=None)
    assert counts() == before
    with pytest.raises(demo_scenario.ScenarioError, match="seed"):
        demo_scenario.stage(TODAY, seed="1", report=None)


def test_a_scenario_that_falls_short_rolls_back_completely(clean_db, monkeypatch):
    demo_data()
    before = counts()
    monkeypatch.setitem(demo_scenario.MINIMUM, "reviews", 99)
    with pytest.raises(demo_scenario.ScenarioError, match="nothing was written"):
        demo_scenario.stage(TODAY, seed=1, report=None)
    assert counts() == before


def test_cli_demo_data_with_and_without_scenario(clean_db, cli_env):
    from tests.conftest import empty_tables

    base = ["demo-data", "--therapists", "300", "--patients", "200", "--today", str(TODAY)]
    base += ["--actor", "Erika"]
    plain = run_cli(cli_env, *base, "--json")
    assert plain.returncode == 0, plain.stderr
    assert "scenario" not in json.loads(plain.stdout)
    assert Therapeutenanfrage.select().count() == 0
    assert [(a.actor, a.action) for a in AuditLog.select()] == [("Erika", "demo_data")]
    empty_tables()
    done = run_cli(cli_env, *base, "--scenario", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["therapists"] == 300 and out["scenario"]["reviews"] >= 2
    assert InboundMessage.select().where(InboundMessage.status == "pruefung").count() >= 2
    assert Therapeutenanfrage.select().count() == out["scenario"]["bundles_sent"] + 1
