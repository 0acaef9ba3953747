"""Public reports (我要举报) through the real API: open intake, the analysts' queue, review to watchlist."""

from sqlalchemy import select

from fanzha.store.db import make_engine
from fanzha.store.models import AuditEntry

SCAM = "【公安局】您涉嫌洗钱，请立即将资金转入安全账户配合调查，否则冻结名下所有银行卡。"
REPORT = {"kind": "phone", "value": "+86 170-1234-5678", "message_text": SCAM, "region_code": "330106"}


def test_anyone_can_report_without_login_and_gets_a_receipt(client):
    r = client.post("/v1/reports", json=REPORT)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["receipt_id"] > 0 and body["value"] == "+8617012345678"
    assert body["verdict"] in ("fraud", "suspicious", "normal") and "110" in body["message"]


def test_repeat_report_is_merged_and_reveals_nothing_of_the_earlier_reporter(client, auth):
    first = client.post(
        "/v1/reports", json={**REPORT, "message_text": "我的电话是13912345678，被骗了"}
    ).json()
    r = client.post("/v1/reports", json={"kind": "phone", "value": "17012345678"})
    assert r.status_code == 200 and r.json()["receipt_id"] == first["receipt_id"]
    assert "13912345678" not in r.text and "count" not in r.json()
    queue = client.get("/v1/reports", headers=auth("analyst")).json()
    assert queue["total"] == 1 and queue["items"][0]["count"] == 2


def test_message_text_is_examined_and_the_summary_kept_for_review(client, auth):
    client.post("/v1/reports", json=REPORT)
    item = client.get("/v1/reports", headers=auth("analyst")).json()["items"][0]
    direct = client.app.state.detector.detect(REPORT["message_text"])
    assert item["detection"]["verdict"] == direct.verdict != "normal"
    assert item["detection"]["risk"] == direct.risk and item["detection"]["model_version"]


def test_invalid_reports_are_422(client):
    for body in (
        {"kind": "phone", "value": "not-a-number"},
        {"kind": "pigeon", "value": "x"},
        {"kind": "url", "value": "evil.com", "fraud_type": "made_up_type"},
        {"kind": "url", "value": "evil.com", "region_code": "33"},
        {"kind": "url"},
        {"kind": "url", "value": "evil.com", "reporter_phone": "13812345678"},
    ):
        assert client.post("/v1/reports", json=body).status_code == 422, body


def test_queue_is_for_analysts_and_auditors_and_auditors_see_texts_masked(client, auth):
    client.post(
        "/v1/reports", json={**REPORT, "message_text": "骗子让我转到 6222021234567890，我电话13912345678"}
    )
    assert client.get("/v1/reports").status_code == 401
    for user in ("bank", "grid", "telecom"):
        assert client.get("/v1/reports", headers=auth(user)).status_code == 403
    raw = client.get("/v1/reports", headers=auth("analyst")).json()["items"][0]["message_text"]
    masked = client.get("/v1/reports", headers=auth("auditor")).json()["items"][0]["message_text"]
    assert "13912345678" in raw and "13912345678" not in masked and "139****5678" in masked


def test_queue_is_paged_most_reported_first(client, auth):
    for value in ("17000000001", "17000000002", "17000000002", "17000000003"):
        client.post("/v1/reports", json={"kind": "phone", "value": value})
    page = client.get("/v1/reports", params={"limit": 2}, headers=auth("analyst")).json()
    assert page["total"] == 3 and [i["value"] for i in page["items"]] == ["+8617000000002", "+8617000000001"]
    rest = client.get("/v1/reports", params={"limit": 2, "offset": 2}, headers=auth("analyst")).json()
    assert [i["value"] for i in rest["items"]] == ["+8617000000003"]


