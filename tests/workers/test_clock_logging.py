"""The clock logs at INFO: no periodiq debug lines, no line a minute for the outbox relay."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time

import pendulum
import pytest
from periodiq import PeriodiqMiddleware, Scheduler

from psymatch import logs, settings
from workers import outbox
from workers.bundle_actors import bundle_round
from workers.observability import MessageLogContext


def _clock_command() -> str:
    """The Procfile's clock command, as honcho runs it."""
    for line in (settings.PROJECT_ROOT / "Procfile").read_text().splitlines():
        if line.startswith("clock:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError("no clock in the Procfile")


@pytest.fixture
def periodiq_lines():
    """Records reaching periodiq's logger's handlers, with the clock's filter on."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    handler = Keep()
    periodiq_logger = logging.getLogger("periodiq")
    root = logging.getLogger()
    level = root.level
    filters = list(periodiq_logger.filters)
    periodiq_logger.filters[:] = [f for f in filters if not isinstance(f, logs._FrequentSchedule)]
    periodiq_logger.addHandler(handler)
    root.setLevel(logging.INFO)
    logs.quiet_frequent_schedules()
    yield seen
    periodiq_logger.removeHandler(handler)
    periodiq_logger.filters[:] = filters
    root.setLevel(level)


def test_a_job_every_minute_is_scheduled_without_a_log_line(periodiq_lines, stub_broker):
    now = "2026-12-06T10:00:00+01:00"
    Scheduler(actors=[]).send_actors([outbox.relay_outbox, bundle_round], now=now)
    sent = sum(q.qsize() for q in stub_broker.queues.values())
    assert sent == 2  # both were sent ...
    # ... but only the daily round is logged
    lines = [r.getMessage() for r in periodiq_lines]
    assert len(lines) == 1 and "bundle_round" in lines[0], lines


def test_at_debug_the_minute_lines_are_back(periodiq_lines):
    logging.getLogger().setLevel(logging.DEBUG)
    Scheduler(actors=[]).send_actors([outbox.relay_outbox], now="2026-12-06T10:00:00+01:00")
    assert len(periodiq_lines) == 1


def test_at_debug_the_minute_lines_are_debug_lines(periodiq_lines):
    logging.getLogger().setLevel(logging.DEBUG)
    Scheduler(actors=[]).send_actors(
        [outbox.relay_outbox, bundle_round], now="2026-12-06T10:00:00+01:00"
    )
    levels = {r.args[0].actor_name: r.levelname for r in periodiq_lines}
    assert levels == {"relay_outbox": "DEBUG", "bundle_round": "INFO"}, levels


def processing(broker, *actors) -> None:
    """What a worker's periodiq middleware does before running each scheduled message."""
    [middleware] = [m for m in broker.middleware if isinstance(m, PeriodiqMiddleware)]
    now = str(pendulum.now())
    for actor in actors:
        message = actor.message_with_options(scheduled_at=now)
        middleware.before_process_message(broker, message)


def test_a_worker_processes_a_job_every_minute_without_an_info_line(periodiq_lines, stub_broker):
    """The worker's side of the same line a minute: periodiq's middleware logs
    "Processing <message id>:relay_outbox() scheduled at ..." at INFO for every run. A
    booted worker process keeps it for daily and hourly jobs only."""
    MessageLogContext().after_process_boot(stub_broker)  # what each worker process does
    processing(stub_broker, outbox.relay_outbox, outbox.reconcile_outbox, bundle_round)
    lines = [r.getMessage() for r in periodiq_lines]
    assert len(lines) == 1 and "bundle_round()" in lines[0], lines
    assert lines[0].startswith("Processing ") and periodiq_lines[0].levelname == "INFO"


def test_at_debug_the_worker_shows_the_minute_lines_as_debug(periodiq_lines, stub_broker):
    logs.quiet_frequent_schedules(stub_broker.actors.get)
    logging.getLogger().setLevel(logging.DEBUG)
    processing(stub_broker, outbox.relay_outbox, bundle_round)
    levels = {r.getMessage().split(":")[1].split("(")[0]: r.levelname for r in periodiq_lines}
    assert levels == {"relay_outbox": "DEBUG", "bundle_round": "INFO"}, levels


def test_without_the_workers_actors_the_processing_line_stays(periodiq_lines, stub_broker):
    """The clock installs the filter without a lookup: a line it cannot attribute to an
    actor is left as it is (nothing disappears by accident)."""
    processing(stub_broker, outbox.relay_outbox)
    assert [r.levelname for r in periodiq_lines] == ["INFO"]


@pytest.mark.slow
def test_the_clock_process_starts_at_info(redis_url, tmp_path):
    """The Procfile's clock for a few seconds: periodiq's start lines at INFO, none of its
    DEBUG lines ("Wake up at", "Sleeping for"), which it writes right at the start."""
    env = settings.child_environ(REDIS_URL=redis_url, LOG_LEVEL="")
    env["PATH"] = f"{os.path.dirname(os.sys.executable)}:{env.get('PATH', '')}"
    log = tmp_path / "clock.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", "-c", _clock_command()],
            env=env,
            cwd=settings.PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "Starting Periodiq" not in log.read_text() and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        time.sleep(4)  # its first schedule() (where the debug lines were) follows at once
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # bash and the periodiq it started
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    assert "Starting Periodiq" in text, text[-2000:]
    assert " DEBUG " not in text, text[-2000:]
    assert "Wake up at" not in text and "Sleeping for" not in text
