"""``psymatch soak --minutes M``: the production processes under steady load.

Starts what the Procfile starts in production — ``web`` (gunicorn), ``worker``
(dramatiq, ``--workers`` copies, i.e. ``honcho start -c worker=N``) and ``clock``
(periodiq: the outbox relay every minute, reconcile, follow-ups) — against the
configured PostgreSQL and Redis, with a local SMTP sink as the mail provider, and
drives them for ``M`` minutes like a compressed working day:

- **rounds**: a bundle round every ``round_every_s`` seconds (the ``bundle_round``
  actor, as the clock sends it daily);
- **sends**: the relay and the worker pool send every inquiry those rounds queue;
- **replies**: each second, a few therapists whose inquiry was delivered answer
  through the signed ``raw`` webhook — mostly a filled-in answer form, some free
  text that needs a human, some delivered twice (providers retry);
- **staff reads**: the console's Today queries and ``/readyz`` every second.

It samples the resident memory of each process type once warm (every worker
process has run a bundle round: its first one compiles the selection kernel and
fills caches, once) and then every half minute up to the end, and counts errors:
webhook answers other than 200/202, failed staff reads, tracebacks and ERROR lines
in the process logs, dead-lettered messages and failed emails. The report is JSON.

The database needs psymatch's schema; an empty one gets demo data first. The run
adds bundles, emails and replies to it: use a scratch database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import psutil

from db import database
from psymatch import settings
from psymatch.ports import free_port

PROCESS_TYPES = {"web": "gunicorn", "worker": "dramatiq", "clock": "periodiq"}
REPLIES_PER_S = 3
# Warm-up: rounds every WARM_UP_ROUND_EVERY_S until every worker process has run one
# (its first round compiles the selection kernel and fills caches, ~+75 MB once); the
# memory baseline is taken then, so growth afterwards is growth under steady load.
MIN_WARM_UP_S = 60
MAX_WARM_UP_S = 300
WARM_UP_ROUND_EVERY_S = 15
SAMPLE_EVERY_S = 30
_READY_LINE = re.compile(r"\[(\d+)\] dramatiq\.WorkerProcess\(\d+\): Worker process is ready")
_ROUND_LINE = re.compile(r"\[(\d+)\] workers\.bundle_actors: bundle round:")


class SoakError(RuntimeError):
    pass


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SoakError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.5)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


# --- the load --------------------------------------------------------------------------------


def reply_message(anfrage_id: int, patient_ids: list[int], rng: random.Random) -> tuple[bytes, str]:
    """A therapist's reply to one inquiry and what it should become (``form`` or ``review``)."""
    from psymatch.domain import tokens
    from psymatch.domain.answer_form import form_line

    message = EmailMessage()
    message["From"] = "Praxis <praxis@example.org>"
    message["To"] = tokens.reply_address(anfrage_id)
    message["Subject"] = f"AW: Suche Psychotherapieplätze - Ref: A{anfrage_id}"
    message["Message-ID"] = f"<soak-{uuid.uuid4().hex}@example.org>"
    if rng.random() < 0.15:  # unclear: staff decide
        message.set_content("Guten Tag,\nich melde mich nächste Woche dazu.\nViele Grüße")
        return message.as_bytes(), "review"
    accepted = rng.randrange(len(patient_ids)) if rng.random() < 0.5 else None
    lines = ["Guten Tag,", "", "meine Antwort:", ""]
    for position, patient_id in enumerate(patient_ids, 1):
        line = form_line(position, patient_id)
        mark = 0 if position - 1 == accepted else 1  # ja / keine Kapazität
        parts = line.split("[ ]")
        lines.append("[ ]".join(parts[: mark + 1]) + "[x]" + "[ ]".join(parts[mark + 1 :]))
    lines += ["", "Mit freundlichen Grüßen", "Dr. Thera"]
    message.set_content("\n".join(lines))
    return message.as_bytes(), "form"


