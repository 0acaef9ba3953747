"""Mule (两卡/跑分) detection: score every account from its features, explain the score, group suspects.

The feature query lives in `mule_features` (one SQL text for DuckDB and Spark); this module holds what both
engines share after it: the model (`knowledge/mule_model.yaml`), scoring, Chinese reasons, clustering,
the embedded DuckDB pipeline and the evaluation against simulator labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fanzha.payments.mule_features import FEATURES, feature_sql, links_sql

MODEL_PATH = Path(__file__).resolve().parent.parent / "knowledge" / "mule_model.yaml"
# Roles that count as positives: every account that receives and passes on or cashes out fraud money.
POSITIVE_ROLES = frozenset({"mule", "platform", "cashout"})
# Features whose raw values are heavy-tailed counts or amounts: the model sees log(1 + x).
LOG_FEATURES = frozenset(
    {
        "n_in",
        "n_out",
        "n_payers",
        "n_payees",
        "in_yuan",
        "hold_minutes",
        "active_days",
        "counterparties_per_day",
        "days_to_first_txn",
        "opened_together",
        "holder_accounts",
        "device_accounts",
        "ip_accounts",
    }
)

MULE_SCORES = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),  # 0–100
        pa.field("group_id", pa.string(), nullable=True),
        pa.field("reasons", pa.string(), nullable=False),  # JSON list of Chinese strings
    ]
)


def _fmt(x: float) -> str:
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"


# The Chinese sentence an analyst reads for a feature whose HIGH value raised the score; `d` = active days.
_REASONS: dict[str, Callable[[float, str], str]] = {
    "n_in": lambda x, d: f"{d} 天内收款 {x:.0f} 笔",
    "n_out": lambda x, d: f"{d} 天内转出 {x:.0f} 笔",
    "n_payers": lambda x, d: f"{d} 天内 {x:.0f} 个不同付款人",
    "n_payees": lambda x, d: f"{d} 天内转给 {x:.0f} 个不同收款人",
    "payer_ratio": lambda x, d: f"付款人几乎互不重复（{x:.0%} 的收款来自不同账户）",
    "in_yuan": lambda x, d: f"累计收款 {x:,.0f} 元",
    "pass_through": lambda x, d: f"收到的钱 {x:.0%} 被转出（过账特征）",
    "fast_out_ratio": lambda x, d: f"{x:.0%} 的收款在 1 小时内转出",
    "day_out_ratio": lambda x, d: f"{x:.0%} 的收款在 24 小时内转出",
    "unusual_in_share": lambda x, d: f"{x:.0%} 的收款金额远超付款人平时的转账习惯（疑似受害人汇款）",
    "chain_in_share": lambda x, d: f"{x:.0%} 的收款来自快进快出的账户（多层转账链）",
    "chain_out_share": lambda x, d: f"{x:.0%} 的转出流向快进快出的账户（多层转账链）",
    "cash_out_ratio": lambda x, d: f"{x:.0%} 的转出为取现",
    "round_ratio": lambda x, d: f"{x:.0%} 的交易为整百金额",
    "night_ratio": lambda x, d: f"{x:.0%} 的交易发生在凌晨 0–6 点",
    "active_days": lambda x, d: f"活跃 {d} 天",
    "counterparties_per_day": lambda x, d: f"平均每天 {_fmt(x)} 个新交易对手",
    "opened_together": lambda x, d: f"与另外 {x - 1:.0f} 个账户同日同网点开户",
    "holder_accounts": lambda x, d: f"持有人名下共 {x:.0f} 个账户",
    "device_accounts": lambda x, d: f"所用设备被 {x:.0f} 个账户共用",
    "ip_accounts": lambda x, d: f"所用 IP 被 {x:.0f} 个账户共用",
    "remote_opened": lambda x, d: "非柜面远程开户",
    "is_merchant": lambda x, d: "商户收款账户",
    "is_corporate": lambda x, d: "对公账户",
}
# … and for a feature whose LOW value raised it; a direction without a sentence gives no reason, so a
# learned coefficient can never produce a sentence that says the opposite of the data.
_LOW_REASONS: dict[str, Callable[[float, str], str]] = {
    "hold_minutes": lambda x, d: f"资金平均停留 {_fmt(x)} 分钟",
    "days_to_first_txn": lambda x, d: f"开户后 {_fmt(max(x, 0))} 天即开始交易",
    "payer_ratio": lambda x, d: f"同一批付款人反复转入（仅 {x:.0%} 的收款来自新的付款人）",
    "active_days": lambda x, d: f"仅活跃 {d} 天",
}


@dataclass(slots=True)
class MuleModel:
    """Logistic regression over standardised features; plain data so it ships as YAML with a version."""

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    version: str = "untrained"
    group_threshold: float = 50.0  # accounts scoring at least this are clustered into groups
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> MuleModel:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        feats = data["features"]
        names = [f["name"] for f in feats]
        if set(names) - set(FEATURES):
            raise ValueError(f"{path}: unknown features {sorted(set(names) - set(FEATURES))}")
        return cls(
            features=names,
            mean=np.array([f["mean"] for f in feats], dtype=np.float64),
            scale=np.array([f["scale"] for f in feats], dtype=np.float64),
            coef=np.array([f["coef"] for f in feats], dtype=np.float64),
            intercept=float(data["intercept"]),
            version=str(data["version"]),
            group_threshold=float(data.get("group_threshold", 50.0)),
            meta={
                k: v
                for k, v in data.items()
                if k not in {"features", "intercept", "version", "group_threshold"}
            },
        )

    def save(self, path: Path = MODEL_PATH) -> None:
        data: dict[str, Any] = {
            "version": self.version,
            **self.meta,
            "group_threshold": self.group_threshold,
            "intercept": round(self.intercept, 6),
            "features": [
                {
                    "name": n,
                    "mean": round(float(m), 6),
                    "scale": round(float(s), 6),
                    "coef": round(float(c), 6),
                }
                for n, m, s, c in zip(self.features, self.mean, self.scale, self.coef, strict=True)
            ],
        }
        path.write_text(
            "# Mule scoring model: logistic regression over standardised features (fanzha mules train).\n"
            + yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )

    def design(self, table: pa.Table) -> np.ndarray:
        """Standardised model inputs (rows = accounts) from a feature table."""
        cols = []
        for name in self.features:
            x = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
            cols.append(np.log1p(np.maximum(x, 0.0)) if name in LOG_FEATURES else x)
        raw = np.column_stack(cols) if cols else np.zeros((table.num_rows, 0))
        return (raw - self.mean) / self.scale

    def contributions(self, table: pa.Table) -> np.ndarray:
        return self.design(table) * self.coef

    def score(self, table: pa.Table) -> np.ndarray:
        """Scores 0–100 (100 × predicted probability of being a mule)."""
        logit = self.intercept + self.contributions(table).sum(axis=1)
        return 100.0 / (1.0 + np.exp(-logit))


def fit(
    table: pa.Table, labels: np.ndarray, *, version: str, meta: dict[str, Any], c: float = 1.0
) -> MuleModel:
    """Train the model on one ledger's features and 0/1 labels (aligned rows)."""
    from sklearn.linear_model import LogisticRegression

    model = MuleModel(
        list(FEATURES),
        np.zeros(len(FEATURES)),
        np.ones(len(FEATURES)),
        np.zeros(len(FEATURES)),
        0.0,
        version=version,
        meta=meta,
    )
    x = model.design(table)
    model.mean = x.mean(axis=0)
    model.scale = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    z = (x - model.mean) / model.scale
    lr = LogisticRegression(C=c, max_iter=2000).fit(z, labels)
    model.coef = lr.coef_[0].astype(np.float64)
    model.intercept = float(lr.intercept_[0])
    return model


