"""Detection for partners through the real API: a text or call, batches, live calls, and what they raise."""

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from fanzha.api.app import create_app
from fanzha.api.deps import PrincipalCache
from fanzha.api.routes import detect as live_routes
from fanzha.api.routes.detect import CLOSE_AUTH_TIMEOUT, CLOSE_UNAUTHORIZED
from fanzha.api.schemas import MAX_TURNS
from fanzha.store.repo_users import Principal
from fanzha.text.detector import Detector

POLICE = (
    "您好，这里是市公安局刑侦支队，您的身份证涉嫌一起跨境洗钱案，"
    "请立即将资金转入安全账户配合调查，不得告诉任何人。"
)
ETC = "尊敬的用户，您的ETC已失效，请点击 http://etc-renzheng.top/a 重新认证，逾期将影响通行。"
BANK_BILL = (
    "【招商银行】您尾号6621的信用卡本期账单3,256.40元，还款日11月28日。详询95555，或登录招商银行App查看。"
)
DINNER = "晚上回家吃饭吗？我炖了排骨。"
CALL = [
    {"speaker": "caller", "text": "您好，我是市公安局的民警，您的银行卡涉嫌洗钱。"},
    {"speaker": "callee", "text": "啊？我没有啊。"},
    {"speaker": "caller", "text": "为了证明清白，请把钱转到我们的安全账户，不要告诉家人。"},
]
SERVICE_FIELDS = {"watchlist_hits", "warning_id", "warning_merged"}
RECIPIENT = {"phone": "13812345678", "region_code": "330106"}


def detect(client, headers, **body):
    return client.post("/v1/detect", json=body, headers=headers)


def test_detect_answers_the_cli_json_plus_the_service_fields(client, auth, detector):
    r = detect(client, auth("bank"), text=POLICE)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    cli = orjson.loads(orjson.dumps(detector.detect(POLICE)))  # exactly what `fanzha detect` prints
    assert {k: v for k, v in body.items() if k not in SERVICE_FIELDS} == cli
    assert body["verdict"] == "fraud" and body["fraud_type"] == "impersonate_police"
    assert body["watchlist_hits"] == [] and body["warning_id"] is None


def test_detect_needs_a_login_or_api_key_of_any_role(client, auth):
    assert detect(client, {}, text=POLICE).status_code == 401
    assert detect(client, {"Authorization": "Bearer junk"}, text=POLICE).status_code == 401
    assert detect(client, {"X-API-Key": "fz_junk"}, text=POLICE).status_code == 401
    for user in ("admin", "analyst", "bank", "telecom", "grid", "auditor"):
        assert detect(client, auth(user), text=DINNER).status_code == 200
    key = client.post("/v1/auth/api-keys", json={"name": "sms-gateway"}, headers=auth("telecom")).json()
    assert detect(client, {"X-API-Key": key["api_key"]}, text=DINNER).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": ""}, "text is empty"),
        ({"text": "   \n"}, "text is empty"),
        ({"text": 42}, "valid string"),
        ({"text": ["a"]}, "valid string"),
        ({}, "either text or turns"),
        ({"text": "hi", "turns": CALL}, "either text or turns"),
        ({"txt": "hi"}, "Extra inputs"),
        ({"turns": []}, "at least 1 item"),
        ({"turns": [{"speaker": "robot", "text": "hi"}]}, "caller"),
        ({"turns": [{"speaker": "caller", "text": "  "}]}, "no text"),
        ({"text": "hi", "amount": -1}, "greater than or equal"),
        ({"text": "hi", "recipient": {"phone": "138", "region_code": "33"}}, "pattern"),
        ({"turns": [{"speaker": "caller", "text": "喂"}] * (MAX_TURNS + 1)}, f"at most {MAX_TURNS}"),
    ],
)
def test_bad_input_is_422_with_a_reason(client, auth, body, message):
    r = detect(client, auth("bank"), **body)
    assert r.status_code == 422, r.text
    assert message in r.text


