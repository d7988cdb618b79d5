"""``psymatch staff ...``: the staff accounts the console's sign-in checks (operations/staff.py).

Passwords are never command-line arguments (``ps`` and the shell history would keep them):
they are asked for twice on a terminal, or read as one line from standard input with
``--password-stdin`` (scripts, ``printf '%s\\n' "$PW" | psymatch staff add ...``).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from psymatch import settings
from psymatch.domain.vocab import STAFF_ROLES

from .options import add_actor_argument


def _connect() -> None:
    from db import database

    database.init()
    settings.require_secrets(required=settings.CONSOLE_SECRET_NAMES)


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Passwort: ")
    if getpass.getpass("Passwort wiederholen: ") != first:
        raise SystemExit("psymatch: error: the two passwords differ; nothing was changed")
    return first


def _run(action) -> int:
    from operations.errors import OperationError

    _connect()
    try:
        message = action()
    except OperationError as error:
        print(f"psymatch: error: {error.code}: {error.message}", file=sys.stderr)
        return 1
    if message:
        print(message)
    return 0


def cmd_add(args) -> int:
    from operations import staff

    password = _password(args)
    return _run(
        lambda: "created {0.username} ({0.role})".format(
            staff.create(args.username, args.name, args.role, password, actor=args.actor)
        )
    )


def cmd_list(args) -> int:
    from operations import staff

    _connect()
    accounts = staff.listing()
    if args.json:
        print(json.dumps(accounts, ensure_ascii=False, indent=2))
        return 0
    for a in accounts:
        state = "aktiv" if a["aktiv"] else "deaktiviert"
        print(f"{a['benutzername']:<20} {a['rolle']:<6} {state:<12} {a['name']}")
    if not accounts:
        print("no staff accounts (add one: psymatch staff add USER --name NAME --role admin)")
    return 0


def cmd_set_role(args) -> int:
    from operations import staff

    return _run(
        lambda: "{0.username} is now {0.role}".format(
            staff.set_role(args.username, args.role, actor=args.actor)
        )
    )


def cmd_set_active(args) -> int:
    from operations import staff

    active = args.staff_command == "activate"

    def action():
        staff.set_active(args.username, active, actor=args.actor, reason=args.reason)
        return f"{args.username} {'activated' if active else 'deactivated'}"

    return _run(action)


def cmd_set_password(args) -> int:
    from operations import staff

    password = _password(args)

    def action():
        staff.set_password(args.username, password, actor=args.actor)
        return f"password of {args.username} changed"

    return _run(action)


def register(commands) -> None:
    """Add the ``staff`` command group to the CLI's subcommands."""
    group = commands.add_parser("staff", help="staff accounts for the console's sign-in")
    actions = group.add_subparsers(dest="staff_command", required=True, metavar="ACTION")

    def with_password(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from standard input (else: asked for twice)",
        )

    add = actions.add_parser("add", help="create an account")
    add.add_argument("username", help="sign-in name: lower-case letters, digits, . _ -")
    add.add_argument("--name", required=True, help="the person's full name")
    add.add_argument("--role", required=True, choices=STAFF_ROLES)
    with_password(add)
    add_actor_argument(add)
    add.set_defaults(func=cmd_add)

    listing = actions.add_parser("list", help="every account with role and state")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    role = actions.add_parser("set-role", help="change an account's role")
    role.add_argument("username")
    role.add_argument("role", choices=STAFF_ROLES)
    add_actor_argument(role)
    role.set_defaults(func=cmd_set_role)

    for name, text in (("deactivate", "end sign-in and every write"), ("activate", "undo that")):
        parser = actions.add_parser(name, help=f"{name} an account: {text}")
        parser.add_argument("username")
        parser.add_argument("--reason", help="why (kept in the audit log)")
        add_actor_argument(parser)
        parser.set_defaults(func=cmd_set_active)

    password = actions.add_parser("set-password", help="set a new password")
    password.add_argument("username")
    with_password(password)
    add_actor_argument(password)
    password.set_defaults(func=cmd_set_password)
