"""Feature flags stored in the database, with settings as the default (domain.md 0.8)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from db.models import FeatureFlag, utcnow
from psymatch import settings

from . import audit

AUTO_ROUNDS = "auto_rounds"


@dataclass(frozen=True)
class Flag:
    enabled: bool
    rollout_percent: int


def auto_rounds() -> Flag:
    row = FeatureFlag.get_or_none(FeatureFlag.name == AUTO_ROUNDS)
    if row is None:
        s = settings.get()
        return Flag(s.AUTO_ROUNDS_ENABLED, s.AUTO_ROUNDS_ROLLOUT_PERCENT)
    return Flag(row.enabled, row.rollout_percent)


def set_auto_rounds(enabled: bool, rollout_percent: int, actor: str, reason: str | None = None):
    if not 0 <= rollout_percent <= 100:
        from .errors import OperationError

        raise OperationError("INVALID_ROLLOUT", "rollout_percent must be between 0 and 100")
    FeatureFlag.insert(
        name=AUTO_ROUNDS,
        enabled=enabled,
        rollout_percent=rollout_percent,
        updated_at=utcnow(),
        updated_by=actor,
    ).on_conflict(
        conflict_target=[FeatureFlag.name],
        update={
            FeatureFlag.enabled: enabled,
            FeatureFlag.rollout_percent: rollout_percent,
            FeatureFlag.updated_at: utcnow(),
            FeatureFlag.updated_by: actor,
        },
    ).execute()
    audit.record(
        actor,
        "set_flag",
        "feature_flag",
        AUTO_ROUNDS,
        {"enabled": enabled, "rollout_percent": rollout_percent},
        reason,
    )
    return auto_rounds()


def in_rollout(search_id: int, percent: int) -> bool:
    """A stable share of searches: the same search is in or out on every run."""
    if percent >= 100:
        return True
    return zlib.crc32(f"platzsuche:{search_id}".encode()) % 100 < percent
