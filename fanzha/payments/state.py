"""Columnar in-memory account state for transfer checks: per-account history in NumPy arrays, ~10 M accounts.

Accounts are addressed by a 64-bit BLAKE2b hash of their id, kept sorted so a look-up is one `searchsorted`;
no Python object per account, so 10 M accounts take about 0.6 GB. "Has this payer paid this payee before" is
a sorted array of pair hashes. Transfers recorded after the build update the arrays in place and put new
pairs in a small set.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from fanzha.payments.ledger import LedgerError, find_table

MASK64 = (1 << 64) - 1
_PAIR_MUL = 0x9E3779B97F4A7C15  # golden-ratio multiplier: spreads the payer hash before mixing in the payee
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
FLAG_BITS = {"id_verified": 1, "face_verified": 2, "remote_opened": 4, "restricted": 8, "dormant": 16,
             "blacklisted": 32}
ELDERLY = "60_plus"


def account_hash(account_id: str) -> int:
    """The 64-bit key of an account id (the same for accounts of this bank and external payees)."""
    return int.from_bytes(blake2b(account_id.encode(), digest_size=8).digest(), "little")


def hash_many(ids: list[str]) -> np.ndarray:
    return np.fromiter((account_hash(i) for i in ids), dtype=np.uint64, count=len(ids))


def pair_key(payer_hash: int, payee_hash: int) -> int:
    return ((payer_hash * _PAIR_MUL) & MASK64) ^ payee_hash


def pair_keys(payer: np.ndarray, payee: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (payer.astype(np.uint64) * np.uint64(_PAIR_MUL)) ^ payee.astype(np.uint64)


def flag_mask(kyc_flags: str | None) -> int:
    return sum(FLAG_BITS.get(f.strip(), 0) for f in (kyc_flags or "").split(","))


@dataclass
class AccountState:
    """Per-account arrays in hash order (index i ↔ keys[i]); -1 in a time column means "never"."""

    keys: np.ndarray  # uint64, sorted
    opened_ms: np.ndarray  # int64
    last_ms: np.ndarray  # int64, last activity (sent or received)
    tx_count: np.ndarray  # int32, transfers sent
    amount_sum: np.ndarray  # int64 fen, sent
    amount_max: np.ndarray  # int64 fen, sent
    elderly: np.ndarray  # bool
    flags: np.ndarray  # uint8, FLAG_BITS
    burst_start: np.ndarray  # int64, start of the payer's current one-hour window
    burst_count: np.ndarray  # int32, transfers sent in that window
    pairs: np.ndarray  # uint64 sorted pair keys (payer paid payee)

    def __post_init__(self) -> None:
        self.new_pairs: set[int] = set()
        self.lock = threading.Lock()  # record() from several request threads

    def __len__(self) -> int:
        return len(self.keys)

    def index(self, key: int) -> int:
        """The account's index, or -1 when it is not an account of this bank."""
        k = np.uint64(key)
        i = int(self.keys.searchsorted(k))
        return i if i < len(self.keys) and self.keys[i] == k else -1

    def has_paid(self, payer_key: int, payee_key: int) -> bool:
        p = pair_key(payer_key, payee_key)
        if p in self.new_pairs:
            return True
        k = np.uint64(p)
        i = int(self.pairs.searchsorted(k))
        return i < len(self.pairs) and self.pairs[i] == k

    def record(self, payer_key: int, payee_key: int | None, amount_fen: int, ts_ms: int) -> None:
        """Fold one executed transfer into the state (after an allowed check, or when replaying history)."""
        with self.lock:
            i = self.index(payer_key)
            if i >= 0:
                self.tx_count[i] += 1
                self.amount_sum[i] += amount_fen
                if amount_fen > self.amount_max[i]:
                    self.amount_max[i] = amount_fen
                if ts_ms > self.last_ms[i]:
                    self.last_ms[i] = ts_ms
                if ts_ms - self.burst_start[i] > HOUR_MS:
                    self.burst_start[i] = ts_ms
                    self.burst_count[i] = 1
                else:
                    self.burst_count[i] += 1
            if payee_key is not None:
                j = self.index(payee_key)
                if j >= 0 and ts_ms > self.last_ms[j]:
                    self.last_ms[j] = ts_ms
                self.new_pairs.add(pair_key(payer_key, payee_key))

    @classmethod
    def empty(cls) -> AccountState:
        return cls.from_columns(np.zeros(0, np.uint64), np.zeros(0, np.int64))

    @classmethod
    def from_columns(
        cls,
        keys: np.ndarray,
        opened_ms: np.ndarray,
        *,
        elderly: np.ndarray | None = None,
        flags: np.ndarray | None = None,
        pairs: np.ndarray | None = None,
    ) -> AccountState:
        """An account table without history (history comes from `record` or the ledger build)."""
        order = np.argsort(keys, kind="stable")
        n = len(keys)
        return cls(
            keys=keys[order].astype(np.uint64),
            opened_ms=opened_ms[order].astype(np.int64),
            last_ms=np.full(n, -1, np.int64),
            tx_count=np.zeros(n, np.int32),
            amount_sum=np.zeros(n, np.int64),
            amount_max=np.zeros(n, np.int64),
            elderly=(elderly[order] if elderly is not None else np.zeros(n, bool)),
            flags=(flags[order].astype(np.uint8) if flags is not None else np.zeros(n, np.uint8)),
            burst_start=np.full(n, -(1 << 62), np.int64),
            burst_count=np.zeros(n, np.int32),
            pairs=np.sort(pairs.astype(np.uint64)) if pairs is not None else np.zeros(0, np.uint64),
        )


