"""Warning tasks on both databases: routing, merging, contacts, outcomes, escalation, statistics, audit."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from fanzha.cases.warnings import WarningRequest
from fanzha.settings import Settings
from fanzha.store import repo_warnings
from fanzha.store.db import make_engine, make_sessionmaker, transaction
from fanzha.store.models import AuditEntry, Case, User, Warning
from fanzha.store.repo_users import create_user
from fanzha.store.repo_warnings import WarningStateError

NOW = datetime(2026, 3, 1, 8, 0)
SETTINGS = Settings(warning_due_minutes=30, warning_merge_hours=24)


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    factory = make_sessionmaker(engine)
    with transaction(factory) as s:
        for name, region in (
            ("province", "330000"),
            ("city", "330100"),
            ("district_a", "330106"),
            ("district_b", "330106"),
            ("shenzhen", "440305"),
        ):
            create_user(s, name, "password-123", "grid", region)
        create_user(s, "analyst", "password-123", "analyst")
    yield factory
    engine.dispose()


def uid(s, name):
    return s.scalar(select(User.id).where(User.username == name))


def req(phone="13812345678", region="330106", risk=80, amount=0.0, **kw):
    return WarningRequest(
        region_code=region, source="detection", risk=risk, person_phone=phone, amount_at_stake=amount, **kw
    )


def raise_(factory, r, now=NOW):
    with transaction(factory) as s:
        w, merged = repo_warnings.raise_warning(s, r, SETTINGS, "analyst", now)
        return w.id, merged


def test_new_task_goes_to_the_least_loaded_grid_user_of_the_most_specific_region(sessions):
    first, _ = raise_(sessions, req("13812345678"))
    second, _ = raise_(sessions, req("13912345678"))
    with sessions() as s:
        owners = {s.get(Warning, i).assignee_id for i in (first, second)}
        assert owners == {uid(s, "district_a"), uid(s, "district_b")}  # tie on region → fewest open tasks


def test_region_without_a_district_worker_falls_back_to_city_then_province(sessions):
    city_task, _ = raise_(sessions, req("13812345678", region="330108"))
    province_task, _ = raise_(sessions, req("13912345678", region="330206"))
    with sessions() as s:
        assert s.get(Warning, city_task).assignee_id == uid(s, "city")
        assert s.get(Warning, province_task).assignee_id == uid(s, "province")


def test_region_nobody_covers_leaves_the_task_unassigned(sessions):
    task, _ = raise_(sessions, req(region="110101"))
    with sessions() as s:
        assert s.get(Warning, task).assignee_id is None


def test_inactive_grid_users_get_no_tasks(sessions):
    with transaction(sessions) as s:
        s.execute(update(User).where(User.username.in_(["district_a", "district_b"])).values(active=False))
    task, _ = raise_(sessions, req())
    with sessions() as s:
        assert s.get(Warning, task).assignee_id == uid(s, "city")


def test_repeat_for_the_same_person_merges_and_keeps_the_worst_risk_and_amount(sessions):
    first, merged1 = raise_(sessions, req("13812345678", risk=60, detail={"msg": "a"}))
    again, merged2 = raise_(
        sessions,
        req("+86 138 1234 5678", risk=95, amount=80_000, detail={"msg": "b"}),
        NOW + timedelta(minutes=5),
    )
    assert (merged1, merged2, again) == (False, True, first)
    with sessions() as s:
        w = s.get(Warning, first)
        assert (w.merged_count, w.risk, w.amount_at_stake, w.priority) == (2, 95, 80_000, 1)
        assert [sig["msg"] for sig in w.detail["signals"]] == ["a", "b"]
        # now priority 1: due a third of the usual time after the merge, earlier than the first deadline
        assert w.due_at == NOW + timedelta(minutes=15)
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.entity == "warning")).all()
        assert actions == ["create", "merge"]


def test_repeat_after_the_merge_window_or_after_closing_opens_a_new_task(sessions):
    first, _ = raise_(sessions, req())
    later, merged = raise_(sessions, req(), NOW + timedelta(hours=25))
    assert not merged and later != first
    with transaction(sessions) as s:
        repo_warnings.set_outcome(
            s, s.get(Warning, later), "false_alarm", "analyst", now=NOW + timedelta(hours=26)
        )
    # `first` is outside the window by now, and `later` is closed: a third task
    third, merged = raise_(sessions, req(), NOW + timedelta(hours=27))
    assert not merged and third not in (first, later)


def test_merge_never_lowers_an_escalated_priority(sessions):
    task, _ = raise_(sessions, req(risk=95, amount=80_000))
    raise_(sessions, req(risk=10), NOW + timedelta(minutes=1))
    with sessions() as s:
        assert s.get(Warning, task).priority == 1


def test_concurrent_reports_of_one_person_make_one_task(sessions):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: raise_(sessions, req()), range(8)))
    assert len({r[0] for r in results}) == 1
    assert sorted(r[1] for r in results) == [False] + [True] * 7
    with sessions() as s:
        assert s.scalar(select(Warning.merged_count)) == 8


def test_first_contact_is_recorded_and_a_closed_task_refuses_changes(sessions):
    task, _ = raise_(sessions, req())
    with transaction(sessions) as s:
        w = s.get(Warning, task)
        repo_warnings.record_contact(s, w, uid(s, "district_a"), "district_a", "phone", False, "忙音", NOW)
        repo_warnings.record_contact(
            s, w, uid(s, "district_a"), "district_a", "visit", True, "", NOW + timedelta(minutes=9)
        )
    with transaction(sessions) as s:
        w = s.get(Warning, task)
        assert w.first_contact_at == NOW
        assert [c.method for c in repo_warnings.contacts(s, task)] == ["phone", "visit"]
        repo_warnings.set_outcome(
            s, w, "dissuaded", "district_a", "已劝阻，未转账", NOW + timedelta(minutes=12)
        )
    with transaction(sessions) as s:
        w = s.get(Warning, task)
        assert (w.status, w.outcome, w.closed_at) == ("closed", "dissuaded", NOW + timedelta(minutes=12))
        with pytest.raises(WarningStateError):
            repo_warnings.set_outcome(s, w, "unreachable", "district_a")
        with pytest.raises(WarningStateError):
            repo_warnings.record_contact(s, w, uid(s, "district_a"), "district_a", "sms", True)


def test_already_defrauded_opens_a_placeholder_case_linked_to_the_task(sessions):
    task, _ = raise_(sessions, req(fraud_type="impersonate_police"))
    with transaction(sessions) as s:
        case = repo_warnings.set_outcome(
            s, s.get(Warning, task), "already_defrauded", "analyst", "已转账 3 万"
        )
        case_id = case.id
    with sessions() as s:
        w, c = s.get(Warning, task), s.get(Case, case_id)
        assert w.case_id == c.id and w.outcome == "already_defrauded"
        assert (c.region_code, c.fraud_type, c.status) == ("330106", "impersonate_police", "placeholder")
        assert f"#{task}" in c.summary
        assert s.scalar(select(func.count()).where(AuditEntry.entity == "case")) == 1


def test_overdue_uncontacted_tasks_escalate_once_per_missed_deadline(sessions):
    overdue, _ = raise_(sessions, req("13812345678", risk=80))  # priority 3, due 08:30
    contacted, _ = raise_(sessions, req("13912345678", risk=80))
    with transaction(sessions) as s:
        w = s.get(Warning, contacted)
        repo_warnings.record_contact(
            s, w, w.assignee_id, "grid", "phone", False, now=NOW + timedelta(minutes=5)
        )
    with sessions() as s:
        before = s.get(Warning, overdue).assignee_id
    with transaction(sessions) as s:
        assert repo_warnings.escalate_overdue(s, NOW + timedelta(minutes=29), SETTINGS) == []
    at = NOW + timedelta(minutes=31)
    with transaction(sessions) as s:
        done = repo_warnings.escalate_overdue(s, at, SETTINGS)
    assert [e.warning_id for e in done] == [overdue]
    with sessions() as s:
        w = s.get(Warning, overdue)
        assert w.escalated and w.priority == 2 and w.due_at == at + timedelta(minutes=30)
        assert w.assignee_id != before and w.assignee_id is not None  # handed to the other district worker
        assert w.detail["escalations"][0]["from"] == before
        assert s.scalar(select(func.count()).where(AuditEntry.action == "escalate")) == 1
    with transaction(sessions) as s:
        assert repo_warnings.escalate_overdue(s, at + timedelta(minutes=1), SETTINGS) == []
    with transaction(sessions) as s:
        again = repo_warnings.escalate_overdue(s, at + timedelta(minutes=31), SETTINGS)
    assert [e.priority for e in again] == [1]


def test_escalation_keeps_the_only_worker_of_a_region(sessions):
    task, _ = raise_(sessions, req(region="440305"))
    with transaction(sessions) as s:
        repo_warnings.escalate_overdue(s, NOW + timedelta(hours=1), SETTINGS)
    with sessions() as s:
        assert s.get(Warning, task).assignee_id == uid(s, "shenzhen")


def test_stats_from_the_database_filter_by_period_and_region(sessions):
    a, _ = raise_(sessions, req("13812345678"))
    b, _ = raise_(sessions, req("13912345678", region="440305"), NOW + timedelta(days=1))
    raise_(sessions, req("13712345678"), NOW + timedelta(days=5))  # outside the period
    with transaction(sessions) as s:
        for task, outcome in ((a, "dissuaded"), (b, "unreachable")):
            w = s.get(Warning, task)
            repo_warnings.record_contact(
                s,
                w,
                w.assignee_id,
                "grid",
                "phone",
                outcome == "dissuaded",
                now=w.created_at + timedelta(minutes=6),
            )
            repo_warnings.set_outcome(s, w, outcome, "grid")
    with sessions() as s:
        everywhere = repo_warnings.stats(s, date(2026, 3, 1), date(2026, 3, 2))
        zhejiang = repo_warnings.stats(s, date(2026, 3, 1), date(2026, 3, 2), "33")
    assert everywhere.total == 2 and everywhere.median_minutes_to_first_contact == 6.0
    assert everywhere.by_outcome["dissuaded"] == 1 and everywhere.dissuasion_rate == 1.0
    assert zhejiang.total == 1 and zhejiang.by_day_region[0]["region_code"] == "330106"


def test_audit_log_keeps_masked_personal_data_only(sessions):
    raise_(sessions, req("13812345678", person_name="王小明"))
    with sessions() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.entity == "warning")).one()
    assert entry.after["person_phone"] == "+86****5678" and entry.after["person_name"] == "王**"
    assert "13812345678" not in str(entry.after)
