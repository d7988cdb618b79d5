"""German texts for the outcome codes the operations answer with.

Operations speak English to logs, the CLI and the API; staff read German. The status line
shows the German text first and keeps the code small beside it (staff can quote it to
support). A code without a text here falls back to the operation's own message. Codes the
console raises itself (FORBIDDEN, NOT_SIGNED_IN, CONFIRMATION_REQUIRED, INVALID_DATE,
TEXT_TOO_LONG) carry German messages naming the record already and have no entry here.
"""

from __future__ import annotations

import re

GERMAN = {
    "ACTIVE_SEARCH_EXISTS": "Für diese Person läuft schon eine aktive Suche",
    "ACTOR_REQUIRED": "Bitte angeben, wer die Änderung vornimmt",
    "ALREADY_ANSWERED": "Diese Anfrage bzw. dieser Patient ist schon beantwortet",
    "ALREADY_EXISTS": "Das gibt es schon",
    "ALREADY_PLANNED": "Danach ist schon ein neuer Anruf geplant",
    "ALREADY_PROCESSED": "Dieser Eingang ist schon erledigt",
    "ALREADY_QUEUED": "Diese Anfrage ist schon zum Versand eingeplant",
    "ALREADY_ASSIGNED": "Die Suche ist dieser Therapeutin / diesem Therapeuten schon zugewiesen: "
    "nichts geändert",
    "ALREADY_SETTLED": "Dieser Konflikt ist schon erledigt: nichts geändert",
    "ALREADY_SENT": "Diese Anfrage ist schon gesendet",
    "ANFRAGE_CLOSED": "Diese Anfrage ist schon abgeschlossen",
    "ANFRAGE_NOT_FOUND": "Diese Anfrage gibt es nicht",
    "ANFRAGE_NOT_SENT": "Diese Anfrage ist noch nicht gesendet",
    "ANFRAGE_REQUIRED": "Bitte die Anfrage-Nummer angeben, auf die sich die Antwort bezieht",
    "CALL_NOT_FOUND": "Diesen Anruf gibt es nicht",
    "EMAIL_NOT_FAILED": "Diese E-Mail ist nicht fehlgeschlagen",
    "EMAIL_NOT_FOUND": "Diese E-Mail gibt es nicht",
    "INVALID_ADDRESS": "Die Adresse ist ungültig",
    "INVALID_EXCLUSION_LIST": "Die Ausschlussliste ist ungültig",
    "INVALID_FLAG": "Diesen Schalter gibt es nicht",
    "INVALID_ID": "Die Nummer ist ungültig",
    "INVALID_LIMIT": "Die Anzahl ist ungültig",
    "INVALID_OUTCOME": "Dieses Ergebnis ist hier nicht möglich",
    "INVALID_PLZ_PREFIX": "Das PLZ-Präfix ist ungültig (1–5 Ziffern)",
    "INVALID_ROLLOUT": "Der Anteil muss zwischen 0 und 100 liegen",
    "INVALID_SEARCH": "Diese Suche kann hier nicht verwendet werden",
    "INVALID_SOURCE": "Die Quelle ist ungültig",
    "INVALID_STATE": "In diesem Zustand ist das nicht möglich",
    "INVALID_STATUS": "Dieser Status ist hier nicht möglich",
    "INVALID_TEMPLATE": "Diese Vorlage gibt es nicht",
    "INVALID_TRANSITION": "Dieser Statuswechsel ist nicht erlaubt",
    "MEETING_DETAILS_REQUIRED": "Für diese Vorlage fehlen Termindetails",
    "MISSING_RESPONSES": "Für einige Patient:innen fehlt eine Antwort",
    "NOT_EXCLUDED": "Diese Therapeutin / dieser Therapeut ist nicht ausgeschlossen",
    "NOT_FOUND": "Nicht gefunden",
    "NOT_IN_REVIEW": "Dieser Eingang ist nicht (mehr) in Prüfung",
    "NOT_PLACED": "Diese Suche ist nicht vermittelt",
    "NO_ELIGIBLE_PATIENTS": "Keine passenden Patient:innen für diese Praxis",
    "PATIENT_DATA_INCOMPLETE": "Die Patientendaten sind unvollständig",
    "PATIENT_DATA_INVALID": "Die Patientendaten sind ungültig",
    "PATIENT_NOT_FOUND": "Diese Patientin / diesen Patienten gibt es nicht",
    "PLATZSUCHE_NOT_FOUND": "Diese Suche gibt es nicht",
    "REASON_REQUIRED": "Bitte einen Grund angeben",
    "RECIPIENT_ERASED": "Die Daten des Empfängers wurden gelöscht",
    "STAFF_REQUIRED": "Bitte den Namen der Mitarbeiterin / des Mitarbeiters angeben",
    "STAFF_TOO_LONG": "Der Name ist zu lang",
    "THERAPIST_CONTACT_MISSING": "Für diese Praxis fehlt eine Kontaktmöglichkeit",
    "THERAPIST_EMAIL_INVALID": "Die E-Mail-Adresse dieser Praxis ist als unzustellbar markiert: "
    "bitte anrufen oder eine neue Adresse eintragen",
    "THERAPIST_EMAIL_MISSING": "Für diese Praxis ist keine E-Mail-Adresse hinterlegt",
    # update_platzsuche and reassign_conflict: an erfolgreich search keeps its therapist
    "THERAPIST_LOCKED": "Diese Suche ist erfolgreich abgeschlossen und behält ihre Therapeutin / "
    "ihren Therapeuten",
    "THERAPIST_NOT_CONTACTABLE": "Diese Praxis darf gerade nicht kontaktiert werden (Kontaktpause)",
    "THERAPIST_NOT_FOUND": "Diese Therapeutin / diesen Therapeuten gibt es nicht",
    "THERAPIST_REQUIRED": "Bitte eine Therapeutin / einen Therapeuten wählen",
    "UNKNOWN_PATIENTS": "Diese Patient:innen gehören nicht zu der Anfrage",
}


