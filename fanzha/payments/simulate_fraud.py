"""Fraud flows for the simulator: victims → mule cards (两卡) and 跑分 platforms → cash-out, with labels.

Flows are followed piece by piece, so every transfer carries the case (victim) its money comes from, money
leaves an account only after it arrived there, and what a mule passes on never exceeds what it received.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from fanzha.payments import schema
from fanzha.payments.schema import AccountRole
from fanzha.payments.simulate import (
    AGE_ADULT,
    AGE_ELDERLY,
    AGE_MIDDLE,
    AGE_YOUNG,
    CH_ATM,
    CH_COUNTER,
    CH_MOBILE,
    CH_ONLINE,
    CH_THIRD,
    MS_DAY,
    MS_HOUR,
    MS_MIN,
    P_ORDINARY,
    P_PENSIONER,
    P_STUDENT,
    YUAN,
    Population,
    R,
    Rows,
    SimConfig,
    make_rows,
)

ROLES = [r.value for r in AccountRole]
ROLE_CODE = {r: i for i, r in enumerate(AccountRole)}
# Victims skew to the elderly and the young (students, new workers); minors rarely hold accounts that matter.
VICTIM_AGE_WEIGHT = {0: 0.3, AGE_YOUNG: 2.2, AGE_ADULT: 1.0, AGE_MIDDLE: 1.4, AGE_ELDERLY: 3.0}
ATM_LIMIT_FEN = 20_000 * YUAN  # per withdrawal
BIG_LIMIT = (4_990_000, 4_999_999)  # 49,9xx yuan: just under a ¥50,000 reporting/limit threshold
SMALL_LIMIT = (490_000, 499_999)  # 4,9xx yuan: just under a ¥5,000 non-counter limit
# What victims write (often what the scammer told them to write). Innocuous wording ("还钱", "借款",
# "转账") is in the list on purpose: scammers coach victims to avoid words a bank would query.
VICTIM_REMARKS = [
    "投资款", "保证金", "解冻费", "货款", "手续费", "转账", "借款", "还钱",
    "转入安全账户", "安全账户", "验证资金", "资金核查", "激活费",
]
PLATFORM_VICTIM_REMARKS = ["充值", "刷单佣金", "刷单返利", "货款", "团购"]


@dataclass
class Ring:
    """A laundering ring: layers of mule accounts, its own devices/IPs and cash-out accounts."""

    group: int
    layers: list[np.ndarray]  # layers[0] = first-layer cards (一级卡) …
    devices: np.ndarray
    ips: np.ndarray
    cashout: np.ndarray
    next_card: int = 0  # victims are steered to cards in turn, so every bought card sees fraud money


@dataclass
class FraudPlan:
    """The fraud transfers (as code arrays) and each account's ground-truth role, layer and group."""

    rows: Rows
    n_cases: int
    role: np.ndarray  # int8 index into ROLES
    layer: np.ndarray  # int8, -1 = null
    group: np.ndarray  # int32 index into group_names, -1 = null
    group_names: list[str] = field(default_factory=list)

    def account_labels(self, ids: pa.Array) -> pa.Table:
        names = pa.array(self.group_names or [""], type=pa.string())
        return pa.Table.from_arrays(
            [
                ids,
                pa.array(np.asarray(ROLES, dtype=object)[self.role], type=pa.string()),
                pa.array(self.layer, type=pa.int8(), mask=self.layer < 0),
                names.take(pa.array(np.maximum(self.group, 0), mask=self.group < 0)),
            ],
            schema=schema.LABELS_ACCOUNTS,
        )


