"""Matching semantics of the in-memory watchlist index."""

from datetime import timedelta

import numpy as np
import pytest

from fanzha.intel.matcher import Row, WatchlistIndex
from fanzha.store.models import utcnow
from fanzha.text.result import Indicator


def _index(*rows: Row, builtin: bool = True) -> WatchlistIndex:
    return WatchlistIndex(rows, builtin_allowlist=builtin)


def _ind(kind: str, value: str, **attrs) -> Indicator:
    return Indicator(kind, value, value, 0, len(value), 0.9, "", attrs)


def test_phone_entries_match_every_spelling_of_the_number():
    index = _index(Row(1, "phone", "+8613812345678", "fake_loan", "report", 0.9))
    for raw in ("13812345678", "+86 138-1234-5678", "008613812345678"):
        [m] = index.match("phone", raw)
        assert (m.entry_id, m.fraud_type, m.confidence, m.source, m.allowlisted) == (
            1,
            "fake_loan",
            0.9,
            "report",
            False,
        )
    assert index.match("phone", "13812345679") == []


def test_domain_entry_matches_subdomains_and_urls_on_them_but_not_lookalike_names():
    index = _index(Row(7, "domain", "evil.com"))
    assert [m.entry_id for m in index.match("domain", "a.b.evil.com")] == [7]
    assert [m.value for m in index.match("url", "https://login.evil.com/pay?x=1")] == ["evil.com"]
    assert index.match("domain", "notevil.com") == []
    assert index.match("domain", "evil.com.cn") == []


def test_url_entry_matches_longer_paths_at_segment_boundaries_only():
    index = _index(Row(3, "url", "evil.com/pay"))
    assert [m.entry_id for m in index.match("url", "http://evil.com/pay/step2?id=9")] == [3]
    assert [m.entry_id for m in index.match("url", "evil.com/pay/")] == [3]
    assert index.match("url", "evil.com/payment") == []
    assert index.match("url", "evil.com/") == []
    assert index.match("url", "www.evil.com/pay") == []


def test_most_specific_match_comes_first():
    index = _index(
        Row(1, "domain", "evil.com"), Row(2, "domain", "shop.evil.com"), Row(3, "url", "shop.evil.com/a")
    )
    assert [m.entry_id for m in index.match("url", "shop.evil.com/a/b")] == [3, 2, 1]


def test_builtin_allowlist_overrides_an_active_entry_for_the_same_number_or_domain():
    index = _index(Row(1, "phone", "96110", "impersonating_police"), Row(2, "domain", "icbc.com.cn"))
    [m] = index.match("phone", "96110")
    assert m.allowlisted and m.entry_id is None and m.label == "反诈预警劝阻专线"
    assert all(m.allowlisted for m in index.match("url", "https://www.icbc.com.cn/login"))


def test_allowlisted_domain_covers_its_subdomains_but_a_narrower_fraud_entry_still_matches():
    index = _index(
        Row(1, "domain", "chinatax.gov.cn"),
        Row(2, "url", "docs.qq.com/form/abc", "fake_shopping"),
        Row(3, "domain", "hacked.county.gov.cn", "gambling"),
    )
    assert all(m.allowlisted for m in index.match("domain", "www.chinatax.gov.cn"))
    assert all(m.allowlisted for m in index.match("domain", "other.county.gov.cn"))
    assert [(m.entry_id, m.allowlisted) for m in index.match("url", "hacked.county.gov.cn/x")] == [(3, False)]
    assert [(m.entry_id, m.allowlisted) for m in index.match("url", "docs.qq.com/form/abc?s=1")] == [
        (2, False)
    ]
    assert [m.allowlisted for m in index.match("url", "docs.qq.com/form/other")] == [True]


def test_database_allowlist_entry_overrides_an_active_entry_of_broader_scope():
    index = _index(Row(1, "domain", "cloud.com"), Row(2, "domain", "bank.cloud.com", allowlisted=True))
    [m] = index.match("url", "https://bank.cloud.com/login")
    assert (m.entry_id, m.allowlisted) == (2, True)
    assert [m.entry_id for m in index.match("url", "https://x.cloud.com")] == [1]


def test_expired_entries_do_not_match():
    past, future = utcnow() - timedelta(minutes=1), utcnow() + timedelta(days=1)
    index = _index(Row(1, "qq", "123456", expires_at=past), Row(2, "qq", "654321", expires_at=future))
    assert index.match("qq", "123456") == []
    assert [m.entry_id for m in index.match("qq", "654321")] == [2]


def test_add_and_remove_keep_the_index_current():
    index = _index(Row(1, "wechat", "scam_boss1"))
    index.add(Row(2, "wechat", "scam_boss2", "fake_investment"))
    index.add(Row(1, "wechat", "scam_boss1", confidence=0.99))
    assert index.match("wechat", "scam_boss2")[0].fraud_type == "fake_investment"
    assert index.match("wechat", "Scam_Boss1")[0].confidence == 0.99
    index.remove("wechat", "scam_boss1")
    assert index.match("wechat", "scam_boss1") == []
    assert len(index) == 1


