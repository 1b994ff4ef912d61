"""Auto-tag rules (R5.1.3): validation, full application, "apply now" as a background job,
incremental application, audit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from crm.core.audit.models import AuditEntry
from crm.core.jobs.models import Job
from crm.core.jobs.registry import get_job_kind
from crm.core.jobs.services import job_cancel, run_job
from customers.models import Customer, Segment
from customers.services.records import customer_delete
from sales.models import AutoTagRule, OrderStatus
from sales.services import analysis, analysis_rules
from sales.services.analysis_rules import (
    APPLY_KIND,
    auto_tag_rule_apply,
    auto_tag_rule_apply_job,
    auto_tag_rule_apply_start,
    auto_tag_rule_create,
    auto_tag_rule_delete,
    auto_tag_rule_update,
)
from tests.customers.factories import CustomerFactory, TagFactory

from .factories_analysis import order_row, orders_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    """Messages are asserted in English."""
    from django.utils import translation

    with translation.override("en"):
        yield


Metric = AutoTagRule.Metric


def tags_of(customer) -> set[str]:
    return set(Customer.objects.get(pk=customer.pk).tags.values_list("name", flat=True))


@pytest.fixture
def big_spender(rep):
    customer = CustomerFactory(owner=rep, name="大户")
    orders_for(customer, 10, 30, total="6000")  # 12,000 within 90 days
    order_row(customer, days_ago=200, total="50000")
    return customer


@pytest.fixture
def small_buyer(rep):
    customer = CustomerFactory(owner=rep, name="小户")
    orders_for(customer, 5, total="100")
    return customer


def spent_rule(manager, tag, **kwargs):
    values = {"name": "高消费", "metric": Metric.SPENT, "min_amount": Decimal("10000"), "window_days": 90}
    values.update(kwargs)
    return auto_tag_rule_create(actor=manager, tag=tag, **values)


# Validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"metric": Metric.SPENT}, "min_amount"),
        ({"metric": Metric.ORDERS, "min_orders": 0}, "min_orders"),
        ({"metric": Metric.SEGMENT, "segment": "best_friends"}, "segment"),
        ({"metric": Metric.SPENT, "min_amount": Decimal("-1")}, "min_amount"),
        ({"metric": Metric.SPENT, "min_amount": Decimal("10.005")}, "min_amount"),
        ({"metric": Metric.SPENT, "min_amount": Decimal("10"), "window_days": 0}, "window_days"),
        ({"metric": Metric.SPENT, "min_amount": Decimal("10"), "window_days": 4000}, "window_days"),
        ({"metric": "mood", "min_amount": Decimal("10")}, "metric"),
        ({"metric": Metric.CHURN_RISK, "name": ""}, "name"),
    ],
)
def test_rule_validation_names_the_field(manager, values, field):
    values = {"name": "规则", **values}
    with pytest.raises(ValidationError) as caught:
        auto_tag_rule_create(actor=manager, tag=TagFactory(), **values)
    assert field in caught.value.message_dict
    assert not AutoTagRule.objects.exists()


def test_rule_names_are_unique(manager):
    tag = TagFactory()
    auto_tag_rule_create(actor=manager, name="流失", metric=Metric.CHURN_RISK, tag=tag)
    with pytest.raises(ValidationError) as caught:
        auto_tag_rule_create(actor=manager, name="流失", metric=Metric.CHURN_RISK, tag=tag)
    assert "name" in caught.value.message_dict


def test_fields_a_measure_does_not_use_are_cleared(manager):
    rule = auto_tag_rule_create(
        actor=manager,
        name="价值",
        metric=Metric.SEGMENT,
        segment=Segment.IMPORTANT_VALUE,
        min_amount=Decimal("5"),
        window_days=30,
        tag=TagFactory(),
    )
    assert (rule.min_amount, rule.window_days, rule.segment) == (None, None, Segment.IMPORTANT_VALUE)


def test_create_update_delete_are_audited(manager):
    rule = spent_rule(manager, TagFactory())
    rule = auto_tag_rule_update(actor=manager, rule=rule, min_amount=Decimal("20000"))
    assert rule.min_amount == Decimal("20000")
    auto_tag_rule_delete(actor=manager, rule=rule)
    actions = list(
        AuditEntry.objects.filter(object_type="sales.autotagrule", object_id=str(rule.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "delete"]
    assert not AutoTagRule.objects.exists()


def test_update_refuses_unknown_fields_and_bad_values(manager):
    rule = spent_rule(manager, TagFactory())
    with pytest.raises(TypeError):
        auto_tag_rule_update(actor=manager, rule=rule, last_run_count=5)
    with pytest.raises(ValidationError):
        auto_tag_rule_update(actor=manager, rule=rule, min_amount=None)
    rule.refresh_from_db()
    assert rule.min_amount == Decimal("10000")


# Full application -------------------------------------------------------------------------------


def test_spent_in_window_tags_matching_customers_only(manager, big_spender, small_buyer):
    tag = TagFactory(name="高消费")
    rule = spent_rule(manager, tag)
    assert auto_tag_rule_apply(rule=rule, actor=manager) == (1, 0)
    assert tags_of(big_spender) == {"高消费"}
    assert tags_of(small_buyer) == set()
    rule.refresh_from_db()
    assert (rule.last_run_count, rule.last_run_at is not None) == (1, True)
    assert AuditEntry.objects.filter(object_type="sales.autotagrule", action="update").exists()
    # Applying again changes nothing.
    assert auto_tag_rule_apply(rule=rule) == (0, 0)


def test_window_excludes_older_orders_and_cancelled_ones(manager, big_spender):
    order_row(big_spender, days_ago=1, total="90000", status=OrderStatus.CANCELLED)
    rule = spent_rule(manager, TagFactory(), min_amount=Decimal("12000.01"))
    assert auto_tag_rule_apply(rule=rule) == (0, 0)  # 50,000 is 200 days old; the 90,000 was cancelled


def test_unmatched_customers_lose_the_tag_unless_the_rule_keeps_it(manager, big_spender, small_buyer):
    tag = TagFactory(name="高消费")
    small_buyer.tags.add(tag)
    rule = spent_rule(manager, tag)
    assert auto_tag_rule_apply(rule=rule) == (1, 1)
    assert tags_of(small_buyer) == set()
    small_buyer.tags.add(tag)
    auto_tag_rule_update(actor=manager, rule=rule, remove_when_unmatched=False)
    assert auto_tag_rule_apply(rule=rule) == (0, 0)
    assert tags_of(small_buyer) == {"高消费"}


def test_rules_on_metrics(manager, big_spender, small_buyer):
    analysis.analysis_run_full()
    ever = auto_tag_rule_create(
        actor=manager,
        name="累计5万",
        metric=Metric.SPENT,
        min_amount=Decimal("50000"),
        tag=TagFactory(name="累计"),
    )
    orders = auto_tag_rule_create(
        actor=manager, name="三单", metric=Metric.ORDERS, min_orders=3, tag=TagFactory(name="复购")
    )
    assert auto_tag_rule_apply(rule=ever) == (1, 0)
    assert auto_tag_rule_apply(rule=orders) == (1, 0)
    assert tags_of(big_spender) == {"累计", "复购"}
    assert tags_of(small_buyer) == set()


def test_segment_and_churn_rules(manager, big_spender, small_buyer):
    analysis.analysis_run_full()
    segment = small_buyer.metrics.segment
    rule = auto_tag_rule_create(
        actor=manager, name="段", metric=Metric.SEGMENT, segment=segment, tag=TagFactory(name="段")
    )
    churn = auto_tag_rule_create(
        actor=manager, name="流失", metric=Metric.CHURN_RISK, tag=TagFactory(name="流失")
    )
    auto_tag_rule_apply(rule=rule)
    auto_tag_rule_apply(rule=churn)
    assert "段" in tags_of(small_buyer)
    assert "流失" not in tags_of(small_buyer) | tags_of(big_spender)


def test_two_rules_on_one_tag_keep_it_while_either_matches(manager, big_spender, small_buyer):
    tag = TagFactory(name="重点")
    spent = spent_rule(manager, tag)
    auto_tag_rule_create(
        actor=manager, name="近一年有单", metric=Metric.ORDERS, min_orders=1, window_days=365, tag=tag
    )
    auto_tag_rule_apply(rule=spent)
    assert tags_of(small_buyer) == {"重点"}  # matched by the orders rule, not removed by the spent one
    assert tags_of(big_spender) == {"重点"}


def test_switched_off_rules_do_not_run(manager, big_spender):
    rule = spent_rule(manager, TagFactory(), is_active=False)
    with pytest.raises(ValidationError, match="switched off"):
        auto_tag_rule_apply(rule=rule)
    analysis.analysis_run_full()
    assert tags_of(big_spender) == set()


def test_deleted_customers_are_not_tagged(manager, big_spender, admin_user):
    customer_delete(actor=admin_user, customer=big_spender)
    assert auto_tag_rule_apply(rule=spent_rule(manager, TagFactory())) == (0, 0)


def test_full_analysis_applies_the_rules(manager, big_spender):
    spent_rule(manager, TagFactory(name="高消费"))
    run = analysis.analysis_run_full(actor=manager)
    assert tags_of(big_spender) == {"高消费"}
    assert run.timings["tags"] == {"高消费": [1, 0]}


# "Apply now" as a background job ---------------------------------------------------------------------


@pytest.fixture
def english_manager(manager):
    """A job runs in its owner's language: the messages below are asserted in English."""
    manager.language = "en"
    manager.save(update_fields=["language"])
    return manager


