"""German formatting for the staff console: local time, dates, numbers and enum labels.

Every panel shows what staff read the way a German office writes it, so no panel formats
a date, a number or an enum value itself. The API (stable; the paging widget is
``console.paging``):

* ``local(at)`` – a naive UTC ``datetime`` (as the database stores it) or an aware one,
  in the console's time zone (setting ``TIMEZONE``, default Europe/Berlin); None stays None.
* ``datetime_de(at)`` – ``"06.12.2026 11:05"`` (local time, TT.MM.JJJJ HH:MM); ``""`` for None.
* ``date_de(value)`` – ``"06.12.2026"``; a ``datetime`` is converted to local time first,
  a ``date`` is shown as it is; ``""`` for None.
* ``time_de(at)`` – ``"11:05"`` (local time).
* ``number_de(value, decimals=None)`` – ``"1.234,5"``; with ``decimals`` exactly that many
  places (``number_de(2, 1)`` → ``"2,0"``); ``""`` for None. ``percent_de(0.125)`` → ``"12,5 %"``.
* ``label(code, kind=None)`` – the German word for an enum value of
  ``psymatch.domain.vocab`` (``label("auf_der_Suche")`` → ``"auf der Suche"``). ``kind``
  names the vocabulary (``"SUCHSTATUS"``, ``"EMAILSTATUS"``, ``"AUDIT_ACTION"``, ...,
  see ``LABELS``) where one code means different things; unknown codes are shown with
  spaces instead of underscores, never as an error; None → ``""``.
* ``options(kind, codes=None)`` – ``[(label, code), ...]`` for a ``Dropdown`` or
  ``ToggleButtons``: staff see German words, the panel gets the code.

Babel formats the numbers (locale ``de_DE``); ``zoneinfo`` converts the time.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal, format_percent

from psymatch import settings
from psymatch.domain import vocab

LOCALE = "de_DE"
DATE_FORMAT = "%d.%m.%Y"
TIME_FORMAT = "%H:%M"
DATETIME_FORMAT = f"{DATE_FORMAT} {TIME_FORMAT}"


def zone() -> ZoneInfo:
    """The console's time zone (setting ``TIMEZONE``)."""
    return ZoneInfo(settings.get().TIMEZONE)


def local(at: dt.datetime | None) -> dt.datetime | None:
    """``at`` in local time; a naive value is UTC (how every timestamp is stored)."""
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(zone())


def datetime_de(at: dt.datetime | None) -> str:
    """TT.MM.JJJJ HH:MM in local time; ``""`` for None."""
    return "" if at is None else local(at).strftime(DATETIME_FORMAT)


