"""Simulate a bank's ledger: accounts, everyday transfers and embedded fraud flows, with ground-truth labels.

Generation is vectorised with NumPy and written in chunks (one Parquet row group per chunk), so memory stays
bounded by the chunk size and the account count, not by the number of transfers. Same seed → same files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fanzha.payments import schema
from fanzha.payments.schema import AccountRole, AccountType, AgeBand, Channel

GENERATOR_VERSION = "2.0"
HOME_BANK = "FZB"  # the simulated bank; counterparties elsewhere are "EXT"
MS_DAY = 86_400_000
MS_HOUR = 3_600_000
MS_MIN = 60_000
YUAN = 100  # fen per yuan

Format = Literal["parquet", "csv"]

# Codes used inside the generator; strings are attached only when a chunk is written.
CHANNELS = [c.value for c in Channel]
CH_COUNTER, CH_ATM, CH_MOBILE, CH_ONLINE, CH_THIRD = range(5)
ACCOUNT_TYPES = [AccountType.PERSONAL.value, AccountType.CORPORATE.value, AccountType.MERCHANT.value]
T_PERSONAL, T_CORPORATE, T_MERCHANT = range(3)
AGE_BANDS = [a.value for a in AgeBand]
AGE_MINOR, AGE_YOUNG, AGE_ADULT, AGE_MIDDLE, AGE_ELDERLY = range(5)

# Remarks shared by everyday and fraud payments on purpose: a remark alone must not give the answer away.
REMARKS = [
    "工资",
    "房租",
    "生活费",
    "货款",
    "还钱",
    "饭钱",
    "养老金",
    "代购",
    "转账",
    "报销",
    "充值",
    "红包",
    "投资款",
    "保证金",
    "解冻费",
    "手续费",
    "刷单佣金",
    "USDT",
    "借款",
    "学费",
    "押金",
    "分红",
    "提现",
    # added in generator 2.0: scam wording on some victim payments, everyday wording on look-alikes
    "转入安全账户",
    "安全账户",
    "刷单返利",
    "验证资金",
    "资金核查",
    "激活费",
    "医药费",
    "分摊",
    "团购",
    "定金",
    "进货款",
    "购房款",
    "首付",
    "车款",
]
R = {text: i for i, text in enumerate(REMARKS)}

# Prefecture-level 行政区划 codes the holders live in (a few provinces, weighted towards big cities).
REGIONS = [
    "110105",
    "110108",
    "310115",
    "310104",
    "440106",
    "440304",
    "440305",
    "330106",
    "330110",
    "320106",
    "320505",
    "510107",
    "510104",
    "420111",
    "430104",
    "350203",
    "370202",
    "610113",
    "500112",
    "410105",
    "450103",
    "530102",
    "360111",
    "220104",
    "230103",
    "130104",
    "140105",
    "340104",
    "460106",
    "520102",
]

# Personas: how an everyday personal account behaves (hidden; all are labelled normal).
# P_SHOP: a small shop or stall taking payments on a personal account (个人收款码) and sweeping them on daily.
P_ORDINARY, P_STUDENT, P_PENSIONER, P_LANDLORD, P_SELLER, P_PAYROLL_AGENT, P_SHOP = range(7)


@dataclass(frozen=True)
class SimConfig:
    """What to generate. `transfers` is a target: the result is within a few percent of it."""

    accounts: int = 100_000
    transfers: int = 1_000_000
    days: int = 60
    seed: int = 1
    fraud_rate: float = 0.002  # share of personal accounts at the bank that become fraud victims
    start: datetime = datetime(2026, 9, 1)
    chunk_rows: int = 1_000_000
    fmt: Format = "parquet"

    def __post_init__(self) -> None:
        if self.accounts < 1_000:
            raise ValueError("至少需要 1,000 个账户 / need at least 1,000 accounts")
        if self.transfers < 1_000:
            raise ValueError("至少需要 1,000 笔交易 / need at least 1,000 transfers")
        if not 1 <= self.days <= 3_650:
            raise ValueError("天数须在 1 到 3650 之间 / days must be 1..3650")
        if not 0.0 <= self.fraud_rate <= 0.2:
            raise ValueError("诈骗比例须在 0 到 0.2 之间 / fraud rate must be 0..0.2")
        if self.fmt not in ("parquet", "csv"):
            raise ValueError("格式须为 parquet 或 csv / format must be parquet or csv")


@dataclass
class Population:
    """Every account as parallel arrays, plus the hidden relations everyday transfers follow."""

    n: int
    acct_type: np.ndarray  # int8 T_*
    ext: np.ndarray  # bool: held at another bank
    holder: np.ndarray  # int64 holder number (several accounts may share one)
    region: np.ndarray  # int16 index into REGIONS
    age: np.ndarray  # int8 AGE_*, -1 for corporate/merchant
    persona: np.ndarray  # int8 P_*, -1 for corporate/merchant
    opened_ms: np.ndarray  # int64 epoch ms (local time)
    branch: np.ndarray  # int32 branch number
    kyc: np.ndarray  # uint8 bit mask over schema.KYC_FLAGS
    weight: np.ndarray  # float64 how often the account starts an everyday transfer
    device: np.ndarray  # int64 device number (shared by a holder's accounts)
    ip: np.ndarray  # int64 index into the IP pool
    employer: np.ndarray  # int64 corporate account paying the salary, -1 none
    landlord: np.ndarray  # int64 landlord account the rent goes to, -1 none
    parent: np.ndarray  # int64 account paying living costs (students) or receiving support (elderly), -1
    twin: np.ndarray  # int64 another account of the same holder, -1 none
    groups: dict[str, np.ndarray] = field(default_factory=dict)  # named index sets (merchants, sellers …)
    n_devices: int = 0
    n_ips: int = 0


@dataclass
class Rows:
    """A batch of transfers as code arrays (account indices, -1 = none; remark/device/ip codes, -1 = null)."""

    src: np.ndarray
    dst: np.ndarray
    ts: np.ndarray
    amount: np.ndarray
    channel: np.ndarray
    remark: np.ndarray
    device: np.ndarray
    ip: np.ndarray
    fraud: np.ndarray  # bool
    case: np.ndarray  # int64 case number, -1 none

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        return Rows(*(np.concatenate([getattr(p, f) for p in parts]) for f in Rows.__dataclass_fields__))

    def take(self, idx: np.ndarray) -> Rows:
        return Rows(*(getattr(self, f)[idx] for f in Rows.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.src)


def make_rows(
    src: np.ndarray,
    dst: np.ndarray,
    ts: np.ndarray,
    amount: np.ndarray,
    channel: np.ndarray | int,
    remark: np.ndarray | int = -1,
    device: np.ndarray | int = -1,
    ip: np.ndarray | int = -1,
    fraud: bool = False,
    case: np.ndarray | int = -1,
) -> Rows:
    n = len(src)

    def full(v: np.ndarray | int, dtype: type) -> np.ndarray:
        return np.full(n, v, dtype=dtype) if np.isscalar(v) else np.asarray(v, dtype=dtype)

    return Rows(
        full(src, np.int64),
        full(dst, np.int64),
        full(ts, np.int64),
        full(amount, np.int64),
        full(channel, np.int8),
        full(remark, np.int16),
        full(device, np.int64),
        full(ip, np.int64),
        np.full(n, fraud, dtype=bool),
        full(case, np.int64),
    )


# ---------------------------------------------------------------------------------------------- accounts


def build_population(cfg: SimConfig, rng: np.random.Generator, start_ms: int) -> Population:
    n = cfg.accounts
    acct_type = rng.choice(3, size=n, p=[0.90, 0.03, 0.07]).astype(np.int8)
    ext = rng.random(n) < 0.18
    personal = acct_type == T_PERSONAL
    age = np.where(personal, rng.choice(5, size=n, p=[0.03, 0.24, 0.30, 0.25, 0.18]), -1).astype(np.int8)
    persona = np.full(n, -1, dtype=np.int8)
    persona[personal] = P_ORDINARY
    home_personal = personal & ~ext
    draw = rng.random(n)
    persona[home_personal & (age == AGE_YOUNG) & (draw < 0.25)] = P_STUDENT
    persona[home_personal & (age == AGE_ELDERLY) & (draw < 0.7)] = P_PENSIONER
    persona[home_personal & np.isin(age, [AGE_ADULT, AGE_MIDDLE, AGE_ELDERLY]) & (draw > 0.96)] = P_LANDLORD
    persona[home_personal & np.isin(age, [AGE_YOUNG, AGE_ADULT]) & (draw > 0.93) & (draw <= 0.96)] = P_SELLER
    persona[home_personal & np.isin(age, [AGE_ADULT, AGE_MIDDLE]) & (draw > 0.925) & (draw <= 0.93)] = (
        P_PAYROLL_AGENT
    )
    working = np.isin(age, [AGE_YOUNG, AGE_ADULT, AGE_MIDDLE])
    persona[home_personal & working & (draw > 0.91) & (draw <= 0.925)] = P_SHOP

    # About one personal account in seven belongs to a holder who already has another account.
    holder = np.arange(n, dtype=np.int64)
    twin = np.full(n, -1, dtype=np.int64)
    pidx = np.flatnonzero(personal)
    second = pidx[rng.random(len(pidx)) < 0.15]
    if len(second):
        owners = rng.choice(pidx, size=len(second))
        ok = owners != second
        second, owners = second[ok], owners[ok]
        holder[second] = holder[owners]
        twin[second], twin[owners] = owners, second
        age[second] = age[owners]
        persona[second] = np.where(
            np.isin(persona[second], [P_PAYROLL_AGENT, P_SHOP]), P_ORDINARY, persona[second]
        )

    region = rng.choice(len(REGIONS), size=n, p=_region_weights()).astype(np.int16)
    region[twin >= 0] = region[np.where(twin >= 0, twin, 0)][twin >= 0]
    branch = (region.astype(np.int32) * 100 + rng.integers(0, 12, size=n)).astype(np.int32)
    years = rng.gamma(2.0, 3.0, size=n) + 0.05
    opened_ms = start_ms - (years * 365 * MS_DAY).astype(np.int64)
    opened_ms -= opened_ms % MS_MIN
    kyc = np.ones(n, dtype=np.uint8)  # id_verified
    kyc |= np.where(rng.random(n) < 0.55, 2, 0).astype(np.uint8)  # face_verified
    kyc |= np.where(rng.random(n) < 0.2, 4, 0).astype(np.uint8)  # remote_opened
    kyc |= np.where((years < 0.5) & (rng.random(n) < 0.5), 8, 0).astype(np.uint8)  # restricted: new
    dormant = rng.random(n) < 0.04
    kyc |= np.where(dormant, 16, 0).astype(np.uint8)

    weight = rng.lognormal(0.0, 0.8, size=n)
    weight[acct_type == T_CORPORATE] *= 3.0
    weight[acct_type == T_MERCHANT] *= 0.5
    weight[persona == P_PENSIONER] *= 0.5
    weight[dormant] *= 0.02

    device = holder.copy()
    n_ips = max(1_000, n // 3)
    ip = region.astype(np.int64) * (n_ips // len(REGIONS)) + rng.integers(0, n_ips // len(REGIONS), size=n)

    corporates = np.flatnonzero(acct_type == T_CORPORATE)
    home_corp = corporates[~ext[corporates]]
    merchants = np.flatnonzero(acct_type == T_MERCHANT)
    if len(corporates) == 0 or len(merchants) == 0:
        raise ValueError("账户太少，无法生成企业和商户 / too few accounts for companies and merchants")
    workers = np.flatnonzero(
        personal & np.isin(age, [AGE_YOUNG, AGE_ADULT, AGE_MIDDLE]) & (persona != P_STUDENT)
    )
    employer = np.full(n, -1, dtype=np.int64)
    employer[workers] = corporates[_zipf_pick(rng, len(corporates), len(workers), 1.1)]
    # Companies open payroll cards for new staff together at one branch: a legitimate batch opening.
    batch = workers[rng.random(len(workers)) < 0.05]
    if len(batch):
        boss = employer[batch]
        opened_ms[batch] = (
            start_ms
            - (rng.integers(5, 200, size=len(corporates)) * MS_DAY)[np.searchsorted(corporates, boss)]
        )
        branch[batch] = branch[boss]

    landlords = np.flatnonzero(persona == P_LANDLORD)
    landlord = np.full(n, -1, dtype=np.int64)
    renters = np.flatnonzero(personal & (persona != P_LANDLORD) & (rng.random(n) < 0.3))
    if len(landlords):
        landlord[renters] = landlords[rng.integers(0, len(landlords), size=len(renters))]
    parent = np.full(n, -1, dtype=np.int64)
    adults = np.flatnonzero(personal & np.isin(age, [AGE_ADULT, AGE_MIDDLE]))
    kids = np.flatnonzero((persona == P_STUDENT) | (age == AGE_MINOR))
    old = np.flatnonzero(age == AGE_ELDERLY)
    if len(adults):
        parent[kids] = rng.choice(adults, size=len(kids))
        parent[old] = rng.choice(adults, size=len(old))

    sellers = np.flatnonzero(persona == P_SELLER)
    shops = np.flatnonzero(persona == P_SHOP)
    groups = {
        "corporates": corporates,
        "home_corporates": home_corp if len(home_corp) else corporates,
        "merchants": merchants,
        "sellers": sellers if len(sellers) else merchants,
        "shops": shops if len(shops) else merchants,
        "landlords": landlords,
        "agents": np.flatnonzero(persona == P_PAYROLL_AGENT),
        "personal": pidx,
        "home_personal": np.flatnonzero(home_personal),
        "ext_corporates": corporates[ext[corporates]] if ext[corporates].any() else corporates,
        "twins": np.flatnonzero(twin >= 0),
        "students": np.flatnonzero(persona == P_STUDENT),
        "elderly": old,
        "minors_students": kids,
        "pensioners": np.flatnonzero(persona == P_PENSIONER),
    }
    return Population(
        n=n,
        acct_type=acct_type,
        ext=ext,
        holder=holder,
        region=region,
        age=age,
        persona=persona,
        opened_ms=opened_ms,
        branch=branch,
        kyc=kyc,
        weight=weight,
        device=device,
        ip=ip,
        employer=employer,
        landlord=landlord,
        parent=parent,
        twin=twin,
        groups=groups,
        n_devices=n,
        n_ips=n_ips,
    )


def _region_weights() -> np.ndarray:
    w = np.linspace(3.0, 0.5, len(REGIONS))
    return w / w.sum()


def _zipf_pick(rng: np.random.Generator, k: int, size: int, a: float) -> np.ndarray:
    """Indices 0..k-1 with a heavy head: a few merchants or employers get most of the traffic."""
    ranks = np.arange(1, k + 1, dtype=np.float64)
    p = ranks**-a
    return rng.choice(k, size=size, p=p / p.sum())


# ---------------------------------------------------------------------------------------------- everyday


class Sampler:
    """Weighted sampling of transfer senders, fast enough for tens of millions of draws."""

    def __init__(self, pop: Population, rng: np.random.Generator) -> None:
        self.pop = pop
        self.rng = rng
        personal = pop.groups["personal"]
        self._personal = personal
        self._cum = np.cumsum(pop.weight[personal])
        mz = np.arange(1, len(pop.groups["merchants"]) + 1, dtype=np.float64) ** -1.0
        self._merchant_cum = np.cumsum(mz)
        sz = np.arange(1, len(pop.groups["sellers"]) + 1, dtype=np.float64) ** -0.8
        self._seller_cum = np.cumsum(sz)
        hz = np.arange(1, len(pop.groups["shops"]) + 1, dtype=np.float64) ** -0.7
        self._shop_cum = np.cumsum(hz)

    def people(self, k: int) -> np.ndarray:
        return self._personal[np.searchsorted(self._cum, self.rng.random(k) * self._cum[-1])]

    def merchants(self, k: int) -> np.ndarray:
        r = self.rng.random(k) * self._merchant_cum[-1]
        return self.pop.groups["merchants"][np.searchsorted(self._merchant_cum, r)]

    def sellers(self, k: int) -> np.ndarray:
        r = self.rng.random(k) * self._seller_cum[-1]
        return self.pop.groups["sellers"][np.searchsorted(self._seller_cum, r)]

    def shops(self, k: int) -> np.ndarray:
        r = self.rng.random(k) * self._shop_cum[-1]
        return self.pop.groups["shops"][np.searchsorted(self._shop_cum, r)]

    def pick(self, group: str, k: int) -> np.ndarray:
        g = self.pop.groups[group]
        return g[self.rng.integers(0, len(g), size=k)]


def _daytime(rng: np.random.Generator, k: int) -> np.ndarray:
    """Milliseconds into the day: busy from morning to late evening, a thin night tail."""
    hour = np.where(rng.random(k) < 0.93, rng.normal(14.5, 3.8, size=k), rng.uniform(0, 24, size=k))
    return (np.clip(hour, 0, 23.999) * MS_HOUR).astype(np.int64)


def _money(rng: np.random.Generator, k: int, median_yuan: float, sigma: float) -> np.ndarray:
    fen = rng.lognormal(np.log(median_yuan * YUAN), sigma, size=k).astype(np.int64)
    return np.maximum(fen, 1)


def _round(amount: np.ndarray, step_yuan: int) -> np.ndarray:
    step = step_yuan * YUAN
    return np.maximum((amount + step // 2) // step * step, step)


def _on_day_of_month(
    start: datetime, days: int, rng: np.random.Generator, k: int, dom: np.ndarray
) -> np.ndarray:
    """Days (from the start) falling on the given day of month, in a random month of the period."""
    first_months = []
    d = start.replace(day=1)
    end = start + timedelta(days=days)
    while d < end:
        first_months.append((d - start).days)
        d = (d + timedelta(days=32)).replace(day=1)
    month = np.asarray(first_months)[rng.integers(0, len(first_months), size=k)]
    day = month + dom - 1
    return np.clip(day, 0, days - 1)


class Everyday:
    """Generates everyday (legitimate) transfers, a chunk at a time, mixing the kinds below."""

    # Share of everyday transfers per kind; structured kinds (fan-out, own-account moves) emit several rows.
    MIX: ClassVar[dict[str, float]] = {
        "shopping": 0.26,
        "shop": 0.04,
        "shop_sweep": 0.005,
        "seller": 0.05,
        "seller_supply": 0.01,
        "daigou": 0.02,
        "p2p": 0.148,
        "big_event": 0.002,
        "salary": 0.06,
        "payroll_agent": 0.02,
        "rent": 0.03,
        "sublet": 0.01,
        "family": 0.04,
        "pooling": 0.015,
        "own_accounts": 0.04,
        "pension": 0.02,
        "atm": 0.05,
        "deposit": 0.02,
        "wallet_out": 0.08,
        "wallet_in": 0.03,
        "b2b": 0.03,
        "merchant_settle": 0.02,
    }

    def __init__(self, pop: Population, cfg: SimConfig, start_ms: int) -> None:
        self.pop = pop
        self.cfg = cfg
        self.start_ms = start_ms
        self.kinds: dict[str, Callable[[Sampler, int], Rows]] = {
            "shopping": self._shopping,
            "shop": self._shop,
            "shop_sweep": self._shop_sweep,
            "seller": self._seller,
            "seller_supply": self._seller_supply,
            "daigou": self._daigou,
            "p2p": self._p2p,
            "big_event": self._big_event,
            "salary": self._salary,
            "payroll_agent": self._payroll_agent,
            "rent": self._rent,
            "sublet": self._sublet,
            "family": self._family,
            "pooling": self._pooling,
            "own_accounts": self._own_accounts,
            "pension": self._pension,
            "atm": self._atm,
            "deposit": self._deposit,
            "wallet_out": self._wallet_out,
            "wallet_in": self._wallet_in,
            "b2b": self._b2b,
            "merchant_settle": self._merchant_settle,
        }

    def chunk(self, rng: np.random.Generator, size: int) -> Rows:
        s = Sampler(self.pop, rng)
        counts = rng.multinomial(size, list(self.MIX.values()))
        parts = [self.kinds[k](s, int(c)) for k, c in zip(self.MIX, counts, strict=True) if c > 0]
        # Relation-bound kinds drop draws without the relation (no employer, no landlord); top up with p2p.
        short = size - sum(len(p) for p in parts)
        if short > 0:
            parts.append(self._p2p(s, short))
        rows = Rows.concat(parts)
        self._attach_devices(rng, rows)
        return rows

    def _when(self, s: Sampler, k: int) -> np.ndarray:
        day = s.rng.integers(0, self.cfg.days, size=k)
        return self.start_ms + day * MS_DAY + _daytime(s.rng, k)

    def _at(self, day: np.ndarray, s: Sampler, lo_h: float, hi_h: float) -> np.ndarray:
        ms = (s.rng.uniform(lo_h, hi_h, size=len(day)) * MS_HOUR).astype(np.int64)
        return self.start_ms + day * MS_DAY + ms

    def _remark(self, s: Sampler, k: int, options: list[str], p_null: float) -> np.ndarray:
        codes = np.asarray([R[o] for o in options], dtype=np.int16)
        out = codes[s.rng.integers(0, len(codes), size=k)]
        return np.where(s.rng.random(k) < p_null, -1, out).astype(np.int16)

    def _channel(self, s: Sampler, k: int, p: list[float]) -> np.ndarray:
        return s.rng.choice(5, size=k, p=p).astype(np.int8)

    def _shopping(self, s: Sampler, k: int) -> Rows:
        src = s.people(k)
        amount = _money(s.rng, k, 80, 1.1)
        ch = self._channel(s, k, [0.0, 0.0, 0.45, 0.15, 0.40])
        return make_rows(src, s.merchants(k), self._when(s, k), amount, ch)

    def _shop(self, s: Sampler, k: int) -> Rows:
        # Small shops and stalls take payments on a personal collection code (个人收款码): many payers.
        amount = _money(s.rng, k, 35, 0.9)
        ch = self._channel(s, k, [0.0, 0.0, 0.55, 0.0, 0.45])
        return make_rows(s.people(k), s.shops(k), self._when(s, k), amount, ch)

    def _shop_sweep(self, s: Sampler, k: int) -> Rows:
        # … and pay the day's takings on to a wholesaler or their own card in the evening.
        src = s.shops(k)
        day = s.rng.integers(0, self.cfg.days, size=k)
        amount = _money(s.rng, k, 2_500, 0.7)
        dst = np.where(s.rng.random(k) < 0.6, s.pick("ext_corporates", k), s.people(k))
        rem = self._remark(s, k, ["进货款", "货款", "转账"], 0.5)
        ch = self._channel(s, k, [0.0, 0.0, 0.8, 0.2, 0.0])
        return make_rows(src, dst, self._at(day, s, 19, 24), amount, ch, rem)

    def _collect_forward(
        self,
        s: Sampler,
        k: int,
        collectors: np.ndarray,
        fan: tuple[int, int],
        money: tuple[float, float, int],
        window_h: float,
        delay_h: tuple[float, float],
        keep: tuple[float, float],
        dst: Callable[[int], np.ndarray],
        remarks: tuple[list[str], list[str]],
        t0: np.ndarray | None = None,
    ) -> Rows:
        """Legitimate fan-in then fast fan-out: several payers pay one account within `window_h`, which
        pays (most of) the total on within `delay_h` hours. 代购, 二房东 and family pooling look like this."""
        mean_fan = (fan[0] + fan[1]) / 2 + 1
        n_ev = max(1, int(k / mean_fan))
        sizes = s.rng.integers(fan[0], fan[1] + 1, size=n_ev)
        sizes = sizes[np.cumsum(sizes + 1) <= k]
        if len(sizes) == 0 or len(collectors) == 0:
            return self._p2p(s, k)
        n_ev = len(sizes)
        who = collectors[s.rng.integers(0, len(collectors), size=n_ev)]
        start = self._when(s, n_ev) if t0 is None else t0[:n_ev]
        a = np.repeat(np.arange(n_ev), sizes)
        payers = s.people(len(a))
        ts_in = start[a] + (s.rng.random(len(a)) * window_h * MS_HOUR).astype(np.int64)
        median, sigma, step = money
        amt = _money(s.rng, len(a), median, sigma)
        if step:
            amt = _round(amt, step)
        ok = payers != who[a]
        amt = np.where(ok, amt, 0)
        total = np.bincount(a, weights=amt, minlength=n_ev).astype(np.int64)
        last_in = np.full(n_ev, np.iinfo(np.int64).min)
        np.maximum.at(last_in, a, ts_in)
        t_out = last_in + (s.rng.uniform(*delay_h, size=n_ev) * MS_HOUR).astype(np.int64)
        out = (total * s.rng.uniform(*keep, size=n_ev)).astype(np.int64)
        ch_in = self._channel(s, len(a), [0.02, 0.0, 0.7, 0.1, 0.18])
        ch_out = self._channel(s, n_ev, [0.03, 0.0, 0.72, 0.25, 0.0])
        rin, rout = remarks
        inflow = make_rows(payers, who[a], ts_in, amt, ch_in, self._remark(s, len(a), rin, 0.45)).take(
            np.flatnonzero(ok)
        )
        send = out > 0
        rem_out = self._remark(s, n_ev, rout, 0.4)
        outflow = make_rows(who, dst(n_ev), t_out, np.maximum(out, 1), ch_out, rem_out)
        return Rows.concat([inflow, outflow.take(np.flatnonzero(send))])

    def _big_event(self, s: Sampler, k: int) -> Rows:
        # Big life events: relatives or a lender send large sums (down payment, car, 彩礼), paid on within a
        # day or two to a developer, a dealer or a person: large fan-in and pass-through, not a mule.
        return self._collect_forward(
            s, k, s.people(max(1, k // 3)), (1, 3), (30_000, 0.8, 1_000), 48, (1, 48), (0.9, 1.0),
            lambda n: np.where(s.rng.random(n) < 0.7, s.pick("corporates", n), s.people(n)),
            (["借款", "还钱", "转账", "购房款", "红包"], ["购房款", "首付", "车款", "定金", "转账"]),
        )

    def _daigou(self, s: Sampler, k: int) -> Rows:
        # 代购/团购团长: buyers pay over a day, the seller pays the supplier within hours, keeping a margin.
        return self._collect_forward(
            s, k, self.pop.groups["sellers"], (3, 12), (300, 0.8, 0), 24, (0.3, 6), (0.85, 0.97),
            lambda n: np.where(s.rng.random(n) < 0.5, s.pick("ext_corporates", n), s.people(n)),
            (["代购", "货款", "团购", "定金"], ["货款", "进货款", "转账"]),
        )

    def _sublet(self, s: Sampler, k: int) -> Rows:
        # 二房东/rent collector: tenants pay rent (and deposits) early in the month, it goes on to the owner.
        lords = self.pop.groups["landlords"]
        if len(lords) == 0:
            return self._p2p(s, k)
        n_ev = max(1, k // 6)
        day = _on_day_of_month(self.cfg.start, self.cfg.days, s.rng, n_ev, s.rng.integers(1, 4, size=n_ev))
        return self._collect_forward(
            s, k, lords, (3, 8), (1_800, 0.4, 100), 72, (1, 24), (0.8, 0.95),
            lambda n: np.where(s.rng.random(n) < 0.5, s.pick("landlords", n), s.people(n)),
            (["房租", "房租", "房租", "押金", "保证金"], ["房租", "转账"]),
            t0=self._at(day, s, 8, 12),
        )

    def _pooling(self, s: Sampler, k: int) -> Rows:
        # Family pooling: siblings send round sums to one of them, who pays the hospital or a parent.
        old = self.pop.groups["elderly"]
        return self._collect_forward(
            s, k, self.pop.groups["personal"], (2, 6), (2_000, 0.6, 100), 12, (0.2, 12), (0.95, 1.0),
            lambda n: np.where(
                s.rng.random(n) < 0.5,
                s.pick("elderly", n) if len(old) else s.people(n),
                s.pick("corporates", n),
            ),
            (["医药费", "分摊", "生活费", "红包", "转账"], ["医药费", "生活费", "转账"]),
        )

    def _seller(self, s: Sampler, k: int) -> Rows:
        # 代购/small sellers on personal accounts: many buyers, some 货款 remarks, some amounts near limits.
        amount = _money(s.rng, k, 260, 0.9)
        near = s.rng.random(k) < 0.03
        amount[near] = 490_000 + s.rng.integers(0, 9_999, size=int(near.sum()))
        ch = self._channel(s, k, [0.0, 0.0, 0.6, 0.1, 0.3])
        rem = self._remark(s, k, ["货款", "代购", "转账"], 0.55)
        return make_rows(s.people(k), s.sellers(k), self._when(s, k), amount, ch, rem)

    def _seller_supply(self, s: Sampler, k: int) -> Rows:
        src = s.sellers(k)
        amount = _money(s.rng, k, 6_000, 0.8)
        ch = self._channel(s, k, [0.05, 0.0, 0.5, 0.45, 0.0])
        return make_rows(src, s.pick("ext_corporates", k), self._when(s, k), amount, ch, R["货款"])

    def _p2p(self, s: Sampler, k: int) -> Rows:
        src = s.people(k)
        # Friends live nearby in the account numbering (accounts of a region are spread, so use an offset).
        offset = s.rng.integers(1, 400, size=k) * np.where(s.rng.random(k) < 0.5, 1, -1)
        dst = np.clip(src + offset, 0, self.pop.n - 1)
        dst = np.where(self.pop.acct_type[dst] == T_PERSONAL, dst, s.people(k))
        amount = _money(s.rng, k, 300, 1.2)
        rounded = s.rng.random(k) < 0.4
        amount[rounded] = _round(amount[rounded], 100)
        ch = self._channel(s, k, [0.02, 0.0, 0.7, 0.13, 0.15])
        rem = self._remark(s, k, ["还钱", "饭钱", "转账", "红包", "借款", "押金"], 0.6)
        return make_rows(src, dst, self._when(s, k), amount, ch, rem)

    def _with_link(self, s: Sampler, k: int, link: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """k personal accounts and their linked account (employer, landlord …), dropping those without one."""
        people = s.pick("personal", k)
        other = link[people]
        ok = other >= 0
        return people[ok], other[ok]

    def _salary(self, s: Sampler, k: int) -> Rows:
        dst, boss = self._with_link(s, k, self.pop.employer)
        k = len(dst)
        day = _on_day_of_month(self.cfg.start, self.cfg.days, s.rng, k, s.rng.choice([10, 15, 25], size=k))
        amount = _money(s.rng, k, 7_500, 0.55)
        return make_rows(boss, dst, self._at(day, s, 9, 12), amount, CH_ONLINE, R["工资"])

    def _payroll_agent(self, s: Sampler, k: int) -> Rows:
        # 包工头/payroll agent: a company pays one person who pays 8–40 workers within hours: mule-like.
        agents = self.pop.groups["agents"]
        if len(agents) == 0:
            return self._p2p(s, k)
        fan = s.rng.integers(8, 41, size=max(1, k // 20))
        fan = fan[np.cumsum(fan) <= k] if fan.sum() > k else fan
        if len(fan) == 0:
            return self._p2p(s, k)
        agent = agents[s.rng.integers(0, len(agents), size=len(fan))]
        t0 = self._when(s, len(fan))
        per = _round(_money(s.rng, len(fan), 6_000, 0.3), 100)
        lump = per * fan + _round(_money(s.rng, len(fan), 3_000, 0.5), 100)
        payer = s.pick("corporates", len(fan))
        first = make_rows(payer, agent, t0, lump, CH_ONLINE, R["工资"])
        a = np.repeat(np.arange(len(fan)), fan)
        workers = s.people(len(a))
        ts = t0[a] + (s.rng.exponential(1.5, size=len(a)) * MS_HOUR).astype(np.int64) + 5 * MS_MIN
        ch = self._channel(s, len(a), [0.0, 0.0, 0.8, 0.2, 0.0])
        rem = self._remark(s, len(a), ["工资", "转账"], 0.5)
        out = make_rows(agent[a], workers, ts, per[a], ch, rem)
        return Rows.concat([first, out])

    def _rent(self, s: Sampler, k: int) -> Rows:
        src, lord = self._with_link(s, k, self.pop.landlord)
        k = len(src)
        day = _on_day_of_month(self.cfg.start, self.cfg.days, s.rng, k, s.rng.integers(1, 6, size=k))
        amount = _round(_money(s.rng, k, 2_800, 0.45), 100)
        ch = self._channel(s, k, [0.02, 0.0, 0.78, 0.1, 0.1])
        return make_rows(src, lord, self._at(day, s, 8, 23), amount, ch, R["房租"])

    def _family(self, s: Sampler, k: int) -> Rows:
        kids = s.pick("minors_students", k)
        third = k // 3
        # Parents send round living costs to students; adults support elderly parents; relatives pool money.
        dst = kids.copy()
        src = self.pop.parent[kids]
        if len(self.pop.groups["elderly"]):
            old = s.pick("elderly", third)
            dst[:third], src[:third] = old, self.pop.parent[old]
        pool = s.people(k - 2 * third)
        dst[2 * third :] = self.pop.parent[kids[2 * third :]]
        src[2 * third :] = pool
        ok = (src >= 0) & (dst >= 0) & (src != dst)
        src, dst = src[ok], dst[ok]
        k = len(src)
        amount = _round(_money(s.rng, k, 1_500, 0.6), 100)
        ch = self._channel(s, k, [0.08, 0.0, 0.72, 0.1, 0.1])
        rem = self._remark(s, k, ["生活费", "转账", "红包", "学费"], 0.4)
        return make_rows(src, dst, self._when(s, k), amount, ch, rem)

    def _own_accounts(self, s: Sampler, k: int) -> Rows:
        # A holder moves money to their other account and on within minutes: fast pass-through, same holder.
        pairs = k // 2
        twins = self.pop.groups["twins"]
        if len(twins) == 0 or pairs == 0:
            return self._p2p(s, k)
        a = twins[s.rng.integers(0, len(twins), size=pairs)]
        b = self.pop.twin[a]
        t0 = self._when(s, pairs)
        amount = _round(_money(s.rng, pairs, 5_000, 1.0), 100)
        near = s.rng.random(pairs) < 0.05
        amount[near] = 4_990_000 + s.rng.integers(0, 9_999, size=int(near.sum()))
        onward = s.rng.random(pairs) < 0.5
        dst2 = np.where(onward, s.pick("ext_corporates", pairs), s.merchants(pairs))
        t1 = t0 + (s.rng.exponential(0.7, size=pairs) * MS_HOUR).astype(np.int64) + 2 * MS_MIN
        out = amount - (s.rng.random(pairs) * amount * 0.1).astype(np.int64)
        return Rows.concat(
            [
                make_rows(a, b, t0, amount, CH_MOBILE, R["转账"]),
                make_rows(
                    b, dst2, t1, np.maximum(out, 1), CH_ONLINE, self._remark(s, pairs, ["充值", "转账"], 0.5)
                ),
            ]
        )

    def _pension(self, s: Sampler, k: int) -> Rows:
        if len(self.pop.groups["pensioners"]) == 0:
            return self._p2p(s, k)
        dst = s.pick("pensioners", k)
        payer = self.pop.groups["home_corporates"][0]  # the 社保 fund's account pays every pension
        day = _on_day_of_month(self.cfg.start, self.cfg.days, s.rng, k, np.full(k, 5))
        amount = _money(s.rng, k, 3_200, 0.35)
        return make_rows(np.full(k, payer), dst, self._at(day, s, 6, 9), amount, CH_ONLINE, R["养老金"])

    def _atm(self, s: Sampler, k: int) -> Rows:
        amount = _round(_money(s.rng, k, 800, 0.8), 100)
        amount = np.minimum(amount, 2_000_000)
        return make_rows(s.people(k), np.full(k, -1), self._when(s, k), amount, CH_ATM)

    def _deposit(self, s: Sampler, k: int) -> Rows:
        amount = _round(_money(s.rng, k, 3_000, 1.0), 100)
        dst = np.where(s.rng.random(k) < 0.3, s.merchants(k), s.people(k))
        return make_rows(np.full(k, -1), dst, self._when(s, k), amount, CH_COUNTER)

    def _wallet_out(self, s: Sampler, k: int) -> Rows:
        amount = _money(s.rng, k, 200, 1.2)
        rem = self._remark(s, k, ["充值", "转账"], 0.7)
        return make_rows(s.people(k), s.pick("ext_corporates", k), self._when(s, k), amount, CH_THIRD, rem)

    def _wallet_in(self, s: Sampler, k: int) -> Rows:
        amount = _money(s.rng, k, 300, 1.2)
        rem = self._remark(s, k, ["提现", "转账", "报销"], 0.6)
        return make_rows(s.pick("ext_corporates", k), s.people(k), self._when(s, k), amount, CH_THIRD, rem)

    def _b2b(self, s: Sampler, k: int) -> Rows:
        src = s.pick("corporates", k)
        dst = s.pick("corporates", k)
        amount = _money(s.rng, k, 40_000, 1.3)
        ch = self._channel(s, k, [0.1, 0.0, 0.0, 0.9, 0.0])
        return make_rows(
            src, dst, self._when(s, k), amount, ch,
            self._remark(s, k, ["货款", "报销", "分红", "保证金"], 0.3),
        )

    def _merchant_settle(self, s: Sampler, k: int) -> Rows:
        src = s.merchants(k)
        dst = np.where(s.rng.random(k) < 0.5, s.pick("ext_corporates", k), s.people(k))
        amount = _money(s.rng, k, 12_000, 0.9)
        return make_rows(
            src, dst, self._when(s, k), amount, CH_ONLINE, self._remark(s, k, ["货款", "转账"], 0.5)
        )

    def _attach_devices(self, rng: np.random.Generator, rows: Rows) -> None:
        """Mobile, online and wallet payments carry the sender's device and usually their home IP."""
        digital = (rows.channel >= CH_MOBILE) & (rows.src >= 0)
        src = np.where(digital, rows.src, 0)
        rows.device = np.where(digital, self.pop.device[src], -1)
        roaming = rng.integers(0, self.pop.n_ips, size=len(rows))
        rows.ip = np.where(digital, np.where(rng.random(len(rows)) < 0.8, self.pop.ip[src], roaming), -1)
        # Corporate online banking runs from a fixed office terminal, not a phone.
        corp = digital & (self.pop.acct_type[src] != T_PERSONAL)
        rows.device = np.where(corp & (rng.random(len(rows)) < 0.5), -1, rows.device)


