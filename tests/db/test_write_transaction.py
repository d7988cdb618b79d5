"""SQLite writers take turns on a file lock beside the database (db.database.write_transaction)."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest

from db import database
from db.models import AuditLog


def test_a_writer_waits_for_the_file_lock_and_goes_on_when_it_is_released(clean_db, backend):
    if backend != "sqlite":
        pytest.skip("the file lock is SQLite's; PostgreSQL has row locks")
    path = f"{database.db.obj.database}-writer.lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process's writer, as far as SQLite knows
    inside, failures = threading.Event(), []

    def write():
        try:
            database.db.connect(reuse_if_open=True)
            with database.write_transaction():
                inside.set()
                AuditLog.create(actor="test", action="write", entity="test", entity_id="1")
        except Exception as error:  # reported to the test below
            failures.append(error)
        finally:
            database.db.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        # the writer is parked on the lock: it has not begun its transaction
        assert not inside.wait(0.5)
    finally:
        os.close(holder)  # releasing the lock lets it in
    writer.join(30)
    assert inside.is_set() and not failures
    assert AuditLog.select().where(AuditLog.actor == "test").count() == 1


def test_a_nested_write_transaction_joins_the_open_one(clean_db):
    with database.write_transaction():
        AuditLog.create(actor="outer", action="a", entity="test", entity_id="1")
        with database.write_transaction():  # no second lock: it would wait for itself
            AuditLog.create(actor="inner", action="b", entity="test", entity_id="2")
    assert AuditLog.select().count() == 2
