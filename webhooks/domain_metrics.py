"""Domain gauges for ``/metrics``, counted in the database at scrape time.

A custom prometheus_client collector: each scrape runs a handful of COUNT queries (all
grouped, most on indexed columns), so the figures are never stale and no process has to
keep them. ``webhooks.observability.render`` creates one per scrape; it is never
registered in a global registry, so no gunicorn worker reports it twice.

Gauges (all counts of rows as they are now):

* ``psymatch_bundles_created`` - Therapeutenanfragen ever created (still stored);
* ``psymatch_bundles{status}`` - by state: ``ungesendet``, ``gesendet`` (waiting for the
  answer), ``beantwortet``;
* ``psymatch_replies_in_review`` - inbound replies waiting for staff (``pruefung``);
* ``psymatch_conflicts`` - patients with two or more accepted answers (the console's list);
* ``psymatch_calls_due_today`` - planned calls dated today or earlier (local date);
* ``psymatch_emails{status}`` - emails by status (``In_Warteschlange`` = queued,
  ``Fehlgeschlagen`` = failed, ...), every status present, zero when none;
* ``psymatch_outbox_items{status}`` - outbox rows by status;
* ``psymatch_domain_up`` - 1 when the queries ran, 0 when the database did not answer
  (then the other gauges are missing from that scrape, not wrong).
"""

from __future__ import annotations

import logging
import time

from prometheus_client.core import GaugeMetricFamily

from db import database
from db.models import (
    Email,
    InboundMessage,
    OutboxItem,
    Telefonanruf,
    TherapeutAnfragePatient,
    Therapeutenanfrage,
    utcnow,
)
from operations.responses import ACCEPTED_ANSWERS
from operations.snapshot import local_today
from psymatch.domain import vocab

log = logging.getLogger(__name__)

BUNDLE_STATES = ("ungesendet", "gesendet", "beantwortet")


def _table(model) -> str:
    return f'"{model._meta.table_name}"'


def _one(sql: str, params=()) -> int:
    return int(database.db.execute_sql(sql, params).fetchone()[0] or 0)


def _grouped(sql: str, params=()) -> dict[str, int]:
    return {str(key): int(count) for key, count in database.db.execute_sql(sql, params)}


def _placeholders(values) -> str:
    return ", ".join(["%s" if database.is_postgres() else "?"] * len(values))


def domain_counts() -> dict:
    """Every domain figure in one dict (plain data; the collector turns it into gauges)."""
    anfrage = _table(Therapeutenanfrage)
    bundles = _grouped(
        f"SELECT CASE WHEN antwort_datum IS NOT NULL THEN 'beantwortet' "
        f"WHEN gesendet_datum IS NOT NULL THEN 'gesendet' ELSE 'ungesendet' END AS state, "
        f"COUNT(*) FROM {anfrage} GROUP BY state"
    )
    mark = "%s" if database.is_postgres() else "?"
    review = _one(
        f"SELECT COUNT(*) FROM {_table(InboundMessage)} WHERE status = {mark}", ("pruefung",)
    )
    conflicts = _one(
        f"SELECT COUNT(*) FROM (SELECT patient_id FROM {_table(TherapeutAnfragePatient)} "
        f"WHERE antwortergebnis IN ({_placeholders(ACCEPTED_ANSWERS)}) "
        f"GROUP BY patient_id HAVING COUNT(*) >= 2) AS c",
        ACCEPTED_ANSWERS,
    )
    calls = _one(
        f"SELECT COUNT(*) FROM {_table(Telefonanruf)} "
        f"WHERE status = {mark} AND geplantes_datum <= {mark}",
        ("geplant", local_today(utcnow()).isoformat()),
    )
    emails = _grouped(f"SELECT status, COUNT(*) FROM {_table(Email)} GROUP BY status")
    outbox = _grouped(f"SELECT status, COUNT(*) FROM {_table(OutboxItem)} GROUP BY status")
    return {
        "bundles": {state: bundles.get(state, 0) for state in BUNDLE_STATES},
        "replies_in_review": review,
        "conflicts": conflicts,
        "calls_due_today": calls,
        "emails": {status: emails.get(status, 0) for status in vocab.EMAILSTATUS},
        "outbox_items": {status: outbox.get(status, 0) for status in vocab.OUTBOX_STATUS},
    }


def gauges(counts: dict) -> list[GaugeMetricFamily]:
    """The gauges of ``domain_counts()`` (pure)."""
    by_state = GaugeMetricFamily(
        "psymatch_bundles", "Therapeutenanfragen by state.", labels=["status"]
    )
    for state, value in counts["bundles"].items():
        by_state.add_metric([state], value)
    emails = GaugeMetricFamily("psymatch_emails", "Emails by status.", labels=["status"])
    for status, value in counts["emails"].items():
        emails.add_metric([status], value)
    outbox = GaugeMetricFamily("psymatch_outbox_items", "Outbox rows by status.", labels=["status"])
    for status, value in counts["outbox_items"].items():
        outbox.add_metric([status], value)
    return [
        GaugeMetricFamily(
            "psymatch_bundles_created",
            "Therapeutenanfragen created (rows stored now).",
            value=sum(counts["bundles"].values()),
        ),
        by_state,
        GaugeMetricFamily(
            "psymatch_replies_in_review",
            "Inbound replies waiting for staff review.",
            value=counts["replies_in_review"],
        ),
        GaugeMetricFamily(
            "psymatch_conflicts",
            "Patients with two or more accepted answers.",
            value=counts["conflicts"],
        ),
        GaugeMetricFamily(
            "psymatch_calls_due_today",
            "Planned phone calls dated today or earlier.",
            value=counts["calls_due_today"],
        ),
        emails,
        outbox,
    ]


class DomainCollector:
    """Runs ``domain_counts()`` on every scrape."""

    def collect(self):
        started = time.perf_counter()
        try:
            with database.connection():
                counts = domain_counts()
        except Exception as exc:  # a scrape reports the outage instead of failing
            log.warning("domain metrics: database unavailable: %s", type(exc).__name__)
            yield GaugeMetricFamily("psymatch_domain_up", "Domain queries succeeded.", value=0)
            return
        yield from gauges(counts)
        yield GaugeMetricFamily("psymatch_domain_up", "Domain queries succeeded.", value=1)
        yield GaugeMetricFamily(
            "psymatch_domain_scrape_seconds",
            "Time the domain queries took.",
            value=time.perf_counter() - started,
        )
