"""The structured answer form of inquiry emails: how it is printed and read back.

Every inquiry (and reminder) ends with one line per patient::

    1) Patient 123: [ ] ja  [ ] keine Kapazität  [ ] nicht geeignet

The therapist answers by replying with the lines filled in: put a mark in one
box per patient, or delete the options that do not apply. Grammar of a line (case
is ignored, blanks are free where a space is shown)::

    line     := quote* position ")" " " "Patient" " " patient_id ":" rest
    quote    := ">"                    (reply quoting, any depth)
    position := digits                 (1..anfragegroesse, bundle order)
    patient_id := digits
    rest     := the options as printed, edited by the therapist

``rest`` is read in two steps:

1. Boxes. A box is ``[`` mark? ``]`` and owns the text up to the next ``[``. A
   box is *marked* when anything but blanks stands inside it (``x``, ``X``,
   ``✓``, ``✔``, ``*``, ``+`` ...). If at least one box is marked, the answer is
   the option of the marked box(es): one option → answered; options of more than
   one kind → ambiguous.
2. Otherwise the words that remain decide: ``ja`` (or ``angenommen``) →
   ``angenommen``; ``kapazität`` / ``kapazitaet`` / ``kein platz`` →
   ``abgelehnt_Kapazitaet``; ``nicht geeignet`` / ``ungeeignet`` →
   ``abgelehnt_nicht_geeignet``. Exactly one kind present → answered (the
   therapist deleted the others or wrote the word); all three kinds present
   (the line as printed) or none → blank; two kinds, or a bare ``nein`` → ambiguous.

A line that a mail client wrapped in the middle is not recognised (the printed
line stays below 70 characters for patient ids of up to 7 digits, so only deep
quoting gets it wrapped). Lines are returned as found; ``answers_by_patient``
merges repeated lines (a quoted original plus the filled-in copy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import vocab

ANGENOMMEN = vocab.ANGENOMMEN
KAPAZITAET = vocab.ABGELEHNT_KAPAZITAET
NICHT_GEEIGNET = vocab.ABGELEHNT_NICHT_GEEIGNET

# Printed labels, in the order of the form.
OPTIONS = ((ANGENOMMEN, "ja"), (KAPAZITAET, "keine Kapazität"), (NICHT_GEEIGNET, "nicht geeignet"))

ANSWERED, BLANK, AMBIGUOUS = "answered", "blank", "ambiguous"

_LINE = re.compile(r"^[\s>]*(\d{1,3})\)\s*patient\s+(\d{1,18})\s*:(.*)$", re.IGNORECASE)
_BOX = re.compile(r"\[([^\[\]]*)\]([^\[]*)")
_WORDS = (
    (NICHT_GEEIGNET, re.compile(r"nicht\s+geeignet|ungeeignet", re.IGNORECASE)),
    (KAPAZITAET, re.compile(r"kapazit(ä|ae|a)t|kein(en)?\s+platz", re.IGNORECASE)),
    (ANGENOMMEN, re.compile(r"\bja\b|angenommen", re.IGNORECASE)),
)
_NEIN = re.compile(r"\bnein\b", re.IGNORECASE)


@dataclass(frozen=True)
class AnswerLine:
    position: int
    patient_id: int
    status: str  # ANSWERED, BLANK or AMBIGUOUS
    outcome: str | None  # set only when status is ANSWERED
    text: str  # what stood after the colon


def form_line(position: int, patient_id: int) -> str:
    """One printed line of the form."""
    options = "  ".join(f"[ ] {label}" for _, label in OPTIONS)
    return f"{position}) Patient {patient_id}: {options}"


def _kinds_in(text: str) -> set[str]:
    kinds = set()
    for kind, pattern in _WORDS:
        if pattern.search(text):
            kinds.add(kind)
            text = pattern.sub(" ", text)  # "nicht geeignet" must not also count as "ja"
    return kinds


def _judge(kinds: set[str], *, printed_all: bool) -> tuple[str, str | None]:
    if len(kinds) == 1:
        return ANSWERED, next(iter(kinds))
    if not kinds or (printed_all and len(kinds) == len(OPTIONS)):
        return BLANK, None
    return AMBIGUOUS, None


def read_rest(rest: str) -> tuple[str, str | None]:
    """(status, outcome) for the text after the colon."""
    boxes = _BOX.findall(rest)
    marked = [label for mark, label in boxes if mark.strip()]
    if marked:
        kinds = set()
        for label in marked:
            kinds |= _kinds_in(label)
        return _judge(kinds, printed_all=False) if kinds else (AMBIGUOUS, None)
    words = _BOX.sub(lambda m: " " + m.group(2), rest)
    kinds = _kinds_in(words)
    if not kinds and _NEIN.search(words):
        return AMBIGUOUS, None
    return _judge(kinds, printed_all=True)


def parse_line(line: str) -> AnswerLine | None:
    """The form line in ``line``, or None when it is not one."""
    match = _LINE.match(line)
    if not match:
        return None
    position, patient_id, rest = match.groups()
    status, outcome = read_rest(rest)
    return AnswerLine(int(position), int(patient_id), status, outcome, rest.strip())


def parse_answer_form(text: str) -> list[AnswerLine]:
    """Every form line in a reply body, in order."""
    found = []
    for line in text.splitlines():
        parsed = parse_line(line)
        if parsed is not None:
            found.append(parsed)
    return found


def answers_by_patient(lines: list[AnswerLine]) -> dict[int, AnswerLine]:
    """One line per patient: an answered line beats blank ones; two different answers
    (or an ambiguous line) make the patient ambiguous."""
    merged: dict[int, AnswerLine] = {}
    for line in lines:
        seen = merged.get(line.patient_id)
        if seen is None or seen.status == BLANK:
            merged[line.patient_id] = line
        elif line.status == BLANK or seen.status == AMBIGUOUS:
            continue
        elif line.status == AMBIGUOUS or line.outcome != seen.outcome:
            merged[line.patient_id] = AnswerLine(
                seen.position, line.patient_id, AMBIGUOUS, None, f"{seen.text} | {line.text}"
            )
    return merged
