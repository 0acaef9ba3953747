"""Public reports (我要举报): anyone may report an indicator; analysts review the queue into the watchlist."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from fanzha.api.deps import SessionDep, optional_principal, require
from fanzha.api.limits import RateLimiter, enforce
from fanzha.api.routes.watchlist import refresh as refresh_index
from fanzha.cases.reports import (
    MAX_TEXT_CHARS,
    InvalidReport,
    ReportRequest,
    check_fraud_type,
    detection_summary,
)
from fanzha.intel.watchlist import KINDS
from fanzha.privacy import mask_text
from fanzha.store import repo_reports
from fanzha.store.models import Report
from fanzha.store.repo_users import Principal

router = APIRouter(prefix="/v1/reports", tags=["reports 举报线索"])
log = logging.getLogger("fanzha.api.reports")
# Partners that forward reports in bulk (a carrier's 12321 feed, an app) may submit this many times more.
PARTNER_FACTOR = 20
THANKS = "感谢您的举报！线索已收到，反诈中心将尽快核查。如已转账，请立即拨打 110 或 96110。"


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: str = Field(description=f"one of {', '.join(KINDS)}", max_length=16)
    value: str = Field(min_length=1, max_length=512, description="the phone number, URL, account … reported")
    fraud_type: str | None = Field(default=None, max_length=40)
    message_text: str = Field(default="", max_length=MAX_TEXT_CHARS, description="the suspicious message")
    screenshot_text: str = Field(default="", max_length=MAX_TEXT_CHARS, description="OCR text of screenshots")
    region_code: str | None = Field(default=None, pattern=r"^\d{6}$")


class ReceiptOut(BaseModel):
    """What the reporter gets back: their receipt and what their own message looks like, nothing else."""

    receipt_id: int
    kind: str
    value: str
    message: str
    verdict: str | None = None
    advice: str | None = None


class ReportOut(BaseModel):
    id: int
    kind: str
    value: str
    fraud_type: str | None
    message_text: str
    screenshot_text: str
    region_code: str | None
    status: str
    count: int
    first_reported_at: datetime
    last_reported_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    detection: dict[str, Any] | None


class ReportPage(BaseModel):
    items: list[ReportOut]
    total: int
    limit: int
    offset: int


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept", "reject"]
    fraud_type: str | None = Field(default=None, max_length=40)
    confidence: float | None = Field(default=None, ge=0, le=1)


class ReviewOut(BaseModel):
    report: ReportOut
    watchlist_id: int | None = Field(description="the watchlist entry an accepted report went to")
    watchlist_status: str | None = Field(description="active, or whitelisted if the value is allow-listed")


def _known_types(request: Request) -> set[str] | None:
    detector = getattr(request.app.state, "detector", None)
    typology = getattr(detector, "typology", None)
    return set(typology.codes) if typology is not None else None


def load_state(app: FastAPI) -> None:
    app.state.report_limiter = RateLimiter(app.state.settings.report_rate_per_minute)


@router.post("", response_model=ReceiptOut, status_code=201,
             responses={200: {"description": "merged"}, 429: {"description": "too many reports"}})
def submit_report(
    body: ReportIn,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> ReceiptOut:
    """Report a fraud indicator; no login. A repeat of a pending report is counted, not duplicated (200).
    Rate limited per client (per IP, or per account for logged-in partners) so the queue cannot be flooded."""
    if getattr(request.app.state, "report_limiter", None) is None:
        load_state(request.app)
    enforce(request.app.state.report_limiter, request, principal, PARTNER_FACTOR,
            "举报提交过于频繁，请稍后再试 (too many reports; retry later)")
    try:
        req = ReportRequest(
            kind=body.kind,
            value=body.value,
            fraud_type=check_fraud_type(body.fraud_type, _known_types(request)),
            message_text=body.message_text,
            screenshot_text=body.screenshot_text,
            region_code=body.region_code,
        )
    except InvalidReport as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    detection = _detect(request, req.text_to_examine())
    report, merged = repo_reports.submit(session, req, detection_summary(detection) if detection else None)
    session.commit()
    if merged:
        response.status_code = status.HTTP_200_OK
    return ReceiptOut(
        receipt_id=report.id,
        kind=req.kind,
        value=req.value,
        message=THANKS,
        verdict=detection.verdict if detection else None,
        advice=detection.advice if detection else None,
    )


def _detect(request: Request, text: str) -> Any:
    """The detection of the reporter's text; a report is still taken if the detector cannot read it."""
    detector = getattr(request.app.state, "detector", None)
    if detector is None or not text.strip():
        return None
    try:
        return detector.detect(text)
    except (ValueError, RuntimeError) as exc:
        log.warning("report text not examined: %s", exc)
        return None


def _out(report: Report, principal: Principal) -> ReportOut:
    out = ReportOut.model_validate(report, from_attributes=True)
    if principal.role == "auditor":
        # Auditors check the process, not the people: texts may hold the reporter's own details.
        out.message_text = mask_text(out.message_text)
        out.screenshot_text = mask_text(out.screenshot_text)
    return out


@router.get("", response_model=ReportPage)
def report_queue(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst", "auditor"))],
    status_: Annotated[Literal["pending", "accepted", "rejected"], Query(alias="status")] = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ReportPage:
    """The review queue: most reported first, then the longest waiting."""
    rows, total = repo_reports.queue(session, status_, limit, offset)
    return ReportPage(items=[_out(r, principal) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/{report_id}/review", response_model=ReviewOut)
def review_report(
    report_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ReviewIn,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require("analyst"))],
) -> ReviewOut:
    """Accept (the indicator enters or strengthens the watchlist) or reject a pending report."""
    report = repo_reports.get(session, report_id)
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {report_id}")
    try:
        fraud_type = check_fraud_type(body.fraud_type, _known_types(request))
        entry = repo_reports.review(
            session, report, body.decision, principal.username, fraud_type, body.confidence
        )
    except InvalidReport as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except repo_reports.ReportStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    session.commit()
    if entry is not None:
        refresh_index(request, [entry])
    return ReviewOut(
        report=_out(report, principal),
        watchlist_id=entry.id if entry else None,
        watchlist_status=entry.status if entry else None,
    )