def reasons(model: MuleModel, table: pa.Table, top: int = 3) -> list[str]:
    """JSON lists of the Chinese reasons behind each score: the features that raised it most."""
    z = model.design(table)
    contrib = z * model.coef
    order = np.argsort(-contrib, axis=1)[:, : top + 2]
    cols = {n: table.column(n).to_numpy(zero_copy_only=False) for n in FEATURES}
    days = cols["active_days"]
    names = model.features
    out: list[str] = []
    for i in range(table.num_rows):
        d = _fmt(max(float(days[i]), 1.0))
        texts = []
        for j in order[i]:
            if contrib[i, j] <= 0.5:  # only features that clearly raised the score
                break
            say = (_REASONS if z[i, j] > 0 else _LOW_REASONS).get(names[j])
            if say is not None and len(texts) < top:
                texts.append(say(float(cols[names[j]][i]), d))
        out.append(orjson.dumps(texts).decode() if texts else "[]")
    return out


def groups(account_ids: list[str], links: pa.Table) -> dict[str, str]:
    """Connected components over link rows (account_id, node); accounts in components of 2+ get a group id.

    The group id is `G-` + the smallest account id in the group, so it is stable across engines and runs.
    """
    if links.num_rows == 0:
        return {}
    acc = ["a:" + a for a in links.column("account_id").to_pylist()]
    nodes = links.column("node").to_pylist()
    index: dict[str, int] = {}
    for name in (*("a:" + a for a in account_ids), *acc, *nodes):
        index.setdefault(name, len(index))
    rows = np.fromiter((index[a] for a in acc), dtype=np.int64, count=len(acc))
    cols = np.fromiter((index[n] for n in nodes), dtype=np.int64, count=len(nodes))
    n = len(index)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    members: dict[int, list[str]] = {}
    for a in account_ids:
        members.setdefault(int(label[index["a:" + a]]), []).append(a)
    return {a: "G-" + min(ms) for ms in members.values() if len(ms) > 1 for a in ms}


