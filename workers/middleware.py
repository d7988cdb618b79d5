"""Dramatiq middleware that gives every message a database connection."""

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
