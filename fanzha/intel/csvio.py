"""Watchlist CSV import and export; a bad row is reported with its line number and the others still load."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fanzha.intel.watchlist import KINDS, SOURCES, STATUSES, InvalidIndicator, WatchlistItem, normalize_value

HEADER = (
    "kind", "value", "fraud_type", "source", "confidence", "status", "first_seen", "last_seen", "expires_at",
    "note",
)
OPTIONAL = ("report_count",)
MAX_ERRORS = 1000  # a file that is all errors should not produce an answer larger than itself


@dataclass(slots=True)
class RowError:
    row: int | str  # CSV: line number (header = 1); STIX: "objects[i]"
    error: str


@dataclass(slots=True)
class ParseResult:
    items: list[WatchlistItem] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    truncated_errors: int = 0

    def error(self, row: int | str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(row, message))
        else:
            self.truncated_errors += 1


class CsvFormatError(ValueError):
    """The file as a whole cannot be read (no header, unknown columns)."""


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM); GB18030 for files saved by Chinese Excel."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            raise CsvFormatError("the file is neither UTF-8 nor GB18030 text") from None


def parse_time(raw: str, name: str) -> datetime | None:
    """ISO 8601 date or date-time; zoned times are converted to the naive UTC the database stores."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} is not an ISO 8601 date or time: {raw!r}") from None
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def item_from_fields(fields: Mapping[str, Any], default_source: str | None = None) -> WatchlistItem:
    """A validated, normalised item from one record's fields (strings or None); ValueError says why not."""

    def text(name: str) -> str:
        value = fields.get(name)
        return "" if value is None else str(value).strip()

    kind = text("kind").lower()
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    value = normalize_value(kind, text("value"))
    source = text("source") or default_source or "partner"
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; sources are {', '.join(SOURCES)}")
    status = text("status") or "active"
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; statuses are {', '.join(STATUSES)}")
    confidence = 0.8
    if text("confidence"):
        try:
            confidence = float(text("confidence"))
        except ValueError:
            raise ValueError(f"confidence is not a number: {text('confidence')!r}") from None
        if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
            raise ValueError(f"confidence must be between 0 and 1, not {text('confidence')}")
    fraud_type = text("fraud_type") or None
    if fraud_type is not None and len(fraud_type) > 40:
        raise ValueError("fraud_type has at most 40 characters")
    report_count = 0
    if text("report_count"):
        if not text("report_count").isdigit():
            raise ValueError(f"report_count is not a whole number: {text('report_count')!r}")
        report_count = min(int(text("report_count")), 2**31 - 1)
    first_seen = parse_time(text("first_seen"), "first_seen")
    last_seen = parse_time(text("last_seen"), "last_seen")
    if first_seen and last_seen and first_seen > last_seen:
        raise ValueError("first_seen is after last_seen")
    note = text("note")
    if len(note) > 2000:
        raise ValueError("note has at most 2000 characters")
    return WatchlistItem(
        kind=kind, value=value, fraud_type=fraud_type, source=source, confidence=confidence, status=status,
        first_seen=first_seen, last_seen=last_seen, expires_at=parse_time(text("expires_at"), "expires_at"),
        note=note, report_count=report_count,
    )


def read_csv(text: str, default_source: str | None = None) -> ParseResult:
    """Items of a CSV file with the HEADER columns (kind and value required, any order)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CsvFormatError("empty file: expected a header line " + ",".join(HEADER)) from None
    except csv.Error as exc:
        raise CsvFormatError(f"line 1: {exc}") from None
    unknown = [h for h in header if h not in HEADER and h not in OPTIONAL]
    if unknown or "kind" not in header or "value" not in header:
        raise CsvFormatError(
            f"header must name kind and value, and only columns among {','.join(HEADER + OPTIONAL)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    result = ParseResult()
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.error(reader.line_num, f"unreadable CSV: {exc}")
            continue
        if not any(cell.strip() for cell in record):
            continue  # blank lines are not rows
        result.rows += 1
        if len(record) != len(header):
            result.error(reader.line_num, f"expected {len(header)} columns, found {len(record)}")
            continue
        try:
            result.items.append(item_from_fields(dict(zip(header, record, strict=True)), default_source))
        except (InvalidIndicator, ValueError) as exc:
            result.error(reader.line_num, str(exc))
    return result


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def write_csv(entries: Iterable[Any], chunk_rows: int = 2000) -> Iterator[str]:
    """CSV text in chunks (header first) for entries with the HEADER attributes, e.g. EntryRow."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for n, e in enumerate(entries, 1):
        writer.writerow([_cell(getattr(e, name)) for name in HEADER])
        if n % chunk_rows == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
