"""Per-account mule features as one SQL definition rendered for DuckDB and Spark SQL.

Both engines run the same text except for the millisecond-epoch expression, so the embedded and the Spark
scores agree by construction. Every feature column is cast to DOUBLE (DuckDB would return HUGEINT sums).
"""

from __future__ import annotations

import re
from typing import Literal

Dialect = Literal["duckdb", "spark"]

# Milliseconds since the epoch of a naive timestamp; Spark reads naive Parquet timestamps as UTC instants
# (session time zone UTC, see fanzha/jobs/spark_session.py), which gives the same number.
_EPOCH_MS = {"duckdb": "epoch_ms(ts)", "spark": "unix_millis(ts)"}
# The latest non-null value of an expression in a running window.
_LAST_NON_NULL = {"duckdb": "last_value({x} IGNORE NULLS)", "spark": "last({x}, true)"}

# Money forwarded within this many seconds of the latest incoming payment counts as "fast pass-through".
FAST_SECONDS = 3600
# … and within this many seconds as "same-day pass-through" (rented cards forward after hours, not minutes).
DAY_SECONDS = 86400
# An incoming payment is "unusual for its payer" when it is at least this many times the payer's average
# outgoing transfer and at least ¥1,000: victims pay sums far above their own habits, customers do not.
UNUSUAL_MULTIPLE = 5
# An outgoing payment "matches" the latest incoming one when it is 80–100 % of it and leaves within this many
# seconds (money in and out of similar size: the balance goes back to where it was).
MATCH_SECONDS = 48 * 3600
# A payer "drains" into this account when one payment of at least ¥1,000 is at least half of everything the
# payer sent in the ledger's window (a victim sends their savings; a shopper or tenant spreads payments).
DRAIN_SHARE = 0.5
# An account is "exposed" when at least this share of its inflow is unusual-for-the-payer or draining
# money (victim-like); money from exposed accounts marks the next layer.
EXPOSED_SHARE = 0.3
# A payer is "new" when their first payment to the account comes this many days after the account's first
# transaction in the window (a rented card: an established account suddenly paid by strangers).
NEW_PAYER_DAYS = 14
# A shared key (device, IP, branch+day) used by more accounts than this is infrastructure (a café's NAT,
# a busy branch), not a ring, and links nothing when clustering.
MAX_SHARED_KEY_ACCOUNTS = 30

FEATURES: tuple[str, ...] = (
    "n_in",
    "n_out",
    "n_payers",
    "n_payees",
    "payer_ratio",
    "in_yuan",
    "pass_through",
    "fast_out_ratio",
    "day_out_ratio",
    "hold_minutes",
    "chain_in_share",
    "unusual_in_share",
    "chain_out_share",
    "slow_chain_in_share",
    "slow_chain_out_share",
    "drain_in_share",
    "exposed_in_share",
    "new_payer_in_share",
    "matched_out_ratio",
    "cash_out_ratio",
    "round_ratio",
    "night_ratio",
    "active_days",
    "counterparties_per_day",
    "days_to_first_txn",
    "opened_together",
    "holder_accounts",
    "device_accounts",
    "ip_accounts",
    "remote_opened",
    "is_merchant",
    "is_corporate",
)

# Second pass (graph propagation): the money-weighted first-pass score of an account's counterparties. A
# rented first-layer card looks like a person paying for a flat, until one sees that its money goes on to
# accounts that themselves look like mules (the next layer), and a cash-out account is paid by them.
NEIGHBOUR_FEATURES: tuple[str, ...] = (
    "payee_score",
    "payer_score",
    "payee_score_max",
    "payer_score_max",
)
ALL_FEATURES: tuple[str, ...] = FEATURES + NEIGHBOUR_FEATURES

