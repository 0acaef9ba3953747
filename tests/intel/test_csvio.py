"""CSV import/export of watchlist entries: bad rows are reported by line and do not stop the rest."""

from datetime import datetime

import pytest

from fanzha.intel.csvio import HEADER, CsvFormatError, decode, read_csv, write_csv
from fanzha.store.repo_watchlist import EntryRow


def test_rows_are_normalised_and_bad_rows_are_reported_with_their_line_numbers():
    text = (
        "kind,value,fraud_type,source,confidence\n"
        "phone,+86 138-1234-5678,fake_loan,partner,0.9\n"
        "phone,12,fake_loan,partner,0.9\n"
        "\n"
        "url,HTTPS://Evil.com/Pay/,,,\n"
        "bank_card,6222020000000000001,,,\n"
        "qq,123456,,rumour,\n"
        "domain,evil.com,,,1.5\n"
    )
    result = read_csv(text)
    assert [(i.kind, i.value) for i in result.items] == [("phone", "+8613812345678"), ("url", "evil.com/Pay")]
    assert [e.row for e in result.errors] == [3, 6, 7, 8]
    assert "Luhn" in result.errors[1].error and "source" in result.errors[2].error
    assert result.rows == 6


def test_defaults_fill_missing_columns_and_times_become_naive_utc():
    result = read_csv("value,kind,last_seen\n13812345678,phone,2025-03-01T16:00:00+08:00\n", "report")
    [item] = result.items
    assert (item.source, item.status, item.confidence) == ("report", "active", 0.8)
    assert item.last_seen == datetime(2025, 3, 1, 8, 0)


def test_header_without_kind_or_with_unknown_columns_rejects_the_file():
    with pytest.raises(CsvFormatError, match="unknown: phone_number"):
        read_csv("kind,phone_number\nphone,1\n")
    with pytest.raises(CsvFormatError, match="empty"):
        read_csv("")


def test_gbk_files_from_excel_are_read():
    assert decode("kind,value,note\nwechat,abcdef1,中文备注\n".encode("gb18030")).endswith("中文备注\n")
    assert decode("\ufeffkind,value\n".encode()) == "kind,value\n"


def test_export_writes_the_documented_header_and_reads_back_the_same_items():
    at = datetime(2025, 1, 2, 3, 4, 5)
    rows = [
        EntryRow(
            1,
            "domain",
            "evil.com",
            "fake_investment",
            "analyst",
            0.9,
            "active",
            at,
            at,
            None,
            3,
            'says "hi", twice',
        ),
        EntryRow(2, "phone", "+8613812345678", None, "report", 0.7, "whitelisted", at, at, at, 0, ""),
    ]
    text = "".join(write_csv(rows, chunk_rows=1))
    assert text.splitlines()[0] == ",".join(HEADER)
    back = read_csv(text)
    assert back.errors == []
    assert [
        (i.kind, i.value, i.fraud_type, i.source, i.confidence, i.status, i.note) for i in back.items
    ] == [
        ("domain", "evil.com", "fake_investment", "analyst", 0.9, "active", 'says "hi", twice'),
        ("phone", "+8613812345678", None, "report", 0.7, "whitelisted", ""),
    ]
    assert back.items[1].expires_at == at
