"""A real PostgreSQL server for the tests: the one named by FANZHA_TEST_POSTGRES_URL, or a throwaway one.

The throwaway server is started from the installed binaries (initdb/pg_ctl) in a temporary directory and
stopped at the end of the session. When neither is available the PostgreSQL tests are skipped with a
reason, except in CI (CI=true), where they fail: CI must exercise PostgreSQL.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "FANZHA_TEST_POSTGRES_URL"


def _binaries() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(found)
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return dirs[-1] if dirs else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_server() -> Iterator[str]:
    bindir = _binaries()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl) installed")
    tmp = tempfile.mkdtemp(prefix="fanzha-pg-")
    data = os.path.join(tmp, "data")
    port = _free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: run it as the postgres (or nobody) account.
        user = "postgres" if _has_user("postgres") else "nobody"
        shutil.chown(tmp, user=user)
        prefix = ["runuser", "-u", user, "--"]
    try:
        subprocess.run(
            [
                *prefix,
                f"{bindir}/initdb",
                "-D",
                data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
        )
        opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *prefix,
                f"{bindir}/pg_ctl",
                "-D",
                data,
                "-o",
                opts,
                "-w",
                "-l",
                os.path.join(tmp, "log"),
                "start",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(tmp, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@contextmanager
def server_url() -> Iterator[str]:
    """The admin URL of a server to create test databases on."""
    url = os.environ.get(ENV)
    if url:
        yield url
        return
    with throwaway_server() as url:
        yield url


def create_database(admin_url: str) -> str:
    import psycopg

    name = f"fanzha_test_{uuid.uuid4().hex[:12]}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    for attempt in range(20):
        try:
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            break
        except psycopg.OperationalError:
            if attempt == 19:
                raise
            time.sleep(0.25)
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(
        f"{base}/postgres".replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