_SQL = """
WITH t AS (
  SELECT from_account, to_account, amount_fen, {epoch_ms} AS ts_ms, hour(ts) AS hr, device_id, ip
  FROM transfers
),
ev AS (
  SELECT to_account AS account_id, from_account AS cp, 1 AS is_in, amount_fen, ts_ms, hr
  FROM t WHERE to_account IS NOT NULL
  UNION ALL
  SELECT from_account AS account_id, to_account AS cp, 0 AS is_in, amount_fen, ts_ms, hr
  FROM t WHERE from_account IS NOT NULL
),
seq AS (
  SELECT account_id, is_in, CASE WHEN cp IS NULL THEN 1 ELSE 0 END AS is_cash, amount_fen, ts_ms, hr,
    max(CASE WHEN is_in = 1 THEN ts_ms END) OVER w AS last_in_ms,
    {last_in_amount} OVER w AS last_in_fen
  FROM ev
  WINDOW w AS (PARTITION BY account_id ORDER BY ts_ms, is_in DESC, amount_fen
    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
agg AS (
  SELECT account_id,
    sum(is_in) AS n_in,
    sum(1 - is_in) AS n_out,
    sum(CASE WHEN is_in = 1 THEN amount_fen ELSE 0 END) AS in_fen,
    sum(CASE WHEN is_in = 0 THEN amount_fen ELSE 0 END) AS out_fen,
    sum(CASE WHEN is_in = 0 AND is_cash = 1 THEN amount_fen ELSE 0 END) AS cash_fen,
    sum(CASE WHEN is_in = 0 AND ts_ms - last_in_ms <= {fast_ms} THEN amount_fen ELSE 0 END) AS fast_fen,
    sum(CASE WHEN is_in = 0 AND ts_ms - last_in_ms <= {day_ms} THEN amount_fen ELSE 0 END) AS day_fen,
    sum(CASE WHEN is_in = 0 AND ts_ms - last_in_ms <= {match_ms} AND amount_fen <= last_in_fen
      AND 5 * amount_fen >= 4 * last_in_fen THEN amount_fen ELSE 0 END) AS matched_fen,
    avg(CASE WHEN is_in = 0 AND last_in_ms IS NOT NULL THEN ln(1 + (ts_ms - last_in_ms) / 60000.0) END)
      AS log_hold,
    sum(CASE WHEN amount_fen % 10000 = 0 THEN 1 ELSE 0 END) AS n_round,
    sum(CASE WHEN hr < 6 THEN 1 ELSE 0 END) AS n_night,
    count(*) AS n_all,
    min(ts_ms) AS first_ms,
    max(ts_ms) AS last_ms
  FROM seq GROUP BY account_id
),
prof AS (
  SELECT account_id, out_fen,
    CASE WHEN in_fen > 0 AND fast_fen >= 0.5 * in_fen THEN 1 ELSE 0 END AS is_fwd,
    CASE WHEN in_fen > 0 AND day_fen >= 0.5 * in_fen THEN 1 ELSE 0 END AS is_dfwd,
    CASE WHEN n_out > 0 THEN out_fen / n_out END AS avg_out
  FROM agg
),
nb AS (
  SELECT e.account_id,
    sum(CASE WHEN e.is_in = 1 THEN p.is_fwd * e.amount_fen ELSE 0 END) AS chain_in_fen,
    sum(CASE WHEN e.is_in = 0 THEN p.is_fwd * e.amount_fen ELSE 0 END) AS chain_out_fen,
    sum(CASE WHEN e.is_in = 1 THEN p.is_dfwd * e.amount_fen ELSE 0 END) AS slow_chain_in_fen,
    sum(CASE WHEN e.is_in = 0 THEN p.is_dfwd * e.amount_fen ELSE 0 END) AS slow_chain_out_fen,
    sum(CASE WHEN e.is_in = 1 AND e.amount_fen >= 100000 AND e.amount_fen >= {unusual} * p.avg_out
      THEN e.amount_fen ELSE 0 END) AS unusual_fen,
    sum(CASE WHEN e.is_in = 1 AND e.amount_fen >= 100000 AND e.amount_fen >= {drain} * p.out_fen
      THEN e.amount_fen ELSE 0 END) AS drain_fen
  FROM ev e JOIN prof p ON e.cp = p.account_id
  GROUP BY e.account_id
),
exposed AS (
  SELECT g.account_id FROM agg g JOIN nb n ON g.account_id = n.account_id
  WHERE g.in_fen > 0 AND (n.unusual_fen >= {exposed} * g.in_fen OR n.drain_fen >= {exposed} * g.in_fen)
),
expo_in AS (
  SELECT e.account_id, sum(e.amount_fen) AS exposed_in_fen
  FROM ev e JOIN exposed x ON e.cp = x.account_id
  WHERE e.is_in = 1
  GROUP BY e.account_id
),
pairs AS (
  SELECT account_id, cp, max(is_in) AS has_in, max(1 - is_in) AS has_out,
    min(CASE WHEN is_in = 1 THEN ts_ms END) AS first_in_ms,
    sum(CASE WHEN is_in = 1 THEN amount_fen ELSE 0 END) AS in_fen
  FROM ev WHERE cp IS NOT NULL
  GROUP BY account_id, cp
),
pstat AS (
  SELECT p.account_id, sum(p.has_in) AS n_payers, sum(p.has_out) AS n_payees, count(*) AS n_cp,
    sum(CASE WHEN p.has_in = 1 AND p.first_in_ms > g.first_ms + {new_payer_ms} THEN p.in_fen ELSE 0 END)
      AS new_in_fen
  FROM pairs p JOIN agg g ON p.account_id = g.account_id
  GROUP BY p.account_id
),
dev AS (
  SELECT DISTINCT from_account AS account_id, device_id FROM t
  WHERE device_id IS NOT NULL AND from_account IS NOT NULL
),
dev_n AS (SELECT device_id, count(*) AS n FROM dev GROUP BY device_id),
dev_max AS (
  SELECT d.account_id, max(n.n) AS device_accounts FROM dev d JOIN dev_n n ON d.device_id = n.device_id
  GROUP BY d.account_id
),
ipa AS (
  SELECT DISTINCT from_account AS account_id, ip FROM t WHERE ip IS NOT NULL AND from_account IS NOT NULL
),
ip_n AS (SELECT ip, count(*) AS n FROM ipa GROUP BY ip),
ip_max AS (
  SELECT d.account_id, max(n.n) AS ip_accounts FROM ipa d JOIN ip_n n ON d.ip = n.ip GROUP BY d.account_id
),
acc AS (
  SELECT account_id, account_type, kyc_flags, {epoch_opened} AS opened_ms,
    count(*) OVER (PARTITION BY branch, CAST(opened_at AS DATE)) AS opened_together,
    count(*) OVER (PARTITION BY holder_id) AS holder_accounts
  FROM accounts
)
SELECT a.account_id,
  CAST(coalesce(g.n_in, 0) AS DOUBLE) AS n_in,
  CAST(coalesce(g.n_out, 0) AS DOUBLE) AS n_out,
  CAST(coalesce(w.n_payers, 0) AS DOUBLE) AS n_payers,
  CAST(coalesce(w.n_payees, 0) AS DOUBLE) AS n_payees,
  CAST(CASE WHEN g.n_in > 0 THEN coalesce(w.n_payers, 0) / g.n_in ELSE 0 END AS DOUBLE) AS payer_ratio,
  CAST(coalesce(g.in_fen, 0) / 100.0 AS DOUBLE) AS in_yuan,
  CAST(CASE WHEN g.in_fen > 0 THEN least(g.out_fen / g.in_fen, 1.0) ELSE 0 END AS DOUBLE) AS pass_through,
  CAST(CASE WHEN g.in_fen > 0 THEN least(g.fast_fen / g.in_fen, 1.0) ELSE 0 END AS DOUBLE) AS fast_out_ratio,
  CAST(CASE WHEN g.in_fen > 0 THEN least(g.day_fen / g.in_fen, 1.0) ELSE 0 END AS DOUBLE) AS day_out_ratio,
  CAST(CASE WHEN g.log_hold IS NULL THEN -1 ELSE exp(g.log_hold) - 1 END AS DOUBLE) AS hold_minutes,
  CAST(CASE WHEN g.in_fen > 0 THEN coalesce(c.chain_in_fen, 0) / g.in_fen ELSE 0 END AS DOUBLE)
    AS chain_in_share,
  CAST(CASE WHEN g.in_fen > 0 THEN coalesce(c.unusual_fen, 0) / g.in_fen ELSE 0 END AS DOUBLE)
    AS unusual_in_share,
  CAST(CASE WHEN g.out_fen > 0 THEN coalesce(c.chain_out_fen, 0) / g.out_fen ELSE 0 END AS DOUBLE)
    AS chain_out_share,
  CAST(CASE WHEN g.in_fen > 0 THEN coalesce(c.slow_chain_in_fen, 0) / g.in_fen ELSE 0 END AS DOUBLE)
    AS slow_chain_in_share,
  CAST(CASE WHEN g.out_fen > 0 THEN coalesce(c.slow_chain_out_fen, 0) / g.out_fen ELSE 0 END AS DOUBLE)
    AS slow_chain_out_share,
  CAST(CASE WHEN g.in_fen > 0 THEN coalesce(c.drain_fen, 0) / g.in_fen ELSE 0 END AS DOUBLE)
    AS drain_in_share,
  CAST(CASE WHEN g.in_fen > 0 THEN coalesce(x.exposed_in_fen, 0) / g.in_fen ELSE 0 END AS DOUBLE)
    AS exposed_in_share,
  CAST(CASE WHEN g.in_fen > 0 THEN coalesce(w.new_in_fen, 0) / g.in_fen ELSE 0 END AS DOUBLE)
    AS new_payer_in_share,
  CAST(CASE WHEN g.out_fen > 0 THEN g.matched_fen / g.out_fen ELSE 0 END AS DOUBLE) AS matched_out_ratio,
  CAST(CASE WHEN g.out_fen > 0 THEN g.cash_fen / g.out_fen ELSE 0 END AS DOUBLE) AS cash_out_ratio,
  CAST(CASE WHEN g.n_all > 0 THEN g.n_round / g.n_all ELSE 0 END AS DOUBLE) AS round_ratio,
  CAST(CASE WHEN g.n_all > 0 THEN g.n_night / g.n_all ELSE 0 END AS DOUBLE) AS night_ratio,
  CAST(CASE WHEN g.n_all > 0 THEN (g.last_ms - g.first_ms) / 86400000.0 ELSE 0 END AS DOUBLE) AS active_days,
  CAST(CASE WHEN g.n_all > 0 THEN coalesce(w.n_cp, 0) / (1 + (g.last_ms - g.first_ms) / 86400000.0) ELSE 0 END
    AS DOUBLE)
    AS counterparties_per_day,
  CAST(CASE WHEN g.n_all > 0 THEN greatest((g.first_ms - a.opened_ms) / 86400000.0, 0) ELSE -1 END AS DOUBLE)
    AS days_to_first_txn,
  CAST(a.opened_together AS DOUBLE) AS opened_together,
  CAST(a.holder_accounts AS DOUBLE) AS holder_accounts,
  CAST(coalesce(d.device_accounts, 0) AS DOUBLE) AS device_accounts,
  CAST(coalesce(i.ip_accounts, 0) AS DOUBLE) AS ip_accounts,
  CAST(CASE WHEN a.kyc_flags LIKE '%remote_opened%' THEN 1 ELSE 0 END AS DOUBLE) AS remote_opened,
  CAST(CASE WHEN a.account_type = 'merchant' THEN 1 ELSE 0 END AS DOUBLE) AS is_merchant,
  CAST(CASE WHEN a.account_type = 'corporate' THEN 1 ELSE 0 END AS DOUBLE) AS is_corporate
FROM acc a
LEFT JOIN agg g ON a.account_id = g.account_id
LEFT JOIN nb c ON a.account_id = c.account_id
LEFT JOIN expo_in x ON a.account_id = x.account_id
LEFT JOIN pstat w ON a.account_id = w.account_id
LEFT JOIN dev_max d ON a.account_id = d.account_id
LEFT JOIN ip_max i ON a.account_id = i.account_id
ORDER BY a.account_id
"""

