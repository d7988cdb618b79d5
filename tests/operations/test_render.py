"""Email rendering: subjects, anonymised blocks, grammar, form, links.

The emails are described in docs/domain.md §7, §8.1, §10 and §11.3.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from db.models import Patient, Therapist
from operations.emailing import headers, render
from operations.emailing.data import (
    AcceptedPatient,
    Meeting,
    patient_contact,
    patient_info,
    therapist_info,
)
from psymatch import settings
from psymatch.domain import answer_form, tokens

TODAY = dt.date(2025, 8, 19)
NOW = dt.datetime(2025, 8, 19, 7, 30)

SECRET_PATIENT = dict(
    anrede="Frau",
    geschlecht="weiblich",
    vorname="Roswitha",
    nachname="Zwiebelmeier",
    email="roswitha.zwiebelmeier@example.org",
    telefon="0176 99887766",
    strasse="Geheimgasse 17",
    plz="10115",
    ort="Berlin",
    krankenkasse="AOK Nordost",
    geburtsdatum=dt.date(1990, 8, 20),
    symptome=["Depression / Niedergeschlagenheit", "Schlafstörungen"],
    erfahrung_mit_psychotherapie=True,
    letzte_sitzung_vorherige_psychotherapie=dt.date(2021, 8, 15),
    offen_fuer_gruppentherapie=False,
    zeitliche_verfuegbarkeit={
        "So": ["10:00-11:00"],
        "Mo": ["14:00-18:00", "9:00-12:00"],
        "mittwoch": ["08:00-09:30"],
    },
)


def make_patient(pid=123, **changes):
    return Patient(id=pid, external_id=f"P{pid}", **{**SECRET_PATIENT, **changes})


def make_therapist(**changes):
    values = dict(
        id=7,
        external_id="T7",
        anrede="Herr",
        geschlecht="männlich",
        titel="Dr.",
        vorname="Bernd",
        nachname="Beispiel",
        email="praxis@beispiel.de",
        telefon="030 555",
        strasse="Praxisweg 1",
        plz="10115",
        ort="Berlin",
        telefonische_erreichbarkeit={"Di": ["8:00-9:00"], "donnerstag": ["13:00-13:30"]},
        ueber_curavani_informiert=False,
        bevorzugt_gruppentherapie=False,
    )
    values.update(changes)
    return therapist_info(Therapist(**values))


def inquiry(patients=None, **therapist_changes):
    patients = patients or [make_patient(123), make_patient(456, geschlecht="männlich")]
    return render.render_inquiry(
        42,
        make_therapist(**therapist_changes),
        [patient_info(p) for p in patients],
        today=TODAY,
        link_now=NOW,
    )


def test_subjects_are_exact():
    assert inquiry().subject == "Suche Psychotherapieplätze - Ref: A42"
    reminder = render.render_reminder(
        42, make_therapist(), [patient_info(make_patient())], days_since=9, today=TODAY
    )
    assert reminder.subject == "Erinnerung: Therapieanfrage - Ref: A42"
    placement = render.render_placement(
        "email_contact", 5, patient_contact(make_patient()), make_therapist()
    )
    assert placement.subject == "Therapieplatz gefunden - bitte zeitnah bearbeiten"


def test_no_personal_data_of_the_patient_reaches_the_therapist():
    patients = [make_patient(123), make_patient(456, vorname="Kurt", nachname="Quastenflosser")]
    infos = [patient_info(p) for p in patients]
    therapist = make_therapist()
    emails = [
        inquiry(patients),
        render.render_reminder(42, therapist, infos, days_since=8, today=TODAY),
        render.render_conflict(42, therapist, [999], infos, today=TODAY),
    ]
    secrets = [
        "Roswitha",
        "Zwiebelmeier",
        "roswitha.zwiebelmeier@example.org",
        "0176 99887766",
        "Geheimgasse",
        "Kurt",
        "Quastenflosser",
    ]
    for email in emails:
        for part in (email.text, email.html, email.subject):
            for secret in secrets:
                assert secret not in part, (email.kind, secret)


def test_patient_block_lists_the_facts_in_order():
    text = inquiry().text
    block = text[text.index("1) Patient 123") : text.index("2) Patient 456")]
    assert [line.strip() for line in block.splitlines()[:11]] == [
        "1) Patient 123",
        "Alter: 34 Jahre",  # 35 only tomorrow (birthday 20 August)
        "Geschlecht: weiblich",
        "Symptome: Depression / Niedergeschlagenheit, Schlafstörungen",
        "Krankenkasse: AOK Nordost",
        "Psychotherapieerfahrung: ja (letzte Sitzung: 15. August 2021)",
        "Offen für Gruppentherapie: nein",
        "Zeitliche Verfügbarkeit:",
        "Montag: 09:00 - 12:00, 14:00 - 18:00 Uhr",
        "Mittwoch: 08:00 - 09:30 Uhr",
        "Sonntag: 10:00 - 11:00 Uhr",
    ]
    without = patient_info(make_patient(erfahrung_mit_psychotherapie=False))
    text = render.render_inquiry(1, make_therapist(), [without], today=TODAY).text
    assert "Psychotherapieerfahrung: nein" in text


def test_weekday_lines_accept_both_key_forms_and_keep_monday_to_sunday():
    german = render.availability_lines({"sonntag": ["8:00-9:00"], "montag": ["10:00-11:00"]})
    short = render.availability_lines({"So": ["08:00-09:00"], "mo": "10:00-11:00"})
    english = render.availability_lines({"sunday": ["8:00-9:00"], "Monday": ["10:00-11:00"]})
    assert german == short == english == ["Montag: 10:00 - 11:00 Uhr", "Sonntag: 08:00 - 09:00 Uhr"]
    assert render.availability_lines({"Fr": ["bad"], "Xx": ["09:00-10:00"]}) == []


@pytest.mark.parametrize(
    "day,expected",
    [
        (dt.date(2021, 8, 15), "15. August 2021"),
        (dt.date(2020, 3, 1), "1. März 2020"),
        (dt.date(1999, 12, 31), "31. Dezember 1999"),
    ],
)
def test_german_long_dates(day, expected):
    assert render.german_date(day) == expected


def test_age_in_full_years_on_the_given_date():
    birth = dt.date(2000, 2, 29)
    assert render.age_on(birth, dt.date(2025, 2, 28)) == 24
    assert render.age_on(birth, dt.date(2025, 3, 1)) == 25
    assert render.age_on(dt.date(1990, 8, 20), dt.date(2025, 8, 20)) == 35


def test_salutations_formal_and_neutral():
    assert inquiry().text.startswith("Sehr geehrter Herr Dr. Beispiel,")
    frau = inquiry(anrede="Frau", titel=None, nachname="Muster").text
    assert frau.startswith("Sehr geehrte Frau Muster,")
    neutral = render.render_inquiry(
        1,
        render.TherapistInfo(1, None, None, "Alex", "Neutral", email="a@b.de"),
        [patient_info(make_patient())],
        today=TODAY,
    )
    assert neutral.text.startswith("Sehr geehrte Damen und Herren,")
    assert "Sehr geehrte Damen und Herren," in neutral.html
    assert neutral.to_name == "Alex Neutral"
    assert inquiry().to_name == "Dr. Bernd Beispiel"


def test_singular_and_plural_grammar():
    single = inquiry([make_patient(123)])
    assert "für eine Patientin bzw. einen Patienten" in single.text
    assert "Die Patientin bzw. der Patient im Überblick" in single.text
    assert "Patientinnen und Patienten im Überblick" not in single.text
    many = inquiry([make_patient(1), make_patient(2), make_patient(3)])
    assert "für 3 Patientinnen und Patienten" in many.text
    assert "einer oder mehreren dieser Personen" in many.text
    assert "Patientin bzw. einen Patienten" not in many.text


def test_service_introduction_only_for_therapists_who_do_not_know_it():
    url = settings.get().THERAPIST_INFO_URL
    uninformed = inquiry(ueber_curavani_informiert=False)
    informed = inquiry(ueber_curavani_informiert=True)
    assert "Kurz zu uns" in uninformed.text and url in uninformed.text
    assert f'href="{url}"' in uninformed.html
    assert "Kurz zu uns" not in informed.text and url not in informed.text
    assert url not in informed.html


def test_answer_form_lines_parse_back_once_filled_in():
    email = inquiry([make_patient(123), make_patient(456), make_patient(789)])
    lines = [line for line in email.text.splitlines() if answer_form.parse_line(line)]
    assert lines == [answer_form.form_line(i, p) for i, p in enumerate((123, 456, 789), start=1)]
    assert all(a.status == answer_form.BLANK for a in answer_form.parse_answer_form(email.text))
    filled = [
        "> " + lines[0].replace("[ ] ja", "[x] ja"),
        "> " + lines[1].replace("[ ] keine Kapazität", "[X] keine Kapazität"),
        "> 3) Patient 789: nicht geeignet",
    ]
    parsed = answer_form.answers_by_patient(answer_form.parse_answer_form("\n".join(filled)))
    assert {pid: line.outcome for pid, line in parsed.items()} == {
        123: "angenommen",
        456: "abgelehnt_Kapazitaet",
        789: "abgelehnt_nicht_geeignet",
    }
    # the HTML part shows the same lines in a <pre> block
    for line in lines:
        assert line in email.html


def test_each_patient_has_three_signed_links():
    email = inquiry()
    urls = re.findall(r"http\S+/r/(\S+)", email.text)
    assert len(urls) == 6
    claims = [tokens.read_link_token(token, NOW) for token in urls]
    assert [(c.patient_id, c.answer) for c in claims] == [
        (pid, answer) for pid in (123, 456) for answer in tokens.LINK_ANSWERS
    ]
    assert all(c.anfrage_id == 42 for c in claims)
    for token in urls:
        assert f'href="{settings.get().PUBLIC_BASE_URL.rstrip("/")}/r/{token}"' in email.html


def test_headers_carry_a_stable_message_id_and_the_reply_address():
    first, again = inquiry(), inquiry()
    domain = settings.get().REPLY_DOMAIN
    assert first.headers["Message-ID"] == again.headers["Message-ID"]
    assert first.headers["Message-ID"].startswith("<anfrage-42.anfrage.")
    assert first.headers["Message-ID"].endswith(f"@{domain}>")
    assert tokens.parse_message_id(first.headers["Message-ID"]) == 42  # signed
    assert tokens.parse_reply_address(first.headers["Reply-To"]) == 42
    assert first.key == "anfrage:42"
    reminder = render.render_reminder(
        42, make_therapist(), [patient_info(make_patient())], days_since=8, today=TODAY
    )
    assert reminder.headers["Message-ID"] == headers.message_id("erinnerung", 42)
    assert tokens.parse_message_id(reminder.headers["Message-ID"]) == 42
    assert reminder.headers["In-Reply-To"] == first.headers["Message-ID"]
    assert tokens.parse_reply_address(reminder.headers["Reply-To"]) == 42
    confirmation = render.render_acceptance_confirmation(42, make_therapist(), [AcceptedPatient(1)])
    assert "Reply-To" not in confirmation.headers
    assert headers.standard_headers("vermittlung", 5) == {
        "Message-ID": f"<platzsuche-5.vermittlung@{domain}>"
    }


def test_html_part_escapes_data_and_text_part_keeps_it():
    patient = make_patient(krankenkasse="<script>alert(1)</script> & Co")
    email = inquiry([patient])
    assert "<script>alert(1)</script> & Co" in email.text
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in email.html


def test_reminder_says_how_long_ago_and_repeats_blocks_without_introduction():
    patients = [patient_info(make_patient(123)), patient_info(make_patient(456))]
    reminder = render.render_reminder(42, make_therapist(), patients, days_since=9, today=TODAY)
    assert "vor 9 Tagen haben wir Ihnen unsere Anfrage A42 geschickt" in reminder.text
    assert "Kurz zu uns" not in reminder.text
    original = inquiry([make_patient(123), make_patient(456)]).text
    for heading in ("1) Patient 123", "2) Patient 456"):
        start = original.index(heading)
        block = original[start : original.index("Antwort mit einem Klick", start)]
        assert block in reminder.text
    one_day = render.render_reminder(42, make_therapist(), patients, days_since=1, today=TODAY)
    assert "vor einem Tag" in one_day.text


def test_conflict_notice_with_alternatives_or_none():
    therapist = make_therapist()
    many = [patient_info(make_patient(pid)) for pid in range(1, 10)]
    notice = render.render_conflict(42, therapist, [77], many, today=TODAY)
    assert notice.subject.endswith("Ref: A42")
    assert "Patient 77 hat inzwischen leider bereits einen Therapieplatz gefunden" in notice.text
    limit = settings.get().MAX_ANFRAGE_SIZE
    assert f"{limit}) Patient {limit}" in notice.text
    assert f"{limit + 1}) Patient" not in notice.text
    assert "Antwort mit einem Klick" not in notice.text  # alternatives are not in this Anfrage
    assert tokens.parse_reply_address(notice.headers["Reply-To"]) == 42
    none = render.render_conflict(42, therapist, [77, 78, 79], [], today=TODAY)
    assert "Die Patienten 77, 78 und 79 haben" in none.text
    assert "keine weitere passende Patientin" in none.text
    assert "keine weitere passende Patientin" in none.html
    assert "Patient 1" not in none.text


def test_conflict_notice_carrying_an_offered_anfrage_is_that_anfrages_inquiry():
    therapist = make_therapist()
    alternatives = [patient_info(make_patient(pid)) for pid in (5, 6)]
    notice = render.render_conflict(
        42, therapist, [77], alternatives, today=TODAY, offer_anfrage_id=43, link_now=NOW
    )
    assert notice.kind == "konflikt" and notice.key == "konflikt:42"
    assert notice.subject.endswith("Ref: A43")
    assert "unsere Anfrage A42" in notice.text and "neue Anfrage A43" in notice.text
    assert tokens.parse_reply_address(notice.headers["Reply-To"]) == 43
    assert tokens.parse_message_id(notice.headers["Message-ID"]) == 43
    assert tokens.parse_message_id(notice.headers["In-Reply-To"]) == 42
    assert "Antwort zu Ref: A43" in notice.text and "Antwort zu Ref: A43" in notice.html
    links = re.findall(r"http\S+/r/(\S+)", notice.text)
    claims = {(c.anfrage_id, c.patient_id) for c in (tokens.read_link_token(t, NOW) for t in links)}
    assert claims == {(43, 5), (43, 6)} and len(links) == 6
    with pytest.raises(ValueError):
        render.render_conflict(42, therapist, [77], [], today=TODAY, offer_anfrage_id=43)


def test_acceptance_confirmation_names_patients_only_when_given():
    confirmation = render.render_acceptance_confirmation(
        42, make_therapist(), [AcceptedPatient(123, "Eva Muster"), AcceptedPatient(456)]
    )
    assert confirmation.subject == "Bestätigung Ihrer Zusage - Ref: A42"
    assert "- Patient 123: Eva Muster" in confirmation.text
    assert "- Patient 456\n" in confirmation.text
    assert "diesen Personen" in confirmation.text
    single = render.render_acceptance_confirmation(42, make_therapist(), [AcceptedPatient(5)])
    assert "dieser Person" in single.text and "Sie oder er meldet sich" in single.text


@pytest.mark.parametrize("template", render.PLACEMENT_TEMPLATES)
def test_placement_templates_contain_what_the_patient_needs(template):
    therapist = make_therapist(bevorzugt_gruppentherapie=True)
    email = render.render_placement(
        template,
        5,
        patient_contact(make_patient()),
        therapist,
        attachments=["/forms/Anamnesebogen.pdf"],
        meeting=Meeting(dt.date(2025, 9, 2), "10:30"),
    )
    text = email.text
    assert email.to_email == SECRET_PATIENT["email"]
    assert text.startswith("Sehr geehrte Frau Zwiebelmeier,")
    for needed in (
        "Dr. Bernd Beispiel",
        "Praxisweg 1, 10115 Berlin",
        "030 555",
        "praxis@beispiel.de",
        "Gruppentherapie",
        "Anamnesebogen.pdf",
        "Versichertenkarte",
        "Hören wir nichts von Ihnen",
        "berichtet uns nicht über den Verlauf",
    ):
        assert needed in text, needed
        assert needed in email.html, needed
    if template.startswith("meeting_"):
        assert "2. September 2025" in text and "10:30 Uhr" in text
    if template == "email_contact":
        assert "Montag: 09:00 - 12:00, 14:00 - 18:00 Uhr" in text  # ready-to-send text
        assert f"CC: {settings.get().MAIL_FROM}" in text
    assert email.headers["Message-ID"].startswith("<platzsuche-5.vermittlung@")


def test_phone_contact_shows_windows_or_voicemail_advice():
    patient = patient_contact(make_patient())
    with_windows = render.render_placement("phone_contact", 5, patient, make_therapist())
    assert "Dienstag: 08:00 - 09:00 Uhr" in with_windows.text
    assert "Donnerstag: 13:00 - 13:30 Uhr" in with_windows.text
    without = render.render_placement(
        "phone_contact", 5, patient, make_therapist(telefonische_erreichbarkeit={})
    )
    assert "Anrufbeantworter" in without.text
    assert "Gruppentherapie" not in without.text


def test_placement_refuses_missing_details():
    patient, therapist = patient_contact(make_patient()), make_therapist()
    with pytest.raises(ValueError, match="MEETING_DETAILS_REQUIRED"):
        render.render_placement("meeting_confirmation_email", 5, patient, therapist)
    with pytest.raises(ValueError, match="template"):
        render.render_placement("fax", 5, patient, therapist)
    with pytest.raises(ValueError, match="email"):
        render.render_placement("email_contact", 5, patient, make_therapist(email=None))
    with pytest.raises(ValueError, match="at least one"):
        render.render_inquiry(1, therapist, [], today=TODAY)
