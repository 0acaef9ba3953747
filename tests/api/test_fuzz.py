"""Schemathesis over every operation of the OpenAPI schema: no input, with or without a login, gives a 5xx.

The schema is read from the app, so routes added later are fuzzed without touching this file. SQLite only:
the point is the handling of odd input, and the other tests cover PostgreSQL.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from fanzha.api.app import create_app
from fanzha.settings import Settings
from fanzha.store.db import make_engine, make_sessionmaker, migrate
from fanzha.store.repo_users import create_user, issue_token
from tests.api.conftest import PASSWORD, USERS
from tests.payments.test_trace import SPLIT_MERGE, write_ledger

EXAMPLES_PER_OPERATION = 15


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, detector) -> Iterator[tuple[object, str]]:
    data = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{data / 'fanzha.db'}"
    migrate(url)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s, s.begin():
        users = {name: create_user(s, name, PASSWORD, role, region) for name, (role, region) in USERS.items()}
        token = issue_token(s, users["admin"].id, ttl_minutes=60)
    engine.dispose()
    # A ledger, so traces of the cases the fuzzer records run for real (no ledger would be a 503 by design).
    ledger = write_ledger(data / "ledger", SPLIT_MERGE)
    app_settings = Settings(database_url=url, data_dir=data, max_body_bytes=64 * 1024, ledger_dir=ledger)
    yield create_app(app_settings, detector=detector), token


# Building the app only to read its schema touches neither the database nor the model.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_no_operation_answers_5xx_with_or_without_a_login(case, fuzz_app):
    app, token = fuzz_app
    for headers in ({"Authorization": f"Bearer {token}"}, {}):
        response = case.call(app=app, base_url="http://testserver", headers=headers)
        assert response.status_code < 500, f"{response.status_code} for {case.as_curl_command(headers)}"
