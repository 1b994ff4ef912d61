# ruff: noqa: F811  (pytest fixtures imported from test_pools_support)
"""Customer pools (公海): claim, release, assign, recycling (R5.1.1, R5.1.2, R7.1.1)."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from crm.core.notifications.models import Notification
from customers.models import Customer, PoolEvent, RecycleRule
from customers.selectors.pools import (
    allowance_for,
    claims_today,
    pool_customers,
    pools_for_user,
)
from customers.services.pools import (
    customer_release_to_pool,
    pool_assign,
    pool_claim,
    pool_save,
    recycle_run,
)
from tests.customers.factories import PoolFactory, level

from .test_pools_support import (  # noqa: F401 (fixtures)
    days_ago,
    other_team_pool,
    owned_customer,
    pool,
    pool_customer,
    rep2,
)

pytestmark = pytest.mark.django_db


# Claim ------------------------------------------------------------------------------------------


def test_claim_makes_the_member_owner_and_records_it(pool, rep):
    """R5.1.1: a member claims a waiting customer; event and audit entry written."""
    customer = pool_customer(pool)
    claimed = pool_claim(actor=rep, customer=customer)
    claimed.refresh_from_db()
    assert claimed.owner == rep
    assert claimed.team == rep.team
    assert claimed.pool is None
    assert claimed.owned_since is not None
    event = PoolEvent.objects.get(customer=customer)
    assert (event.action, event.user, event.pool) == (PoolEvent.Action.CLAIM, rep, pool)
    assert AuditEntry.objects.filter(
        object_type="customers.customer", object_id=str(customer.pk), message__contains="Claimed"
    ).exists()


def test_claim_over_daily_cap_is_refused_with_a_translated_error(pool, rep):
    """R5.1.1: the daily claim cap holds; the message is translated."""
    pool.daily_claim_cap = 2
    pool.save()
    for _ in range(2):
        pool_claim(actor=rep, customer=pool_customer(pool))
    third = pool_customer(pool)
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        pool_claim(actor=rep, customer=third)
    assert exc.value.code == "daily_cap"
    assert "today's limit of 2 claims" in exc.value.messages[0]
    third.refresh_from_db()
    assert third.owner is None
    assert third.pool == pool


def test_claims_of_yesterday_in_the_users_time_zone_do_not_count(pool, rep):
    """R5.1.1: the day starts at midnight in the rep's own time zone."""
    tz = zoneinfo.ZoneInfo(rep.time_zone)
    local_now = timezone.now().astimezone(tz)
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    customer = pool_customer(pool)
    PoolEvent.objects.create(
        customer=customer, pool=pool, user=rep, action=PoolEvent.Action.CLAIM, created_at=midnight
    )
    PoolEvent.objects.create(
        customer=customer,
        pool=pool,
        user=rep,
        action=PoolEvent.Action.CLAIM,
        created_at=midnight - datetime.timedelta(minutes=1),
    )
    assert claims_today(rep) == 1


def test_claim_over_max_owned_is_refused(pool, rep):
    """R5.1.1: a rep who owns the pool's maximum cannot claim more."""
    pool.max_owned = 1
    pool.save()
    owned_customer(rep, owned_days_ago=1)
    with pytest.raises(ValidationError) as exc:
        pool_claim(actor=rep, customer=pool_customer(pool))
    assert exc.value.code == "max_owned"


def test_non_member_cannot_claim(pool, make_user, team):
    """R5.1.1: only members (or pool managers) claim."""
    outsider = make_user(roles.SALES_REP, username="outsider", team=team)
    customer = pool_customer(pool)
    with pytest.raises(PermissionDenied):
        pool_claim(actor=outsider, customer=customer)
    customer.refresh_from_db()
    assert customer.owner is None


def test_manager_of_the_team_may_claim_without_membership(pool, manager):
    customer = pool_customer(pool)
    assert pool_claim(actor=manager, customer=customer).owner == manager


def test_claim_from_a_closed_pool_is_refused(pool, rep):
    customer = pool_customer(pool)
    pool.is_active = False
    pool.save()
    with pytest.raises(ValidationError) as exc:
        pool_claim(actor=rep, customer=customer)
    assert exc.value.code == "pool_inactive"


