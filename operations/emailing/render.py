"""Rendering every email psymatch sends (docs/domain.md §7, §8.1, §10, §11.3), text and HTML.

Functions here take plain data (``operations.emailing.data``) and return a
``RenderedEmail``; nothing reads the database. Templates live in
``templates/`` (``<name>.txt`` and ``<name>.html``; autoescaping is on for HTML
only). Values are formatted in Python (``german_date``, ``availability_lines``,
``patient_facts`` ...) so that the two parts of one email say the same thing
and the formatting is tested once.

Therapist emails show patients only as anonymised blocks built from
``PatientInfo``, which has no name, email, phone or street.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from psymatch import settings
from psymatch.domain import answer_form, tokens, vocab
from psymatch.domain.schedule import GERMAN_NAMES, WEEKDAYS, format_minutes, lenient_windows
from psymatch.domain.tokens import answer_link

from . import headers as email_headers
from .data import AcceptedPatient, Meeting, PatientContact, PatientInfo, TherapistInfo

SUBJECT_INQUIRY = "Suche Psychotherapieplätze - Ref: A{anfrage_id}"
SUBJECT_REMINDER = "Erinnerung: Therapieanfrage - Ref: A{anfrage_id}"
SUBJECT_ACCEPTANCE = "Bestätigung Ihrer Zusage - Ref: A{anfrage_id}"
SUBJECT_CONFLICT = "Ihre Zusage - Patient bereits vermittelt - Ref: A{anfrage_id}"
SUBJECT_REASSIGNED = "Patient {patient_id} wird doch an Sie vermittelt - Ref: A{anfrage_id}"
SUBJECT_WITHDRAWN = "Patient {patient_id}: Vermittlung zurückgenommen{ref}"
SUBJECT_PLACEMENT = "Therapieplatz gefunden - bitte zeitnah bearbeiten"
SUBJECT_PLACEMENT_REMINDER = "Erinnerung: Wie war Ihr Erstgespräch?"

PLACEMENT_TEMPLATES = (
    "email_contact",
    "phone_contact",
    "meeting_confirmation_email",
    "meeting_confirmation_phone",
)

MONTHS = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)
GENDER_LABELS = {
    "männlich": "männlich",
    "weiblich": "weiblich",
    "divers": "divers",
    "keine_Angabe": "keine Angabe",
}
LINK_LABELS = tuple((answer, vocab.ANTWORT_LABELS[answer]) for answer in tokens.LINK_ANSWERS)

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    # the templates ship with the code and change only with a new release (and restart):
    # jinja would otherwise stat both template files of every email rendered
    auto_reload=False,
)


@dataclass(frozen=True)
class RenderedEmail:
    kind: str  # Email.art
    reference_id: int  # Anfrage id, or Platzsuche id for placement emails
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)
    to_email: str | None = None
    to_name: str | None = None
    # Set where (kind, reference) alone does not name the email: a placement email is
    # one per search *and* placed therapist (``email_headers.placement_key``).
    idempotency_key: str | None = None

    @property
    def key(self) -> str:
        """Idempotency key of this email (``Email.idempotenz_schluessel``)."""
        return self.idempotency_key or email_headers.email_key(self.kind, self.reference_id)

    @property
    def message_id(self) -> str:
        return self.headers["Message-ID"]


# --- formatting ---------------------------------------------------------------------


def german_date(day: dt.date) -> str:
    """``15. August 2021``."""
    return f"{day.day}. {MONTHS[day.month - 1]} {day.year}"


def age_on(birth: dt.date, day: dt.date) -> int:
    """Age in full years on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def yes_no(value: bool | None) -> str:
    return "keine Angabe" if value is None else ("ja" if value else "nein")


def local_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(settings.get().TIMEZONE)).date()


def availability_lines(schedule) -> list[str]:
    """One line per weekday with ranges, Monday to Sunday, e.g.
    ``Montag: 09:00 - 12:00, 14:00 - 18:00 Uhr``."""
    windows = lenient_windows(schedule)
    lines = []
    for day, name in zip(WEEKDAYS, GERMAN_NAMES, strict=True):
        if day in windows:
            ranges = ", ".join(
                f"{format_minutes(start)} - {format_minutes(end)}" for start, end in windows[day]
            )
            lines.append(f"{name}: {ranges} Uhr")
    return lines


