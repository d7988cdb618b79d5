"""Coordinates from the PLZ centroid, for records that have none or whose PLZ changed."""

from __future__ import annotations

from db.database import write_transaction
from db.models import Patient, Therapist

MODELS = {"patient": Patient, "therapist": Therapist}


def apply_centroid(record, centroids: dict[str, tuple[float, float]]) -> bool:
    """Set the record's coordinates from its PLZ centroid; False when the PLZ is unknown.

    An unknown PLZ leaves the location empty, and the bundle engine treats an
    unknown location as failing the distance rule (fail-closed, docs/domain.md §6.4).
    """
    point = centroids.get(record.plz)
    if point is None:
        record.latitude = record.longitude = record.geo_quelle = None
        record.geo_plz = record.plz
        return False
    record.latitude, record.longitude = point
    record.geo_quelle = "plz"
    record.geo_plz = record.plz
    return True


def locate_backlog(centroids: dict[str, tuple[float, float]], limit: int = 5000) -> dict:
    """Locate every record not yet located for its current PLZ; returns counts.

    Records whose PLZ turned out unknown keep ``latitude`` NULL with ``geo_plz``
    set: staff find them by that, and they are not retried until the PLZ changes.
    """
    counts = {"located": 0, "unknown_plz": 0}
    for model in MODELS.values():
        stale = model.plz.is_null(False) & (model.geo_plz.is_null() | (model.geo_plz != model.plz))
        with write_transaction():
            for record in model.select().where(stale).limit(limit):
                if apply_centroid(record, centroids):
                    counts["located"] += 1
                else:
                    counts["unknown_plz"] += 1
                record.save()
    return counts
