"""Staff accounts (operations/staff.py): sign-in, roles, deactivation, all audited."""

from __future__ import annotations

import pytest

from db.models import AuditLog, Mitarbeiter
from operations import staff
from operations.errors import OperationError

PASSWORD = "ein-langes-passwort"


def test_an_account_signs_in_with_its_password_only(clean_db):
    created = staff.create("Erika.M", "Erika Muster", "team", PASSWORD, actor="admin1")
    assert created == staff.Staff("erika.m", "Erika Muster", "team")
    row = Mitarbeiter.get()
    assert row.passwort_hash.startswith("$argon2id$") and PASSWORD not in row.passwort_hash
    assert staff.authenticate("ERIKA.M", PASSWORD) == created
    assert Mitarbeiter.get().letzte_anmeldung is not None
    assert staff.authenticate("erika.m", PASSWORD + "x") is None
    assert staff.authenticate("nobody", PASSWORD) is None
    entry = AuditLog.get(AuditLog.action == "create_staff")
    assert (entry.actor, entry.entity_id, entry.details) == ("admin1", "erika.m", {"rolle": "team"})


@pytest.mark.parametrize(
    "username,name,role,password,code",
    [
        ("x", "X", "team", PASSWORD, "INVALID_USERNAME"),
        ("erika m", "X", "team", PASSWORD, "INVALID_USERNAME"),
        ("../admin", "X", "team", PASSWORD, "INVALID_USERNAME"),
        ("erika", "", "team", PASSWORD, "INVALID_NAME"),
        ("erika", "X", "chef", PASSWORD, "INVALID_ROLE"),
        ("erika", "X", "team", "kurz", "WEAK_PASSWORD"),
    ],
)
def test_bad_input_writes_nothing(clean_db, username, name, role, password, code):
    with pytest.raises(OperationError) as error:
        staff.create(username, name, role, password, actor="admin1")
    assert error.value.code == code
    assert Mitarbeiter.select().count() == 0 and AuditLog.select().count() == 0


def test_a_taken_name_is_refused(clean_db):
    staff.create("erika", "Erika", "team", PASSWORD, actor="admin1")
    with pytest.raises(OperationError, match="ALREADY_EXISTS"):
        staff.create("Erika", "Erika Zwei", "admin", PASSWORD, actor="admin1")
    assert Mitarbeiter.get().rolle == "team"


def test_roles_order_and_changes_apply_at_once(clean_db):
    staff.create("erika", "Erika", "lesen", PASSWORD, actor="admin1")
    assert not staff.active("erika").may("team")
    staff.set_role("erika", "admin", actor="admin1")
    who = staff.active("erika")
    assert who.may("lesen") and who.may("team") and who.may("admin")
    staff.set_active("erika", False, actor="admin1", reason="left the team")
    assert staff.active("erika") is None
    assert staff.authenticate("erika", PASSWORD) is None  # right password, inactive account
    staff.set_active("erika", True, actor="admin1")
    staff.set_password("erika", "ein-neues-langes-passwort", actor="admin1")
    assert staff.authenticate("erika", PASSWORD) is None
    assert staff.authenticate("erika", "ein-neues-langes-passwort") is not None
    actions = [a.action for a in AuditLog.select().order_by(AuditLog.id)]
    assert actions == [
        "create_staff",
        "set_staff_role",
        "deactivate_staff",
        "activate_staff",
        "set_staff_password",
    ]
    with pytest.raises(OperationError, match="NOT_FOUND"):
        staff.set_role("nobody", "team", actor="admin1")