# ---------------------------------------------------------------------------------------------- output


def fmt_ids(prefix: str, nums: np.ndarray, width: int) -> pa.StringArray:
    """Fixed-width ids like A00001234 built straight into an Arrow buffer (f-strings are 50× slower)."""
    p = prefix.encode()
    length = len(p) + width
    n = len(nums)
    buf = np.empty((n, length), dtype=np.uint8)
    buf[:, : len(p)] = np.frombuffer(p, dtype=np.uint8)
    v = np.asarray(nums, dtype=np.int64).copy()
    for j in range(length - 1, len(p) - 1, -1):
        buf[:, j] = 48 + v % 10
        v //= 10
    offsets = np.arange(0, (n + 1) * length, length, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(buf.tobytes()))


def _take(values: pa.Array, codes: np.ndarray) -> pa.Array:
    return values.take(pa.array(np.where(codes < 0, 0, codes), mask=codes < 0))


def _ip_pool(rng: np.random.Generator, n: int) -> pa.StringArray:
    octets = rng.integers(1, 255, size=(n, 4))
    octets[:, 0] = rng.choice([36, 39, 42, 58, 61, 101, 112, 113, 117, 120, 183, 223], size=n)
    return pa.array([f"{a}.{b}.{c}.{d}" for a, b, c, d in octets.tolist()], type=pa.string())


