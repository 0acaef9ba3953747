"""Warning tasks (预警劝阻) in the database: raise or merge, route, contact, close, escalate, count."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from fanzha.cases import warnings as domain
from fanzha.cases.warnings import WarningFacts, WarningRequest, WarningStats
from fanzha.settings import Settings
from fanzha.store import repo_audit
from fanzha.store.db import serialize
from fanzha.store.models import Case, ContactAttempt, User, Warning, utcnow

log = logging.getLogger("fanzha.warnings")
SYSTEM_ACTOR = "system"


class WarningStateError(ValueError):
    """The task is not in a state that allows the change (e.g. closed already)."""


@dataclass(slots=True, frozen=True)
class Escalation:
    warning_id: int
    priority: int
    from_assignee: int | None
    to_assignee: int | None


def snapshot(w: Warning) -> dict[str, Any]:
    """What the audit log keeps of a task; personal data masked, the row itself holds the raw values."""
    return {
        **domain.masked_person(w.person_phone, w.person_account, w.person_name),
        "region_code": w.region_code,
        "source": w.source,
        "fraud_type": w.fraud_type,
        "risk": w.risk,
        "amount_at_stake": w.amount_at_stake,
        "priority": w.priority,
        "status": w.status,
        "assignee_id": w.assignee_id,
        "outcome": w.outcome,
        "merged_count": w.merged_count,
        "escalated": w.escalated,
        "due_at": w.due_at,
        "case_id": w.case_id,
    }


def raise_warning(
    session: Session, req: WarningRequest, settings: Settings, actor: str, now: datetime | None = None
) -> tuple[Warning, bool]:
    """Open a task for the person, or merge into their open one of the last merge window; True when merged."""
    now = now or utcnow()
    key = req.dedupe_key
    serialize(session, Warning, f"warning:{key}")
    window_start = now - timedelta(hours=settings.warning_merge_hours)
    current = session.scalar(
        select(Warning)
        .where(Warning.dedupe_key == key, Warning.status == "open", Warning.created_at >= window_start)
        .order_by(Warning.created_at.desc(), Warning.id.desc())
        .limit(1)
    )
    if current is not None:
        _merge(session, current, req, settings, actor, now)
        return current, True
    prio = domain.priority(req.risk, req.amount_at_stake)
    assignee = route(session, req.region_code)
    w = Warning(
        person_phone=req.person_phone,
        person_account=req.person_account,
        person_name=req.person_name,
        region_code=req.region_code,
        source=req.source,
        fraud_type=req.fraud_type,
        risk=req.risk,
        amount_at_stake=req.amount_at_stake,
        priority=prio,
        status="open",
        assignee_id=assignee.id if assignee else None,
        dedupe_key=key,
        merged_count=1,
        escalated=False,
        detail=domain.merged_detail(None, {"source": req.source, **req.detail}, now),
        created_at=now,
        due_at=domain.due_at(now, prio, settings.warning_due_minutes),
    )
    session.add(w)
    session.flush()
    repo_audit.record(session, actor, "create", "warning", w.id, after=snapshot(w))
    return w, False


def _merge(
    session: Session, w: Warning, req: WarningRequest, settings: Settings, actor: str, now: datetime
) -> None:
    before = snapshot(w)
    w.merged_count += 1
    w.risk = max(w.risk, req.risk)
    w.amount_at_stake = max(w.amount_at_stake, req.amount_at_stake)
    # Never make a task less urgent than it is: an escalation may already have raised it.
    w.priority = min(w.priority, domain.priority(w.risk, w.amount_at_stake))
    w.due_at = min(w.due_at, domain.due_at(now, w.priority, settings.warning_due_minutes))
    w.fraud_type = w.fraud_type or req.fraud_type
    w.person_phone = w.person_phone or req.person_phone
    w.person_account = w.person_account or req.person_account
    w.person_name = w.person_name or req.person_name
    w.detail = domain.merged_detail(w.detail, {"source": req.source, **req.detail}, now)
    session.flush()
    repo_audit.record(session, actor, "merge", "warning", w.id, before, snapshot(w))


def route(session: Session, region_code: str, exclude: int | None = None) -> User | None:
    """The grid user for a region: the most specific covering region wins, then the fewest open tasks."""
    covering = domain.covering_regions(region_code)
    q = select(User).where(User.role == "grid", User.active.is_(True), User.region_code.in_(covering))
    if exclude is not None:
        q = q.where(User.id != exclude)
    users = list(session.scalars(q))
    if not users:
        return None
    load = count_open(session, [u.id for u in users])
    return min(users, key=lambda u: (covering.index(u.region_code or ""), load.get(u.id, 0), u.id))


def get(session: Session, warning_id: int) -> Warning | None:
    return session.get(Warning, warning_id)


def list_warnings(
    session: Session,
    *,
    status: str | None = None,
    region_prefix: str | None = None,
    escalated: bool | None = None,
    assignee_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Warning], int]:
    """Tasks, most urgent first (priority, then the nearest deadline)."""
    conds = []
    if status:
        conds.append(Warning.status == status)
    if region_prefix:
        conds.append(Warning.region_code.startswith(region_prefix, autoescape=True))
    if escalated is not None:
        conds.append(Warning.escalated.is_(escalated))
    if assignee_id is not None:
        conds.append(Warning.assignee_id == assignee_id)
    where = and_(True, *conds)
    total = session.scalar(select(func.count(Warning.id)).where(where)) or 0
    rows = session.scalars(
        select(Warning)
        .where(where)
        .order_by(Warning.priority, Warning.due_at, Warning.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def contacts(session: Session, warning_id: int) -> list[ContactAttempt]:
    return list(
        session.scalars(
            select(ContactAttempt)
            .where(ContactAttempt.warning_id == warning_id)
            .order_by(ContactAttempt.at, ContactAttempt.id)
        )
    )


def _lock_open(session: Session, w: Warning) -> None:
    """Re-read the task under its lock and refuse changes to a closed one."""
    serialize(session, Warning, f"warning:{w.dedupe_key}")
    session.refresh(w)
    if w.status != "open":
        raise WarningStateError(f"warning {w.id} is closed ({w.outcome})")


def record_contact(
    session: Session,
    w: Warning,
    user_id: int,
    actor: str,
    method: str,
    reached: bool,
    note: str = "",
    now: datetime | None = None,
) -> ContactAttempt:
    """Log an attempt to reach the person; the first one stops the clock for escalation."""
    if method not in domain.CONTACT_METHODS:
        raise ValueError(f"method must be one of {', '.join(domain.CONTACT_METHODS)}")
    _lock_open(session, w)
    now = now or utcnow()
    before = snapshot(w)
    attempt = ContactAttempt(
        warning_id=w.id, at=now, user_id=user_id, method=method, reached=reached, note=note
    )
    session.add(attempt)
    if w.first_contact_at is None:
        w.first_contact_at = now
    session.flush()
    after = {**snapshot(w), "contact": {"id": attempt.id, "method": method, "reached": reached}}
    repo_audit.record(session, actor, "contact", "warning", w.id, before, after)
    return attempt


def set_outcome(
    session: Session, w: Warning, outcome: str, actor: str, note: str = "", now: datetime | None = None
) -> Case | None:
    """Close the task with its outcome; a person already defrauded gets a placeholder case (警情)."""
    if outcome not in domain.OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(domain.OUTCOMES)}")
    _lock_open(session, w)
    now = now or utcnow()
    before = snapshot(w)
    case = None
    if outcome == "already_defrauded":
        case = Case(
            region_code=w.region_code,
            status="placeholder",
            fraud_type=w.fraud_type,
            summary=f"由预警 #{w.id} 转入（已被骗）。{note}".strip(),
            created_at=now,
        )
        session.add(case)
        session.flush()
        w.case_id = case.id
        repo_audit.record(
            session,
            actor,
            "create",
            "case",
            case.id,
            after={"region_code": case.region_code, "fraud_type": case.fraud_type, "warning_id": w.id},
        )
    w.status = "closed"
    w.outcome = outcome
    w.closed_at = now
    w.detail = {**(w.detail or {}), "outcome_note": note}
    session.flush()
    repo_audit.record(session, actor, "outcome", "warning", w.id, before, snapshot(w))
    return case


def escalate_overdue(
    session: Session, now: datetime | None = None, settings: Settings | None = None, actor: str = SYSTEM_ACTOR
) -> list[Escalation]:
    """Escalate open tasks nobody has contacted by their deadline.

    Each such task is flagged escalated, becomes one step more urgent, gets a new deadline for that
    priority, and moves to another grid user covering its region when there is one (else it stays). The
    escalation is audited and logged at WARNING; escalated tasks head the analysts' queue.
    A task missing its new deadline too is escalated again.
    """
    now = now or utcnow()
    base = (settings or Settings()).warning_due_minutes
    serialize(session, Warning, "warning:escalation")
    overdue = session.scalars(
        select(Warning)
        .where(Warning.status == "open", Warning.first_contact_at.is_(None), Warning.due_at < now)
        .order_by(Warning.priority, Warning.due_at, Warning.id)
        .with_for_update()
    )
    done = []
    for w in list(overdue):
        before = snapshot(w)
        w.escalated = True
        w.priority = domain.escalated_priority(w.priority)
        w.due_at = domain.due_at(now, w.priority, base)
        previous = w.assignee_id
        successor = route(session, w.region_code, exclude=previous)
        if successor is not None:
            w.assignee_id = successor.id
        history = list((w.detail or {}).get("escalations", []))
        history.append({"at": now.isoformat(timespec="seconds"), "from": previous, "to": w.assignee_id})
        w.detail = {**(w.detail or {}), "escalations": history}
        session.flush()
        repo_audit.record(session, actor, "escalate", "warning", w.id, before, snapshot(w))
        log.warning(
            "warning %s escalated to priority %s (assignee %s → %s)",
            w.id,
            w.priority,
            previous,
            w.assignee_id,
        )
        done.append(Escalation(w.id, w.priority, previous, w.assignee_id))
    return done


def stats(session: Session, date_from: date, date_to: date, region_prefix: str | None = None) -> WarningStats:
    """Statistics of the tasks created from date_from to date_to (both included, UTC days)."""
    start = datetime.combine(date_from, time.min)
    end = datetime.combine(date_to + timedelta(days=1), time.min)
    reached = exists().where(ContactAttempt.warning_id == Warning.id, ContactAttempt.reached.is_(True))
    q = select(
        Warning.created_at,
        Warning.region_code,
        Warning.status,
        Warning.outcome,
        Warning.first_contact_at,
        reached.label("reached"),
        Warning.escalated,
    ).where(Warning.created_at >= start, Warning.created_at < end)
    if region_prefix:
        q = q.where(Warning.region_code.startswith(region_prefix, autoescape=True))
    facts = [WarningFacts(*row) for row in session.execute(q)]
    return domain.summarize(facts, date_from, date_to, region_prefix)


def usernames(session: Session, user_ids: Sequence[int | None]) -> dict[int, str]:
    """Names of the given users (assignees shown to people rather than ids)."""
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).tuples().all())


def count_open(session: Session, assignee_ids: Sequence[int]) -> dict[int, int]:
    """Open tasks per assignee (the load that breaks routing ties)."""
    rows = session.execute(
        select(Warning.assignee_id, func.count(Warning.id))
        .where(Warning.status == "open", Warning.assignee_id.in_(list(assignee_ids)))
        .group_by(Warning.assignee_id)
    )
    return {int(a): int(n) for a, n in rows}
