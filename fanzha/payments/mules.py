"""Mule (两卡/跑分) detection: score every account from its features, explain the score, group suspects.

The feature query lives in `mule_features` (one SQL text for DuckDB and Spark); this module holds what both
engines share after it: the model (`knowledge/mule_model.yaml`: gradient-boosted trees, or a logistic
regression), scoring, Chinese reasons, clustering, the embedded DuckDB pipeline and the evaluation against
simulator labels.
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

from fanzha.payments.mule_features import ALL_FEATURES, FEATURES, feature_sql, links_sql, neighbour_sql

MODEL_PATH = Path(__file__).resolve().parent.parent / "knowledge" / "mule_model.yaml"
# Reasons are only worked out for accounts scoring at least this (the rest get none, as before); path
# contributions of trees cost a pass per tree level, which is wasted on the million quiet accounts.
REASON_MIN_SCORE = 0.5
# A feature is named as a reason when it raised the logit by more than this.
REASON_MIN_LOGIT = 0.5
# Accounts scored per block by the trees (see TreeModel.score).
_CHUNK = 32_768
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
    "slow_chain_in_share": lambda x, d: f"{x:.0%} 的收款来自 24 小时内转走资金的账户（多层转账链）",
    "slow_chain_out_share": lambda x, d: f"{x:.0%} 的转出流向 24 小时内转走资金的账户（多层转账链）",
    "drain_in_share": lambda x, d: f"{x:.0%} 的收款是付款人一次转出其大部分资金（疑似受害人汇款）",
    "exposed_in_share": lambda x, d: f"{x:.0%} 的收款来自疑似收受受害人资金的账户（下一层过账）",
    "new_payer_in_share": lambda x, d: f"{x:.0%} 的收款来自近期才出现的新付款人（账户用途突变）",
    "matched_out_ratio": lambda x, d: f"{x:.0%} 的转出与刚收到的款项金额相近（收多少转多少）",
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
    "payee_score": lambda x, d: f"转出资金流向的账户平均可疑分 {x:.0f}（下一层疑似涉诈账户）",
    "payer_score": lambda x, d: f"收款来自的账户平均可疑分 {x:.0f}（上一层疑似涉诈账户）",
    "payee_score_max": lambda x, d: f"曾向可疑分 {x:.0f} 的账户转账",
    "payer_score_max": lambda x, d: f"曾收到可疑分 {x:.0f} 的账户转入",
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
            return cls.from_data(yaml.safe_load(fh), path)

    @classmethod
    def from_data(cls, data: dict[str, Any], path: Path | str = "<model>") -> MuleModel:
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
        path.write_text(
            "# Mule scoring model: logistic regression over standardised features (fanzha mules train).\n"
            + yaml.safe_dump(self.to_data(), allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )

    def to_data(self) -> dict[str, Any]:
        return {
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

    def explain(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature contributions to the logit and whether each value is above the training mean."""
        z = self.design(table)
        return z * self.coef, z > 0

    def score(self, table: pa.Table) -> np.ndarray:
        """Scores 0–100 (100 × predicted probability of being a mule)."""
        logit = self.intercept + self.contributions(table).sum(axis=1)
        return 100.0 / (1.0 + np.exp(-logit))