# Links between suspicious accounts (table `suspects(account_id)`): each row joins an account to a node,
# which is another suspicious account (money moved between them) or a shared key (device, IP, branch+day,
# holder); connected components over these rows are the groups.
_LINKS_SQL = """
WITH t AS (
  SELECT from_account, to_account, device_id, ip FROM transfers
  WHERE from_account IS NOT NULL
),
keys AS (
  SELECT DISTINCT from_account AS account_id, concat('d:', device_id) AS node FROM t
  WHERE device_id IS NOT NULL
  UNION
  SELECT DISTINCT from_account AS account_id, concat('i:', ip) AS node FROM t WHERE ip IS NOT NULL
  UNION
  SELECT account_id, concat('o:', branch, ':', CAST(CAST(opened_at AS DATE) AS STRING)) AS node FROM accounts
  UNION
  SELECT account_id, concat('h:', holder_id) AS node FROM accounts
),
small AS (
  SELECT node FROM keys GROUP BY node HAVING count(*) BETWEEN 2 AND {max_shared}
)
SELECT DISTINCT k.account_id, k.node FROM keys k
JOIN small s ON k.node = s.node
JOIN suspects p ON k.account_id = p.account_id
UNION
SELECT DISTINCT t.from_account AS account_id, concat('a:', t.to_account) AS node FROM t
JOIN suspects p ON t.from_account = p.account_id
JOIN suspects q ON t.to_account = q.account_id
"""