def test_second_claim_of_the_same_customer_says_already_claimed(pool, rep, rep2):
    """R5.1.1: two reps claim the same customer; the loser gets "already claimed"."""
    customer = pool_customer(pool)
    stale_copy = Customer.objects.get(pk=customer.pk)  # what the second rep's request loaded
    pool_claim(actor=rep, customer=customer)
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        pool_claim(actor=rep2, customer=stale_copy)
    assert exc.value.code == "already_claimed"
    assert "already been claimed" in exc.value.messages[0]
    customer.refresh_from_db()
    assert customer.owner == rep
    assert PoolEvent.objects.filter(customer=customer, action=PoolEvent.Action.CLAIM).count() == 1


# Release ----------------------------------------------------------------------------------------


def test_release_needs_a_reason(pool, rep):
    """R5.1.1: releasing without a reason is refused and changes nothing."""
    customer = owned_customer(rep, owned_days_ago=3)
    for reason in ("", "   "):
        with pytest.raises(ValidationError) as exc:
            customer_release_to_pool(actor=rep, customer=customer, pool=pool, reason=reason)
        assert "reason" in exc.value.message_dict
    customer.refresh_from_db()
    assert customer.owner == rep


def test_release_returns_the_customer_to_the_pool(pool, rep):
    """R5.1.1: owner releases to a pool with a reason; event and audit written, nobody notified."""
    customer = owned_customer(rep, owned_days_ago=3)
    customer_release_to_pool(actor=rep, customer=customer, pool=pool, reason="客户不再需要")
    customer.refresh_from_db()
    assert customer.owner is None
    assert customer.pool == pool
    assert customer.owned_since is None
    event = PoolEvent.objects.get(customer=customer)
    assert (event.action, event.reason) == (PoolEvent.Action.RELEASE, "客户不再需要")
    assert AuditEntry.objects.filter(object_id=str(customer.pk), message__contains="Released").exists()
    assert not Notification.objects.exists()


def test_release_to_a_pool_the_user_cannot_use_is_refused(rep, other_team_pool):
    customer = owned_customer(rep, owned_days_ago=3)
    with pytest.raises(ValidationError) as exc:
        customer_release_to_pool(actor=rep, customer=customer, pool=other_team_pool, reason="x")
    assert "pool" in exc.value.message_dict
    customer.refresh_from_db()
    assert customer.owner == rep


def test_rep_cannot_release_another_reps_customer(pool, rep, rep2):
    customer = owned_customer(rep, owned_days_ago=3)
    with pytest.raises(PermissionDenied):
        customer_release_to_pool(actor=rep2, customer=customer, pool=pool, reason="x")


def test_manager_releases_a_team_members_customer(pool, rep, manager):
    customer = owned_customer(rep, owned_days_ago=3)
    customer_release_to_pool(actor=manager, customer=customer, pool=pool, reason="离职交接")
    customer.refresh_from_db()
    assert customer.pool == pool


def test_release_of_a_customer_already_in_a_pool_is_refused(pool, rep):
    customer = pool_customer(pool)
    with pytest.raises(ValidationError):
        customer_release_to_pool(actor=rep, customer=customer, pool=pool, reason="x")


# Assign -----------------------------------------------------------------------------------------


def test_manager_assigns_and_the_new_owner_is_notified(pool, rep, manager):
    """R5.1.1: managers assign from the pool; the new owner gets a notification."""
    customer = pool_customer(pool)
    pool_assign(actor=manager, customer=customer, owner=rep)
    customer.refresh_from_db()
    assert customer.owner == rep
    assert customer.pool is None
    assert PoolEvent.objects.get(customer=customer).action == PoolEvent.Action.ASSIGN
    note = Notification.objects.get(recipient=rep)
    assert customer.name in note.title


def test_rep_cannot_assign(pool, rep, rep2):
    customer = pool_customer(pool)
    with pytest.raises(PermissionDenied):
        pool_assign(actor=rep, customer=customer, owner=rep2)
    customer.refresh_from_db()
    assert customer.owner is None
    assert not Notification.objects.exists()


