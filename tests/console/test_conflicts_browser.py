"""A conflict reassigned in the Conflicts notebook, in a real browser (Debian chromium through
Playwright, JupyterLab as in ``test_console_browser``), and the emails it causes, sent
through the real outbox, actors and SMTP into an aiosmtpd sink (issue 15 point 6).

Patient X was offered to Dr. Anna Erste and Berta Zweite. Erste accepted first (X is placed
with her, she is thanked and X gets the placement email naming her); Zweite accepted later
and was told X is placed elsewhere, with an alternative patient N as a new Anfrage. Staff
then give X to Zweite: they tick the confirmation and double-click "Neu zuweisen". Exactly
one reassignment happens, and the sink then holds exactly one email each: Zweite's
confirmation, Erste's withdrawal (her confirmation no longer valid) and X's placement email
naming Zweite.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from dataclasses import dataclass

import pytest
from aiosmtpd.controller import Controller

import workers.actors  # noqa: F401  (declares every actor before the test's broker is set)
from db.models import (
    AuditLog,
    KonfliktErledigung,
    OutboxItem,
    Patient,
    Platzsuche,
    Therapeutenanfrage,
    Therapist,
    utcnow,
)
from operations.bundles import create_anfrage
from operations.responses import record_response
from psymatch import settings
from psymatch.ports import free_port
from tests import factories as f
from tests.console import test_console_browser as base
from tests.console.test_console_browser import SCREENSHOTS, Lab, _button
from workers.outbox import relay

pytestmark = pytest.mark.slow

# the JupyterLab and browser fixtures of the main flow (``console`` uses this module's
# ``scenario``)
console = base.console
page = base.page


class Sink:
    """aiosmtpd handler keeping every message it accepted."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        )
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in str(m["To"])]


@pytest.fixture
def sink():
    before = settings.get()
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.override(SMTP_URL=f"smtp://127.0.0.1:{controller.port}", SMTP_TIMEOUT_S=5.0)
    yield handler
    controller.stop()
    settings.override(SMTP_URL=before.SMTP_URL, SMTP_TIMEOUT_S=before.SMTP_TIMEOUT_S)


def deliver(stub_broker, stub_worker) -> None:
    """Run the outbox through the actors until nothing is left (emails go to the sink)."""
    for _ in range(10):
        if relay() == 0:
            return
        for queue in list(stub_broker.get_declared_queues()):
            stub_broker.join(queue)
        stub_worker.join()
    raise AssertionError("the outbox did not settle")


@dataclass
class Scenario:
    erste: Therapist
    zweite: Therapist
    a1: int
    a2: int
    x_search: int
    x_patient: Patient
    alternative: int


@pytest.fixture
def scenario(clean_db) -> Scenario:
    now = utcnow()
    erste = f.therapist(titel="Dr.", vorname="Anna", nachname="Erste")
    zweite = f.therapist(vorname="Berta", nachname="Zweite", plz="10117")
    x = f.search(days_waiting=30)
    a1 = create_anfrage(erste.id, now=now).anfrage_id
    a2 = create_anfrage(zweite.id, now=now).anfrage_id
    for anfrage_id in (a1, a2):
        f.mark_sent(anfrage_id, now)
    record_response(a1, {x.patient_id: "angenommen"}, actor="email", source="email")
    alternative = f.search(days_waiting=3)
    record_response(a2, {x.patient_id: "angenommen"}, actor="email", source="email")
    return Scenario(
        erste=erste,
        zweite=zweite,
        a1=a1,
        a2=a2,
        x_search=x.id,
        x_patient=Patient.get_by_id(x.patient_id),
        alternative=alternative.patient_id,
    )


