"""``psymatch bench emails`` through the real CLI, worker pool, Redis and SMTP servers.

Only the contract and the counting are checked here; speed is the benchmark's own
business (its figures go into the closing notes, never into an assertion).
"""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys

import pytest

from tests.conftest import missing
from tests.conftest import run_cli as psymatch
from tools import countingsink


def require(kind: str) -> None:
    if kind == "postfix" and countingsink.smtp_sink_path() is None:
        missing("Postfix's smtp-sink (apt-get install postfix)")


@pytest.mark.slow
@pytest.mark.parametrize("kind", countingsink.KINDS)
def test_bench_emails_prints_the_contract_keys_and_counts_every_email(
    scratch_database_url, cli_env, redis_url, kind
):
    require(kind)
    env = {**cli_env, "DATABASE_URL": scratch_database_url, "REDIS_URL": redis_url}
    # on an empty database, as on a fresh checkout: the bench migrates it first
    result = psymatch(
        env, "bench", "emails", "--count", "120", "--smtp-server", kind, "--json", timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "the database is empty: migrating it first" in result.stderr
    figures = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    for key in ("emails", "emails_per_s", "noop_per_s", "duplicates", "missing"):
        assert key in figures
    assert figures["emails"] == 120 and figures["smtp_server"] == kind
    assert figures["duplicates"] == 0 and figures["missing"] == 0
    assert figures["emails_per_s"] > 0 and figures["noop_per_s"] > 0
    # the bench leaves no rows of its own behind, outbox items included
    check = (
        "from db import database; database.init(); "
        "from db.models import Email, OutboxItem; "
        "print(Email.select().count(), OutboxItem.select().count())"
    )
    left = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=60
    )
    assert left.stdout.split() == ["0", "0"], left.stderr


@pytest.mark.parametrize("kind", countingsink.KINDS)
def test_a_sink_reports_every_accepted_message_repeats_included(tmp_path, kind):
    """The duplicate count rests on this: a message accepted twice is listed twice."""
    require(kind)
    sink = countingsink.start(kind, tmp_path)
    try:
        client = smtplib.SMTP("127.0.0.1", sink.port, timeout=10)
        for n in (1, 2, 2, 3):
            message = (
                f"From: a@example.org\r\nTo: b@example.org\r\nSubject: Grüße {n}\r\n"
                f"Message-ID: <m{n}@psymatch.example>\r\n\r\n"
                f"Message-ID: <not-a-header-{n}@body>\r\n"
            ).encode()
            client.sendmail("a@example.org", ["b@example.org"], message, ["BODY=8BITMIME"])
        client.quit()
        sink.stop()
        assert sink.received_ids() == [f"<m{n}@psymatch.example>" for n in (1, 2, 2, 3)]
    finally:
        sink.discard()
    assert kind != "postfix" or not sink.received.parent.exists()  # its temporary dump dir


def test_an_unknown_server_kind_is_refused(tmp_path):
    with pytest.raises(countingsink.SinkError, match="unknown SMTP server"):
        countingsink.start("sendmail", tmp_path)
