"""The watchlist (涉诈库): upsert, bulk import (CSV/STIX), export, search, edit and partner checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from fanzha.api.deps import SessionDep, require
from fanzha.intel import csvio, stix
from fanzha.intel.matcher import Match, WatchlistIndex, verdict
from fanzha.intel.watchlist import KINDS, SOURCES, InvalidIndicator, normalize_value
from fanzha.privacy import mask_value
from fanzha.store import repo_audit, repo_watchlist
from fanzha.store.repo_users import Principal
from fanzha.store.repo_watchlist import EntryRow

router = APIRouter(prefix="/v1/watchlist", tags=["watchlist 涉诈库"])
_UNPROCESSABLE = status.HTTP_422_UNPROCESSABLE_CONTENT
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
STIX_TYPES = ("application/stix+json", "application/json")


class EntryIn(BaseModel):
    kind: str = Field(max_length=16, description=f"one of {', '.join(KINDS)}")
    value: str = Field(min_length=1, max_length=1024, description="any spelling; stored normalised")
    fraud_type: str | None = Field(default=None, max_length=40)
    source: str = Field(default="analyst", description=f"one of {', '.join(SOURCES)}")
    confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    status: Literal["active", "whitelisted", "expired"] = "active"
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    expires_at: datetime | None = None
    report_count: int = Field(default=0, ge=0, le=2**31 - 1)
    note: str = Field(default="", max_length=2000)


# The stored row is the answer: one shape for the repository, the API and the CLI.
EntryOut = EntryRow


class EntryPatch(BaseModel):
    status: Literal["active", "whitelisted", "expired"] | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    expires_at: datetime | None = Field(default=None, description="null clears the expiry")
    note: str | None = Field(default=None, max_length=2000)


class RowErrorOut(BaseModel):
    row: int | str
    error: str


class ImportOut(BaseModel):
    rows: int
    valid: int
    inserted: int
    updated: int
    errors: list[RowErrorOut]
    more_errors: int = Field(description="errors beyond the ones listed")


class PageOut(BaseModel):
    items: list[EntryOut]
    next_after_id: int | None


class CheckItem(BaseModel):
    kind: str = Field(max_length=16)
    value: str = Field(min_length=1, max_length=1024)


class CheckIn(BaseModel):
    items: list[CheckItem] = Field(min_length=1)


MatchOut = Match


class CheckResult(BaseModel):
    kind: str
    value: str
    verdict: Literal["fraud", "allowlisted", "unknown", "invalid"]
    matches: list[MatchOut]
    error: str | None = None


class CheckOut(BaseModel):
    results: list[CheckResult]


def load_state(app: FastAPI) -> None:
    app.state.watchlist = repo_watchlist.load_index(app.state.engine)


def index_of(request: Request) -> WatchlistIndex:
    index: WatchlistIndex | None = getattr(request.app.state, "watchlist", None)
    if index is None:
        index = request.app.state.watchlist = repo_watchlist.load_index(request.app.state.engine)
    return index


def refresh(request: Request, rows: list[EntryRow]) -> None:
    """Bring the in-memory index in line with rows just committed."""
    index = index_of(request)
    for row in rows:
        if row.matchable():
            index.add(row.index_row())
        else:
            index.remove(row.kind, row.value)


@router.post("", response_model=EntryOut, status_code=201, responses={200: {"model": EntryOut}})
def upsert_entry(
    body: EntryIn,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst"))],
) -> EntryOut:
    """Add one entry, or merge into the existing entry of the same kind and value (201 new, 200 merged)."""
    try:
        item = csvio.item_from_fields(body.model_dump(mode="json"))
    except (InvalidIndicator, ValueError) as exc:
        raise HTTPException(_UNPROCESSABLE, str(exc)) from exc
    row, created = repo_watchlist.upsert_one(session, item, principal.username)
    session.commit()
    refresh(request, [row])
    response.status_code = 201 if created else 200
    return row


@router.post("/import", response_model=ImportOut)
async def import_entries(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst"))],
    source: Annotated[str | None, Query(description="source of rows naming none (default partner)")] = None,
) -> ImportOut:
    """Import a CSV file (text/csv) or a STIX 2.1 bundle (application/stix+json or application/json).

    Rows that fail validation are listed with their line (CSV) or object index (STIX); the valid rows are
    imported together in one transaction, or not at all.
    """
    if source is not None and source not in SOURCES:
        raise HTTPException(_UNPROCESSABLE, f"unknown source {source!r}; sources are {', '.join(SOURCES)}")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in CSV_TYPES + STIX_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send text/csv or application/stix+json, not {content_type or 'no content type'}",
        )
    data = await request.body()
    return await run_in_threadpool(_import, request, session, principal, data, content_type, source)


def _import(
    request: Request, session: Session, principal: Principal, data: bytes, content_type: str,
    source: str | None,
) -> ImportOut:
    try:
        if content_type in CSV_TYPES:
            parsed = csvio.read_csv(csvio.decode(data), source)
        else:
            parsed = stix.read_bundle(data, source)
    except ValueError as exc:
        raise HTTPException(_UNPROCESSABLE, str(exc)) from exc
    stats = repo_watchlist.upsert(session, parsed.items, principal.username, source_label=source,
                                  return_rows=True)
    session.commit()
    refresh(request, stats.rows)
    return ImportOut(
        rows=parsed.rows, valid=len(parsed.items), inserted=stats.inserted, updated=stats.updated,
        errors=[RowErrorOut(row=e.row, error=e.error) for e in parsed.errors],
        more_errors=parsed.truncated_errors,
    )


@router.get("/export")
def export_entries(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst", "auditor"))],
    format: Annotated[Literal["csv", "stix"], Query()] = "csv",
    kind: Annotated[str | None, Query(max_length=16)] = None,
    status_: Annotated[Literal["active", "whitelisted", "expired"] | None, Query(alias="status")] = None,
) -> StreamingResponse:
    """Every entry (or one kind/status) as CSV or a STIX 2.1 bundle, streamed."""
    repo_audit.record(session, principal.username, "export", repo_watchlist.ENTITY, format,
                      after={"format": format, "kind": kind, "status": status_})
    session.commit()
    sessions = request.app.state.sessions

    def entries() -> Iterator[EntryRow]:
        # Its own session: the request's session is closed before a streamed body is sent.
        with sessions() as own:
            yield from repo_watchlist.iter_entries(own, kind=kind, status=status_)

    if format == "stix":
        return StreamingResponse(stix.write_bundle(entries()), media_type="application/stix+json",
                                 headers={"Content-Disposition": 'attachment; filename="watchlist.json"'})
    return StreamingResponse(csvio.write_csv(entries()), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="watchlist.csv"'})


@router.get("", response_model=PageOut)
def search_entries(
    session: SessionDep,
    _: Annotated[Principal, Depends(require("analyst", "auditor"))],
    kind: Annotated[str | None, Query(max_length=16)] = None,
    status_: Annotated[Literal["active", "whitelisted", "expired"] | None, Query(alias="status")] = None,
    fraud_type: Annotated[str | None, Query(max_length=40)] = None,
    prefix: Annotated[str | None, Query(max_length=512, description="start of the normalised value")] = None,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PageOut:
    """Entries in id order; pass the returned next_after_id as after_id for the next page."""
    rows = repo_watchlist.search(session, kind=kind, status=status_, fraud_type=fraud_type, prefix=prefix,
                                 after_id=after_id, limit=limit)
    return PageOut(items=rows, next_after_id=rows[-1].id if len(rows) == limit else None)


@router.get("/{entry_id}", response_model=EntryOut)
def get_entry(
    entry_id: Annotated[int, Path(ge=1, le=2**62)],
    session: SessionDep,
    _: Annotated[Principal, Depends(require("analyst", "auditor"))],
) -> EntryOut:
    row = repo_watchlist.get(session, entry_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no watchlist entry {entry_id}")
    return row


@router.patch("/{entry_id}", response_model=EntryOut)
def patch_entry(
    entry_id: Annotated[int, Path(ge=1, le=2**62)],
    body: EntryPatch,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst"))],
) -> EntryOut:
    """Change status (allow-list with "whitelisted"), confidence, expiry or note; every change is audited."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    if "expires_at" in changes and changes["expires_at"] is not None:
        changes["expires_at"] = csvio.parse_time(changes["expires_at"].isoformat(), "expires_at")
    if not changes:
        raise HTTPException(_UNPROCESSABLE, "nothing to change: give status, confidence, expires_at or note")
    row = repo_watchlist.update(session, entry_id, principal.username, **changes)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no watchlist entry {entry_id}")
    session.commit()
    refresh(request, [row])
    return row


