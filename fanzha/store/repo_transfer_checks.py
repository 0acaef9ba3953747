"""Transfer checks in the database: store a decision once per idempotency key, record 三问一确认 answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fanzha.payments.check import Decision, TransferCheck
from fanzha.store import repo_audit
from fanzha.store.group_commit import Batch
from fanzha.store.models import AuditEntry, TransferCheckRecord, utcnow

ENTITY = "transfer_check"


class KeyConflict(ValueError):
    """The idempotency key was used before for a different request."""


class AnswerConflict(ValueError):
    """The check was answered by someone else after it was read."""


def by_key(session: Session, actor: str, key: str) -> TransferCheckRecord | None:
    q = select(TransferCheckRecord).where(
        TransferCheckRecord.actor == actor, TransferCheckRecord.idempotency_key == key
    )
    return session.scalars(q).first()


def get(session: Session, check_id: str) -> TransferCheckRecord | None:
    return session.get(TransferCheckRecord, check_id)


_CHECKS: Table = TransferCheckRecord.__table__  # type: ignore[assignment]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
_BY_KEY = select(TransferCheckRecord.fingerprint, TransferCheckRecord.result).where(
    TransferCheckRecord.actor == bindparam("actor"), TransferCheckRecord.idempotency_key == bindparam("key")
)


def replay(db: Session | Connection, actor: str, req: TransferCheck) -> Decision | None:
    """The stored decision for a retried request; KeyConflict when the key came with other content."""
    if req.idempotency_key is None:
        return None
    row = db.execute(_BY_KEY, {"actor": actor, "key": req.idempotency_key}).first()
    if row is None:
        return None
    if row.fingerprint != req.fingerprint():
        raise KeyConflict(req.idempotency_key)
    return Decision.from_dict(row.result)


def _record(actor: str, req: TransferCheck, decision: Decision) -> TransferCheckRecord:
    return TransferCheckRecord(
        id=decision.check_id, actor=actor, idempotency_key=req.idempotency_key, fingerprint=req.fingerprint(),
        payer=req.payer, payee=req.payee, amount_fen=req.amount_fen, decision=decision.decision,
        risk=decision.risk, rules_version=decision.rules_version, result=decision.to_dict(),
    )


def add(batch: Batch, actor: str, req: TransferCheck, decision: Decision) -> Decision:
    """Queue a new check and its audit entry as plain rows of a group commit: a reused idempotency key
    fails the batch, and the committer then retries this write alone with save(), which answers with the
    decision stored first."""
    now = utcnow()
    batch.insert(_CHECKS, {
        "id": decision.check_id, "actor": actor, "idempotency_key": req.idempotency_key,
        "fingerprint": req.fingerprint(), "payer": req.payer, "payee": req.payee,
        "amount_fen": req.amount_fen, "decision": decision.decision, "risk": decision.risk,
        "rules_version": decision.rules_version, "result": orjson.loads(decision.to_json()),
        "answered_by": None, "created_at": now, "updated_at": now,
    })
    batch.insert(_AUDIT, {
        "at": now, "actor": actor, "action": "check", "entity": ENTITY, "entity_id": decision.check_id,
        "before": None, "after": _summary(decision),
    })
    return decision


def save(session: Session, actor: str, req: TransferCheck, decision: Decision) -> Decision:
    """Store a new check and its audit entry; a concurrent retry that won the race gives its decision."""
    rec = _record(actor, req, decision)
    try:
        with session.begin_nested():
            session.add(rec)
            session.flush()
    except IntegrityError:
        stored = replay(session, actor, req)
        if stored is None:
            raise
        return stored
    repo_audit.record(session, actor, "check", ENTITY, decision.check_id, after=_summary(decision))
    return decision


def save_answers(session: Session, rec: TransferCheckRecord, actor: str, decision: Decision) -> None:
    """Store the answered decision, unless someone answered the same check since `rec` was read: then
    AnswerConflict, and nothing is written (two counters must not silently overwrite each other)."""
    before = _summary(Decision.from_dict(rec.result))
    seen = rec.updated_at
    done = session.execute(
        update(TransferCheckRecord)
        .where(TransferCheckRecord.id == rec.id, TransferCheckRecord.updated_at == seen)
        .values(result=decision.to_dict(), decision=decision.decision, risk=decision.risk,
                answered_by=actor, updated_at=max(utcnow(), seen + timedelta(microseconds=1)))
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        raise AnswerConflict(rec.id)
    repo_audit.record(session, actor, "answer", ENTITY, rec.id, before=before, after=_summary(decision))


def _summary(d: Decision) -> dict[str, Any]:
    # Decisions, not account ids, go to the audit log: the record itself is one join away.
    return {"decision": d.decision, "risk": d.risk, "rules_version": d.rules_version,
            "reasons": [r.code for r in d.reasons], "answers": d.answers}
