"""A small hand-built ledger for transfer-check tests (written with pyarrow in the ledger schema)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fanzha.payments import schema

NOW = datetime(2026, 11, 23, 10, 0)


def ms(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1)).total_seconds() * 1000)


NOW_MS = ms(NOW)

ACCOUNTS = [
    # id, opened, last_active, age_band, kyc_flags
    ("A", datetime(2024, 1, 1), datetime(2026, 11, 20), "30_44", "id_verified"),
    ("B", datetime(2020, 1, 1), datetime(2026, 11, 20), "30_44", "id_verified"),
    ("E", datetime(2015, 1, 1), datetime(2026, 11, 1), "60_plus", "id_verified"),
    ("D", datetime(2018, 1, 1), datetime(2025, 1, 5), "45_59", "id_verified"),
    ("N", datetime(2026, 11, 20), None, "18_29", "remote_opened"),
    ("M", datetime(2026, 11, 1), None, "18_29", ""),
    ("X", datetime(2022, 1, 1), None, "30_44", "blacklisted"),
    ("R", datetime(2026, 11, 18), None, "18_29", "restricted"),
]


def write_ledger(
    directory: Path, transfers: list[tuple] | None = None, labels: list[bool] | None = None
) -> Path:
    """Accounts above plus transfers (id, ts, from, to, amount_fen, channel, remark); A pays B routinely."""
    directory.mkdir(parents=True, exist_ok=True)
    acc = pa.table(
        {
            "account_id": [a[0] for a in ACCOUNTS],
            "bank": ["ICBC"] * len(ACCOUNTS),
            "account_type": ["personal"] * len(ACCOUNTS),
            "holder_id": [f"h{a[0]}" for a in ACCOUNTS],
            "branch": ["0001"] * len(ACCOUNTS),
            "opened_at": [a[1] for a in ACCOUNTS],
            "last_active_at": [a[2] for a in ACCOUNTS],
            "region": ["330106"] * len(ACCOUNTS),
            "age_band": [a[3] for a in ACCOUNTS],
            "kyc_flags": [a[4] for a in ACCOUNTS],
        },
        schema=schema.ACCOUNTS,
    )
    if transfers is None:
        transfers = [(f"t{k}", datetime(2026, 10, 1 + k, 12), "A", "B", 20_000 + 1000 * k, "mobile", "房租")
                     for k in range(10)]
        transfers += [("td", datetime(2025, 1, 5, 9), "D", "B", 50_000, "counter", None),
                      ("te", datetime(2026, 11, 1, 9), "E", "B", 80_000, "mobile", None)]
    tr = pa.table(
        {
            "transfer_id": [t[0] for t in transfers],
            "ts": [t[1] for t in transfers],
            "from_account": [t[2] for t in transfers],
            "to_account": [t[3] for t in transfers],
            "amount_fen": [t[4] for t in transfers],
            "channel": [t[5] for t in transfers],
            "remark": [t[6] for t in transfers],
            "device_id": [None] * len(transfers),
            "ip": [None] * len(transfers),
        },
        schema=schema.TRANSFERS,
    )
    pq.write_table(acc, directory / "accounts.parquet")
    pq.write_table(tr, directory / "transfers.parquet")
    if labels is not None:
        pq.write_table(
            pa.table({"transfer_id": [t[0] for t in transfers], "is_fraud": labels,
                      "case_id": [None] * len(transfers)}, schema=schema.LABELS_TRANSFERS),
            directory / "labels_transfers.parquet",
        )
    return directory
