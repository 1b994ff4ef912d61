"""Selectors and registry of the customer page (R5.1.1, R7.1.1)."""

from __future__ import annotations

import datetime

import pytest
from django.http import Http404
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone, translation

from crm.accounts import roles
from crm.core.registry import registry
from customers.models import PoolEvent
from customers.registry import (
    PLACEHOLDER_TABS,
    CustomerTab,
    TimelineItem,
    TimelineSource,
    register_customer_tab,
    register_timeline_source,
    tabs_for,
)
from customers.selectors.detail import customer_get_for_user, customer_header, customer_timeline
from customers.services import activities as svc
from customers.services.records import customer_update

from .factories import CustomerFactory, PoolFactory, TagFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture
def other_rep(make_user, team):
    return make_user(roles.SALES_REP, username="rep2", team=team)


@pytest.fixture
def customer(rep):
    return CustomerFactory(owner=rep, name="张伟", phones=[{"number": "13812345678"}])


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test are undone afterwards."""
    monkeypatch.setattr(registry, "customer_tabs", dict(registry.customer_tabs))
    monkeypatch.setattr(registry, "timeline_sources", dict(registry.timeline_sources))


def request_for(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


# customer_get_for_user ---------------------------------------------------------------------------


def test_rep_sees_own_customer(rep, customer):
    """R7.1.1: the owner loads the customer."""
    assert customer_get_for_user(user=rep, pk=customer.pk) == customer


def test_rep_does_not_see_another_reps_customer(other_rep, customer):
    """R7.1.1: another rep's customer is indistinguishable from a missing one."""
    with pytest.raises(Http404):
        customer_get_for_user(user=other_rep, pk=customer.pk)
    with pytest.raises(Http404):
        customer_get_for_user(user=other_rep, pk=999_999)


def test_manager_sees_team_customer_not_other_team(manager, make_user, customer):
    """R7.1.1: a manager sees the team's customers; a manager of another team does not."""
    assert customer_get_for_user(user=manager, pk=customer.pk) == customer
    outsider = make_user(roles.SALES_MANAGER, username="mgr2")
    with pytest.raises(Http404):
        customer_get_for_user(user=outsider, pk=customer.pk)


def test_deleted_customer_is_404(rep, customer):
    customer.deleted_at = timezone.now()
    customer.save(update_fields=["deleted_at"])
    with pytest.raises(Http404):
        customer_get_for_user(user=rep, pk=customer.pk)


@pytest.mark.parametrize("rows", [10, 100])
def test_selector_query_count_constant(rep, django_assert_num_queries, rows):
    """The customer and every related row the page shows cost a fixed number of queries."""
    customer = CustomerFactory(
        owner=rep,
        kind="company",
        phones=[{"number": f"138{i:08d}"} for i in range(min(rows, 40))],
        addresses=[{"region": "330106", "street": f"路{i}号"} for i in range(min(rows, 40))],
        tags=[TagFactory(name=f"标签{i}") for i in range(5)],
    )
    for i in range(rows):
        svc.contact_create(
            actor=rep, customer=customer, name=f"联系人{i}", phones=[f"139{i:08d}"], emails=[f"c{i}@x.com"]
        )
    rep = type(rep).objects.get(pk=rep.pk)  # fresh permission cache
    rep.get_all_permissions()
    # customer + tags, platform accounts, own phones, own emails, contacts (+ their phones, emails), addresses
    with django_assert_num_queries(9):
        loaded = customer_get_for_user(user=rep, pk=customer.pk)
        header = customer_header(customer=loaded, user=rep)
        contacts = list(loaded.contacts.all())
        phones = [p.number for c in contacts for p in c.phones.all()]
        emails = [e.address for c in contacts for e in c.emails.all()]
        streets = [(a.street, a.region.name_zh) for a in loaded.addresses.all()]
    assert len(contacts) == rows
    assert len(phones) == rows
    assert len(emails) == rows
    assert len(streets) == min(rows, 40)
    assert len(header["phones"]) == min(rows, 40)  # own phones only, not the contacts'


def test_header_masks_for_everyone(manager, customer):
    """R7.2.4: the page shows masked values; unmasking goes through the audited reveal."""
    header = customer_header(customer=customer_get_for_user(user=manager, pk=customer.pk), user=manager)
    assert header["primary_phone"].shown == "138****5678"
    assert header["primary_phone"].reveal_field == f"phone:{header['primary_phone'].pk}"


# Timeline ----------------------------------------------------------------------------------------