@dataclass
class Vocab:
    """Arrow string arrays the code arrays index into when a chunk is written."""

    account_ids: pa.Array
    channels: pa.Array
    remarks: pa.Array
    devices: pa.Array
    ips: pa.Array
    cases: pa.Array


class LedgerWriter:
    """Writes tables chunk by chunk as Parquet row groups (or appended CSV)."""

    def __init__(self, out: Path, fmt: Format) -> None:
        self.out = out
        self.fmt = fmt
        self._writers: dict[str, pq.ParquetWriter | pacsv.CSVWriter] = {}

    def write(self, name: str, table: pa.Table) -> None:
        w = self._writers.get(name)
        if w is None:
            path = self.out / f"{name}.{self.fmt}"
            if self.fmt == "parquet":
                w = pq.ParquetWriter(path, table.schema, compression="zstd")
            else:
                w = pacsv.CSVWriter(path, table.schema)
            self._writers[name] = w
        w.write_table(table)

    def close(self) -> None:
        for w in self._writers.values():
            w.close()


def _transfer_tables(rows: Rows, first_id: int, vocab: Vocab) -> tuple[pa.Table, pa.Table]:
    ids = fmt_ids("T", np.arange(first_id, first_id + len(rows)), 11)
    transfers = pa.Table.from_arrays(
        [
            ids,
            pa.array(rows.ts, type=pa.timestamp("ms")),
            _take(vocab.account_ids, rows.src),
            _take(vocab.account_ids, rows.dst),
            pa.array(rows.amount, type=pa.int64()),
            vocab.channels.take(pa.array(rows.channel)),
            _take(vocab.remarks, rows.remark),
            _take(vocab.devices, rows.device),
            _take(vocab.ips, rows.ip),
        ],
        schema=schema.TRANSFERS,
    )
    labels = pa.Table.from_arrays(
        [ids, pa.array(rows.fraud), _take(vocab.cases, rows.case)], schema=schema.LABELS_TRANSFERS
    )
    return transfers, labels


