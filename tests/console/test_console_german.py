"""The panels of Overview, Audit, Emails and Settings in German, local time and pages."""

from __future__ import annotations

import datetime as dt
import re

from console.audit import AuditPanel
from console.emails import FailedEmailsPanel
from console.flags import FlagsPanel
from console.overview import render_table
from db.models import AuditLog
from operations import audit
from tests import factories as f
from tests.operations.test_emails_admin import failed_email

GERMAN_TIME = re.compile(r"\d\d\.\d\d\.\d{4} \d\d:\d\d")


def test_overview_counts_in_german_number_format():
    html = render_table({"Patienten": 12345, "Anfragen offen": 0}, dt.datetime(2026, 7, 1, 10, 5))
    assert ">12.345<" in html and ">0<" in html
    assert "Stand: 01.07.2026 12:05 Uhr" in html  # summer time in Berlin


def test_audit_log_in_german_local_time_and_pages(clean_db):
    at = dt.datetime(2026, 12, 6, 10, 5)
    for n in range(30):
        audit.record("anna", "create_platzsuche", "platzsuche", n, at=at)
    audit.record("bernd", "resend_email", "email", 7, at=at + dt.timedelta(hours=1))
    panel = AuditPanel(page_size=10)
    assert "31 Einträge" in panel.status.value
    assert panel.pager.page_count == 4
    first_page = panel.output.value
    assert "E-Mail erneut gesendet" in first_page and "resend_email" not in first_page
    assert "06.12.2026 12:05" in first_page  # newest first, 11:05 UTC in Berlin
    assert "create_platzsuche" not in first_page and "Platzsuche angelegt" in first_page

    panel.pager.filter.value = "bernd"
    assert panel.pager.matching_keys == [AuditLog.get(AuditLog.actor == "bernd").id]

    panel.entity.value = "email"  # the record kind, chosen by its German name
    assert ("E-Mail", "email") in panel.entity.options
    panel.show_button.click()
    assert "1 Eintrag" in panel.status.value


def test_failed_emails_in_german_with_the_selection_of_the_page_shown(clean_db):
    therapist = f.therapist()
    emails = [failed_email(therapist, key=f"sonstige:{n}") for n in range(3)]
    panel = FailedEmailsPanel(actor="erika", page_size=2)
    assert "Sonstige" in panel.table.value and GERMAN_TIME.search(panel.table.value)
    assert not re.search(r"\d{4}-\d\d-\d\d", panel.table.value)
    shown = panel.pager.visible_keys
    assert len(shown) == 2
    assert [v for _, v in panel.email_select.options] == shown
    panel.pager.next_page()
    assert [v for _, v in panel.email_select.options] == panel.pager.visible_keys
    assert len(panel.email_select.options) == 1
    assert panel.selected_email_id is None  # the selection was on the page left
    panel.email_select.value = panel.pager.visible_keys[0]
    assert panel.selected_email_id in {e.id for e in emails} - set(shown)
    assert panel.confirm.value is False


def test_settings_history_in_local_time(clean_db):
    from operations import flags

    flags.set_auto_rounds(True, 40, actor="anna", reason="Pilot")
    panel = FlagsPanel()
    assert "Zeit (UTC)" not in panel.current.value
    assert GERMAN_TIME.search(panel.current.value)
