"""Persistence: SQLAlchemy models, repositories and Alembic migrations (the only layer that talks SQL)."""
