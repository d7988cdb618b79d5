"""A demo scenario on top of the demo data: bundles with a history, work waiting for staff.

``stage(today, seed)`` plays some weeks of psymatch in fast-forward, ONLY through the
operations the workers and the console use (``create_anfrage``, ``send_anfrage``,
``record_response``, ``set_call_status``, ``close_without_response``,
``record_patient_outcome``, ``update_platzsuche``, ``follow_up_one``, ``store_inbound`` +
``process_inbound``), each called with a ``now`` in the past. Afterwards the console shows:

- answered bundles of the last six weeks (acceptances, rejections, closures), placements
  with post-acceptance outcomes, and at least one conflict (two therapists accepted the
  same patient) - so the dashboard has history;
- at least two replies in the staff review queue, at least two calls due by today
  (follow-up after a week of silence), a few sent bundles waiting for an answer and one
  unsent bundle ready to send.

Every event lies on a day before ``today`` (local dates of ``TIMEZONE``), so staging at
any time of day never writes a future timestamp. Choices come from ``random.Random``
seeded with ``seed``; with the same demo data, ``today`` and seed the result is the same.

Everything runs in ONE transaction: when the demo data cannot give what the scenario
needs, ``ScenarioError`` is raised and nothing is written. A second run is refused (the
audit log holds the scenario's actor), also clearly with ``ScenarioError``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from zoneinfo import ZoneInfo

from db.database import connection, db, write_transaction
from db.models import (
    AuditLog,
    InboundMessage,
    Patient,
    Platzsuche,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    Therapist,
)
from operations.bundles import create_anfrage
from operations.call_schedule import booked_calls, bundesland_code
from operations.calls import set_call_status
from operations.demo_data import demo_rows_present
from operations.errors import OperationError
from operations.replies import process_inbound, store_inbound
from operations.responses import (
    close_without_response,
    list_conflicts,
    record_patient_outcome,
    record_response,
)
from operations.searches import update_platzsuche
from operations.sending import follow_up_one, send_anfrage
from psymatch import settings
from psymatch.domain import reply_parse, tokens
from psymatch.domain.slots import SlotParams, plan_call

ACTOR = "demo-szenario"
# (days before today, bundles) of the answered history; one batch a week.
HISTORY = ((42, 4), (35, 4), (28, 4), (21, 5), (14, 4))
CONFLICT_BATCH = 21  # in this batch two therapists accept the same patient
CALL_BATCH = (12, 4)  # sent 12 days ago, no answer: follow-up calls
REVIEW_BATCH = (6, 3)  # sent 6 days ago, answered with unclear replies
WAITING_BATCH = (3, 2)  # sent 3 days ago, no answer yet
UNCLEAR_REPLIES = (
    "Vielen Dank für Ihre Anfrage. Ich könnte eventuell jemanden aufnehmen, muss aber erst "
    "meine Kapazitäten prüfen. Können die Patienten auch abends?",
    "Guten Tag, Patient 1 würde ich gerne nehmen. Bei den anderen bin ich unsicher, "
    "melde mich nächste Woche.",
    "Ich melde mich nächste Woche, ob ich jemanden nehmen kann.",
)
MIN_SEARCHES = 100
MINIMUM = {"reviews": 2, "calls_due": 2, "conflicts": 1, "placements": 1}


class ScenarioError(Exception):
    """The scenario cannot be staged (no demo data, staged already, too little data)."""


def already_staged() -> bool:
    return AuditLog.select().where(AuditLog.actor == ACTOR).exists()


class _Clock:
    """Naive-UTC timestamps of local clock times on days before ``today``."""

    def __init__(self, today: dt.date, zone: str):
        self.today = today
        self.zone = ZoneInfo(zone)

    def at(self, days_ago: int, hour: int, minute: int = 0) -> dt.datetime:
        day = self.today - dt.timedelta(days=days_ago)
        local = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=self.zone)
        return local.astimezone(dt.UTC).replace(tzinfo=None)


def _attempt(action: Callable):
    """Run one operation in a savepoint; a refusal (OperationError) leaves no trace."""
    try:
        with db.atomic():
            return action()
    except OperationError:
        return None


class _Stage:
    def __init__(self, today: dt.date, seed: int, say: Callable[[str], None]):
        self.clock = _Clock(today, settings.get().TIMEZONE)
        self.today = today
        self.rng = random.Random(f"psymatch-demo-scenario:{seed}")
        self.say = say
        self.candidates = self._candidate_therapists()
        self.used: set[int] = set()
        self.counts = {
            "bundles_sent": 0,
            "bundles_answered": 0,
            "bundles_closed": 0,
            "bundles_unsent": 0,
            "placements": 0,
        }

    # --- who gets bundles ------------------------------------------------------------------

    def _candidate_therapists(self) -> list[Therapist]:
        """Aktiv therapists, densest patient regions first, shuffled (seeded) within a region."""
        pool = (Platzsuche.status == "aktiv") & Platzsuche.vermittelter_therapeut.is_null()
        per_region: dict[str, int] = {}
        for (plz,) in Platzsuche.select(Patient.plz).join(Patient).where(pool).tuples():
            if plz:
                per_region[plz[:2]] = per_region.get(plz[:2], 0) + 1
        therapists = list(
            Therapist.select().where(Therapist.status == "aktiv").order_by(Therapist.id)
        )
        self.rng.shuffle(therapists)
        return sorted(therapists, key=lambda t: -per_region.get((t.plz or "")[:2], 0))

    def compose(self, at: dt.datetime, count: int, *, email_only: bool = False) -> list[int]:
        """Staff composition for the next ``count`` therapists that can take a bundle now."""
        created = []
        for therapist in self.candidates:
            if len(created) == count:
                break
            if therapist.id in self.used or (email_only and not therapist.email):
                continue
            result = _attempt(lambda t=therapist: create_anfrage(t.id, actor=ACTOR, now=at))
            if result is not None:
                self.used.add(therapist.id)
                created.append(result.anfrage_id)
        return created

    def send(self, anfrage_ids: list[int], at: dt.datetime) -> list[int]:
        sent = []
        for anfrage_id in anfrage_ids:
            if _attempt(lambda a=anfrage_id: send_anfrage(a, actor=ACTOR, now=at)) is not None:
                sent.append(anfrage_id)
        self.counts["bundles_sent"] += len(sent)
        return sent

    def batch(self, days_ago: int, count: int, *, email_only: bool = False) -> list[int]:
        created = self.compose(self.clock.at(days_ago, 9, 0), count, email_only=email_only)
        return self.send(created, self.clock.at(days_ago, 10, 0))

    # --- answers -------------------------------------------------------------------------------

    @staticmethod
    def lines(anfrage_id: int) -> list[TherapeutAnfragePatient]:
        return list(
            TherapeutAnfragePatient.select()
            .where(TherapeutAnfragePatient.therapeutenanfrage == anfrage_id)
            .order_by(TherapeutAnfragePatient.position_in_anfrage)
        )

    def answers(self, anfrage_id: int, at: dt.datetime, accept: set[int] = frozenset()) -> dict:
        """A plausible answer per patient; acceptance only for searches started before ``at``."""
        out = {}
        for line in self.lines(anfrage_id):
            started = Platzsuche.get_by_id(line.platzsuche_id).created_at
            roll = self.rng.random()
            if line.platzsuche_id in accept or (roll < 0.3 and line.status == "anstehend"):
                answer = "angenommen" if started < at else "abgelehnt_Kapazitaet"
            elif roll < 0.75:
                answer = "abgelehnt_Kapazitaet"
            elif roll < 0.85:
                answer = "abgelehnt_nicht_geeignet"
            else:
                answer = "abgelehnt_sonstiges"
            if line.status in ("anstehend", "keine_antwort") or answer == "angenommen":
                out[line.patient_id] = answer
        if not out:  # every patient found a place meanwhile: the therapist still answers
            out[self.lines(anfrage_id)[0].patient_id] = "abgelehnt_Kapazitaet"
        return out

    def respond(self, anfrage_id: int, at: dt.datetime, accept: set[int] = frozenset()) -> bool:
        """Record the answer: on the phone when the bundle went out by phone, else by email."""
        anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
        responses = self.answers(anfrage_id, at, accept)
        if anfrage.phone_call_id is not None and anfrage.email_id is None:
            done = _attempt(
                lambda: set_call_status(
                    anfrage.phone_call_id,
                    "abgeschlossen",
                    ergebnis="Therapeutin erreicht",
                    responses=responses,
                    actor=ACTOR,
                    now=at,
                )
            )
        else:
            done = _attempt(
                lambda: record_response(anfrage_id, responses, actor=ACTOR, now=at, source="email")
            )
        if done is not None:
            self.counts["bundles_answered"] += 1
        return done is not None

    def history(self) -> None:
        """Weekly batches; every answer is recorded in time order (the first acceptance wins)."""
        for days_ago, count in HISTORY:
            sent = self.batch(days_ago, count)
            self.say(f"{days_ago} days ago: {len(sent)} bundles sent")
            events = []
            if days_ago == CONFLICT_BATCH:
                first, second, search_id = self.conflict_pair(sent, days_ago)
                events.append((self.clock.at(days_ago - 2, 10, 30), "respond", first, search_id))
                events.append((self.clock.at(days_ago - 3, 16, 45), "respond", second, search_id))
                sent = [a for a in sent if a not in (first, second)]
            for index, anfrage_id in enumerate(sent):
                at = self.clock.at(days_ago - 2 - self.rng.randrange(5), 11 + index % 6, 15)
                closes = index == 3 and days_ago in (42, 35)
                events.append((at, "close" if closes else "respond", anfrage_id, None))
            for at, kind, anfrage_id, accept in sorted(events, key=lambda e: (e[0], e[2])):
                if kind == "respond":
                    self.respond(anfrage_id, at, {accept} if accept else frozenset())
                elif _attempt(
                    lambda a=anfrage_id, t=at: close_without_response(a, actor=ACTOR, now=t)
                ):
                    self.counts["bundles_closed"] += 1

    def conflict_pair(self, sent: list[int], days_ago: int) -> tuple[int, int, int]:
        """Two bundles of this batch that share a patient whose search started before them."""
        composed = self.clock.at(days_ago, 9, 0)
        by_search: dict[int, list[int]] = {}
        for anfrage_id in sent:
            for line in self.lines(anfrage_id):
                by_search.setdefault(line.platzsuche_id, []).append(anfrage_id)
        shared = [
            s
            for s, bundles in sorted(by_search.items())
            if len(bundles) >= 2 and Platzsuche.get_by_id(s).created_at < composed
        ]
        if not shared:
            raise ScenarioError(
                "no patient is in two bundles of one batch: the demo data is too sparse for a "
                "conflict (use more patients and therapists)"
            )
        first, second = by_search[shared[0]][:2]
        return first, second, shared[0]

    # --- after acceptance ----------------------------------------------------------------------

    def placements(self) -> None:
        """Most placed patients went to sessions and were placed; one did not show up."""
        rows = list(
            TherapeutAnfragePatient.select(TherapeutAnfragePatient, Therapeutenanfrage)
            .join(Therapeutenanfrage)
            .where(TherapeutAnfragePatient.status == "angenommen")
            .order_by(Therapeutenanfrage.antwort_datum, TherapeutAnfragePatient.id)
        )
        for index, row in enumerate(rows):
            search = Platzsuche.get_by_id(row.platzsuche_id)
            if search.vermittelter_therapeut_id != row.therapeutenanfrage.therapist_id:
                continue
            answered = row.therapeutenanfrage.antwort_datum
            session = answered + dt.timedelta(days=4 + self.rng.randrange(4))
            placed = session + dt.timedelta(days=2 + self.rng.randrange(4))
            if placed >= self.clock.at(0, 0):
                continue  # would lie today or later: stays "accepted, sessions ahead"
            outcome = "nicht_erschienen" if index == 1 else "in_Sitzungen"
            done = _attempt(
                lambda r=row, o=outcome, t=session: record_patient_outcome(
                    r.therapeutenanfrage_id, r.patient_id, o, actor=ACTOR, now=t
                )
            )
            if done is None or outcome == "nicht_erschienen":
                continue
            if _attempt(
                lambda s=search, t=placed: update_platzsuche(
                    s.id, status="erfolgreich", actor=ACTOR, now=t
                )
            ):
                self.counts["placements"] += 1

    # --- work waiting for staff ---------------------------------------------------------------

    def calls(self) -> list[int]:
        """Bundles sent 12 days ago without an answer get their follow-up call, due by today."""
        days_ago, count = CALL_BATCH
        planned = []
        for anfrage_id in self.batch(days_ago, count, email_only=True):
            anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
            therapist = Therapist.get_by_id(anfrage.therapist_id)
            for back in range(1, days_ago - 6):
                from_day = self.today - dt.timedelta(days=back)
                day, _time = plan_call(
                    therapist.telefonische_erreichbarkeit,
                    from_day,
                    booked_calls(Telefonanruf.therapist, therapist.id, from_day),
                    bundesland_code(therapist.plz),
                    SlotParams.for_therapist(),
                )
                if day <= self.today:
                    at = self.clock.at(back, 9, 0)
                    done = _attempt(lambda a=anfrage_id, t=at: follow_up_one(a, now=t, actor=ACTOR))
                    if done and done[0] == "calls":
                        planned.append(done[1])
                    break
        return planned

    def reviews(self) -> list[int]:
        """Unclear email replies to bundles sent 6 days ago: they wait in the review queue."""
        days_ago, count = REVIEW_BATCH
        queued = []
        for index, anfrage_id in enumerate(self.batch(days_ago, count, email_only=True)):
            anfrage = Therapeutenanfrage.get_by_id(anfrage_id)
            therapist = Therapist.get_by_id(anfrage.therapist_id)
            at = self.clock.at(days_ago - 2 - index % 2, 18, 5 + index)
            payload = {
                "From": therapist.email,
                "To": tokens.reply_address(anfrage_id),
                "Subject": f"AW: Anfrage A{anfrage_id}",
                "TextBody": UNCLEAR_REPLIES[index % len(UNCLEAR_REPLIES)],
                "MessageID": f"demo-szenario-{anfrage_id}",
                "Headers": [],
            }
            stored, _ = store_inbound(
                "postmark",
                f"demo-szenario-{anfrage_id}",
                json.dumps(payload, ensure_ascii=False),
                therapist.email,
                payload["To"],
                payload["Subject"],
                message=reply_parse.message_from_parts(
                    subject=payload["Subject"],
                    sender=payload["From"],
                    recipients=[payload["To"]],
                    text=payload["TextBody"],
                    message_id=payload["MessageID"],
                ),
                now=at,
            )
            if process_inbound(stored.id, now=at) == "pruefung":
                queued.append(stored.id)
        return queued

    def waiting(self) -> None:
        days_ago, count = WAITING_BATCH
        self.batch(days_ago, count)
        unsent = self.compose(self.clock.at(1, 17, 0), 1)
        self.counts["bundles_unsent"] += len(unsent)

    def run(self) -> dict:
        self.history()
        self.placements()
        self.say(f"history: {self.counts}")
        self.calls()
        self.reviews()
        self.waiting()
        return self.summary()

    def summary(self) -> dict:
        counts = dict(self.counts)
        reviews = InboundMessage.select().where(InboundMessage.status == "pruefung")
        due = Telefonanruf.select().where(
            (Telefonanruf.status == "geplant") & (Telefonanruf.geplantes_datum <= self.today)
        )
        counts["reviews"] = reviews.count()
        counts["calls_due"] = due.count()
        counts["conflicts"] = len(list_conflicts())
        return counts


def stage(
    today: dt.date | None = None,
    seed: int = 1,
    report: Callable[[str], object] | None = print,
) -> dict:
    """Stage the scenario on the demo data; returns what it created (see module docstring).

    Raises ``ScenarioError`` (and writes nothing) without demo data, when staged already,
    or when the demo data is too small for every part of the scenario.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"seed must be an integer, got {seed!r}")
    zone = settings.get().TIMEZONE
    today = today or dt.datetime.now(ZoneInfo(zone)).date()

    def say(message: str) -> None:
        if report is not None:
            report(f"demo-scenario: {message}")

    with connection():
        if not demo_rows_present():
            raise ScenarioError("no demo data: run 'psymatch demo-data' first")
        if already_staged():
            raise ScenarioError(
                f"the demo scenario was staged already (audit rows by {ACTOR!r}); "
                "use a fresh database"
            )
        pool = Platzsuche.select().where(
            (Platzsuche.status == "aktiv") & Platzsuche.vermittelter_therapeut.is_null()
        )
        if pool.count() < MIN_SEARCHES:
            raise ScenarioError(
                f"the scenario needs at least {MIN_SEARCHES} aktiv searches, found "
                f"{pool.count()} (create more demo patients)"
            )
        with write_transaction():
            counts = _Stage(today, seed, say).run()
            short = {k: counts[k] for k, least in MINIMUM.items() if counts[k] < least}
            if short:
                raise ScenarioError(
                    f"the demo data is too small for the scenario (got {short}, need at least "
                    f"{ {k: MINIMUM[k] for k in short} }); nothing was written"
                )
    say(", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts
