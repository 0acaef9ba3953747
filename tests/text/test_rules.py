"""Tests for the typology rules engine (inputs are normalised-looking: simplified, lower-case)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fanzha.knowledge.loader import REGEX_FLAGS, FraudType, Keyword, Pattern, Signal, Typology, load_typology
from fanzha.text.rules import RuleEngine, RuleHit, _split_alternatives, required_literals, trigger_sets


@pytest.fixture(scope="module")
def engine() -> RuleEngine:
    return RuleEngine(load_typology())


def top_type(engine: RuleEngine, text: str) -> str | None:
    scores = engine.type_scores(engine.match(text))
    return max(scores, key=lambda c: scores[c]) if scores else None


SCAMS = [
    (
        "我是上海市公安局刑侦支队的民警,你的身份证涉嫌一起洗钱案件,现在需要你把资金转到安全账户进行资金核查,"
        "案件保密,不要告诉家人。",
        "impersonate_police",
        ["re:impersonate_police:money_laundering", "re:impersonate_police:transfer_safe_account"],
    ),
    (
        "您好,我是淘宝客服,您购买的面膜存在质量问题,我们将给您双倍赔偿,请添加企业微信办理理赔。",
        "impersonate_customer_service",
        ["re:impersonate_customer_service:claim_compensation"],
    ),
    (
        "您开通了抖音百万保障服务,如不取消每月将自动扣费500元,请下载会议软件开启屏幕共享。",
        "impersonate_customer_service",
        ["kw:impersonate_customer_service:百万保障", "sig:risk:screen_share"],
    ),
    (
        "小王,明天来我办公室一趟。我现在在开会不方便接电话,有个朋友急需资金周转,你先帮我转给他,回头还你。",
        "impersonate_acquaintance",
        ["re:impersonate_acquaintance:leader_office"],
    ),
    (
        "您的银行卡号填写错误,贷款资金已被冻结,需缴纳3000元解冻费才能放款。",
        "fake_loan",
        ["re:fake_loan:card_number_typo", "sig:risk:pay_to_withdraw"],
    ),
    ("无抵押低息贷款,黑户可贷,不看征信,秒批秒到账。", "fake_loan", ["re:fake_loan:no_credit_check"]),
    (
        "您在大学期间开通过校园贷,根据国家政策需要注销,否则会影响征信。",
        "fake_credit_repair",
        ["re:fake_credit_repair:credit_threat"],
    ),
    (
        "招聘兼职,点赞关注抖音博主截图即可领佣金,一单3元,日赚300,宝妈学生党均可。",
        "brushing_rebate",
        ["re:brushing_rebate:like_for_commission"],
    ),
    (
        "您的任务出现卡单,需要继续充值完成连单才能提现本金加佣金。",
        "brushing_rebate",
        ["kw:brushing_rebate:连单"],
    ),
    (
        "老师带你炒股,内幕消息,稳赚不赔,收益率高达30%,加入股票交流群。",
        "fake_investment",
        ["kw:fake_investment:稳赚不赔", "re:fake_investment:stock_group"],
    ),
    (
        "宝贝,我舅舅在这个平台内部工作,发现了漏洞,我们一起投资为了我们的未来。",
        "romance_scam",
        ["re:romance_scam:relative_inside"],
    ),
    (
        "你订的布偶猫已经在路上了,航空公司说要买宠物专用笼和打疫苗,先付1500元。",
        "fake_shopping",
        ["re:fake_shopping:pet_shipping"],
    ),
    ("小朋友,想要免费皮肤吗?拿你妈妈的手机扫码就能领取,不要告诉家长。", "game_trading", []),
    (
        "恭喜您被抽中为奔跑吧场外幸运观众,获得现金大奖18万元,领奖需先缴纳公证费。",
        "prize_lottery",
        ["re:prize_lottery:fee_before_prize"],
    ),
    (
        "您的话费已欠费,将于24小时后停机,人工服务请按9。",
        "billing_arrears",
        ["re:billing_arrears:arrears_threat"],
    ),
    (
        "您的社保卡异常将被冻结,请点击链接重新激活社保卡。",
        "refund_subsidy",
        ["re:refund_subsidy:card_abnormal"],
    ),
    (
        "你儿子在我们手上,马上打钱,敢报警就撕票。",
        "kidnapping_emergency",
        ["re:kidnapping_emergency:hostage", "re:kidnapping_emergency:ransom_threat"],
    ),
    ("您的积分即将清零,可兑换现金,请登录www.xxx.cn领取。", "phishing_account", []),
    (
        "把你手机收到的验证码告诉我,我帮你解封账号。",
        "phishing_account",
        ["re:phishing_account:hand_over_code"],
    ),
    (
        "我已经拿到你的通讯录,不想身败名裂就转5万,否则把视频发给你的亲友。",
        "sextortion",
        ["re:sextortion:contacts_obtained"],
    ),
    (
        "高价收购银行卡,一张卡3000,日结,跑分佣金高。",
        "card_trafficking",
        ["kw:card_trafficking:跑分", "re:card_trafficking:buy_or_rent_cards"],
    ),
    ("注册送彩金,首充送50%,百家乐真人荷官,稳赢计划带你回本。", "gambling", ["kw:gambling:百家乐"]),
    (
        "部队要采购一批矿泉水,你先帮我们从指定厂家代购垫付,货到后一起结算。",
        "other_fraud",
        ["re:other_fraud:military_procurement"],
    ),
]


@pytest.mark.parametrize(("text", "code", "rules"), SCAMS, ids=[c for _, c, _ in SCAMS])
def test_scam_hits_its_type(engine: RuleEngine, text: str, code: str, rules: list[str]) -> None:
    hits = engine.match(text)
    assert top_type(engine, text) == code
    got = {h.rule for h in hits}
    assert set(rules) <= got, sorted(got)


def test_every_type_is_covered_by_the_scam_examples() -> None:
    assert {code for _, code, _ in SCAMS} == set(load_typology().codes)


PUBLICITY = [
    (
        "国家反诈中心提醒您:凡是自称公检法要求转账到安全账户的都是诈骗,谨防上当,如有疑问请拨打96110。",
        {"sig:legit:fanshi_dou_shi", "sig:legit:jinfang", "sig:legit:hotline_96110"},
    ),
    (
        "【某银行】您的验证码为123456,请勿泄露给他人,如非本人操作请忽略。",
        {"sig:legit:qingwu_xielou", "sig:legit:rufei_benren"},
    ),
    ("警方破获一起电信网络诈骗案,犯罪嫌疑人已被刑事拘留。", {"sig:legit:pohuo", "sig:legit:yibei_xingju"}),
    (
        "民警提示:刷单返利、网络贷款先交费的,以上均为诈骗。",
        {"sig:legit:jingfang_tishi", "sig:legit:yishang_junwei"},
    ),
    ("本周六超市大促销,全场八折,回td退订。", {"sig:legit:unsubscribe"}),
]


@pytest.mark.parametrize(("text", "rules"), PUBLICITY)
def test_publicity_produces_legitimacy_signals(engine: RuleEngine, text: str, rules: set[str]) -> None:
    hits = engine.match(text)
    assert rules <= {h.rule for h in hits}
    legit = [h for h in hits if h.rule.startswith("sig:legit:")]
    assert all(h.weight < 0 and h.fraud_type is None for h in legit)
    assert engine.features(hits)[-1] < 0


BENIGN = [
    "今天下午三点开会,请大家准时参加。",
    "妈,我今晚不回家吃饭了,加班。",
    "周末一起去爬山吧?天气预报说是晴天。",
    "【顺丰速运】您的快递已到达小区南门丰巢柜,请于今日20:00前取件。",
    "老师,孩子今天有点发烧,请假一天。",
    "明天早上八点在公司楼下集合,别迟到。",
]


@pytest.mark.parametrize("text", BENIGN)
def test_benign_has_no_type_hits(engine: RuleEngine, text: str) -> None:
    assert [h for h in engine.match(text) if h.fraud_type is not None] == []


def test_spans_point_into_the_normalised_text(engine: RuleEngine) -> None:
    text = "您好,请把钱转到安全账户,配合资金核查。"
    hits = engine.match(text)
    by_rule = {h.rule: h for h in hits}
    safe = by_rule["sig:risk:safe_account"]
    assert text[safe.start : safe.end] == "安全账户"
    assert (safe.start, safe.end) == (text.index("安全账户"), text.index("安全账户") + 4)
    check = by_rule["re:impersonate_police:fund_check"]
    assert text[check.start : check.end] == "资金核查"
    transfer = by_rule["re:impersonate_police:transfer_safe_account"]
    assert text[transfer.start : transfer.end] == "转到安全账户"
    for h in hits:
        assert 0 <= h.start < h.end <= len(text)


def test_keyword_spans_equal_their_terms(engine: RuleEngine) -> None:
    text = "高价收购银行卡,跑分日结,走流水,四件套都要。"
    for h in engine.match(text):
        if h.rule.startswith("kw:"):
            assert text[h.start : h.end] == h.rule.split(":", 2)[2]


def test_empty_text(engine: RuleEngine) -> None:
    assert engine.match("") == []


def test_features_fixed_order(engine: RuleEngine) -> None:
    names = engine.feature_names()
    codes = load_typology().codes
    assert names[: len(codes)] == [f"rule_type:{c}" for c in codes]
    assert names[-2:] == ["rule_signal:risk", "rule_signal:legitimacy"]
    hits = engine.match("你儿子在我们手上,马上打钱,敢报警就撕票。")
    vec = engine.features(hits)
    assert len(vec) == len(names)
    scores = engine.type_scores(hits)
    for i, code in enumerate(codes):
        assert vec[i] == pytest.approx(scores.get(code, 0.0))
    assert vec[-2] > 0
    assert engine.features([]) == [0.0] * len(names)


def test_repeated_rule_counts_once(engine: RuleEngine) -> None:
    once = engine.type_scores(engine.match("百家乐"))
    twice = engine.type_scores(engine.match("百家乐,百家乐"))
    assert once == twice == {"gambling": 1.0}


def test_gating_never_loses_a_match(engine: RuleEngine) -> None:
    """The literal triggers only skip regexes that cannot match: same hits as running all of them."""
    ungated = RuleEngine(load_typology())
    ungated._always = frozenset(range(len(ungated._regexes)))
    ungated._need2 = frozenset()
    texts = [t for t, _, _ in SCAMS] + [t for t, _ in PUBLICITY] + BENIGN
    for text in texts:
        key = lambda hs: sorted((h.rule, h.start, h.end) for h in hs)  # noqa: E731
        assert key(engine.match(text)) == key(ungated.match(text)), text
    assert engine.unanchored_rules == []


# --- engine semantics on a small hand-made typology ----------------------------------------------


def tiny_engine() -> RuleEngine:
    ft = FraudType(
        code="t",
        name="测试",
        description="d",
        typical_script="s",
        keywords=(Keyword("安全账户", 0.9), Keyword("账户", 0.2), Keyword("洗钱", 0.5)),
        patterns=(
            Pattern("launder", "涉嫌.{0,4}洗钱", 0.8, "涉嫌洗钱"),
            Pattern("weak", "账户.{0,2}冻结", 0.1, "弱"),
        ),
        advice="a",
    )
    sigs = (
        Signal("warn", "legitimacy", -0.5, "提醒", term="警惕"),
        Signal("warn2", "legitimacy", -0.8, "提醒", pattern="警惕.{0,4}诈骗"),
    )
    return RuleEngine(Typology(types={"t": ft}, signals=sigs))


def test_nested_keyword_is_not_counted_twice() -> None:
    hits = tiny_engine().match("转到安全账户")
    assert [h.rule for h in hits] == ["kw:t:安全账户"]


def test_keyword_inside_stronger_pattern_is_dropped() -> None:
    e = tiny_engine()
    rules = {h.rule for h in e.match("他涉嫌洗钱")}
    assert rules == {"re:t:launder"}
    # A weaker pattern does not hide the stronger keyword.
    rules = {h.rule for h in e.match("安全账户被冻结")}
    assert rules == {"kw:t:安全账户", "re:t:weak"}
    # Legitimacy signals: the pattern covers the term.
    assert {h.rule for h in e.match("请警惕电信诈骗")} == {"sig:legit:warn2"}


def test_rule_hit_is_a_slotted_dataclass() -> None:
    hit = RuleHit("r", None, 0, 1, 0.5, "d")
    assert not hasattr(hit, "__dict__")


# --- literal extraction ---------------------------------------------------------------------------


def test_trigger_sets_of_a_co_occurrence_pattern() -> None:
    sets = {frozenset(s) for s in trigger_sets("(涉嫌|涉及).{0,10}(洗钱|案件)")}
    assert sets == {frozenset({"涉嫌", "涉及"}), frozenset({"洗钱", "案件"})}


def test_required_literals() -> None:
    assert required_literals("安全账户") == ("安全账户",)
    assert required_literals("(刷|做)单") == ("做单", "刷单")
    assert required_literals("(a|)b") == ("b",)  # "ab" contains "b": the shorter one suffices
    assert required_literals("(ab|ac)+d") == ("abd", "acd")
    assert required_literals("x(yz)?w") == ("xw", "xyzw")
    assert trigger_sets("本金.{0,6}(佣金|利润)") == [("本金",), ("佣金", "利润")]
    assert required_literals(".{0,3}") is None
    assert required_literals("(?i)abc") is None  # case-insensitive: literals would not be exact


def test_split_alternatives() -> None:
    assert _split_alternatives("(a|b)c|d") == ["(a|b)c", "d"]
    assert _split_alternatives("[|]x") == ["[|]x"]
    assert _split_alternatives(r"a\|b") == [r"a\|b"]
    assert _split_alternatives("(a)b|\\1") == ["(a)b|\\1"]
    assert _split_alternatives("a|b?") == ["a|b?"]  # a part matching "" would change semantics


PATTERNS = [
    "(涉嫌|涉及).{0,3}(洗钱|案件)",
    "刷(单|流水)+返?利",
    "(a|bc)(d|e){2}f",
    "x(yz)?w.{0,2}(q|r)",
    "(ab|ac)+d",
    "a[bc]d|e.f",
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATTERNS), st.text(alphabet="涉嫌及洗钱案件刷单流水返利abcdefqrwxyz", max_size=14))
def test_any_match_contains_each_trigger_set(pattern: str, text: str) -> None:
    for part in _split_alternatives(pattern):
        rx = re.compile(part, REGEX_FLAGS)
        if rx.search(text):
            for lits in trigger_sets(part):
                assert any(lit in text for lit in lits), (part, text, lits)
