"""Rules of the Platzsuche lifecycle (docs/domain.md §4 and §12), pure functions."""

from __future__ import annotations

from psymatch.domain.schedule import ScheduleError, parse_schedule

TRANSITIONS = {
    "aktiv": ("pausiert", "erfolgreich", "abgebrochen"),
    "pausiert": ("aktiv", "abgebrochen"),
    "erfolgreich": (),
    "abgebrochen": (),
}
EMAIL_TEMPLATES = (
    "email_contact",
    "phone_contact",
    "meeting_confirmation_email",
    "meeting_confirmation_phone",
)
# What each placement template hands the patient: the therapist's email or phone
_TEMPLATE_CONTACT = {
    "email_contact": "email",
    "meeting_confirmation_email": "email",
    "phone_contact": "phone",
    "meeting_confirmation_phone": "phone",
}


def default_placement_template(email: str | None, phone: str | None) -> str:
    """Contact by email when the therapist has an address, else by phone."""
    if (email or "").strip() or not (phone or "").strip():
        return "email_contact"
    return "phone_contact"


def missing_contact(template: str, email: str | None, phone: str | None) -> str | None:
    """``"email address"`` / ``"phone number"`` when ``template`` needs what is missing."""
    need = _TEMPLATE_CONTACT.get(template)
    if need == "email" and not (email or "").strip():
        return "email address"
    if need == "phone" and not (phone or "").strip():
        return "phone number"
    return None


def transition_error(current: str, target: str) -> str | None:
    """None when ``current -> target`` is allowed (the same status again is a no-op)."""
    if target not in TRANSITIONS:
        return "INVALID_STATUS"
    if target == current or target in TRANSITIONS.get(current, ()):
        return None
    return "INVALID_TRANSITION"


# the patient fields ``readiness_error`` reads (a caller may load only these)
READINESS_FIELDS = (
    "geschlecht",
    "symptome",
    "krankenkasse",
    "geburtsdatum",
    "erfahrung_mit_psychotherapie",
    "offen_fuer_gruppentherapie",
    "zeitliche_verfuegbarkeit",
    "raeumliche_verfuegbarkeit",
    "letzte_sitzung_vorherige_psychotherapie",
)


def readiness_error(patient) -> tuple[str, str] | None:
    """The first field that keeps a patient from starting a search, with the reason.

    ``patient`` is any object with the patient fields (a model row or a namespace).
    The order is the one docs/domain.md §12 prescribes.
    """
    if not getattr(patient, "geschlecht", None):
        return "geschlecht", "required"
    symptoms = getattr(patient, "symptome", None)
    if not isinstance(symptoms, list) or not symptoms:
        return "symptome", "needs at least one symptom"
    if not (getattr(patient, "krankenkasse", None) or "").strip():
        return "krankenkasse", "required"
    if getattr(patient, "geburtsdatum", None) is None or not str(patient.geburtsdatum).strip():
        return "geburtsdatum", "required"
    for name in ("erfahrung_mit_psychotherapie", "offen_fuer_gruppentherapie"):
        if not isinstance(getattr(patient, name, None), bool):
            return name, "must be answered with yes or no"
    try:
        parse_schedule(getattr(patient, "zeitliche_verfuegbarkeit", None), require_slot=True)
    except ScheduleError as error:
        return "zeitliche_verfuegbarkeit", str(error)
    space = getattr(patient, "raeumliche_verfuegbarkeit", None) or {}
    max_km = space.get("max_km") if isinstance(space, dict) else None
    if max_km is not None and (
        isinstance(max_km, bool) or not isinstance(max_km, int | float) or max_km <= 0
    ):
        return "raeumliche_verfuegbarkeit.max_km", "must be a number greater than 0"
    if patient.erfahrung_mit_psychotherapie and not getattr(
        patient, "letzte_sitzung_vorherige_psychotherapie", None
    ):
        return "letzte_sitzung_vorherige_psychotherapie", "required when there was a therapy"
    return None
