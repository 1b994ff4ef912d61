"""Shared set-up for the customer pool tests (no tests here)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from crm.accounts import roles
from customers.models import Customer
from tests.customers.factories import CustomerFactory, PhoneFactory, PoolFactory

FULL_PHONE = "13912345678"
MASKED_PHONE = "139****5678"


def days_ago(n: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(days=n)


def pool_customer(pool, *, phone: str | None = None, **kwargs) -> Customer:
    """A customer waiting in ``pool`` (no owner, the pool's team)."""
    customer = CustomerFactory(owner=None, pool=pool, team=pool.team, **kwargs)
    if phone:
        PhoneFactory(customer=customer, number=phone, is_primary=True)
    return customer


def owned_customer(owner, *, owned_days_ago: float, follow_up_days_ago: float | None = None, **kwargs):
    """A customer owned by ``owner`` since ``owned_days_ago`` (dates set directly)."""
    customer = CustomerFactory(owner=owner, **kwargs)
    Customer.objects.filter(pk=customer.pk).update(
        owned_since=days_ago(owned_days_ago),
        last_follow_up_at=days_ago(follow_up_days_ago) if follow_up_days_ago is not None else None,
    )
    customer.refresh_from_db()
    return customer


@pytest.fixture
def pool(team, rep):
    return PoolFactory(name="华东公海", team=team, members=[rep], daily_claim_cap=3, max_owned=10)


@pytest.fixture
def other_team_pool(make_user):
    from tests.factories import TeamFactory

    other_team = TeamFactory(name="华南二组")
    other_rep = make_user(roles.SALES_REP, username="rep_south", team=other_team)
    return PoolFactory(name="华南公海", team=other_team, members=[other_rep])


@pytest.fixture
def rep2(make_user, team, pool):
    user = make_user(roles.SALES_REP, username="rep2", team=team)
    pool.members.add(user)
    return user
