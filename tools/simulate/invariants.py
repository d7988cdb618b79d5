"""The invariants every simulation run checks (issue 16); any breach fails the run.

Each check is a pure function over plain rows, returning one line per breach, so a
test can hand it a seeded breach; the ``load_*`` functions read those rows from the
database, by queries of their own (not the ones the operations use to obey the rules).

1. ``rate_limit``: no practice (normalised address) gets two inquiries or reminders
   within ``EMAIL_MIN_INTERVAL_DAYS``.
2. ``cooling``: no practice is contacted while cooling (the Abkühlungseinhaltung of
   docs/domain.md §14 holds for every sent Anfrage), except by the alternatives a conflict
   notice offers: they answer the therapist's own acceptance, and §11.5 has the selection
   ignore cooling for them.
3. ``parallel_cap``: no search is in more than ``MAX_PARALLEL_ANFRAGEN`` pending Anfragen
   (checked after every simulated day).
4. ``placed_twice``: no patient has two successful searches, no search two therapists
   with whom the sessions started.
5. ``placement_emails``: every patient placed at an acceptance, and reachable by email,
   got the placement email (sent).
6. ``outbox_to_sink``: nothing lost between outbox and sink: every email marked sent was
   received by the SMTP sink exactly once, and no outbox item or email is left waiting.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict

from db.models import (
    Email,
    OutboxItem,
    Patient,
    Platzsuche,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
)
from psymatch import settings
from psymatch.domain import metrics, vocab
from psymatch.domain.bundling.practice import normalize_email

KINDS = ("anfrage", "erinnerung")


# --- pure checks ------------------------------------------------------------------------


def rate_limit(sends: list[tuple[str, dt.datetime]], min_days: int) -> list[str]:
    """``sends``: (practice address, sent at) of every inquiry and reminder."""
    by_practice: dict[str, list[dt.datetime]] = defaultdict(list)
    for address, at in sends:
        by_practice[address].append(at)
    breaches = []
    gap = dt.timedelta(days=min_days)
    for address, moments in sorted(by_practice.items()):
        moments.sort()
        for earlier, later in zip(moments, moments[1:], strict=False):
            if later - earlier < gap:
                breaches.append(
                    f"rate limit: {address} got emails at {earlier:%Y-%m-%d %H:%M} and "
                    f"{later:%Y-%m-%d %H:%M}"
                )
    return breaches


def cooling(
    anfragen, overrides: dict, zone: str, cooling_days: int, offers: frozenset[int] = frozenset()
) -> list[str]:
    """``anfragen``: ``metrics.AnfrageRow`` of every Anfrage (practice filled in);
    ``offers``: the ids of the Anfragen a conflict notice offered (not checked; their
    answers still start the cooling that later Anfragen must respect)."""
    by_practice = defaultdict(list)
    for row in anfragen:
        by_practice[row.practice].append(row)
    return [
        f"cooling: A{row.id} went to practice {row.practice} at {row.gesendet_datum:%Y-%m-%d} "
        "within its cooling period"
        for row in anfragen
        if row.sent
        and row.id not in offers
        and not metrics.cooling_compliant(
            row, by_practice[row.practice], overrides.get(row.practice, []), zone, cooling_days
        )
    ]


def parallel_cap(pending: dict[int, int], cap: int, day=None) -> list[str]:
    """``pending``: search id -> number of pending Anfragen holding it."""
    when = f" on {day}" if day is not None else ""
    return [
        f"parallel cap: search {search_id} in {count} pending Anfragen (cap {cap}){when}"
        for search_id, count in sorted(pending.items())
        if count > cap
    ]


def placed_twice(successes: list[tuple[int, int]], sessions: list[tuple[int, int]]) -> list[str]:
    """``successes``: (patient, search) of erfolgreich searches; ``sessions``: (search,
    therapist) of lines whose sessions started."""
    breaches = []
    for patient_id, count in sorted(Counter(p for p, _ in successes).items()):
        if count > 1:
            breaches.append(f"placed twice: patient {patient_id} has {count} successful searches")
    therapists = defaultdict(set)
    for search_id, therapist_id in sessions:
        therapists[search_id].add(therapist_id)
    for search_id, named in sorted(therapists.items()):
        if len(named) > 1:
            breaches.append(f"placed twice: search {search_id} started with {sorted(named)}")
    return breaches


def placement_emails(placements: list[tuple[int, int]], sent_keys: set[str]) -> list[str]:
    """``placements``: (search, therapist) of every placement of a patient with email;
    ``sent_keys``: idempotency keys of the placement emails marked sent (the email of a
    conflict reassignment, ``vermittlung:7.12.u3``, counts for its placement too)."""
    from operations.emailing.headers import placement_key

    sent = {re.sub(r"\.u\d+$", "", key) for key in sent_keys}
    return [
        f"placement email: search {search_id} placed with {therapist_id}, no email sent"
        for search_id, therapist_id in sorted(set(placements))
        if placement_key("", search_id, therapist_id) not in sent
    ]


def outbox_to_sink(
    sent_ids: list[str], received_ids: list[str], waiting_items: int, waiting_emails: int
) -> list[str]:
    breaches = []
    received = Counter(received_ids)
    missing = [i for i in sent_ids if received[i] == 0]
    twice = sorted(i for i in set(sent_ids) if received[i] > 1)
    if missing:
        breaches.append(
            f"outbox to sink: {len(missing)} sent emails never arrived, e.g. {missing[0]}"
        )
    if twice:
        breaches.append(f"outbox to sink: {len(twice)} emails arrived more than once")
    if waiting_items:
        breaches.append(f"outbox to sink: {waiting_items} outbox items never done")
    if waiting_emails:
        breaches.append(f"outbox to sink: {waiting_emails} emails still waiting to be sent")
    return breaches


# --- loading the rows --------------------------------------------------------------------


def load_sends() -> list[tuple[str, dt.datetime]]:
    rows = (
        Email.select(Email.empfaenger_email, Email.gesendet_am)
        .where(Email.art.in_(KINDS) & (Email.status == "Gesendet"))
        .order_by(Email.id)
    )
    return [(normalize_email(e.empfaenger_email) or "", e.gesendet_am) for e in rows]


def load_pending() -> dict[int, int]:
    """Distinct pending (unanswered) Anfragen per search, by the search's lines still open."""
    line = TherapeutAnfragePatient
    rows = (
        line.select(line.platzsuche, line.therapeutenanfrage)
        .join(Therapeutenanfrage)
        .where((line.status == "anstehend") & Therapeutenanfrage.antwort_datum.is_null())
        .tuples()
    )
    per_search: dict[int, set[int]] = defaultdict(set)
    for search_id, anfrage_id in rows:
        per_search[search_id].add(anfrage_id)
    return {search_id: len(ids) for search_id, ids in per_search.items()}


