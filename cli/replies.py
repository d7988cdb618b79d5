"""Reading replies offline.

``psymatch replies parse --patients ID1,ID2,... [--json] FILE``: read one reply.
``psymatch replies stats [--patients ...] FILE...``: how many of the replies are decided
automatically, sent to review (and why), and, where the files carry expected readings,
how many are right and how many patients would be accepted wrongly (JSON,
``psymatch.domain.reply_stats``). Expected readings come from an ``expected.json`` beside
the files (``{"file name": {"patients": [...], "expected": {id: outcome} | "review" |
"auto"}}``, the format of tests/domain/fixtures/replies); a file it does not list needs
``--patients``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from psymatch.domain import reply_stats
from psymatch.domain.reply_parse import (
    decide,
    is_auto_reply,
    message_from_bytes,
    message_from_parts,
    strip_quoted,
    understand,
)

_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]{0,60}:[ \t]?\S")


def _error(message: str) -> int:
    print(f"psymatch: error: {message}", file=sys.stderr)
    return 1


def _looks_like_message(raw: bytes) -> bool:
    """A raw RFC 5322 message starts with header lines (at least two of them)."""
    head = raw.lstrip(b"\r\n").split(b"\n\n", 1)[0].replace(b"\r", b"").split(b"\n")
    headers = [ln for ln in head if _HEADER_LINE.match(ln)]
    known = [
        ln
        for ln in headers
        if ln.split(b":", 1)[0].lower()
        in (b"from", b"to", b"subject", b"date", b"message-id", b"received", b"mime-version",
            b"return-path", b"delivered-to", b"content-type", b"in-reply-to")
    ]  # fmt: skip
    return bool(head) and _HEADER_LINE.match(head[0]) is not None and len(known) >= 2


def _patients(value: str) -> list[int]:
    parts = [p.strip() for p in (value or "").split(",") if p.strip()]
    if not parts or not all(re.fullmatch(r"[1-9][0-9]{0,17}", p) for p in parts):
        raise ValueError(f"--patients must be a comma-separated list of patient ids, got {value!r}")
    ids = [int(p) for p in parts]
    if len(set(ids)) != len(ids):
        raise ValueError("--patients lists a patient twice")
    return ids


def cmd_parse(args) -> int:
    try:
        ids = _patients(args.patients)
    except ValueError as exc:
        return _error(str(exc))
    try:
        with open(args.file, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        return _error(f"cannot read {args.file}: {exc.strerror or exc}")
    if _looks_like_message(raw):
        message = message_from_bytes(raw)
        auto = is_auto_reply(message)
        text = message.text
    else:
        auto, text = None, raw.decode("utf-8", errors="replace")
    why, logistics = [], []
    if auto:
        result = {"decisions": {}, "review": True, "reason": f"auto-reply: {auto}"}
    else:
        decision = decide(text, ids)
        result = {
            "decisions": {str(pid): outcome for pid, outcome in decision.decisions.items()},
            "review": decision.review,
            "reason": decision.reason,
        }
        why, logistics = decision.evidence, decision.logistics
    if getattr(args, "json", False):
        print(json.dumps(result, ensure_ascii=False))
        return 0
    if result["review"]:
        print(f"REVIEW: {result['reason']}")
    else:
        print("Decided automatically:")
        for pid, outcome in result["decisions"].items():
            print(f"  Patient {pid}: {outcome}")
        print(f"({result['reason']})")
    for line in why:
        print(f"  weil: {line}")
    for line in logistics:
        print(f"  Hinweis (Notiz, keine Entscheidung): {line}")
    own = strip_quoted(text)
    if own:
        print("Reply text read:")
        for line in own.splitlines()[:20]:
            print(f"  | {line}")
    return 0


def read_reply(path: Path):
    """A reply file as a ``Message``: a raw RFC 5322 message, else plain text."""
    raw = path.read_bytes()
    if _looks_like_message(raw):
        return message_from_bytes(raw)
    return message_from_parts(
        subject="AW: Suche Psychotherapieplätze",
        sender="praxis@example.de",
        recipients=["antwort@example.org"],
        text=raw.decode("utf-8", errors="replace"),
    )


def _expectations(directory: Path, cache: dict) -> dict:
    if directory not in cache:
        path = directory / "expected.json"
        try:
            cache[directory] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            cache[directory] = {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
    return cache[directory]


def load_cases(files: list[str], patients: list[int] | None = None) -> list[reply_stats.Case]:
    """One ``Case`` per file; ``ValueError`` names a file that cannot be read or has no
    patients (neither in an ``expected.json`` beside it nor ``patients``)."""
    cache: dict = {}
    cases = []
    for name in files:
        path = Path(name)
        if path.name == "expected.json":
            continue
        listed = _expectations(path.parent, cache).get(path.name) or {}
        ids = listed.get("patients") or patients
        if not ids:
            raise ValueError(f"{name}: no patients (not in expected.json; give --patients)")
        try:
            message = read_reply(path)
        except OSError as exc:
            raise ValueError(f"cannot read {name}: {exc.strerror or exc}") from None
        decision = understand(message, [int(i) for i in ids])
        cases.append(reply_stats.Case(path.name, decision, listed.get("expected")))
    return cases


def cmd_stats(args) -> int:
    try:
        ids = _patients(args.patients) if args.patients else None
        cases = load_cases(args.files, ids)
    except ValueError as exc:
        return _error(str(exc))
    if not cases:
        return _error("no reply files given")
    print(json.dumps(reply_stats.evaluate(cases), ensure_ascii=False, indent=1))
    return 0
