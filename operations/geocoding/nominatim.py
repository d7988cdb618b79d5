"""Optional street-level geocoding through Nominatim (docs/domain.md §3).

Off unless ``NOMINATIM_URL`` is set; every record keeps its PLZ centroid until a
street-level result replaces it (``geo_quelle = 'adresse'``, ``geo_plz`` = its
PLZ, so the PLZ backlog leaves it alone). Records whose PLZ is unknown get a
location only this way.

Cache: ``geocache`` holds one row per normalised query (``"strasse, plz ort"``,
lowercase, blanks collapsed) with ``query_type = 'adresse'``. A hit answers
without a request and counts in ``hit_count``. A patient's address is health-related
personal data and is never stored there: a patient lookup is keyed by the address's
keyed hash (``cache_key``: ``crypto.blind_index``, looked up under every key of
``ENCRYPTION_KEYS`` while keys are rotated), keeps neither the provider's display name
nor its raw answer, and its coordinates are rounded to two decimals (about 1 km) like
the patient's own (``db.models.RoundedDoubleField``). Therapist (practice) addresses are
cached in plaintext. A failed lookup is a row without coordinates whose ``result_data``
says why (``status``: ``not_found``, ``rate_limited``, ``timeout``, ``error``; ``error``;
``attempts``), which is what staff see (``failed_lookups``: the address of a therapist,
none for a patient). ``not_found`` is final for that address; the other statuses are
retried (actor retries with backoff, and the hourly backlog).

Rate limit: at most one request per second across every worker, through a
Dramatiq rate limiter on the broker's Redis (``IntervalRateLimiter``). Dramatiq's
``WindowRateLimiter`` counts per calendar second, so two requests could be a
millisecond apart across a second boundary, and ``ConcurrentRateLimiter`` bounds
concurrency, not rate; this limiter instead takes a Redis key that expires one
interval after the request started (``SET NX PX``): nobody else can start a
request before it expires. The interval is 1.1 s, not 1 s: the server counts
requests where they arrive, and after a request held up between taking the key
and reaching the server (a busy machine, a slow connection) the next one, started
on time, would arrive less than a second later. A 429 answer holds that key for
the server's Retry-After (or 30 s, at most 5 min), so every worker pauses. (A worker that
takes the key in the instant between the request's key expiring and the pause
being set sends one more request; it gets a 429 too and pauses as well.)

A street or town changed by intake puts the record back on its PLZ centroid
(``geo_quelle = 'plz'``), which makes it a candidate here again.
"""

from __future__ import annotations

import logging
import random
import re
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import peewee
from dramatiq.rate_limits import RateLimiter
from dramatiq.rate_limits.backends import StubBackend
from geopy import exc as geopy_exc
from geopy.adapters import URLLibAdapter
from geopy.geocoders import Nominatim

from db import crypto
from db.database import db, write_transaction
from db.models import Geocache, Patient, Therapist, utcnow
from psymatch import settings

log = logging.getLogger(__name__)

QUERY_TYPE = "adresse"
FOUND, NOT_FOUND, RATE_LIMITED, TIMEOUT, ERROR = (
    "found",
    "not_found",
    "rate_limited",
    "timeout",
    "error",
)
TRANSIENT = (RATE_LIMITED, TIMEOUT, ERROR)
MODELS = {"patient": Patient, "therapist": Therapist}

LIMITER_KEY = "psymatch:nominatim"
DEFAULT_429_PAUSE_S = 30.0
MAX_429_PAUSE_S = 300.0


class RetryLater(Exception):
    """A transient lookup failure; the record stays on its centroid until a retry."""


# --- the rate limiter ------------------------------------------------------------------