def delivered_inquiries(exclude: set[int], limit: int) -> list[tuple[int, list[int]]]:
    """Sent inquiries not answered by the driver yet: (Anfrage id, patient ids in order)."""
    from db.models import Email, TherapeutAnfragePatient

    ids = [
        anfrage_id
        for (anfrage_id,) in Email.select(Email.therapeutenanfrage)
        .where(
            (Email.art == "anfrage")
            & (Email.status == "Gesendet")
            & Email.therapeutenanfrage.is_null(False)
        )
        .order_by(Email.id)
        .tuples()
        if anfrage_id not in exclude
    ][:limit]
    if not ids:
        return []
    patients: dict[int, list[int]] = {i: [] for i in ids}
    rows = (
        TherapeutAnfragePatient.select(
            TherapeutAnfragePatient.therapeutenanfrage, TherapeutAnfragePatient.patient
        )
        .where(TherapeutAnfragePatient.therapeutenanfrage.in_(ids))
        .order_by(TherapeutAnfragePatient.position_in_anfrage)
        .tuples()
    )
    for anfrage_id, patient_id in rows:
        patients[anfrage_id].append(patient_id)
    return [(i, patients[i]) for i in ids if patients[i]]


class Driver:
    """The load of one soak run, one tick per second (see the module docstring)."""

    def __init__(self, web_port: int, round_every_s: int, seed: int):
        self.web_port = web_port
        self.round_every_s = round_every_s
        self.rng = random.Random(seed)
        self.answered: set[int] = set()
        self.never_answer: set[int] = set()
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self.last_round = -1e9
        self.replies_offered = 0
        self.tick_seconds: list[float] = []

    def tick(self, now: float) -> None:
        started = time.monotonic()
        if now - self.last_round >= self.round_every_s:
            self.start_round()
            self.last_round = now
        # replies keep their rate even when a tick runs long
        self.reply(min(int(now * REPLIES_PER_S) - self.replies_offered, 3 * REPLIES_PER_S))
        self.staff_read()
        self.tick_seconds.append(time.monotonic() - started)

    def start_round(self) -> None:
        from workers.bundle_actors import bundle_round

        bundle_round.send()
        self.counts["rounds_started"] += 1

    def _request(self, method: str, path: str, body: bytes | None = None, headers=None) -> int:
        """One request on a fresh connection (as providers send them); 0 when unreachable."""
        connection = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            return 0
        finally:
            connection.close()

    def reply(self, due: int) -> None:
        from webhooks import providers

        if due <= 0:
            return
        skip = self.answered | self.never_answer
        for anfrage_id, patient_ids in delivered_inquiries(skip, due):
            self.replies_offered += 1
            if self.rng.random() < 0.1:  # some therapists stay silent (follow-up calls)
                self.never_answer.add(anfrage_id)
                continue
            body, kind = reply_message(anfrage_id, patient_ids, self.rng)
            headers = {
                "Content-Type": "message/rfc822",
                "X-Psymatch-Signature": providers.raw_signature(body),
            }
            deliveries = 2 if self.rng.random() < 0.05 else 1  # the provider retries
            for _ in range(deliveries):
                status = self._request("POST", "/webhooks/inbound/raw", body, headers)
                if status in (200, 202):
                    self.counts["webhook_requests_ok"] += 1
                else:
                    self.errors[f"webhook_http_{status}"] += 1
            self.answered.add(anfrage_id)
            self.counts[f"replies_{kind}"] += 1

    def staff_read(self) -> None:
        from console import queries

        try:
            with database.connection():
                queries.today_summary()
                queries.reviews()
                queries.conflicts()
            self.counts["staff_reads"] += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported, the soak goes on
            self.errors[f"staff_read_{type(exc).__name__}"] += 1
        status = self._request("GET", "/readyz")
        if status != 200:
            self.errors[f"readyz_http_{status}"] += 1


# --- processes and measurements --------------------------------------------------------------


