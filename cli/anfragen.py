"""``psymatch anfrage ...``: closing inquiries that stay unanswered (docs/domain.md §8.3, §11.2).

``close`` closes one sent, pending Anfrage without response, as the console's button does;
``expire`` runs the daily expiry job by hand (what the clock does at ``ANFRAGE_EXPIRY_TIME``).
Both write audit rows naming ``--actor``. A refusal prints its outcome code and exits 1.
"""

from __future__ import annotations

import json
import sys

from psymatch import settings

from .options import add_actor_argument


def _connect() -> str | None:
    """Bind the database; the reason it cannot be used, or None."""
    from db import database, migrate

    database.init()
    settings.require_secrets()
    current, head = migrate.current_version(), migrate.head_version()
    if current != head:
        return (
            f"database is at schema version {current}, code expects {head}: "
            "run 'psymatch db upgrade' first"
        )
    return None


def _refused(args, code: str, message: str) -> int:
    if args.json:
        print(json.dumps({"ok": False, "code": code, "message": message}, ensure_ascii=False))
    print(f"psymatch: error: {code}: {message}", file=sys.stderr)
    return 1


def cmd_close(args) -> int:
    from operations.errors import OperationError
    from operations.responses import close_without_response

    problem = _connect()
    if problem:
        return _refused(args, "SCHEMA_OUTDATED", problem)
    try:
        result = close_without_response(args.anfrage_id, actor=args.actor)
    except OperationError as error:
        return _refused(args, error.code, error.message)
    if args.json:
        print(json.dumps({"ok": True, **result}, ensure_ascii=False, sort_keys=True))
    else:
        print(
            f"A{result['anfrage_id']} closed without response "
            f"({result['calls_cancelled']} planned call(s) cancelled)"
        )
    return 0


def cmd_expire(args) -> int:
    from operations.expiry import run_expiry

    problem = _connect()
    if problem:
        return _refused(args, "SCHEMA_OUTDATED", problem)
    result = run_expiry(actor=args.actor)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        closed = ", ".join(f"A{i}" for i in result["closed"]) or "none"
        print(
            f"{len(result['closed'])} Anfrage(n) unanswered for "
            f"{result['expiry_days']} days closed: {closed}"
        )
    return 0


def register(commands) -> None:
    """Add the ``anfrage`` command group to the CLI's subcommands."""
    group = commands.add_parser("anfrage", help="close unanswered Anfragen")
    actions = group.add_subparsers(dest="anfrage_command", required=True, metavar="ACTION")

    close = actions.add_parser(
        "close", help="close one sent, pending Anfrage without response (no cooling)"
    )
    close.add_argument("anfrage_id", type=int, metavar="ANFRAGE_ID")
    add_actor_argument(close)
    close.add_argument("--json", action="store_true")
    close.set_defaults(func=cmd_close)

    expire = actions.add_parser(
        "expire",
        help="close every Anfrage pending ANFRAGE_EXPIRY_DAYS after sending whose call "
        "did not reach the therapist (the daily clock job, run now)",
    )
    add_actor_argument(expire)
    expire.add_argument("--json", action="store_true")
    expire.set_defaults(func=cmd_expire)
