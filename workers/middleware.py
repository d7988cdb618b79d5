"""Dramatiq middleware: a database connection per message, and outbox bookkeeping."""

from __future__ import annotations

import dramatiq
import peewee

from db import database


class DatabaseMiddleware(dramatiq.Middleware):
    """Bind the models at worker boot; each worker thread keeps one connection.

    peewee keeps connections per thread, so a message never sees another
    message's transaction. Reconnecting for every message would cost a TCP and
    authentication round trip on PostgreSQL each time, so the connection stays
    open; after a database error it is closed and the next message reconnects.
    """

    def after_process_boot(self, broker):
        if database.db.obj is None:
            database.init()

    def before_process_message(self, broker, message):
        if database.db.obj is None:
            database.init()
        database.db.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        broken = isinstance(exception, peewee.DatabaseError | peewee.InterfaceError)
        if broken and not database.db.is_closed():
            database.db.close()

    after_skip_message = after_process_message

    def before_worker_thread_shutdown(self, broker, thread):
        if database.db.obj is not None and not database.db.is_closed():
            database.db.close()


class OutboxMiddleware(dramatiq.Middleware):
    """Marks the outbox item a message came from as done once the actor succeeded.

    The relay sends each item with the message option ``outbox_id``. An item that
    was enqueued but never marked done (Redis flushed, worker killed) is put back
    by the reconcile job and sent again; actors are idempotent, so that is safe.
    """

    @property
    def actor_options(self):
        return {"outbox_id", "outbox_ids"}

    def after_process_message(self, broker, message, *, result=None, exception=None):
        ids = list(message.options.get("outbox_ids") or ())
        if message.options.get("outbox_id") is not None:
            ids.append(message.options["outbox_id"])
        if not ids:
            return
        from db.models import OutboxItem, utcnow

        with database.connection():
            if exception is None:
                OutboxItem.update(status="erledigt", done_at=utcnow()).where(
                    OutboxItem.id.in_(ids)
                ).execute()
            else:
                OutboxItem.update(
                    last_error=f"{type(exception).__name__}: {exception}"[:2000]
                ).where(OutboxItem.id.in_(ids)).execute()
