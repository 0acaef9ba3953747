"""Public reports (举报线索): intake with merging of duplicates, the analysts' queue, and review."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fanzha.cases.reports import ReportRequest
from fanzha.intel.watchlist import WatchlistItem
from fanzha.store import repo_audit, repo_watchlist
from fanzha.store.db import serialize
from fanzha.store.models import Report, WatchlistEntry, utcnow
from fanzha.store.repo_watchlist import EntryRow

PUBLIC_ACTOR = "public"


class ReportStateError(ValueError):
    """The report is not in a state that allows the change (e.g. reviewed twice)."""


def snapshot(report: Report) -> dict[str, Any]:
    """What the audit log keeps of a report: the indicator and its state, not the reporter's texts."""
    return {
        "kind": report.kind,
        "value": report.value,
        "fraud_type": report.fraud_type,
        "region_code": report.region_code,
        "status": report.status,
        "count": report.count,
        "reviewed_by": report.reviewed_by,
    }


def submit(
    session: Session, req: ReportRequest, detection: dict[str, Any] | None = None
) -> tuple[Report, bool]:
    """Store a tip-off, or count it against the pending report of the same indicator; True when merged."""
    now = utcnow()
    serialize(session, Report, f"report:{req.kind}:{req.value}")
    pending = session.scalar(
        select(Report)
        .where(Report.kind == req.kind, Report.value == req.value, Report.status == "pending")
        .order_by(Report.id)
        .limit(1)
    )
    if pending is not None:
        before = snapshot(pending)
        pending.count += 1
        pending.last_reported_at = now
        # Later reporters fill in what earlier ones left out; they never overwrite it.
        pending.fraud_type = pending.fraud_type or req.fraud_type
        pending.region_code = pending.region_code or req.region_code
        if not pending.message_text and req.message_text:
            pending.message_text = req.message_text
        if not pending.screenshot_text and req.screenshot_text:
            pending.screenshot_text = req.screenshot_text
        if detection is not None and _risk(detection) > _risk(pending.detection):
            pending.detection = detection
        session.flush()
        repo_audit.record(session, PUBLIC_ACTOR, "merge", "report", pending.id, before, snapshot(pending))
        return pending, True
    report = Report(
        kind=req.kind,
        value=req.value,
        fraud_type=req.fraud_type,
        message_text=req.message_text,
        screenshot_text=req.screenshot_text,
        region_code=req.region_code,
        status="pending",
        count=1,
        first_reported_at=now,
        last_reported_at=now,
        detection=detection,
    )
    session.add(report)
    session.flush()
    repo_audit.record(session, PUBLIC_ACTOR, "create", "report", report.id, after=snapshot(report))
    return report, False


def _risk(detection: dict[str, Any] | None) -> int:
    return int((detection or {}).get("risk") or 0)


def get(session: Session, report_id: int) -> Report | None:
    return session.get(Report, report_id)


def queue(
    session: Session, status: str = "pending", limit: int = 50, offset: int = 0
) -> tuple[list[Report], int]:
    """Reports of a status, most reported first and, among equals, the longest waiting first."""
    where = Report.status == status
    total = session.scalar(select(func.count(Report.id)).where(where)) or 0
    rows = session.scalars(
        select(Report)
        .where(where)
        .order_by(Report.count.desc(), Report.first_reported_at, Report.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def review(
    session: Session,
    report: Report,
    decision: str,
    actor: str,
    fraud_type: str | None = None,
    confidence: float | None = None,
) -> EntryRow | None:
    """Accept (the indicator enters or strengthens the watchlist) or reject a pending report.

    Runs in the caller's transaction, so the report, the watchlist entry and the audit entries commit
    together; on accept returns the stored watchlist entry, for the caller to refresh the matcher index.
    """
    if decision not in ("accept", "reject"):
        raise ValueError("decision must be accept or reject")
    serialize(session, Report, f"report:{report.kind}:{report.value}")
    session.refresh(report)
    if report.status != "pending":
        raise ReportStateError(f"report {report.id} was already reviewed ({report.status})")
    before = snapshot(report)
    report.status = "accepted" if decision == "accept" else "rejected"
    report.reviewed_by = actor
    report.reviewed_at = utcnow()
    report.fraud_type = fraud_type or report.fraud_type
    entry = None
    if decision == "accept":
        # The upsert keeps the larger report count, so the sum is computed here: every reporter counts.
        known = session.scalar(
            select(WatchlistEntry.report_count).where(
                WatchlistEntry.kind == report.kind, WatchlistEntry.value == report.value
            )
        )
        item = WatchlistItem(
            kind=report.kind,
            value=report.value,
            fraud_type=report.fraud_type,
            source="report",
            first_seen=report.first_reported_at,
            last_seen=report.last_reported_at,
            note=f"举报线索 #{report.id}",
            report_count=(known or 0) + report.count,
            **({"confidence": confidence} if confidence is not None else {}),
        )
        entry, _ = repo_watchlist.upsert_one(session, item, actor)
    session.flush()
    repo_audit.record(session, actor, decision, "report", report.id, before, snapshot(report))
    return entry
