"""Unsafe clicks in a real browser (issue 15 point 6): a double-click on cancel, send, a call
outcome and re-plan changes exactly one record, and an impossible date is refused.

Debian chromium drives JupyterLab (the fixtures and the ``Lab`` helper of
``test_console_browser``) against the test database of either backend. The double-clicks
are real ``dblclick`` events: both clicks reach the kernel before it has answered the first.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest

from db.models import AuditLog, Platzsuche, Telefonanruf, Therapist, utcnow
from operations.bundles import create_anfrage
from tests import factories as f
from tests.console.test_console_browser import Lab, _button, _fill, console, page  # noqa: F401

pytestmark = pytest.mark.slow

NOTEBOOKS = ("Searches.ipynb", "Bundles.ipynb", "Calls.ipynb", "Cooling.ipynb")


@dataclass
class Scenario:
    longest: int  # the search that waited longest: the one a jumping selection would hit
    second: int
    unsent: list[int]
    calls: list[int]
    cooling_therapist: int
    cooling_until: dt.date


@pytest.fixture
def scenario(clean_db) -> Scenario:
    now = utcnow()
    today = now.date()
    longest = f.search(days_waiting=300)
    second = f.search(days_waiting=200)
    f.searches(4, start_wait=20)
    unsent = [
        create_anfrage(f.therapist(nachname=name).id, now=now).anfrage_id
        for name in ("Erste", "Zweite")
    ]
    calls = [
        Telefonanruf.create(
            therapist=f.therapist(nachname=f"Telefon{i}", email=None, telefon=f"030 99{i}"),
            geplantes_datum=today,
            geplante_zeit=at,
            dauer_minuten=5,
        ).id
        for i, at in enumerate(("09:00", "09:05"))
    ]
    until = today + dt.timedelta(days=20)
    cooling = f.therapist(nachname="Kuehl", naechster_kontakt_moeglich=until)
    return Scenario(longest.id, second.id, unsent, calls, cooling.id, until)


def settle(lab) -> None:
    """Let a double-click's second click, still on its way, reach the kernel and finish
    before the database is read (a wait for messages, not a speed assertion)."""
    lab.page.wait_for_timeout(1500)


def audit_count(action: str) -> int:
    return AuditLog.select().where(AuditLog.action == action).count()


def test_double_clicks_change_exactly_one_record(page, console, scenario):  # noqa: F811
    s = scenario
    lab = Lab(page, console)
    lab.start(NOTEBOOKS[0])
    for name in NOTEBOOKS[1:]:
        lab.open(name)
    for name in NOTEBOOKS:
        lab.run_all(name)
    for name in NOTEBOOKS:
        lab.rendered(name)

    # Cancel: the confirmation names the search; a double-click on "Ja" cancels it once,
    # and the search that waited next longest stays active.
    panel = lab.show("Searches.ipynb")
    searches = panel.locator(".psymatch-searches")
    choice = searches.get_by_label("Suche", exact=True)
    lab.expect(choice.locator("option").first).to_be_attached()
    values = choice.evaluate("e => [...e.options].map(o => o.value)")
    choice.select_option(value=next(v for v in values if v.startswith(f"{s.longest} ")))
    _button(searches, "Abbrechen").click()
    question = searches.locator(".psymatch-confirmation", has_text=f"Suche {s.longest}")
    lab.expect(question).to_be_visible()
    _button(searches, f"Ja, Suche {s.longest} abbrechen").dblclick()
    lab.expect(searches.locator(".psymatch-status")).to_contain_text("abgebrochen")
    settle(lab)
    _button(searches, "Abbrechen").dblclick()  # nothing selected any more
    lab.expect(searches.locator(".psymatch-status")).to_contain_text("Keine Suche ausgewählt")
    assert Platzsuche.get_by_id(s.longest).status == "abgebrochen"
    assert Platzsuche.get_by_id(s.second).status == "aktiv"
    assert audit_count("update_platzsuche") == 1

    # Send: confirmed for the Anfrage shown; a double-click queues it once, the other stays.
    panel = lab.show("Bundles.ipynb")
    bundles = panel.locator(".psymatch-bundles")
    first = s.unsent[0]
    _button(bundles, "Senden").click()
    lab.expect(
        bundles.locator(".psymatch-confirmation", has_text=f"Anfrage {first} an")
    ).to_be_visible()
    _button(bundles, f"Ja, Anfrage {first} senden").dblclick()
    lab.expect(bundles.locator(".psymatch-status")).to_contain_text("zum Versand eingeplant")
    settle(lab)
    assert audit_count("request_send") == 1
    [queued] = AuditLog.select().where(AuditLog.action == "request_send")
    assert queued.entity_id == str(first)

    # A call outcome: "Nicht erreicht" double-clicked fails the shown call only.
    panel = lab.show("Calls.ipynb")
    calls = panel.locator("div.widget-vbox").filter(has_text="Anrufe (heute und überfällig)").last
    _button(calls, "Nicht erreicht").dblclick()
    # The second click finds nothing selected any more, or the shown call already failed
    # (the kernel can take both clicks before the first one's refresh: refused with
    # INVALID_STATE), or the button disabled while the first runs: one call is failed.
    status = calls.locator(".psymatch-status")
    lab.expect(status).to_have_text(
        re.compile("nicht erreicht|Kein Anruf ausgewählt|INVALID_STATE")
    )
    settle(lab)
    statuses = [Telefonanruf.get_by_id(c).status for c in s.calls]
    assert statuses == ["fehlgeschlagen", "geplant"]
    # Re-plan after it: a double-click plans one new call.
    _button(calls, "Neu planen").dblclick()
    lab.expect(status).to_have_text(re.compile("Neuer Anruf|ALREADY_PLANNED"))
    settle(lab)
    assert Telefonanruf.select().count() == 3 and audit_count("reschedule_call") == 1

    # An impossible date is refused, nothing changes.
    panel = lab.show("Cooling.ipynb")
    cooling = panel.locator("div.widget-vbox").filter(has_text="Abkühlphasen").last
    _fill(cooling.get_by_label("Therapeut-ID", exact=True), s.cooling_therapist)
    _fill(cooling.get_by_label("Neues Datum", exact=True), "31.02.2027")
    _fill(cooling.get_by_label("Grund", exact=True), "hat angerufen")
    _button(cooling, "Überschreiben").click()
    lab.expect(cooling.locator(".psymatch-status")).to_contain_text("INVALID_DATE")
    lab.expect(cooling.locator(".psymatch-status")).to_contain_text("gibt es nicht im Kalender")
    stored = Therapist.get_by_id(s.cooling_therapist).naechster_kontakt_moeglich
    assert stored == s.cooling_until and audit_count("override_cooling") == 0
    assert lab.kernel_errors == []