def assemble(model: MuleModel, features: pa.Table, group_of: dict[str, str], scores: np.ndarray) -> pa.Table:
    """The MuleScore table: account_id, score, group_id, reasons."""
    ids = features.column("account_id").to_pylist()
    return pa.table(
        {
            "account_id": ids,
            "score": np.round(scores, 6),
            "group_id": [group_of.get(a) for a in ids],
            "reasons": reasons(model, features),
        },
        schema=MULE_SCORES,
    )


def _ledger_file(ledger: Path, name: str) -> str:
    for ext in ("parquet", "csv"):
        p = ledger / f"{name}.{ext}"
        if p.exists():
            return str(p)
    raise FileNotFoundError(f"{ledger} has no {name}.parquet or {name}.csv")


def _reader(path: str) -> str:
    quoted = path.replace("'", "''")
    return f"read_parquet('{quoted}')" if path.endswith(".parquet") else f"read_csv_auto('{quoted}')"


def connect(ledger: Path, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with views `transfers` and `accounts` over the ledger's files."""
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for name in ("transfers", "accounts"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {_reader(_ledger_file(ledger, name))}")
    return con


def features_duckdb(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return con.execute(feature_sql("duckdb")).to_arrow_table()


def score_ledger(ledger: Path, model: MuleModel | None = None, threads: int | None = None) -> pa.Table:
    """Score every account of a ledger with the embedded engine (DuckDB) and return the MuleScore table."""
    model = model or MuleModel.load()
    con = connect(ledger, threads)
    feats = features_duckdb(con)
    scores = model.score(feats)
    ids = feats.column("account_id").to_pylist()
    suspects = pa.table(
        {"account_id": [a for a, s in zip(ids, scores, strict=True) if s >= model.group_threshold]}
    )
    con.register("suspects", suspects)
    links = con.execute(links_sql()).to_arrow_table()
    return assemble(model, feats, groups(suspects.column("account_id").to_pylist(), links), scores)


def write_scores(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path)


def load_labels(ledger: Path, account_ids: list[str]) -> np.ndarray:
    """0/1 per account: 1 when the simulator's role is mule, platform or cashout (victims are 0)."""
    labels = pq.read_table(_ledger_file(ledger, "labels_accounts"), columns=["account_id", "role"])
    role = dict(zip(labels.column("account_id").to_pylist(), labels.column("role").to_pylist(), strict=True))
    return np.array([1 if role.get(a) in POSITIVE_ROLES else 0 for a in account_ids], dtype=np.int8)


def evaluate(
    scores: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (100, 500, 1000)
) -> dict[str, Any]:
    """PR-AUC, precision/recall at the top k, and the best recall at precision ≥ 0.8 and 0.9."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    n_pos = int(labels.sum())
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(labels[order])
    at_k = {}
    for k in (*ks, n_pos):
        k = min(k, len(scores))
        if k <= 0:
            continue
        at_k[str(k)] = {"precision": float(hits[k - 1] / k), "recall": float(hits[k - 1] / max(n_pos, 1))}
    out: dict[str, Any] = {"accounts": len(scores), "positives": n_pos, "at_k": at_k}
    if 0 < n_pos < len(scores):
        prec, rec, thr = precision_recall_curve(labels, scores)
        out["pr_auc"] = float(average_precision_score(labels, scores))
        for p in (0.8, 0.9):
            ok = prec >= p
            out[f"recall_at_precision_{p}"] = float(rec[ok].max()) if ok.any() else 0.0
        ok = prec[:-1] >= 0.8
        if ok.any():
            best = int(np.argmax(np.where(ok, rec[:-1], -1)))
            out["threshold_at_precision_0.8"] = float(thr[best])
    return out