def _account_table(pop: Population, last_ms: np.ndarray, rng: np.random.Generator, ids: pa.Array) -> pa.Table:
    bank = np.where(pop.ext, "EXT", HOME_BANK)
    flags = np.asarray(
        [",".join(f for b, f in enumerate(schema.KYC_FLAGS) if m >> b & 1) for m in range(64)], dtype=object
    )
    # Accounts idle in the period were last used some time before it (or never: null).
    idle = last_ms < 0
    before = pop.opened_ms + (rng.random(pop.n) * 0.9 * (pop.opened_ms.max() - pop.opened_ms)).astype(
        np.int64
    )
    last = np.where(idle, np.maximum(before, pop.opened_ms), last_ms)
    never = idle & (rng.random(pop.n) < 0.3)
    return pa.Table.from_arrays(
        [
            ids,
            pa.array(bank, type=pa.string()),
            pa.array(np.asarray(ACCOUNT_TYPES, dtype=object)[pop.acct_type], type=pa.string()),
            fmt_ids("H", pop.holder, 9),
            fmt_ids("BR", pop.branch, 6),
            pa.array(pop.opened_ms, type=pa.timestamp("ms")),
            pa.array(last, type=pa.timestamp("ms"), mask=never),
            pa.array(np.asarray(REGIONS, dtype=object)[pop.region], type=pa.string()),
            pa.array(
                np.asarray(AGE_BANDS, dtype=object)[np.maximum(pop.age, 0)],
                mask=pop.age < 0,
                type=pa.string(),
            ),
            pa.array(flags[pop.kyc & 63], type=pa.string()),
        ],
        schema=schema.ACCOUNTS,
    )