class _Flows:
    """Collects fraud transfers row by row while following the money (case counts are small)."""

    def __init__(self, pop: Population, rng: np.random.Generator, start_ms: int, end_ms: int) -> None:
        self.pop = pop
        self.rng = rng
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.cols: list[list[int]] = [[] for _ in range(9)]
        self.fraud: list[bool] = []
        self.quiet = np.zeros(pop.n, dtype=bool)  # holds 6–72 h and passes money on whole
        self.slow = np.zeros(pop.n, dtype=bool)  # forwards after hours to a day, not minutes
        self.own_dev = np.zeros(pop.n, dtype=bool)  # operated from the holder's own phone only
        self.role = np.zeros(pop.n, dtype=np.int8)
        self.layer = np.full(pop.n, -1, dtype=np.int8)
        self.group = np.full(pop.n, -1, dtype=np.int32)

    def emit(
        self,
        src: int,
        dst: int,
        ts: int,
        amount: int,
        channel: int,
        remark: int,
        device: int,
        ip: int,
        case: int,
        fraud: bool = True,
    ) -> None:
        for col, v in zip(self.cols, (src, dst, ts, amount, channel, remark, device, ip, case), strict=True):
            col.append(v)
        self.fraud.append(fraud)

    def rows(self) -> Rows:
        src, dst, ts, amount, channel, remark, device, ip, case = (
            np.asarray(c, dtype=np.int64) for c in self.cols
        )
        rows = make_rows(src, dst, ts, amount, channel, remark, device, ip, True, case)
        rows.fraud = np.asarray(self.fraud, dtype=bool)
        return rows

    def mark(self, acct: int, role: AccountRole, layer: int, group: int) -> None:
        if self.role[acct] == 0 or (self.layer[acct] > layer >= 0):
            self.role[acct] = ROLE_CODE[role]
            self.layer[acct] = layer
            self.group[acct] = group

    def digital(self, ring: Ring, acct: int) -> tuple[int, int, int]:
        """Channel, device and IP of a mule's transfer: rings operate many cards from a few phones, but a
        rented or lived-in card is often used from its holder's own phone (nothing shared with the ring)."""
        ch = CH_MOBILE if self.rng.random() < 0.7 else CH_ONLINE
        if self.own_dev[acct]:
            ip = int(self.pop.ip[acct]) if self.rng.random() < 0.8 else int(self.rng.integers(self.pop.n_ips))
            return ch, int(self.pop.device[acct]), ip
        shared = self.rng.random() < 0.65
        device = (
            int(ring.devices[self.rng.integers(len(ring.devices))]) if shared else int(self.pop.device[acct])
        )
        ip = int(ring.ips[self.rng.integers(len(ring.ips))]) if shared else int(self.pop.ip[acct])
        return ch, device, ip

    def split(self, amount: int, quiet: bool) -> list[int]:
        if quiet or amount < 2_000 * YUAN:
            return [amount]
        if self.rng.random() < 0.55:
            lo, hi = BIG_LIMIT if amount > 60_000 * YUAN else SMALL_LIMIT
            if amount > hi:
                pieces: list[int] = []
                left = amount
                while left > hi:
                    p = int(self.rng.integers(lo, hi + 1))
                    pieces.append(p)
                    left -= p
                if left >= 100 * YUAN:  # smaller remainders stay behind as the mule's cut
                    pieces.append(left)
                return pieces
        k = int(self.rng.integers(1, 4))
        shares = self.rng.dirichlet(np.full(k, 2.0))
        pieces = [int(amount * s) for s in shares]
        pieces[-1] = amount - sum(pieces[:-1])
        return [p for p in pieces if p > 0]

    def forward(self, ring: Ring, acct: int, layer: int, amount: int, t_in: int, case: int) -> None:
        """Money of `case` arrived at mule `acct` (layer `layer`) at `t_in`: pass it on, or cash it out."""
        quiet = bool(self.quiet[acct])
        last = layer >= len(ring.layers)
        if last or amount < 300 * YUAN or (layer >= 2 and self.rng.random() < 0.3):
            self.exit(ring, acct, layer, amount, t_in, case)
            return
        if quiet:
            delay = int(self.rng.uniform(6, 72) * MS_HOUR)
        elif self.slow[acct]:
            delay = int(np.clip(self.rng.lognormal(np.log(5), 0.8), 1, 30) * MS_HOUR)
        else:
            delay = int(np.clip(self.rng.lognormal(np.log(25), 1.0), 1, 720) * MS_MIN)
        cut = int(amount * self.rng.uniform(0.005, 0.03))
        t = t_in + delay
        nxt_layer = ring.layers[layer]
        weights = np.where(self.quiet[nxt_layer], 0.3, 1.0)
        weights /= weights.sum()
        for piece in self.split(amount - cut, quiet):
            t += int(self.rng.uniform(0.3, 8) * MS_MIN)
            if t >= self.end_ms:
                return  # the period ends with the money still on this card
            nxt = int(nxt_layer[self.rng.choice(len(nxt_layer), p=weights)])
            ch, device, ip = self.digital(ring, acct)
            remark = R["货款"] if self.rng.random() < 0.15 else -1
            self.emit(acct, nxt, t, piece, ch, remark, device, ip, case)
            self.mark(nxt, AccountRole.MULE, layer + 1, ring.group)
            self.forward(ring, nxt, layer + 1, piece, t, case)

    def exit(self, ring: Ring, acct: int, layer: int, amount: int, t_in: int, case: int) -> None:
        """Cash-out: ATM withdrawals, buying USDT from an OTC seller, or buying wallet balance."""
        t = t_in + int(self.rng.uniform(10, 240) * MS_MIN)
        how = self.rng.random()
        if how < 0.4:
            left = amount
            while left >= 100 * YUAN and t < self.end_ms:
                take = min(left, ATM_LIMIT_FEN) // (100 * YUAN) * (100 * YUAN)
                self.emit(acct, -1, t, take, CH_ATM, -1, -1, -1, case)
                left -= take
                t += int(self.rng.uniform(2, 15) * MS_MIN)
            return
        if t >= self.end_ms:
            return
        seller = int(ring.cashout[self.rng.integers(len(ring.cashout))])
        ch, device, ip = self.digital(ring, acct)
        if how < 0.8:
            remark = [R["USDT"], R["货款"], -1][int(self.rng.integers(3))]
        else:
            ch, remark = CH_THIRD, (R["充值"] if self.rng.random() < 0.5 else -1)
        self.emit(acct, seller, t, amount, ch, remark, device, ip, case)
        self.mark(seller, AccountRole.CASHOUT, layer + 1, ring.group)


