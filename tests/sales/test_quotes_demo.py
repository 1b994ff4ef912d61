"""The quotes demo step tells its story once (R6.1.5): drafts, sent, accepted (with an order when
stock allows), rejected then revised, expired, awaiting the manager's approval and approved."""

from __future__ import annotations

import io

import pytest

from crm.accounts import roles
from sales.models import ApprovalRequest, Quote
from sales.services.quotes_demo import seed_quotes
from tests.customers.factories import CustomerFactory

from .factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_demo_step_tells_the_story_once(make_user, team):
    manager = make_user(roles.SALES_MANAGER, username="salesmgr", team=team)
    team.leader = manager
    team.save(update_fields=["leader"])
    for name in ("sales1", "sales2"):
        rep = make_user(roles.SALES_REP, username=name, team=team, manager=manager)
        for _ in range(8):
            CustomerFactory(owner=rep)
    for n in range(6):
        ProductFactory(sku=f"DEMO-{n}")
    out = io.StringIO()
    created = seed_quotes(stdout=out)
    assert created == 16
    statuses = set(Quote.objects.values_list("status", flat=True))
    assert {"draft", "sent", "accepted", "expired", "pending_approval", "approved"} <= statuses
    assert Quote.objects.filter(revision=2, status="sent").count() == 2
    pending = ApprovalRequest.objects.filter(status="pending")
    assert pending.count() == 2
    assert all(r.approver_user == manager for r in pending)
    assert seed_quotes(stdout=out) == 0
    assert Quote.objects.count() == 16


def test_demo_step_without_products_or_users_does_nothing():
    assert seed_quotes(stdout=io.StringIO()) == 0
