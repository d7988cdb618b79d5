"""Worker metrics and log context: Dramatiq's Prometheus middleware, set up from settings.

``WorkerPrometheus`` is ``dramatiq.middleware.prometheus.Prometheus`` with three changes:

* its metric files go to ``METRICS_DIR/worker`` (default ``VAR_DIR/prometheus/worker``),
  shared by every worker process of this host;
* it only counts in a booted Dramatiq worker process: the web app, the clock and the CLI
  enqueue through the same broker but never boot it, so their hooks do nothing (Dramatiq's
  own class would fail there, its metrics exist only after boot);
* its exposition server (forked once by the ``dramatiq`` master process) listens on
  ``WORKER_METRICS_HOST:WORKER_METRICS_PORT``; when another worker pool of the host
  already holds the port, it logs that and waits for the port instead of failing: the
  pool that holds the port serves the shared directory, so its ``/metrics`` counts every
  pool of the host.
  ``WORKER_METRICS_PORT=0`` serves nothing (the files are still written).

At start the server deletes the files of processes that no longer run (counters of a
previous run restart at zero, as Prometheus expects after a restart).

``MessageLogContext`` puts the id of the message being processed into the log context
(``psymatch.logs.message_id``) and formats the worker's log lines at boot (periodiq's
per-run line of a job that runs more than once an hour goes to DEBUG).
"""

from __future__ import annotations

import errno
import logging
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dramatiq
from dramatiq.middleware import prometheus as dramatiq_prometheus

from psymatch import logs, ops_access, settings
from psymatch.metric_files import remove_dead_process_files

log = logging.getLogger(__name__)

_GUARDED_HOOKS = (
    "after_nack",
    "after_enqueue",
    "before_delay_message",
    "before_process_message",
    "after_process_message",
    "after_skip_message",
    "after_worker_shutdown",
)


def worker_metrics_dir() -> Path:
    return settings.get().metrics_dir / "worker"


class WorkerPrometheus(dramatiq_prometheus.Prometheus):
    def __init__(self) -> None:
        super().__init__()
        self.booted = False

    @property
    def forks(self):
        return [serve_worker_metrics] if settings.get().WORKER_METRICS_PORT else []

    def after_process_boot(self, broker):
        path = worker_metrics_dir()
        path.mkdir(parents=True, exist_ok=True)
        dramatiq_prometheus.DB_PATH = str(path)  # read by the parent class at boot and exit
        super().after_process_boot(broker)  # sets PROMETHEUS_MULTIPROC_DIR, then imports
        self.booted = True


def _guarded(name: str):
    parent = getattr(dramatiq_prometheus.Prometheus, name)

    def hook(self, *args, **kwargs):
        if self.booted:
            return parent(self, *args, **kwargs)
        return None

    hook.__name__ = name
    return hook


for _name in _GUARDED_HOOKS:
    setattr(WorkerPrometheus, _name, _guarded(_name))


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        if self.path.split("?")[0] not in ("/", "/metrics"):
            self.send_error(404)
            return
        verdict = ops_access.decide(self.headers.get("Authorization"))
        if verdict == ops_access.NOT_FOUND:  # production without METRICS_TOKEN
            self.send_error(404)
            return
        if verdict == ops_access.UNAUTHORIZED:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="worker metrics"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(worker_metrics_dir()))
        output = generate_latest(registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(output)))
        self.end_headers()
        self.wfile.write(output)

    def log_message(self, fmt, *args):  # scrapes are not worth a log line
        pass


def serve_worker_metrics(retry_s: float = 15.0, attempts: int | None = None) -> int:
    """The fork process of a ``dramatiq`` pool: serve the worker metrics until stopped.

    While another pool of the host holds the port, wait and try again every ``retry_s``
    (the process stays alive: an exited fork would linger as a zombie of the pool's
    master); take the port over when that pool stops. ``attempts`` limits the tries
    (tests); then the answer is 0 without serving.
    """
    s = settings.get()
    path = worker_metrics_dir()
    path.mkdir(parents=True, exist_ok=True)
    removed = remove_dead_process_files(path)
    address = (s.WORKER_METRICS_HOST, s.WORKER_METRICS_PORT)
    tries = 0
    while True:
        tries += 1
        try:
            server = ThreadingHTTPServer(address, _MetricsHandler)
            break
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            if tries == 1:
                log.warning(
                    "worker metrics: %s:%s is in use (another worker pool of this host "
                    "serves %s); trying again every %.0f s",
                    *address,
                    path,
                    retry_s,
                )
            if attempts is not None and tries >= attempts:
                return 0
            time.sleep(retry_s)
    log.info(
        "worker metrics on http://%s:%s/metrics (%s, %d stale files removed)",
        *address,
        path,
        removed,
    )
    server.serve_forever()
    return 0


class MessageLogContext(dramatiq.Middleware):
    """Log lines written while a message is processed carry its ``message_id``; periodiq's
    "Processing ..." line for a job that runs more than once an hour (the outbox relay,
    every minute) is left to DEBUG (``logs.quiet_frequent_schedules``)."""

    def after_process_boot(self, broker):
        logs.setup()
        logs.quiet_frequent_schedules(broker.actors.get)

    def before_process_message(self, broker, message):
        logs.message_id.set(message.message_id)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        logs.message_id.set(None)

    after_skip_message = after_process_message
