"""Read a bundling ``Snapshot`` from the database in a handful of bulk queries."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import math
from zoneinfo import ZoneInfo

from peewee import SQL, Case, Expression, NodeList, Value, fn

from db import crypto
from db.database import db, is_postgres
from db.models import (
    Email,
    Patient,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
    utcnow,
)
from db.statements import Prepared
from psymatch import settings
from psymatch.domain.bundling import rules
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
    "email_ungueltig_seit",
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


def _last_queued():
    """The query of ``email_last_queued``, not yet narrowed or grouped: per normalised
    address, the latest time an inquiry or reminder to it was queued."""
    key = normalised(Email.empfaenger_email)
    return Email.select(key, fn.MAX(Email.in_warteschlange_am)).where(
        Email.art.in_(RATE_LIMITED_KINDS) & Email.in_warteschlange_am.is_null(False)
    )


# checked for one address before every inquiry is sent (rule 4)
_LAST_QUEUED_TO = Prepared(
    lambda p: (
        _last_queued()
        .where(normalised(Email.empfaenger_email) == p.address)
        .group_by(normalised(Email.empfaenger_email))
        .limit(1)
        .tuples()
    )
)


def email_last_queued(address: str | None = None, addresses=None, since=None):
    """When the last inquiry or reminder was queued, per normalised address (rule 4).

    Without ``address``: a dict for every address (or only for ``addresses``, normalised;
    with ``since`` only those queued at or after it); with one: that address's time or
    None.
    """
    if address is not None:
        row = _LAST_QUEUED_TO.first(address=address)
        return row[1] if row else None
    key = normalised(Email.empfaenger_email)
    query = _last_queued()
    if addresses is not None:
        addresses = sorted({a for a in addresses if a})
        if not addresses:
            return {}
        query = query.where(key.in_(addresses))
    if since is not None:
        query = query.where(Email.in_warteschlange_am >= since)
    return dict(query.group_by(key).tuples())


def last_queued_to_therapist():
    """SQL: ``email_last_queued`` of the address of the enclosing query's therapist, as a
    correlated subquery (the expression index of migration 0004 serves it)."""
    return Email.select(fn.MAX(Email.in_warteschlange_am)).where(
        (normalised(Email.empfaenger_email) == normalised(Therapist.email))
        & Email.art.in_(RATE_LIMITED_KINDS)
        & Email.in_warteschlange_am.is_null(False)
    )


def practice_filter(therapist_id: int):
    """WHERE clause for a therapist and every member of its practice (same normalised
    email; an empty address makes no practice). The address is read by a subquery, in the
    same round trip, and the expression index of migration 0004 finds the members."""
    own = Therapist.alias("own")
    address = own.select(normalised(own.email)).where(own.id == therapist_id)
    key = normalised(Therapist.email)
    return (Therapist.id == therapist_id) | ((key == address) & (key != ""))


def plz_range(plz_prefix: str, therapists=Therapist):
    """WHERE clause for postal codes starting with ``plz_prefix`` (digits), as a range the
    indexes can serve (a LIKE would read every therapist); ``therapists`` may be an alias."""
    where = therapists.plz >= plz_prefix
    if plz_prefix.strip("9"):
        upper = str(int(plz_prefix) + 1).zfill(len(plz_prefix))
        where &= therapists.plz < upper
    return where


def region_therapists(
    plz_prefix: str, pending: set[int] | None, last_queued: dict | None = None
) -> list[TherapistData]:
    """The aktiv therapists of a PLZ prefix and every member of their practices, by id.

    The staff listing judges a practice by all its members (docs/domain.md §6.2), who may
    sit outside the region; nobody else matters to it. ``plz_prefix`` must be digits. Two
    indexed reads: the ``(status, plz)`` range, then the members elsewhere by normalised
    address, the region's addresses given as a subquery (one query with OR would read
    every therapist; a literal list of a big city's 1,400 addresses costs more to build
    and to plan than the read). ``last_queued`` as in ``load_therapists``.
    """
    in_region = (Therapist.status == "aktiv") & plz_range(plz_prefix)
    found = {t.id: t for t in load_therapists(pending, in_region, last_queued)}
    own = Therapist.alias("own")
    own_region = (own.status == "aktiv") & plz_range(plz_prefix, own)
    addresses = own.select(normalised(own.email)).where(
        own_region & own.email.is_null(False) & (normalised(own.email) != "")
    )
    key = normalised(Therapist.email)
    if is_postgres():  # = ANY(ARRAY(...)): an index probe per address, not a scan
        shared = Expression(key, "=", fn.ANY(NodeList((SQL("ARRAY"), addresses))))
    else:
        shared = key.in_(addresses)
    elsewhere = Therapist.plz.is_null() | ~in_region  # not read a second time
    members = load_therapists(pending, shared & elsewhere, last_queued)
    found.update((t.id, t) for t in members)
    return [found[i] for i in sorted(found)]


def has_pending_anfrage():
    """SQL: whether the therapist of the enclosing query's row has an Anfrage without
    answer (an index probe; ``therapists_with_pending_anfrage`` reads them all)."""
    return fn.EXISTS(
        Therapeutenanfrage.select(SQL("1")).where(
            (Therapeutenanfrage.therapist == Therapist.id)
            & Therapeutenanfrage.antwort_datum.is_null()
        )
    )


def load_therapists(
    pending: set[int] | None, where=None, last_queued: dict | None = None
) -> list[TherapistData]:
    """The therapists ``where`` selects; ``pending`` holds the ids with an Anfrage without
    answer, or None to ask the database per therapist (for a few of them). A dict given as
    ``last_queued`` receives ``email_last_queued`` for their addresses, read in the same
    query."""
    columns, decoders = _therapist_columns()
    width = len(columns)
    if pending is None:
        columns.append(has_pending_anfrage())
    if last_queued is not None:
        columns.append(last_queued_to_therapist())
        queued_at = Email.in_warteschlange_am.python_value
    query = Therapist.select(*columns)
    if where is not None:
        query = query.where(where)
    # every therapist: the rows the previous full load decoded are not decoded again
    out = []
    with _THERAPISTS.load() if where is None else _no_memo() as (previous, current):
        for row in db.execute(query):
            raw = row[:width]
            waiting = raw[0] in pending if pending is not None else bool(row[width])
            key = (raw, waiting)
            data = previous.get(key) or _therapist_data(decoders, raw, waiting)
            current[key] = data
            address = (data.email or "").strip().lower()
            if last_queued is not None and address and row[-1] is not None:
                last_queued[address] = queued_at(row[-1])
            out.append(data)
    return out


def _therapist_data(decoders, raw, waiting: bool) -> TherapistData:
    """One raw row of ``_therapist_columns`` as TherapistData."""
    values = {
        name: decode(value)
        for name, decode, value in zip(THERAPIST_COLUMNS, decoders, raw, strict=True)
    }
    values["bevorzugt_gruppentherapie"] = bool(values["bevorzugt_gruppentherapie"])
    return TherapistData(**values, has_pending_anfrage=waiting)


class _RowMemo:
    """The immutable rows (TherapistData, SearchData) the previous full load built, by their
    raw values.

    The daily round reads every therapist and every pooled search, and from one day to the
    next few of them change: decoding them all again (a converter per column, a frozen
    dataclass) was most of what the round spent reading them. A row whose raw values, and
    the facts read beside them, equal those of the previous load gets the object built then:
    a changed column is a different key, so nothing stale comes back. Each load keeps only
    the rows it read, so the memo never holds more than one snapshot."""

    def __init__(self):
        self._rows: dict = {}
        self._decoded_by = None

    @contextlib.contextmanager
    def load(self, decoded_by=None):
        """(the previous load's rows by key, the dict this load fills), the new rows kept
        once the load has read them all. ``decoded_by`` names what the decoding depends on
        besides the raw values (the encryption keys' MultiFernet): another one, and no
        previous row is used."""
        previous = self._rows if decoded_by is self._decoded_by else {}
        current: dict = {}
        yield previous, current
        self._rows, self._decoded_by = current, decoded_by


def _no_memo():
    """A load that neither uses nor keeps decoded rows (a practice, a region, some ids)."""
    return contextlib.nullcontext(({}, {}))


_THERAPISTS = _RowMemo()
_SEARCHES = _RowMemo()


@functools.lru_cache(maxsize=1024)
def _symptom_tuple(text: str | None) -> tuple[str, ...]:
    return tuple((None if text is None else json.loads(text)) or ())


def _therapist_columns() -> tuple[list, list]:
    """(SQL columns, decoders) for ``THERAPIST_COLUMNS``, read as raw cursor rows
    (``_raw_columns``): peewee's row conversion and the driver's JSON parsing cost more
    than the query for a big city's 1,800 therapists; most practices share a few
    schedules and symptom lists, which the cached decoders read once."""
    decoders = {
        (Therapist, "arbeitszeiten"): _schedule,
        (Therapist, "bevorzugte_symptome"): _symptom_tuple,
    }
    return _raw_columns([getattr(Therapist, c) for c in THERAPIST_COLUMNS], decoders)


def _raw_columns(fields, json_decoders: dict, unread=()) -> tuple[list, list]:
    """(SQL columns, decoders) to read ``fields`` as raw cursor rows, each value decoded
    only when its row is used: a JSON column as text, decoded by its function in
    ``json_decoders`` (keyed by model and field name); a field in ``unread`` as NULL,
    neither read nor decrypted; any other by the field's own ``python_value``."""
    skipped = {(f.model, f.name) for f in unread}
    columns, decoders = [], []
    for field in fields:
        key = (field.model, field.name)
        if key in skipped:
            columns.append(SQL("NULL"))
            decoders.append(_unread)
        elif key in json_decoders:
            columns.append(field.cast("text"))
            decoders.append(json_decoders[key])
        else:
            columns.append(field)
            decoders.append(field.python_value)
    return columns, decoders


def pending_line_where():
    """A bundle line that counts against its search's parallel cap: anstehend in an
    Anfrage without answer (needs the join to ``Therapeutenanfrage``)."""
    return (
        TherapeutAnfragePatient.status == "anstehend"
    ) & Therapeutenanfrage.antwort_datum.is_null()


def pending_rows_per_search(search_ids=None) -> dict[int, int]:
    """Pending bundle lines per search (the parallel cap); all searches or ``search_ids``."""
    query = (
        TherapeutAnfragePatient.select(TherapeutAnfragePatient.platzsuche, fn.COUNT("*"))
        .join(Therapeutenanfrage)
        .where(pending_line_where())
        .group_by(TherapeutAnfragePatient.platzsuche)
    )
    if search_ids is not None:
        query = query.where(TherapeutAnfragePatient.platzsuche.in_(search_ids))
    return dict(query.tuples())


def pending_rows_of_outer_search():
    """The pending bundle lines of the search of the enclosing query's row, as a correlated
    subquery (an index probe per row) for a query that selects from ``Platzsuche``."""
    return (
        TherapeutAnfragePatient.select(fn.COUNT("*"))
        .join(Therapeutenanfrage)
        .where((TherapeutAnfragePatient.platzsuche == Platzsuche.id) & pending_line_where())
    )


def _max_km_sql():
    """SQL for a patient's own numeric ``max_km`` (NULL when it has none), per backend."""
    col = Patient.raeumliche_verfuegbarkeit
    if is_postgres():
        parts = (
            SQL("CASE WHEN jsonb_typeof("),
            col,
            SQL(" -> 'max_km') = 'number' THEN ("),
            col,
            SQL(" ->> 'max_km')::float8 END"),
        )
    else:
        parts = (
            SQL("CASE WHEN json_type("),
            col,
            SQL(", '$.max_km') IN ('integer', 'real') THEN json_extract("),
            col,
            SQL(", '$.max_km') END"),
        )
    return NodeList(parts, glue="")


def largest_reach_km(default_km: float) -> float:
    """The largest distance any patient accepts (own ``max_km`` or the default).

    Read over all patients, an upper bound of the pool's, so that the expression index of
    migration 0012 answers it; the selection treats a ``max_km`` that is not a positive
    number as missing (the default), so only numbers can raise it.
    """
    largest = Patient.select(fn.MAX(_max_km_sql())).scalar()
    return max(float(default_km), float(largest or 0.0))


def within_reach(latitude, longitude, reach_km: float, radius_km: float, own_km=None):
    """WHERE clause: patients whose coordinates lie in a box around the point that holds
    every point up to ``reach_km`` away on the great circle (H1, docs/domain.md §6.4).

    The box is generous: H1 compares the distance rounded to 0.01 km, and a margin covers
    floating point. A point without coordinates reaches nobody (H1 fails closed).

    With ``own_km`` (SQL: each row's own distance in km, positive and at most
    ``reach_km``) each row is also held to the box of its own distance, so that rows the
    indexed box finds but their own distance cannot reach are not sent at all. Both
    half-sides of a box grow at most in proportion to the (margined) distance: the
    latitude's exactly, the longitude's because its arcsine is convex and zero at zero.
    So the largest box's half-sides scaled by (own + margin) / (reach + margin) hold the
    own box.
    """
    if latitude is None or longitude is None:
        return None
    angle = (reach_km + 0.02) / radius_km * 1.000001  # radians
    d_lat = math.degrees(angle) + 1e-6
    where = Patient.latitude.between(latitude - d_lat, latitude + d_lat)
    per_km = 1.0 / (reach_km + 0.02)  # the share of the box one (margined) km spans
    if own_km is not None:
        where &= fn.ABS(Patient.latitude - _exact(latitude)) <= _scaled(
            own_km, math.degrees(angle) * per_km
        )
    if abs(latitude) + d_lat < 89.0 and angle < math.pi / 2:
        ratio = math.sin(angle) / math.cos(math.radians(latitude))
        d_lon = math.degrees(math.asin(min(1.0, ratio))) * 1.000001
        if longitude - d_lon - 1e-6 > -180.0 and longitude + d_lon + 1e-6 < 180.0:
            where &= Patient.longitude.between(longitude - d_lon - 1e-6, longitude + d_lon + 1e-6)
            if own_km is not None and ratio < 1.0:  # clipped at 90°, the scaling fails
                where &= fn.ABS(Patient.longitude - _exact(longitude)) <= _scaled(
                    own_km, d_lon * per_km
                )
    return where


def _exact(coordinate: float) -> Value:
    """A coordinate as given: compared with a patient's column, peewee would round it to
    that column's two decimals (``RoundedDoubleField``) and so move the box's centre."""
    return Value(coordinate, converter=False)


def _scaled(own_km, degrees_per_km: float):
    """SQL: the half-side in degrees of the box of ``own_km`` (with the 0.02 km margin and
    the 1e-6 degree one of ``within_reach``)."""
    return (own_km + 0.02) * degrees_per_km + 1e-6


def own_max_km(space) -> float | None:
    """A patient's own ``max_km`` as the selection reads it (None: the default applies)."""
    max_km = (space or {}).get("max_km") if isinstance(space, dict) else None
    return max_km if isinstance(max_km, int | float) and max_km > 0 else None


def pool_where():
    return (Platzsuche.status == "aktiv") & Platzsuche.vermittelter_therapeut.is_null()


# The columns a SearchData is built from, in this order (``_search_data``).
SEARCH_FIELDS = (
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


# Decoders of the JSON columns a selection reads, from their text. Pure functions with
# immutable results, so they are cached: most rows repeat a few texts ("[]", a max_km),
# and a patient's schedule is read again by the next preview nearby.
@functools.lru_cache(maxsize=1024)
def _exclusions(text: str | None) -> frozenset[int]:
    return parse_exclusions(None if text is None else json.loads(text))


@functools.lru_cache(maxsize=1024)
def _own_max_km_of(text: str | None) -> float | None:
    return own_max_km(None if text is None else json.loads(text))


@functools.lru_cache(maxsize=16384)
def _schedule(text: str | None):
    return minute_ranges(None if text is None else json.loads(text))


_JSON_DECODERS = {
    (Platzsuche, "ausgeschlossene_therapeuten"): _exclusions,
    (Patient, "ausgeschlossene_therapeuten"): _exclusions,
    (Patient, "raeumliche_verfuegbarkeit"): _own_max_km_of,
    (Patient, "zeitliche_verfuegbarkeit"): _schedule,
}


def _unread(_value):
    return None


def _search_columns(birth_dates: bool, symptoms: bool) -> tuple[list, list]:
    """(SQL columns, decoders) for ``SEARCH_FIELDS``, to be read as raw cursor rows.

    A row is decoded only when it is used, by the fields' own ``python_value``: nothing
    is converted for a row that is dropped. JSON columns are read as text (the PostgreSQL
    driver would otherwise parse every one it fetches) and decoded straight into what the
    selection reads (``_JSON_DECODERS``); a sealed column left out (``birth_dates`` /
    ``symptoms`` false) is neither read nor decrypted."""
    unread = [
        field
        for field, wanted in ((Patient.geburtsdatum, birth_dates), (Patient.symptome, symptoms))
        if not wanted
    ]
    return _raw_columns(SEARCH_FIELDS, _JSON_DECODERS, unread)


def _search_data(decoders, raw, pending: int) -> SearchData:
    """One raw row of ``_search_columns`` as SearchData."""
    (
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
        max_km,
        gender,
        pref_gender,
        pref_proc,
        birth,
        group,
        schedule,
        symptom_list,
    ) = (decode(value) for decode, value in zip(decoders, raw, strict=True))
    return SearchData(
        id=sid,
        patient_id=pid,
        created_at=created,
        status=status,
        vermittelter_therapeut_id=placed,
        pending=pending,
        excluded=s_excl | p_excl,
        latitude=lat,
        longitude=lon,
        plz=plz,
        max_km=max_km,
        geschlecht=gender,
        bevorzugtes_therapeutengeschlecht=pref_gender,
        bevorzugtes_therapieverfahren=pref_proc,
        geburtsdatum=birth,
        offen_fuer_gruppentherapie=group,
        zeitliche_verfuegbarkeit=schedule,
        symptome=tuple(symptom_list or ()),
    )


def load_searches(
    where=None, search_ids=None, birth_dates: bool = True, symptoms: bool = True
) -> list[SearchData]:
    """Searches joined with their patients; default: the pool (aktiv and unplaced).

    ``search_ids`` limits them (and the pending counts read) to those ids. Without
    ``birth_dates`` / ``symptoms`` those sealed fields are neither read nor decrypted (left
    unknown / empty): for a therapist without age bounds or preferred symptoms, whose
    rules (H5, S2, S3) never look at them."""
    # the pool of the full round: the rows the previous one decoded are not decoded again
    full = where is None and search_ids is None and birth_dates and symptoms
    if where is None:
        where = pool_where()
    if search_ids is not None:
        where &= Platzsuche.id.in_(search_ids)
    pending = pending_rows_per_search(search_ids)
    columns, decoders = _search_columns(birth_dates, symptoms)
    query = Platzsuche.select(*columns).join(Patient).where(where).order_by(Platzsuche.id)
    out = []
    # sealed columns decode by the encryption keys: new keys, nothing kept
    with _SEARCHES.load(crypto.fernet()) if full else _no_memo() as (previous, current):
        for raw in db.execute(query):
            key = (raw, pending.get(raw[0], 0))
            data = previous.get(key) or _search_data(decoders, raw, key[1])
            current[key] = data
            out.append(data)
    return out


def load(
    now: dt.datetime | None = None,
    search_where=None,
    include_searches: bool = True,
    practice_of: int | None = None,
    region: str | None = None,
    prefilter: bool = True,
) -> Snapshot:
    """The snapshot for selection at ``now`` (naive UTC; default: the current time).

    ``practice_of`` limits the therapists to one therapist's practice and the searches to
    the pooled ones whose patients can be within reach of that therapist (a box on the
    indexed coordinates, migration 0012): enough for a staff preview or composition, and
    far cheaper than all of Germany. ``prefilter=False`` loads every search instead (the
    tests compare both). ``region`` (a PLZ prefix of digits) limits the therapists to that
    region's practices, for the staff listing. The email rule (4) is read only for the
    loaded therapists' addresses whenever the therapists are limited.
    """
    now = now or utcnow()
    # a few therapists ask per therapist; all of them read the set in one query
    limited = practice_of is not None or region is not None
    pending = None if limited else therapists_with_pending_anfrage()
    last_queued = None
    if region is not None and practice_of is None:
        last_queued = {}
        therapists = region_therapists(region, pending, last_queued)
    elif practice_of is not None:
        last_queued = {}
        therapists = load_therapists(pending, practice_filter(practice_of), last_queued)
    else:
        therapists = load_therapists(pending)
    searches = ()
    if include_searches:
        if practice_of is not None and prefilter and search_where is None:
            searches = tuple(_searches_near(practice_of, therapists))
        else:
            searches = tuple(load_searches(search_where))
    if last_queued is None:
        # rule 4 looks back one interval only: older emails would be read (all of them,
        # more each week) for nothing
        interval = dt.timedelta(days=settings.get().EMAIL_MIN_INTERVAL_DAYS)
        last_queued = email_last_queued(since=now - interval)
    return Snapshot(
        therapists=tuple(therapists),
        searches=searches,
        now=now,
        today=local_today(now),
        email_last_queued=last_queued,
    )


def _searches_near(therapist_id: int, therapists: list[TherapistData]) -> list[SearchData]:
    """The pooled searches whose patients may be chosen for one therapist.

    One query: the box on the indexed coordinates for the largest distance any patient
    accepts finds the candidates, narrowed in SQL to each row's own distance (its own
    ``max_km`` or the default); each comes with its pending bundle lines (a correlated
    count). The hard rules that need neither a sealed field nor a list (H1 distance, H3,
    H4, H6, H7) then keep those that pass, checked by the kernel's own compiled rule
    functions on the same values. Only the rows kept are decoded, so only their JSON is
    parsed and their sealed fields decrypted (birth dates and symptoms only when the
    therapist's rules look at them). Whoever is dropped here fails the same rule in the
    selection; H2 and the rest are left to the selection itself.
    """
    therapist = next((t for t in therapists if t.id == therapist_id), None)
    if therapist is None or therapist.latitude is None or therapist.longitude is None:
        return []
    config = settings.get()
    default_km, radius_km = config.DEFAULT_MAX_DISTANCE_KM, config.EARTH_RADIUS_KM
    # a missing or unusable own max_km means the default; a JSON true, which the selection
    # reads as 1 km, is NULL in SQL: the larger of both keeps everyone the selection keeps
    fallback_km = max(float(default_km), 1.0)
    reach = max(largest_reach_km(default_km), fallback_km)
    own_km = _max_km_sql()
    row_km = Case(None, [(own_km > 0, own_km)], fallback_km)  # the distance H1 allows a row
    near = within_reach(therapist.latitude, therapist.longitude, reach, radius_km, row_km)
    birth_dates = rules.bound_code(therapist.alter_min) >= 0 or (
        rules.bound_code(therapist.alter_max) >= 0
    )
    symptoms = bool(therapist.bevorzugte_symptome)
    columns, decoders = _search_columns(birth_dates, symptoms)
    query = (
        Platzsuche.select(row_km, pending_rows_of_outer_search(), *columns)
        .join(Patient)
        .where(pool_where() & near)
        .order_by(Platzsuche.id)
    )
    at = {field: i + 2 for i, field in enumerate(SEARCH_FIELDS)}
    i_lat, i_lon, i_gender = at[Patient.latitude], at[Patient.longitude], at[Patient.geschlecht]
    i_wish = at[Patient.bevorzugtes_therapeutengeschlecht]
    i_procedure = at[Patient.bevorzugtes_therapieverfahren]
    i_group = at[Patient.offen_fuer_gruppentherapie]
    t_lat, t_lon = float(therapist.latitude), float(therapist.longitude)
    t_gender = rules.GENDER.get(therapist.geschlecht, 3)
    t_procedure = rules.PROCEDURE.get(therapist.psychotherapieverfahren, 0)
    t_wish = rules.GENDER_PREFERENCE.get(therapist.geschlechtspraeferenz, -1)
    t_group = bool(therapist.bevorzugt_gruppentherapie)
    group_code = {True: 1, False: 0}
    group_value = Patient.offen_fuer_gruppentherapie.python_value
    out = []
    for row in db.execute(query):
        max_km, pending, lat, lon = row[0], row[1], row[i_lat], row[i_lon]
        if lat is None or lon is None:
            continue
        if not rules.distance_within(
            t_lat, t_lon, float(lat), float(lon), float(max_km), radius_km
        )[0]:
            continue
        wish = rules.GENDER_PREFERENCE.get(row[i_wish], -1)
        if not rules.patient_gender_preference_ok(wish, t_gender):
            continue
        if not rules.procedure_ok(rules.PROCEDURE.get(row[i_procedure], -1), t_procedure):
            continue
        if not rules.therapist_gender_preference_ok(t_wish, rules.GENDER.get(row[i_gender], 3)):
            continue
        if not rules.group_ok(t_group, group_code.get(group_value(row[i_group]), -1)):
            continue
        out.append(_search_data(decoders, row[2:], pending or 0))
    return out
