"""Street-level geocoding through a fake Nominatim on loopback; PLZ geocoding stays offline."""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

from db import crypto
from db import plz as plz_table
from db.models import Geocache, Patient, PlzCentroid, Therapist
from operations.geocoding import nominatim
from psymatch import settings
from workers import geocoding_actors as actors

KNOWN = {
    "hauptstraße 5, 10115 berlin": {"lat": "52.5321", "lon": "13.3849"},
    "marienplatz 1, 80331 münchen": {"lat": "48.1374", "lon": "11.5755"},
}


class FakeNominatim(ThreadingHTTPServer):
    """Speaks ``/search?q=...&format=json``; ``script`` holds behaviours for the next
    requests: ``("429", retry_after)``, ``("sleep", seconds)``, ``("500", None)``."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.requests: list[tuple[float, str, str]] = []  # (time, q, user agent)
        self.script: list[tuple[str, float | None]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        q = query.get("q", [""])[0]
        with self.server.lock:
            self.server.requests.append((time.monotonic(), q, self.headers.get("User-Agent")))
            action = self.server.script.pop(0) if self.server.script else ("answer", None)
        kind, value = action
        if url.path != "/search" or query.get("format") != ["json"]:
            return self._send(404, [])
        if kind == "429":
            return self._send(429, {"error": "Too many requests"}, {"Retry-After": str(value)})
        if kind == "500":
            return self._send(500, {"error": "boom"})
        if kind == "sleep":
            time.sleep(value)
        place = KNOWN.get(q.lower())
        places = [{**place, "display_name": q.title(), "place_id": 1}] if place else []
        return self._send(200, places)

    def _send(self, status, payload, headers=None):
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            pass


@pytest.fixture
def fake():
    server = FakeNominatim()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    before = settings.get()
    settings.override(
        NOMINATIM_URL=server.url, NOMINATIM_USER_AGENT="psymatch-test/1.0", NOMINATIM_TIMEOUT_S=5.0
    )
    yield server
    settings.override(
        NOMINATIM_URL=before.NOMINATIM_URL,
        NOMINATIM_USER_AGENT=before.NOMINATIM_USER_AGENT,
        NOMINATIM_TIMEOUT_S=before.NOMINATIM_TIMEOUT_S,
    )
    server.shutdown()
    server.server_close()


@pytest.fixture
def limiter():
    return nominatim.make_limiter(StubBackend(), key=f"test:{uuid.uuid4().hex}")


def centroid(plz: str) -> tuple[float, float]:
    """The PLZ centroid as a patient stores it: to about 1 km."""
    row = PlzCentroid.get_by_id(plz)
    return round(row.latitude, 2), round(row.longitude, 2)


def located_patient(external_id="P1", strasse="Hauptstraße 5", plz="10115", ort="Berlin"):
    lat, lon = centroid(plz)
    return Patient.create(
        external_id=external_id,
        anrede="Frau",
        geschlecht="weiblich",
        vorname="A",
        nachname="B",
        strasse=strasse,
        plz=plz,
        ort=ort,
        latitude=lat,
        longitude=lon,
        geo_quelle="plz",
        geo_plz=plz,
    )


def test_queries_are_normalised():
    assert nominatim.normalise_query(" Hauptstraße  5 ", "10115", "BERLIN") == (
        "hauptstraße 5, 10115 berlin"
    )
    assert nominatim.normalise_query(None, "10115", "Berlin") is None
    assert nominatim.normalise_query("Weg 1", "10115", "  ") is None


def test_found_address_replaces_the_centroid_and_is_cached(clean_db, fake, limiter):
    first = located_patient("P1")
    second = located_patient("P2", strasse="HAUPTSTRASSE 5".replace("SS", "ß"))
    assert nominatim.geocode_record("patient", first.id, limiter=limiter) == "found"
    patient = Patient.get_by_id(first.id)
    assert (patient.latitude, patient.longitude) == (52.53, 13.38)  # about 1 km
    assert (patient.geo_quelle, patient.geo_plz) == ("adresse", "10115")
    (request,) = fake.requests
    assert request[1] == "hauptstraße 5, 10115 berlin" and request[2] == "psymatch-test/1.0"
    assert nominatim.geocode_record("patient", second.id, limiter=limiter) == "cached"
    assert len(fake.requests) == 1  # answered by the cache
    assert Patient.get_by_id(second.id).geo_quelle == "adresse"
    # a patient's address is stored only as its keyed hash, rounded, without names
    (cache,) = Geocache.select()
    assert cache.query == crypto.blind_index("hauptstraße 5, 10115 berlin")
    assert (cache.query_type, cache.latitude, cache.hit_count) == ("adresse", 52.53, 1)
    assert cache.result_data == {"status": "found", "attempts": 1}
    assert cache.display_name is None
    # the PLZ backlog leaves street-level locations alone
    from operations.geocoding.plz import locate_backlog

    assert locate_backlog(plz_table.centroid_map()) == {"located": 0, "unknown_plz": 0}
    assert Patient.get_by_id(first.id).latitude == 52.53


def test_unknown_address_keeps_the_centroid_and_is_visible(clean_db, fake, limiter):
    patient = located_patient("P1", strasse="Nirgendwo 99")
    before = centroid("10115")
    assert nominatim.geocode_record("patient", patient.id, limiter=limiter) == "not_found"
    stored = Patient.get_by_id(patient.id)
    assert (stored.latitude, stored.longitude, stored.geo_quelle) == (*before, "plz")
    (failed,) = nominatim.failed_lookups()
    assert (failed["query"], failed["status"], failed["attempts"]) == (None, "not_found", 1)
    assert nominatim.backlog() == []  # final for this address
    assert nominatim.geocode_record("patient", patient.id, limiter=limiter) == "cached_not_found"
    assert len(fake.requests) == 1


def test_429_pauses_every_request_and_is_retried(clean_db, fake, limiter):
    patient = located_patient("P1")
    fake.script = [("429", 2)]
    assert nominatim.geocode_record("patient", patient.id, limiter=limiter) == "rate_limited"
    stored = Patient.get_by_id(patient.id)
    assert stored.geo_quelle == "plz" and stored.latitude == centroid("10115")[0]
    assert nominatim.failed_lookups()[0]["status"] == "rate_limited"
    assert nominatim.backlog() == [("patient", patient.id)]  # transient: tried again
    assert nominatim.geocode_record("patient", patient.id, limiter=limiter) == "found"
    gap = fake.requests[1][0] - fake.requests[0][0]
    assert gap >= 1.9, f"second request only {gap:.2f} s after the 429"
    assert Geocache.get().result_data["attempts"] == 2


def test_a_slow_server_times_out_and_the_record_stays(clean_db, fake, limiter):
    settings.override(NOMINATIM_TIMEOUT_S=0.5)
    patient = located_patient("P1")
    fake.script = [("sleep", 2.0)]
    started = time.monotonic()
    assert nominatim.geocode_record("patient", patient.id, limiter=limiter) == "timeout"
    assert time.monotonic() - started < 1.9
    assert Patient.get_by_id(patient.id).geo_quelle == "plz"
    assert nominatim.failed_lookups()[0]["status"] == "timeout"


def test_the_actor_raises_for_a_retry_on_transient_failures(clean_db, fake, monkeypatch):
    monkeypatch.setattr(nominatim, "_stub_backend", StubBackend())
    patient = located_patient("P1")
    fake.script = [("500", None)]
    with pytest.raises(nominatim.RetryLater, match="error"):
        actors.geocode_address("patient", patient.id)
    time.sleep(1.05)  # the next slot of the process-wide limiter
    assert actors.geocode_address("patient", patient.id) == "found"


def test_disabled_without_url_and_opens_no_socket(clean_db, monkeypatch):
    monkeypatch.setattr(settings, "_current", settings.get())
    settings.override(NOMINATIM_URL="")
    patient = located_patient("P1")

    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert nominatim.geocode_record("patient", patient.id) == "disabled"
    assert actors.geocode_address_backlog() == 0


def test_a_practice_address_is_cached_as_it_is(clean_db, fake, limiter):
    """Therapist addresses are business data: cached in plaintext, coordinates exact."""
    therapist = Therapist.create(
        external_id="T1",
        anrede="Herr",
        geschlecht="männlich",
        vorname="C",
        nachname="D",
        strasse="Marienplatz 1",
        plz="80331",
        ort="München",
        geo_quelle="plz",
        geo_plz="80331",
    )
    assert nominatim.geocode_record("therapist", therapist.id, limiter=limiter) == "found"
    cache = Geocache.get()
    assert (cache.query, cache.latitude) == ("marienplatz 1, 80331 münchen", 48.1374)
    assert cache.display_name and cache.result_data["result"]["place_id"] == 1
    assert Therapist.get_by_id(therapist.id).latitude == 48.1374


def test_backlog_picks_full_addresses_on_centroids_and_enqueues_them(clean_db, fake, stub_broker):
    on_centroid = located_patient("P1")
    located_patient("P2", strasse=None)
    street_level = located_patient("P3")
    Patient.update(geo_quelle="adresse").where(Patient.id == street_level.id).execute()
    unknown_plz = Therapist.create(
        external_id="T1",
        anrede="Herr",
        geschlecht="männlich",
        vorname="C",
        nachname="D",
        strasse="Marienplatz 1",
        plz="00000",
        ort="München",
        geo_plz="00000",
    )
    assert nominatim.backlog() == [("patient", on_centroid.id), ("therapist", unknown_plz.id)]
    assert actors.geocode_address_backlog() == 2
    assert stub_broker.queues["geocoding"].qsize() == 2


def _lookups_in_child(url, redis_url, key, queries, results):
    """Runs in a separate process: one worker making lookups."""
    settings.override(NOMINATIM_URL=url, NOMINATIM_USER_AGENT="psymatch-test/1.0")
    limiter = nominatim.make_limiter(RedisBackend(url=redis_url), key=key)
    geocoder = nominatim.make_geocoder()
    for query in queries:
        results.put(nominatim.lookup(query, geocoder, limiter, max_wait_s=20).status)


def test_at_most_one_request_per_second_across_processes(fake, redis_url):
    key = f"psymatch-test:nominatim:{uuid.uuid4().hex}"
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    queries = ["hauptstraße 5, 10115 berlin", "marienplatz 1, 80331 münchen", "nichts, 1 x"]
    workers = [
        context.Process(target=_lookups_in_child, args=(fake.url, redis_url, key, queries, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    statuses = sorted(results.get(timeout=5) for _ in range(6))
    assert statuses == ["found"] * 4 + ["not_found"] * 2
    times = sorted(t for t, _, _ in fake.requests)
    assert len(times) == 6
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.9, gaps  # the limiter spaces starts 1.1 s: room for 0.2 s of delay


def test_interval_limiter_semantics():
    limiter = nominatim.make_limiter(StubBackend(), key="k")
    assert limiter.wait(0) is True
    assert limiter.wait(0) is False  # within the same second
    started = time.monotonic()
    assert limiter.wait(2) is True
    assert 0.8 <= time.monotonic() - started <= 1.5
    assert limiter.hold(1.5, max_wait_s=2) is True
    assert limiter.wait(0.5) is False


# --- PLZ geocoding needs no network ---------------------------------------------------------


def _is_loopback(host) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost",)


@pytest.fixture
def loopback_only(monkeypatch):
    """Any socket connection or name lookup beyond this machine fails the test."""
    attempts = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address):
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not _is_loopback(host):
            attempts.append(address)
            raise OSError(f"network access to {address} blocked by the test")

    def connect(sock, address):
        check(address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _is_loopback(host):
            attempts.append(host)
            raise OSError(f"name lookup of {host} blocked by the test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


def test_plz_geocoding_works_offline(clean_db, loopback_only):
    rows = plz_table.read_centroids()  # pgeocode over the shared GeoNames file
    assert len(rows) == 10814
    patient = Patient.create(
        external_id="P1",
        anrede="Frau",
        geschlecht="weiblich",
        vorname="A",
        nachname="B",
        plz="80331",
    )
    assert actors.geocode_backlog() == {"located": 1, "unknown_plz": 0}
    assert Patient.get_by_id(patient.id).latitude == round(centroid("80331")[0], 2)
    assert loopback_only == []
    with pytest.raises(OSError, match="blocked"):  # the guard itself works
        socket.create_connection(("192.0.2.1", 80), timeout=0.1)


def test_a_failed_patient_lookup_logs_no_address(clean_db, limiter, caplog):
    """geopy's errors may quote the request; for a patient the log keeps only the outcome."""
    from geopy import exc as geopy_exc

    class Failing:
        def geocode(self, query, **_):
            raise geopy_exc.GeocoderServiceError(f"502 for q={query}")

    patient = located_patient("P1")
    with caplog.at_level("INFO", logger=nominatim.log.name):
        status = nominatim.geocode_record(
            "patient", patient.id, geocoder=Failing(), limiter=limiter
        )
    assert status == "error"
    assert "geocoding patient" in caplog.text
    assert "hauptstraße" not in caplog.text.lower() and "502" not in caplog.text
