"""Recognising bounces and out-of-office return dates (psymatch/domain/auto_replies.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from psymatch.domain.auto_replies import absence_of, bounce_of, follow_up_day, return_date
from psymatch.domain.reply_parse import message_from_parts

DECEMBER = dt.date(2026, 12, 18)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ich bin bis einschließlich 12.01. nicht in der Praxis.", dt.date(2027, 1, 12)),
        ("Ab dem 5. Januar bin ich wieder für Sie da.", dt.date(2027, 1, 5)),
        ("I am out of the office and back on January 5th.", dt.date(2027, 1, 5)),
        ("Returning 2027-01-05.", dt.date(2027, 1, 5)),
        (
            "Vom 21.12.2026 bis 04.01.2027 im Urlaub, ab 05.01.2027 wieder erreichbar",
            dt.date(2027, 1, 5),
        ),
        ("Ich bin ab Montag, den 11. Januar wieder in der Praxis.", dt.date(2027, 1, 11)),
        ("Abwesend bis zum 8. Januar 2027.", dt.date(2027, 1, 8)),
        ("Out of the office until Jan 4, 2027.", dt.date(2027, 1, 4)),
        ("Praxisurlaub bis 23.12.26", dt.date(2026, 12, 23)),
        ("Ich bin im Urlaub.", None),
        ("Bis 12.01.2025 abwesend.", None),  # in the past: not plausible
    ],
)
def test_return_dates(text, expected):
    assert return_date(text, DECEMBER)[0] == expected


def test_a_date_without_year_in_january_written_in_january_stays_in_that_year():
    assert return_date("bis 20.01. abwesend", dt.date(2027, 1, 10))[0] == dt.date(2027, 1, 20)


def test_follow_up_day_skips_weekends_and_holidays():
    assert follow_up_day(dt.date(2026, 12, 24)) == dt.date(2026, 12, 28)  # 25./26. holidays
    assert follow_up_day(dt.date(2027, 1, 5), "BY") == dt.date(2027, 1, 7)  # Epiphany in BY
    assert follow_up_day(dt.date(2027, 1, 5), "BE") == dt.date(2027, 1, 6)


def msg(text: str, subject: str = "", sender: str = "praxis@example.de", **kw):
    return message_from_parts(subject=subject, sender=sender, recipients=[], text=text, **kw)


def test_absence_needs_absence_words():
    reply = msg("Vielen Dank, Ihre Nachricht ist eingegangen.", subject="Eingangsbestätigung")
    assert absence_of(reply, DECEMBER) is None
    away = absence_of(
        msg("Ich bin bis 4.1. nicht erreichbar.", subject="Abwesenheitsnotiz"), DECEMBER
    )
    assert away.return_date == dt.date(2027, 1, 4) and away.evidence == "bis 4.1."


@pytest.mark.parametrize(
    ("text", "subject", "permanent"),
    [
        ("550 5.1.1 <a@b.de>: Recipient address rejected: User unknown", "Undelivered Mail", True),
        ("Die E-Mail-Adresse a@b.de existiert nicht.", "Unzustellbar: Anfrage", True),
        ("452 4.2.2 Mailbox full a@b.de", "Delivery Status Notification (Delay)", False),
        ("Your message to a@b.de has been delayed. We will retry.", "Delayed Mail", False),
        ("Das Postfach von a@b.de ist voll. 552 5.2.2", "Unzustellbar", False),
    ],
)
def test_bounce_permanence(text, subject, permanent):
    bounce = bounce_of(msg(text, subject=subject, sender="MAILER-DAEMON@mx.example"))
    assert bounce is not None and bounce.permanent is permanent
    assert "a@b.de" in bounce.recipients


def test_a_person_writing_about_returned_mail_is_no_bounce():
    assert bounce_of(msg("Gerne nehme ich Patient 1.", subject="AW: Returned mail?")) is None
    assert bounce_of(msg("Gerne nehme ich Patient 1.", subject="AW: Anfrage")) is None
