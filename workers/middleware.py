"""Dramatiq middleware: a database connection per message, and outbox bookkeeping."""

from __future__ import annotations

import dramatiq

from db import database


class DatabaseMiddleware(dramatiq.Middleware):
    """Bind the models at worker boot; one connection per message, closed after it.

    peewee keeps connections per thread, so each worker thread opens its own and
    a message never sees another message's transaction.
    """

    def after_process_boot(self, broker):
        if database.db.obj is None:
            database.init()

    def before_process_message(self, broker, message):
        if database.db.obj is None:
            database.init()
        database.db.connect(reuse_if_open=True)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if not database.db.is_closed():
            database.db.close()

    after_skip_message = after_process_message


class OutboxMiddleware(dramatiq.Middleware):
    """Marks the outbox item a message came from as done once the actor succeeded.

    The relay sends each item with the message option ``outbox_id``. An item that
    was enqueued but never marked done (Redis flushed, worker killed) is put back
    by the reconcile job and sent again; actors are idempotent, so that is safe.
    """

    @property
    def actor_options(self):
        return {"outbox_id"}

    def after_process_message(self, broker, message, *, result=None, exception=None):
        outbox_id = message.options.get("outbox_id")
        if outbox_id is None:
            return
        from db.models import OutboxItem, utcnow

        with database.connection():
            if exception is None:
                OutboxItem.update(status="erledigt", done_at=utcnow()).where(
                    OutboxItem.id == outbox_id
                ).execute()
            else:
                OutboxItem.update(
                    last_error=f"{type(exception).__name__}: {exception}"[:2000]
                ).where(OutboxItem.id == outbox_id).execute()