# Neighbour features over `transfers`, `accounts` and `first_pass(account_id, score_dm)`: every account's
# first-pass score in tenths (an integer 0–1000, so sums are exact and both engines agree to the bit).
# Money weights: a payment of ¥50,000 to a suspect says more than ¥20 of shared dinner. Cash withdrawals have
# no counterparty and are left out; an account without payees (payers) gets -1.
_NEIGHBOUR_SQL = """
WITH t AS (
  SELECT from_account, to_account, amount_fen FROM transfers
  WHERE from_account IS NOT NULL AND to_account IS NOT NULL
),
ev AS (
  SELECT from_account AS account_id, to_account AS cp, 0 AS is_in, amount_fen FROM t
  UNION ALL
  SELECT to_account AS account_id, from_account AS cp, 1 AS is_in, amount_fen FROM t
),
nb AS (
  SELECT e.account_id,
    sum(CASE WHEN e.is_in = 0 THEN e.amount_fen ELSE 0 END) AS out_fen,
    sum(CASE WHEN e.is_in = 1 THEN e.amount_fen ELSE 0 END) AS in_fen,
    sum(CASE WHEN e.is_in = 0 THEN e.amount_fen * s.score_dm ELSE 0 END) AS out_dm,
    sum(CASE WHEN e.is_in = 1 THEN e.amount_fen * s.score_dm ELSE 0 END) AS in_dm,
    max(CASE WHEN e.is_in = 0 THEN s.score_dm END) AS out_max,
    max(CASE WHEN e.is_in = 1 THEN s.score_dm END) AS in_max
  FROM ev e JOIN first_pass s ON e.cp = s.account_id
  GROUP BY e.account_id
)
SELECT a.account_id,
  CAST(CASE WHEN n.out_fen > 0 THEN CAST(n.out_dm AS DOUBLE) / CAST(n.out_fen AS DOUBLE) / 10 ELSE -1 END
    AS DOUBLE) AS payee_score,
  CAST(CASE WHEN n.in_fen > 0 THEN CAST(n.in_dm AS DOUBLE) / CAST(n.in_fen AS DOUBLE) / 10 ELSE -1 END
    AS DOUBLE) AS payer_score,
  CAST(coalesce(CAST(n.out_max AS DOUBLE) / 10, -1) AS DOUBLE) AS payee_score_max,
  CAST(coalesce(CAST(n.in_max AS DOUBLE) / 10, -1) AS DOUBLE) AS payer_score_max
FROM accounts a
LEFT JOIN nb n ON a.account_id = n.account_id
ORDER BY a.account_id
"""


