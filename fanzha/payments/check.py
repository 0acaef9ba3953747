"""Real-time transfer check (实时转账核验): payer, payee, history → allow/confirm (三问一确认)/hold/block."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from fanzha.payments import schema
from fanzha.payments.rules import (
    DECISIONS,
    FEATURES,
    RANK,
    Question,
    RemarkGroup,
    RemarkKeywords,
    RuleSet,
    load_questions,
    load_remark_keywords,
    load_rules,
)
from fanzha.payments.state import DAY_MS, FLAG_BITS, HOUR_MS, AccountState, account_hash, hash_many

if TYPE_CHECKING:
    from fanzha.intel.matcher import WatchlistIndex
    from fanzha.text.detector import Detector

CST_OFFSET_MS = 8 * HOUR_MS
CLOCK_SKEW_MS = 5 * 60 * 1000  # a bank's clock may run a little ahead of ours
MAX_ID_LENGTH = 64
_REMARK_CACHE_SIZE = 50_000
_BLACKLISTED = FLAG_BITS["blacklisted"]
_RESTRICTED = FLAG_BITS["restricted"]
_DORMANT = FLAG_BITS["dormant"]
_EFFECT_RISK = {"hold": 60, "block": 90}


class CheckError(ValueError):
    """A request that cannot be checked (the client's mistake): a message in Chinese and English."""

    status = 422

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownAccount(CheckError):
    status = 404


def now_cst_ms() -> int:
    """Now as naive China Standard Time in epoch milliseconds, the ledger's convention."""
    return int(time.time() * 1000) + CST_OFFSET_MS


@dataclass(frozen=True, slots=True)
class TransferCheck:
    """One transfer about to be made. `ts_ms` is naive CST epoch ms (as in the ledger); None = now."""

    payer: str
    payee: str
    amount_fen: int
    ts_ms: int | None = None
    channel: str = "mobile"
    remark: str | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """Identifies the request's content, so a reused idempotency key with other content is caught."""
        body = orjson.dumps([self.payer, self.payee, self.amount_fen, self.ts_ms, self.channel, self.remark])
        return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    text: str
    weight: int


@dataclass(slots=True)
class Decision:
    """The outcome of a transfer check; the API's JSON and `to_json()` are the same bytes."""

    check_id: str
    decision: str  # allow | confirm | hold | block
    risk: int
    reasons: list[Reason]
    questions: list[dict[str, Any]]  # 三问一确认, only when decision is confirm
    rules_version: str
    features: dict[str, float]
    initial_decision: str | None = None  # the decision before 三问一确认 answers changed it
    answers: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        fields = dict(d)
        fields["reasons"] = [Reason(**r) for r in d["reasons"]]
        return cls(**fields)


class MuleScores:
    """Account id → mule score 0–100 (from `fanzha mules`), as a sorted hash array."""

    def __init__(self, keys: np.ndarray, scores: np.ndarray) -> None:
        order = np.argsort(keys)
        self.keys = keys[order].astype(np.uint64)
        self.scores = scores[order].astype(np.int16)

    @classmethod
    def from_mapping(cls, scores: Mapping[str, float]) -> MuleScores:
        ids = list(scores)
        return cls(hash_many(ids), np.array([scores[i] for i in ids], dtype=np.float64).round())

    @classmethod
    def load(cls, path: Path) -> MuleScores:
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["account_id", "score"])
        return cls(hash_many(table.column("account_id").to_pylist()),
                   table.column("score").to_numpy(zero_copy_only=False).round())

    def get(self, key: int) -> int:
        k = np.uint64(key)
        i = int(self.keys.searchsorted(k))
        return int(self.scores[i]) if i < len(self.keys) and self.keys[i] == k else 0


