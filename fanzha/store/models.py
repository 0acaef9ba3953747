"""Database schema. Times are stored as naive UTC; every change goes through Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: DateTime()}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessToken(Base):
    __tablename__ = "access_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # "session" (login) or "apikey"
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEntry(Base):
    """Append-only: database triggers refuse UPDATE and DELETE on this table."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class WatchlistEntry(Base):
    __tablename__ = "watchlist"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_watchlist_kind_value"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(512))
    fraud_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    source: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float, default=0.8)
    status: Mapped[str] = mapped_column(String(12), default="active")
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(Text, default="")


class Report(Base):
    """A public tip-off (举报线索); duplicates of a pending report are merged and counted."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_kind_value_status", "kind", "value", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(512))
    fraud_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    message_text: Mapped[str] = mapped_column(Text, default="")
    screenshot_text: Mapped[str] = mapped_column(Text, default="")
    region_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_reported_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_reported_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    detection: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Warning(Base):
    """A warning task (预警劝阻): contact a person who is in contact with fraud now."""

    __tablename__ = "warnings"
    __table_args__ = (
        Index("ix_warnings_region_status", "region_code", "status"),
        Index("ix_warnings_dedupe", "dedupe_key", "created_at"),
        Index("ix_warnings_person_account", "person_account", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    person_account: Mapped[str | None] = mapped_column(String(64), nullable=True)
    person_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region_code: Mapped[str] = mapped_column(String(6))
    source: Mapped[str] = mapped_column(String(16))
    fraud_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    risk: Mapped[int] = mapped_column(Integer, default=0)
    amount_at_stake: Mapped[float] = mapped_column(Float, default=0.0)
    priority: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(12), default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    dedupe_key: Mapped[str] = mapped_column(String(96))
    merged_count: Mapped[int] = mapped_column(Integer, default=1)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_contact_at: Mapped[datetime | None] = mapped_column(nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)


class ContactAttempt(Base):
    __tablename__ = "warning_contacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warnings.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(12))
    reached: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")


class Case(Base):
    """A reported fraud (警情); a warning whose person was already defrauded opens a placeholder case."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(16), default="placeholder")
    fraud_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TransferCheckRecord(Base):
    """A transfer check (实时转账核验) as decided, with its 三问一确认 answers; retries find it by key."""

    __tablename__ = "transfer_checks"
    __table_args__ = (
        UniqueConstraint("actor", "idempotency_key", name="uq_transfer_checks_actor_key"),
        Index("ix_transfer_checks_created_at", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the decision's check_id
    actor: Mapped[str] = mapped_column(String(64))  # who asked (user name or API key owner)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of the request content
    payer: Mapped[str] = mapped_column(String(64))
    payee: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    decision: Mapped[str] = mapped_column(String(8))
    risk: Mapped[int] = mapped_column(Integer)
    rules_version: Mapped[str] = mapped_column(String(32))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)  # the Decision as returned
    answered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CaseTransfer(Base):
    """A victim's payment (受害人转账) registered to a case when the case is traced: traces of other cases
    then follow its money too and report it as another victim's in the same accounts (串并, 同步止付).
    A payment belongs to one case; the first registration stands."""

    __tablename__ = "case_transfers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    transfer_id: Mapped[str] = mapped_column(String(128), unique=True)
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