# ---------------------------------------------------------------------------------------------- driver


@dataclass
class SimResult:
    """What `simulate` wrote, for the CLI summary and the manifest."""

    out: Path
    accounts: int
    transfers: int
    fraud_transfers: int
    cases: int
    roles: dict[str, int]
    seconds: float
    files: list[str]

    @property
    def per_minute(self) -> float:
        return self.transfers / self.seconds * 60 if self.seconds > 0 else 0.0


def simulate(cfg: SimConfig, out: Path, progress: Callable[[int, int], None] | None = None) -> SimResult:
    """Generate a ledger into `out` (created if needed); returns counts and timing."""
    from fanzha.payments.simulate_fraud import plan_fraud

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    # A ledger left from an earlier run in the other format would be read instead of (or mixed with) this one.
    for name in schema.LEDGER_FILES:
        for suffix in (".parquet", ".csv"):
            (out / f"{name}{suffix}").unlink(missing_ok=True)
    start_ms = _epoch_ms(cfg.start)
    seeds = np.random.SeedSequence(cfg.seed).spawn(3)
    rng_pop, rng_fraud, rng_misc = (np.random.default_rng(s) for s in seeds)

    pop = build_population(cfg, rng_pop, start_ms)
    fraud = plan_fraud(pop, cfg, rng_fraud, start_ms)
    everyday = Everyday(pop, cfg, start_ms)

    vocab = Vocab(
        account_ids=fmt_ids("A", np.arange(pop.n), 9),
        channels=pa.array(CHANNELS, type=pa.string()),
        remarks=pa.array(REMARKS, type=pa.string()),
        devices=fmt_ids("D", np.arange(pop.n_devices), 9),
        ips=_ip_pool(rng_misc, pop.n_ips),
        cases=fmt_ids("C", np.arange(max(fraud.n_cases, 1)), 7),
    )
    legit_target = max(cfg.transfers - len(fraud.rows), 1)
    n_chunks = max(1, -(-legit_target // cfg.chunk_rows))
    # Fraud rows are spread over the chunks so that ids and row groups say nothing about them.
    fraud_parts = np.array_split(rng_misc.permutation(len(fraud.rows)), n_chunks)
    chunk_rngs = [np.random.default_rng(s) for s in np.random.SeedSequence([cfg.seed, 1]).spawn(n_chunks)]

    writer = LedgerWriter(out, cfg.fmt)
    last_ms = np.full(pop.n, -1, dtype=np.int64)
    next_id = 0
    n_fraud = 0
    try:
        for i in range(n_chunks):
            size = legit_target // n_chunks + (1 if i < legit_target % n_chunks else 0)
            rows = Rows.concat([everyday.chunk(chunk_rngs[i], size), fraud.rows.take(fraud_parts[i])])
            end_ms = start_ms + cfg.days * MS_DAY - 1
            rows.ts = np.minimum(rows.ts, end_ms)
            rows = rows.take(np.argsort(rows.ts, kind="stable"))
            n_fraud += int(rows.fraud.sum())
            for side in (rows.src, rows.dst):
                ok = side >= 0
                np.maximum.at(last_ms, side[ok], rows.ts[ok])
            transfers, labels = _transfer_tables(rows, next_id, vocab)
            next_id += len(rows)
            writer.write("transfers", transfers)
            writer.write("labels_transfers", labels)
            if progress is not None:
                progress(next_id, cfg.transfers)
        writer.write("accounts", _account_table(pop, last_ms, rng_misc, vocab.account_ids))
        labels_acc = fraud.account_labels(vocab.account_ids)
        writer.write("labels_accounts", labels_acc)
    finally:
        writer.close()

    roles = {r.value: 0 for r in AccountRole}
    for role, count in zip(
        *np.unique(np.asarray(labels_acc.column("role")), return_counts=True), strict=True
    ):
        roles[str(role)] = int(count)
    seconds = time.perf_counter() - t0
    files = sorted(p.name for p in out.iterdir() if p.suffix in (".parquet", ".csv"))
    result = SimResult(out, pop.n, next_id, n_fraud, fraud.n_cases, roles, seconds, files)
    _write_manifest(cfg, result)
    return result


def _epoch_ms(dt: datetime) -> int:
    """Naive local (CST) wall-clock time as epoch ms, the way Arrow stores timestamp[ms] without a zone."""
    return int((dt.replace(tzinfo=None) - datetime(1970, 1, 1)).total_seconds() * 1000)


def _write_manifest(cfg: SimConfig, result: SimResult) -> None:
    config = asdict(cfg)
    config["start"] = cfg.start.isoformat()
    manifest = {
        "generator": "fanzha.payments.simulate",
        "generator_version": GENERATOR_VERSION,
        "ledger_version": schema.LEDGER_VERSION,
        "seed": cfg.seed,
        "config": config,
        "format": cfg.fmt,
        "files": result.files,
        "counts": {
            "accounts": result.accounts,
            "transfers": result.transfers,
            "fraud_transfers": result.fraud_transfers,
            "cases": result.cases,
            "roles": result.roles,
        },
    }
    (result.out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
