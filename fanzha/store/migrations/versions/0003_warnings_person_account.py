"""index warnings by the person's account: every transfer check asks whether its payer was warned recently

Revision ID: 0003_warnings_person_account
Revises: 0002_transfer_checks
"""

from alembic import op

revision = "0003_warnings_person_account"
down_revision = "0002_transfer_checks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_warnings_person_account", "warnings", ["person_account", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_warnings_person_account", table_name="warnings")