def build_state(ledger_dir: Path | str, until_ms: int | None = None) -> AccountState:
    """Aggregate a ledger directory into account state; with `until_ms`, only transfers strictly before it.

    With a cut-off, last activity comes from the transfers alone: the accounts table's `last_active_at` is
    the value at export time and would leak the future into a backtest.
    """
    ledger_dir = Path(ledger_dir)
    acc_path = find_table(ledger_dir, "accounts")
    tr_path = find_table(ledger_dir, "transfers")
    if acc_path is None:
        raise LedgerError(f"no accounts.parquet or accounts.csv in {ledger_dir}")
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute(f"CREATE VIEW a AS SELECT * FROM {_reader(acc_path)}")
    if tr_path is not None:
        cut = f"WHERE epoch_ms(ts) < {int(until_ms)}" if until_ms is not None else ""
        con.execute(f"CREATE VIEW t AS SELECT * FROM {_reader(tr_path)} {cut}")
    else:
        con.execute("CREATE VIEW t AS SELECT NULL::VARCHAR from_account, NULL::VARCHAR to_account, "
                    "0::BIGINT amount_fen, NULL::TIMESTAMP ts WHERE false")
    acc = con.execute(
        "SELECT account_id, epoch_ms(opened_at) opened, "
        f"{'NULL' if until_ms is not None else 'epoch_ms(last_active_at)'} last_active, "
        "coalesce(age_band = '60_plus', false) elderly, kyc_flags FROM a"
    ).to_arrow_table()
    ids = acc.column("account_id").to_pylist()
    keys = hash_many(ids)
    flags = np.fromiter((flag_mask(f) for f in acc.column("kyc_flags").to_pylist()), np.uint8, len(ids))
    elderly = acc.column("elderly").fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    state = AccountState.from_columns(
        keys, acc.column("opened").to_numpy(zero_copy_only=False).astype(np.int64), elderly=elderly,
        flags=flags,
    )
    order = np.argsort(keys, kind="stable")
    last_active = acc.column("last_active").fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    state.last_ms[:] = last_active[order]
    con.register("keys", pa.table({"account_id": ids, "pos": np.argsort(order).astype(np.int64)}))
    sent = con.execute(
        "SELECT k.pos, count(*) n, sum(amount_fen)::BIGINT s, max(amount_fen) m, max(epoch_ms(ts)) last_ts "
        "FROM t JOIN keys k ON t.from_account = k.account_id GROUP BY k.pos"
    ).fetchnumpy()
    pos = sent["pos"].astype(np.int64)
    state.tx_count[pos] = sent["n"]
    state.amount_sum[pos] = sent["s"]
    state.amount_max[pos] = sent["m"]
    state.last_ms[pos] = np.maximum(state.last_ms[pos], sent["last_ts"].astype(np.int64))
    got = con.execute(
        "SELECT k.pos, max(epoch_ms(ts)) last_ts FROM t JOIN keys k ON t.to_account = k.account_id "
        "GROUP BY k.pos"
    ).fetchnumpy()
    gpos = got["pos"].astype(np.int64)
    state.last_ms[gpos] = np.maximum(state.last_ms[gpos], got["last_ts"].astype(np.int64))
    pairs = con.execute(
        "SELECT DISTINCT from_account, to_account FROM t "
        "WHERE from_account IS NOT NULL AND to_account IS NOT NULL"
    ).to_arrow_table()
    if pairs.num_rows:
        payees = pairs.column("to_account").to_pylist()
        # Payees repeat a lot (shops, family): hash each distinct id once.
        cache: dict[str, int] = {}
        payee_keys = np.fromiter((cache.get(p) or cache.setdefault(p, account_hash(p)) for p in payees),
                                 np.uint64, len(payees))
        payer_keys = hash_many(pairs.column("from_account").to_pylist())
        state.pairs = np.unique(pair_keys(payer_keys, payee_keys))
    con.close()
    return state


def _reader(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    if path.suffix == ".csv":
        return f"read_csv('{quoted}', header=true, auto_detect=true)"
    return f"read_parquet('{quoted}')"