class IntervalRateLimiter(RateLimiter):
    """At most one acquisition per ``interval_ms`` for all users of ``key``.

    Acquiring sets the key with a time to live of one interval; releasing does
    nothing, the key expires by itself, so the interval runs from the start of
    one request to the start of the next.
    """

    def __init__(self, backend, key: str, *, interval_ms: int = 1000):
        super().__init__(backend, key)
        self.interval_ms = interval_ms

    def _acquire(self) -> bool:
        return bool(self.backend.add(self.key, 1, ttl=self.interval_ms))

    def _release(self) -> None:
        return None

    def wait(self, max_wait_s: float) -> bool:
        """Take the next slot, waiting up to ``max_wait_s``; False when none came."""
        deadline = time.monotonic() + max_wait_s
        while True:
            if self._acquire():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02 + random.random() * 0.03)

    def hold(self, seconds: float, max_wait_s: float = 2.0) -> bool:
        """Keep everybody out for ``seconds`` (after a 429)."""
        deadline = time.monotonic() + max_wait_s
        while True:
            if self.backend.add(self.key, 1, ttl=int(seconds * 1000)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


_stub_backend = StubBackend()


def limiter_backend():
    """The broker's Redis when the broker is a RedisBroker, else a process-local stub."""
    import dramatiq
    from dramatiq.rate_limits.backends import RedisBackend

    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    return RedisBackend(client=client) if client is not None else _stub_backend


# one request per second as the server counts them, with room for a request's own delay
REQUEST_INTERVAL_MS = 1100


def make_limiter(backend=None, key: str = LIMITER_KEY) -> IntervalRateLimiter:
    return IntervalRateLimiter(backend or limiter_backend(), key, interval_ms=REQUEST_INTERVAL_MS)


# --- one lookup -------------------------------------------------------------------------


@dataclass(frozen=True)
class Lookup:
    status: str
    latitude: float | None = None
    longitude: float | None = None
    display_name: str | None = None
    raw: dict | None = None
    error: str | None = None


def normalise_query(strasse: str | None, plz: str | None, ort: str | None) -> str | None:
    """``"hauptstraße 5, 10115 berlin"``; None when a part is missing."""
    parts = [re.sub(r"\s+", " ", (p or "").strip()).lower() for p in (strasse, plz, ort)]
    if not all(parts):
        return None
    return f"{parts[0]}, {parts[1]} {parts[2]}"


def cache_key(kind: str, query: str) -> str:
    """The ``geocache.query`` a lookup is stored under: a therapist's normalised address,
    or the keyed hash of a patient's (with the newest key)."""
    return crypto.blind_index(query) if kind == "patient" else query


def cache_keys(kind: str, query: str) -> list[str]:
    """Every ``geocache.query`` a stored lookup of ``query`` may have: for a patient its
    hash under each key of ``ENCRYPTION_KEYS``, newest first."""
    return crypto.blind_indexes(query) if kind == "patient" else [query]


def make_geocoder(s: settings.Settings | None = None) -> Nominatim | None:
    """geopy's Nominatim client for ``NOMINATIM_URL``, or None when it is not set."""
    s = s or settings.get()
    if not s.NOMINATIM_URL:
        return None
    url = urlparse(s.NOMINATIM_URL)
    return Nominatim(
        user_agent=s.NOMINATIM_USER_AGENT,
        domain=(url.netloc + url.path).rstrip("/"),
        scheme=url.scheme or "https",
        timeout=s.NOMINATIM_TIMEOUT_S,
        # The stdlib adapter makes exactly one request per call: geopy's requests
        # adapter retries on its own (429 included), behind the rate limiter's back.
        adapter_factory=URLLibAdapter,
    )


def lookup(query: str, geocoder, limiter: IntervalRateLimiter, *, max_wait_s=30.0) -> Lookup:
    """One rate-limited request. Raises ``dramatiq.RateLimitExceeded`` when no slot came."""
    from dramatiq.errors import RateLimitExceeded

    if not limiter.wait(max_wait_s):
        raise RateLimitExceeded(f"no Nominatim slot within {max_wait_s:.0f} s")
    try:
        location = geocoder.geocode(query, exactly_one=True, country_codes="de")
    except geopy_exc.GeocoderRateLimited as exc:
        pause = min(float(exc.retry_after or DEFAULT_429_PAUSE_S), MAX_429_PAUSE_S)
        limiter.hold(pause)
        return Lookup(RATE_LIMITED, error=f"429 from Nominatim; paused {pause:.0f} s")
    except geopy_exc.GeocoderTimedOut as exc:
        return Lookup(TIMEOUT, error=str(exc) or "timed out")
    except geopy_exc.GeopyError as exc:
        return Lookup(ERROR, error=f"{type(exc).__name__}: {exc}")
    if location is None:
        return Lookup(NOT_FOUND, error="no result")
    return Lookup(
        FOUND,
        latitude=float(location.latitude),
        longitude=float(location.longitude),
        display_name=location.address,
        raw=location.raw if isinstance(location.raw, dict) else None,
    )


# --- records and the cache ------------------------------------------------------------------


def _cached(kind: str, query: str) -> Geocache | None:
    return (
        Geocache.select()
        .where(Geocache.query.in_(cache_keys(kind, query)) & (Geocache.query_type == QUERY_TYPE))
        .order_by(Geocache.updated_at.desc(), Geocache.id.desc())
        .first()
    )


def _store(kind: str, query: str, result: Lookup) -> Geocache:
    """Insert or update the cache row of ``query`` (inside a transaction). A patient's
    lookup is stored under the address's hash, rounded, without names or raw answer."""
    patient = kind == "patient"
    row = _cached(kind, query)
    attempts = ((row.result_data or {}).get("attempts", 0) if row else 0) + 1
    data = {"status": result.status, "attempts": attempts}
    if result.error:
        # an error text may quote the request URL, and so a patient's address: for a
        # patient only its first part (the exception's name, "429 from Nominatim; ...")
        data["error"] = (result.error.split(":", 1)[0] if patient else result.error)[:500]
    if result.raw and not patient:
        data["result"] = result.raw
    fields = dict(
        latitude=result.latitude,
        longitude=result.longitude,
        display_name=None if patient else result.display_name,
        result_data=data,
    )
    if patient:
        fields.update(
            latitude=None if result.latitude is None else round(result.latitude, 2),
            longitude=None if result.longitude is None else round(result.longitude, 2),
        )
    key = cache_key(kind, query)
    if row is None:
        try:
            with db.atomic():  # savepoint: a concurrent insert of the same query may win
                return Geocache.create(query=key, query_type=QUERY_TYPE, hit_count=0, **fields)
        except peewee.IntegrityError:
            row = Geocache.get((Geocache.query == key) & (Geocache.query_type == QUERY_TYPE))
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row


def _apply(model, record_id: int, query: str, latitude: float, longitude: float) -> bool:
    record = model.by_id(record_id)
    if record is None or normalise_query(record.strasse, record.plz, record.ort) != query:
        return False  # deleted, or the address changed while we asked
    model.update(
        latitude=latitude, longitude=longitude, geo_quelle="adresse", geo_plz=record.plz
    ).where(model.id == record_id).execute()
    return True


def geocode_record(
    kind: str, record_id: int, *, geocoder=None, limiter=None, max_wait_s: float = 30.0
) -> str:
    """Street-level location for one patient/therapist; returns a status.

    ``disabled`` (no NOMINATIM_URL), ``missing``, ``incomplete`` (no full
    address), ``cached`` / ``cached_not_found`` (answered by the cache), or the
    status of a fresh lookup (``found``, ``not_found``, ``rate_limited``,
    ``timeout``, ``error``).
    """
    model = MODELS[kind]
    geocoder = geocoder or make_geocoder()
    if geocoder is None:
        return "disabled"
    record = model.by_id(record_id)
    if record is None:
        return "missing"
    query = normalise_query(record.strasse, record.plz, record.ort)
    if query is None:
        return "incomplete"
    with write_transaction():
        cached = _cached(kind, query)
        status = (cached.result_data or {}).get("status") if cached else None
        if cached is not None and (cached.latitude is not None or status == NOT_FOUND):
            Geocache.update(hit_count=Geocache.hit_count + 1, updated_at=utcnow()).where(
                Geocache.id == cached.id
            ).execute()
            if cached.latitude is None:
                return "cached_not_found"
            _apply(model, record_id, query, cached.latitude, cached.longitude)
            return "cached"
    result = lookup(query, geocoder, limiter or make_limiter(), max_wait_s=max_wait_s)
    with write_transaction():
        _store(kind, query, result)
        if result.status == FOUND:
            _apply(model, record_id, query, result.latitude, result.longitude)
    if result.status != FOUND:
        # A provider's error text may quote the request, i.e. a patient's address: for
        # patients only the outcome is logged.
        detail = result.error if kind != "patient" else "details withheld for patients"
        log.info("geocoding %s %s: %s (%s)", kind, record_id, result.status, detail)
    return result.status


def backlog(limit: int = 500) -> list[tuple[str, int]]:
    """Records worth a street-level lookup: a full address, located by PLZ centroid
    (or not at all because the PLZ is unknown), and no final ``not_found`` for it."""
    final = {
        row.query
        for row in Geocache.select(Geocache.query, Geocache.result_data).where(
            (Geocache.query_type == QUERY_TYPE) & Geocache.latitude.is_null()
        )
        if (row.result_data or {}).get("status") == NOT_FOUND
    }
    found: list[tuple[str, int]] = []
    for kind, model in MODELS.items():
        on_centroid = (model.geo_quelle == "plz") | (
            model.latitude.is_null() & (model.geo_plz == model.plz)
        )
        query = (
            model.select(model.id, model.strasse, model.plz, model.ort)
            .where(model.strasse.is_null(False) & model.plz.is_null(False) & on_centroid)
            .order_by(model.id)
        )
        for record in query:
            text = normalise_query(record.strasse, record.plz, record.ort)
            if text is not None and final.isdisjoint(cache_keys(kind, text)):
                found.append((kind, record.id))
                if len(found) >= limit:
                    return found
    return found


def rekey_patient_lookups(queries=None, batch: int = 500) -> int:
    """Move patient lookups stored under an older key of ``ENCRYPTION_KEYS`` to the newest
    (part of a key rotation, before the old key is dropped); returns how many moved.

    ``queries``: normalised addresses (default: every patient's). Where a row under the
    newest key exists already, the older rows are deleted instead."""
    if queries is None:
        rows = Patient.select(Patient.strasse, Patient.plz, Patient.ort).where(
            Patient.strasse.is_null(False)
        )
        queries = {normalise_query(r.strasse, r.plz, r.ort) for r in rows} - {None}
    queries = sorted(queries)
    if len(crypto.blind_indexes("")) < 2:
        return 0  # one key: nothing is stored under another
    moved = 0
    for start in range(0, len(queries), batch):
        with write_transaction():
            for query in queries[start : start + batch]:
                newest, *older = cache_keys("patient", query)
                rows = list(
                    Geocache.select(Geocache.id, Geocache.query)
                    .where(Geocache.query.in_([newest, *older]))
                    .where(Geocache.query_type == QUERY_TYPE)
                    .order_by(Geocache.updated_at.desc(), Geocache.id.desc())
                )
                stale = [r.id for r in rows if r.query != newest]
                if not stale:
                    continue
                if all(r.query != newest for r in rows):
                    Geocache.update(query=newest).where(Geocache.id == stale.pop(0)).execute()
                    moved += 1
                if stale:
                    Geocache.delete().where(Geocache.id.in_(stale)).execute()
    return moved


def failed_lookups(limit: int = 200) -> list[dict]:
    """Cache rows without coordinates, newest first: what staff check by hand. ``query``
    is a therapist's address; for a patient's it is None (only its hash is stored:
    ``backlog`` lists the patients still on their PLZ centroid)."""
    query = (
        Geocache.select()
        .where((Geocache.query_type == QUERY_TYPE) & Geocache.latitude.is_null())
        .order_by(Geocache.updated_at.desc())
        .limit(limit)
    )
    return [
        {
            "query": None if crypto.is_blind_index(row.query) else row.query,
            "status": (row.result_data or {}).get("status"),
            "error": (row.result_data or {}).get("error"),
            "attempts": (row.result_data or {}).get("attempts"),
            "updated_at": row.updated_at,
        }
        for row in query
    ]
