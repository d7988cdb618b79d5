"""Intake of therapists and patients from JSON or CSV files (``psymatch import``).

Every row is validated on its own (``psymatch.domain.validation``); valid rows
are upserted by ``external_id``, invalid rows are reported with their position
and written nowhere. The file formats are described in docs/import-formats.md.

Semantics:

- Idempotent: a row whose given fields all equal the stored values is counted
  ``unchanged`` and not written, so ``updated_at`` keeps its value.
- An update writes only the fields the row gives; nothing is cleared or reset.
- New rows, and rows whose ``plz`` changed, get the PLZ centroid as location
  (``geo_quelle='plz'``, ``geo_plz``).
- An ``external_id`` seen earlier in the same file rejects the later row.

Speed: rows are processed in chunks; for each chunk one transaction loads the
stored rows of its external ids, inserts new rows with multi-row INSERTs and
updates changed rows. Chunks commit one after the other: an interrupted import
leaves whole chunks behind and simply runs again.

Audit: every import, also one that fails, writes one audit row naming the staff
member, with the file name and the counts (``import_file``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from tqdm import tqdm

from db import database
from db import plz as plz_data
from db.models import Patient, Therapist, utcnow
from psymatch import settings
from psymatch.domain import validation
from psymatch.domain.validation import RowError

from . import audit, people

MODELS = {"therapists": Therapist, "patients": Patient}
FORMATS = ("json", "csv")
CHUNK_ROWS = 500


class ImportFileError(Exception):
    """The file as a whole cannot be imported: unreadable, not JSON/CSV, wrong shape."""


# --- report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """One rejected row: where it is, which record, which field, why."""

    unit: str  # "line" (CSV, physical line, header = 1) or "index" (JSON, 0-based)
    number: int
    external_id: str | None
    field: str
    reason: str

    @property
    def position(self) -> str:
        return f"{self.unit} {self.number}"

    def __str__(self) -> str:
        who = f" (external_id={self.external_id})" if self.external_id else ""
        return f"{self.position}{who}: {self.field}: {self.reason}"

    def as_dict(self) -> dict:
        return {
            self.unit: self.number,
            "external_id": self.external_id,
            "field": self.field,
            "reason": self.reason,
            "message": str(self),
        }


@dataclass
class ImportReport:
    kind: str
    path: str
    format: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.kind}: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.rejected)} rejected"
        )

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "file": self.path,
            "format": self.format,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected_count": len(self.rejected),
            "rejected": [r.as_dict() for r in self.rejected],
        }


# --- reading files ------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRow:
    """One record of the file with its position; ``error`` if it is broken already."""

    unit: str
    number: int
    raw: object
    error: RowError | None = None

    @property
    def external_id(self) -> str | None:
        """The trimmed external id as written, for messages and duplicate detection."""
        value = self.raw.get("external_id") if isinstance(self.raw, dict) else None
        if not isinstance(value, str) or not value.strip():
            return None
        return value.strip()


def format_for(path: Path, fmt: str | None) -> str:
    """The explicit format, or the one the file name ends with."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ImportFileError(f"unknown format {fmt!r} (use json or csv)")
        return fmt
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ImportFileError(
            f"cannot tell the format of {path} from its name; pass --format json or --format csv"
        )
    return suffix


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_json(path: Path) -> list[SourceRow]:
    """A JSON array of objects; each element becomes one row (position = index)."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, list):
        raise ImportFileError(f"{path}: expected a JSON array of objects at the top level")
    return [SourceRow("index", i, item) for i, item in enumerate(data)]


def _delimiter(header_line: str) -> str:
    """Comma, unless the header uses semicolons (or tabs) and no commas."""
    if "," not in header_line:
        for candidate in (";", "\t"):
            if candidate in header_line:
                return candidate
    return ","


def _header(cells: list[str], kind: str, path: Path) -> list[str]:
    """Trimmed column names; unnamed columns get a descriptive key (ignored if empty)."""
    names = [c.strip() or f"column {i + 1} (no header)" for i, c in enumerate(cells)]
    seen = set()
    for name in names:
        if name in seen:
            raise ImportFileError(f"{path}: column {name!r} appears twice in the header")
        seen.add(name)
    missing = [n for n in validation.REQUIRED_FIELDS if n not in seen]
    if missing:
        raise ImportFileError(
            f"{path}: the CSV header lacks the required column(s) {', '.join(missing)} "
            f"for {kind} (header line: {', '.join(names)[:200]})"
        )
    return names


def read_csv(path: Path, kind: str) -> list[SourceRow]:
    """A header row of field names, then one record per row (position = physical line).

    A quoted cell may span lines; the reported line is where its record starts.
    Blank lines are skipped; a row with more cells than the header is rejected,
    missing trailing cells count as empty.
    """
    text = _read_text(path)
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=_delimiter(first_line), strict=True
    )
    rows: list[SourceRow] = []
    try:
        header_cells = next(reader, None)
        if not header_cells:
            raise ImportFileError(f"{path} is empty (expected a header row of field names)")
        names = _header(header_cells, kind, path)
        last_line = reader.line_num
        for cells in reader:
            start, last_line = last_line + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            rows.append(_csv_row(start, names, cells))
    except csv.Error as exc:
        raise ImportFileError(f"{path} is not valid CSV: {exc} (line {reader.line_num})") from None
    return rows


def _csv_row(line: int, names: list[str], cells: list[str]) -> SourceRow:
    raw = dict(zip(names, cells, strict=False))
    error = None
    if len(cells) > len(names):
        error = RowError("row", f"{len(cells)} values but the header has {len(names)} columns")
    return SourceRow("line", line, raw, error)


def read_rows(path: Path, fmt: str, kind: str) -> list[SourceRow]:
    return read_json(path) if fmt == "json" else read_csv(path, kind)


# --- writing ------------------------------------------------------------------------------


def _chunks(rows: list, size: int) -> Iterator[list]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _insert_batch_size(columns: int) -> int:
    """Rows per multi-row INSERT that stay below the bound-parameter limit."""
    if database.is_postgres():
        limit = 65535
    else:
        limit = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
    return max(1, min(CHUNK_ROWS, limit // columns))


def _location(values: dict, centroids: dict) -> dict:
    lat, lon = centroids[values["plz"]]
    return {"latitude": lat, "longitude": lon, "geo_quelle": "plz", "geo_plz": values["plz"]}


class _Importer:
    """Validates and writes one file's rows chunk by chunk, filling the report."""

    def __init__(self, kind: str, report: ImportReport, centroids: dict, today: dt.date):
        self.model = MODELS[kind]
        self.validate = validation.VALIDATORS[kind]
        self.report = report
        self.centroids = centroids
        self.today = today
        self.first_seen: dict[str, str] = {}
        self.fields = [f for f in self.model._meta.sorted_fields if f.name != "id"]

    def reject(self, row: SourceRow, error: RowError) -> None:
        eid = row.external_id
        if eid is not None and len(eid) > 40:
            eid = eid[:40] + "..."
        self.report.rejected.append(Rejection(row.unit, row.number, eid, error.field, error.reason))

    def check(self, row: SourceRow) -> dict:
        """The row's normalised values; RowError for a broken, invalid or repeated row."""
        if row.error is not None:
            raise row.error
        eid = row.external_id
        if eid is not None:
            if eid in self.first_seen:
                raise RowError(
                    "external_id", f"duplicate external_id, first seen at {self.first_seen[eid]}"
                )
            self.first_seen[eid] = f"{row.unit} {row.number}"
        return self.validate(row.raw, self.centroids, today=self.today)

    def process(self, chunk: list[SourceRow]) -> None:
        valid = []
        for row in chunk:
            try:
                valid.append((row, self.check(row)))
            except RowError as error:
                self.reject(row, error)
        if valid:
            self.write(valid)

    def stored(self, external_ids: list[str]) -> dict[str, dict]:
        query = self.model.select().where(self.model.external_id.in_(external_ids))
        if database.is_postgres():
            query = query.for_update()
        return {row["external_id"]: row for row in query.dicts()}

    def new_row(self, values: dict, now: dt.datetime) -> dict:
        """A complete row (same keys for every row, as a multi-row INSERT needs)."""
        row = {}
        for f in self.fields:
            row[f.name] = f.default() if callable(f.default) else f.default
        row.update(values)
        row.update(_location(values, self.centroids), created_at=now, updated_at=now)
        if self.model is Patient:  # the person search's blind index (operations/people.py)
            row["suchindex"] = people.index_value(
                row["vorname"], row["nachname"], row["email"], row["telefon"]
            )
        return row

    def changes(self, values: dict, stored: dict, now: dt.datetime) -> dict:
        """Given fields that differ from the stored row, plus location and timestamp."""
        validation.check_consistency({**stored, **values})
        changed = {name: value for name, value in values.items() if stored[name] != value}
        if not changed:
            return {}
        if self.model is Patient and changed.keys() & {"vorname", "nachname", "email", "telefon"}:
            merged = {**stored, **values}
            changed["suchindex"] = people.index_value(
                merged["vorname"], merged["nachname"], merged["email"], merged["telefon"]
            )
        if changed.keys() & {"plz", "strasse", "ort"}:
            # a moved address: back to the PLZ centroid until the street geocoder
            # (which picks records whose geo_quelle is 'plz') has placed the new one
            changed.update(_location(values, self.centroids))
        changed["updated_at"] = now
        return changed

    def write(self, valid: list[tuple[SourceRow, dict]]) -> None:
        now = utcnow()
        inserts, updates, unchanged = [], [], 0
        with database.write_transaction():
            stored = self.stored([values["external_id"] for _, values in valid])
            for row, values in valid:
                existing = stored.get(values["external_id"])
                if existing is None:
                    inserts.append(self.new_row(values, now))
                    continue
                try:
                    changed = self.changes(values, existing, now)
                except RowError as error:
                    self.reject(row, error)
                    continue
                if changed:
                    updates.append((existing["id"], changed))
                else:
                    unchanged += 1
            for batch in _chunks(inserts, _insert_batch_size(len(self.fields))):
                self.model.insert_many(batch).as_rowcount().execute()
            for row_id, changed in updates:
                self.model.update(changed).where(self.model.id == row_id).execute()
        self.report.created += len(inserts)
        self.report.updated += len(updates)
        self.report.unchanged += unchanged


