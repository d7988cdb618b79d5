"""gunicorn configuration of the web process (``gunicorn -c webhooks/gunicorn_conf.py``).

Metrics: every gunicorn worker writes its prometheus_client values into files in
``METRICS_DIR/web`` (default ``VAR_DIR/prometheus/web``), and ``/metrics`` on any worker
sums them. The master sets that directory up before any worker starts (prometheus_client
reads it when it is first imported), removes the files of processes that no longer run,
and marks a worker dead when it exits (its live gauges stop counting).

Logs: ``LOG_FORMAT`` and ``LOG_LEVEL`` through ``psymatch.logs`` for the app's and
gunicorn's own lines; access lines (when ``--access-logfile`` is given) end with the
request id.

Command-line options (the Procfile's ``--bind``, ``--workers`` ...) override this file.

Demo mode (``PSYMATCH_MODE=demo``: public secrets, ``/dev/mail``) refuses to listen on
anything but a loopback address or a unix socket: ``psymatch run`` sets the Procfile's
``WEB_HOST=127.0.0.1``; a demo started by hand with ``--bind 0.0.0.0:...`` exits with 2.
"""

from __future__ import annotations

import sys

from psymatch import logs, settings
from psymatch.metric_files import remove_dead_process_files

_metrics_dir = settings.get().metrics_dir / "web"
_metrics_dir.mkdir(parents=True, exist_ok=True)
remove_dead_process_files(_metrics_dir)
settings.use_prometheus_multiprocess_dir(_metrics_dir)

access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'


def non_loopback_binds(addresses) -> list[str]:
    """The TCP listen addresses (``(host, port)``) that are not on loopback."""
    return [
        f"{address[0]}:{address[1]}"
        for address in addresses
        if isinstance(address, tuple) and not settings.is_loopback_host(str(address[0]))
    ]


def on_starting(server):
    logs.setup(default_level="INFO")
    if settings.get().demo_requested:
        exposed = non_loopback_binds(server.cfg.address)
        if exposed:
            print(
                f"refusing to serve demo mode (PSYMATCH_MODE=demo) on {', '.join(exposed)}: "
                "demo mode listens on 127.0.0.1 only (see SECURITY.md)",
                file=sys.stderr,
            )
            sys.exit(2)


def post_worker_init(worker):
    logs.setup(default_level="INFO")


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(_metrics_dir))
