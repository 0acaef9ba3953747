"""The watchlist API: who may change, import, export and check it, and what each role sees."""

import orjson

from fanzha.store import repo_audit
from fanzha.store.db import make_engine, make_sessionmaker

CARD = "6222020000000000000"
CSV = (
    "kind,value,fraud_type,source,confidence\n"
    "phone,+86 138-1234-5678,fake_loan,partner,0.9\n"
    "phone,12,fake_loan,partner,0.9\n"
    f"bank_card,{CARD},fake_investment,partner,0.8\n"
    "domain,evil-shop.com,fake_shopping,partner,0.7\n"
)


def _import_csv(client, headers, text=CSV, **params):
    return client.post(
        "/v1/watchlist/import",
        content=text.encode(),
        params=params,
        headers={**headers, "Content-Type": "text/csv"},
    )


def _audit(app_settings, entity="watchlist"):
    engine = make_engine(app_settings.database_url)
    with make_sessionmaker(engine)() as s:
        out = [
            (e.actor, e.action, e.entity_id, e.before, e.after) for e in repo_audit.entries(s, entity=entity)
        ]
    engine.dispose()
    return out


def test_analyst_adds_an_entry_stored_normalised_then_merges_into_it(client, auth):
    body = {"kind": "phone", "value": "+86 138-1234-5678", "fraud_type": "fake_loan", "confidence": 0.7}
    first = client.post("/v1/watchlist", json=body, headers=auth("analyst"))
    again = client.post(
        "/v1/watchlist", json={**body, "value": "13812345678", "confidence": 0.9}, headers=auth("analyst")
    )
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["value"] == again.json()["value"] == "+8613812345678"
    assert again.json()["id"] == first.json()["id"] and again.json()["confidence"] == 0.9


def test_single_changes_are_audited_with_before_and_after(client, auth, app_settings):
    client.post("/v1/watchlist", json={"kind": "qq", "value": "123456"}, headers=auth("analyst"))
    client.post(
        "/v1/watchlist", json={"kind": "qq", "value": "123456", "confidence": 0.95}, headers=auth("admin")
    )
    audit = _audit(app_settings)
    assert [(a[0], a[1]) for a in audit] == [("analyst", "create"), ("admin", "update")]
    assert audit[1][3]["confidence"] == 0.8 and audit[1][4]["confidence"] == 0.95


def test_bad_values_are_422_with_a_reason_never_500(client, auth):
    for body in (
        {"kind": "phone", "value": "12"},
        {"kind": "bank_card", "value": "6222020000000000001"},
        {"kind": "nonsense", "value": "x"},
        {"kind": "url", "value": "\x00"},
        {"kind": "domain", "value": "a" * 1000},
        {"kind": "qq", "value": "123456", "source": "rumour"},
        {"kind": "qq", "value": "123456", "confidence": 2},
    ):
        r = client.post("/v1/watchlist", json=body, headers=auth("analyst"))
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"]


def test_writes_need_an_analyst_or_admin(client, auth):
    body = {"kind": "qq", "value": "123456"}
    assert client.post("/v1/watchlist", json=body).status_code == 401
    for user in ("grid", "bank", "telecom", "auditor"):
        assert client.post("/v1/watchlist", json=body, headers=auth(user)).status_code == 403
        assert _import_csv(client, auth(user)).status_code == 403
    assert _import_csv(client, {}).status_code == 401