def date_de(value: dt.date | dt.datetime | None) -> str:
    """TT.MM.JJJJ; a datetime is taken in local time first (23:30 UTC is the next day)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = local(value)
    return value.strftime(DATE_FORMAT)


def time_de(at: dt.datetime | None) -> str:
    """HH:MM in local time; ``""`` for None."""
    return "" if at is None else local(at).strftime(TIME_FORMAT)


def number_de(value, decimals: int | None = None) -> str:
    """A number with German separators: 1.234,5. ``decimals`` fixes the places."""
    if value is None:
        return ""
    if decimals is None:
        return format_decimal(value, locale=LOCALE)
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return format_decimal(value, format=pattern, locale=LOCALE)


def percent_de(share, decimals: int = 1) -> str:
    """A share (0.125) as a German percentage: "12,5 %"."""
    if share is None:
        return ""
    pattern = "#,##0" + ("." + "#" * decimals if decimals > 0 else "") + " %"
    return format_percent(share, format=pattern, locale=LOCALE)


_ANTWORTEN_KURZ = {
    vocab.ANGENOMMEN: "angenommen",
    vocab.ABGELEHNT_KAPAZITAET: "abgelehnt (keine Kapazität)",
    vocab.ABGELEHNT_NICHT_GEEIGNET: "abgelehnt (nicht geeignet)",
    vocab.ABGELEHNT_SONSTIGES: "abgelehnt (sonstiger Grund)",
    vocab.IN_SITZUNGEN: "in Sitzungen",
    vocab.NICHT_ERSCHIENEN: "nicht erschienen",
}

# One table per vocabulary of psymatch.domain.vocab (and the audit log's actions and
# record kinds). A code missing here is shown with spaces for underscores.
LABELS: dict[str, dict[str, str]] = {
    "ANREDE": {c: c for c in vocab.ANREDE},
    "GESCHLECHT": {"keine_Angabe": "keine Angabe"},
    "THERAPEUTENGESCHLECHT_PRAEFERENZ": {
        "Männlich": "männlich",
        "Weiblich": "weiblich",
        "Egal": "egal",
    },
    "THERAPIEVERFAHREN": {
        "egal": "egal",
        "Verhaltenstherapie": "Verhaltenstherapie",
        "tiefenpsychologisch_fundierte_Psychotherapie": (
            "tiefenpsychologisch fundierte Psychotherapie"
        ),
    },
    "VERKEHRSMITTEL": {"Auto": "Auto", "ÖPNV": "ÖPNV"},
    "PATIENTENSTATUS": {
        "offen": "offen",
        "auf_der_Suche": "auf der Suche",
        "in_Therapie": "in Therapie",
        "Therapie_abgeschlossen": "Therapie abgeschlossen",
        "Suche_abgebrochen": "Suche abgebrochen",
        "Therapie_abgebrochen": "Therapie abgebrochen",
    },
    "THERAPEUTENSTATUS": {"aktiv": "aktiv", "gesperrt": "gesperrt", "inaktiv": "inaktiv"},
    "SUCHSTATUS": {
        "aktiv": "aktiv",
        "erfolgreich": "erfolgreich",
        "pausiert": "pausiert",
        "abgebrochen": "abgebrochen",
    },
    "ANTWORTTYP": {
        "vollstaendige_Annahme": "vollständige Annahme",
        "teilweise_Annahme": "teilweise Annahme",
        "vollstaendige_Ablehnung": "vollständige Ablehnung",
        "keine_Antwort": "keine Antwort",
    },
    "ANFRAGE_PATIENT_STATUS": {
        "anstehend": "anstehend",
        "angenommen": "angenommen",
        "abgelehnt": "abgelehnt",
        "keine_antwort": "keine Antwort",
        "anderweitig_vermittelt": "anderweitig vermittelt",
    },
    # the short forms for tables; vocab.ANTWORT_LABELS has the long ones of emails and links
    "THERAPEUTENANTWORTEN": dict(_ANTWORTEN_KURZ),
    "PATIENTENERGEBNIS": dict(_ANTWORTEN_KURZ),
    "VERMITTLUNGSERGEBNISSE": dict(vocab.VERMITTLUNGSERGEBNIS_LABELS),
    "EMAILSTATUS": {
        "Entwurf": "Entwurf",
        "In_Warteschlange": "in Warteschlange",
        "Wird_gesendet": "wird gesendet",
        "Gesendet": "gesendet",
        "Fehlgeschlagen": "fehlgeschlagen",
    },
    "TELEFONANRUFSTATUS": {
        "geplant": "geplant",
        "abgeschlossen": "abgeschlossen",
        "fehlgeschlagen": "fehlgeschlagen",
        "abgebrochen": "abgebrochen",
    },
    "EMAIL_ART": {
        "anfrage": "Anfrage",
        "erinnerung": "Erinnerung",
        "annahme_bestaetigung": "Annahmebestätigung",
        "konflikt": "Konfliktmitteilung",
        "vermittlung": "Vermittlungsmail",
        "sonstige": "Sonstige",
    },
    "INBOUND_STATUS": {
        "neu": "neu",
        "verarbeitet": "verarbeitet",
        "pruefung": "zur Prüfung",
        "ignoriert": "ignoriert",
        "fehler": "Fehler",
    },
    "OUTBOX_STATUS": {
        "offen": "offen",
        "eingereiht": "eingereiht",
        "erledigt": "erledigt",
        "fehlgeschlagen": "fehlgeschlagen",
    },
    "GEO_QUELLE": {"plz": "PLZ", "adresse": "Adresse"},
    "STAFF_ROLES": {"lesen": "Lesen", "team": "Team", "admin": "Admin"},
    # the audit log (operations/audit.py): what was done ...
    "AUDIT_ACTION": {
        "send_anfrage": "Anfrage gesendet",
        "request_send": "Senden angefordert",
        "follow_up": "Nachfassen",
        "conflict_notice": "Konfliktmitteilung",
        "settle_conflict": "Konflikt erledigt",
        "reassign_conflict": "Konflikt neu zugewiesen",
        "reassignment_withdrawal": "Rücknahme mit Alternativen gesendet",
        "set_flag": "Schalter geändert",
        "record_response": "Antwort erfasst",
        "record_patient_outcome": "Ergebnis je Patient erfasst",
        "close_without_response": "ohne Antwort geschlossen",
        "db_upgrade": "Datenbank aktualisiert",
        "db_downgrade": "Datenbank zurückgesetzt",
        "crypto_rotate_started": "Schlüsselwechsel begonnen",
        "crypto_rotate": "Schlüsselwechsel",
        "demo_data": "Demodaten geladen",
        "retention_run": "Löschlauf",
        "import": "Import",
        "patient_erased": "Patientendaten gelöscht",
        "patient_exported": "Patientendaten exportiert",
        "create_staff": "Konto angelegt",
        "set_staff_role": "Rolle geändert",
        "set_staff_password": "Passwort geändert",
        "bundle_round": "Runde",
        "override_cooling": "Abkühlung überschrieben",
        "update_platzsuche": "Platzsuche geändert",
        "create_platzsuche": "Platzsuche angelegt",
        "exclude_therapist": "Therapeut ausgeschlossen",
        "remove_exclusion": "Ausschluss aufgehoben",
        "set_call_status": "Anrufstatus geändert",
        "new_call": "Anruf geplant",
        "reschedule_call": "Anruf verschoben",
        "record_placement_outcome": "Rückmeldung zur Vermittlung erfasst",
        "placement_reminder": "Erinnerung zur Vermittlung",
        "request_placement_email": "Vermittlungsmail angefordert",
        "dismiss_reply": "Antwort verworfen",
        "decide_link_klick": "Link-Klick entschieden",
        "dismiss_link_klick": "Link-Klick verworfen",
        "resend_email": "E-Mail erneut gesendet",
        "confirm_sender": "Absender bestätigt",
        "edit_patient": "Daten geändert",
        "edit_therapist": "Daten geändert",
        "set_potenziell_verfuegbar": "Verfügbarkeit geändert",
        "set_therapist_status": "Status geändert",
        "create_anfrage": "Anfrage erstellt",
    },
    # ... and to what kind of record
    "AUDIT_ENTITY": {
        "platzsuche": "Platzsuche",
        "therapeutenanfrage": "Therapeutenanfrage",
        "patient": "Patient",
        "therapist": "Therapeut",
        "telefonanruf": "Telefonanruf",
        "email": "E-Mail",
        "mitarbeiter": "Mitarbeiter/in",
        "link_klick": "Link-Klick",
        "inbound_message": "eingegangene Nachricht",
        "feature_flag": "Schalter",
        "schema": "Datenbankschema",
        "encryption": "Verschlüsselung",
        "database": "Datenbank",
        "outbox": "Postausgang",
    },
}

# Codes that mean the same in every vocabulary, for label(code) without a kind.
_ANY: dict[str, str] = {}
for _table in LABELS.values():
    for _code, _word in _table.items():
        _ANY.setdefault(_code, _word)


def label(code, kind: str | None = None) -> str:
    """The German word for ``code`` (of vocabulary ``kind`` if given)."""
    if code is None:
        return ""
    code = str(code)
    if kind is not None:
        if kind not in LABELS:
            raise KeyError(f"no German labels for vocabulary {kind!r}")
        word = LABELS[kind].get(code)
        if word is not None:
            return word
    return _ANY.get(code, code.replace("_", " "))


def options(kind: str, codes=None) -> list[tuple[str, str]]:
    """``[(German label, code), ...]`` for a selection widget, in the order of ``codes``
    (default: the vocabulary's tuple in ``psymatch.domain.vocab``, else the label table)."""
    if codes is None:
        codes = getattr(vocab, kind, None) or tuple(LABELS[kind])
    return [(label(code, kind), code) for code in codes]