def test_apply_start_queues_a_job_that_tags_and_untags(
    english_manager, big_spender, small_buyer, django_capture_on_commit_callbacks
):
    tag = TagFactory(name="高消费")
    small_buyer.tags.add(tag)  # no longer matches: loses the tag
    rule = spent_rule(english_manager, tag)
    with django_capture_on_commit_callbacks(execute=True):
        job = auto_tag_rule_apply_start(actor=english_manager, rule=rule)
        assert tags_of(big_spender) == set()  # queued on commit, not run in the caller's transaction
    job.refresh_from_db()
    assert (job.kind, job.owner, job.status) == (APPLY_KIND, english_manager, Job.Status.SUCCEEDED)
    assert job.params == {"rule": rule.pk, "tag": tag.pk}
    assert job.message == "Tag 高消费 given to 1 customer, taken from 1."
    assert str(job.kind_label) == "Auto-tag rule application"
    assert tags_of(big_spender) == {"高消费"}
    assert tags_of(small_buyer) == set()
    entry = AuditEntry.objects.filter(object_type="sales.autotagrule", object_id=str(rule.pk)).latest("seq")
    assert entry.actor == english_manager
    assert entry.changes == {"tagged": "1", "untagged": "1", "matching": "1"}


def test_apply_job_kind_runs_through_the_celery_task():
    from sales.tasks.analysis import apply_auto_tag_rule_job

    assert get_job_kind(APPLY_KIND).get_task() is apply_auto_tag_rule_job