def test_many_changes_fold_into_the_table_without_losing_entries():
    index = _index(*(Row(i, "qq", str(10000 + i)) for i in range(1000)), builtin=False)
    for i in range(1000, 101_500):
        index.add(Row(i, "qq", str(10000 + i)))
    index.remove("qq", "10005")
    assert len(index) == 101_499
    assert index.match("qq", "10005") == [] and index.match("qq", "111499")[0].entry_id == 101_499


def test_text_detector_indicators_are_checked_against_the_right_kinds():
    index = _index(
        Row(1, "domain", "evil.com"),
        Row(2, "payment_account", "6222020000000000000"),
        Row(3, "telegram", "@scam_boss"),
        Row(4, "phone", "4001234567"),
    )
    assert [m.entry_id for m in index.match_indicator(_ind("url", "https://a.evil.com/x"))] == [1]
    assert [m.entry_id for m in index.match_indicator(_ind("bank_card", "6222020000000000000"))] == [2]
    assert [m.entry_id for m in index.match_indicator(_ind("telegram", "@Scam_Boss"))] == [3]
    assert [m.entry_id for m in index.match_indicator(_ind("phone", "+864001234567"))] == [4]
    assert [m.entry_id for m in index.match_indicator(_ind("email", "kf@evil.com", domain="evil.com"))] == [1]
    assert index.match_indicator(_ind("amount", "5000元")) == []


def test_scan_text_finds_listed_app_names_and_ids_inside_chinese_text():
    index = _index(
        Row(1, "app", "快来赚", "brushing_rebate"),
        Row(2, "wechat", "kf_8888a"),
        Row(3, "app", "zoom"),
        Row(4, "qq", "88886666"),
    )
    found = index.scan_text("下载快来赚APP后加微信KF_8888a，或QQ88886666，zoomed不算")
    assert sorted(m.entry_id for m in found) == [1, 2, 4]


def test_every_entry_is_found_with_its_fields_at_any_table_size():
    """Look-ups go through a directory on the hashes' top bits: check sizes around its bucket counts."""
    later = utcnow() + timedelta(days=1)
    for n in (0, 1, 2, 3, 4, 5, 63, 64, 65, 1000, 5000):
        rows = [
            Row(None if i % 5 == 0 else i, "wechat", f"id_{i}_x", None if i % 3 else "fake_loan",
                ("report", "partner")[i % 2], 0.1234567 + i / 10**5, i % 7 == 0, later if i % 4 else None)
            for i in range(n)
        ]
        index = _index(*rows, builtin=False)
        assert len(index) == n
        for r in rows:
            [m] = index.match_normalized("wechat", r.value)
            assert (m.entry_id, m.fraud_type, m.source, m.allowlisted) == (
                r.entry_id, r.fraud_type, r.source, r.allowlisted)
            assert m.confidence == round(float(np.float32(r.confidence)), 4)
        assert index.match_normalized("wechat", f"id_{n}_x") == []
        assert index.match_normalized("qq", "12345") == []


def _reference_candidates(kind: str, value: str):
    """The candidate keys as first written (split-based generator), to check the faster list builder."""

    def suffixes(host):
        while host.count(".") >= 1:
            yield host
            host = host.split(".", 1)[1]

    def is_ip(host):
        return host.startswith("[") or host.replace(".", "").isdigit()

    if kind == "url":
        host_port = value.partition("/")[0]
        host = host_port[: host_port.index("]") + 1] if host_port.startswith("[") else host_port.split(":")[0]
        full = 128 if is_ip(host) else host.count(".") + 1
        prefix = value
        while True:
            yield (full, 1 + len(prefix) - len(host_port)), "url", prefix
            if "/" not in prefix:
                break
            prefix = prefix.rsplit("/", 1)[0]
        if is_ip(host):
            yield (full, 0), "ip", host.strip("[]")
        else:
            for suffix in suffixes(host):
                yield (suffix.count(".") + 1, 0), "domain", suffix
    elif kind == "domain":
        yield (value.count(".") + 1, 1), "url", value
        for suffix in suffixes(value):
            yield (suffix.count(".") + 1, 0), "domain", suffix
    else:
        yield (0, 0), kind, value


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("url", "a.b.evil.com/x/y/z"), ("url", "evil.com"), ("url", "evil.com:8080/pay/"),
        ("url", "[::1]:80/a"), ("url", "1.2.3.4/a/b"), ("url", "a..b/c"), ("url", "/x"), ("url", ""),
        ("domain", "a.b.c.d"), ("domain", "com"), ("domain", "a..b"), ("phone", "+8613812345678"),
        ("qq", "12345"),
    ],
)
def test_candidate_keys_are_those_of_the_reference_generator(kind, value):
    from fanzha.intel.matcher import _candidates

    got = [(rank, ckind, cvalue) for rank, ckind, cvalue, _ in _candidates(kind, value)]
    assert got == list(_reference_candidates(kind, value))
    assert all(key == f"{ckind}\x00{cvalue}" for _, ckind, cvalue, key in _candidates(kind, value))