def test_malformed_json_is_422_and_an_oversize_body_is_413(client, auth):
    headers = {**auth("bank"), "content-type": "application/json"}
    assert client.post("/v1/detect", content=b'{"text": "unterminated', headers=headers).status_code == 422
    assert client.post("/v1/detect", content=b"\xff\xfe", headers=headers).status_code == 422
    huge = orjson.dumps({"text": "转账" * 40_000})  # over the test app's 64 KiB body limit
    assert client.post("/v1/detect", content=huge, headers=headers).status_code == 413


def test_text_longer_than_the_detector_accepts_is_422_with_the_limit(app_settings, auth, client, detector):
    short = Detector(
        detector.typology, detector.rules, detector.recognizers, detector.model, max_text_chars=50
    )
    with TestClient(create_app(app_settings, detector=short)) as other:
        r = other.post("/v1/detect", json={"text": "转" * 51}, headers=auth("bank"))
    assert r.status_code == 422 and r.json()["detail"] == "text has 51 characters; the limit is 50"


def test_a_call_transcript_is_scored_with_the_turn_of_each_finding(client, auth):
    body = detect(client, auth("telecom"), turns=CALL).json()
    assert body["turn"] == len(CALL) - 1
    assert body["verdict"] == "fraud" and body["first_alert_turn"] is not None
    for e in body["evidence"]:
        turn_text = CALL[e["turn"]]["text"]
        assert turn_text[e["start"] : e["end"]] == e["text"]


def test_listed_indicators_are_reported_and_official_numbers_marked_allowlisted(client, auth):
    entry = {
        "kind": "domain",
        "value": "etc-renzheng.top",
        "fraud_type": "phishing_account",
        "confidence": 0.95,
    }
    assert client.post("/v1/watchlist", json=entry, headers=auth("analyst")).status_code == 201
    hits = detect(client, auth("bank"), text=ETC).json()["watchlist_hits"]
    assert [(h["kind"], h["value"], h["allowlisted"], h["indicator"]) for h in hits] == [
        ("domain", "etc-renzheng.top", False, "http://etc-renzheng.top/a")
    ]
    official = detect(client, auth("bank"), text=BANK_BILL).json()["watchlist_hits"]
    assert [(h["value"], h["allowlisted"], h["label"]) for h in official] == [("95555", True, "招商银行客服")]


def test_batch_results_carry_the_same_watchlist_hits_as_single_detection(client, auth):
    entry = {"kind": "domain", "value": "etc-renzheng.top", "fraud_type": "phishing_account",
             "confidence": 0.9}
    assert client.post("/v1/watchlist", json=entry, headers=auth("analyst")).status_code == 201
    items = [{"id": "etc", "text": ETC}, {"id": "bill", "text": BANK_BILL}, {"id": "x", "text": ""},
             {"id": "dinner", "text": DINNER}]
    results = client.post("/v1/detect/batch", json={"items": items}, headers=auth("bank")).json()["results"]
    for item, result in zip(items, results, strict=True):
        if not item["text"]:
            assert "error" in result and "watchlist_hits" not in result
            continue
        single = detect(client, auth("bank"), text=item["text"]).json()["watchlist_hits"]
        assert result["watchlist_hits"] == single
    assert [h["value"] for h in results[0]["watchlist_hits"]] == ["etc-renzheng.top"]
    assert results[3]["watchlist_hits"] == []


def test_a_fraud_verdict_for_a_named_recipient_raises_one_warning_and_repeats_merge(client, auth):
    first = detect(client, auth("bank"), text=POLICE, recipient=RECIPIENT, amount=20000).json()
    assert first["warning_id"] is not None and first["warning_merged"] is False
    again = detect(client, auth("telecom"), turns=CALL, recipient={**RECIPIENT, "phone": "+86 138 1234 5678"})
    assert again.json()["warning_id"] == first["warning_id"] and again.json()["warning_merged"] is True
    task = client.get(f"/v1/warnings/{first['warning_id']}", headers=auth("analyst")).json()
    assert task["region_code"] == "330106" and task["fraud_type"] == "impersonate_police"