def plan_fraud(pop: Population, cfg: SimConfig, rng: np.random.Generator, start_ms: int) -> FraudPlan:
    """Choose victims, rings, platforms and cash-out accounts, adjust their accounts, generate flows."""
    end_ms = start_ms + cfg.days * MS_DAY
    flows = _Flows(pop, rng, start_ms, end_ms)
    home = pop.groups["home_personal"]
    n_victims = round(cfg.fraud_rate * len(home))
    if n_victims == 0:
        return FraudPlan(flows.rows(), 0, flows.role, flows.layer, flows.group)

    eligible = home[np.isin(pop.persona[home], [P_ORDINARY, P_STUDENT, P_PENSIONER])]
    w = np.vectorize(VICTIM_AGE_WEIGHT.get)(pop.age[eligible]).astype(np.float64)
    victims = rng.choice(eligible, size=min(n_victims, len(eligible)), replace=False, p=w / w.sum())

    n_rings = max(1, math.ceil(len(victims) / 30))
    n_platforms = max(1, math.ceil(n_rings / 3))
    on_platform = rng.random(len(victims)) < 0.2
    ring_victims = victims[~on_platform]
    platform_victims = victims[on_platform]

    # Mule cards: ordinary working-age personal accounts, at this bank or elsewhere (many are other banks').
    personal = pop.groups["personal"]
    cand = personal[
        (pop.persona[personal] == P_ORDINARY) & np.isin(pop.age[personal], [AGE_YOUNG, AGE_ADULT, AGE_MIDDLE])
    ]
    cand = np.setdiff1d(cand, victims)
    sizes = []
    for _ in range(n_rings):
        per = max(1, len(ring_victims) // n_rings)
        l1 = max(3, round(per * rng.uniform(0.5, 1.1)))  # about 1–3 victims per first-layer card
        depth = int(rng.choice([2, 3, 4], p=[0.25, 0.45, 0.30]))
        layer_sizes = [l1] + [
            max(1, round(l1 / 2 ** (i + 1) * rng.uniform(0.8, 1.4))) for i in range(depth - 1)
        ]
        sizes.append(layer_sizes)
    n_cash = 2 * n_rings
    n_collect = [int(rng.integers(4, 11)) for _ in range(n_platforms)]
    need = sum(map(sum, sizes)) + sum(n_collect)
    ext_people = personal[pop.ext[personal]]
    if need > len(cand) or n_cash > len(ext_people) - need:
        raise ValueError("账户太少，容纳不下这么多诈骗团伙 / too few accounts for this fraud rate")
    picked = rng.choice(cand, size=need, replace=False)
    cashouts = rng.choice(
        np.setdiff1d(ext_people, np.concatenate([victims, picked])), size=n_cash, replace=False
    )

    group_names = [f"G{g + 1:04d}" for g in range(n_rings)] + [f"P{p + 1:04d}" for p in range(n_platforms)]
    rings: list[Ring] = []
    pos = 0
    for g, layer_sizes in enumerate(sizes):
        layers = []
        for size in layer_sizes:
            layers.append(picked[pos : pos + size])
            pos += size
        devices = pop.n_devices + np.arange(int(rng.integers(2, 5)))
        pop.n_devices += len(devices)
        ring = Ring(
            g,
            layers,
            devices,
            rng.integers(0, pop.n_ips, size=int(rng.integers(1, 4))),
            cashouts[2 * g : 2 * g + 2],
        )
        _prepare_ring_cards(pop, ring, rng, start_ms, flows)
        rings.append(ring)
    platforms = []
    # About half of the 跑分 collection accounts are small merchants' accounts (the tail of the merchant
    # list) that keep their genuine takings; all of them also get ordinary buyers (they join the sellers).
    merchants = pop.groups["merchants"]
    tail = merchants[len(merchants) // 10 :]
    n_merch = min(sum(n // 2 for n in n_collect), len(tail))
    merch_pick = list(rng.choice(tail, size=n_merch, replace=False)) if n_merch else []
    for p in range(n_platforms):
        accts = picked[pos : pos + n_collect[p]].copy()
        pos += n_collect[p]
        for j in range(n_collect[p] // 2):
            if merch_pick:
                accts[j] = merch_pick.pop()
        platforms.append(accts)
        for a in accts:
            a = int(a)
            flows.mark(a, AccountRole.PLATFORM, 1, n_rings + p)
            flows.own_dev[a] = rng.random() < 0.5
    if platforms:
        pop.groups["sellers"] = rng.permutation(np.concatenate([pop.groups["sellers"], *platforms]))

    case = 0
    for v in ring_victims:
        ring = rings[int(rng.integers(n_rings))]
        _victim_payments(flows, ring, int(v), case, cfg)
        case += 1
    for v in platform_victims:
        p = int(rng.integers(n_platforms))
        _platform_victim(flows, rings[p % n_rings], platforms[p], int(v), case, n_rings + p, cfg)
        case += 1
    for p, accts in enumerate(platforms):
        _platform_payers(flows, rings[p % n_rings], accts, cfg)
    return FraudPlan(flows.rows(), case, flows.role, flows.layer, flows.group, group_names)


def _prepare_ring_cards(
    pop: Population, ring: Ring, rng: np.random.Generator, start_ms: int, flows: _Flows
) -> None:
    """Give the ring's cards their kinds.

    Rented cards (租借: a real person's years-old account, lent for a fee) keep their opening date, KYC
    flags and everyday life, are mostly used from the holder's own phone and forward slowly. Bought cards
    are often new, some opened together at one branch; half of them still carry everyday use.
    """
    batch_day = start_ms - int(rng.integers(3, 60)) * MS_DAY
    batch_branch = int(pop.branch[ring.layers[0][0]])
    for depth, layer in enumerate(ring.layers):
        p_rented = [0.4, 0.3, 0.2, 0.2][min(depth, 3)]
        p_new = [0.7, 0.4, 0.2, 0.2][min(depth, 3)]
        for a in layer:
            a = int(a)
            flows.mark(a, AccountRole.MULE, depth + 1, ring.group)
            flows.quiet[a] = depth < 2 and rng.random() < 0.2
            rented = rng.random() < p_rented
            flows.slow[a] = rng.random() < (0.7 if rented else 0.35)
            flows.own_dev[a] = rng.random() < (0.8 if rented else 0.3)
            if rented:
                pop.weight[a] *= float(rng.uniform(0.8, 1.5))
                continue
            if rng.random() < p_new:
                if depth == 0 and rng.random() < 0.4:
                    pop.opened_ms[a] = batch_day + int(rng.uniform(9, 16) * MS_HOUR)
                    pop.branch[a] = batch_branch
                else:
                    pop.opened_ms[a] = start_ms - int(rng.uniform(2, 90) * MS_DAY)
                pop.kyc[a] = 1 | (4 if rng.random() < 0.4 else 0)
                if rng.random() < 0.5:
                    pop.weight[a] *= 0.05  # a card bought only for laundering sees little everyday use


def _victim_payments(flows: _Flows, ring: Ring, victim: int, case: int, cfg: SimConfig) -> None:
    rng, pop = flows.rng, flows.pop
    flows.mark(victim, AccountRole.VICTIM, 0, ring.group)
    pig = rng.random() < 0.3  # 杀猪盘: trust built over weeks, payments escalate
    n = int(rng.integers(3, 7)) if pig else int(rng.choice([1, 1, 1, 2, 3]))
    day = float(rng.uniform(0, max(cfg.days - (20 if pig else 3), 1)))
    first = ring.layers[0]
    cards = first[[ring.next_card % len(first), int(rng.integers(len(first)))]]
    ring.next_card += 1
    base = rng.lognormal(np.log(5_000 if pig else 15_000), 0.7)
    elderly = pop.age[victim] == AGE_ELDERLY
    for i in range(n):
        amount = int(min(base * (1.8**i if pig else 1.0), 900_000) * YUAN)
        if rng.random() < 0.2:
            amount = int(rng.integers(*BIG_LIMIT))
        amount = max(amount // YUAN * YUAN, 500 * YUAN)
        ts = flows.start_ms + int(day * MS_DAY) + int(np.clip(rng.normal(14, 3), 8, 22) * MS_HOUR)
        if ts >= flows.end_ms:
            return
        to = int(cards[min(i, len(cards) - 1)] if i >= n // 2 else cards[0])
        if elderly and rng.random() < 0.3:
            ch, device, ip = CH_COUNTER, -1, -1
        else:
            ch = CH_MOBILE if rng.random() < 0.8 else CH_ONLINE
            device, ip = int(pop.device[victim]), int(pop.ip[victim])
        remark = R[VICTIM_REMARKS[int(rng.integers(len(VICTIM_REMARKS)))]] if rng.random() < 0.5 else -1
        if pig and remark >= 0 and rng.random() < 0.6:
            remark = R["投资款"]
        flows.emit(victim, to, ts, amount, ch, remark, device, ip, case)
        flows.forward(ring, to, 1, amount, ts, case)
        day += float(rng.uniform(2, 7)) if pig else float(rng.uniform(0.01, 1.5))


def _platform_victim(
    flows: _Flows, ring: Ring, accts: np.ndarray, victim: int, case: int, group: int, cfg: SimConfig
) -> None:
    """刷单/small-payment victims pay a 跑分 platform's rotating collection accounts; each is forwarded on."""
    rng, pop = flows.rng, flows.pop
    flows.mark(victim, AccountRole.VICTIM, 0, group)
    ts = (
        flows.start_ms
        + int(rng.uniform(0, max(cfg.days - 2, 1)) * MS_DAY)
        + int(rng.uniform(9, 23) * MS_HOUR)
    )
    amount = float(rng.uniform(100, 600))
    for _ in range(int(rng.integers(2, 7))):
        if ts >= flows.end_ms:
            return
        to = int(accts[rng.integers(len(accts))])
        fen = int(amount * YUAN)
        pick = int(rng.integers(len(PLATFORM_VICTIM_REMARKS) + 1))
        remark = R[PLATFORM_VICTIM_REMARKS[pick]] if pick < len(PLATFORM_VICTIM_REMARKS) else -1
        flows.emit(
            victim,
            to,
            ts,
            fen,
            CH_THIRD if rng.random() < 0.5 else CH_MOBILE,
            remark,
            int(pop.device[victim]),
            int(pop.ip[victim]),
            case,
        )
        out_ts = ts + int(rng.uniform(5, 120) * MS_MIN)
        if out_ts < flows.end_ms and len(ring.layers) > 1:
            nxt = int(ring.layers[1][rng.integers(len(ring.layers[1]))])
            ch, device, ip = flows.digital(ring, to)
            piece = fen - fen // 50
            flows.emit(to, nxt, out_ts, piece, ch, -1, device, ip, case)
            flows.forward(ring, nxt, 2, piece, out_ts, case)
        ts += int(rng.uniform(0.2, 30) * MS_HOUR)
        amount *= float(rng.uniform(1.3, 2.5))


def _platform_payers(flows: _Flows, ring: Ring, accts: np.ndarray, cfg: SimConfig) -> None:
    """Ordinary-looking payers (gambling deposits, game top-ups) also pay the platform; swept out daily."""
    rng, pop = flows.rng, flows.pop
    payers = pop.groups["personal"]
    for a in accts:
        a = int(a)
        n = int(rng.poisson(1.5 * cfg.days))
        if n == 0:
            continue
        ts = np.sort(flows.start_ms + (rng.random(n) * cfg.days * MS_DAY).astype(np.int64))
        amounts = (
            np.where(
                rng.random(n) < 0.6,
                rng.choice([50, 100, 200, 500, 1000], size=n),
                rng.integers(30, 2_000, size=n),
            )
            * YUAN
        )
        who = payers[rng.integers(0, len(payers), size=n)]
        for t, amt, payer in zip(ts.tolist(), amounts.tolist(), who.tolist(), strict=True):
            flows.emit(
                payer,
                a,
                t,
                amt,
                CH_THIRD,
                R["充值"] if rng.random() < 0.3 else -1,
                int(pop.device[payer]),
                int(pop.ip[payer]),
                -1,
                fraud=False,
            )
        days = (ts - flows.start_ms) // MS_DAY
        for d in np.unique(days):
            today = days == d
            sweep_ts = int(ts[today].max()) + int(rng.uniform(10, 180) * MS_MIN)
            total = int(amounts[today].sum())
            if sweep_ts >= flows.end_ms:
                continue
            ch, device, ip = flows.digital(ring, a)
            seller = int(ring.cashout[rng.integers(len(ring.cashout))])
            flows.emit(a, seller, sweep_ts, total - total // 50, ch, -1, device, ip, -1)