def test_reassign_a_conflict_in_the_browser_and_the_emails_match(
    page, console, scenario, sink, stub_broker, stub_worker
):
    s = scenario
    deliver(stub_broker, stub_worker)  # the emails of the two answers
    before = [m["Subject"] for m in sink.to(s.zweite.email)]
    assert any("bereits vermittelt" in subject for subject in before)
    offer = Therapeutenanfrage.get(Therapeutenanfrage.konflikt_anfrage_id == s.a2)
    assert [line.patient_id for line in offer.zeilen] == [s.alternative]
    first_placement = sink.to(s.x_patient.email)
    assert (
        len(first_placement) == 1
        and "Anna Erste" in first_placement[0].get_body(("plain",)).get_content()
    )
    sink.messages.clear()

    lab = Lab(page, console)
    lab.start("Conflicts.ipynb")
    lab.run_all("Conflicts.ipynb")
    panel = lab.rendered("Conflicts.ipynb")
    conflicts = panel.locator(".psymatch-conflicts")
    lab.expect(conflicts).to_contain_text("1 Konflikt(e) offen")
    row = conflicts.locator(".psymatch-conflict", has_text=f"Patient {s.x_patient.id} ")
    lab.expect(row).to_contain_text(f"vermittelt an Dr. Anna Erste (Therapeut {s.erste.id})")
    lab.expect(row).to_contain_text("Vorgeschlagene Alternativen")
    lab.expect(row).to_contain_text(f"A{offer.id}")
    lab.expect(row).to_contain_text("wartet auf Antwort")
    lab.expect(row).to_contain_text(re.compile(r"\d+ Jahre"))
    row.get_by_label("Neu zuweisen an").select_option(value=f"{s.zweite.id} – Berta Zweite")
    confirm = row.get_by_label(re.compile(r"^Ja: Patient \d+ geht an Berta Zweite"))
    confirm.check()
    lab.expect(confirm).to_be_checked()
    status = conflicts.locator(".psymatch-status").first
    _button(row, "Neu zuweisen").dblclick()
    success = (
        f"✓ Patient {s.x_patient.id} (Suche {s.x_search}) neu zugewiesen an Therapeut {s.zweite.id}"
    )
    lab.expect(status).to_contain_text(success)
    lab.expect(conflicts).to_contain_text("0 Konflikt(e) offen")
    time.sleep(3)  # let the kernel work off the second click of the double-click
    lab.expect(status).to_contain_text(success)  # not overwritten by a refusal
    assert lab.kernel_errors == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / "Conflicts-Neuzuweisung.png"))

    # exactly one record changed: one reassignment, one set of outbox rows
    assert AuditLog.select().where(AuditLog.action == "reassign_conflict").count() == 1
    assert KonfliktErledigung.get().umzuweisungen == 1
    assert Platzsuche.get_by_id(s.x_search).vermittelter_therapeut_id == s.zweite.id
    for task in ("send_reassignment_confirmation", "send_reassignment_withdrawal"):
        assert OutboxItem.select().where(OutboxItem.task == task).count() == 1

    deliver(stub_broker, stub_worker)
    to_zweite, to_erste = sink.to(s.zweite.email), sink.to(s.erste.email)
    to_patient = sink.to(s.x_patient.email)
    assert (len(to_zweite), len(to_erste), len(to_patient)) == (1, 1, 1)
    assert len(sink.messages) == 3
    confirmation = to_zweite[0].get_body(("plain",)).get_content()
    assert to_zweite[0]["Subject"] == (
        f"Patient {s.x_patient.id} wird doch an Sie vermittelt - Ref: A{s.a2}"
    )
    assert f"Patient {s.x_patient.id} wird nun an Sie vermittelt" in confirmation
    withdrawal = to_erste[0].get_body(("plain",)).get_content()
    assert "Vermittlung zurückgenommen" in to_erste[0]["Subject"]
    assert "nicht mehr gültig" in withdrawal and "an Sie vermittelt" not in withdrawal
    placement = to_patient[0].get_body(("plain",)).get_content()
    assert "Berta Zweite" in placement and "ersetzt unsere frühere Nachricht" in placement
    assert "nicht an Dr. Anna Erste, sondern an Berta Zweite" in placement.replace("\n", " ")
    # a second delivery run sends nothing more
    deliver(stub_broker, stub_worker)
    assert len(sink.messages) == 3
