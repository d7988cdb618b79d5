"""``psymatch anfrage close|expire``: closing unanswered Anfragen from the command line."""

from __future__ import annotations

import datetime as dt
import json

from db.models import AuditLog, Therapeutenanfrage
from operations.bundles import create_anfrage
from tests import factories as f
from tests.conftest import run_cli as psymatch


def sent_anfrage(when: dt.datetime) -> int:
    therapist = f.therapist()
    f.searches(2)
    anfrage_id = create_anfrage(therapist.id, now=when).anfrage_id
    f.mark_sent(anfrage_id, when)
    return anfrage_id


def closures() -> list[AuditLog]:
    return list(AuditLog.select().where(AuditLog.action == "close_without_response"))


def test_close_closes_once_and_refuses_the_second_time(clean_db, cli_env):
    anfrage_id = sent_anfrage(f.NOW)
    done = psymatch(cli_env, "anfrage", "close", str(anfrage_id), "--actor", "Erika Muster")
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip()
        == f"A{anfrage_id} closed without response (0 planned call(s) cancelled)"
    )
    assert Therapeutenanfrage.get_by_id(anfrage_id).antworttyp == "keine_Antwort"
    [row] = closures()
    assert row.actor == "Erika Muster" and row.details["automatic"] is False
    again = psymatch(cli_env, "anfrage", "close", str(anfrage_id), "--actor", "Erika", "--json")
    assert again.returncode == 1
    assert json.loads(again.stdout)["code"] == "INVALID_STATE"
    assert "psymatch: error: INVALID_STATE" in again.stderr
    assert len(closures()) == 1


def test_close_refusals_name_the_outcome_code_and_write_nothing(clean_db, cli_env):
    therapist = f.therapist()
    f.searches(2)
    unsent = create_anfrage(therapist.id, now=f.NOW).anfrage_id
    audit_before = AuditLog.select().count()
    missing = psymatch(cli_env, "anfrage", "close", "999999", "--actor", "Erika")
    assert missing.returncode == 1 and "ANFRAGE_NOT_FOUND" in missing.stderr
    not_sent = psymatch(cli_env, "anfrage", "close", str(unsent), "--actor", "Erika", "--json")
    assert not_sent.returncode == 1
    assert json.loads(not_sent.stdout) == {
        "ok": False,
        "code": "INVALID_STATE",
        "message": f"A{unsent} is not sent and pending",
    }
    assert Therapeutenanfrage.get_by_id(unsent).antwort_datum is None
    assert AuditLog.select().count() == audit_before
    no_actor = psymatch(cli_env, "anfrage", "close", str(unsent))
    assert no_actor.returncode == 2 and "--actor" in no_actor.stderr


def test_expire_closes_what_is_due_with_the_operator_as_actor(clean_db, cli_env):
    old = sent_anfrage(dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=22))
    result = psymatch(cli_env, "anfrage", "expire", "--actor", "Erika", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"closed": [old], "expiry_days": 21}
    [row] = closures()
    assert row.actor == "Erika" and row.details["automatic"] is True
    again = psymatch(cli_env, "anfrage", "expire", "--actor", "Erika")
    assert (
        again.returncode == 0 and "0 Anfrage(n) unanswered for 21 days closed: none" in again.stdout
    )
