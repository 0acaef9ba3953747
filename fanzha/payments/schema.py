"""The ledger contract shared by the simulator, transfer checks, tracing, mule scoring and the Spark jobs.

A ledger is a directory holding `accounts.parquet` and `transfers.parquet` (or `.csv` with the same columns),
and, for simulated ledgers, `labels_accounts.parquet` / `labels_transfers.parquet` with the ground truth and
`manifest.json` (seed, sizes, generator version).

Conventions:
- Amounts are integers in fen (分, 1/100 yuan) in `amount_fen`: attribution of a victim's money along a trace
  must add up exactly, which floats do not guarantee.
- Timestamps are naive `timestamp[ms]` in China Standard Time (UTC+8); "night" and "business hours" are read
  in that local time.
- `from_account` is null for a cash deposit; `to_account` is null for a cash withdrawal (ATM or counter).
- Account ids are opaque strings; card numbers never appear in the ledger (they are personal data).
"""

from __future__ import annotations

from enum import StrEnum

import pyarrow as pa

LEDGER_VERSION = 1


class Channel(StrEnum):
    COUNTER = "counter"
    ATM = "atm"
    MOBILE = "mobile"
    ONLINE = "online"
    THIRD_PARTY = "third_party"  # 第三方支付 (Alipay, WeChat Pay …) moving money in or out of the bank


class AccountType(StrEnum):
    PERSONAL = "personal"
    CORPORATE = "corporate"
    MERCHANT = "merchant"  # a shop's collection account: legitimately high fan-in


class AgeBand(StrEnum):
    MINOR = "under_18"
    YOUNG = "18_29"
    ADULT = "30_44"
    MIDDLE = "45_59"
    ELDERLY = "60_plus"


class AccountRole(StrEnum):
    """Ground-truth role of an account in a simulated ledger (labels_accounts.parquet)."""

    NORMAL = "normal"
    VICTIM = "victim"
    MULE = "mule"  # any layer of 两卡 passing fraud money on (layer 1 = 一级卡 …)
    PLATFORM = "platform"  # 跑分 platform collection account
    CASHOUT = "cashout"  # final cash-out / crypto-purchase account


# KYC flags are a comma-separated list of these codes in `accounts.kyc_flags` (empty string = none).
KYC_FLAGS = (
    "id_verified",  # 实名核验通过
    "face_verified",  # 人脸核验
    "remote_opened",  # opened through a remote channel
    "restricted",  # 非柜面交易受限 (new or suspicious account with limits)
    "dormant",  # 久悬/睡眠户 flagged by the bank
    "blacklisted",  # holder on a 惩戒/黑名单 list
)

ACCOUNTS = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("bank", pa.string(), nullable=False),  # bank code, e.g. "ICBC"; "EXT" for another bank
        pa.field("account_type", pa.string(), nullable=False),  # AccountType
        pa.field("holder_id", pa.string(), nullable=False),  # pseudonymous person/company id
        pa.field("branch", pa.string(), nullable=False),  # opening branch code
        pa.field("opened_at", pa.timestamp("ms"), nullable=False),
        pa.field("last_active_at", pa.timestamp("ms"), nullable=True),
        pa.field("region", pa.string(), nullable=False),  # holder's 行政区划 code, 6 digits
        pa.field("age_band", pa.string(), nullable=True),  # AgeBand; null for corporate/merchant
        pa.field("kyc_flags", pa.string(), nullable=False),
    ]
)

TRANSFERS = pa.schema(
    [
        pa.field("transfer_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("ms"), nullable=False),
        pa.field("from_account", pa.string(), nullable=True),
        pa.field("to_account", pa.string(), nullable=True),
        pa.field("amount_fen", pa.int64(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),  # Channel
        pa.field("remark", pa.string(), nullable=True),  # 附言, free text
        pa.field("device_id", pa.string(), nullable=True),
        pa.field("ip", pa.string(), nullable=True),
    ]
)

LABELS_ACCOUNTS = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("role", pa.string(), nullable=False),  # AccountRole
        pa.field("layer", pa.int8(), nullable=True),  # 0 victim, 1 first-layer mule, 2 …; null for normal
        pa.field("group_id", pa.string(), nullable=True),  # fraud ring / platform the account belongs to
    ]
)

LABELS_TRANSFERS = pa.schema(
    [
        pa.field("transfer_id", pa.string(), nullable=False),
        # part of a fraud flow (victim payment or laundering)
        pa.field("is_fraud", pa.bool_(), nullable=False),
        pa.field("case_id", pa.string(), nullable=True),  # the victim's case the money comes from
    ]
)

LEDGER_FILES = {
    "accounts": ACCOUNTS,
    "transfers": TRANSFERS,
    "labels_accounts": LABELS_ACCOUNTS,
    "labels_transfers": LABELS_TRANSFERS,
}

# Amounts above this are rejected as absurd (¥100 million in one transfer from a personal ledger row).
MAX_AMOUNT_FEN = 100_000_000 * 100
