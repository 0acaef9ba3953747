"""victim payments registered to cases: traces find other cases' money in the same accounts

Revision ID: 0005_case_transfers
Revises: 0004_watchlist_fillfactor
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_case_transfers"
down_revision = "0004_watchlist_fillfactor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.String(length=128), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transfer_id"),
    )
    op.create_index("ix_case_transfers_case_id", "case_transfers", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_transfers_case_id", table_name="case_transfers")
    op.drop_table("case_transfers")