def test_timeline_merges_sources_newest_first(rep, customer):
    """R5.1.1: the timeline merges follow-ups, feedback, consent, pool events and audit entries."""
    svc.followup_create(
        actor=rep, customer=customer, content="三天前的电话", occurred_at=NOW - datetime.timedelta(days=3)
    )
    svc.feedback_create(
        actor=rep,
        customer=customer,
        kind="complaint",
        content="两天前的投诉",
        rating=2,
        received_at=NOW - datetime.timedelta(days=2),
    )
    consent = svc.consent_grant(
        actor=rep,
        customer=customer,
        channel="sms",
        source="一天前",
        granted_at=NOW - datetime.timedelta(days=1),
    )
    svc.consent_withdraw(actor=rep, consent=consent)
    pool = PoolFactory()
    PoolEvent.objects.create(
        customer=customer, pool=pool, action="assign", user=rep, created_at=NOW - datetime.timedelta(days=4)
    )
    customer_update(actor=rep, customer=customer, name="张伟明")
    with translation.override("en"):
        items = customer_timeline(customer=customer, user=rep)
    kinds = [item.kind for item in items]
    assert {"followup", "feedback", "consent", "pool", "audit"} <= set(kinds)
    whens = [item.when for item in items]
    assert whens == sorted(whens, reverse=True)
    bodies = [item.body for item in items]
    assert "三天前的电话" in bodies
    assert "两天前的投诉" in bodies
    # The follow-up comes before (older than) the feedback, which is older than the consent.
    assert bodies.index("两天前的投诉") < bodies.index("三天前的电话")
    assert kinds[-1] == "pool"
    # Audit entries say what changed, never the values of sensitive fields.
    assert any(item.kind == "audit" and "name" in item.body.lower() for item in items)
    withdrawn = [i for i in items if i.kind == "consent" and i.icon == "shield-x"]
    assert len(withdrawn) == 1


def test_timeline_respects_limit_and_permissions(rep, make_user, customer):
    for i in range(5):
        svc.followup_create(
            actor=rep,
            customer=customer,
            content=f"第{i}次",
            occurred_at=NOW - datetime.timedelta(hours=i + 1),
        )
    assert len(customer_timeline(customer=customer, user=rep, limit=3)) == 3
    # A user without view_followup does not get follow-ups on the timeline.
    nobody = make_user(None, username="noperm")
    assert all(i.kind != "followup" for i in customer_timeline(customer=customer, user=nobody))


def test_timeline_includes_registered_sources(rep, customer, clean_registry):
    """Later apps add events (orders, tickets) through the registry; they merge by date."""

    def orders(customer, user, limit):
        return [
            TimelineItem(when=timezone.now(), icon="bag", title="订单 #1", kind="orders"),
            TimelineItem(when=NOW - datetime.timedelta(days=30), icon="bag", title="订单 #0", kind="orders"),
        ]

    register_timeline_source(TimelineSource(key="orders", fetch=orders))
    svc.followup_create(
        actor=rep, customer=customer, content="x", occurred_at=NOW - datetime.timedelta(days=1)
    )
    items = customer_timeline(customer=customer, user=rep)
    titles = [str(i.title) for i in items]
    assert titles[0] == "订单 #1"
    assert titles[-1] == "订单 #0"


# Registry ----------------------------------------------------------------------------------------


def test_builtin_tabs_and_placeholders(rep, customer, clean_registry):
    keys = [t.key for t in tabs_for(request_for(rep), customer)]
    assert keys[0] == "timeline"
    for key in ("followups", "feedback", "addresses", "consent", *PLACEHOLDER_TABS):
        assert key in keys
    assert "contacts" not in keys  # a person has no contact persons
    assert next(t for t in tabs_for(request_for(rep), customer) if t.key == "tickets").placeholder


def test_registered_tab_replaces_placeholder_and_respects_permission(
    rep, client_for, customer, clean_registry
):
    register_customer_tab(
        CustomerTab(
            key="orders",
            label="订单",
            template="customers/partials/_tab_placeholder.html",
            get_context=lambda request, customer: {"placeholder_message": "真正的订单列表"},
            order=50,
        )
    )
    register_customer_tab(
        CustomerTab(
            key="secret",
            label="secret",
            template="customers/partials/_tab_placeholder.html",
            get_context=lambda request, customer: {},
            permission="customers.delete_customer",
        )
    )
    tabs = {t.key: t for t in tabs_for(request_for(rep), customer)}
    assert not tabs["orders"].placeholder
    assert "secret" not in tabs  # reps lack customers.delete_customer
    html = client_for(rep).get(reverse("customers:customer-detail", args=[customer.pk]), {"tab": "orders"})
    assert "真正的订单列表" in html.content.decode()
    assert "commerce module" not in html.content.decode()