def load_successes() -> list[tuple[int, int]]:
    return list(
        Platzsuche.select(Platzsuche.patient, Platzsuche.id)
        .where(Platzsuche.status == "erfolgreich")
        .tuples()
    )


def load_sessions() -> list[tuple[int, int]]:
    line = TherapeutAnfragePatient
    return list(
        line.select(line.platzsuche, Therapeutenanfrage.therapist)
        .join(Therapeutenanfrage)
        .where(line.antwortergebnis == vocab.IN_SITZUNGEN)
        .tuples()
    )


def load_placements() -> list[tuple[int, int]]:
    """(search, therapist) of each placement at an acceptance, for patients with an email:
    lines whose sessions started or failed after a placement, and accepted lines of the
    therapist the search is placed with now."""
    line = TherapeutAnfragePatient
    rows = (
        line.select(
            line.platzsuche,
            Therapeutenanfrage.therapist,
            line.antwortergebnis,
            Platzsuche.vermittelter_therapeut,
            Patient.email,
        )
        .join(Therapeutenanfrage)
        .switch(line)
        .join(Platzsuche)
        .join(Patient)
        .where(
            (line.status == "angenommen")
            & line.antwortergebnis.in_(
                (vocab.ANGENOMMEN, vocab.IN_SITZUNGEN, vocab.NICHT_ERSCHIENEN)
            )
        )
        .tuples()
    )
    out = []
    for search_id, therapist_id, outcome, placed_with, email in rows:
        if not normalize_email(email):
            continue
        if outcome != vocab.ANGENOMMEN or placed_with == therapist_id:
            out.append((search_id, therapist_id))
    return out


def load_conflict_offers() -> frozenset[int]:
    """The Anfragen created as a conflict notice's alternatives."""
    query = Therapeutenanfrage.select(Therapeutenanfrage.id).where(
        Therapeutenanfrage.konflikt_anfrage_id.is_null(False)
    )
    return frozenset(anfrage_id for (anfrage_id,) in query.tuples())


def load_sent_placement_keys() -> set[str]:
    return {
        key
        for (key,) in Email.select(Email.idempotenz_schluessel)
        .where((Email.art == "vermittlung") & (Email.status == "Gesendet"))
        .tuples()
    }


def load_sent_message_ids() -> list[str]:
    domain = settings.get().REPLY_DOMAIN.lower()
    return [
        "".join((message_id or f"<email-{email_id}@{domain}>").split())
        for email_id, message_id in Email.select(Email.id, Email.message_id)
        .where(Email.status == "Gesendet")
        .tuples()
    ]


def check_all(received_ids: list[str]) -> list[str]:
    """Every end-of-run check (the parallel cap is checked daily by the run)."""
    from console import metrics_queries

    s = settings.get()
    data = metrics_queries.load()
    waiting_items = (
        OutboxItem.select().where(OutboxItem.status.in_(("offen", "eingereiht"))).count()
    )
    waiting_emails = (
        Email.select().where(Email.status.in_(("In_Warteschlange", "Wird_gesendet"))).count()
    )
    return [
        *rate_limit(load_sends(), s.EMAIL_MIN_INTERVAL_DAYS),
        *cooling(
            data.anfragen,
            data.overrides,
            s.TIMEZONE,
            7 * s.COOLING_PERIOD_WEEKS,
            load_conflict_offers(),
        ),
        *placed_twice(load_successes(), load_sessions()),
        *placement_emails(load_placements(), load_sent_placement_keys()),
        *outbox_to_sink(load_sent_message_ids(), received_ids, waiting_items, waiting_emails),
    ]


def check_parallel_cap(day=None) -> list[str]:
    return parallel_cap(load_pending(), settings.get().MAX_PARALLEL_ANFRAGEN, day)
