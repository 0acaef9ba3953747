"""Warning tasks (预警劝阻) through the real API: who may raise, see, act on and count them."""

import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from fanzha.api.app import create_app
from fanzha.store.db import make_engine, make_sessionmaker
from fanzha.store.models import AuditEntry, Warning, utcnow

HANGZHOU = {"person_phone": "13812345678", "person_name": "王小明", "region_code": "330106", "risk": 92}
SHENZHEN = {"person_phone": "13912345678", "person_name": "李四", "region_code": "440305", "risk": 60}


def raise_warning(client, auth, body=HANGZHOU, user="bank"):
    r = client.post("/v1/warnings", json=body, headers=auth(user))
    assert r.status_code == 201, r.text
    return r.json()


def make_overdue(app_settings, warning_id):
    engine = make_engine(app_settings.database_url)
    with engine.begin() as conn:
        conn.execute(
            update(Warning).where(Warning.id == warning_id).values(due_at=utcnow() - timedelta(minutes=1))
        )
    engine.dispose()


def test_partners_and_analysts_raise_warnings_and_a_repeat_is_merged(client, auth):
    first = raise_warning(client, auth)
    assert first["merged"] is False and first["assigned"] is True and first["priority"] == 2
    again = raise_warning(
        client, auth, {**HANGZHOU, "person_phone": "+86 138-1234-5678", "amount_at_stake": 9000}
    )
    assert again["id"] == first["id"] and again["merged"] is True and again["priority"] == 1
    w = client.get(f"/v1/warnings/{first['id']}", headers=auth("analyst")).json()
    assert w["merged_count"] == 2 and w["source"] == "partner"


def test_non_finite_numbers_are_422_not_500(client, auth):
    headers = {**auth("bank"), "content-type": "application/json"}
    for raw in (b'"risk": 1e400', b'"risk": 90, "amount_at_stake": NaN'):
        body = b'{"person_phone": "13812345678", "region_code": "330106", ' + raw + b"}"
        assert client.post("/v1/warnings", content=body, headers=headers).status_code == 422


def test_who_may_raise_a_warning(client, auth):
    assert client.post("/v1/warnings", json=HANGZHOU).status_code == 401
    for user in ("grid", "auditor"):
        assert client.post("/v1/warnings", json=HANGZHOU, headers=auth(user)).status_code == 403
    for user in ("analyst", "telecom", "admin"):
        assert client.post("/v1/warnings", json=HANGZHOU, headers=auth(user)).status_code == 201


def test_invalid_warnings_are_422_with_a_reason(client, auth):
    for body in (
        {**HANGZHOU, "region_code": "33"},
        {**HANGZHOU, "risk": 101},
        {**HANGZHOU, "amount_at_stake": -1},
        {**HANGZHOU, "person_phone": "123"},
        {"region_code": "330106", "risk": 50},
        {**HANGZHOU, "source": "gossip"},
        {**HANGZHOU, "surprise": 1},
    ):
        r = client.post("/v1/warnings", json=body, headers=auth("bank"))
        assert r.status_code == 422, body


def test_grid_worker_sees_only_their_region_and_others_get_404_not_a_leak(client, auth):
    mine = raise_warning(client, auth)["id"]
    theirs = raise_warning(client, auth, SHENZHEN)["id"]
    listed = client.get("/v1/warnings", headers=auth("grid")).json()
    assert [w["id"] for w in listed["items"]] == [mine] and listed["total"] == 1
    assert client.get(f"/v1/warnings/{theirs}", headers=auth("grid")).status_code == 404
    assert client.get(f"/v1/warnings/{mine}", headers=auth("grid_other")).status_code == 404
    assert client.get("/v1/warnings", params={"region": "440305"}, headers=auth("grid")).json()["total"] == 0
    everything = client.get("/v1/warnings", headers=auth("analyst")).json()
    assert {w["id"] for w in everything["items"]} == {mine, theirs}
    assert (
        client.get("/v1/warnings", params={"region": "440000"}, headers=auth("analyst")).json()["total"] == 1
    )


