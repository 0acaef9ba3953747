"""Users, login tokens and API keys. Secrets are stored hashed: argon2 for passwords, SHA-256 for tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fanzha.store.models import AccessToken, User, utcnow

ROLES = ("admin", "analyst", "bank", "telecom", "grid", "auditor")
_hasher = PasswordHasher()


class UserError(ValueError):
    """A user cannot be created or changed as asked."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user behind a login token or an API key."""

    id: int
    username: str
    role: str
    region_code: str | None


def _principal(user: User) -> Principal:
    return Principal(user.id, user.username, user.role, user.region_code)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    region_code: str | None = None,
    display_name: str = "",
) -> User:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if not username or len(username) > 64:
        raise UserError("username must have 1 to 64 characters")
    if len(password) < 8:
        raise UserError("password must have at least 8 characters")
    if role == "grid" and not region_code:
        raise UserError("a grid user needs a region code (行政区划代码)")
    if region_code is not None and not (len(region_code) == 6 and region_code.isdigit()):
        raise UserError("region code must be 6 digits (GB/T 2260)")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"user {username!r} exists")
    user = User(
        username=username,
        password_hash=_hasher.hash(password),
        role=role,
        region_code=region_code,
        display_name=display_name,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> Principal | None:
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None:
        _hasher.hash(password)  # same work whether or not the user exists
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return _principal(user)


def issue_token(session: Session, user_id: int, ttl_minutes: int) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        AccessToken(
            user_id=user_id,
            token_hash=_token_hash(token),
            kind="session",
            expires_at=utcnow() + timedelta(minutes=ttl_minutes),
        )
    )
    return token


def issue_api_key(session: Session, user_id: int, name: str) -> str:
    key = "fz_" + secrets.token_urlsafe(32)
    session.add(AccessToken(user_id=user_id, token_hash=_token_hash(key), kind="apikey", name=name))
    return key


def resolve_token(session: Session, token: str) -> tuple[Principal | None, str]:
    """The principal behind a token or API key, or None with the reason."""
    row = session.execute(
        select(AccessToken, User)
        .join(User, User.id == AccessToken.user_id)
        .where(AccessToken.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None, "invalid token"
    tok, user = row
    if tok.revoked or not user.active:
        return None, "token revoked"
    if tok.expires_at is not None and tok.expires_at < utcnow():
        return None, "token expired"
    return _principal(user), ""


def get_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))
