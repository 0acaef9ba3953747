"""The public look-up: verdicts for anyone, rate limited, and never a word about who reported."""

import pytest

QUERY = {"kind": "phone", "value": "+86 170-1234-5678"}


@pytest.fixture
def listed(client, auth):
    body = {
        "kind": "phone",
        "value": "17012345678",
        "fraud_type": "fake_loan",
        "source": "report",
        "report_count": 7,
        "note": "举报人 张三 13900001111",
    }
    r = client.post("/v1/watchlist", json=body, headers=auth("analyst"))
    assert r.status_code == 201
    return r.json()


def test_listed_number_is_fraud_with_report_count_and_advice(client, listed):
    r = client.get("/v1/lookup", params=QUERY)
    assert r.status_code == 200
    out = r.json()
    assert (out["verdict"], out["value"], out["fraud_types"], out["report_count"]) == (
        "fraud",
        "+8617012345678",
        ["fake_loan"],
        7,
    )
    assert out["last_seen"] and out["advice"]


def test_lookup_never_reveals_the_reporter_or_the_source(client, listed):
    r = client.get("/v1/lookup", params=QUERY)
    for secret in ("张三", "13900001111", "举报人", '"report"', "source", "analyst", "note"):
        assert secret not in r.text
    assert set(r.json()) == {"kind", "value", "verdict", "fraud_types", "fraud_type_names", "report_count",
                             "last_seen", "official_name", "advice"}


def test_official_numbers_are_allowlisted_and_unknown_values_are_unknown(client):
    official = client.get("/v1/lookup", params={"kind": "phone", "value": "96110"}).json()
    assert official["verdict"] == "allowlisted" and official["official_name"] == "反诈预警劝阻专线"
    unknown = client.get("/v1/lookup", params={"kind": "domain", "value": "example.org"}).json()
    assert unknown["verdict"] == "unknown" and unknown["report_count"] == 0 and "96110" in unknown["advice"]


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "phone", "value": "12"},
        {"kind": "bank_card", "value": "1234"},
        {"kind": "nope", "value": "x"},
        {"kind": "url", "value": "http://"},
        {"kind": "phone"},
        {"kind": "ip", "value": "1.2.3.4.5"},
    ],
)
def test_bad_values_are_422_with_a_reason(client, auth, params):
    r = client.get("/v1/lookup", params=params, headers=auth("bank"))
    assert r.status_code == 422 and r.json()["detail"]


def test_anonymous_clients_are_rate_limited_with_retry_after(client):
    # The test settings allow 5 look-ups a minute.
    codes = [client.get("/v1/lookup", params=QUERY).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    r = client.get("/v1/lookup", params=QUERY)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_logged_in_partners_get_a_higher_limit_of_their_own(client, auth):
    for _ in range(5):
        client.get("/v1/lookup", params=QUERY)
    assert client.get("/v1/lookup", params=QUERY).status_code == 429
    codes = [client.get("/v1/lookup", params=QUERY, headers=auth("bank")).status_code for _ in range(20)]
    assert set(codes) == {200}
