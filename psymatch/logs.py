"""One logging setup for every process: web, worker, clock and the CLI.

``LOG_FORMAT=text`` (default) prints readable lines; ``LOG_FORMAT=json`` prints one JSON
object per line with ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``pid``,
``request_id`` and ``message_id`` (and ``exc_info`` for tracebacks).

The two ids come from context variables: the web app sets ``request_id`` for each request
(``webhooks/observability.py``), the worker middleware sets ``message_id`` for each Dramatiq
message (``workers/observability.py``). The formatter reads them when a line is written,
which happens in the thread that logged it, so every line carries the ids of its own
request or message.

Log lines name records by id only (Anfrage 42, inbound 7), never a patient's or
therapist's name, address or email. Request lines (gunicorn's access log, the werkzeug
development server) never carry a whole one-click link token: ``/r/<token>`` and
``token=`` values are cut to their first ``TOKEN_PREFIX`` characters and "…"
(``mask_link_tokens``), in the path, the query and the Referer alike.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from contextvars import ContextVar

from psymatch import settings

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
message_id: ContextVar[str | None] = ContextVar("message_id", default=None)

# Loggers that carry their own handlers and do not propagate to the root logger.
OWN_HANDLER_LOGGERS = ("gunicorn.error", "gunicorn.access")
# Loggers that write request lines (URLs): their arguments get link tokens masked.
REQUEST_LINE_LOGGERS = ("gunicorn.access", "werkzeug")

TOKEN_PREFIX = 6  # characters of a link token kept in logs: enough to tell two apart
# A one-click link's token in a path (``/r/<token>``, also ``/l/`` and the placement
# links' ``/v/``) or a query / form value.
_LINK_TOKEN = re.compile(
    r"(?P<lead>/[rlv]/|[?&;](?:token|t|link)=)"
    r"(?P<token>[^\s/?#&;\"'<>]{" + str(TOKEN_PREFIX + 1) + r",})"
)


def mask_link_tokens(text: str) -> str:
    """``text`` with each link token cut to ``TOKEN_PREFIX`` characters and "…"."""
    if "/r/" not in text and "/l/" not in text and "/v/" not in text and "=" not in text:
        return text
    return _LINK_TOKEN.sub(lambda m: f"{m.group('lead')}{m.group('token')[:TOKEN_PREFIX]}…", text)


def _masked(value):
    return mask_link_tokens(value) if isinstance(value, str) else value


class MaskLinkTokens(logging.Filter):
    """Masks link tokens in a request line's message and arguments (gunicorn passes its
    atoms as a mapping: ``%(r)s`` request line, ``%(U)s`` path, ``%(q)s`` query,
    ``%(f)s`` and ``{referer}i`` the Referer)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_link_tokens(record.msg)
        args = record.args
        if isinstance(args, dict):  # in place: gunicorn's mapping answers "-" for gaps
            for key, value in list(args.items()):
                if isinstance(value, str):
                    args[key] = mask_link_tokens(value)
        elif isinstance(args, tuple):
            record.args = tuple(_masked(value) for value in args)
        return True


def _time(record: logging.LogRecord) -> str:
    stamp = dt.datetime.fromtimestamp(record.created, dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _record_request_id(record: logging.LogRecord) -> str | None:
    """The request id of a line: the context's, or for gunicorn's access line the
    ``X-Request-ID`` response header it logs (written after the request context ended)."""
    current = request_id.get()
    if current is None and record.name == "gunicorn.access":
        try:
            current = record.args["{x-request-id}o"] or None  # gunicorn's atoms mapping
        except (TypeError, KeyError, IndexError):
            current = None
        current = None if current == "-" else current
    return current


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            "request_id": _record_request_id(record),
            "message_id": message_id.get(),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level [pid] logger: message request_id=... message_id=...`` (ids when set)."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            (name, var.get())
            for name, var in (("request_id", request_id), ("message_id", message_id))
        ]
        suffix = " ".join(f"{name}={value}" for name, value in ids if value)
        if not suffix:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the ids
        return f"{first} {suffix}{newline}{rest}"


def formatter(fmt: str | None = None) -> logging.Formatter:
    fmt = fmt or settings.get().LOG_FORMAT
    return JsonFormatter() if fmt == "json" else TextFormatter()


