"""STIX 2.1 export and import of watchlist entries."""

from datetime import datetime

import orjson
import pytest

from fanzha.intel.stix import pattern, read_bundle, write_bundle
from fanzha.store.repo_watchlist import EntryRow

AT = datetime(2025, 1, 2, 3, 4, 5)


def _entries() -> list[EntryRow]:
    return [
        EntryRow(1, "url", "evil.com/pay", "fake_shopping", "analyst", 0.9, "active", AT, AT, None, 2, ""),
        EntryRow(
            2, "domain", "evil.com", None, "partner", 0.6, "active", AT, AT, datetime(2026, 1, 1), 0, ""
        ),
        EntryRow(3, "ip", "203.0.113.7", None, "case", 0.8, "active", AT, AT, None, 0, ""),
        EntryRow(4, "phone", "+8613812345678", "fake_loan", "report", 0.7, "active", AT, AT, None, 5, ""),
        EntryRow(5, "app", "it's app", None, "report", 0.7, "whitelisted", AT, AT, None, 0, ""),
    ]


def _bundle(entries) -> dict:
    return orjson.loads(b"".join(write_bundle(entries)))


def test_export_has_one_indicator_per_entry_with_stix_patterns_and_fanzha_properties():
    bundle = _bundle(_entries())
    assert bundle["type"] == "bundle" and bundle["id"].startswith("bundle--")
    indicators = [o for o in bundle["objects"] if o["type"] == "indicator"]
    assert [o["pattern"] for o in indicators] == [
        "[url:value = 'evil.com/pay']",
        "[domain-name:value = 'evil.com']",
        "[ipv4-addr:value = '203.0.113.7']",
        "[x-fanzha-phone:value = '+8613812345678']",
        "[x-fanzha-app:value = 'it\\'s app']",
    ]
    first = indicators[0]
    assert {
        k: first[k]
        for k in (
            "spec_version",
            "pattern_type",
            "x_fanzha_kind",
            "x_fanzha_fraud_type",
            "x_fanzha_confidence",
            "confidence",
        )
    } == {
        "spec_version": "2.1",
        "pattern_type": "stix",
        "x_fanzha_kind": "url",
        "x_fanzha_fraud_type": "fake_shopping",
        "x_fanzha_confidence": 0.9,
        "confidence": 90,
    }
    assert indicators[1]["valid_until"] == "2026-01-01T00:00:00.000Z"
    assert indicators[4]["indicator_types"] == ["benign"]


def test_exported_bundle_is_valid_stix_2_1():
    stix2 = pytest.importorskip("stix2")
    parsed = stix2.parse(b"".join(write_bundle(_entries())).decode(), allow_custom=True)
    assert len(parsed.objects) == 6


def test_round_trip_gives_back_the_same_entries():
    result = read_bundle(b"".join(write_bundle(_entries())))
    assert result.errors == []
    got = [
        (i.kind, i.value, i.fraud_type, i.source, i.confidence, i.status, i.report_count, i.expires_at)
        for i in result.items
    ]
    want = [
        (e.kind, e.value, e.fraud_type, e.source, e.confidence, e.status, e.report_count, e.expires_at)
        for e in _entries()
    ]
    assert got == want
    assert all(i.first_seen == AT and i.last_seen == AT for i in result.items)


def test_plain_stix_patterns_from_other_feeds_are_imported_and_bad_ones_reported():
    bundle = {
        "type": "bundle",
        "id": "bundle--1",
        "objects": [
            {
                "type": "indicator",
                "pattern": "[url:value = 'http://Phish.example.com/login/']",
                "confidence": 70,
                "valid_from": "2025-01-01T00:00:00Z",
                "pattern_type": "stix",
            },
            {
                "type": "indicator",
                "pattern": "[domain-name:value = 'a.example'] OR [ipv4-addr:value = '198.51.100.1']",
            },
            {"type": "indicator", "pattern": "[file:hashes.MD5 = 'abc']"},
            {"type": "indicator", "pattern": "[url:value = 'a.com'] AND [url:value = 'b.com']"},
            {"type": "indicator", "pattern": "[ipv4-addr:value = '999.1.1.1']"},
            {"type": "malware", "name": "ignored"},
        ],
    }
    result = read_bundle(orjson.dumps(bundle), default_source="partner")
    assert [(i.kind, i.value, i.confidence, i.source) for i in result.items] == [
        ("url", "phish.example.com/login", 0.7, "partner"),
        ("domain", "a.example", 0.8, "partner"),
        ("ip", "198.51.100.1", 0.8, "partner"),
    ]
    assert [e.row for e in result.errors] == ["objects[2]", "objects[3]", "objects[4]"]


def test_not_a_bundle_is_refused_as_a_whole():
    with pytest.raises(ValueError, match="not a STIX bundle"):
        read_bundle(b'{"type": "indicator"}')
    with pytest.raises(ValueError, match="not JSON"):
        read_bundle(b"{")


def test_quotes_and_backslashes_are_escaped_in_patterns():
    assert pattern("app", "a'b\\c") == "[x-fanzha-app:value = 'a\\'b\\\\c']"
