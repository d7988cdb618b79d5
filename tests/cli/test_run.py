"""scripts/run: every process comes up on embedded defaults and SIGTERM leaves none behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from psymatch.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None, None


def running(process: psutil.Process) -> bool:
    """Alive and not a zombie (a zombie has exited; only its parent has not reaped it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(predicate, timeout: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"scripts/run exited early ({process.returncode}):\n{log.read_text()}")
        result = predicate()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-4000:]}")


def _inet_connections(process: psutil.Process) -> list:
    try:
        return process.net_connections(kind="inet")
    except psutil.Error:  # gone, a zombie, or not ours to inspect
        return []


def test_scripts_run_starts_everything_and_stops_cleanly(tmp_path):
    var = tmp_path / "var"
    port, console_port, smtp_port = free_port(), free_port(), free_port()
    worker_metrics_port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DATABASE_URL", "TEST_DATABASE_URL")
    }
    env.update(
        VAR_DIR=str(var),
        DATABASE_URL=f"sqlite:///{var / 'psymatch.db'}",
        PGEOCODE_DATA_DIR=str(var / "pgeocode"),
        PORT=str(port),
        CONSOLE_PORT=str(console_port),
        SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        WORKER_METRICS_PORT=str(worker_metrics_port),
        WORKER_PROCESSES="1",
        WEB_CONCURRENCY="1",
        PSYMATCH_MODE="production",  # psymatch run makes it demo for all it starts
        WEB_HOST="0.0.0.0",  # and binds the web process to loopback regardless
    )
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                "bash",
                str(ROOT / "scripts" / "run"),
                "--demo-therapists",
                "120",
                "--demo-patients",
                "60",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        status, body = wait_for(
            lambda: (lambda r: r if r[0] == 200 else None)(
                get_json(f"http://127.0.0.1:{port}/status")
            ),
            180,
            "/status",
            process,
            log,
        )
        assert body["status"] == "ok"
        assert body["database"] == {**body["database"], "ok": True, "backend": "sqlite"}
        assert body["broker"]["ok"] is True and body["broker"]["kind"] == "embedded"

        def console_up():
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{console_port}/voila/tree", timeout=3
                ) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(console_up, 120, "the console", process, log)
        names = " ".join(
            " ".join(p.cmdline()) for p in psutil.Process(process.pid).children(recursive=True)
        )
        for expected in (
            "gunicorn",
            "dramatiq",
            "periodiq",
            "jupyter-lab",
            "redis-server",
            "psymatch.mailsink",
        ):
            assert expected in names, f"{expected} not running"
        # demo mode (public secrets, /dev/mail with patient names): nothing on the network
        listening = {
            (p.pid, c.laddr.ip, c.laddr.port)
            for p in psutil.Process(process.pid).children(recursive=True)
            for c in _inet_connections(p)
            if c.status == psutil.CONN_LISTEN
        }
        ports = {entry[2] for entry in listening}
        assert {port, console_port, smtp_port} <= ports, listening
        exposed = [e for e in listening if e[1] not in ("127.0.0.1", "::1")]
        assert not exposed, exposed
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dev/mail/", timeout=5) as r:
            assert r.status == 200  # the demo's mail page, on loopback only
        wait_for(lambda: "psymatch is running" in log.read_text(), 200, "the URLs", process, log)
        text = log.read_text()
        urls = text.split("psymatch is running", 1)[1]
        printed = re.findall(r"https?://\S+", urls)
        assert set(printed) >= {
            f"http://127.0.0.1:{console_port}/voila/tree",
            f"http://127.0.0.1:{console_port}/lab",
            f"http://127.0.0.1:{port}/dev/mail/",
            f"http://127.0.0.1:{port}/status",
            f"http://127.0.0.1:{port}/metrics",
            f"http://127.0.0.1:{worker_metrics_port}/metrics",
        }, urls
        assert f"http://127.0.0.1:{port}/ " not in urls and "not answering" not in urls
        for url in printed:  # every address printed answers
            with urllib.request.urlopen(url, timeout=10) as r:
                assert r.status == 200, url
        assert f"smtp://127.0.0.1:{smtp_port}" in text
        # the clock at INFO: no periodiq debug lines
        assert "Wake up at" not in text and "Sleeping for" not in text

        started = psutil.Process(process.pid).children(recursive=True)
        assert len(started) >= 8
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=90) == 0
        deadline = time.monotonic() + 10
        while (alive := [p for p in started if running(p)]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive, [p.name() for p in alive]
        assert not (var / "redis.sock").exists()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
