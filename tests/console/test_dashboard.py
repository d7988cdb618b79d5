"""The Dashboard panel (metrics of docs/domain.md §14) and the rollout-flags panel, on real data."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from console import dashboard as dashboard_module
from console.dashboard import DashboardPanel
from console.flags import FlagsPanel
from db.models import AuditLog, FeatureFlag, Therapeutenanfrage
from operations import flags
from operations.bundles import create_anfrage, run_bundle_round
from operations.errors import OperationError
from operations.responses import record_response
from operations.searches import update_platzsuche
from psymatch import settings
from psymatch.domain import metrics
from tests import factories as f

NOW = f.NOW
TODAY = NOW.date()
DAY = dt.timedelta(days=1)


@pytest.fixture
def history(clean_db):
    """Two answered bundles (one of 3 and one of 3 patients), one placement, one pending."""
    first, second = f.therapist(), f.therapist(plz="10117")
    f.searches(3, start_wait=30)
    a1 = create_anfrage(first.id, now=NOW - 20 * DAY)
    f.mark_sent(a1.anfrage_id, NOW - 20 * DAY)
    patients = [p.patient_id for p in a1.selection.patients]
    placed_search = a1.selection.patients[0].search_id
    record_response(
        a1.anfrage_id,
        {p: "angenommen" if i == 0 else "abgelehnt_Kapazitaet" for i, p in enumerate(patients)},
        now=NOW - 18 * DAY,
    )
    update_platzsuche(placed_search, status="erfolgreich", now=NOW - 5 * DAY)
    a2 = create_anfrage(second.id, now=NOW - 3 * DAY)
    f.mark_sent(a2.anfrage_id, NOW - 3 * DAY)
    return {"a1": a1.anfrage_id, "a2": a2.anfrage_id, "placed": placed_search}


def panel_for(start: dt.date, end: dt.date) -> DashboardPanel:
    panel = DashboardPanel(now=NOW)
    panel.start.value, panel.end.value = start, end
    return panel


def test_apply_shows_the_key_figures_of_the_range(history):
    panel = panel_for(TODAY - 30 * DAY, TODAY)
    panel.apply.click()
    report = panel.report
    assert report.figure("Anfragen gesamt") == 2
    assert report.figure("Antworten ausstehend") == 1
    assert report.figure("Antwortrate") == pytest.approx(0.5)
    assert report.figure("Annahmerate") == pytest.approx(1 / 3)
    assert report.figure("Ablehnungsquote") == pytest.approx(2 / 3)
    assert report.figure("Vermittlungen") == 1
    # f.searches(3, start_wait=30): the placed one started 30-32 days (+1 h) before NOW
    wait = (NOW - 5 * DAY).date() - (NOW - dt.timedelta(hours=1)).date()
    assert report.placement[0][0] == history["placed"]
    assert 30 + wait.days <= report.placement[0][1] <= 32 + wait.days
    html = panel.figures.value
    assert "Annahmerate" in html and "33.3 %" in html and "1 / 3" in html
    assert "Konfliktrate" in html and "Abkühlungseinhaltung" in html
    assert "✓" in panel.status.value and "2 Anfragen, 1 Vermittlungen" in panel.status.value
    images = [o for o in panel.plots.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1 and panel.plot_png.startswith(b"\x89PNG")
    assert not any(c.disabled for c in (panel.start, panel.end, panel.apply, panel.export))


def test_a_range_without_data_shows_zeros(history):
    panel = panel_for(TODAY - 400 * DAY, TODAY - 300 * DAY)
    panel.apply.click()
    assert panel.report.figure("Anfragen gesamt") == 0
    assert panel.report.figure("Vermittlungen") == 0
    assert panel.report.figure("Vermittlungstage Median") is None
    assert "0.0 %" in panel.figures.value and "–" in panel.figures.value
    assert panel.plot_png.startswith(b"\x89PNG")


def test_a_reversed_or_missing_range_is_refused_and_keeps_the_report(history):
    panel = panel_for(TODAY - 30 * DAY, TODAY)
    panel.apply.click()
    shown, report = panel.figures.value, panel.report
    panel.start.value, panel.end.value = TODAY, TODAY - DAY
    panel.apply.click()
    assert "✗" in panel.status.value and "liegt nach Bis" in panel.status.value
    assert panel.figures.value == shown and panel.report is report
    panel.start.value = None
    panel.apply.click()
    assert "Von- und Bis-Datum" in panel.status.value
    assert panel.figures.value == shown


def test_controls_are_frozen_while_the_metrics_are_computed(history, monkeypatch):
    seen, real = [], dashboard_module.metrics_queries.report
    panel = panel_for(TODAY - 30 * DAY, TODAY)

    def spy(*args):
        seen.append([c.disabled for c in (panel.start, panel.end, panel.apply, panel.export)])
        return real(*args)

    monkeypatch.setattr(dashboard_module.metrics_queries, "report", spy)
    panel.apply.click()
    panel.export.click()
    assert seen == [[True] * 4, [True] * 4]
    assert not any(c.disabled for c in (panel.start, panel.end, panel.apply, panel.export))


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_export_writes_the_rows_of_the_range_and_offers_a_download(history):
    panel = panel_for(TODAY - 30 * DAY, TODAY)
    panel.export.click()
    path = panel.last_export
    assert path is not None and path.exists()
    assert path.parent == Path(settings.get().VAR_DIR) / "exports"
    assert path.name.startswith(f"kennzahlen_{TODAY - 30 * DAY}_{TODAY}_")
    rows = read_csv(path.read_text(encoding="utf-8"))
    assert tuple(rows[0]) == metrics.CSV_HEADER
    key = f"{TODAY - 30 * DAY}..{TODAY}"
    by_name = {r[2]: r for r in rows[1:] if r[0] == "Kennzahl"}
    assert by_name["Anfragen gesamt"][:5] == ["Kennzahl", key, "Anfragen gesamt", "Anzahl", "2"]
    assert by_name["Antwortrate"][4:] == ["0.5", "1", "2"]
    assert by_name["Annahmerate"][5:] == ["1", "3"]
    placements = [r for r in rows if r[0] == "Vermittlung"]
    assert [r[1] for r in placements] == [f"Platzsuche {history['placed']}"]
    assert any(r[0] == "Woche" for r in rows)
    assert str(path) in panel.status.value and "✓" in panel.status.value
    href = panel.download.value.split("base64,", 1)[1].split("'", 1)[0]
    assert base64.b64decode(href).decode("utf-8") == path.read_text(encoding="utf-8")
    assert path.name in panel.download.value


def test_export_of_an_invalid_range_writes_no_file(history):
    panel = panel_for(TODAY, TODAY - DAY)
    folder = Path(settings.get().VAR_DIR) / "exports"
    before = set(folder.glob("*.csv")) if folder.exists() else set()
    panel.export.click()
    after = set(folder.glob("*.csv")) if folder.exists() else set()
    assert after == before and panel.last_export is None
    assert "✗" in panel.status.value


def test_conflicts_count_in_the_konfliktrate(clean_db):
    first, second = f.therapist(), f.therapist(plz="10117")
    f.searches(3)
    bundles = []
    for therapist in (first, second):
        created = create_anfrage(therapist.id, now=NOW - 4 * DAY)
        f.mark_sent(created.anfrage_id, NOW - 4 * DAY)
        bundles.append([created.anfrage_id, [p.patient_id for p in created.selection.patients]])
    for anfrage_id, patients in bundles:
        record_response(anfrage_id, dict.fromkeys(patients, "angenommen"), now=NOW - 2 * DAY)
    report = panel_for(TODAY - 7 * DAY, TODAY).refresh()
    # every one of the 3 accepted searches was accepted twice
    assert report.figure("Konfliktrate") == pytest.approx(1.0)
    assert Therapeutenanfrage.select().count() == 2


# --- rollout flags ---------------------------------------------------------------------------


def flag_rows():
    return FeatureFlag.select().count(), AuditLog.select().where(
        AuditLog.action == "set_flag"
    ).count()


def test_saving_the_flag_writes_it_with_an_audit_row(clean_db):
    panel = FlagsPanel()
    assert panel.enabled.value is True and panel.percent.value == 100  # settings' default
    panel.enabled.value = False
    panel.percent.value = 30
    panel.staff.value = "Anna Admin"
    panel.reason.value = "Pilot in Berlin"
    panel.save.click()
    assert flags.auto_rounds() == flags.Flag(False, 30)
    row = AuditLog.get(AuditLog.action == "set_flag")
    assert (row.actor, row.reason) == ("Anna Admin", "Pilot in Berlin")
    assert row.details == {"enabled": False, "rollout_percent": 30}
    assert FeatureFlag.get_by_id(flags.AUTO_ROUNDS).updated_by == "Anna Admin"
    assert "✓" in panel.status.value and "aus" in panel.status.value
    assert "Pilot in Berlin" in panel.current.value and panel.reason.value == ""
    again = FlagsPanel()
    assert (again.enabled.value, again.percent.value) == (False, 30)


@pytest.mark.parametrize(
    ("staff", "reason", "code"),
    [
        ("Anna", "", "REASON_REQUIRED"),
        ("Anna", "   ", "REASON_REQUIRED"),
        ("", "Pilot", "STAFF_REQUIRED"),
        ("x" * 101, "Pilot", "STAFF_TOO_LONG"),
    ],
)
def test_invalid_input_writes_nothing(clean_db, staff, reason, code):
    panel = FlagsPanel()
    panel.enabled.value = False
    panel.staff.value, panel.reason.value = staff, reason
    panel.save.click()
    assert flag_rows() == (0, 0)
    assert "✗" in panel.status.value and code in panel.status.value
    assert flags.auto_rounds() == flags.Flag(True, 100)
    assert not panel.save.disabled


def test_operation_refuses_bad_values_and_writes_nothing(clean_db):
    bad = (
        (True, 101, "INVALID_ROLLOUT"),
        (True, -1, "INVALID_ROLLOUT"),
        ("yes", 50, "INVALID_FLAG"),
        (True, 50.5, "INVALID_ROLLOUT"),
    )
    for enabled, percent, code in bad:
        with pytest.raises(OperationError) as error:
            flags.set_auto_rounds(enabled, percent, actor="staff", reason="x")
        assert error.value.code == code
    assert flag_rows() == (0, 0)


def test_rounds_follow_the_flag_saved_in_the_panel(clean_db):
    f.therapist()
    f.searches(4)
    panel = FlagsPanel()
    panel.staff.value = "Anna"

    def save(enabled: bool, percent: int) -> None:
        panel.enabled.value, panel.percent.value = enabled, percent
        panel.reason.value = "Test"
        panel.save.click()
        assert "✓" in panel.status.value

    save(False, 100)
    assert run_bundle_round(NOW).disabled and Therapeutenanfrage.select().count() == 0
    save(True, 0)
    result = run_bundle_round(NOW)
    assert not result.disabled and result.created == []
    save(True, 100)
    assert len(run_bundle_round(NOW).created) == 1


def test_the_dashboard_counts_staff_actions_per_placement_and_week(history):
    """The fixture's answer and status change were written by "staff" (the operations'
    default actor); a staff member's cooling override adds one; the clock's round does not."""
    before = panel_for(TODAY - 30 * DAY, TODAY).report.figure("Mitarbeiteraktionen")
    AuditLog.create(actor="anna", action="override_cooling", entity="therapist", entity_id="1",
                    at=NOW - DAY)  # fmt: skip
    AuditLog.create(actor="clock", action="bundle_round", entity="runde", entity_id="1",
                    at=NOW - DAY)  # fmt: skip
    panel = panel_for(TODAY - 30 * DAY, TODAY)
    report = panel.report
    assert report.figure("Mitarbeiteraktionen") == before + 1
    assert report.figure("Mitarbeiteraktionen je Vermittlung") == before + 1  # one placement
    assert "Mitarbeiteraktionen je Woche" in panel.figures.value
    assert sum(w["aktionen"] for w in report.staff_weekly) == before + 1