def test_phone_and_name_are_raw_only_for_the_assignee_and_analysts(client, auth):
    wid = raise_warning(client, auth)["id"]
    for user in ("analyst", "grid"):
        w = client.get(f"/v1/warnings/{wid}", headers=auth(user)).json()
        assert (w["person_phone"], w["person_name"]) == ("+8613812345678", "王小明")
    for user in ("bank", "telecom", "auditor"):
        w = client.get(f"/v1/warnings/{wid}", headers=auth(user)).json()
        assert (w["person_phone"], w["person_name"]) == ("+86****5678", "王**"), user
        listed = client.get("/v1/warnings", headers=auth(user)).text
        assert "13812345678" not in listed and "王小明" not in listed


def test_assignee_records_contacts_and_closes_with_an_outcome(client, auth):
    wid = raise_warning(client, auth)["id"]
    contact = {"method": "phone", "reached": True, "note": "已接通，本人正在转账途中"}
    r = client.post(f"/v1/warnings/{wid}/contacts", json=contact, headers=auth("grid"))
    assert r.status_code == 201 and r.json()["method"] == "phone"
    r = client.post(
        f"/v1/warnings/{wid}/outcome", json={"outcome": "dissuaded", "note": "已劝阻"}, headers=auth("grid")
    )
    assert r.status_code == 200 and r.json()["warning"]["status"] == "closed" and r.json()["case_id"] is None
    w = client.get(f"/v1/warnings/{wid}", headers=auth("grid")).json()
    assert w["outcome"] == "dissuaded" and w["first_contact_at"] and len(w["contacts"]) == 1
    again = client.post(f"/v1/warnings/{wid}/outcome", json={"outcome": "unreachable"}, headers=auth("grid"))
    assert again.status_code == 409
    late = client.post(f"/v1/warnings/{wid}/contacts", json=contact, headers=auth("analyst"))
    assert late.status_code == 409


def test_only_the_assignee_or_an_analyst_may_act(client, auth):
    wid = raise_warning(client, auth)["id"]
    contact = {"method": "visit", "reached": False}
    assert (
        client.post(f"/v1/warnings/{wid}/contacts", json=contact, headers=auth("grid_other")).status_code
        == 404
    )
    assert client.post(f"/v1/warnings/{wid}/contacts", json=contact, headers=auth("bank")).status_code == 403
    assert (
        client.post(
            f"/v1/warnings/{wid}/outcome", json={"outcome": "dissuaded"}, headers=auth("auditor")
        ).status_code
        == 403
    )
    assert (
        client.post(f"/v1/warnings/{wid}/contacts", json=contact, headers=auth("analyst")).status_code == 201
    )


def test_wrong_method_outcome_or_types_are_422(client, auth):
    wid = raise_warning(client, auth)["id"]
    for body in (
        {"method": "pigeon", "reached": True},
        {"method": "phone", "reached": "maybe"},
        {"method": "phone"},
    ):
        assert client.post(f"/v1/warnings/{wid}/contacts", json=body, headers=auth("grid")).status_code == 422
    for body in ({"outcome": "vanished"}, {"outcome": None}, {}):
        assert client.post(f"/v1/warnings/{wid}/outcome", json=body, headers=auth("grid")).status_code == 422
    assert client.get("/v1/warnings/99999999", headers=auth("analyst")).status_code == 404
    assert client.get("/v1/warnings/abc", headers=auth("analyst")).status_code == 422


def test_already_defrauded_opens_a_case(client, auth):
    wid = raise_warning(client, auth, {**HANGZHOU, "fraud_type": "impersonate_police"})["id"]
    r = client.post(
        f"/v1/warnings/{wid}/outcome",
        json={"outcome": "already_defrauded", "note": "已转账"},
        headers=auth("analyst"),
    )
    assert r.status_code == 200 and r.json()["case_id"] is not None
    assert client.get(f"/v1/warnings/{wid}", headers=auth("analyst")).json()["case_id"] == r.json()["case_id"]


