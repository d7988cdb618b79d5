"""Closing the loops in the console: close an Anfrage without response, resend a failed
email, list and lift a search's exclusions. Each acts on exactly the record shown and
writes nothing when refused."""

from __future__ import annotations

import pytest

from console.emails import FailedEmailsPanel
from console.responses import ResponsePanel
from console.searches import SearchesPanel
from db.models import AuditLog, Email, OutboxItem, Platzsuche, Therapeutenanfrage
from operations import staff
from operations.bundles import create_anfrage
from operations.searches import exclude_therapist
from tests import factories as f
from tests.operations.test_emails_admin import failed_email

TODAY = f.NOW.date()


def ok(panel) -> bool:
    return "✓" in panel.status.value


def written():
    return (
        [
            tuple(a.__data__.items())
            for a in Therapeutenanfrage.select().order_by(Therapeutenanfrage.id)
        ],
        [tuple(e.__data__.items()) for e in Email.select().order_by(Email.id)],
        [tuple(s.__data__.items()) for s in Platzsuche.select().order_by(Platzsuche.id)],
        OutboxItem.select().count(),
        AuditLog.select().count(),
    )


def two_anfragen():
    """A sent, pending Anfrage and an unsent one."""
    first, second = f.therapist(), f.therapist(plz="10117")
    f.searches(4)
    sent = create_anfrage(first.id, now=f.NOW).anfrage_id
    f.mark_sent(sent, f.NOW)
    unsent = create_anfrage(second.id, now=f.NOW).anfrage_id
    return sent, unsent


# --- close without response -------------------------------------------------------------------


def test_close_needs_the_confirmation_naming_the_loaded_anfrage(clean_db):
    sent, unsent = two_anfragen()
    panel = ResponsePanel(actor="erika")
    assert panel.close_box.layout.display == "none"  # nothing loaded
    panel.load(unsent)
    assert panel.close_box.layout.display == "none"  # not sent: nothing to close
    panel.load(sent)
    assert panel.close_box.layout.display == ""
    assert f"Ja, Anfrage {sent} an" in panel.close_confirm.description
    before = written()
    panel.close_button.click()
    assert "CONFIRMATION_REQUIRED" in panel.status.value and written() == before
    panel.close_confirm.value = True
    panel.anfrage_input.value = unsent  # typed, not loaded: the shown Anfrage is still `sent`
    panel.close_button.click()
    assert "nicht geladen" in panel.status.value and written() == before
    panel.load(unsent)
    panel.load(sent)  # loading again starts unconfirmed
    assert panel.close_confirm.value is False
    panel.close_confirm.value = True
    panel.close_button.click()
    assert ok(panel) and f"Anfrage {sent} ohne Antwort geschlossen" in panel.status.value
    anfrage = Therapeutenanfrage.get_by_id(sent)
    assert anfrage.antworttyp == "keine_Antwort"
    assert Therapeutenanfrage.get_by_id(unsent).antwort_datum is None
    [row] = AuditLog.select().where(AuditLog.action == "close_without_response")
    assert row.actor == "erika" and row.entity_id == str(sent)
    assert panel.close_box.layout.display == "none" and panel.close_confirm.value is False
    # a repeated click (even confirmed again) is refused and writes nothing
    after = written()
    panel.close_confirm.value = True
    panel.close_button.click()
    assert "INVALID_STATE" in panel.status.value and written() == after


# --- failed emails ------------------------------------------------------------------------------