@dataclass(slots=True)
class TreeModel:
    """Gradient-boosted regression trees on raw features (logit = base + sum of leaf values), as plain data.

    Trees are stored as parallel lists per tree: `feature` (index into `features`, -1 for a leaf),
    `threshold` (go left when x <= threshold), `left`, `right` (child node numbers) and `value` (the leaf
    value; for an inner node, the training-sample-weighted mean of its leaves, for path contributions).
    """

    features: list[str]
    trees: list[dict[str, np.ndarray]]
    base: float
    mean: np.ndarray  # training mean per feature: a reason reads "high" above it, "low" below it
    version: str = "untrained"
    group_threshold: float = 50.0
    meta: dict[str, Any] = field(default_factory=dict)
    # Two-pass model: the first pass scores every account from its own features; this model also reads the
    # money-weighted first-pass scores of each account's counterparties (mule_features.NEIGHBOUR_FEATURES).
    first_pass: TreeModel | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any], path: Path | str = "<model>") -> TreeModel:
        names = list(data["features"])
        if set(names) - set(ALL_FEATURES):
            raise ValueError(f"{path}: unknown features {sorted(set(names) - set(ALL_FEATURES))}")
        first = TreeModel.from_data(data["first_pass"], path) if data.get("first_pass") else None
        if first is None and set(names) - set(FEATURES):
            raise ValueError(f"{path}: neighbour features need a first_pass model")
        if first is not None and set(first.features) - set(FEATURES):
            raise ValueError(f"{path}: the first pass must use only per-account features")
        trees = [
            {
                "feature": np.array(t["feature"], dtype=np.int64),
                "threshold": np.array(t["threshold"], dtype=np.float64),
                "left": np.array(t["left"], dtype=np.int64),
                "right": np.array(t["right"], dtype=np.int64),
                "value": np.array(t["value"], dtype=np.float64),
            }
            for t in data["trees"]
        ]
        return cls(
            features=names,
            trees=trees,
            base=float(data["base"]),
            mean=np.array(data["mean"], dtype=np.float64),
            version=str(data["version"]),
            group_threshold=float(data.get("group_threshold", 50.0)),
            meta={
                k: v
                for k, v in data.items()
                if k
                not in {
                    "kind",
                    "features",
                    "trees",
                    "trees_file",
                    "base",
                    "mean",
                    "version",
                    "group_threshold",
                    "first_pass",
                }
            },
            first_pass=first,
        )

    def to_data(self) -> dict[str, Any]:
        return {
            "kind": "trees",
            "version": self.version,
            **self.meta,
            "group_threshold": self.group_threshold,
            "features": list(self.features),
            "mean": [round(float(m), 6) for m in self.mean],
            "base": float(self.base),
            "trees": [
                {
                    "feature": t["feature"].tolist(),
                    # repr-exact floats: a rounded threshold could send a training value the other way
                    "threshold": [float(x) for x in t["threshold"]],
                    "left": t["left"].tolist(),
                    "right": t["right"].tolist(),
                    "value": [float(x) for x in t["value"]],
                }
                for t in self.trees
            ],
        } | ({"first_pass": self.first_pass.to_data()} if self.first_pass is not None else {})

    def matrix(self, table: pa.Table) -> np.ndarray:
        cols = [table.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in self.features]
        return np.column_stack(cols) if cols else np.zeros((table.num_rows, 0))

    def _walk(self, x: np.ndarray, contrib: np.ndarray | None) -> np.ndarray:
        """Logits by walking each tree row by row; adds path contributions to `contrib` when given."""
        rows = np.arange(len(x))
        logit = np.full(len(x), self.base)
        for t in self.trees:
            feat, thr, left, right, value = t["feature"], t["threshold"], t["left"], t["right"], t["value"]
            node = np.zeros(len(x), dtype=np.int64)
            while True:
                inner = feat[node] >= 0
                if not inner.any():
                    break
                f = np.where(inner, feat[node], 0)
                nxt = np.where(x[rows, f] <= thr[node], left[node], right[node])
                nxt = np.where(inner, nxt, node)
                if contrib is not None:
                    r = rows[inner]
                    contrib[r, f[inner]] += value[nxt[inner]] - value[node[inner]]
                node = nxt
            logit += value[node]
        return logit

    @staticmethod
    def _leaf(t: dict[str, np.ndarray], codes: list[np.ndarray], cuts: list[dict[float, int]], node: int):
        """Leaf node number per account, as a select per inner node over bin codes (1 byte per account)."""
        f = int(t["feature"][node])
        if f < 0:
            return np.int16(node)
        return np.where(
            codes[f] <= cuts[f][float(t["threshold"][node])],
            TreeModel._leaf(t, codes, cuts, int(t["left"][node])),
            TreeModel._leaf(t, codes, cuts, int(t["right"][node])),
        )

    def score(self, table: pa.Table) -> np.ndarray:
        """Scores 0–100 (100 × predicted probability of being a mule).

        Each feature is first coded by the sorted thresholds the trees use on it (code = number of thresholds
        below the value, so value <= threshold k exactly when code <= k); the trees then run column-wise on
        these small integer codes, one comparison and one select per inner node over all accounts. Exactly the
        same decisions as walking each tree on the raw values (`_walk`), at a fraction of the memory traffic.
        """
        n = table.num_rows
        thresholds: list[set[float]] = [set() for _ in self.features]
        for t in self.trees:
            for f, thr in zip(t["feature"].tolist(), t["threshold"].tolist(), strict=True):
                if f >= 0:
                    thresholds[f].add(thr)
        codes, cuts = [], []
        for j, name in enumerate(self.features):
            cut = np.array(sorted(thresholds[j]), dtype=np.float64)
            x = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
            code = np.searchsorted(cut, x, side="left")
            codes.append(code.astype(np.uint8 if len(cut) < 255 else np.uint16))
            cuts.append({float(c): k for k, c in enumerate(cut)})
        logit = np.full(n, self.base)
        for start in range(0, n, _CHUNK):  # chunks small enough that the codes stay in the CPU cache
            part = [c[start : start + _CHUNK] for c in codes]
            acc = logit[start : start + _CHUNK]
            for t in self.trees:
                acc += t["value"][self._leaf(t, part, cuts, 0)]
        return 100.0 / (1.0 + np.exp(-logit))

    def explain(self, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature path contributions to the logit (they add up to logit − mean root value) and
        whether each value is above the training mean (a "high" reason) or not (a "low" one)."""
        x = self.matrix(table)
        contrib = np.zeros_like(x)
        self._walk(x, contrib)
        return contrib, x > self.mean


Model = MuleModel | TreeModel


def load_model(path: Path = MODEL_PATH) -> Model:
    """The scoring model in a knowledge file: `kind: trees` (gradient-boosted trees) or a logistic model."""
    if path.suffix == ".json":
        data = orjson.loads(path.read_bytes())
    else:
        with path.open(encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if data.get("kind") == "trees":
        if "trees_file" in data:  # the trees live in a JSON file next to the YAML (fast to parse)
            stored = orjson.loads((path.parent / data["trees_file"]).read_bytes())
            data["trees"] = stored["trees"]
            if data.get("first_pass"):
                data["first_pass"]["trees"] = stored["first_pass_trees"]
        return TreeModel.from_data(data, path)
    return MuleModel.from_data(data, path)


def save_model(model: Model, path: Path = MODEL_PATH) -> None:
    """Write a model as YAML (the bundled format) or, for a `.json` path, as JSON."""
    data = model.to_data()
    if path.suffix == ".json":
        path.write_bytes(orjson.dumps(data))
        return
    if isinstance(model, MuleModel):
        model.save(path)
        return
    # The YAML keeps what a person reads (version, seeds, features, hyperparameters); the trees go to a JSON
    # file next to it, which parses in milliseconds where YAML takes seconds.
    trees_path = path.with_name(path.stem + ".trees.json")
    stored = {"version": model.version, "trees": data["trees"]}
    head = {k: v for k, v in data.items() if k != "trees"} | {"trees_file": trees_path.name}
    if "first_pass" in data:
        stored["first_pass_trees"] = data["first_pass"]["trees"]
        head["first_pass"] = {k: v for k, v in data["first_pass"].items() if k != "trees"}
    trees_path.write_bytes(orjson.dumps(stored))
    path.write_text(
        "# Mule scoring model: gradient-boosted trees over the features of fanzha/payments/mule_features.py\n"
        "# (fanzha mules train: two passes, the second over neighbours' first-pass scores). The\n"
        "# trees are in the JSON file named by trees_file: per tree, lists feature (-1 = leaf), threshold\n"
        "# (go left when feature <= threshold), left, right, value; a first_pass model's under\n"
        "# first_pass_trees.\n" + yaml.safe_dump(head, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )


def fit_trees(
    table: pa.Table,
    labels: np.ndarray,
    *,
    version: str,
    meta: dict[str, Any],
    max_iter: int = 300,
    max_depth: int = 4,
    learning_rate: float = 0.05,
    min_samples_leaf: int = 20,
    l2_regularization: float = 1.0,
    features: tuple[str, ...] | list[str] = FEATURES,
    sample_weight: np.ndarray | None = None,
    first_pass: TreeModel | None = None,
) -> TreeModel:
    """Train gradient-boosted trees (scikit-learn HistGradientBoosting) and export them as plain data.

    `table` must hold every column of `features` (the neighbour columns too when there is a first pass).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = TreeModel(
        list(features), [], 0.0, np.zeros(len(features)), version=version, meta=meta, first_pass=first_pass
    )
    x = model.matrix(table)
    gbt = HistGradientBoostingClassifier(
        max_iter=max_iter,
        max_depth=max_depth,
        learning_rate=learning_rate,
        min_samples_leaf=min_samples_leaf,
        l2_regularization=l2_regularization,
        early_stopping=False,
        random_state=0,
    ).fit(x, labels, sample_weight=sample_weight)
    model.base = float(np.ravel(gbt._baseline_prediction)[0])
    model.mean = np.average(x, axis=0, weights=sample_weight)
    for (predictor,) in gbt._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        value = nodes["value"].astype(np.float64).copy()
        count = nodes["count"].astype(np.float64)
        left, right = nodes["left"].astype(np.int64), nodes["right"].astype(np.int64)
        # an inner node's value is the sample-weighted mean of its children's, filled bottom-up
        order: list[int] = []
        stack = [0]
        while stack:
            i = stack.pop()
            order.append(i)
            if not leaf[i]:
                stack += [int(left[i]), int(right[i])]
        for i in reversed(order):
            if not leaf[i]:
                a, b = int(left[i]), int(right[i])
                value[i] = (value[a] * count[a] + value[b] * count[b]) / max(count[a] + count[b], 1.0)
        model.trees.append(
            {
                "feature": np.where(leaf, -1, nodes["feature_idx"].astype(np.int64)),
                "threshold": np.where(leaf, 0.0, nodes["num_threshold"].astype(np.float64)),
                "left": np.where(leaf, -1, left),
                "right": np.where(leaf, -1, right),
                "value": value,
            }
        )
    return model


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


def reasons(model: Model, table: pa.Table, top: int = 3, scores: np.ndarray | None = None) -> list[str]:
    """JSON lists of the Chinese reasons behind each score: the features that raised it most.

    Only accounts scoring at least `REASON_MIN_SCORE` are explained (when `scores` is given).
    """
    out = ["[]"] * table.num_rows
    idx = np.arange(table.num_rows) if scores is None else np.flatnonzero(scores >= REASON_MIN_SCORE)
    if len(idx) == 0:
        return out
    sub = table.take(pa.array(idx))
    contrib, high = model.explain(sub)
    order = np.argsort(-contrib, axis=1)[:, : top + 2]
    cols = {n: sub.column(n).to_numpy(zero_copy_only=False) for n in {*model.features, "active_days"}}
    days = cols["active_days"]
    names = model.features
    for k, i in enumerate(idx):
        d = _fmt(max(float(days[k]), 1.0))
        texts = []
        for j in order[k]:
            if contrib[k, j] <= REASON_MIN_LOGIT:  # only features that clearly raised the score
                break
            say = (_REASONS if high[k, j] else _LOW_REASONS).get(names[j])
            if say is not None and len(texts) < top:
                texts.append(say(float(cols[names[j]][k]), d))
        if texts:
            out[int(i)] = orjson.dumps(texts).decode()
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


def assemble(model: Model, features: pa.Table, group_of: dict[str, str], scores: np.ndarray) -> pa.Table:
    """The MuleScore table: account_id, score, group_id, reasons."""
    ids = features.column("account_id").to_pylist()
    return pa.table(
        {
            "account_id": ids,
            "score": np.round(scores, 6),
            "group_id": [group_of.get(a) for a in ids],
            "reasons": reasons(model, features, scores=scores),
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


def first_pass_table(feats: pa.Table, scores: np.ndarray) -> pa.Table:
    """Table `first_pass(account_id, score_dm)`: first-pass scores in tenths, as exact integers for SQL."""
    return pa.table(
        {
            "account_id": feats.column("account_id"),
            "score_dm": pa.array(np.rint(np.asarray(scores) * 10).astype(np.int64)),
        }
    )


def add_neighbours(feats: pa.Table, neighbours: pa.Table) -> pa.Table:
    """The feature table with the neighbour columns of `neighbour_sql()` (same accounts, same order)."""
    if not neighbours.column("account_id").equals(feats.column("account_id")):
        raise ValueError("neighbour features are not aligned with the account features")
    for name in neighbours.column_names[1:]:
        feats = feats.append_column(name, neighbours.column(name))
    return feats


def model_features(model: Model, feats: pa.Table, run_neighbours: Callable[[pa.Table], pa.Table]) -> pa.Table:
    """What `model.score` reads: the per-account features, plus the neighbour features of a two-pass model.

    `run_neighbours(first_pass)` makes the `first_pass` table visible to the engine as `first_pass` and
    returns the result of `neighbour_sql()`; DuckDB and Spark run the same query text.
    """
    first = getattr(model, "first_pass", None)
    if first is None:
        return feats
    return add_neighbours(feats, run_neighbours(first_pass_table(feats, first.score(feats))))


def neighbours_duckdb(con: duckdb.DuckDBPyConnection) -> Callable[[pa.Table], pa.Table]:
    def run(first_pass: pa.Table) -> pa.Table:
        con.register("first_pass", first_pass)
        return con.execute(neighbour_sql()).to_arrow_table()

    return run


def score_ledger(ledger: Path, model: Model | None = None, threads: int | None = None) -> pa.Table:
    """Score every account of a ledger with the embedded engine (DuckDB) and return the MuleScore table."""
    model = model or load_model()
    con = connect(ledger, threads)
    feats = model_features(model, features_duckdb(con), neighbours_duckdb(con))
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