def test_apply_start_needs_the_right_to_change_rules(manager, rep, big_spender):
    rule = spent_rule(manager, TagFactory())
    with pytest.raises(ValidationError, match="may not apply"):
        auto_tag_rule_apply_start(actor=rep, rule=rule)
    assert not Job.objects.exists()
    assert tags_of(big_spender) == set()


def test_apply_start_refuses_a_switched_off_or_deleted_rule(manager):
    rule = spent_rule(manager, TagFactory(), is_active=False)
    with pytest.raises(ValidationError, match="switched off"):
        auto_tag_rule_apply_start(actor=manager, rule=rule)
    auto_tag_rule_delete(actor=manager, rule=rule)
    with pytest.raises(ValidationError, match="no longer exists"):
        auto_tag_rule_apply_start(actor=manager, rule=rule)
    assert not Job.objects.exists()


def test_apply_start_refuses_a_second_job_for_the_same_tag(manager):
    tag = TagFactory()
    rule = spent_rule(manager, tag)
    other_rule_same_tag = auto_tag_rule_create(actor=manager, name="流失", metric=Metric.CHURN_RISK, tag=tag)
    first = auto_tag_rule_apply_start(actor=manager, rule=rule)  # stays pending: no commit in a test
    for again in (rule, other_rule_same_tag):
        with pytest.raises(ValidationError, match="already being applied"):
            auto_tag_rule_apply_start(actor=manager, rule=again)
    other_rule = spent_rule(manager, TagFactory(), name="另一个")
    other_tag = auto_tag_rule_apply_start(actor=manager, rule=other_rule)
    assert set(Job.objects.values_list("pk", flat=True)) == {first.pk, other_tag.pk}
    Job.objects.filter(pk=first.pk).update(status=Job.Status.SUCCEEDED)
    assert auto_tag_rule_apply_start(actor=manager, rule=rule).kind == APPLY_KIND


def test_apply_job_fails_readably_when_the_rule_went_away(english_manager, big_spender):
    rule = spent_rule(english_manager, TagFactory())
    job = auto_tag_rule_apply_start(actor=english_manager, rule=rule)
    auto_tag_rule_delete(actor=english_manager, rule=rule)
    assert run_job(str(job.pk), auto_tag_rule_apply_job) == Job.Status.FAILED
    job.refresh_from_db()
    assert job.error == "The rule no longer exists."
    assert tags_of(big_spender) == set()


def test_apply_job_fails_when_its_owner_lost_the_right(english_manager, rep, big_spender):
    rep.language = "zh-hans"  # the job speaks its owner's language
    rep.save(update_fields=["language"])
    rule = spent_rule(english_manager, TagFactory())
    job = Job.objects.create(kind=APPLY_KIND, owner=rep, params={"rule": rule.pk, "tag": rule.tag_id})
    assert run_job(str(job.pk), auto_tag_rule_apply_job) == Job.Status.FAILED
    job.refresh_from_db()
    assert job.error == "您无权应用自动打标签规则。"
    assert tags_of(big_spender) == set()


def test_apply_job_fails_readably_on_a_rule_switched_off_meanwhile(english_manager, big_spender):
    rule = spent_rule(english_manager, TagFactory())
    job = auto_tag_rule_apply_start(actor=english_manager, rule=rule)
    AutoTagRule.objects.filter(pk=rule.pk).update(is_active=False)
    assert run_job(str(job.pk), auto_tag_rule_apply_job) == Job.Status.FAILED
    job.refresh_from_db()
    assert job.error == "The rule is switched off."
    assert tags_of(big_spender) == set()


def test_a_job_cancelled_while_matching_changes_no_tag(english_manager, big_spender, monkeypatch):
    tag = TagFactory()
    rule = spent_rule(english_manager, tag)
    job = auto_tag_rule_apply_start(actor=english_manager, rule=rule)
    matching = analysis_rules._matching_ids

    def matching_then_cancelled(rule, *, now):
        ids = matching(rule, now=now)
        job_cancel(job=Job.objects.get(pk=job.pk), actor=english_manager)  # the owner clicks Cancel
        return ids

    monkeypatch.setattr(analysis_rules, "_matching_ids", matching_then_cancelled)
    before = AuditEntry.objects.filter(object_type="sales.autotagrule").count()
    assert run_job(str(job.pk), auto_tag_rule_apply_job) == Job.Status.CANCELLED
    assert tags_of(big_spender) == set()
    assert AuditEntry.objects.filter(object_type="sales.autotagrule").count() == before


# Incremental application ------------------------------------------------------------------------------


def test_a_new_order_tags_and_untags_one_customer(manager, small_buyer):
    spent_rule(manager, TagFactory(name="高消费"))
    order = order_row(small_buyer, days_ago=0, total="20000")
    analysis.refresh_customer(small_buyer.pk)
    assert tags_of(small_buyer) == {"高消费"}
    entry = (
        AuditEntry.objects.filter(object_type="customers.customer", object_id=str(small_buyer.pk))
        .order_by("seq")
        .last()
    )
    assert entry.changes["auto_tags"] == [[], ["高消费"]]
    order.status = OrderStatus.CANCELLED
    order.save()
    analysis.refresh_customer(small_buyer.pk)
    assert tags_of(small_buyer) == set()


def test_incremental_update_without_change_writes_no_audit(manager, small_buyer):
    spent_rule(manager, TagFactory())
    before = AuditEntry.objects.count()
    analysis.refresh_customer(small_buyer.pk)
    assert AuditEntry.objects.count() == before
