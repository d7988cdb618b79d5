"""Benchmarks (``psymatch bench ...``): JSON figures against a baseline from the same run."""

from __future__ import annotations

import datetime as dt
import resource
import time

from db import database
from db.bulk import bulk_insert, reserve_ids
from db.database import write_transaction
from db.models import (
    AuditLog,
    OutboxItem,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)


class BenchError(RuntimeError):
    pass


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _ensure_demo(therapists: int, searches: int, seed: int, report) -> bool:
    """Demo data of this size: reused when present, generated into an empty database."""
    from operations import demo_data as demo

    have_t = Therapist.select().count()
    have_s = Platzsuche.select().where(Platzsuche.status == "aktiv").count()
    if (have_t, have_s) == (therapists, searches):
        return True
    if have_t or have_s:
        raise BenchError(
            f"database holds {have_t} therapists and {have_s} aktiv searches, not "
            f"{therapists}/{searches}: use an empty database (or the same sizes again)"
        )
    demo.generate(
        therapists=therapists, patients=searches, seed=seed, search_share=1.0, report=report
    )
    return False


def _read_inputs() -> int:
    """The floor's read: the same rows the round reads, fetched raw, without any logic."""
    from operations import snapshot as snap

    rows = 0
    rows += len(
        list(Therapist.select(*[getattr(Therapist, c) for c in snap.THERAPIST_COLUMNS]).tuples())
    )
    rows += len(snap.therapists_with_pending_anfrage())
    rows += len(snap.email_last_queued())
    rows += len(snap.pending_rows_per_search())
    from db.models import Patient

    query = (
        Platzsuche.select(Platzsuche, Patient)
        .join(Patient)
        .where((Platzsuche.status == "aktiv") & Platzsuche.vermittelter_therapeut.is_null())
    )
    rows += len(list(query.tuples()))
    return rows


