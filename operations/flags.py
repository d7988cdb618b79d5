"""Feature flags stored in the database, with settings as the default (docs/domain.md §6.3)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from db.database import write_transaction
from db.models import FeatureFlag, utcnow
from psymatch import settings

from . import audit
from .errors import OperationError

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
    """Switch automatic rounds and their rollout share; the flag and its audit row are written
    in one transaction, an invalid value writes nothing."""
    if not isinstance(enabled, bool):
        raise OperationError("INVALID_FLAG", f"enabled must be true or false, got {enabled!r}")
    if (
        isinstance(rollout_percent, bool)
        or not isinstance(rollout_percent, int)
        or not 0 <= rollout_percent <= 100
    ):
        raise OperationError("INVALID_ROLLOUT", "rollout_percent must be between 0 and 100")
    with write_transaction():
        _store(enabled, rollout_percent, actor, reason)
    return auto_rounds()


def _store(enabled: bool, rollout_percent: int, actor: str, reason: str | None) -> None:
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


def in_rollout(search_id: int, percent: int) -> bool:
    """A stable share of searches: the same search is in or out on every run."""
    if percent >= 100:
        return True
    return zlib.crc32(f"platzsuche:{search_id}".encode()) % 100 < percent