def memory_by_type(root: psutil.Process) -> dict[str, float]:
    """Resident MB of every process under ``root``, summed per Procfile process type."""
    totals = dict.fromkeys(PROCESS_TYPES, 0.0)
    with contextlib.suppress(psutil.Error):
        for process in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                command = " ".join(process.cmdline())
                for kind, marker in PROCESS_TYPES.items():
                    if marker in command and "honcho" not in command:
                        totals[kind] += process.memory_info().rss / 1e6
                        break
    return {kind: round(mb, 1) for kind, mb in totals.items()}


def worker_pids(log_path: Path) -> set[int]:
    """The Dramatiq worker processes: each logs that it is ready (its pid in the line).

    Telling them apart from the process tree is unreliable: a pool's master also forks
    the metrics server, and honcho starts each pool through ``sh -c``."""
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return {int(pid) for pid in _READY_LINE.findall(text)}


def round_pids(log_path: Path) -> set[int]:
    """Processes that logged a finished bundle round."""
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return {int(pid) for pid in _ROUND_LINE.findall(text)}


def _all_warm(log_path: Path) -> bool:
    workers = worker_pids(log_path)
    return bool(workers) and workers <= round_pids(log_path)


def _log_problems(log_path: Path) -> dict[str, int]:
    text = log_path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    return {
        "log_tracebacks": sum("Traceback (most recent call last)" in line for line in lines),
        "log_error_lines": sum(" ERROR " in line or '"level": "ERROR"' in line for line in lines),
    }


def _dead_letters(client) -> int:
    return sum(client.zcard(key) for key in client.scan_iter("dramatiq:*.XQ"))


def _domain_counts(since: dt.datetime) -> dict[str, int]:
    from db.models import Email, InboundMessage, Therapeutenanfrage

    with database.connection():
        return {
            "bundles_created": Therapeutenanfrage.select()
            .where(Therapeutenanfrage.erstellt_datum >= since)
            .count(),
            "emails_sent": Email.select()
            .where((Email.status == "Gesendet") & (Email.gesendet_am >= since))
            .count(),
            "emails_failed": Email.select().where(Email.status == "Fehlgeschlagen").count(),
            "emails_queued": Email.select().where(Email.status == "In_Warteschlange").count(),
            "replies_stored": InboundMessage.select()
            .where(InboundMessage.received_at >= since)
            .count(),
            "replies_recorded": InboundMessage.select()
            .where((InboundMessage.received_at >= since) & (InboundMessage.status == "verarbeitet"))
            .count(),
            "replies_in_review": InboundMessage.select()
            .where((InboundMessage.received_at >= since) & (InboundMessage.status == "pruefung"))
            .count(),
            "replies_unprocessed": InboundMessage.select()
            .where((InboundMessage.received_at >= since) & (InboundMessage.status == "neu"))
            .count(),
        }


def _ensure_data(therapists: int, patients: int, report) -> None:
    from db.models import Therapist
    from operations import demo_data as demo

    with database.connection():
        if Therapist.select().exists():
            return
    report(f"empty database: loading demo data ({therapists} therapists, {patients} patients)")
    demo.generate(therapists, patients, seed=7, report=None)