def test_resend_exactly_the_selected_failed_email_once(clean_db):
    therapist = f.therapist()
    first = failed_email(therapist, key="sonstige:1")
    second = failed_email(therapist, key="sonstige:2")
    panel = FailedEmailsPanel(actor="erika")
    assert {first.id, second.id} == {v for _, v in panel.email_select.options}
    assert "550 mailbox unavailable" in panel.table.value
    panel.email_select.value = second.id
    assert f"Ja, E-Mail {second.id} (Sonstige) erneut an Therapeut" in panel.confirm.description
    before = written()
    panel.resend_button.click()
    assert "CONFIRMATION_REQUIRED" in panel.status.value and written() == before
    panel.confirm.value = True
    panel.resend_button.click()
    assert ok(panel) and f"E-Mail {second.id} wieder in der Warteschlange" in panel.status.value
    assert Email.get_by_id(second.id).status == "In_Warteschlange"
    assert Email.get_by_id(first.id).status == "Fehlgeschlagen"
    assert [v for _, v in panel.email_select.options] == [first.id]
    # the resent one left the list: nothing is selected (never the neighbour)
    assert panel.selected_email_id is None and panel.confirm.value is False
    [row] = AuditLog.select().where(AuditLog.action == "resend_email")
    assert (row.actor, row.entity_id) == ("erika", str(second.id))


def test_a_resend_of_an_email_sent_meanwhile_is_refused(clean_db):
    email = failed_email(f.therapist())
    panel = FailedEmailsPanel(actor="erika")
    Email.update(status="Gesendet").where(Email.id == email.id).execute()  # another tab
    before = written()
    panel.confirm.value = True
    panel.resend_button.click()
    assert "EMAIL_NOT_FAILED" in panel.status.value and written() == before


@pytest.fixture
def reader(clean_db, monkeypatch):
    staff.create("lesa", "Lesa", "lesen", "ein-langes-passwort", actor="test")
    monkeypatch.setenv("JUPYTERHUB_USER", "lesa")


def test_a_reader_may_not_resend_or_close(reader):
    email = failed_email(f.therapist(plz="10119"))
    sent, _ = two_anfragen()
    before = written()
    emails = FailedEmailsPanel()
    emails.confirm.value = True
    emails.resend_button.click()
    assert "FORBIDDEN" in emails.status.value
    responses = ResponsePanel()
    responses.load(sent)
    responses.close_confirm.value = True
    responses.close_button.click()
    assert "FORBIDDEN" in responses.status.value
    assert written() == before and Email.get_by_id(email.id).status == "Fehlgeschlagen"


# --- exclusions ---------------------------------------------------------------------------------


def test_exclusions_are_listed_and_lifted_only_with_a_reason(clean_db):
    therapist, other = f.therapist(), f.therapist(plz="10117")
    search = f.search()
    exclude_therapist(search.id, therapist.id, "Patientin möchte nicht", actor="anna", now=f.NOW)
    exclude_therapist(search.id, other.id, "Umzug", actor="bernd", now=f.NOW)
    panel = SearchesPanel(today=TODAY, actor="erika")
    assert panel.selected_search_id == search.id
    shown = panel.exclusions_table.value
    for text in ("Patientin möchte nicht", "anna", "Umzug", "bernd", "2026-11-30 08:00:00"):
        assert text in shown
    assert therapist.nachname in shown
    assert panel.lift_select.value is None  # nothing chosen by itself
    before = written()
    panel.lift_button.click()
    assert "Keinen Ausschluss ausgewählt" in panel.status.value
    panel.lift_select.value = other.id
    panel.lift_button.click()  # no reason
    assert "REASON_REQUIRED" in panel.status.value and written() == before
    panel.lift_reason.value = "Irrtum"
    panel.lift_button.click()
    assert ok(panel) and f"Therapeut {other.id} für Suche {search.id} aufgehoben" in (
        panel.status.value
    )
    entries = Platzsuche.get_by_id(search.id).ausgeschlossene_therapeuten
    assert [e["id"] for e in entries] == [therapist.id]
    assert "Umzug" not in panel.exclusions_table.value
    assert [v for _, v in panel.lift_select.options] == [therapist.id]
    row = AuditLog.select().where(AuditLog.action == "remove_exclusion").get()
    assert (row.actor, row.reason) == ("erika", "Irrtum")