class TransferChecker:
    """Computes a transfer's features from the account state and applies the versioned rules."""

    def __init__(
        self,
        state: AccountState,
        rules: RuleSet | None = None,
        questions: tuple[Question, ...] | None = None,
        *,
        watchlist: WatchlistIndex | None = None,
        mule_scores: MuleScores | None = None,
        detector: Detector | None = None,
        recent_warning: Callable[[str], bool] | None = None,
        clock: Callable[[], int] = now_cst_ms,
        remark_keywords: RemarkKeywords | None = None,
    ) -> None:
        self.state = state
        self.rules = rules or load_rules()
        self.questions = questions if questions is not None else load_questions()[1]
        self.watchlist = watchlist
        self.mule_scores = mule_scores
        self.detector = detector
        self.recent_warning = recent_warning
        self.clock = clock
        self._remarks: dict[str, int] = {}
        self.remark_keywords = remark_keywords if remark_keywords is not None else load_remark_keywords()
        self._remark_groups: dict[str, RemarkGroup | None] = {}
        self._fired = self.rules.compile()
        self._question_dicts = [q.to_dict() for q in self.questions]
        self._by_id = {q.id: q for q in self.questions}

    def validate(self, req: TransferCheck, now_ms: int) -> int:
        """Reject what cannot be checked; return the transfer time."""
        if not req.payer or not req.payee or len(req.payer) > MAX_ID_LENGTH or len(req.payee) > MAX_ID_LENGTH:
            raise CheckError(
                "bad_account", f"账户号为空或过长（最多 {MAX_ID_LENGTH} 字符） / account id empty or too long"
            )
        if req.payer == req.payee:
            raise CheckError("same_account", "付款账户与收款账户相同 / payer and payee are the same account")
        if isinstance(req.amount_fen, bool) or not isinstance(req.amount_fen, int) or req.amount_fen <= 0:
            raise CheckError("bad_amount", "金额必须为正整数（单位：分） / amount_fen must be a positive int")
        if req.amount_fen > schema.MAX_AMOUNT_FEN:
            raise CheckError("bad_amount", "金额超出上限（1亿元） / amount above the limit of ¥100,000,000")
        if req.channel not in _CHANNELS:
            raise CheckError("bad_channel", f"未知渠道 / unknown channel; one of {', '.join(_CHANNELS)}")
        ts = now_ms if req.ts_ms is None else req.ts_ms
        if ts > now_ms + CLOCK_SKEW_MS:
            raise CheckError("future_timestamp", "交易时间晚于当前时间 / transfer time is in the future")
        return ts

    def check(
        self, req: TransferCheck, now_ms: int | None = None, *, recent_warning: bool | None = None
    ) -> Decision:
        """Decide one transfer. Raises CheckError (UnknownAccount for an unknown payer) on bad input.

        `recent_warning` overrides the injected look-up (the API asks its database within the request).
        """
        now = self.clock() if now_ms is None else now_ms
        ts = self.validate(req, now)
        state = self.state
        payer_key = account_hash(req.payer)
        i = state.index(payer_key)
        if i < 0:
            raise UnknownAccount("unknown_payer", "付款账户不存在于本行账户中 / unknown payer account")
        payee_key = account_hash(req.payee)
        j = state.index(payee_key)
        amount_yuan = req.amount_fen / 100
        count = int(state.tx_count[i])
        mean = int(state.amount_sum[i]) / count if count else 0
        last = int(state.last_ms[i])
        opened = int(state.opened_ms[i])
        pflags = int(state.flags[i])
        dormant_days = (ts - (last if last >= 0 else opened)) / DAY_MS
        if pflags & _DORMANT and dormant_days < 180:
            dormant_days = 180.0  # the bank flagged it 久悬 even if our ledger window saw activity
        recent = int(state.burst_count[i]) if ts - int(state.burst_start[i]) <= HOUR_MS else 0
        qflags = int(state.flags[j]) if j >= 0 else 0
        keyword = self._remark_keyword(req.remark) if req.remark else None
        f = [
            amount_yuan,
            1.0 if self._watchlisted(req.payee) else 0.0,
            1.0 if qflags & _BLACKLISTED else 0.0,
            float(self.mule_scores.get(payee_key)) if self.mule_scores is not None else 0.0,
            1.0 if j >= 0 else 0.0,
            (ts - int(state.opened_ms[j])) / DAY_MS if j >= 0 else -1.0,
            0.0 if state.has_paid(payer_key, payee_key) else 1.0,
            dormant_days,
            (ts - opened) / DAY_MS,
            req.amount_fen / max(int(state.amount_max[i]), 100),
            req.amount_fen / mean if mean else amount_yuan,
            float(count),
            1.0 if (ts // HOUR_MS) % 24 < 6 else 0.0,
            float(recent),
            1.0 if state.elderly[i] else 0.0,
            float(self._remark_risk(req.remark)) if req.remark else 0.0,
            1.0 if (self._warned(req.payer) if recent_warning is None else recent_warning) else 0.0,
            1.0 if pflags & _BLACKLISTED else 0.0,
            1.0 if pflags & _RESTRICTED else 0.0,
            1.0 if req.channel == "counter" else 0.0,
            float(keyword.risk) if keyword is not None else 0.0,
        ]
        return self._decide(f, req.idempotency_key, keyword)

    def _decide(self, f: list[float], key: str | None, keyword: RemarkGroup | None = None) -> Decision:
        rules = self.rules
        fired = self._fired(f)
        risk = min(100, sum(r.weight for r in fired))
        floor = max((r.floor for r in fired), default=0)
        c, h, b = rules.bands
        band = 3 if risk >= b else 2 if risk >= h else 1 if risk >= c else 0
        decision = DECISIONS[max(band, floor)]
        reasons = [
            Reason(r.id, self._reason_text(r.id, r.description_zh, keyword), r.weight)
            for r in sorted(fired, key=lambda r: -r.weight)
        ]
        return Decision(
            check_id=os.urandom(16).hex(),  # a random 128-bit id, as uuid4 but without its overhead
            decision=decision,
            risk=risk,
            reasons=reasons,
            questions=self._question_dicts if decision == "confirm" else [],
            rules_version=rules.version,
            features=dict(zip(FEATURES, f, strict=True)),
            idempotency_key=key,
        )

    def answer(self, decision: Decision, answers: Mapping[str, str]) -> Decision:
        """Apply 三问一确认 answers: the strictest answer's effect wins; all benign and complete → allow."""
        if (decision.initial_decision or decision.decision) != "confirm":
            raise CheckError("not_confirm", "该核验无需三问一确认 / this check does not await answers")
        merged = {**decision.answers, **answers}
        reasons = [r for r in decision.reasons if not r.code.startswith("answer:")]
        worst = 0
        for qid, oid in merged.items():
            q = self._by_id.get(qid)
            if q is None:
                raise CheckError(
                    "unknown_question",
                    f"未知问题 {qid!r} / unknown question; one of {list(self._by_id)}"
                )
            opt = q.option(oid)
            if opt is None:
                raise CheckError("unknown_option", f"问题 {qid} 没有选项 {oid!r} / unknown answer option")
            rank = RANK[opt.effect]
            worst = max(worst, rank)
            if rank > 0:
                label = q.text_zh.split("：")[0]
                reasons.append(Reason(f"answer:{qid}:{oid}", f"三问一确认：{label}—{opt.text_zh}",
                                      _EFFECT_RISK[opt.effect]))
        complete = all(q.id in merged for q in self.questions)
        outcome = DECISIONS[worst] if worst > 0 else "allow" if complete else "confirm"
        risk = max(decision.risk, _EFFECT_RISK.get(outcome, 0))
        return replace(
            decision,
            decision=outcome,
            risk=risk,
            reasons=reasons,
            questions=self._question_dicts if outcome == "confirm" else [],
            initial_decision="confirm",
            answers=merged,
        )

    def _warned(self, payer: str) -> bool:
        return self.recent_warning is not None and self.recent_warning(payer)

    def _watchlisted(self, payee: str) -> bool:
        if self.watchlist is None:
            return False
        kinds = ("bank_card", "payment_account") if payee.isdigit() else ("payment_account",)
        for kind in kinds:
            try:
                if any(not m.allowlisted for m in self.watchlist.match(kind, payee)):
                    return True
            except ValueError:  # not a valid value of this kind: it cannot be listed under it
                continue
        return False

    @staticmethod
    def _reason_text(rule_id: str, text: str, keyword: RemarkGroup | None) -> str:
        # A remark keyword rule says which wording matched and why it matters, not just "remark suspicious".
        if keyword is not None and rule_id.startswith("remark_keyword"):
            return f"{text}：{keyword.reason_zh}"
        return text

    def _remark_keyword(self, remark: str) -> RemarkGroup | None:
        try:
            return self._remark_groups[remark]
        except KeyError:
            group = self.remark_keywords.match(remark)
            if len(self._remark_groups) >= _REMARK_CACHE_SIZE:
                self._remark_groups.clear()
            self._remark_groups[remark] = group
            return group

    def _remark_risk(self, remark: str) -> int:
        risk = self._remarks.get(remark)
        if risk is None:
            if self.detector is None or len(remark.strip()) < self.rules.remark_text_min_chars:
                return 0
            risk = self.detector.detect(remark[:500]).risk
            if len(self._remarks) >= _REMARK_CACHE_SIZE:
                self._remarks.clear()  # cheap bound; common remarks ("房租", "还款") come back at once
            self._remarks[remark] = risk
        return risk


_CHANNELS = tuple(c.value for c in schema.Channel)