def masker(role: str) -> Callable[[str, str], str]:
    """Banks need card numbers but not phone numbers; carriers the reverse; analysts see both."""
    hidden = {"bank": ("phone",), "telecom": ("bank_card", "payment_account")}.get(role, ())

    def mask(kind: str, value: str) -> str:
        # Service lines (95588, 400…) are kept as bare digits and are nobody's personal number.
        if kind not in hidden or (kind == "phone" and not value.startswith("+")):
            return value
        return mask_value("bank_card" if kind == "payment_account" else kind, value)

    return mask


def match_out(m: Match, mask: Callable[[str, str], str]) -> Match:
    return replace(m, value=mask(m.kind, m.value))


@router.post("/check", response_model=CheckOut)
def check(
    body: CheckIn,
    request: Request,
    principal: Annotated[Principal, Depends(require("bank", "telecom", "analyst"))],
) -> CheckOut:
    """Check values against the watchlist: verdict and matching entries for each, in request order."""
    limit = request.app.state.settings.max_batch_items
    if len(body.items) > limit:
        raise HTTPException(_UNPROCESSABLE, f"at most {limit} items per check")
    index = index_of(request)
    mask = masker(principal.role)
    results = []
    for item in body.items:
        try:
            value = normalize_value(item.kind, item.value)
        except InvalidIndicator as exc:
            results.append(CheckResult(kind=item.kind, value=mask(item.kind, item.value), verdict="invalid",
                                       matches=[], error=str(exc)))
            continue
        matches = index.match_normalized(item.kind, value)
        results.append(CheckResult(kind=item.kind, value=mask(item.kind, value),
                                   verdict=verdict(matches),
                                   matches=[match_out(m, mask) for m in matches]))
    return CheckOut(results=results)
