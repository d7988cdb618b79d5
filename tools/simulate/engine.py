"""The simulation: psymatch's real operations, day by day, on a simulated clock.

Every step calls the operation the production process would call, with ``now`` set to
the simulated moment: the bundle round (08:00, ``BUNDLE_ROUND_TIME``), the follow-up and
placement follow-up (09:00), the expiry run (09:30), and the outbox work the actors do
(``drain``: the same operation each actor calls, with ``now``; emails leave through
``transmit_batch`` over SMTP to the counting sink). The behaviour model
(``tools.simulate.model``) plays therapists, patients and staff: replies are RFC 5322
messages decoded as the raw webhook decodes them and stored with ``store_inbound``;
link clicks go through the signed tokens of the emails the sink received.

Staff actions are counted here: every review item, phone call (each attempt), conflict
and manual step (manual policy: each composed bundle and each answer recorded by hand).

Each simulated day runs in one transaction of the scratch database. The operations join
it as they join any caller's transaction (``write_transaction``), so they run the same
code; what changes is that the scratch database, which nobody else reads, commits once a
day instead of once an operation (a commit grew to 0.13 ms with the database, some 400 a
day). A refusal the simulation survives (a rate-limited send, a refused clock job, a
placement outcome or review decision the page would refuse) is rolled back to a savepoint
(``_step``), as its own transaction would have been; any other error ends the run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import heapq
import re
import secrets
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet

from db import database, migrate, plz
from db.bulk import advance_sequences, bulk_insert
from db.database import db, write_transaction
from db.models import (
    Email,
    EmailInhalt,
    InboundMessage,
    LinkKlick,
    OutboxItem,
    Patient,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from db.statements import Prepared
from operations import (
    OperationError,
    bundles,
    calls,
    demo_data,
    expiry,
    people,
    placements,
    sending,
)
from operations import replies as reply_ops
from operations import searches as search_ops
from operations.emailing import sending as email_sending
from psymatch import settings
from psymatch.domain import tokens, vocab
from tools import capturesink, countingsink

from . import invariants, texts
from .model import Behaviour, Model, Offered

START = dt.date(2026, 1, 5)  # a Monday; fixed, so that holidays and weekdays repeat
STAFF = "sim-staff"
EMAIL_BATCH = 50
_LINK = re.compile(r"/r/([A-Za-z0-9._-]+)")
_PLACEMENT_LINK = re.compile(r"/v/([A-Za-z0-9._-]+)")
# psymatch's own rules a run may change (settings), by option name
RULES = {
    "bundle_size": "MAX_ANFRAGE_SIZE",
    "round_min_size": "ROUND_MIN_SIZE",
    "cooling_weeks": "COOLING_PERIOD_WEEKS",
    "parallel_cap": "MAX_PARALLEL_ANFRAGEN",
    "follow_up_mode": "FOLLOW_UP_MODE",
    "expiry_days": "ANFRAGE_EXPIRY_DAYS",
}


_TEXT_OF = Prepared(
    lambda p: (
        EmailInhalt.select(EmailInhalt.inhalt_text)
        .where(EmailInhalt.email == p.email)
        .limit(1)
        .tuples()
    )
)
_OPEN_OUTBOX = Prepared(
    lambda p: (
        OutboxItem.select(OutboxItem.id, OutboxItem.task, OutboxItem.payload)
        .where(OutboxItem.status == "offen")
        .order_by(OutboxItem.id)
        .tuples()
    )
)


class SimulationError(RuntimeError):
    """The run could not be done (bad arguments, sink gone); not an invariant breach."""


@dataclass
class Day:
    """What one simulated day looked like (the weekly plots are built from these)."""

    date: dt.date
    open_searches: int
    placed_total: int
    staff_actions: int


@dataclass
class Result:
    figures: dict
    days: list[Day]
    placement_days: list[int]
    weekly: list[dict]
    staff_by_kind: dict
    breaches: list[str]
    model: dict
    rules: dict

    def as_dict(self) -> dict:
        return {**self.figures}


@dataclass(order=True)
class _Event:
    at: dt.datetime
    order: int
    kind: str = field(compare=False)
    args: tuple = field(compare=False, default=())


class Simulation:
    def __init__(
        self,
        *,
        therapists: int,
        weeks: int,
        seed: int,
        policy: str = "auto",
        model: Model | None = None,
        rules: dict | None = None,
        database_url: str | None = None,
        workdir: Path | None = None,
        progress: Callable[[int, int], object] | None = None,
        start: dt.date = START,
        sink: str = "capture",
    ):
        if sink not in ("capture", "smtp"):
            raise SimulationError(f"sink must be capture or smtp, got {sink!r}")
        self.sink_kind = sink
        if policy not in ("auto", "manual"):
            raise SimulationError(f"policy must be auto or manual, got {policy!r}")
        for name, value in (("therapists", therapists), ("weeks", weeks)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SimulationError(f"{name} must be a positive integer, got {value!r}")
        unknown = sorted(set(rules or {}) - set(RULES))
        if unknown:
            raise SimulationError(f"unknown rule(s): {', '.join(unknown)}")
        self.therapist_count, self.weeks, self.seed = therapists, weeks, seed
        self.policy = policy
        self.model = model or Model()
        try:
            self.behaviour = Behaviour(self.model, seed)
        except ValueError as exc:
            raise SimulationError(str(exc)) from None
        self.rules = {RULES[k]: v for k, v in (rules or {}).items() if v is not None}
        self.database_url = database_url
        self.workdir = workdir
        self.progress = progress
        self.start = start
        self.zone = ZoneInfo(settings.get().TIMEZONE)
        # model state
        self.therapists: dict[int, object] = {}
        self.patient_symptoms: dict[int, tuple[str, ...]] = {}
        self.truth: dict[int, dict[int, str]] = {}
        self.reserved: dict[tuple[int, int], int] = {}  # (search, therapist) -> therapist
        self.sessions: set[tuple[int, int]] = set()
        self.events: list[_Event] = []
        self.order = 0
        self.staff: dict[str, int] = defaultdict(int)
        self.counted_conflicts: set[int] = set()
        self.searches_opened = 0
        self.retry_sends: list[tuple[dt.datetime, int]] = []
        self.days: list[Day] = []
        self.breaches: list[str] = []
        self.sink = None
        self.places, self.place_cum = [], []
        self.now = dt.datetime.min
        self.job_failures: dict[str, int] = defaultdict(int)
        self.job_failure_examples: dict[str, str] = {}

    # --- time ---------------------------------------------------------------------------

    def at(self, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)
        return local.astimezone(dt.UTC).replace(tzinfo=None)

    def local_day(self, moment: dt.datetime) -> dt.date:
        return moment.replace(tzinfo=dt.UTC).astimezone(self.zone).date()

    def schedule(self, at: dt.datetime, kind: str, *args) -> None:
        at = max(at, self.now)
        self.order += 1
        heapq.heappush(self.events, _Event(at, self.order, kind, args))

    # --- set-up -------------------------------------------------------------------------

    def run(self) -> Result:
        started, cpu_started = time.perf_counter(), time.process_time()
        temp = None
        workdir = self.workdir
        if workdir is None:
            temp = tempfile.TemporaryDirectory(prefix="psymatch-simulate-")
            workdir = Path(temp.name)
        # its own scratch database lives in memory: read and written by this process
        # alone, thrown away at the end, so a commit writes no file and takes no file lock
        url = self.database_url or "sqlite:///:memory:"
        before = settings.get()
        changes = {
            # a throwaway signing key: the run's links are only read back by the run, and a
            # console kernel, which is not given the signing key, can run it too
            "SIGNING_KEY": secrets.token_hex(32),
            "DATABASE_URL": url,
            "VAR_DIR": str(workdir / "var"),
            "AUTO_ROUNDS_ENABLED": self.policy == "auto",
            "AUTO_ROUNDS_ROLLOUT_PERCENT": 100,
            **self.rules,
        }
        if self.database_url is None:  # its own scratch database: throwaway encryption key too
            changes["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
        try:
            self.sink = (
                countingsink.start(workdir)
                if self.sink_kind == "smtp"
                else capturesink.CaptureSink(workdir)
            )
            changes["SMTP_URL"] = self.sink.url
            try:
                settings.override(**changes)
            except settings.SettingsError as exc:  # a rule value psymatch refuses
                raise SimulationError(str(exc)) from None
            database.init(url)
            with database.connection():
                if migrate.current_version() == 0:
                    migrate.upgrade(report=lambda _line: None)
                elif migrate.current_version() != migrate.head_version():
                    raise SimulationError("the scratch database is not at the code's schema")
                if Therapist.select().exists() or Patient.select().exists():
                    raise SimulationError(
                        "the scratch database is not empty: the simulation needs its own"
                    )
                plz.ensure_loaded()
                self._seed_therapists()
                total_days = self.weeks * 7
                with _few_collections():
                    for index in range(total_days):
                        with write_transaction():
                            self._day(index)
                        if self.progress is not None:
                            self.progress(index + 1, total_days)
                end = self.at(self.start + dt.timedelta(days=total_days), 0)
                with write_transaction():
                    self.drain(end)
                if self.sink_kind == "smtp":
                    self.sink.stop()  # its list is complete once it has stopped
                self.breaches += invariants.check_all(self.sink.received_ids())
                for error in getattr(self.sink, "errors", ()):  # why an email never arrived
                    self.job_failures["capture_sink"] += 1
                    self.job_failure_examples.setdefault("capture_sink", error)
                return self._result(
                    time.perf_counter() - started, time.process_time() - cpu_started
                )
        finally:
            if self.sink is not None:
                self.sink.stop()
            settings.override(**{name: getattr(before, name) for name in changes})
            database.init(before.DATABASE_URL) if self.database_url is None else None
            if temp is not None:
                temp.cleanup()

    def at_end(self) -> dt.datetime:
        return self.at(self.start + dt.timedelta(days=self.weeks * 7), 0)

    def _seed_therapists(self) -> None:
        demo_data.generate(self.therapist_count, 0, self.seed, report=None, today=self.start)
        ids = [i for (i,) in Therapist.select(Therapist.id).order_by(Therapist.id).tuples()]
        by_value: dict[tuple, list[int]] = defaultdict(list)
        for therapist_id in ids:
            therapist = self.behaviour.therapist(therapist_id)
            self.therapists[therapist_id] = therapist
            by_value[therapist.favoured if therapist.recorded else ()].append(therapist_id)
        with write_transaction():
            # the model starts every practice out of cooling; favoured symptoms are
            # recorded only for the share the model says
            Therapist.update(naechster_kontakt_moeglich=None, letzter_kontakt_email=None).execute()
            for value, members in by_value.items():
                for start in range(0, len(members), 500):
                    Therapist.update(bevorzugte_symptome=list(value)).where(
                        Therapist.id.in_(members[start : start + 500])
                    ).execute()
        self.places, self.place_cum = self._places()

    def _places(self):
        places, _source = demo_data.load_places()
        cum, total = [], 0.0
        for place in places:
            total += demo_data.TIER_WEIGHTS[place.tier][0]
            cum.append(total)
        return places, cum

    # --- one day ------------------------------------------------------------------------

    def _day(self, index: int) -> None:
        """One day: the clock's jobs at their times and the model's events between them,
        in time order; an event caused for an earlier moment happens now (time never runs
        backwards)."""
        day = self.start + dt.timedelta(days=index)
        if day.weekday() == 0:
            self._new_places(index // 7)
        self.schedule(self.at(day, 7), "arrivals", day, index)
        self.schedule(self.at(day, 7, 30), "retry_sends")
        self.schedule(self.at(day, 8), "round")
        self.schedule(self.at(day, 9), "follow_up")
        self.schedule(self.at(day, 9, 30), "expiry")
        self.schedule(self.at(day, 9, 45), "calls", day)
        self.schedule(self.at(day, 16), "desk")
        end_of_day = self.at(day + dt.timedelta(days=1), 0)
        while self.events and self.events[0].at < end_of_day:
            event = heapq.heappop(self.events)
            self.now = max(self.now, event.at)
            getattr(self, f"_on_{event.kind}")(self.now, *event.args)
            self.drain(self.now)
        self.breaches += invariants.check_parallel_cap(day)
        self.days.append(
            Day(
                day,
                Platzsuche.select().where(Platzsuche.status == "aktiv").count(),
                Platzsuche.select().where(Platzsuche.status == "erfolgreich").count(),
                sum(self.staff.values()),
            )
        )

    def _on_arrivals(self, now: dt.datetime, day: dt.date, index: int) -> None:
        self._arrivals(day, index, now)

    def _on_retry_sends(self, now: dt.datetime) -> None:
        self._retry_sends(now)

    def _clock_job(self, name: str, job, *args, **kwargs) -> None:
        """A periodic actor's run: a refusal fails that day's run of the job (the actor's
        message fails and is retried into the same refusal), and the run goes on; each
        failure is counted in ``job_failures`` with its first message."""
        try:
            with _step():
                job(*args, **kwargs)
        except OperationError as error:
            self.job_failures[name] += 1
            self.job_failure_examples.setdefault(name, f"{error.code}: {error.message}")

    def _on_round(self, now: dt.datetime) -> None:
        if self.policy == "auto":
            self._clock_job("bundle_round", bundles.run_bundle_round, now, actor="clock")
        else:
            self._compose_by_hand(now)

    def _on_follow_up(self, now: dt.datetime) -> None:
        self._clock_job("follow_up", sending.run_follow_up, now, actor="clock")
        self._clock_job(
            "placement_follow_up", placements.run_placement_follow_up, now, actor="clock"
        )

    def _on_expiry(self, now: dt.datetime) -> None:
        self._clock_job("expire_anfragen", expiry.run_expiry, now)

    def _on_calls(self, now: dt.datetime, day: dt.date) -> None:
        self._schedule_calls(day)

    def _on_desk(self, now: dt.datetime) -> None:
        self._staff_desk(now)

    def _new_places(self, week: int) -> None:
        if week == 0:
            return
        for therapist_id, therapist in self.therapists.items():
            if self.behaviour.new_place(therapist_id, week):
                therapist.places += 1

    def _arrivals(self, day: dt.date, index: int, now: dt.datetime) -> None:
        count = self.behaviour.arrivals_today(self.therapist_count, index)
        if not count:
            return
        rng = self.behaviour.streams("patients", index)
        first = (Patient.select(Patient.id).order_by(Patient.id.desc()).limit(1).scalar() or 0) + 1
        clock = demo_data._Clock(day, settings.get().TIMEZONE)
        rows, _drafts = demo_data.build_patients(
            rng, count, 1.0, self.places, self.place_cum, clock, first, []
        )
        for row in rows:
            row["created_at"] = row["updated_at"] = now
            row["startdatum"] = day
            row["external_id"] = f"sim-{row['id']}"
            row["suchindex"] = people.index_value(
                row["vorname"], row["nachname"], row["email"], row["telefon"]
            )
            self.patient_symptoms[row["id"]] = tuple(row["symptome"])
        with write_transaction():
            bulk_insert(Patient, demo_data.PATIENT_FIELDS, rows)
            advance_sequences((Patient,))
        for row in rows:
            search = search_ops.create_platzsuche(row["id"], actor=STAFF, now=now)
            self.searches_opened += 1
            after = self.behaviour.gives_up_after(search.id)
            if after is not None and after < self.weeks * 7:
                minute = self.behaviour.answer_minute(search.id, "give-up")
                later = day + dt.timedelta(days=after)
                self.schedule(self.at(later, minute // 60, minute % 60), "give_up", search.id)

    def _on_give_up(self, now: dt.datetime, search_id: int) -> None:
        """The patient cancels a search still waiting for a place (not one placed)."""
        search = Platzsuche.get_by_id(search_id)
        if search.status != "aktiv" or search.vermittelter_therapeut_id is not None:
            return
        search_ops.update_platzsuche(
            search_id, status="abgebrochen", notiz="Suche aufgegeben", actor="patient", now=now
        )

    def _retry_sends(self, now: dt.datetime) -> None:
        due = [item for item in self.retry_sends if item[0] <= now]
        self.retry_sends = [item for item in self.retry_sends if item[0] > now]
        for _at, anfrage_id in due:
            self._send(anfrage_id, None, now)

    # --- the manual policy: staff compose bundles one at a time ----------------------------

    def _compose_by_hand(self, now: dt.datetime) -> None:
        """Staff take the longest-waiting searches, list the therapists of their PLZ prefix
        and preview a bundle for one therapist after the other, creating and sending it
        when the preview holds a patient. Each preview is one action, whether it yields a
        bundle or not; a day has ``staff_bundles_per_day`` of them (and as many listings)."""
        budget = listings = self.model.staff_bundles_per_day
        waiting = (
            Platzsuche.select(Platzsuche.id, Patient.plz)
            .join(Patient, on=Platzsuche.patient == Patient.id)
            .where((Platzsuche.status == "aktiv") & Platzsuche.vermittelter_therapeut.is_null())
            .order_by(Platzsuche.created_at, Platzsuche.id)
            .tuples()
        )
        digits = settings.get().PLZ_MATCH_DIGITS
        tried: set[str] = set()
        for _search_id, patient_plz in waiting:
            if budget <= 0 or listings <= 0:
                break
            prefix = (patient_plz or "")[:digits]
            if len(prefix) != digits or prefix in tried:
                continue
            tried.add(prefix)
            listings -= 1
            for entry in bundles.list_selectable_therapists(prefix, now):
                if budget <= 0:
                    break
                budget -= 1
                try:
                    with _step():
                        bundles.create_anfrage(
                            entry.id, prefix, send_now=True, actor=STAFF, now=now
                        )
                except OperationError:  # no patient for this one: staff go on to the next
                    self.staff["preview_without_bundle"] += 1
                else:
                    self.staff["compose"] += 1

    # --- the outbox: what the workers do -------------------------------------------------

    def drain(self, now: dt.datetime) -> None:
        """Run every open outbox item the way its actor would, with ``now``."""
        for _ in range(20):
            items = _OPEN_OUTBOX.rows()
            if not items:
                return
            emails = [(i, p["email_id"]) for i, t, p in items if t == "send_email"]
            for start in range(0, len(emails), EMAIL_BATCH):
                chunk = emails[start : start + EMAIL_BATCH]
                email_sending.transmit_batch([e for _, e in chunk], now=now)
                self._done([i for i, _ in chunk], now)
                self._delivered([e for _, e in chunk], now)
            for item_id, task, payload in items:
                if task == "send_email":
                    continue
                self._run_task(task, payload, now)
                self._done([item_id], now)
        raise SimulationError("the outbox did not empty after 20 passes")

    def _done(self, ids: list[int], now: dt.datetime) -> None:
        # a task's one item by its key: the statement peewee composed once for that shape
        which = OutboxItem.id == ids[0] if len(ids) == 1 else OutboxItem.id.in_(ids)
        OutboxItem.update(status="erledigt", done_at=now).where(which).execute()

    def _run_task(self, task: str, payload: dict, now: dt.datetime) -> None:
        if task == "send_anfrage":
            self._send(payload["anfrage_id"], payload.get("requested_by"), now)
        elif task == "process_reply":
            reply_ops.process_inbound(payload["inbound_id"], now=now)
        elif task == "process_link_klick":
            reply_ops.process_click(payload["klick_id"], now=now)
        elif task == "send_conflict_notice":
            sending.queue_conflict_notice(payload["anfrage_id"], payload["patient_ids"], now=now)
        elif task == "send_acceptance_confirmation":
            sending.queue_acceptance_confirmation(payload["anfrage_id"], now=now)
        elif task == "send_placement_email":
            sending.queue_placement_email(
                payload["platzsuche_id"],
                payload.get("template") or None,
                payload.get("meeting") or None,
                therapist_id=payload.get("therapist_id"),
                replaces=payload.get("replaces"),
                number=payload.get("number"),
                now=now,
            )
        elif task == "send_placement_reminder":
            placements.queue_placement_reminder(
                payload["platzsuche_id"], payload["therapist_id"], now=now
            )
        else:
            raise SimulationError(f"outbox task {task!r} has no simulated worker")

    def _send(self, anfrage_id: int, requested_by, now: dt.datetime) -> None:
        """The ``send_anfrage`` actor: a rate-limited send is tried again when allowed."""
        try:
            with _step():
                sending.send_anfrage(anfrage_id, actor=requested_by or "worker", now=now)
        except OperationError as error:
            if error.code == "RATE_LIMITED":
                retry_at = dt.datetime.fromisoformat(error.details["retry_at"])
                self.retry_sends.append((retry_at + dt.timedelta(seconds=1), anfrage_id))

    # --- what recipients do with emails ---------------------------------------------------

    def _delivered(self, email_ids: list[int], now: dt.datetime) -> None:
        rows = (
            Email.select(Email.id, Email.art, Email.status, Email.therapeutenanfrage, Email.patient)
            .where(Email.id.in_(email_ids) & (Email.status == "Gesendet"))
            .order_by(Email.id)
            .tuples()
        )
        for email_id, art, _status, anfrage_id, patient_id in rows:
            if art in ("anfrage", "erinnerung"):
                self._therapist_reads(email_id, anfrage_id, art, now)
            elif art == "konflikt":
                self._conflict_notice(anfrage_id)
            elif art == "vermittlung" and patient_id is not None:
                self._placement_email(email_id, now)

    def _therapist_reads(self, email_id: int, anfrage_id: int, kind: str, now) -> None:
        anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
        therapist = self.therapists.get(anfrage.therapist_id)
        if therapist is None:
            return
        days = self.behaviour.email_answer(therapist, anfrage_id, kind)
        if days is None:
            return
        day = self.local_day(now) + dt.timedelta(days=days)
        minute = self.behaviour.answer_minute(anfrage_id, kind)
        self.schedule(self.at(day, minute // 60, minute % 60), "reply", email_id, anfrage_id)

    def _conflict_notice(self, anfrage_id: int) -> None:
        """The therapist learns the patient found a place: the reserved place is free again."""
        anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
        therapist = self.therapists.get(anfrage.therapist_id)
        lines = TherapeutAnfragePatient.select().where(
            (TherapeutAnfragePatient.therapeutenanfrage == anfrage_id)
            & (TherapeutAnfragePatient.antwortergebnis == vocab.ANGENOMMEN)
            & (TherapeutAnfragePatient.status != "angenommen")
        )
        for line in lines:
            key = (line.platzsuche_id, anfrage.therapist_id)
            if self.reserved.pop(key, None) is not None and therapist is not None:
                therapist.places += 1

    def _decisions(self, anfrage: Therapeutenanfrage) -> dict[int, str]:
        """What the therapist answers (drawn once per Anfrage; reserves accepted places)."""
        if anfrage.id in self.truth:
            return self.truth[anfrage.id]
        therapist = self.therapists[anfrage.therapist_id]
        lines = TherapeutAnfragePatient.lines_of(anfrage.id)
        offered = [
            Offered(
                line.patient_id,
                self.patient_symptoms.get(line.patient_id, ()),
                (line.auswahl or {}).get("distance_km"),
            )
            for line in lines
        ]
        decisions = self.behaviour.decide(therapist, anfrage.id, offered)
        for line in lines:
            if decisions[line.patient_id] == vocab.ANGENOMMEN:
                therapist.places -= 1
                self.reserved[(line.platzsuche_id, anfrage.therapist_id)] = anfrage.therapist_id
        self.truth[anfrage.id] = decisions
        return decisions

    def _on_reply(self, now: dt.datetime, email_id: int, anfrage_id: int) -> None:
        anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
        if anfrage.antwort_datum is not None:
            return  # answered on the phone or closed meanwhile: nothing left to say
        decisions = self._decisions(anfrage)
        email = Email.get_by_id(email_id)
        if self.policy == "manual":
            # the process psymatch replaces: staff read every answer and type it in
            self.staff["answer_by_hand"] += 1
            reply_ops.record_response(anfrage_id, decisions, actor=STAFF, now=now, source="manual")
            return
        if self.behaviour.channel(anfrage_id) == "link":
            self._click_links(email, decisions, now)
        else:
            self._write_reply(email, anfrage, decisions, now)

    def _click_links(self, email: Email, decisions: dict[int, str], now: dt.datetime) -> None:
        text = _text_of(email.id)
        for token in _LINK.findall(text):
            try:
                claim = tokens.read_link_token(token, now)
            except tokens.TokenError:
                continue
            if decisions.get(claim.patient_id) != claim.answer:
                continue
            # as the confirm view of webhooks/links.py: stored once, processed at once
            anfrage = Therapeutenanfrage.get_by_id(claim.anfrage_id)
            line = TherapeutAnfragePatient.line_of(anfrage.id, claim.patient_id)
            if line is None or reply_ops.is_answered(anfrage):
                continue
            click, created = reply_ops.store_click(
                anfrage.id, claim.patient_id, claim.answer, "198.51.100.7", now=now
            )
            if created:
                reply_ops.process_click(click.id, now=now)

    def _write_reply(self, email: Email, anfrage, decisions, now: dt.datetime) -> None:
        from webhooks import providers

        rng = self.behaviour.streams("text", anfrage.id)
        style = self.behaviour.text_style(anfrage.id)
        therapist = Therapist.get_by_id(anfrage.therapist_id)
        body = texts.body(decisions, style, rng, f"{therapist.vorname} {therapist.nachname}")
        raw = texts.reply_message(
            sender=email.empfaenger_email,
            reply_to=tokens.reply_address(anfrage.id),
            subject=email.betreff,
            in_reply_to=email.message_id,
            message_id=f"<sim-{anfrage.id}-{email.id}@praxis.example>",
            text=body,
        )
        reply_ops.store_delivery(providers.normalise_raw(raw), now=now)

    # --- phone calls ----------------------------------------------------------------------

    def _schedule_calls(self, day: dt.date) -> None:
        due = (
            Telefonanruf.select(Telefonanruf.id, Telefonanruf.geplante_zeit)
            .where(
                (Telefonanruf.status == "geplant")
                & (Telefonanruf.geplantes_datum <= day)
                & Telefonanruf.therapist.is_null(False)
            )
            .order_by(Telefonanruf.id)
            .tuples()
        )
        for call_id, planned in due:
            hour, minute = (int(part) for part in planned.split(":"))
            self.schedule(self.at(day, hour, minute), "call", call_id)

    def _on_call(self, now: dt.datetime, call_id: int) -> None:
        call = Telefonanruf.get_by_id(call_id)
        if call.status != "geplant":
            return  # an answer arrived meanwhile: the call was cancelled
        self.staff["call"] += 1
        anfrage = (
            Therapeutenanfrage.get_by_id(call.therapeutenanfrage_id)
            if call.therapeutenanfrage_id
            else None
        )
        if anfrage is None or anfrage.antwort_datum is not None:
            calls.set_call_status(call_id, "abgebrochen", actor=STAFF, now=now)
            return
        if self.behaviour.reached(call_id):
            decisions = self._decisions(anfrage)
            calls.set_call_status(
                call_id, "abgeschlossen", ergebnis="erreicht", responses=decisions,
                actor=STAFF, now=now,
            )  # fmt: skip
            return
        calls.set_call_status(
            call_id, "fehlgeschlagen", ergebnis="nicht erreicht", actor=STAFF, now=now
        )
        age = now - anfrage.gesendet_datum
        if age < dt.timedelta(days=settings.get().ANFRAGE_EXPIRY_DAYS - 1):
            calls.reschedule(call_id, actor=STAFF, now=now)  # staff try again

    # --- patients after a placement -------------------------------------------------------

    def _placement_email(self, email_id: int, now: dt.datetime) -> None:
        text = _text_of(email_id)
        found = _PLACEMENT_LINK.findall(text)
        if not found:
            return
        claim = tokens.read_placement_token(found[0], now)
        key = (claim.platzsuche_id, claim.therapist_id)
        if key in self.sessions:
            return
        self.sessions.add(key)
        days, outcome, by_link = self.behaviour.session(*key)
        when = self.at(self.local_day(now) + dt.timedelta(days=days), 18)
        self.schedule(
            when, "session", claim.platzsuche_id, claim.therapist_id, outcome, by_link, email_id
        )

    def _on_session(self, now, search_id, therapist_id, outcome, by_link, email_id) -> None:
        therapist = self.therapists.get(therapist_id)
        reserved = self.reserved.pop((search_id, therapist_id), None)
        if outcome != vocab.STATTGEFUNDEN and reserved is not None and therapist is not None:
            therapist.places += 1  # the place is free again
        if not by_link:
            return  # silence: the placement follow-up reminds, then counts it as agreement
        text = _text_of(email_id)
        for token in _PLACEMENT_LINK.findall(text):
            try:
                claim = tokens.read_placement_token(token, now)
            except tokens.TokenError:
                continue
            if claim.outcome != outcome:
                continue
            # as the confirm view of webhooks/links.py; a refusal is the page saying the
            # placement is closed, and changes nothing
            with contextlib.suppress(OperationError), _step():
                placements.record_placement_outcome(
                    claim.platzsuche_id, claim.outcome, actor="patient", source="link",
                    therapist_id=claim.therapist_id, now=now,
                )  # fmt: skip
            return

    # --- the staff desk: review queue and conflicts ----------------------------------------

    def _staff_desk(self, now: dt.datetime) -> None:
        for inbound in (
            InboundMessage.select()
            .where(InboundMessage.status == "pruefung")
            .order_by(InboundMessage.id)
        ):
            self.staff["review"] += 1
            anfrage_id = inbound.therapeutenanfrage_id
            anfrage = Therapeutenanfrage.by_id(anfrage_id)
            if anfrage is None or anfrage.antwort_datum is not None:
                reply_ops.dismiss_review(inbound.id, STAFF, "bereits erledigt", now=now)
                continue
            decisions = self._decisions(anfrage)
            try:
                with _step():
                    reply_ops.decide_review(inbound.id, decisions, STAFF, now=now)
            except OperationError as error:
                reply_ops.dismiss_review(inbound.id, STAFF, error.code, now=now)
        for click in (
            LinkKlick.select().where(LinkKlick.status == "pruefung").order_by(LinkKlick.id)
        ):
            self.staff["review"] += 1
            reply_ops.dismiss_click_review(click.id, STAFF, "geprüft", now=now)
        conflicts = (
            TherapeutAnfragePatient.select(TherapeutAnfragePatient.id)
            .where(
                (TherapeutAnfragePatient.antwortergebnis == vocab.ANGENOMMEN)
                & (TherapeutAnfragePatient.status == "anderweitig_vermittelt")
            )
            .tuples()
        )
        for (line_id,) in conflicts:
            if line_id not in self.counted_conflicts:
                self.counted_conflicts.add(line_id)
                self.staff["conflict"] += 1

    # --- figures --------------------------------------------------------------------------

    def _result(self, seconds: float, cpu_seconds: float) -> Result:
        from . import figures

        return figures.build(self, seconds, cpu_seconds)


@contextlib.contextmanager
def _step():
    """One operation whose refusal the simulation survives, inside the day's transaction
    (PostgreSQL has savepoints in a transaction only): a savepoint, so that a refused
    operation leaves nothing behind, as its own transaction would have. (One name for every
    step: SQLite keeps the statements prepared. peewee's ``db.savepoint`` would leave a
    rolled-back savepoint open until the day's commit, and every write after it would be
    tracked for it.)"""
    db.execute_sql('SAVEPOINT "simulation_step"')
    try:
        yield
    except BaseException:
        db.execute_sql('ROLLBACK TO SAVEPOINT "simulation_step"')
        db.execute_sql('RELEASE SAVEPOINT "simulation_step"')
        raise
    db.execute_sql('RELEASE SAVEPOINT "simulation_step"')


@contextlib.contextmanager
def _few_collections():
    """The cyclic garbage collector less often while the days run: the objects alive after
    the set-up (modules, the behaviour model, caches) are frozen out of its scans, and the
    youngest generation is collected after 20,000 new objects, not 700. Every day allocates
    and drops hundreds of thousands of short-lived rows; the default thresholds re-scan the
    survivors over and over. The caller's thresholds return afterwards."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, thresholds[1], thresholds[2])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _text_of(email_id: int) -> str | None:
    """The plain-text body of an email as its recipient reads it (only that column is
    read and decrypted)."""
    row = _TEXT_OF.first(email=email_id)
    return row[0] if row else None