def german(code: str, fallback: str) -> str:
    """The German text for ``code``, else the operation's own message."""
    return GERMAN.get(code, fallback)


# Why the reply reader sent a reply to review (psymatch/domain/reply_parse.py words its
# reasons in English for logs, the CLI and `replies stats`); staff read them in German.
# The therapist's own words (in quotes) are kept as they are.
_Q = r"'(?P<q>.*)'"
REVIEW_REASONS = [
    (rf"hedged: {_Q}", "Zögernde Antwort: „{q}“"),
    (r"reference (?P<n>.+) is not in the bundle", "Nummer {n} gehört nicht zu dieser Anfrage"),
    (rf"{_Q} \(not all\)", "„{q}“ (nicht alle)"),
    (rf"acceptance and refusal in one clause: {_Q}", "Zusage und Absage in einem Satz: „{q}“"),
    (rf"patient described, not named: {_Q}", "Patient:in beschrieben, nicht benannt: „{q}“"),
    (r"patient (?P<n>\d+): acceptance and refusal", "Patient {n}: Zusage und Absage"),
    (rf"patient (?P<n>\d+): contradicts {_Q}", "Patient {n}: widerspricht „{q}“"),
    (rf"'the others' without a named patient: {_Q}", "„die anderen“ ohne benannte Person: „{q}“"),
    (r"acceptance and refusal without naming patients", "Zusage und Absage ohne Namen/Nummern"),
    (r"acceptance without naming the patient", "Zusage, ohne die Person zu nennen"),
    (r"acceptance without naming which patient", "Zusage, ohne zu sagen, für wen"),
    (
        r"patient (?P<n>\d+): form says (?P<a>\S+), text says (?P<b>\S+)",
        "Patient {n}: Formular sagt {a}, Text sagt {b}",
    ),
    (rf"uncertain offer beside the refusal: {_Q}", "Unsicheres Angebot neben der Absage: „{q}“"),
    (rf"the therapist asks: {_Q}", "Die Praxis fragt: „{q}“"),
    (r"no answer recognised", "Keine Antwort erkannt"),
    (r"no answer for patient\(s\) (?P<n>.+)", "Keine Antwort für Patient {n}"),
    (
        r"answer form line for patient (?P<n>\d+) is ambiguous",
        "Formularzeile zu Patient {n} unklar",
    ),
]
_REVIEW_PATTERNS = [(re.compile(p + r"$", re.S), text) for p, text in REVIEW_REASONS]


def review_reason_de(reason: str | None) -> str:
    """A review reason in German; parts without a rule (already German ones, e.g.
    "Anfrage nicht erkannt", or an outcome code with its message) stay as they are."""
    parts = []
    for part in (reason or "").split("; "):
        for pattern, text in _REVIEW_PATTERNS:
            found = pattern.match(part)
            if found:
                parts.append(text.format(**found.groupdict()))
                break
        else:
            parts.append(part)
    return "; ".join(parts)
