"""Customers admin (Administrators only, no ciphertext) and the demo data step (R5.1.1, R6.1.5, R7.1.1)."""

from io import StringIO

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

from crm.accounts import roles
from crm.core.registry import registry
from customers import demo
from customers.models import (
    Customer,
    CustomerPhone,
    CustomerPool,
    CustomerSearchToken,
    FollowUp,
    PlatformAccount,
)
from tests.customers.factories import (
    AddressFactory,
    CustomerFactory,
    EmailFactory,
    FeedbackFactory,
    FollowUpFactory,
    PhoneFactory,
    PlatformAccountFactory,
    PoolFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db

CUSTOMER_MODELS = [m for m in admin.site._registry if m._meta.app_label == "customers"]


def test_every_customers_model_is_registered():
    from django.apps import apps

    assert set(apps.get_app_config("customers").get_models()) == set(CUSTOMER_MODELS)


@pytest.mark.parametrize("model", CUSTOMER_MODELS, ids=[m._meta.model_name for m in CUSTOMER_MODELS])
def test_changelists_and_change_pages_show_no_ciphertext(model, admin_user, rep, client_for):
    customer = CustomerFactory(owner=rep, wechat_id="wx_secret")
    PhoneFactory(customer=customer, number="13812345678")
    EmailFactory(customer=customer)
    AddressFactory(customer=customer)
    PlatformAccountFactory(customer=customer)
    FollowUpFactory(customer=customer)
    FeedbackFactory(customer=customer)
    PoolFactory(members=[rep])
    TagFactory()
    client = client_for(admin_user)
    opts = model._meta
    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    body = changelist.content.decode()
    assert "v1$" not in body  # no ciphertext
    if model is CustomerPhone:
        assert "138****5678" in body
        assert "13812345678" not in body
    obj = model._default_manager.first()
    if obj is not None:
        page = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        assert page.status_code == 200
        assert "v1$" not in page.content.decode()


def test_customer_admin_search_and_non_staff_refused(admin_user, rep, client_for):
    CustomerFactory(owner=rep, name="搜索目标")
    client = client_for(admin_user)
    body = client.get(reverse("admin:customers_customer_changelist"), {"q": "搜索"}).content.decode()
    assert "搜索目标" in body
    response = client_for(rep).get(reverse("admin:customers_customer_changelist"))
    assert response.status_code == 302


def seed(scale=1):
    out = StringIO()
    return demo.seed_customers(scale=scale, stdout=out), out.getvalue()


@pytest.fixture
def demo_users(monkeypatch):
    monkeypatch.setattr(registry, "demo_steps", {})
    call_command("seed_demo", stdout=StringIO())


def test_demo_customers_are_realistic_and_idempotent(demo_users):
    """R6.1.5: a few hundred customers spread over the demo reps and two pools; a re-run adds nothing."""
    created, out = seed()
    assert created == demo.DEMO_COUNT
    assert Customer.objects.count() == demo.DEMO_COUNT
    owners = set(Customer.objects.exclude(owner=None).values_list("owner__username", flat=True))
    assert owners == set(demo.DEMO_OWNERS)
    pools = {p.name: p for p in CustomerPool.objects.all()}
    assert {"华东公海", "全国公海"} <= set(pools)
    assert pools["华东公海"].team.name == "华东一组"
    assert set(pools["华东公海"].members.values_list("username", flat=True)) >= {"salesmgr", "sales1"}
    assert Customer.objects.filter(pool__isnull=False, owner__isnull=True).exists()
    assert Customer.objects.filter(kind="company", contacts__isnull=False).exists()
    assert CustomerPhone.objects.filter(number_index__gt="").count() >= demo.DEMO_COUNT
    assert PlatformAccount.objects.exists()
    assert FollowUp.objects.exists()
    assert CustomerSearchToken.objects.exists()
    assert Customer.objects.exclude(province=None).values("province").distinct().count() >= 5
    assert Customer.objects.filter(tags__name="VIP").exists()
    assert "300 demo customers" in out
    again, out = seed()
    assert again == 0
    assert Customer.objects.count() == demo.DEMO_COUNT
    assert "skipped" in out


def test_bulk_seed_adds_customers_with_phones_and_tokens(demo_users):
    """R8.2: --scale uses batched bulk inserts with phones and name tokens."""
    added = demo.seed_customers_bulk(120, batch=50)
    assert added == 120
    assert Customer.objects.count() == 120
    assert CustomerPhone.objects.count() >= 120
    assert CustomerSearchToken.objects.values("customer").distinct().count() == 120
    assert demo.seed_customers_bulk(0) == 0


def test_seed_skips_without_demo_users():
    created, out = seed()
    assert created == 0
    assert not Customer.objects.exists()
    assert "no demo sales users" in out


def test_factory_makes_pool_customer(admin_user):
    pool = PoolFactory(name="测试公海")
    customer = CustomerFactory(owner=None, actor=admin_user, pool=pool)
    assert customer.owner is None
    assert customer.pool == pool
    assert roles.ADMINISTRATOR in admin_user.role_names
