"""Log hygiene that every process gets from ``psymatch.logs.setup``."""

from __future__ import annotations

import logging

from psymatch import logs


def test_dramatiqs_returned_a_value_warning_is_dropped_and_nothing_else(caplog):
    logs.setup()
    logger = logging.getLogger("dramatiq.worker.WorkerThread")
    with caplog.at_level(logging.WARNING):
        logger.warning(  # as dramatiq.worker logs it: the actor's name formatted in already
            "Actor 'send_emails' returned a value that is not None, and you haven't added the "
            "Results middleware to the broker, so the value has been discarded."
        )
        logger.warning("Actor 'send_emails' failed")
    assert [r.getMessage() for r in caplog.records] == ["Actor 'send_emails' failed"]