def test_accepting_puts_the_indicator_on_the_watchlist_at_once(client, auth):
    rid = client.post("/v1/reports", json=REPORT).json()["receipt_id"]
    client.post("/v1/reports", json=REPORT)
    assert client.app.state.watchlist.match("phone", "17012345678") == []
    r = client.post(
        f"/v1/reports/{rid}/review",
        json={"decision": "accept", "fraud_type": "impersonate_police", "confidence": 0.9},
        headers=auth("analyst"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["report"]["status"] == "accepted" and r.json()["watchlist_status"] == "active"
    entry = client.get(f"/v1/watchlist/{r.json()['watchlist_id']}", headers=auth("analyst")).json()
    assert (entry["source"], entry["report_count"], entry["fraud_type"]) == (
        "report",
        2,
        "impersonate_police",
    )
    [match] = client.app.state.watchlist.match("phone", "17012345678")
    assert match.fraud_type == "impersonate_police"
    assert client.get("/v1/reports", headers=auth("analyst")).json()["total"] == 0


def test_rejecting_closes_the_report_and_a_second_review_is_409(client, auth):
    rid = client.post("/v1/reports", json=REPORT).json()["receipt_id"]
    r = client.post(f"/v1/reports/{rid}/review", json={"decision": "reject"}, headers=auth("analyst"))
    assert r.status_code == 200 and r.json()["watchlist_id"] is None
    again = client.post(f"/v1/reports/{rid}/review", json={"decision": "accept"}, headers=auth("analyst"))
    assert again.status_code == 409
    assert client.app.state.watchlist.match("phone", "17012345678") == []
    rejected = client.get("/v1/reports", params={"status": "rejected"}, headers=auth("analyst")).json()
    assert [i["id"] for i in rejected["items"]] == [rid]


def test_review_is_for_analysts_with_a_valid_decision(client, auth):
    rid = client.post("/v1/reports", json=REPORT).json()["receipt_id"]
    assert (
        client.post(
            f"/v1/reports/{rid}/review", json={"decision": "accept"}, headers=auth("auditor")
        ).status_code
        == 403
    )
    assert client.post(f"/v1/reports/{rid}/review", json={"decision": "accept"}).status_code == 401
    for body in ({"decision": "maybe"}, {"decision": "accept", "confidence": 2}, {}):
        assert client.post(f"/v1/reports/{rid}/review", json=body, headers=auth("analyst")).status_code == 422
    assert (
        client.post(
            "/v1/reports/999999/review", json={"decision": "accept"}, headers=auth("analyst")
        ).status_code
        == 404
    )


def test_intake_and_review_are_audited(client, auth, app_settings):
    rid = client.post("/v1/reports", json=REPORT).json()["receipt_id"]
    client.post("/v1/reports", json=REPORT)
    client.post(f"/v1/reports/{rid}/review", json={"decision": "accept"}, headers=auth("analyst"))
    engine = make_engine(app_settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.after)
            .where(AuditEntry.entity == "report")
            .order_by(AuditEntry.id)
        ).all()
    engine.dispose()
    assert [(a, b) for a, b, _ in rows] == [("public", "create"), ("public", "merge"), ("analyst", "accept")]
    assert rows[-1].after["status"] == "accepted"
    assert SCAM not in str(rows)  # the reporter's text stays in the report, not in the audit log


def test_report_flood_from_one_client_is_429_and_nothing_more_is_stored(client, auth):
    from fanzha.api.limits import RateLimiter

    client.app.state.report_limiter = RateLimiter(3)
    values = [f"1701234{n:04d}" for n in range(5)]
    codes = [client.post("/v1/reports", json={**REPORT, "value": v}).status_code for v in values]
    assert codes == [201, 201, 201, 429, 429]
    r = client.post("/v1/reports", json=REPORT)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "频繁" in r.json()["detail"]
    queue = client.get("/v1/reports", params={"limit": 50}, headers=auth("analyst")).json()
    assert queue["total"] == 3
    # A logged-in partner has its own, larger bucket.
    assert client.post("/v1/reports", json={**REPORT, "value": "17099990000"},
                       headers=auth("telecom")).status_code == 201
