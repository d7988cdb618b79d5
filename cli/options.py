"""Arguments shared by the ``psymatch`` subcommands (``cli/main.py`` and command groups
registered from other modules of ``cli/``)."""

from __future__ import annotations

import argparse

ACTOR_HELP = "name of the staff member (written into the audit log)"


def actor_name(value: str) -> str:
    """argparse type of ``--actor``: stripped, non-empty, at most 100 characters, no
    control characters (``operations.audit.actor_name``); anything else is a usage
    error (exit code 2) before a command has touched the database."""
    from operations.audit import actor_name as check

    try:
        return check(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_actor_argument(parser: argparse.ArgumentParser) -> None:
    """The required ``--actor NAME`` of every command that writes data."""
    parser.add_argument("--actor", required=True, type=actor_name, metavar="NAME", help=ACTOR_HELP)
