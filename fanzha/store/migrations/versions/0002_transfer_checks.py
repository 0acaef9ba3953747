"""transfer checks (实时转账核验) with their decisions and 三问一确认 answers

Revision ID: 0002_transfer_checks
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_transfer_checks"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transfer_checks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("payer", sa.String(length=64), nullable=False),
        sa.Column("payee", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("risk", sa.Integer(), nullable=False),
        sa.Column("rules_version", sa.String(length=32), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("answered_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("actor", "idempotency_key", name="uq_transfer_checks_actor_key"),
    )
    op.create_index("ix_transfer_checks_created_at", "transfer_checks", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_transfer_checks_created_at", table_name="transfer_checks")
    op.drop_table("transfer_checks")
