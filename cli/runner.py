"""``psymatch run``: everything of the laptop demo in one foreground command.

Migrates the database, loads demo data into an empty one, starts the embedded
Redis and the local mail sink when nothing else is configured, then every
Procfile process (web, worker, clock, console) under honcho. SIGINT or SIGTERM
stops all of it: honcho first (it stops its processes), then the helpers, and
finally anything that is still alive among the processes it ever started.

Everything runs with ``PSYMATCH_MODE=demo`` (public demo secrets, ``/dev/mail`` with
patient names) and therefore listens on 127.0.0.1 only: the web process (the
Procfile's ``WEB_HOST``), the console (``console.server`` binds 127.0.0.1), the
worker metrics and the mail sink (started only for a loopback ``SMTP_URL``).

Once everything is started it prints the addresses to open, each only after it answered
(HTTP 200): the console's app start page (Voilà) and JupyterLab, the demo mail page
``/dev/mail/``, the web process's ``/status`` and the metrics. One that does not answer
within ``URL_WAIT_S`` is named as not answering, without an address to click.

The migrations and the demo data are audited under the staff member given as
``--actor`` (``scripts/run`` passes the login name), as ``psymatch db upgrade`` and
``psymatch demo-data`` are.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import psutil

from psymatch import settings

PROCFILE_PROCESSES = ("web", "worker", "clock", "console")
LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_S = 30
URL_WAIT_S = 180  # a first console start on a small machine takes a while


class Runner:
    def __init__(self, demo_therapists: int, demo_patients: int, seed: int, *, actor: str):
        self.settings = settings.get()
        self.actor = actor
        self.demo = (demo_therapists, demo_patients, seed)
        self.helpers: list[subprocess.Popen] = []
        self.honcho: subprocess.Popen | None = None
        self.seen: dict[int, psutil.Process] = {}
        self.env: dict[str, str] = {}

    # --- preparation -----------------------------------------------------------------

    def prepare_database(self) -> None:
        from db import database
        from db.models import Therapist
        from operations import maintenance

        database.init(self.settings.DATABASE_URL)
        maintenance.upgrade_schema(self.actor, report=lambda line: print(f"[db] {line}"))
        if Therapist.select().count() == 0:
            from operations import demo_scenario

            therapists, patients, seed = self.demo
            print(
                f"[db] empty database: loading demo data ({therapists} therapists, "
                f"{patients} patients, seed {seed})"
            )
            try:
                maintenance.generate_demo_data(
                    self.actor,
                    therapists=therapists,
                    patients=patients,
                    seed=seed,
                    scenario=True,
                    report=lambda line: print(f"[demo] {line}"),
                )
            except demo_scenario.ScenarioError as error:
                print(f"[demo] scenario skipped: {error}")
        database.db.close()

    def start_helper(self, name: str, module: str, ready) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", module], env=self.env, start_new_session=True
        )
        self.helpers.append(process)
        deadline = time.monotonic() + 20
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start (see output above)")
            time.sleep(0.1)

    def start_embedded_redis(self) -> None:
        from workers import embedded_redis

        url_file = Path(self.settings.VAR_DIR) / "redis.url"
        if url_file.exists():
            url_file.unlink()
        self.start_helper(
            "embedded Redis",
            "workers.embedded_redis",
            lambda: embedded_redis.running_url() is not None,
        )
        self.env["REDIS_URL"] = embedded_redis.running_url()

    def start_mail_sink(self) -> None:
        target = urlparse(self.settings.SMTP_URL)
        host, port = target.hostname or "127.0.0.1", target.port or 25
        if not settings.is_loopback_host(host) or _listening(host, port):
            return  # a real or already running SMTP server
        self.start_helper("mail sink", "psymatch.mailsink", lambda: _listening(host, port))

    # --- running -------------------------------------------------------------------------

    def start_processes(self) -> None:
        root = settings.PROJECT_ROOT
        self.honcho = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("honcho")),
                "start",
                "--procfile",
                str(root / "Procfile"),
                "--app-root",
                str(root),
                "--port",
                str(self.settings.PORT),
                "--no-colour",
                *PROCFILE_PROCESSES,
            ],
            env=self.env,
            cwd=root,
            start_new_session=True,
        )

    def remember_descendants(self) -> None:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process().children(recursive=True):
                self.seen.setdefault(child.pid, child)

    def urls(self) -> list[tuple[str, str, str]]:
        """(name, address, note) of every HTTP address the demo serves."""
        s = self.settings
        web = f"http://127.0.0.1:{s.PORT}"
        console = f"http://127.0.0.1:{s.CONSOLE_PORT}"
        token_note = "  (Bearer-Token: METRICS_TOKEN)" if s.METRICS_TOKEN else ""
        from console.lab_settings import APP_URL, LAB_URL

        found = [
            ("console", f"{console}{APP_URL}", "  (the staff console)"),
            ("lab", f"{console}{LAB_URL}", "  (JupyterLab, for admins)"),
            ("mail", f"{web}/dev/mail/", "  (what the demo sent)"),
            ("status", f"{web}/status", token_note),
            ("metrics", f"{web}/metrics", token_note),
        ]
        if s.WORKER_METRICS_PORT:
            worker = f"http://{s.WORKER_METRICS_HOST}:{s.WORKER_METRICS_PORT}/metrics"
            found.append(("workers", worker, token_note))
        return found

    def wait_for_urls(self, stopping=lambda: False) -> tuple[list, list]:
        """(answering, silent) addresses after waiting up to ``URL_WAIT_S`` for all."""
        token = self.settings.METRICS_TOKEN
        pending = self.urls()
        answering = []
        deadline = time.monotonic() + URL_WAIT_S
        while pending and time.monotonic() < deadline and not stopping():
            still = []
            for entry in pending:
                (answering if _answers(entry[1], token) else still).append(entry)
            pending = still
            if pending:
                time.sleep(0.5)
        order = [name for name, _, _ in self.urls()]
        answering.sort(key=lambda entry: order.index(entry[0]))
        return answering, pending

    def print_urls(self, stopping=lambda: False) -> None:
        s = self.settings
        answering, silent = self.wait_for_urls(stopping)
        lines = ["", "psymatch is running (Ctrl-C stops everything):"]
        lines += [f"  {name:<9} {url}{note}" for name, url, note in answering]
        lines += [
            f"  {name:<9} not answering after {URL_WAIT_S} s (see its log lines above)"
            for name, _, _ in silent
        ]
        lines += [
            f"  smtp      {s.SMTP_URL}  -> {Path(s.VAR_DIR) / 'mail'}",
            f"  database  {s.DATABASE_URL}",
            f"  redis     {self.env.get('REDIS_URL')}",
            "",
        ]
        print("\n".join(lines), flush=True)

    def stop(self) -> None:
        self.remember_descendants()
        processes = ([self.honcho] if self.honcho else []) + self.helpers[::-1]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
        leftovers = [p for p in self.seen.values() if _alive(p)]
        for process in leftovers:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, still = psutil.wait_procs(leftovers, timeout=5)
        for process in still:
            with contextlib.suppress(psutil.Error):
                process.kill()

    def run(self) -> int:
        Path(self.settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
        stop_requested = []

        def request_stop(signum, frame):
            stop_requested.append(signum)

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        # Demo mode and loopback-only listeners for everything started from here.
        settings.override(PSYMATCH_MODE="demo", WORKER_METRICS_HOST=LOOPBACK)
        self.settings = settings.get()
        settings.require_secrets(self.settings)
        self.env = settings.child_environ(WEB_HOST=LOOPBACK)
        # Procfile commands (gunicorn, dramatiq, ...) live beside this interpreter.
        self.env["PATH"] = f"{Path(sys.executable).parent}:{self.env.get('PATH', '')}"
        try:
            self.prepare_database()
            if self.settings.embedded_redis:
                self.start_embedded_redis()
            self.start_mail_sink()
            self.start_processes()
            self.print_urls(lambda: bool(stop_requested) or self.honcho.poll() is not None)
            while not stop_requested and self.honcho.poll() is None:
                self.remember_descendants()
                time.sleep(0.5)
            if not stop_requested:
                print(f"honcho exited with {self.honcho.returncode}; stopping", flush=True)
                return 1
            return 0
        finally:
            print("stopping psymatch ...", flush=True)
            self.stop()
            print("stopped.", flush=True)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _answers(url: str, token: str = "") -> bool:
    """Whether ``url`` answers 200 (following redirects), with the metrics token if set."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0