def test_manager_cannot_assign_to_a_user_outside_their_scope(pool, manager, other_team_pool):
    outsider = other_team_pool.members.get()
    with pytest.raises(ValidationError) as exc:
        pool_assign(actor=manager, customer=pool_customer(pool), owner=outsider)
    assert "owner" in exc.value.message_dict


# Selectors --------------------------------------------------------------------------------------


def test_pools_for_user_member_manager_and_outsider(pool, rep, manager, other_team_pool, admin_user):
    """R7.2.4: reps see the pools they belong to; managers the pools of their teams; admins all."""
    assert list(pools_for_user(user=rep)) == [pool]
    assert list(pools_for_user(user=manager)) == [pool]
    assert set(pools_for_user(user=admin_user)) == {pool, other_team_pool}
    pool.is_active = False
    pool.save()
    assert list(pools_for_user(user=rep)) == []
    assert list(pools_for_user(user=manager, include_inactive=True)) == [pool]


def test_pool_customers_filters(pool, rep):
    gold = level("gold")
    a = pool_customer(pool, name="张伟", level=gold)
    b = pool_customer(pool, name="李娜")
    owned_customer(rep, owned_days_ago=1, name="张三")
    assert set(pool_customers(user=rep, pool=pool)) == {a, b}
    assert list(pool_customers(user=rep, pool=pool, filters={"q": "张"})) == [a]
    assert list(pool_customers(user=rep, pool=pool, filters={"level": gold.pk})) == [a]


def test_allowance_counts_claims_and_owned(pool, rep):
    pool_claim(actor=rep, customer=pool_customer(pool))
    allowance = allowance_for(rep)
    assert (allowance.claims_today, allowance.owned) == (1, 1)
    assert allowance.claims_left(pool) == pool.daily_claim_cap - 1


# Recycling --------------------------------------------------------------------------------------


def make_rule(pool, **kwargs) -> RecycleRule:
    kwargs.setdefault("condition", RecycleRule.Condition.NO_FOLLOW_UP)
    kwargs.setdefault("days", 30)
    kwargs.setdefault("warn_days_before", 3)
    return RecycleRule.objects.create(pool=pool, **kwargs)


def test_overdue_customer_returns_to_the_pool_and_the_owner_is_notified(pool, rep):
    """R5.1.1: no follow-up for N days returns the customer; the former owner is told."""
    make_rule(pool)
    overdue = owned_customer(rep, owned_days_ago=60, follow_up_days_ago=31)
    fresh = owned_customer(rep, owned_days_ago=60, follow_up_days_ago=5)
    recently_owned = owned_customer(rep, owned_days_ago=10, follow_up_days_ago=90)
    summary = recycle_run()
    assert summary["recycled"] == 1
    overdue.refresh_from_db()
    assert (overdue.owner, overdue.pool) == (None, pool)
    assert PoolEvent.objects.get(customer=overdue).action == PoolEvent.Action.RECYCLE
    for kept in (fresh, recently_owned):
        kept.refresh_from_db()
        assert kept.owner == rep
    note = Notification.objects.get(recipient=rep)
    assert pool.name in note.title
    assert AuditEntry.objects.filter(message__startswith=f"Recycled to pool {pool.name}").exists()
    # Idempotent: nothing more happens the second time.
    assert recycle_run()["recycled"] == 0
    assert Notification.objects.filter(recipient=rep).count() == 1


def test_no_order_rule_uses_the_last_order(pool, rep):
    make_rule(pool, condition=RecycleRule.Condition.NO_ORDER, days=90, warn_days_before=0)
    no_order = owned_customer(rep, owned_days_ago=100, follow_up_days_ago=1)
    ordered = owned_customer(rep, owned_days_ago=100)
    Customer.objects.filter(pk=ordered.pk).update(last_order_at=days_ago(10))
    recycle_run()
    no_order.refresh_from_db()
    ordered.refresh_from_db()
    assert no_order.owner is None
    assert ordered.owner == rep


