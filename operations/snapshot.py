"""Read a bundling ``Snapshot`` from the database in a handful of bulk queries."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from peewee import fn

from db.models import (
    Email,
    Patient,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
    utcnow,
)
from psymatch import settings
from psymatch.domain.bundling.data import (
    SearchData,
    Snapshot,
    TherapistData,
    minute_ranges,
    parse_exclusions,
)

THERAPIST_COLUMNS = (
    "id",
    "nachname",
    "vorname",
    "status",
    "anrede",
    "titel",
    "email",
    "telefon",
    "strasse",
    "plz",
    "ort",
    "latitude",
    "longitude",
    "geschlecht",
    "psychotherapieverfahren",
    "alter_min",
    "alter_max",
    "geschlechtspraeferenz",
    "bevorzugt_gruppentherapie",
    "arbeitszeiten",
    "bevorzugte_symptome",
    "potenziell_verfuegbar",
    "ueber_curavani_informiert",
    "naechster_kontakt_moeglich",
)


def local_today(now: dt.datetime) -> dt.date:
    """The platform's calendar date for a naive-UTC ``now``."""
    zone = ZoneInfo(settings.get().TIMEZONE)
    return now.replace(tzinfo=dt.UTC).astimezone(zone).date()


def therapists_with_pending_anfrage() -> set[int]:
    query = (
        Therapeutenanfrage.select(Therapeutenanfrage.therapist)
        .where(Therapeutenanfrage.antwort_datum.is_null())
        .distinct()
    )
    return {row[0] for row in query.tuples()}


# Rule 4 of docs/domain.md §5 counts these kinds of email; one definition for the round's
# snapshot and for the check inside the sending transaction.
RATE_LIMITED_KINDS = ("anfrage", "erinnerung")


def normalised(column):
    """SQL for an address as ``normalize_email`` spells it; migration 0004 indexes it."""
    return fn.LOWER(fn.TRIM(column))


def email_last_queued(address: str | None = None):
    """When the last inquiry or reminder was queued, per normalised address (rule 4).

    Without ``address``: a dict for every address; with one: that address's time or None.
    """
    key = normalised(Email.empfaenger_email)
    query = Email.select(key, fn.MAX(Email.in_warteschlange_am)).where(
        Email.art.in_(RATE_LIMITED_KINDS) & Email.in_warteschlange_am.is_null(False)
    )
    if address is not None:
        row = query.where(key == address).group_by(key).tuples().first()
        return row[1] if row else None
    return dict(query.group_by(key).tuples())


def practice_filter(therapist_id: int):
    """WHERE clause for a therapist and every member of its practice (same normalised email)."""
    email = Therapist.select(Therapist.email).where(Therapist.id == therapist_id).scalar()
    address = (email or "").strip().lower()
    if not address:
        return Therapist.id == therapist_id
    return (Therapist.id == therapist_id) | (normalised(Therapist.email) == address)


def load_therapists(pending: set[int], where=None) -> list[TherapistData]:
    fields = [getattr(Therapist, c) for c in THERAPIST_COLUMNS]
    out = []
    query = Therapist.select(*fields)
    if where is not None:
        query = query.where(where)
    for row in query.tuples():
        values = dict(zip(THERAPIST_COLUMNS, row, strict=True))
        values["arbeitszeiten"] = minute_ranges(values["arbeitszeiten"])
        values["bevorzugte_symptome"] = tuple(values["bevorzugte_symptome"] or ())
        values["bevorzugt_gruppentherapie"] = bool(values["bevorzugt_gruppentherapie"])
        out.append(TherapistData(**values, has_pending_anfrage=values["id"] in pending))
    return out


def pending_rows_per_search() -> dict[int, int]:
    query = (
        TherapeutAnfragePatient.select(TherapeutAnfragePatient.platzsuche, fn.COUNT("*"))
        .join(Therapeutenanfrage)
        .where(
            (TherapeutAnfragePatient.status == "anstehend")
            & Therapeutenanfrage.antwort_datum.is_null()
        )
        .group_by(TherapeutAnfragePatient.platzsuche)
    )
    return dict(query.tuples())


def load_searches(where=None) -> list[SearchData]:
    """Searches joined with their patients; default: the pool (aktiv and unplaced)."""
    if where is None:
        where = (Platzsuche.status == "aktiv") & Platzsuche.vermittelter_therapeut.is_null()
    pending = pending_rows_per_search()
    query = (
        Platzsuche.select(
            Platzsuche.id,
            Platzsuche.patient,
            Platzsuche.created_at,
            Platzsuche.status,
            Platzsuche.vermittelter_therapeut,
            Platzsuche.ausgeschlossene_therapeuten,
            Patient.ausgeschlossene_therapeuten,
            Patient.latitude,
            Patient.longitude,
            Patient.plz,
            Patient.raeumliche_verfuegbarkeit,
            Patient.geschlecht,
            Patient.bevorzugtes_therapeutengeschlecht,
            Patient.bevorzugtes_therapieverfahren,
            Patient.geburtsdatum,
            Patient.offen_fuer_gruppentherapie,
            Patient.zeitliche_verfuegbarkeit,
            Patient.symptome,
        )
        .join(Patient)
        .where(where)
        .order_by(Platzsuche.id)
    )
    out = []
    for (
        sid,
        pid,
        created,
        status,
        placed,
        s_excl,
        p_excl,
        lat,
        lon,
        plz,
        space,
        gender,
        pref_gender,
        pref_proc,
        birth,
        group,
        schedule,
        symptoms,
    ) in query.tuples():
        max_km = (space or {}).get("max_km") if isinstance(space, dict) else None
        out.append(
            SearchData(
                id=sid,
                patient_id=pid,
                created_at=created,
                status=status,
                vermittelter_therapeut_id=placed,
                pending=pending.get(sid, 0),
                excluded=parse_exclusions(s_excl, p_excl),
                latitude=lat,
                longitude=lon,
                plz=plz,
                max_km=max_km if isinstance(max_km, int | float) and max_km > 0 else None,
                geschlecht=gender,
                bevorzugtes_therapeutengeschlecht=pref_gender,
                bevorzugtes_therapieverfahren=pref_proc,
                geburtsdatum=birth,
                offen_fuer_gruppentherapie=group,
                zeitliche_verfuegbarkeit=minute_ranges(schedule),
                symptome=tuple(symptoms or ()),
            )
        )
    return out


def load(
    now: dt.datetime | None = None,
    search_where=None,
    include_searches: bool = True,
    practice_of: int | None = None,
) -> Snapshot:
    """The snapshot for selection at ``now`` (naive UTC; default: the current time).

    ``practice_of`` limits the therapists to one therapist's practice: enough for a
    staff preview or composition, and far cheaper than all of Germany.
    """
    now = now or utcnow()
    where = practice_filter(practice_of) if practice_of is not None else None
    therapists = load_therapists(therapists_with_pending_anfrage(), where)
    return Snapshot(
        therapists=tuple(therapists),
        searches=tuple(load_searches(search_where)) if include_searches else (),
        now=now,
        today=local_today(now),
        email_last_queued=email_last_queued(),
    )