def test_a_harmless_message_or_an_allowlisted_number_raises_no_warning(client, auth):
    for text in (DINNER, BANK_BILL):
        body = detect(client, auth("bank"), text=text, recipient=RECIPIENT).json()
        assert body["verdict"] != "fraud" and body["warning_id"] is None
    assert client.get("/v1/warnings", headers=auth("analyst")).json()["total"] == 0


def test_a_recipient_is_refused_for_read_only_roles_and_bad_phone_numbers(client, auth):
    for user in ("auditor", "grid"):
        r = detect(client, auth(user), text=POLICE, recipient=RECIPIENT)
        assert r.status_code == 403 and "may not raise warnings" in r.text
    r = detect(client, auth("bank"), text=DINNER, recipient={**RECIPIENT, "phone": "not-a-phone"})
    assert r.status_code == 422 and "recipient.phone" in r.text


def test_batch_answers_every_item_in_order_and_a_bad_item_never_fails_the_batch(client, auth):
    items = [
        {"id": "a", "text": POLICE},
        {"id": "b", "text": ""},
        "not an object",
        {"id": 4, "text": 5},
        {"id": 5, "turns": [{"speaker": "robot", "text": "x"}]},
        {"id": 6},
        {"id": 7, "turns": CALL},
        {"id": 8, "text": DINNER},
    ]
    r = client.post("/v1/detect/batch", json={"items": items}, headers=auth("bank"))
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x.get("id") for x in results] == ["a", "b", None, 4, 5, 6, 7, 8]
    assert [x.get("line") for x in results if "error" in x] == [2, 3, 4, 5, 6]
    assert results[0]["verdict"] == "fraud" and results[6]["turn"] == 2
    assert results[1]["error"] == "text is empty"


def test_batch_over_the_item_limit_is_422_and_needs_a_login(client, auth, app_settings):
    too_many = {"items": [{"text": "hi"}] * (app_settings.max_batch_items + 1)}
    r = client.post("/v1/detect/batch", json=too_many, headers=auth("bank"))
    assert r.status_code == 422 and f"at most {app_settings.max_batch_items}" in r.text
    assert client.post("/v1/detect/batch", json={"items": []}).status_code == 401
    assert client.post("/v1/detect/batch", json={"items": []}, headers=auth("bank")).json() == {"results": []}


def _token(auth, user):
    return auth(user)["Authorization"].removeprefix("Bearer ")


def test_live_call_answers_the_updated_detection_after_every_turn(client, auth):
    with client.websocket_connect(f"/v1/detect/live?token={_token(auth, 'telecom')}") as ws:
        assert ws.receive_json() == {"type": "ready", "username": "telecom", "max_turns": MAX_TURNS}
        answers = []
        for turn in CALL:
            ws.send_json(turn)
            answers.append(ws.receive_json())
    assert [a["type"] for a in answers] == ["detection"] * len(CALL)
    assert [a["turn"] for a in answers] == [0, 1, 2]
    assert answers[-1]["verdict"] == "fraud" and answers[-1]["first_alert_turn"] is not None


def test_live_call_takes_the_token_as_first_message(client, auth):
    with client.websocket_connect("/v1/detect/live") as ws:
        ws.send_json({"token": _token(auth, "bank")})
        assert ws.receive_json()["type"] == "ready"
        ws.send_json(CALL[0])
        assert ws.receive_json()["turn"] == 0