class _ActorResultNotice(logging.Filter):
    """Drops Dramatiq's per-message warning that an actor returned a value without a
    result backend: psymatch's actors return summaries on purpose (for the CLI and the
    tests, which call them directly); in a worker nobody reads them, which is fine."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)  # Dramatiq formats the actor's name in before logging
        return not (text.startswith("Actor '") and "' returned a value that is not None" in text)


def _more_than_hourly(actor) -> bool:
    """Whether a periodic actor runs more than once an hour (its cron names several
    minutes); False for anything that is not a periodic actor."""
    options = getattr(actor, "options", None) or {}
    spec = options.get("periodic")
    return len(getattr(spec, "minute", None) or []) > 1


class _FrequentSchedule(logging.Filter):
    """Moves periodiq's two per-run INFO lines down to DEBUG for jobs that run more than
    once an hour: with the outbox relay every minute each would be a line a minute telling
    nothing. Daily and hourly jobs keep theirs at INFO.

    - ``"Scheduling %s at %s."`` (the clock, ``Scheduler.send_actors``): the first
      argument is the actor;
    - ``"Processing %s scheduled at %s."`` (every worker, ``PeriodiqMiddleware``): the
      first argument is ``"<message id>:<actor name>(<arguments>)"``, so the actor is
      looked up by name with ``actors`` (the worker's broker; without it the line stays).

    A moved line is written only when the logger is enabled for DEBUG (``LOG_LEVEL=DEBUG``)."""

    SCHEDULING = "Scheduling %s at %s."
    PROCESSING = "Processing %s scheduled at %s."

    def __init__(self, actors=None):
        super().__init__()
        self.actors = actors  # actor name -> actor (or None)

    def _actor(self, record: logging.LogRecord):
        if record.msg == self.SCHEDULING:
            return record.args[0]
        if self.actors is None:
            return None
        name = str(record.args[0]).partition(":")[2].partition("(")[0]
        return self.actors(name) if name else None

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg not in (self.SCHEDULING, self.PROCESSING) or not (
            isinstance(args, tuple) and len(args) == 2
        ):
            return True
        if record.levelno != logging.INFO or not _more_than_hourly(self._actor(record)):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_frequent_schedules(actors=None) -> None:
    """Keep periodiq's lines to what matters at INFO (``_FrequentSchedule``): the clock
    calls it without ``actors``; a worker process with its broker's lookup
    (``broker.actors.get``), which its ``Processing`` lines need."""
    periodiq_logger = logging.getLogger("periodiq")
    for existing in periodiq_logger.filters:
        if isinstance(existing, _FrequentSchedule):
            if actors is not None:
                existing.actors = actors
            return
    periodiq_logger.addFilter(_FrequentSchedule(actors))


def setup(
    fmt: str | None = None, level: str | None = None, default_level: str | None = None, stream=None
) -> None:
    """Format every line of this process as ``LOG_FORMAT`` says.

    Keeps the handlers a process already has (Dramatiq's pipe to its master process,
    gunicorn's streams) and gives them the psymatch formatter; adds a stderr handler to
    the root logger when it has none. ``LOG_LEVEL`` (when set) is the root level, else
    ``default_level``, else the level the process chose itself (dramatiq's and periodiq's
    ``--verbose``).
    """
    chosen = formatter(fmt)
    worker_logger = logging.getLogger("dramatiq.worker.WorkerThread")
    if not any(isinstance(f, _ActorResultNotice) for f in worker_logger.filters):
        worker_logger.addFilter(_ActorResultNotice())
    for name in REQUEST_LINE_LOGGERS:
        request_logger = logging.getLogger(name)
        if not any(isinstance(f, MaskLinkTokens) for f in request_logger.filters):
            request_logger.addFilter(MaskLinkTokens())
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(stream or sys.stderr))
    for logger in (root, *(logging.getLogger(name) for name in OWN_HANDLER_LOGGERS)):
        for handler in logger.handlers:
            handler.setFormatter(chosen)
    level = level or settings.get().LOG_LEVEL or default_level
    if level:
        root.setLevel(level.upper())