def test_csv_import_reports_bad_rows_by_line_and_imports_the_rest(client, auth, app_settings):
    r = _import_csv(client, auth("analyst"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["rows"], out["valid"], out["inserted"], out["updated"]) == (4, 3, 3, 0)
    assert [e["row"] for e in out["errors"]] == [3]
    again = _import_csv(client, auth("analyst")).json()
    assert (again["inserted"], again["updated"]) == (0, 3)
    imports = [a for a in _audit(app_settings) if a[1] == "import"]
    assert len(imports) == 2 and imports[0][4]["count"] == 3 and imports[0][0] == "analyst"


def test_imported_entries_are_matched_at_once(client, auth):
    _import_csv(client, auth("analyst"))
    r = client.post(
        "/v1/watchlist/check",
        json={"items": [{"kind": "url", "value": "https://m.evil-shop.com/pay"}]},
        headers=auth("analyst"),
    )
    [result] = r.json()["results"]
    assert result["verdict"] == "fraud" and result["matches"][0]["value"] == "evil-shop.com"


def test_stix_import_and_unusable_bodies(client, auth):
    bundle = {
        "type": "bundle",
        "id": "bundle--1",
        "objects": [
            {"type": "indicator", "pattern": "[domain-name:value = 'phish.example']", "pattern_type": "stix"},
            {"type": "indicator", "pattern": "[file:name = 'x']", "pattern_type": "stix"},
        ],
    }
    r = client.post(
        "/v1/watchlist/import",
        content=orjson.dumps(bundle),
        headers={**auth("analyst"), "Content-Type": "application/stix+json"},
    )
    assert r.status_code == 200 and r.json()["inserted"] == 1 and r.json()["errors"][0]["row"] == "objects[1]"
    bad = client.post(
        "/v1/watchlist/import", content=b"{", headers={**auth("analyst"), "Content-Type": "application/json"}
    )
    assert bad.status_code == 422
    assert _import_csv(client, auth("analyst"), "who,what\n1,2\n").status_code == 422
    xml = client.post(
        "/v1/watchlist/import",
        content=b"<x/>",
        headers={**auth("analyst"), "Content-Type": "application/xml"},
    )
    assert xml.status_code == 415


def test_export_as_csv_and_stix_for_auditors_and_not_for_partners(client, auth, app_settings):
    _import_csv(client, auth("analyst"))
    csv = client.get("/v1/watchlist/export", params={"format": "csv"}, headers=auth("auditor"))
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("kind,value,fraud_type") and len(lines) == 4
    stix = client.get("/v1/watchlist/export", params={"format": "stix"}, headers=auth("analyst"))
    objects = orjson.loads(stix.content)["objects"]
    assert sum(o["type"] == "indicator" for o in objects) == 3
    assert client.get("/v1/watchlist/export", headers=auth("bank")).status_code == 403
    assert [a[1] for a in _audit(app_settings)].count("export") == 2


def test_search_pages_through_entries(client, auth):
    _import_csv(client, auth("analyst"))
    first = client.get("/v1/watchlist", params={"limit": 2}, headers=auth("auditor")).json()
    rest = client.get(
        "/v1/watchlist", params={"limit": 2, "after_id": first["next_after_id"]}, headers=auth("auditor")
    ).json()
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next_after_id"] is None
    phones = client.get("/v1/watchlist", params={"kind": "phone"}, headers=auth("analyst")).json()
    assert [e["value"] for e in phones["items"]] == ["+8613812345678"]


def test_allowlisting_by_patch_is_audited_and_changes_the_verdict(client, auth, app_settings):
    entry = client.post(
        "/v1/watchlist", json={"kind": "domain", "value": "partner-bank.com"}, headers=auth("analyst")
    ).json()
    check = {"items": [{"kind": "domain", "value": "www.partner-bank.com"}]}
    assert (
        client.post("/v1/watchlist/check", json=check, headers=auth("bank")).json()["results"][0]["verdict"]
        == "fraud"
    )
    r = client.patch(f"/v1/watchlist/{entry['id']}", json={"status": "whitelisted"}, headers=auth("admin"))
    assert r.status_code == 200 and r.json()["status"] == "whitelisted"
    assert (
        client.post("/v1/watchlist/check", json=check, headers=auth("bank")).json()["results"][0]["verdict"]
        == "allowlisted"
    )
    actor, action, entity_id, before, after = _audit(app_settings)[-1]
    assert (actor, action, entity_id) == ("admin", "allowlist", str(entry["id"]))
    assert before["status"] == "active" and after["status"] == "whitelisted"
    expired = client.patch(
        f"/v1/watchlist/{entry['id']}", json={"status": "expired"}, headers=auth("analyst")
    )
    assert expired.status_code == 200
    assert (
        client.post("/v1/watchlist/check", json=check, headers=auth("bank")).json()["results"][0]["verdict"]
        == "unknown"
    )
    assert (
        client.patch("/v1/watchlist/999999", json={"status": "expired"}, headers=auth("analyst")).status_code
        == 404
    )
    assert client.patch(f"/v1/watchlist/{entry['id']}", json={}, headers=auth("analyst")).status_code == 422


def test_banks_see_cards_but_not_phones_and_carriers_the_reverse(client, auth):
    _import_csv(client, auth("analyst"))
    check = {"items": [{"kind": "phone", "value": "13812345678"}, {"kind": "bank_card", "value": CARD}]}
    bank = client.post("/v1/watchlist/check", json=check, headers=auth("bank")).json()["results"]
    telecom = client.post("/v1/watchlist/check", json=check, headers=auth("telecom")).json()["results"]
    analyst = client.post("/v1/watchlist/check", json=check, headers=auth("analyst")).json()["results"]
    assert [r["verdict"] for r in bank] == ["fraud", "fraud"]
    assert bank[0]["value"] == bank[0]["matches"][0]["value"] == "+86****5678"
    assert bank[1]["matches"][0]["value"] == CARD
    assert telecom[0]["matches"][0]["value"] == "+8613812345678"
    assert "*" in telecom[1]["matches"][0]["value"] and CARD not in str(telecom)
    assert analyst[0]["matches"][0]["value"] == "+8613812345678" and analyst[1]["matches"][0]["value"] == CARD


def test_check_reports_invalid_items_and_needs_a_partner_role(client, auth):
    check = {"items": [{"kind": "phone", "value": "96110"}, {"kind": "qq", "value": "0"}]}
    r = client.post("/v1/watchlist/check", json=check, headers=auth("telecom")).json()["results"]
    assert r[0]["verdict"] == "allowlisted" and r[0]["matches"][0]["label"] == "反诈预警劝阻专线"
    assert r[1]["verdict"] == "invalid" and "QQ" in r[1]["error"]
    assert client.post("/v1/watchlist/check", json=check, headers=auth("grid")).status_code == 403
    assert client.post("/v1/watchlist/check", json=check).status_code == 401
    assert client.post("/v1/watchlist/check", json={"items": []}, headers=auth("bank")).status_code == 422


def test_banks_see_service_numbers_unmasked_since_they_are_nobodys_personal_data(client, auth):
    check = {"items": [{"kind": "phone", "value": "95588"}]}
    [result] = client.post("/v1/watchlist/check", json=check, headers=auth("bank")).json()["results"]
    assert result["value"] == result["matches"][0]["value"] == "95588"