def local_today() -> dt.date:
    """Today's date in the platform time zone (docs/domain.md conventions)."""
    return dt.datetime.now(ZoneInfo(settings.get().TIMEZONE)).date()


def import_file(
    kind: str, path, *, actor: str, fmt: str | None = None, progress: bool = True
) -> ImportReport:
    """Import therapists or patients from a JSON or CSV file; see the module docstring.

    Raises ``ImportFileError`` when the file as a whole cannot be read; problems
    of single rows end up in ``ImportReport.rejected``. The database must be
    bound (``db.database.init``) and at the head schema version.

    One audit row (action ``import``) names ``actor`` (the staff member, required) with
    the kind, the file name, the format and the counts. The chunks commit one by one, so
    the row is written at the end with the real counts, also when the file could not be
    read or the import stopped partway (``failed``: the kind of error, and the counts of
    the chunks that were committed). It holds no row contents: rejected rows appear only
    as a count, error messages (which may quote the file) not at all.
    """
    if kind not in MODELS:
        raise ValueError(f"kind must be 'therapists' or 'patients', got {kind!r}")
    actor = audit.actor_name(actor)
    path = Path(path)
    report = ImportReport(kind=kind, path=str(path), format=fmt or "")
    rows: list[SourceRow] = []
    try:
        report.format = fmt = format_for(path, fmt)
        rows = read_rows(path, fmt, kind)
        with database.connection():
            plz_data.ensure_loaded()
            importer = _Importer(kind, report, plz_data.centroid_map(), local_today())
            show = progress and sys.stderr.isatty()
            with tqdm(total=len(rows), desc=f"import {kind}", unit="row", disable=not show) as bar:
                for chunk in _chunks(rows, CHUNK_ROWS):
                    importer.process(chunk)
                    bar.update(len(chunk))
    except BaseException as exc:  # an interrupt too: the audit row says how far it got
        audit.write_after_failure(actor, "import", kind, _audit_details(report, len(rows)), exc)
        raise
    # Rows failing the check against stored values are found while writing,
    # after the chunk's other rejections: restore file order.
    report.rejected.sort(key=lambda rejection: rejection.number)
    audit.write(actor, "import", kind, details=_audit_details(report, len(rows)))
    return report


def _audit_details(report: ImportReport, rows: int) -> dict:
    return {
        "kind": report.kind,
        "file": Path(report.path).name,
        "format": report.format or None,
        "rows": rows,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": len(report.rejected),
    }
