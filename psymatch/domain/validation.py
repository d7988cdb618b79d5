"""Validation and normalisation of one intake row (therapist or patient).

Pure functions, no database: ``validate_therapist`` and ``validate_patient``
take one row as read from a JSON or CSV file and return the model field values
to write, or raise ``RowError`` naming the first offending field.

Rules (docs/domain.md §3, §12 and docs/import-formats.md):

- Field names are the German model field names; enum values are exact and
  case-sensitive (a near miss is only *suggested* in the message, never
  accepted).
- A value that is ``None`` or blank text counts as "not given": the returned
  dict only holds the fields a row actually gives, so an update never clears or
  resets a stored value it does not mention (model defaults apply on create).
- Values may arrive typed (JSON) or as text (CSV): every parser accepts both,
  e.g. ``true``/``"ja"`` for booleans, a JSON array or ``a; b`` for lists, a
  JSON object or ``Mo 09:00-12:00, 14:00-16:00; Di 10:00-12:00`` for weekly
  schedules.
- Fields that psymatch itself maintains (status of a patient, cooling date,
  coordinates, ...) are refused rather than silently overwritten.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
from collections.abc import Callable, Container, Mapping

from . import vocab
from .schedule import ScheduleError, parse_schedule


class RowError(ValueError):
    """One intake row is invalid; ``field`` names the first offending field."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


Parser = Callable[[str, object], object]

# --- helpers ------------------------------------------------------------------------------


def is_empty(value) -> bool:
    """``None`` and blank text mean "not given" (an empty CSV cell, a JSON null)."""
    return value is None or (isinstance(value, str) and not value.strip())


