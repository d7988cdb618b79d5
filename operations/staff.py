"""Staff accounts: personal sign-in for the console and the role that limits what one may do.

Passwords are stored as Argon2id hashes (argon2-cffi's ``PasswordHasher``, its defaults);
a hash made with older parameters is replaced at the next successful sign-in. Every
change to an account is audited with the staff member who made it. Accounts are never
deleted, only deactivated, so that audit rows keep naming someone who existed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from db.database import write_transaction
from db.models import Mitarbeiter, utcnow
from psymatch.domain.vocab import STAFF_ROLES

from . import audit
from .errors import OperationError

# JupyterHub user names end up in URLs (/user/<name>/); keep them plain.
USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,49}")
MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Staff:
    """Who is acting, as the console and the audit see it."""

    username: str
    name: str
    role: str

    def may(self, needed: str) -> bool:
        return STAFF_ROLES.index(self.role) >= STAFF_ROLES.index(needed)


def normalise_username(username: str) -> str:
    return (username or "").strip().lower()


def _check_username(username: str) -> str:
    name = normalise_username(username)
    if not USERNAME.fullmatch(name):
        raise OperationError(
            "INVALID_USERNAME",
            "a user name is 2-50 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter",
            details={"field": "benutzername"},
        )
    return name


def _check_role(role: str) -> str:
    if role not in STAFF_ROLES:
        raise OperationError(
            "INVALID_ROLE",
            f"role must be one of {', '.join(STAFF_ROLES)}, got {role!r}",
            details={"field": "rolle"},
        )
    return role


def _check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise OperationError(
            "WEAK_PASSWORD",
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters",
            details={"field": "passwort"},
        )
    return password


def _account(username: str) -> Mitarbeiter:
    row = Mitarbeiter.get_or_none(Mitarbeiter.benutzername == normalise_username(username))
    if row is None:
        raise OperationError("NOT_FOUND", f"no staff account {username!r}", status=404)
    return row


def create(username: str, name: str, role: str, password: str, *, actor: str) -> Staff:
    """A new account; a taken user name or an invalid value writes nothing."""
    username = _check_username(username)
    role = _check_role(role)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise OperationError(
            "INVALID_NAME",
            "the name is required (at most 100 characters)",
            details={"field": "name"},
        )
    hashed = _hasher.hash(_check_password(password))
    with write_transaction():
        if Mitarbeiter.get_or_none(Mitarbeiter.benutzername == username) is not None:
            raise OperationError("ALREADY_EXISTS", f"staff account {username!r} exists", status=409)
        Mitarbeiter.create(benutzername=username, name=name, rolle=role, passwort_hash=hashed)
        audit.record(actor, "create_staff", "mitarbeiter", username, {"rolle": role})
    return Staff(username, name, role)


def set_role(username: str, role: str, *, actor: str) -> Staff:
    role = _check_role(role)
    with write_transaction():
        row = _account(username)
        before = row.rolle
        row.rolle = role
        row.save()
        audit.record(
            actor, "set_staff_role", "mitarbeiter", row.benutzername, {"von": before, "zu": role}
        )
    return Staff(row.benutzername, row.name, role)


def set_active(username: str, active: bool, *, actor: str, reason: str | None = None) -> None:
    with write_transaction():
        row = _account(username)
        row.aktiv = bool(active)
        row.save()
        action = "activate_staff" if active else "deactivate_staff"
        audit.record(actor, action, "mitarbeiter", row.benutzername, reason=reason)


def set_password(username: str, password: str, *, actor: str) -> None:
    hashed = _hasher.hash(_check_password(password))
    with write_transaction():
        row = _account(username)
        row.passwort_hash = hashed
        row.save()
        audit.record(actor, "set_staff_password", "mitarbeiter", row.benutzername)


def authenticate(username: str, password: str) -> Staff | None:
    """The active account whose password this is, else None (also for unknown names, after
    the same work as a wrong password, so timing does not tell which names exist)."""
    row = Mitarbeiter.get_or_none(Mitarbeiter.benutzername == normalise_username(username))
    stored = row.passwort_hash if row is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if row is None or not row.aktiv:
        return None
    with write_transaction():
        if _hasher.check_needs_rehash(stored):
            row.passwort_hash = _hasher.hash(password)
        row.letzte_anmeldung = utcnow()
        row.save()
    return Staff(row.benutzername, row.name, row.rolle)


def active(username: str) -> Staff | None:
    """The active account of this user name (the console looks it up before every write, so
    a role change or deactivation applies at once)."""
    row = Mitarbeiter.get_or_none(Mitarbeiter.benutzername == normalise_username(username))
    if row is None or not row.aktiv:
        return None
    return Staff(row.benutzername, row.name, row.rolle)


def listing() -> list[dict]:
    return [
        {
            "benutzername": row.benutzername,
            "name": row.name,
            "rolle": row.rolle,
            "aktiv": row.aktiv,
            "letzte_anmeldung": row.letzte_anmeldung.isoformat() if row.letzte_anmeldung else None,
        }
        for row in Mitarbeiter.select().order_by(Mitarbeiter.benutzername)
    ]


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown names (made once, on first use)."""
    return _hasher.hash("not a password of anyone: evens out the timing")
