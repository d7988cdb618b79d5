"""Contactability of therapists (docs/domain.md §5) and who is asked in which order.

Rules, checked in this order, the first failing one gives the reason:
1. ``inactive``: status is not ``aktiv``;
2. ``cooling``: some member of the practice has ``naechster_kontakt_moeglich`` after today;
3. ``pending_anfrage``: some member of the practice has a pending Anfrage;
4. ``email_rate_limit``: an inquiry or reminder was queued to the practice's address
   less than ``email_interval_days`` x 24 h ago; only while that address is usable (one a
   bounce marked invalid is no email channel: the next inquiry goes by phone).
"""

from __future__ import annotations

import datetime as dt

from .data import Params, Snapshot, TherapistData
from .practice import group_key, groups, order_key, practice_owner, usable_email

INACTIVE, COOLING, PENDING, RATE_LIMIT = (
    "inactive",
    "cooling",
    "pending_anfrage",
    "email_rate_limit",
)


def group_reason(
    members: list[TherapistData], snapshot: Snapshot, params: Params, with_rate_limit: bool = True
) -> str | None:
    """The first failing group rule (2, 3, 4) for a practice, or None."""
    if any(
        m.naechster_kontakt_moeglich and m.naechster_kontakt_moeglich > snapshot.today
        for m in members
    ):
        return COOLING
    if any(m.has_pending_anfrage for m in members):
        return PENDING
    if with_rate_limit:
        email = next((a for a in map(usable_email, members) if a), None)
        last = snapshot.email_last_queued.get(email) if email else None
        if last is not None and snapshot.now - last < dt.timedelta(days=params.email_interval_days):
            return RATE_LIMIT
    return None


def contact_reason(
    therapist: TherapistData, snapshot: Snapshot, params: Params, members=None
) -> str | None:
    """Why ``therapist`` may not be contacted now, or None when it may (rules 1-4)."""
    if therapist.status != "aktiv":
        return INACTIVE
    if members is None:
        key = group_key(therapist)
        members = [t for t in snapshot.therapists if group_key(t) == key] or [therapist]
    return group_reason(members, snapshot, params)


def round_owners(snapshot: Snapshot, params: Params) -> tuple[list[TherapistData], dict]:
    """Contactable practice owners in serving order, and the skipped groups with reasons.

    The owner is chosen among a group's ``aktiv`` members, regardless of PLZ
    (docs/domain.md §6.2); a group whose members are all inactive is skipped. Most
    practices have one therapist, which takes a fast path (45k therapists a round).
    """
    owners, skipped = [], {}
    today, now = snapshot.today, snapshot.now
    interval = dt.timedelta(days=params.email_interval_days)
    last_queued = snapshot.email_last_queued
    for members in groups(snapshot.therapists).values():
        if len(members) == 1:
            therapist = members[0]
            if therapist.status != "aktiv":
                continue
            if (
                therapist.naechster_kontakt_moeglich
                and therapist.naechster_kontakt_moeglich > today
            ):
                skipped[therapist.id] = COOLING
            elif therapist.has_pending_anfrage:
                skipped[therapist.id] = PENDING
            elif (email := usable_email(therapist)) and (
                (last := last_queued.get(email)) is not None and now - last < interval
            ):
                skipped[therapist.id] = RATE_LIMIT
            else:
                owners.append(therapist)
            continue
        active = [m for m in members if m.status == "aktiv"]
        if not active:
            continue
        reason = group_reason(members, snapshot, params)
        owner = practice_owner(active)
        if reason:
            skipped[owner.id] = reason
        else:
            owners.append(owner)
    owners.sort(key=order_key)
    return owners, skipped


def selectable(snapshot: Snapshot, params: Params, plz_prefix: str) -> list[TherapistData]:
    """The staff listing of docs/domain.md §6.2 for one PLZ prefix, in serving order."""
    all_groups = groups(snapshot.therapists)
    candidates = [
        t
        for t in snapshot.therapists
        if t.status == "aktiv" and (t.plz or "").startswith(plz_prefix)
    ]
    by_group: dict[str | int, list[TherapistData]] = {}
    for therapist in candidates:
        by_group.setdefault(group_key(therapist), []).append(therapist)
    chosen = []
    for key, members in by_group.items():
        has_email = isinstance(key, str)
        if group_reason(all_groups[key], snapshot, params, with_rate_limit=has_email):
            continue
        chosen.append(practice_owner(members) if has_email else members[0])
    chosen.sort(key=order_key)
    return chosen
