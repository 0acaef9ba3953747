"""Demo accounts for the embedded default (`make run`), created only in an empty database."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fanzha.store import repo_audit
from fanzha.store.models import User
from fanzha.store.repo_users import create_user

DEMO_PASSWORD = "fanzha-demo"
DEMO_USERS = (
    ("admin", "admin", None, "系统管理员"),
    ("analyst", "analyst", None, "反诈中心研判员"),
    ("bank", "bank", None, "银行网点风控"),
    ("telecom", "telecom", None, "运营商安全"),
    ("grid", "grid", "330106", "西湖区网格员"),
    ("auditor", "auditor", None, "审计员"),
)


def seed_demo(sessions: sessionmaker[Session]) -> bool:
    """Create the demo users if the database has no user yet; True when it did."""
    with sessions() as session, session.begin():
        if session.scalar(select(func.count(User.id))):
            return False
        for username, role, region, name in DEMO_USERS:
            user = create_user(session, username, DEMO_PASSWORD, role, region, name)
            repo_audit.record(
                session, "system", "create", "user", user.id, after={"username": username, "role": role}
            )
    return True