def run(
    minutes: float,
    workers: int = 3,
    round_every_s: int = 120,
    therapists: int = 3000,
    patients: int = 6000,
    report=None,
) -> dict:
    """Run the soak; returns the report (see the module docstring)."""
    import redis

    from db.models import utcnow

    report = report or (lambda line: None)
    warm_up_s = None
    s = settings.get()
    database.init()
    if database.dialect() != "postgres":
        raise SoakError("the soak run needs PostgreSQL: set DATABASE_URL to a scratch database")
    if not s.REDIS_URL:
        raise SoakError("the soak run needs a Redis server: set REDIS_URL")
    _ensure_data(therapists, patients, report)
    started_at = utcnow()
    web_port, smtp_port = free_port(), free_port()
    var = Path(s.VAR_DIR)
    var.mkdir(parents=True, exist_ok=True)
    log_path = var / "soak.log"
    env = settings.child_environ(
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        PORT=str(web_port),
        VAR_DIR=tempfile.mkdtemp(prefix="soak-var-"),
    )
    client = redis.Redis.from_url(s.REDIS_URL)
    dead_before = _dead_letters(client)
    sink = subprocess.Popen(
        [sys.executable, "-m", "tools.countingsink", str(smtp_port), os.devnull],
        stdout=subprocess.PIPE,
        text=True,
    )
    if sink.stdout.readline().strip() != "ready":
        raise SoakError("the local SMTP sink did not start")
    log_file = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in finally
    honcho = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("honcho")),
            "start",
            "--procfile",
            str(settings.PROJECT_ROOT / "Procfile"),
            "--app-root",
            str(settings.PROJECT_ROOT),
            "--no-colour",
            "-c",
            f"worker={workers}",
            "web",
            "worker",
            "clock",
        ],
        env=env,
        cwd=settings.PROJECT_ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    root = psutil.Process(honcho.pid)

    def stop_on_sigterm(signum, frame):
        raise KeyboardInterrupt  # the finally below stops every process of the run

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        report(f"processes: web, clock, worker x{workers} (log: {log_path})")
        _wait_for(lambda: _listening(web_port), 120, "the web process listening")
        driver = Driver(web_port, WARM_UP_ROUND_EVERY_S, seed=11)
        begin = time.monotonic()
        end = begin + minutes * 60
        memory_start = None
        samples = []
        warm_until = begin + MAX_WARM_UP_S
        next_sample = None
        while (now := time.monotonic()) < end:
            if honcho.poll() is not None:
                raise SoakError(f"honcho stopped early (exit {honcho.returncode}); see {log_path}")
            tick_started = time.monotonic()
            with database.connection():
                driver.tick(now - begin)
            if next_sample is None and (
                now >= warm_until or (now - begin >= MIN_WARM_UP_S and _all_warm(log_path))
            ):  # warm: every worker process has run a round; the baseline starts here
                driver.round_every_s = round_every_s
                warm_up_s = round(now - begin)
                next_sample = now
            if next_sample is not None and now >= next_sample:
                sample = memory_by_type(root)
                samples.append({"t_s": round(now - begin), **sample})
                memory_start = memory_start or sample
                next_sample += SAMPLE_EVERY_S
                report(f"{(now - begin) / 60:4.1f} min  memory MB {sample}  {dict(driver.counts)}")
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick_started)))
        memory_end = memory_by_type(root)
        report("load stopped; letting the last replies and emails drain")
        drain_deadline = time.monotonic() + 90
        while time.monotonic() < drain_deadline:
            counts = _domain_counts(started_at)
            if counts["replies_unprocessed"] == 0 and counts["emails_queued"] == 0:
                break
            time.sleep(2)
        elapsed_min = (time.monotonic() - begin) / 60
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(honcho.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            honcho.wait(timeout=60)
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)
        sink.terminate()
        sink.wait(timeout=30)
        log_file.close()
    counts = _domain_counts(started_at)
    errors = dict(driver.errors)
    errors.update(_log_problems(log_path))
    errors["dead_letters"] = _dead_letters(client) - dead_before
    errors["emails_failed"] = counts.pop("emails_failed")
    growth = {
        kind: round(100 * (memory_end[kind] - memory_start[kind]) / memory_start[kind], 1)
        for kind in PROCESS_TYPES
        if memory_start and memory_start[kind]
    }
    return {
        "minutes": round(elapsed_min, 2),
        "workers": workers,
        "warm_up_s": warm_up_s,
        "driver": dict(driver.counts),
        **counts,
        "driver_tick_s": {
            "p50": round(statistics.median(driver.tick_seconds), 3),
            "max": round(max(driver.tick_seconds), 3),
        },
        "throughput_per_min": {
            "emails_sent": round(counts["emails_sent"] / elapsed_min, 1),
            "replies_stored": round(counts["replies_stored"] / elapsed_min, 1),
            "staff_reads": round(driver.counts["staff_reads"] / elapsed_min, 1),
        },
        "errors": errors,
        "error_count": sum(errors.values()),
        "memory_mb_start": memory_start,
        "memory_mb_end": memory_end,
        "memory_growth_pct": growth,
        "memory_samples": samples,
        "log": str(log_path),
    }
