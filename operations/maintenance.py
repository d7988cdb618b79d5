"""Audited maintenance work of the ``psymatch`` command: schema migrations, the PLZ
reference data, key rotation, demo data and the retention run.

The work itself lives in ``db.migrate``, ``db.plz``, ``db.crypto``,
``operations.demo_data``, ``operations.demo_scenario`` and ``operations.privacy``; each
function here does it and writes one audit row naming the staff member (``actor``,
required, checked by ``audit.actor_name``) with counts, versions and column names, never
personal data. The work commits in steps of its own (a migration per step, rotation per
batch), so the row is written at the end with the real figures, and also when the work
stops partway (``failed``: the kind of error, with the figures reached).

Migrations: audit rows are written through the model, which fits only a schema at the
code's version (``audit.writable``). An upgrade writes its row at the end, a downgrade
before its first step; an upgrade that ends below the head and a downgrade of a database
below it write none. The result then says ``"audited": False`` and the command says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from db import crypto, migrate, plz
from db.database import connection
from db.models import ALL_MODELS, PlzCentroid

from . import audit, people
from .geocoding import nominatim

Report = Callable[[str], object] | None


# --- schema -----------------------------------------------------------------------------------


def upgrade_schema(
    actor: str, *, to: int | None = None, load_geo: bool = True, report: Report = print
) -> dict:
    """Apply pending migrations up to ``to`` (default: head), then load the PLZ centroids
    once (unless ``load_geo`` is false). Audit action ``db_upgrade`` at the end, when the
    schema is at the code's version (``audit.writable``; else ``"audited": False``)."""
    actor = audit.actor_name(actor)
    say = report or (lambda _: None)
    with connection():
        details = {
            "from": migrate.current_version(),
            "target": migrate.head_version() if to is None else to,
        }
        try:
            applied = migrate.upgrade(to=to, report=say)
            details["applied"] = [m.label for m in applied]
            details["to"] = migrate.current_version()
            if details["to"] >= 1 and load_geo:
                details["plz_centroids"] = plz.ensure_loaded(report=say)
        except BaseException as exc:
            details["to"] = _version_or_none()
            audit.write_after_failure(actor, "db_upgrade", "schema", details, exc)
            raise
        audited = audit.writable()
        if audited:
            audit.write(actor, "db_upgrade", "schema", details=details)
    return {**details, "audited": audited}


def downgrade_schema(actor: str, *, to: int | None = None, report: Report = print) -> dict:
    """Revert migrations down to ``to`` (default: one step). Audit action ``db_downgrade``
    with the versions and the steps, written before the first step: afterwards the
    schema no longer matches the code (the steps carry the row along, or drop it with
    the audit table below 0002). A database below the code's version gets no row
    (``"audited": False``), nor does a target outside 0..current (refused by
    ``migrate.downgrade``); a first step that fails is audited with ``failed``."""
    actor = audit.actor_name(actor)
    say = report or (lambda _: None)
    with connection():
        start = migrate.current_version()
        target = max(start - 1, 0) if to is None else to
        steps = [m.label for m in reversed(migrate.discover()) if target < m.version <= start]
        details = {"from": start, "to": target, "steps": steps}
        audited = 0 <= target <= start and audit.writable()
        if audited:
            audit.write(actor, "db_downgrade", "schema", details=details)
        try:
            reverted = migrate.downgrade(to=to, report=say)
        except BaseException as exc:
            details["to"] = _version_or_none()
            audit.write_after_failure(actor, "db_downgrade", "schema", details, exc)
            raise
    return {
        "from": start,
        "to": target,
        "reverted": [m.label for m in reverted],
        "audited": audited,
    }


def _version_or_none() -> int | None:
    try:
        return migrate.current_version()
    except Exception:  # the database is gone: the caller reports the original error
        return None


def load_plz(actor: str, *, report: Report = print) -> int:
    """Load the PLZ centroids from the shipped GeoNames file unless present; audit action
    ``geo_load`` with the counts before and after. Returns the count present."""
    actor = audit.actor_name(actor)
    with connection():
        before = PlzCentroid.select().count()
        present = plz.ensure_loaded(report=report)
        audit.write(
            actor, "geo_load", "plz_centroids", details={"before": before, "after": present}
        )
    return present