def _write_outputs(bundles: int, lines: int, therapist_id: int, search_ids: list[int]) -> list[int]:
    """The floor's write: as many rows as the round writes, with trivial content, committed."""
    from operations.bundles import ANFRAGE_COLUMNS, AUDIT_COLUMNS, LINE_COLUMNS
    from operations.outbox import COLUMNS as OUTBOX_COLUMNS

    now = dt.datetime(2000, 1, 1)
    with write_transaction():
        ids = reserve_ids(Therapeutenanfrage, bundles)
        anfragen = [
            dict.fromkeys(ANFRAGE_COLUMNS)
            | {
                "id": i,
                "therapist_id": therapist_id,
                "erstellt_datum": now,
                "anfragegroesse": 1,
                "angenommen_anzahl": 0,
                "abgelehnt_anzahl": 0,
                "keine_antwort_anzahl": 0,
                "notizen": "",
                "ausloeser": "runde",
            }
            for i in ids
        ]
        # line k goes to Anfrage k mod n at position k div n: unique like the real lines
        patient_of = dict(
            Platzsuche.select(Platzsuche.id, Platzsuche.patient)
            .where(Platzsuche.id.in_(search_ids))
            .tuples()
        )
        out_lines = []
        for k in range(lines if ids else 0):
            search_id = search_ids[(k // len(ids)) % len(search_ids)]
            out_lines.append(
                dict.fromkeys(LINE_COLUMNS)
                | {
                    "created_at": now,
                    "updated_at": now,
                    "therapeutenanfrage_id": ids[k % len(ids)],
                    "platzsuche_id": search_id,
                    "patient_id": patient_of[search_id],
                    "position_in_anfrage": k // len(ids) + 1,
                    "status": "anstehend",
                }
            )
        outbox = [
            dict.fromkeys(OUTBOX_COLUMNS)
            | {
                "task": "bench",
                "payload": {"anfrage_id": i},
                "dedupe_key": f"bench:{i}",
                "status": "erledigt",
                "created_at": now,
                "attempts": 0,
            }
            for i in ids
        ]
        audits = [
            dict.fromkeys(AUDIT_COLUMNS)
            | {
                "at": now,
                "actor": "bench",
                "action": "bench",
                "entity": "bench",
                "entity_id": str(i),
                "details": {},
            }
            for i in ids
        ]
        bulk_insert(Therapeutenanfrage, ANFRAGE_COLUMNS, anfragen)
        bulk_insert(TherapeutAnfragePatient, LINE_COLUMNS, out_lines)
        bulk_insert(OutboxItem, OUTBOX_COLUMNS, outbox)
        bulk_insert(AuditLog, AUDIT_COLUMNS, audits)
    return ids


def _delete_anfragen(ids: list[int]) -> None:
    with write_transaction():
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            Therapeutenanfrage.delete().where(Therapeutenanfrage.id.in_(chunk)).execute()
            keys = [f"send_anfrage:{i}" for i in chunk] + [f"bench:{i}" for i in chunk]
            OutboxItem.delete().where(OutboxItem.dedupe_key.in_(keys)).execute()
            AuditLog.delete().where(
                AuditLog.entity.in_(("therapeutenanfrage", "bench"))
                & AuditLog.entity_id.in_([str(i) for i in chunk])
            ).execute()


def warm_up_jit() -> float:
    """Compile (or load from numba's cache) the selection kernel on a tiny input."""
    from psymatch.domain.bundling import Params, SearchData, Snapshot, TherapistData, plan_round

    started = time.perf_counter()
    now = dt.datetime(2026, 1, 5, 8)
    therapist = TherapistData(id=1, nachname="W", latitude=50.0, longitude=8.0)
    search = SearchData(id=1, patient_id=1, created_at=now, latitude=50.0, longitude=8.0)
    plan_round(Snapshot((therapist,), (search,), now, now.date()), Params(round_min_size=1))
    return round(time.perf_counter() - started, 3)


def bundling(therapists: int, searches: int, seed: int = 1, report=None) -> dict:
    """One full round on demo data of the given size, against the I/O floor of the same run."""
    from operations.bundles import run_bundle_round

    database.init()
    reused = _ensure_demo(therapists, searches, seed, report)
    jit_s = warm_up_jit()
    _read_inputs()  # warm the database's caches for both measurements alike

    started = time.perf_counter()
    result = run_bundle_round(actor="bench", respect_flag=False)
    round_s = time.perf_counter() - started
    lines = result.patients_offered
    try:
        started = time.perf_counter()
        read_rows = _read_inputs()
        search_ids = [s for (s,) in Platzsuche.select(Platzsuche.id).limit(1000).tuples()]
        therapist_id = Therapist.select(Therapist.id).limit(1).scalar()
        floor_ids = _write_outputs(len(result.created), lines, therapist_id, search_ids)
        floor_s = time.perf_counter() - started
    finally:
        _delete_anfragen(result.created)
        if "floor_ids" in locals():
            _delete_anfragen(floor_ids)
    return {
        "backend": database.dialect(),
        "therapists": therapists,
        "searches": searches,
        "reused_data": reused,
        "bundles": len(result.created),
        "patients_offered": lines,
        "selection_s": round(result.selection_s, 3),
        "round_s": round(round_s, 3),
        "floor_s": round(floor_s, 3),
        "round_over_floor": round(round_s / floor_s, 2) if floor_s else None,
        "floor_rows_read": read_rows,
        "jit_warmup_s": jit_s,
        "peak_rss_mb": peak_rss_mb(),
    }


# --- emails --------------------------------------------------------------------------------


def _bench_rows(count: int) -> tuple[list[int], list[int]]:
    """One therapist, one patient and ``count`` rendered, queued inquiry emails (setup, untimed)."""
    from db.models import Email, Patient, PlzCentroid, TherapeutAnfragePatient
    from operations.emailing import render
    from operations.emailing.data import patient_info, therapist_info
    from operations.emailing.queue import outbox_send, queue_email

    place = PlzCentroid.get_by_id("10115")
    located = {"plz": place.plz, "latitude": place.latitude, "longitude": place.longitude}
    therapist = Therapist.create(
        external_id="bench-T",
        anrede="Frau",
        geschlecht="weiblich",
        vorname="Bea",
        nachname="Bench",
        email="bench@example.org",
        **located,
    )
    patient = Patient.create(
        external_id="bench-P",
        anrede="Herr",
        geschlecht="männlich",
        vorname="Ben",
        nachname="Bench",
        krankenkasse="TK",
        geburtsdatum=dt.date(1990, 1, 1),
        symptome=["Schlafstörungen"],
        zeitliche_verfuegbarkeit={"montag": ["09:00-12:00"]},
        **located,
    )
    search = Platzsuche.create(patient=patient)
    info_t, info_p = therapist_info(therapist), [patient_info(patient)]
    anfrage_ids, email_ids = [], []
    for start in range(0, count, 500):
        with write_transaction():
            ids = reserve_ids(Therapeutenanfrage, min(500, count - start))
            rows = [
                {
                    "id": i,
                    "therapist": therapist.id,
                    "anfragegroesse": 1,
                    "erstellt_datum": dt.datetime(2000, 1, 1),
                    "notizen": "",
                }
                for i in ids
            ]
            Therapeutenanfrage.insert_many(rows).execute()
            TherapeutAnfragePatient.insert_many(
                [
                    {
                        "therapeutenanfrage": i,
                        "platzsuche": search.id,
                        "patient": patient.id,
                        "position_in_anfrage": 1,
                    }
                    for i in ids
                ]
            ).execute()
            for anfrage_id in ids:
                rendered = render.render_inquiry(anfrage_id, info_t, info_p)
                email, _ = queue_email(rendered, therapist_id=therapist.id, anfrage_id=anfrage_id)
                outbox_send(email)
                email_ids.append(email.id)
            anfrage_ids.extend(ids)
    from db.bulk import advance_sequences

    advance_sequences([Therapeutenanfrage])
    assert Email.select().where(Email.id.in_(email_ids[:1])).exists()
    return anfrage_ids, email_ids


def _cleanup_bench_rows() -> None:
    from db.models import Email, Patient
    from operations.emailing import headers as email_headers

    with write_transaction():
        therapist = Therapist.get_or_none(Therapist.external_id == "bench-T")
        if therapist:
            emails = Email.select(Email.idempotenz_schluessel).where(
                Email.therapist == therapist.id
            )
            keys = [email_headers.outbox_key(key) for (key,) in emails.tuples()]
            for start in range(0, len(keys), 5000):
                OutboxItem.delete().where(
                    OutboxItem.dedupe_key.in_(keys[start : start + 5000])
                ).execute()
            Email.delete().where(Email.therapist == therapist.id).execute()
            Therapeutenanfrage.delete().where(
                Therapeutenanfrage.therapist == therapist.id
            ).execute()
            therapist.delete_instance()
        patient = Patient.get_or_none(Patient.external_id == "bench-P")
        if patient:
            Platzsuche.delete().where(Platzsuche.patient == patient.id).execute()
            patient.delete_instance()


def _wait(predicate, timeout: float, check=lambda: None) -> float:
    """Poll ``predicate`` every 50 ms; ``check`` raises when a process it needs died."""
    started = time.perf_counter()
    while not predicate():
        check()
        if time.perf_counter() - started > timeout:
            raise BenchError("the worker pool did not finish in time")
        time.sleep(0.05)
    return time.perf_counter() - started


# Dramatiq's consumers poll an idle queue at most this far apart (default 1000 ms). The
# email queue idles through the no-op phase, whose own queue was just warmed up: at the
# default the email phase began with up to a second of sleep.
IDLE_POLL_MS = 50


def emails(count: int, processes: int = 2, threads: int = 8, report=None) -> dict:
    """``count`` inquiry emails through a real worker pool and a real SMTP server
    (aiosmtpd in a process of its own, ``tools.countingsink``). The same pool runs
    a no-op actor ``count`` times in the same run first: ``noop_per_s`` and
    ``emails_over_noop`` are there for information (what the queue itself costs);
    the target is on ``emails_per_s``, ``missing`` and ``duplicates``."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from db.models import Email
    from psymatch import settings
    from tools import countingsink
    from workers import embedded_redis

    database.init()
    if Therapist.select().where(Therapist.external_id == "bench-T").exists():
        _cleanup_bench_rows()
    var = Path(settings.get().VAR_DIR)
    var.mkdir(parents=True, exist_ok=True)
    try:
        smtp = countingsink.start(var)
    except countingsink.SinkError as exc:
        raise BenchError(str(exc)) from None
    redis_process = None
    redis_url = settings.get().REDIS_URL
    if not redis_url:  # a laptop without Redis: an embedded one for the run
        redis_process = embedded_redis.start(var / "bench-redis.sock")
        redis_url = f"unix://{var / 'bench-redis.sock'}"
    settings.override(REDIS_URL=redis_url, SMTP_URL=smtp.url)
    env = settings.child_environ(
        PATH=f"{Path(sys.executable).parent}:" + os.environ["PATH"],
        dramatiq_worker_timeout=str(IDLE_POLL_MS),
    )
    pool = worker_log = None
    try:
        import workers.actors  # noqa: F401
        from tools.bench_actors import COUNTER_KEY, noop
        from workers import outbox

        broker_ = noop.broker
        broker_.client.flushdb()
        if report:
            report(f"rendering and queueing {count} inquiry emails")
        _, email_ids = _bench_rows(count)
        worker_log = open(var / "bench-worker.log", "w")  # noqa: SIM115 (closed below)
        pool = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dramatiq")),
                "workers.actors",
                "tools.bench_actors",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
                "--queues",
                "emails",
                "bench",
            ],
            env=env,
            start_new_session=True,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )

        def check() -> None:
            if pool.poll() is not None:
                raise BenchError(f"the worker pool exited (its log: {worker_log.name})")
            try:
                smtp.check()
            except countingsink.SinkError as exc:
                raise BenchError(str(exc)) from None

        # warm-up: the pool must be up before either measurement starts
        noop.send()
        _wait(lambda: int(broker_.client.get(COUNTER_KEY) or 0) == 1, 120, check)
        broker_.client.delete(COUNTER_KEY)

        # timed like the emails below: from the first enqueue to the last message done
        started = time.perf_counter()
        for _ in range(count):
            noop.send()
        _wait(lambda: int(broker_.client.get(COUNTER_KEY) or 0) >= count, 600, check)
        noop_s = time.perf_counter() - started

        ours = Email.id.between(min(email_ids), max(email_ids)) & (
            Email.therapist == Therapist.get(Therapist.external_id == "bench-T")
        )
        # Polled every 50 ms, so it must cost next to nothing: the highest id not yet
        # sent. The batches go out roughly in id order, so scanning down from the top
        # stops at once until the very end. Counting the sent rows instead cost the
        # database ~7 % of both cores during the phase.
        unsent = Email.select(Email.id).where(ours & (Email.status != "Gesendet"))
        unsent = unsent.order_by(Email.id.desc()).limit(1)
        failed = Email.select(Email.id, Email.fehlermeldung).where(
            ours & (Email.status == "Fehlgeschlagen")
        )
        checked_failures = [time.perf_counter()]

        def check_emails() -> None:
            check()
            if time.perf_counter() - checked_failures[0] > 1:  # a full scan: once a second
                checked_failures[0] = time.perf_counter()
                if (row := failed.first()) is not None:
                    raise BenchError(f"email {row.id} failed: {row.fehlermeldung}")

        started = time.perf_counter()
        while outbox.relay():  # as in production: the relay groups the emails into batches
            pass
        _wait(lambda: not unsent.exists(), 1800, check_emails)
        emails_s = time.perf_counter() - started
        time.sleep(1)  # let any duplicate arrive before counting
        smtp.stop()
        received = smtp.received_ids()
        unique = set(received)
        expected = {
            m for (m,) in Email.select(Email.message_id).where(Email.id.in_(email_ids)).tuples()
        }
        return {
            "backend": database.dialect(),
            "emails": count,
            "smtp_server": smtp.kind,
            "processes": processes,
            "threads": threads,
            "emails_s": round(emails_s, 3),
            "emails_per_s": round(count / emails_s, 1),
            "noop_s": round(noop_s, 3),
            "noop_per_s": round(count / noop_s, 1),
            "emails_over_noop": round(noop_s / emails_s, 3),
            "duplicates": len(received) - len(unique),
            "missing": len(expected - unique),
            "peak_rss_mb": peak_rss_mb(),
        }
    finally:
        if pool is not None and pool.poll() is None:
            os.killpg(pool.pid, signal.SIGTERM)
            pool.wait(timeout=60)
        if worker_log is not None:
            worker_log.close()
        smtp.discard()
        _cleanup_bench_rows()
        if redis_process is not None:
            redis_process.terminate()
