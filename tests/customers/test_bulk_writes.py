"""Many customers and addresses at once, for the order import (R5.1.3): the rules of the one-by-one
services, per-item errors, one audit entry each."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from crm.accounts import roles
from crm.core.audit.models import AuditAction, AuditEntry
from crm.core.audit.services import verify_chain
from customers.models import Address, Customer, CustomerPhone, PlatformAccount
from customers.services import activities
from customers.services.imports.creating import customer_create_many

from .factories import AddressFactory, CustomerFactory, region

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_rep(make_user, team):
    return make_user(roles.SALES_REP, username="rep2")


def test_customer_create_many_creates_valid_items_and_returns_each_error(rep):
    results = customer_create_many(
        actor=rep,
        items=[
            {
                "name": "王芳",
                "source": "tmall",
                "owner": rep,
                "phones": [{"number": "13812345678", "label": "mobile", "is_primary": True}],
                "platform_accounts": [{"platform": "tmall", "account_id": "tb_wang", "nickname": ""}],
                "addresses": [{"region": region("330106"), "street": "文三路 1 号", "recipient": "王芳"}],
            },
            {
                "name": "坏号码",
                "source": "jd",
                "phones": [{"number": "12", "label": "mobile", "is_primary": True}],
            },
            {"name": "", "source": "jd"},
        ],
    )
    assert isinstance(results[0], int)
    assert isinstance(results[1], ValidationError)
    assert "phones" in results[1].message_dict
    assert isinstance(results[2], ValidationError)
    assert "name" in results[2].message_dict
    customer = Customer.objects.get()
    assert customer.pk == results[0]
    assert (customer.name, customer.source, customer.owner, customer.city_id) == (
        "王芳",
        "tmall",
        rep,
        "330100",
    )
    assert CustomerPhone.objects.get(customer=customer).number == "13812345678"
    assert PlatformAccount.objects.get(customer=customer).account_id == "tb_wang"
    address = Address.objects.get(customer=customer)
    assert address.is_default_shipping
    assert address.is_default_billing
    entry = AuditEntry.objects.get(action=AuditAction.CREATE, object_type="customers.customer")
    assert entry.changes["phones"] == "changed"
    assert "13812345678" not in str(entry.changes)
    assert verify_chain().ok


def test_address_create_many_adds_non_default_addresses_and_first_ones_through_the_service(rep):
    with_address = CustomerFactory(owner=rep, name="有地址")
    AddressFactory(customer=with_address, region=region("330106"), street="旧地址 1 号")
    without = CustomerFactory(owner=rep, name="无地址")
    results = activities.address_create_many(
        actor=rep,
        items=[
            (with_address, {"region": "310101", "street": "南京东路 2 号", "recipient": "甲"}),
            (without, {"region": "330106", "street": "文三路 3 号"}),
            (with_address, {"region": "330000", "street": "省不是完整地址"}),
            (with_address, {"region": "330106", "street": ""}),
        ],
    )
    assert isinstance(results[0], Address)
    assert not results[0].is_default_shipping
    assert isinstance(results[1], Address)
    assert results[1].is_default_shipping  # the customer's first address
    without.refresh_from_db()
    assert without.city_id == "330100"
    assert "region" in results[2].message_dict
    assert "street" in results[3].message_dict
    assert Address.objects.filter(customer=with_address).count() == 2
    assert AuditEntry.objects.filter(action=AuditAction.CREATE, object_type="customers.address").count() == 2
    assert verify_chain().ok


def test_address_create_many_refuses_customers_out_of_scope_and_users_without_the_right(
    rep, other_rep, make_user
):
    mine = CustomerFactory(owner=rep)
    theirs = CustomerFactory(owner=other_rep)
    results = activities.address_create_many(
        actor=rep,
        items=[
            (mine, {"region": "330106", "street": "文三路 1 号"}),
            (theirs, {"region": "330106", "street": "x"}),
        ],
    )
    assert isinstance(results[0], Address)
    assert isinstance(results[1], PermissionDenied)
    assert not Address.objects.filter(customer=theirs).exists()
    viewer = make_user(roles.ANALYST, username="viewer")
    with pytest.raises(PermissionDenied):
        activities.address_create_many(actor=viewer, items=[(mine, {"region": "330106", "street": "y"})])
    assert activities.address_create_many(actor=rep, items=[]) == []