def _doubles(sql: str) -> str:
    # Spark reads `86400000.0` as a DECIMAL literal and rounds decimal division; DOUBLE everywhere keeps
    # both engines on the same IEEE arithmetic.
    return re.sub(r"(?<![\w.])(\d+\.\d+)", r"CAST(\1 AS DOUBLE)", sql)


def feature_sql(dialect: Dialect) -> str:
    """The per-account feature query over views `transfers` and `accounts`, in the given SQL dialect."""
    return _doubles(
        _SQL.format(
            epoch_ms=_EPOCH_MS[dialect],
            epoch_opened=_EPOCH_MS[dialect].replace("ts", "opened_at"),
            fast_ms=FAST_SECONDS * 1000,
            day_ms=DAY_SECONDS * 1000,
            match_ms=MATCH_SECONDS * 1000,
            unusual=UNUSUAL_MULTIPLE,
            drain=DRAIN_SHARE,
            exposed=EXPOSED_SHARE,
            new_payer_ms=NEW_PAYER_DAYS * 86400 * 1000,
            last_in_amount=_LAST_NON_NULL[dialect].format(x="CASE WHEN is_in = 1 THEN amount_fen END"),
        )
    )


def neighbour_sql() -> str:
    """The second-pass query (same text for both engines) over `transfers`, `accounts` and `first_pass`."""
    return _doubles(_NEIGHBOUR_SQL)


def links_sql() -> str:
    """The clustering links query (same text for both engines) over `transfers`, `accounts`, `suspects`."""
    return _LINKS_SQL.format(max_shared=MAX_SHARED_KEY_ACCOUNTS)
