"""The figures of a finished run, by the metric definitions of docs/domain.md §14
(``psymatch.domain.metrics`` over the rows ``console.metrics_queries`` loads)."""

from __future__ import annotations

from db.models import InboundMessage, Platzsuche, Therapeutenanfrage
from psymatch import settings
from psymatch.domain import metrics


def _round(value, digits=3):
    return None if value is None else round(value, digits)


def build(sim, seconds: float, cpu_seconds: float | None = None):
    from console import metrics_queries

    from .engine import Result

    s = settings.get()
    data = metrics_queries.load()
    end = sim.at_end()
    days = metrics.placement_days(data.searches, s.TIMEZONE)
    mean, median = metrics.mean_median(days)
    placed = len(days)
    sent = (
        Therapeutenanfrage.select().where(Therapeutenanfrage.gesendet_datum.is_null(False)).count()
    )
    staff_actions = sum(sim.staff.values())
    conflicts = sim.staff.get("conflict", 0)
    reviewed = InboundMessage.select().where(InboundMessage.review_reason.is_null(False)).count()
    figures = {
        "weeks": sim.weeks,
        "therapists": sim.therapist_count,
        "seed": sim.seed,
        "policy": sim.policy,
        "searches_opened": sim.searches_opened,
        "searches_open_at_end": Platzsuche.select().where(Platzsuche.status == "aktiv").count(),
        "placed": placed,
        "placement_days_median": _round(median, 1),
        "placement_days_mean": _round(mean, 1),
        "acceptance_rate": _round(metrics.annahmerate(data.anfragen).value),
        "response_rate_7d": _round(metrics.antwortrate_7_tage(data.anfragen, end).value),
        "inquiries_sent": sent,
        "inquiries_per_placement": _round(sent / placed if placed else None, 2),
        "staff_actions": staff_actions,
        "staff_actions_per_placement": _round(staff_actions / placed if placed else None, 2),
        "staff_actions_by_kind": {k: v for k, v in sorted(sim.staff.items()) if v},
        "conflicts": conflicts,
        "conflict_rate": _round(metrics.konfliktrate(data.lines).value),
        "replies_to_review": reviewed,
        "show_rate": _round(metrics.show_rate(data.lines).value),
        "invariant_breaches": len(sim.breaches),
        # days on which a clock job (round, follow-up, expiry) failed, and why
        "job_failures": dict(sorted(getattr(sim, "job_failures", {}).items())),
        "job_failure_examples": dict(sorted(getattr(sim, "job_failure_examples", {}).items())),
        "seconds": round(seconds, 1),
        # this process's CPU time: on a shared machine the wall time above also counts
        # the time other processes had the CPU
        "cpu_seconds": None if cpu_seconds is None else round(cpu_seconds, 1),
    }
    weekly = [
        {
            "week": row["woche"].isoformat(),
            "sent": row["gesendet"],
            "response_rate": _round(row["antwortrate"].value),
            "acceptance_rate": _round(row["annahmerate"].value),
        }
        for row in metrics.weekly_rates(data.anfragen, s.TIMEZONE)
    ]
    return Result(
        figures=figures,
        days=sim.days,
        placement_days=sorted(days),
        weekly=weekly,
        staff_by_kind=dict(sim.staff),
        breaches=list(sim.breaches),
        model=sim.model.as_dict(),
        rules={name: getattr(s, name) for name in sorted(set(_RULE_SETTINGS))},
    )


_RULE_SETTINGS = (
    "MAX_ANFRAGE_SIZE",
    "ROUND_MIN_SIZE",
    "COOLING_PERIOD_WEEKS",
    "MAX_PARALLEL_ANFRAGEN",
    "FOLLOW_UP_MODE",
    "FOLLOW_UP_THRESHOLD_DAYS",
    "ANFRAGE_EXPIRY_DAYS",
    "EMAIL_MIN_INTERVAL_DAYS",
    "PLACEMENT_REMINDER_DAYS",
    "PLACEMENT_CONFIRM_DAYS",
    "DEFAULT_MAX_DISTANCE_KM",
)