def german_join(items) -> str:
    """``a``, ``a und b``, ``a, b und c``."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " und " + items[-1]


def full_name(*parts: str | None) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def therapist_name(therapist: TherapistInfo) -> str:
    """``titel vorname nachname`` (recipient name)."""
    return full_name(therapist.titel, therapist.vorname, therapist.nachname)


def therapist_salutation(therapist: TherapistInfo) -> str:
    """Formal salutation; the neutral plural when ``anrede`` is missing."""
    if therapist.anrede == "Herr":
        return f"Sehr geehrter {full_name('Herr', therapist.titel, therapist.nachname)},"
    if therapist.anrede == "Frau":
        return f"Sehr geehrte {full_name('Frau', therapist.titel, therapist.nachname)},"
    return "Sehr geehrte Damen und Herren,"


def patient_salutation(patient: PatientContact) -> str:
    if patient.anrede == "Herr":
        return f"Sehr geehrter Herr {patient.nachname},"
    if patient.anrede == "Frau":
        return f"Sehr geehrte Frau {patient.nachname},"
    return f"Guten Tag {full_name(patient.vorname, patient.nachname)},"


def patient_facts(patient: PatientInfo, today: dt.date) -> list[tuple[str, str]]:
    """The anonymised facts of one patient block (docs/domain.md §7), in order."""
    age = f"{age_on(patient.geburtsdatum, today)} Jahre" if patient.geburtsdatum else "keine Angabe"
    experience = yes_no(patient.erfahrung_mit_psychotherapie)
    if patient.erfahrung_mit_psychotherapie and patient.letzte_sitzung:
        experience = f"ja (letzte Sitzung: {german_date(patient.letzte_sitzung)})"
    return [
        ("Alter", age),
        ("Geschlecht", GENDER_LABELS.get(patient.geschlecht or "", "keine Angabe")),
        ("Symptome", ", ".join(patient.symptome) or "keine Angabe"),
        ("Krankenkasse", patient.krankenkasse or "keine Angabe"),
        ("Psychotherapieerfahrung", experience),
        ("Offen für Gruppentherapie", yes_no(patient.offen_fuer_gruppentherapie)),
    ]


def patient_block(
    patient: PatientInfo,
    position: int,
    today: dt.date,
    *,
    anfrage_id: int | None = None,
    link_now: dt.datetime | None = None,
) -> dict:
    """Template data of one block; with ``anfrage_id`` it carries the one-click links."""
    links = []
    if anfrage_id is not None:
        links = [
            (label, answer_link(anfrage_id, patient.patient_id, answer, now=link_now))
            for answer, label in LINK_LABELS
        ]
    return {
        "position": position,
        "patient_id": patient.patient_id,
        "facts": patient_facts(patient, today),
        "availability": availability_lines(patient.zeitliche_verfuegbarkeit),
        "links": links,
    }


def _common() -> dict:
    s = settings.get()
    return {
        "service_name": s.SERVICE_NAME,
        "sender_name": s.MAIL_FROM_NAME,
        "sender_email": s.MAIL_FROM,
        "contact_phone": s.CONTACT_PHONE,
        "company_name": s.COMPANY_NAME,
        "company_address": s.COMPANY_ADDRESS,
        "company_register": s.COMPANY_REGISTER,
        "privacy_url": s.PRIVACY_URL,
        "info_url": s.THERAPIST_INFO_URL,
        "audience": "therapist",
    }


def _render(template: str, context: dict) -> tuple[str, str]:
    context = {**_common(), **context}
    text = _environment.get_template(f"{template}.txt").render(context)
    html = _environment.get_template(f"{template}.html").render(context)
    return text, html


def _email(kind, reference_id, subject, template, context, *, to_email, to_name) -> RenderedEmail:
    text, html = _render(template, {"subject": subject, **context})
    return RenderedEmail(
        kind=kind,
        reference_id=reference_id,
        subject=subject,
        text=text,
        html=html,
        headers=email_headers.standard_headers(kind, reference_id),
        to_email=to_email,
        to_name=to_name,
    )


# --- therapist emails -------------------------------------------------------------------


def _bundle_context(anfrage_id, therapist, patients, today, link_now) -> dict:
    if not patients:
        raise ValueError("an inquiry needs at least one patient")
    blocks = [
        patient_block(p, i, today, anfrage_id=anfrage_id, link_now=link_now)
        for i, p in enumerate(patients, start=1)
    ]
    return {
        "anfrage_id": anfrage_id,
        "ref": f"A{anfrage_id}",
        "salutation": therapist_salutation(therapist),
        "count": len(patients),
        "singular": len(patients) == 1,
        "blocks": blocks,
        "form_lines": [answer_form.form_line(b["position"], b["patient_id"]) for b in blocks],
    }


def render_inquiry(
    anfrage_id: int,
    therapist: TherapistInfo,
    patients: list[PatientInfo],
    *,
    today: dt.date | None = None,
    link_now: dt.datetime | None = None,
) -> RenderedEmail:
    """The therapist inquiry (docs/domain.md §7); patients in bundle order."""
    today = today or local_today()
    context = _bundle_context(anfrage_id, therapist, patients, today, link_now)
    context["introduce"] = not therapist.ueber_curavani_informiert
    return _email(
        "anfrage",
        anfrage_id,
        SUBJECT_INQUIRY.format(anfrage_id=anfrage_id),
        "inquiry",
        context,
        to_email=therapist.email,
        to_name=therapist_name(therapist),
    )


def render_reminder(
    anfrage_id: int,
    therapist: TherapistInfo,
    patients: list[PatientInfo],
    *,
    days_since: int,
    today: dt.date | None = None,
    link_now: dt.datetime | None = None,
) -> RenderedEmail:
    """The reminder (docs/domain.md §8.1): "vor N Tagen", the same blocks, no introduction."""
    today = today or local_today()
    context = _bundle_context(anfrage_id, therapist, patients, today, link_now)
    context["days_since"] = days_since
    return _email(
        "erinnerung",
        anfrage_id,
        SUBJECT_REMINDER.format(anfrage_id=anfrage_id),
        "reminder",
        context,
        to_email=therapist.email,
        to_name=therapist_name(therapist),
    )


def render_acceptance_confirmation(
    anfrage_id: int, therapist: TherapistInfo, accepted: list[AcceptedPatient]
) -> RenderedEmail:
    """Thanks for accepting; names the accepted patients (by name only when given)."""
    if not accepted:
        raise ValueError("an acceptance confirmation needs at least one accepted patient")
    return _email(
        "annahme_bestaetigung",
        anfrage_id,
        SUBJECT_ACCEPTANCE.format(anfrage_id=anfrage_id),
        "acceptance",
        {
            "ref": f"A{anfrage_id}",
            "salutation": therapist_salutation(therapist),
            "accepted": accepted,
            "singular": len(accepted) == 1,
        },
        to_email=therapist.email,
        to_name=therapist_name(therapist),
    )


def _offer_context(
    alternatives: list[PatientInfo], offer_anfrage_id: int | None, today: dt.date, link_now
) -> dict:
    """Blocks of up to ``MAX_ANFRAGE_SIZE`` alternatives; with ``offer_anfrage_id`` (the
    Anfrage they were stored as) each block carries that Anfrage's one-click links, and the
    answer form names it."""
    if offer_anfrage_id is not None and not alternatives:
        raise ValueError("an offered Anfrage needs its alternatives")
    limit = settings.get().MAX_ANFRAGE_SIZE
    blocks = [
        patient_block(p, i, today, anfrage_id=offer_anfrage_id, link_now=link_now)
        for i, p in enumerate(alternatives[:limit], start=1)
    ]
    return {
        "offer_ref": f"A{offer_anfrage_id}" if offer_anfrage_id is not None else None,
        "blocks": blocks,
        "singular": len(blocks) == 1,
        "form_lines": (
            [answer_form.form_line(b["position"], b["patient_id"]) for b in blocks]
            if offer_anfrage_id is not None
            else []
        ),
    }


def _offer_headers(offer_anfrage_id: int, answered_anfrage_id: int | None) -> dict[str, str]:
    """An email carrying an offered Anfrage is that Anfrage's inquiry: its Message-ID and
    signed reply address name it (replies are recorded against it); it threads under the
    inquiry the therapist answered."""
    headers = {
        "Message-ID": email_headers.message_id("anfrage", offer_anfrage_id),
        "Reply-To": tokens.reply_address(offer_anfrage_id),
    }
    if answered_anfrage_id:
        original = email_headers.message_id("anfrage", answered_anfrage_id)
        headers.update({"In-Reply-To": original, "References": original})
    return headers


def render_conflict(
    anfrage_id: int,
    therapist: TherapistInfo,
    placed_patient_ids: list[int],
    alternatives: list[PatientInfo],
    *,
    today: dt.date | None = None,
    offer_anfrage_id: int | None = None,
    link_now: dt.datetime | None = None,
) -> RenderedEmail:
    """Conflict notice (docs/domain.md §10): the accepted patient(s) found a place meanwhile;
    up to ``MAX_ANFRAGE_SIZE`` alternatives, or the statement that none is available.

    ``offer_anfrage_id``: the Anfrage the alternatives were stored as (issue 15.3). The
    notice then is that Anfrage's inquiry: its blocks carry the one-click links and the
    answer form of that Anfrage, its Reply-To and Message-ID name it (an answer is recorded
    like any reply to an inquiry), and it threads under the original inquiry."""
    if not placed_patient_ids:
        raise ValueError("a conflict notice names at least one placed patient")
    today = today or local_today()
    email = _email(
        "konflikt",
        anfrage_id,
        SUBJECT_CONFLICT.format(anfrage_id=offer_anfrage_id or anfrage_id),
        "conflict",
        {
            "ref": f"A{anfrage_id}",
            "salutation": therapist_salutation(therapist),
            "placed": list(placed_patient_ids),
            "placed_text": german_join(placed_patient_ids),
            **_offer_context(alternatives, offer_anfrage_id, today, link_now),
        },
        to_email=therapist.email,
        to_name=therapist_name(therapist),
    )
    if offer_anfrage_id is None:
        return email
    return dataclasses.replace(email, headers=_offer_headers(offer_anfrage_id, anfrage_id))


def _reassignment_email(
    kind,
    suffix,
    template,
    subject,
    anfrage_id,
    therapist,
    patient_id,
    search_id,
    number,
    extra=None,
    headers=None,
) -> RenderedEmail:
    """The emails of a conflict reassignment (operations/conflicts.py): keyed per search,
    therapist and reassignment number, so each reassignment sends each of them once."""
    text, html = _render(
        template,
        {
            "subject": subject,
            "ref": f"A{anfrage_id}" if anfrage_id else None,
            "salutation": therapist_salutation(therapist),
            "patient_id": patient_id,
            **(extra or {}),
        },
    )
    domain = settings.get().REPLY_DOMAIN.lower()
    if headers is None:
        headers = {
            "Message-ID": f"<platzsuche-{int(search_id)}.t{int(therapist.therapist_id)}"
            f".{suffix}{int(number)}@{domain}>"
        }
    return RenderedEmail(
        kind=kind,
        reference_id=anfrage_id or search_id,
        subject=subject,
        text=text,
        html=html,
        headers=headers,
        to_email=therapist.email,
        to_name=therapist_name(therapist),
        idempotency_key=f"umzuweisung_{suffix}:{int(search_id)}.{int(number)}",
    )


def render_reassignment_confirmation(
    anfrage_id: int, therapist: TherapistInfo, patient_id: int, search_id: int, number: int
) -> RenderedEmail:
    """To the therapist a conflict was reassigned to: the patient is theirs after all."""
    return _reassignment_email(
        "annahme_bestaetigung",
        "zusage",
        "reassigned",
        SUBJECT_REASSIGNED.format(patient_id=patient_id, anfrage_id=anfrage_id),
        anfrage_id,
        therapist,
        patient_id,
        search_id,
        number,
    )


def render_reassignment_withdrawal(
    anfrage_id: int | None,
    therapist: TherapistInfo,
    patient_id: int,
    search_id: int,
    number: int,
    *,
    alternatives: list[PatientInfo] = (),
    offer_anfrage_id: int | None = None,
    today: dt.date | None = None,
    link_now: dt.datetime | None = None,
) -> RenderedEmail:
    """To the former therapist: the patient goes elsewhere, the confirmation is void; like a
    conflict notice it offers alternatives, as the Anfrage ``offer_anfrage_id`` when given
    (then it is that Anfrage's inquiry, see ``render_conflict``)."""
    ref = f" - Ref: A{offer_anfrage_id or anfrage_id}" if (offer_anfrage_id or anfrage_id) else ""
    extra = _offer_context(list(alternatives), offer_anfrage_id, today or local_today(), link_now)
    headers = _offer_headers(offer_anfrage_id, anfrage_id) if offer_anfrage_id else None
    return _reassignment_email(
        "konflikt",
        "ruecknahme",
        "withdrawn",
        SUBJECT_WITHDRAWN.format(patient_id=patient_id, ref=ref),
        anfrage_id,
        therapist,
        patient_id,
        search_id,
        number,
        extra=extra,
        headers=headers,
    )


# --- patient emails ------------------------------------------------------------------------


def placement_links(platzsuche_id: int, therapist_id: int, link_now=None) -> list[tuple]:
    """(label, url) of the three signed one-click answers of a placed patient."""
    return [
        (label, tokens.placement_link(platzsuche_id, therapist_id, outcome, now=link_now))
        for outcome, label in vocab.VERMITTLUNGSERGEBNIS_LABELS.items()
    ]


def _placement_identity(
    kind_suffix: str, platzsuche_id: int, therapist_id: int, number: int | None = None
) -> dict:
    ids = (kind_suffix, platzsuche_id, therapist_id, number)
    return {
        "idempotency_key": email_headers.placement_key(*ids),
        "headers": {"Message-ID": email_headers.placement_message_id(*ids)},
    }


def render_placement(
    template: str,
    platzsuche_id: int,
    patient: PatientContact,
    therapist: TherapistInfo,
    *,
    attachments: list[str] = (),
    meeting: Meeting | None = None,
    therapist_id: int | None = None,
    with_links: bool = False,
    link_now: dt.datetime | None = None,
    replaces: TherapistInfo | None = None,
    number: int | None = None,
) -> RenderedEmail:
    """Placement email to the patient (docs/domain.md §11.3), one of four templates.

    ``attachments`` are the file names of the attached forms (listed in the text).
    With ``therapist_id`` the email is keyed per search and placed therapist (a search
    placed again after "passt nicht" gets a new one); ``with_links`` adds the three
    signed one-click answers about the initial session. ``replaces``: the therapist an
    earlier placement email named (a conflict reassigned by staff); the email says that it
    replaces that one. ``number``: the reassignment that placed the therapist, which the
    key and Message-ID name (``headers.placement_key``).
    """
    if template not in PLACEMENT_TEMPLATES:
        raise ValueError(f"template must be one of {', '.join(PLACEMENT_TEMPLATES)}")
    if template.startswith("meeting_") and meeting is None:
        raise ValueError("MEETING_DETAILS_REQUIRED: meeting date and time are needed")
    if template in ("email_contact", "meeting_confirmation_email") and not therapist.email:
        raise ValueError(f"template {template} needs the therapist's email address")
    if template in ("phone_contact", "meeting_confirmation_phone") and not therapist.telefon:
        raise ValueError(f"template {template} needs the therapist's phone number")
    name = therapist_name(therapist)
    address = full_name(therapist.plz, therapist.ort)
    context = {
        "audience": "patient",
        "salutation": patient_salutation(patient),
        "patient_name": full_name(patient.vorname, patient.nachname),
        "therapist": therapist,
        "therapist_name": name,
        "therapist_full": full_name(therapist.anrede, name),
        "therapist_salutation": therapist_salutation(therapist),
        "practice_address": ", ".join(x for x in (therapist.strasse, address) if x),
        "phone_windows": availability_lines(therapist.telefonische_erreichbarkeit),
        "availability": availability_lines(patient.zeitliche_verfuegbarkeit),
        "attachments": [Path(a).name for a in attachments],
        "meeting_date": german_date(meeting.date) if meeting else None,
        "meeting_time": meeting.time if meeting else None,
        "placement_links": (
            placement_links(platzsuche_id, therapist_id, link_now)
            if with_links and therapist_id
            else []
        ),
        "confirm_days": settings.get().PLACEMENT_CONFIRM_DAYS,
        "replaces_name": therapist_name(replaces) if replaces else None,
    }
    email = _email(
        "vermittlung",
        platzsuche_id,
        SUBJECT_PLACEMENT,
        f"placement_{template}",
        context,
        to_email=patient.email,
        to_name=full_name(patient.vorname, patient.nachname),
    )
    if therapist_id is None:
        return email
    # A meeting confirmation is an email of its own: staff send it once a first session is
    # arranged, also after the placement email went out at acceptance.
    suffix = "termin" if template.startswith("meeting_") else ""
    identity = _placement_identity(suffix, platzsuche_id, therapist_id, number)
    return dataclasses.replace(email, **identity)


def render_placement_reminder(
    platzsuche_id: int,
    therapist_id: int,
    patient: PatientContact,
    therapist: TherapistInfo,
    *,
    days_since: int,
    link_now: dt.datetime | None = None,
) -> RenderedEmail:
    """The one reminder to a placed patient who has not reported on the initial session
    (docs/domain.md §11.3): the therapist's contact data again and the three links."""
    s = settings.get()
    context = {
        "audience": "patient",
        "salutation": patient_salutation(patient),
        "therapist": therapist,
        "therapist_name": therapist_name(therapist),
        "days_since": days_since,
        "remaining_days": max(s.PLACEMENT_CONFIRM_DAYS - days_since, 1),
        "placement_links": placement_links(platzsuche_id, therapist_id, link_now),
    }
    email = _email(
        "vermittlung",
        platzsuche_id,
        SUBJECT_PLACEMENT_REMINDER,
        "placement_reminder",
        context,
        to_email=patient.email,
        to_name=full_name(patient.vorname, patient.nachname),
    )
    identity = _placement_identity("erinnerung", platzsuche_id, therapist_id)
    return dataclasses.replace(email, **identity)