def _describe(value) -> str:
    """A short type description for messages ("number", "list", ...)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _suggest(value: str, allowed) -> str:
    """'; did you mean 'X'?' for a near miss (case or a typo), else ''."""
    by_lower = {a.lower(): a for a in allowed}
    match = by_lower.get(value.lower())
    if match is None:
        close = difflib.get_close_matches(value, list(allowed), n=1, cutoff=0.75)
        match = close[0] if close else None
    return f"; did you mean {match!r}?" if match else ""


def _require_text(field: str, value) -> str:
    if not isinstance(value, str):
        raise RowError(field, f"expected text, got {_describe(value)}")
    return value.strip()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# --- value parsers: (field, value) -> normalised value ------------------------------------


def text(max_length: int | None = None, *, single_line: bool = True) -> Parser:
    """Trimmed text, at most ``max_length`` characters (the model's column size)."""

    def parse(field: str, value) -> str:
        result = _require_text(field, value)
        if max_length is not None and len(result) > max_length:
            raise RowError(field, f"too long ({len(result)} characters, at most {max_length})")
        if single_line and _CONTROL.search(result):
            raise RowError(field, "must be a single line without control characters")
        return result

    return parse


def enum(allowed: tuple[str, ...]) -> Parser:
    """One of ``allowed``, exactly (enum values are case-sensitive, docs/domain.md conventions)."""

    def parse(field: str, value) -> str:
        result = _require_text(field, value)
        if result not in allowed:
            choices = ", ".join(allowed)
            raise RowError(
                field, f"unknown value {result!r} (allowed: {choices}){_suggest(result, allowed)}"
            )
        return result

    return parse


_TRUE = ("true", "ja", "1")
_FALSE = ("false", "nein", "0")


def boolean(field: str, value) -> bool:
    """true/false, ja/nein, 1/0 (text case-insensitive; JSON booleans and 0/1)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise RowError(field, f"expected true/false (or ja/nein, 1/0), got {value!r}")


_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_GERMAN_DATE = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")


def date(field: str, value) -> dt.date:
    """ISO ``YYYY-MM-DD`` or German ``DD.MM.YYYY``; impossible dates are refused."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raw = _require_text(field, value)
    iso, german = _ISO_DATE.fullmatch(raw), _GERMAN_DATE.fullmatch(raw)
    if iso:
        year, month, day = (int(g) for g in iso.groups())
    elif german:
        day, month, year = (int(g) for g in german.groups())
    else:
        raise RowError(field, f"expected a date YYYY-MM-DD or DD.MM.YYYY, got {raw!r}")
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise RowError(field, f"impossible date {raw!r}") from None


_INTEGER = re.compile(r"[+-]?[0-9]+")


def integer(field: str, value) -> int:
    """A whole number (JSON integer or decimal text); booleans and fractions refused."""
    if isinstance(value, bool):
        raise RowError(field, f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise RowError(field, f"expected a whole number, got {value!r}")


def _number(field: str, value) -> float | int:
    """A finite number (JSON number or decimal text, comma accepted as decimal mark)."""
    if isinstance(value, bool):
        raise RowError(field, f"expected a number, got {value!r}")
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    if isinstance(value, str):
        try:
            value = float(value.strip().replace(",", "."))
        except ValueError:
            raise RowError(field, f"expected a number, got {value!r}") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise RowError(field, f"expected a number, got {value!r}")
    return value


def age_limit(field: str, value) -> int | None:
    """alter_min / alter_max: whole number >= 0; 0 means "no limit" and becomes null."""
    number = integer(field, value)
    if number < 0:
        raise RowError(field, f"must be 0 or more, got {number}")
    return number or None


_PLZ = re.compile(r"[0-9]{5}")


def plz_format(field: str, value) -> str:
    """Exactly five ASCII digits. JSON numbers are refused: they lose leading zeros."""
    if not isinstance(value, str):
        raise RowError(field, f"postal code must be text of five digits, got {_describe(value)}")
    result = value.strip()
    if not _PLZ.fullmatch(result):
        raise RowError(field, f"postal code must be exactly five digits, got {result!r}")
    return result


_ALNUM = r"[^\W_]"
_LABEL = rf"{_ALNUM}(?:(?:{_ALNUM}|-){{0,61}}{_ALNUM})?"
_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
EMAIL_PATTERN = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+[^\W\d_]{{2,63}}")


def email(field: str, value) -> str:
    """``local@domain.tld``: dot-separated atoms, domain labels, a letter TLD; ≤ 254 chars."""
    result = _require_text(field, value)
    if len(result) > 254 or not EMAIL_PATTERN.fullmatch(result):
        raise RowError(field, f"not a valid email address: {result!r}")
    if len(result.split("@", 1)[0]) > 64:
        raise RowError(field, "the part before '@' is longer than 64 characters")
    return result


# --- structured values: lists, schedules, objects -----------------------------------------


def _json_text(field: str, raw: str, expected: type, what: str):
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RowError(field, f"invalid JSON {what} ({exc.msg} at column {exc.colno})") from None
    if not isinstance(parsed, expected):
        raise RowError(field, f"expected a JSON {what}, got {_describe(parsed)}")
    return parsed


def as_list(field: str, value) -> list:
    """A JSON list, or text: a JSON array (``[...]``) or ``;``-separated values."""
    if isinstance(value, str):
        raw = value.strip()
        if raw.startswith("["):
            return _json_text(field, raw, list, "array")
        return [part.strip() for part in raw.split(";") if part.strip()]
    if not isinstance(value, list):
        raise RowError(field, f"expected a list, got {_describe(value)}")
    return value


def text_list(max_item_length: int = 100) -> Parser:
    """A list of non-empty trimmed strings; repeated entries are dropped."""

    def parse(field: str, value) -> list[str]:
        result: list[str] = []
        for item in as_list(field, value):
            if not isinstance(item, str) or not item.strip():
                raise RowError(field, f"entries must be non-empty text, got {item!r}")
            item = item.strip()
            if len(item) > max_item_length:
                raise RowError(field, f"entry {item[:20]!r}... longer than {max_item_length}")
            if item not in result:
                result.append(item)
        return result

    return parse


_ICD10 = re.compile(r"[A-Z][0-9]{2}(?:\.[0-9A-Z]{1,4})?")


def icd10_list(field: str, value) -> list[str]:
    """ICD-10 codes like ``F32`` or ``F41.1`` (stored only, docs/domain.md §3)."""
    codes = text_list(10)(field, value)
    for code in codes:
        if not _ICD10.fullmatch(code):
            raise RowError(field, f"{code!r} is not an ICD-10 code like 'F32' or 'F41.1'")
    return codes


def symptom_list(minimum: int) -> Parser:
    """``minimum``..6 distinct labels of the fixed symptom list (docs/domain.md §3)."""

    def parse(field: str, value) -> list[str]:
        labels: list[str] = []
        for item in as_list(field, value):
            if not isinstance(item, str):
                raise RowError(field, f"entries must be symptom labels, got {item!r}")
            label = item.strip()
            if label not in vocab.SYMPTOME:
                raise RowError(field, f"unknown symptom {label!r}{_suggest(label, vocab.SYMPTOME)}")
            if label in labels:
                raise RowError(field, f"symptom {label!r} listed twice")
            labels.append(label)
        if not minimum <= len(labels) <= vocab.MAX_SYMPTOME:
            raise RowError(
                field, f"needs {minimum} to {vocab.MAX_SYMPTOME} symptoms, got {len(labels)}"
            )
        return labels

    return parse


def id_list(field: str, value) -> list[int]:
    """Internal therapist ids (whole numbers ≥ 1); repeated ids are dropped."""
    result: list[int] = []
    for item in as_list(field, value):
        number = integer(field, item)
        if number < 1:
            raise RowError(field, f"therapist ids are 1 or more, got {number}")
        if number not in result:
            result.append(number)
    return result


_COMPACT_PART = re.compile(r"([^\W\d_]+)\.?\s*:?\s*(.*)", re.DOTALL)


def _compact_schedule(field: str, raw: str) -> dict[str, list[str]]:
    """``Mo 09:00-12:00, 14:00-16:00; Di 10:00-12:00`` -> {"Mo": [...], "Di": [...]}."""
    result: dict[str, list[str]] = {}
    for part in raw.split(";"):
        part = part.strip()
        if not part:
            continue
        match = _COMPACT_PART.fullmatch(part)
        if not match or not match.group(2).strip():
            raise RowError(
                field,
                f"malformed schedule part {part!r} (expected e.g. 'Mo 09:00-12:00, 14:00-16:00')",
            )
        day, ranges = match.groups()
        result.setdefault(day, []).extend(r.strip() for r in ranges.split(","))
    return result


def schedule(field: str, value) -> dict[str, list[str]]:
    """A weekly schedule (docs/domain.md §3): an object, JSON text, or the compact text form."""
    if isinstance(value, str):
        raw = value.strip()
        if raw.startswith("{"):
            value = _json_text(field, raw, dict, "object")
        else:
            value = _compact_schedule(field, raw)
    try:
        return parse_schedule(value)
    except ScheduleError as exc:
        raise RowError(field, str(exc)) from None


def raeumliche_verfuegbarkeit(field: str, value) -> dict:
    """``{"max_km": number > 0}``; text may be JSON or just the number of kilometres.

    A null ``max_km`` is kept out of the stored object: "missing" and "null" both
    mean DEFAULT_MAX_DISTANCE_KM (docs/domain.md §3).
    """
    if isinstance(value, str):
        raw = value.strip()
        value = _json_text(field, raw, dict, "object") if raw.startswith("{") else {"max_km": raw}
    if not isinstance(value, dict):
        raise RowError(field, f'expected an object like {{"max_km": 25}}, got {_describe(value)}')
    unknown = sorted(set(value) - {"max_km"})
    if unknown:
        raise RowError(field, f"unknown key {unknown[0]!r} (only 'max_km' is allowed)")
    if value.get("max_km") is None:
        return {}
    max_km = _number(f"{field}.max_km", value["max_km"])
    if max_km <= 0:
        raise RowError(f"{field}.max_km", f"must be greater than 0, got {max_km}")
    return {"max_km": max_km}


# --- field tables -------------------------------------------------------------------------

COMMON_FIELDS: dict[str, Parser] = {
    "external_id": text(100),
    "anrede": enum(vocab.ANREDE),
    "geschlecht": enum(vocab.GESCHLECHT),
    "vorname": text(100),
    "nachname": text(100),
    "strasse": text(200),
    "plz": plz_format,
    "ort": text(100),
    "email": email,
    "telefon": text(50),
}

THERAPIST_FIELDS: dict[str, Parser] = {
    **COMMON_FIELDS,
    "titel": text(20),
    "fax": text(50),
    "webseite": text(300),
    "kassensitz": boolean,
    "telefonische_erreichbarkeit": schedule,
    "arbeitszeiten": schedule,
    "fremdsprachen": text_list(),
    "psychotherapieverfahren": enum(vocab.THERAPIEVERFAHREN),
    "zusatzqualifikationen": text(single_line=False),
    "besondere_leistungsangebote": text(single_line=False),
    "letzter_kontakt_email": date,
    "letzter_kontakt_telefon": date,
    "letztes_persoenliches_gespraech": date,
    "potenziell_verfuegbar": boolean,
    "potenziell_verfuegbar_notizen": text(single_line=False),
    "ueber_curavani_informiert": boolean,
    "bevorzugte_diagnosen": icd10_list,
    "bevorzugte_symptome": symptom_list(0),
    "alter_min": age_limit,
    "alter_max": age_limit,
    "geschlechtspraeferenz": enum(vocab.THERAPEUTENGESCHLECHT_PRAEFERENZ),
    "bevorzugt_gruppentherapie": boolean,
    "status": enum(vocab.THERAPEUTENSTATUS),
    "sperrgrund": text(single_line=False),
    "sperrdatum": date,
}

PATIENT_FIELDS: dict[str, Parser] = {
    **COMMON_FIELDS,
    "hausarzt": text(200),
    "krankenkasse": text(100),
    "krankenversicherungsnummer": text(50),
    "geburtsdatum": date,
    "symptome": symptom_list(1),
    "erfahrung_mit_psychotherapie": boolean,
    "letzte_sitzung_vorherige_psychotherapie": date,
    "vertraege_unterschrieben": boolean,
    "zahlungsreferenz": text(8),
    "zahlung_eingegangen": boolean,
    "zeitliche_verfuegbarkeit": schedule,
    "raeumliche_verfuegbarkeit": raeumliche_verfuegbarkeit,
    "verkehrsmittel": enum(vocab.VERKEHRSMITTEL),
    "offen_fuer_gruppentherapie": boolean,
    "offen_fuer_diga": boolean,
    "ausgeschlossene_therapeuten": id_list,
    "bevorzugtes_therapeutengeschlecht": enum(vocab.THERAPEUTENGESCHLECHT_PRAEFERENZ),
    "bevorzugtes_therapieverfahren": enum(vocab.THERAPIEVERFAHREN),
    "letzter_kontakt": date,
    "empfehler_der_unterstuetzung": text(single_line=False),
}

REQUIRED_FIELDS = ("external_id", "anrede", "geschlecht", "vorname", "nachname", "plz")

# Fields psymatch maintains itself; an import must not overwrite them (the
# message says why instead of a bare "unknown field").
_MAINTAINED = {
    "id": "assigned by the database",
    "created_at": "bookkeeping",
    "updated_at": "bookkeeping",
    "latitude": "derived from plz",
    "longitude": "derived from plz",
    "geo_quelle": "derived from plz",
    "geo_plz": "derived from plz",
}
THERAPIST_MAINTAINED = {
    **_MAINTAINED,
    "naechster_kontakt_moeglich": "cooling date, set by responses or a reasoned override",
    "notizen": "append-only staff log",
}
PATIENT_MAINTAINED = {
    **_MAINTAINED,
    "status": "driven by the patient state machine, docs/domain.md §4",
    "startdatum": "set automatically once contracts are signed and payment received",
    "erster_therapieplatz_am": "set by the placement workflow",
    "funktionierender_therapieplatz_am": "set by the placement workflow",
}


# --- row validation -----------------------------------------------------------------------


def _given_fields(raw, fields: Mapping[str, Parser], maintained: Mapping[str, str]) -> dict:
    """The non-empty values of ``raw``; unknown or maintained fields raise RowError."""
    if not isinstance(raw, Mapping):
        raise RowError("row", f"expected an object of field values, got {_describe(raw)}")
    given = {}
    for key, value in raw.items():
        if is_empty(value):
            continue  # an empty unknown column is harmless (e.g. a spare CSV column)
        name = str(key)
        if name in maintained:
            raise RowError(name, f"cannot be imported: {maintained[name]}")
        if name not in fields:
            raise RowError(name, f"unknown field{_suggest(name, fields)}")
        given[name] = value
    return given


def check_consistency(values: Mapping) -> None:
    """Rules between fields; also run by the intake on stored values merged with a row."""
    low, high = values.get("alter_min"), values.get("alter_max")
    if low is not None and high is not None and low > high:
        raise RowError("alter_min", f"alter_min {low} is greater than alter_max {high}")


def _not_in_future(values: dict, field: str, today: dt.date) -> None:
    if values.get(field) is not None and values[field] > today:
        raise RowError(field, f"{values[field].isoformat()} lies in the future")


def _validate(
    raw,
    fields: Mapping[str, Parser],
    maintained: Mapping[str, str],
    known_plz: Container[str] | None,
) -> dict:
    if isinstance(raw, Mapping) and is_empty(raw.get("external_id")):
        raise RowError("external_id", "required field missing")
    given = _given_fields(raw, fields, maintained)
    for name in REQUIRED_FIELDS:
        if name not in given:
            raise RowError(name, "required field missing")
    values = {name: fields[name](name, given[name]) for name in fields if name in given}
    if known_plz is not None and values["plz"] not in known_plz:
        raise RowError("plz", f"unknown postal code {values['plz']!r}")
    check_consistency(values)
    return values


# Dates of past events: a value after "today" is a typo (e.g. a birth year 2052).
THERAPIST_PAST_DATES = (
    "letzter_kontakt_email",
    "letzter_kontakt_telefon",
    "letztes_persoenliches_gespraech",
)
PATIENT_PAST_DATES = ("geburtsdatum", "letzte_sitzung_vorherige_psychotherapie", "letzter_kontakt")


def validate_therapist(
    raw: Mapping, known_plz: Container[str] | None = None, *, today: dt.date | None = None
) -> dict:
    """Validate one therapist row; return the given fields, normalised.

    ``known_plz`` (any container, e.g. the PLZ -> centroid map) makes an unknown
    but well-formed postal code an error; ``None`` skips that check. Contact
    dates may not lie after ``today`` (default: the system date; the intake
    passes the local date of the platform time zone).
    """
    values = _validate(raw, THERAPIST_FIELDS, THERAPIST_MAINTAINED, known_plz)
    for field in THERAPIST_PAST_DATES:
        _not_in_future(values, field, today or dt.date.today())
    return values


def validate_patient(
    raw: Mapping, known_plz: Container[str] | None = None, *, today: dt.date | None = None
) -> dict:
    """Validate one patient row; return the given fields, normalised.

    Same arguments as ``validate_therapist``; geburtsdatum, the last session of a
    previous therapy and letzter_kontakt may not lie after ``today``.
    """
    values = _validate(raw, PATIENT_FIELDS, PATIENT_MAINTAINED, known_plz)
    for field in PATIENT_PAST_DATES:
        _not_in_future(values, field, today or dt.date.today())
    return values


VALIDATORS = {"therapists": validate_therapist, "patients": validate_patient}
FIELDS = {"therapists": THERAPIST_FIELDS, "patients": PATIENT_FIELDS}


# --- staff edits of one stored record -----------------------------------------------------

PAST_DATES = {"therapists": THERAPIST_PAST_DATES, "patients": PATIENT_PAST_DATES}
MAINTAINED = {"therapists": THERAPIST_MAINTAINED, "patients": PATIENT_MAINTAINED}


def validate_changes(
    kind: str,
    raw: Mapping,
    known_plz: Container[str] | None = None,
    *,
    today: dt.date | None = None,
) -> tuple[dict, set[str]]:
    """A staff edit of some fields of one stored therapist or patient, checked with the
    import's parsers and rules: ``(values, cleared)``, the given fields normalised and the
    names of the fields to clear (given as ``None`` or blank text, which an import never
    does). Unknown and maintained fields, a required field cleared, a bad value, an unknown
    PLZ and a past-event date in the future raise ``RowError`` naming the field; the rules
    between fields need the stored values (``check_consistency`` on the merged record)."""
    fields, maintained = FIELDS[kind], MAINTAINED[kind]
    if not isinstance(raw, Mapping) or not raw:
        raise RowError("row", "no field to change")
    values: dict = {}
    cleared: set[str] = set()
    for key, value in raw.items():
        name = str(key)
        if name in maintained:
            raise RowError(name, f"cannot be changed here: {maintained[name]}")
        if name not in fields:
            raise RowError(name, f"unknown field{_suggest(name, fields)}")
        if is_empty(value):
            if name in REQUIRED_FIELDS:
                raise RowError(name, "required field missing")
            cleared.add(name)
            continue
        values[name] = fields[name](name, value)
    if known_plz is not None and "plz" in values and values["plz"] not in known_plz:
        raise RowError("plz", f"unknown postal code {values['plz']!r}")
    for field in PAST_DATES[kind]:
        _not_in_future(values, field, today or dt.date.today())
    return values, cleared