# --- encryption at rest -----------------------------------------------------------------------


def rotate_keys(actor: str, *, report: Report = print) -> dict[str, int]:
    """Re-encrypt every stored value with the first key of ENCRYPTION_KEYS; counts per
    column (and the patient lookups of the geocoding cache re-keyed, ``geocache.query``).
    Audit: ``crypto_rotate_started`` before the first batch and ``crypto_rotate``
    with the counts per column at the end (with ``failed`` when it stopped; the run is
    then simply repeated). No key material is written."""
    actor = audit.actor_name(actor)
    say = report or (lambda _: None)
    crypto.fernet()  # an unusable ENCRYPTION_KEYS fails here, before any row is written
    counts: dict[str, int] = {}
    with connection():
        audit.write(actor, "crypto_rotate_started", "encryption")
        try:
            for model in ALL_MODELS:
                counts.update(crypto.rotate([model], report=say))
            # patient lookups in the geocoding cache are keyed by a hash under a key
            # derived from ENCRYPTION_KEYS: they move to the newest key as well
            counts["geocache.query"] = nominatim.rekey_patient_lookups()
            say(f"geocache.query: {counts['geocache.query']} patient lookups re-keyed")
            # so is the person search's blind index of patients (migration 0013)
            counts["patienten.suchindex"] = people.refresh_index()
            say(f"patienten.suchindex: {counts['patienten.suchindex']} patients re-keyed")
        except BaseException as exc:
            details = {"columns": counts, "values": sum(counts.values())}
            audit.write_after_failure(actor, "crypto_rotate", "encryption", details, exc)
            raise
        audit.write(
            actor,
            "crypto_rotate",
            "encryption",
            details={"columns": counts, "values": sum(counts.values())},
        )
    return counts


# --- demo data ----------------------------------------------------------------------------------


def generate_demo_data(
    actor: str,
    *,
    therapists: int,
    patients: int,
    seed: int,
    search_share: float = 0.8,
    today: dt.date | None = None,
    scenario: bool = False,
    report: Report = print,
) -> dict:
    """Demo records (``demo_data.generate``, one transaction) and, with ``scenario``, the
    demo scenario (``demo_scenario.stage``, one transaction; its own rows name the actor
    ``demo-szenario``). Audit action ``demo_data`` with the arguments and the counts,
    written once the demo records are stored (also when the scenario then fails: that
    ``ScenarioError`` is raised after the row, with ``failed`` in it)."""
    from . import demo_data, demo_scenario

    actor = audit.actor_name(actor)
    counts = demo_data.generate(
        therapists=therapists,
        patients=patients,
        seed=seed,
        search_share=search_share,
        today=today,
        report=report,
    )
    details = {
        "seed": seed,
        "search_share": search_share,
        "today": today.isoformat() if today else None,
        **{k: v for k, v in counts.items() if k != "seconds"},
    }
    if scenario:
        try:
            counts["scenario"] = demo_scenario.stage(today=today, seed=seed, report=report)
        except BaseException as exc:
            audit.write_after_failure(actor, "demo_data", "database", details, exc)
            raise
        details["scenario"] = counts["scenario"]
    audit.write(actor, "demo_data", "database", details=details)
    return counts


# --- retention ----------------------------------------------------------------------------------


def run_retention(actor: str, *, dry_run: bool = False) -> dict:
    """``privacy.run_retention`` started by a staff member: each erasure's audit row and one
    row ``retention_run`` with the counts name ``actor``. A dry run writes nothing."""
    from .privacy import run_retention as retention

    actor = audit.actor_name(actor)
    summary_keys = ("retention_days", "cutoff", "eligible", "erased", "skipped")
    if dry_run:
        return retention(dry_run=True)
    try:
        result = retention(actor=actor)
    except BaseException as exc:
        audit.write_after_failure(actor, "retention_run", "patient", {}, exc)
        raise
    audit.write(actor, "retention_run", "patient", details={k: result[k] for k in summary_keys})
    return result
