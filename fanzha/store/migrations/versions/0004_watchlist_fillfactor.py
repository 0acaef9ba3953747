"""watchlist pages keep half their space free on PostgreSQL, so re-imports update rows in place (HOT)

Revision ID: 0004_watchlist_fillfactor
Revises: 0003_warnings_person_account

Re-importing a feed rewrites last_seen of every entry it lists. PostgreSQL writes a new version of each
updated row; when the row's page has room and no indexed column changes (the bulk merge changes none), the
new version stays on the page as a heap-only tuple: no new index entries, a fraction of the WAL, and the
old versions are reclaimed page by page without VACUUM. Fill factor 50 leaves room for one new version of
every row of a page. It applies to pages written from now on: an existing table gets there after its next
full re-import moves the rows once. SQLite has no such setting.
"""

from alembic import op

revision = "0004_watchlist_fillfactor"
down_revision = "0003_warnings_person_account"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE watchlist SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE watchlist RESET (fillfactor)")