def test_warning_is_sent_once_only(pool, rep):
    """R5.1.1: owners are warned a few days before, once per period."""
    make_rule(pool, days=30, warn_days_before=3)
    due_soon = owned_customer(rep, owned_days_ago=60, follow_up_days_ago=28)
    first = recycle_run()
    second = recycle_run()
    assert (first["warned"], second["warned"]) == (1, 0)
    assert PoolEvent.objects.filter(customer=due_soon, action=PoolEvent.Action.WARN).count() == 1
    assert Notification.objects.filter(recipient=rep).count() == 1
    due_soon.refresh_from_db()
    assert due_soon.owner == rep
    # A new follow-up starts a new period: the next warning comes again later.
    Customer.objects.filter(pk=due_soon.pk).update(last_follow_up_at=timezone.now())
    assert recycle_run(now=timezone.now() + datetime.timedelta(days=28))["warned"] == 1


def test_rule_per_level_is_respected(pool, rep):
    make_rule(pool, level=level("gold"), warn_days_before=0)
    gold = owned_customer(rep, owned_days_ago=60, follow_up_days_ago=40, level=level("gold"))
    regular = owned_customer(rep, owned_days_ago=60, follow_up_days_ago=40, level=level("regular"))
    recycle_run()
    gold.refresh_from_db()
    regular.refresh_from_db()
    assert gold.owner is None
    assert regular.owner == rep


def test_rules_of_inactive_pools_and_inactive_rules_are_ignored(pool, rep, team):
    make_rule(pool, is_active=False)
    closed = PoolFactory(name="关闭的公海", team=team, is_active=False)
    make_rule(closed)
    customer = owned_customer(rep, owned_days_ago=60, follow_up_days_ago=40)
    assert recycle_run() == {"rules": 0, "recycled": 0, "warned": 0}
    customer.refresh_from_db()
    assert customer.owner == rep


def test_rules_only_touch_the_pools_team(pool, other_team_pool):
    make_rule(pool, warn_days_before=0)
    other_rep = other_team_pool.members.get()
    other = owned_customer(other_rep, owned_days_ago=60, follow_up_days_ago=40)
    recycle_run()
    other.refresh_from_db()
    assert other.owner == other_rep


def test_recycling_works_in_batches(pool, rep):
    make_rule(pool, warn_days_before=0)
    customers = [owned_customer(rep, owned_days_ago=60) for _ in range(5)]
    assert recycle_run(batch_size=2)["recycled"] == 5
    assert not Customer.objects.filter(pk__in=[c.pk for c in customers], owner__isnull=False).exists()
    assert Notification.objects.filter(recipient=rep).count() == 1


def test_recycle_task_and_its_schedule(pool, rep):
    """The Celery task runs the service; the migration schedules it daily at 02:00."""
    from django_celery_beat.models import PeriodicTask

    from customers.tasks import recycle_customers

    make_rule(pool, warn_days_before=0)
    owned_customer(rep, owned_days_ago=60)
    assert recycle_customers.delay().get()["recycled"] == 1
    task = PeriodicTask.objects.get(task="customers.tasks.recycle_customers")
    assert (task.crontab.hour, task.crontab.minute, task.enabled) == ("2", "0", True)


# Pool set-up ------------------------------------------------------------------------------------


def test_pool_save_creates_pool_members_and_rules(manager, rep, team):
    pool = pool_save(
        actor=manager,
        fields={"name": "新公海", "team": team, "daily_claim_cap": 5, "max_owned": 50, "is_active": True},
        members=[rep],
        rules=[{"instance": None, "condition": "no_follow_up", "days": 20, "warn_days_before": 2}],
    )
    assert list(pool.members.all()) == [rep]
    assert pool.rules.get().days == 20


def test_team_manager_cannot_create_a_pool_without_or_for_another_team(manager, other_team_pool):
    with pytest.raises(ValidationError):
        pool_save(actor=manager, fields={"name": "无团队公海", "team": None})
    with pytest.raises(ValidationError):
        pool_save(actor=manager, fields={"name": "别队公海", "team": other_team_pool.team})


def test_rep_cannot_create_pools(rep, team):
    with pytest.raises(PermissionDenied):
        pool_save(actor=rep, fields={"name": "x", "team": team})
