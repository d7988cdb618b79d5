"""``psymatch bench emails`` through the real CLI, worker pool, Redis and SMTP server.

Only the contract and the counting are checked here; speed is the benchmark's own
business (its figures go into the closing notes, never into an assertion).
"""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys

import pytest

from tests.conftest import run_cli as psymatch
from tools import countingsink


@pytest.mark.slow
def test_bench_emails_prints_the_contract_keys_and_counts_every_email(
    scratch_database_url, cli_env, redis_url
):
    # PSYMATCH_MODE unset, as in a user's shell (production by default): the bench runs
    # in demo mode by itself, on an empty database, as on a fresh checkout, which it
    # migrates first
    env = {
        **cli_env,
        "DATABASE_URL": scratch_database_url,
        "REDIS_URL": redis_url,
        "PSYMATCH_MODE": "",
    }
    result = psymatch(env, "bench", "emails", "--count", "120", "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "the database is empty: migrating it first" in result.stderr
    figures = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    for key in ("emails", "emails_per_s", "noop_per_s", "duplicates", "missing"):
        assert key in figures
    assert figures["emails"] == 120 and figures["smtp_server"] == "aiosmtpd"
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


def test_the_sink_reports_every_accepted_message_repeats_included(tmp_path):
    """The duplicate count rests on this: a message accepted twice is listed twice."""
    sink = countingsink.start(tmp_path)
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


def test_the_bench_no_longer_takes_a_server_choice(cli_env):
    result = psymatch(cli_env, "bench", "emails", "--count", "1", "--smtp-server", "postfix")
    assert result.returncode == 2 and "--smtp-server" in result.stderr


def test_the_tools_refuse_a_database_on_another_machine(cli_env):
    """Benchmarks write synthetic rows: never into a database that is not on this machine."""
    remote = "postgresql://bench:geheim@db.example.invalid:5432/produktion"
    for command in (["bench", "emails", "--count", "10"], ["bench", "webhooks", "--requests", "5"]):
        result = psymatch({**cli_env, "DATABASE_URL": remote, "PSYMATCH_MODE": ""}, *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "demo" in result.stderr and "geheim" not in result.stderr + result.stdout


def test_the_sink_reads_a_folded_message_id():
    """psymatch's signed Message-IDs are long: an acceptance confirmation arrives with its
    Message-ID folded onto a continuation line, and must still count under its own id."""
    from operations.emailing.headers import message_id

    long_id = message_id("annahme_bestaetigung", 2)
    head = b"From: a@example.org\r\nSubject: Best\xc3\xa4tigung\r\n"
    folded = head + f"Message-ID:\r\n {long_id}\r\n\r\nDanke\r\n".encode()
    one_line = head + f"Message-ID: {long_id}\r\n\r\nDanke\r\n".encode()
    assert countingsink.message_id(folded) == long_id
    assert countingsink.message_id(one_line) == long_id
    assert countingsink.message_id(head + b"\r\nMessage-ID: <body@x>\r\n") == "-"