def test_escalate_endpoint_escalates_overdue_tasks_for_analysts_only(client, auth, app_settings):
    wid = raise_warning(client, auth)["id"]
    assert client.post("/v1/warnings/escalate", headers=auth("grid")).status_code == 403
    make_overdue(app_settings, wid)
    r = client.post("/v1/warnings/escalate", headers=auth("analyst"))
    assert r.status_code == 200 and r.json() == {"escalated": 1, "ids": [wid]}
    w = client.get(f"/v1/warnings/{wid}", headers=auth("analyst")).json()
    assert w["escalated"] and w["priority"] == 1 and not w["overdue"]
    queue = client.get("/v1/warnings", params={"escalated": True}, headers=auth("analyst")).json()
    assert [x["id"] for x in queue["items"]] == [wid]


def test_background_job_escalates_overdue_tasks_and_stops_at_shutdown(app_settings, detector, client, auth):
    wid = raise_warning(client, auth)["id"]
    make_overdue(app_settings, wid)
    app = create_app(app_settings, detector=detector)
    app.state.warning_escalation_interval = 0.05
    with TestClient(app):
        job = app.state.warning_escalation_job
        assert _eventually_escalated(app_settings, wid)
        assert not job.done()
    assert job.done()


def test_background_job_survives_a_failing_round(app_settings, detector, client, auth, tmp_path):
    wid = raise_warning(client, auth)["id"]
    make_overdue(app_settings, wid)
    app = create_app(app_settings, detector=detector)
    app.state.warning_escalation_interval = 0.05
    with TestClient(app):
        working = app.state.sessions
        # a database that cannot be opened: every round fails until it is back
        app.state.sessions = make_sessionmaker(make_engine(f"sqlite:///{tmp_path}/missing/dir/x.db"))
        time.sleep(0.3)
        assert not app.state.warning_escalation_job.done()
        app.state.sessions = working
        assert _eventually_escalated(app_settings, wid)


def _eventually_escalated(app_settings, wid, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _escalated(app_settings, wid):
            return True
        time.sleep(0.05)
    return False


def _escalated(app_settings, wid):
    engine = make_engine(app_settings.database_url)
    with engine.connect() as conn:
        done = conn.scalar(select(Warning.escalated).where(Warning.id == wid))
    engine.dispose()
    return bool(done)


def test_stats_for_analysts_and_grid_limited_to_their_region(client, auth):
    mine = raise_warning(client, auth)["id"]
    raise_warning(client, auth, SHENZHEN)
    client.post(
        f"/v1/warnings/{mine}/contacts", json={"method": "phone", "reached": True}, headers=auth("grid")
    )
    client.post(f"/v1/warnings/{mine}/outcome", json={"outcome": "dissuaded"}, headers=auth("grid"))
    all_ = client.get("/v1/warnings/stats", headers=auth("analyst")).json()
    assert all_["total"] == 2 and all_["by_outcome"]["dissuaded"] == 1 and all_["dissuasion_rate"] == 1.0
    grid = client.get("/v1/warnings/stats", headers=auth("grid")).json()
    assert grid["total"] == 1 and grid["region_prefix"] == "330106"
    assert (
        client.get("/v1/warnings/stats", params={"region": "440305"}, headers=auth("grid")).status_code == 403
    )
    assert client.get("/v1/warnings/stats", headers=auth("bank")).status_code == 403
    bad = client.get(
        "/v1/warnings/stats",
        params={"date_from": "2026-02-01", "date_to": "2026-01-01"},
        headers=auth("analyst"),
    )
    assert bad.status_code == 422


def test_every_change_is_audited_with_before_and_after(client, auth, app_settings):
    wid = raise_warning(client, auth)["id"]
    raise_warning(client, auth)
    client.post(
        f"/v1/warnings/{wid}/contacts", json={"method": "sms", "reached": False}, headers=auth("grid")
    )
    client.post(f"/v1/warnings/{wid}/outcome", json={"outcome": "unreachable"}, headers=auth("grid"))
    engine = make_engine(app_settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.before, AuditEntry.after)
            .where(AuditEntry.entity == "warning")
            .order_by(AuditEntry.id)
        ).all()
    engine.dispose()
    assert [(a, b) for a, b, _, _ in rows] == [
        ("bank", "create"),
        ("bank", "merge"),
        ("grid", "contact"),
        ("grid", "outcome"),
    ]
    assert rows[-1].before["status"] == "open" and rows[-1].after["status"] == "closed"
