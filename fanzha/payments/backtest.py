"""Backtest the transfer rules on a labelled ledger: replay transfers in time order through the checker."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson

from fanzha.payments.check import CheckError, MuleScores, TransferCheck, TransferChecker
from fanzha.payments.ledger import LedgerError, find_table
from fanzha.payments.rules import RuleSet, load_rules
from fanzha.payments.state import account_hash, build_state

if TYPE_CHECKING:
    from fanzha.intel.matcher import WatchlistIndex
    from fanzha.text.detector import Detector


@dataclass
class BacktestReport:
    """Per-rule and per-decision counts on fraud (victim → first-layer mule) and legitimate transfers."""

    rules_version: str
    checked: int = 0
    fraud: int = 0
    legit: int = 0
    skipped: int = 0  # cash movements, laundering hops and transfers from unknown payers
    decisions: dict[str, dict[str, int]] = field(default_factory=dict)  # decision → {fraud, legit}
    rules: dict[str, dict[str, int]] = field(default_factory=dict)  # rule id → {fraud, legit}

    def to_dict(self) -> dict[str, Any]:
        flagged_fraud = sum(v["fraud"] for k, v in self.decisions.items() if k != "allow")
        flagged_legit = sum(v["legit"] for k, v in self.decisions.items() if k != "allow")
        return {
            "rules_version": self.rules_version, "checked": self.checked, "fraud": self.fraud,
            "legit": self.legit, "skipped": self.skipped,
            "hit_rate": round(flagged_fraud / self.fraud, 4) if self.fraud else None,
            "false_alarm_rate": round(flagged_legit / self.legit, 6) if self.legit else None,
            "decisions": self.decisions,
            "rules": {
                rid: {**c, "hit_rate": round(c["fraud"] / self.fraud, 4) if self.fraud else None,
                      "false_alarm_rate": round(c["legit"] / self.legit, 6) if self.legit else None}
                for rid, c in self.rules.items()
            },
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)


def backtest(
    ledger_dir: Path,
    rules: RuleSet | None = None,
    warmup: float = 0.5,
    limit: int | None = None,
    mule_scores: MuleScores | None = None,
    detector: Detector | None = None,
    watchlist: WatchlistIndex | None = None,
) -> BacktestReport:
    """Build state from the first `warmup` share of time, then check each later transfer and record it.

    Only transfers between two accounts count: the fraud side is a victim paying a first-layer mule (what a
    transfer check at the victim's bank can stop); later laundering hops are skipped, not scored as legit.
    `detector` scores remarks with the text engine as the service does; `watchlist` feeds the payee rules.
    `mule_scores` and the watchlist should hold only what was known before the warm-up cut: anything learnt
    from the whole ledger knows the future and flatters the rules.
    """
    rules = rules or load_rules()
    tr_path = find_table(ledger_dir, "transfers")
    if tr_path is None:
        raise LedgerError(f"no transfers in {ledger_dir}")
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    src = f"read_parquet('{tr_path}')" if tr_path.suffix != ".csv" else f"read_csv('{tr_path}', header=true)"
    lt, la = find_table(ledger_dir, "labels_transfers"), find_table(ledger_dir, "labels_accounts")
    if lt is None:
        raise LedgerError(f"no labels_transfers in {ledger_dir}: a backtest needs a labelled ledger")
    layer = (f"(SELECT layer FROM read_parquet('{la}') la WHERE la.account_id = t.from_account)"
             if la is not None else "0")
    lo, hi = con.execute(f"SELECT min(epoch_ms(ts)), max(epoch_ms(ts)) FROM {src}").fetchone() or (0, 0)
    cut = int(lo + (hi - lo) * warmup)
    rows = con.execute(
        f"SELECT t.transfer_id, epoch_ms(t.ts), t.from_account, t.to_account, t.amount_fen, t.channel, "
        f"t.remark, coalesce(l.is_fraud, false), {layer} FROM {src} t "
        f"LEFT JOIN read_parquet('{lt}') l USING (transfer_id) WHERE epoch_ms(t.ts) >= {cut} "
        f"ORDER BY t.ts, t.transfer_id {'LIMIT ' + str(int(limit)) if limit else ''}"
    ).fetchall()
    con.close()
    checker = TransferChecker(
        build_state(ledger_dir, until_ms=cut), rules, mule_scores=mule_scores, detector=detector,
        watchlist=watchlist,
    )
    report = BacktestReport(rules.version, rules={r.id: {"fraud": 0, "legit": 0} for r in rules.rules})
    decisions: Counter[tuple[str, str]] = Counter()
    for _tid, ts, payer, payee, amount, channel, remark, is_fraud, payer_layer in rows:
        if payer is None or payee is None:
            report.skipped += 1
            continue
        label = None
        if not is_fraud:
            label = "legit"
        elif payer_layer is None or payer_layer == 0:
            label = "fraud"
        if label is not None:
            try:
                d = checker.check(TransferCheck(payer, payee, int(amount), ts, channel, remark), now_ms=ts)
            except CheckError:
                report.skipped += 1
                label = None
            else:
                report.checked += 1
                setattr(report, label, getattr(report, label) + 1)
                decisions[(d.decision, label)] += 1
                for r in d.reasons:
                    report.rules[r.code][label] += 1
        else:
            report.skipped += 1
        checker.state.record(account_hash(payer), account_hash(payee), int(amount), int(ts))
    report.decisions = {d: {"fraud": decisions[(d, "fraud")], "legit": decisions[(d, "legit")]}
                        for d in ("allow", "confirm", "hold", "block")}
    return report



def load_watchlist(path: Path) -> tuple[WatchlistIndex, int, int]:
    """A watchlist file (CSV, or a STIX 2.1 bundle as .json) as an index; (index, entries, rejected rows)."""
    from fanzha.intel import csvio, stix
    from fanzha.intel.matcher import WatchlistIndex

    data = path.read_bytes()
    parsed = stix.read_bundle(data) if path.suffix.lower() == ".json" else csvio.read_csv(csvio.decode(data))
    index = WatchlistIndex()
    for item in parsed.items:
        index.add(item)
    return index, len(parsed.items), len(parsed.errors)