def test_live_call_answers_bad_messages_with_an_error_frame_and_keeps_the_call(client, auth):
    with client.websocket_connect(f"/v1/detect/live?token={_token(auth, 'bank')}") as ws:
        ws.receive_json()
        for bad in (
            "not json",
            "[1, 2]",
            '{"speaker": "robot", "text": "x"}',
            '{"speaker": "caller"}',
            '{"speaker": "caller", "text": "   "}',
        ):
            ws.send_text(bad)
            frame = ws.receive_json()
            assert frame["type"] == "error" and frame["detail"]
        ws.send_bytes(orjson.dumps(CALL[0]))
        frame = ws.receive_json()
        assert frame["type"] == "detection" and frame["turn"] == 0  # bad messages did not become turns


@pytest.mark.parametrize("query", ["", "?token=junk"])
def test_live_call_without_a_valid_token_is_closed_with_4401(client, query):
    with client.websocket_connect(f"/v1/detect/live{query}") as ws:
        if not query:
            ws.send_json({"speaker": "caller", "text": "no token here"})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == CLOSE_UNAUTHORIZED


def test_principal_cache_forgets_a_token_after_its_ttl_and_stays_bounded():
    now = [100.0]
    cache = PrincipalCache(ttl=30, max_entries=3, clock=lambda: now[0])
    bank = Principal(1, "bank", "bank", None)
    cache.put("secret", bank)
    assert cache.get("secret") == bank and cache.get("other") is None
    now[0] += 30
    assert cache.get("secret") is None  # a revoked token stops working within the TTL
    for i in range(10):
        cache.put(f"t{i}", bank)
    assert sum(cache.get(f"t{i}") is not None for i in range(10)) == 3
    assert cache.get("t9") == bank


def test_live_call_closes_1009_on_an_oversize_message_and_4408_without_a_token_in_time(
    client, auth, app_settings, monkeypatch
):
    with client.websocket_connect(f"/v1/detect/live?token={_token(auth, 'bank')}") as ws:
        ws.receive_json()
        ws.send_text(orjson.dumps({"speaker": "caller", "text": "转" * app_settings.max_body_bytes}).decode())
        with pytest.raises(WebSocketDisconnect) as too_big:
            ws.receive_json()
    assert too_big.value.code == 1009
    monkeypatch.setattr(live_routes, "LIVE_AUTH_TIMEOUT_SECONDS", 0.05)
    with client.websocket_connect("/v1/detect/live") as ws, pytest.raises(WebSocketDisconnect) as late:
        ws.receive_json()
    assert late.value.code == CLOSE_AUTH_TIMEOUT


def test_unpaired_surrogates_and_huge_ids_are_answered_not_500(client, auth):
    headers = {**auth("bank"), "content-type": "application/json"}
    # JSON may carry an unpaired UTF-16 escape, which cannot be written back as UTF-8.
    text = b'{"text": "\\u8bf7\\u8f6c\\u5165\\u5b89\\u5168\\ud800\\u8d26\\u6237 http://a.top"}'
    r = client.post("/v1/detect", content=text, headers=headers)
    assert r.status_code == 200 and r.json()["verdict"]
    items = (
        b'{"items": [{"id": "\\udc00", "text": "\\ud800hi"},'
        b' {"id": 123456789012345678901234567890, "text": "hi"}]}'
    )
    r = client.post("/v1/detect/batch", content=items, headers=headers)
    assert r.status_code == 200
    assert [x["id"] for x in r.json()["results"]] == ["\ufffd", "123456789012345678901234567890"]


def test_a_call_too_long_to_score_turn_by_turn_is_422(client, auth):
    turns = [{"speaker": "caller", "text": "a" * 500}] * 100  # 2.5 M characters scored, 51 KiB of JSON
    r = detect(client, auth("bank"), turns=turns)
    assert r.status_code == 422 and "send its transcript as `text`" in r.text
    batch = client.post("/v1/detect/batch", json={"items": [{"id": 1, "turns": turns}]}, headers=auth("bank"))
    assert "send its transcript as `text`" in batch.json()["results"][0]["error"]
