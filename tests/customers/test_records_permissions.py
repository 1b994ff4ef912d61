"""Lists of a customer need their own permissions, and address defaults match the customer page
(R5.1.1, R7.2.4)."""

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import translation

from crm.accounts import roles
from crm.core.audit.models import AuditAction, AuditEntry
from customers.services import activities, records
from customers.services.pools import can_release
from tests.customers.factories import CustomerFactory, PoolFactory

pytestmark = pytest.mark.django_db

PHONE = "13812345678"


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def service_manager(make_user, team):
    return make_user(roles.SERVICE_MANAGER, team=team)


@pytest.fixture
def customer(rep):
    return CustomerFactory(
        owner=rep,
        phones=[{"number": PHONE, "is_primary": True}],
        emails=[{"address": "a@example.com"}],
        platform_accounts=[{"platform": "jd", "account_id": "jd_a"}],
        addresses=[{"region": "330106", "street": "文三路 1 号"}],
    )


def same_rows(customer, field):
    """The service's dicts for the customer's current rows of ``field`` (an unchanged list)."""
    attrs = records._LIST_MODELS[field][1]
    return [
        {"id": row.pk, **{a: getattr(row, a) for a in attrs}}
        for row in records._list_rows(customer, field).order_by("pk")
    ]


def updates(customer):
    return AuditEntry.objects.filter(
        action=AuditAction.UPDATE, object_type="customers.customer", object_id=str(customer.pk)
    )


@pytest.mark.parametrize(
    ("field", "new_list"),
    [
        ("phones", lambda c: [*same_rows(c, "phones"), {"number": "13900000009"}]),
        ("phones", lambda c: [{**same_rows(c, "phones")[0], "number": "13900000009"}]),
        ("phones", lambda c: []),
        ("emails", lambda c: [{"address": "b@example.com"}]),
        ("platform_accounts", lambda c: []),
        ("addresses", lambda c: [{**same_rows(c, "addresses")[0], "street": "改过的 2 号"}]),
    ],
)
def test_service_manager_cannot_change_lists(service_manager, customer, field, new_list):
    """R7.2.4: change_customer alone does not cover phones, e-mails, accounts or addresses."""
    before = same_rows(customer, field)
    with pytest.raises(PermissionDenied):
        records.customer_update(actor=service_manager, customer=customer, **{field: new_list(customer)})
    assert same_rows(customer, field) == before
    assert not updates(customer).exists()


def test_service_manager_changes_own_fields_and_unchanged_lists(service_manager, customer):
    """The customer's own fields stay editable; passing a list unchanged needs no row permission."""
    records.customer_update(
        actor=service_manager,
        customer=customer,
        name="新名字",
        phones=same_rows(customer, "phones"),
        addresses=same_rows(customer, "addresses"),
    )
    customer.refresh_from_db()
    assert customer.name == "新名字"
    assert customer.phones.get().number == PHONE


def test_each_verb_needs_its_own_permission(rep, customer, monkeypatch):
    """Adding needs add_, changing change_, dropping delete_ (here: a rep without delete)."""
    granted = {"customers.add_customerphone", "customers.change_customerphone"}
    monkeypatch.setattr(type(rep), "has_perm", lambda self, perm, obj=None: perm in granted)
    phone = same_rows(customer, "phones")[0]
    records.customer_update(actor=rep, customer=customer, phones=[phone, {"number": "13900000009"}])
    assert customer.phones.count() == 2
    records.customer_update(
        actor=rep, customer=customer, phones=[{**phone, "label": "work"}, same_rows(customer, "phones")[1]]
    )
    assert customer.phones.get(pk=phone["id"]).label == "work"
    with pytest.raises(PermissionDenied, match="phone numbers"):
        records.customer_update(actor=rep, customer=customer, phones=[phone])
    assert customer.phones.count() == 2


def test_may_edit_list(rep, service_manager, make_user):
    for field in records.LIST_FIELDS:
        assert records.may_edit_list(rep, field)
        assert records.may_edit_list(rep, field, creating=True)
        assert not records.may_edit_list(service_manager, field)
        assert not records.may_edit_list(make_user(roles.ANALYST), field, creating=True)
    assert not records.may_edit_list(None, "phones")


def test_first_address_is_both_defaults_like_the_customer_page(rep):
    """The customer form and address_create agree: the first address is the default for both."""
    customer = records.customer_create(
        actor=rep, name="甲", addresses=[{"region": "330106", "street": "文三路 1 号"}]
    )
    address = customer.addresses.get()
    assert address.is_default_shipping
    assert address.is_default_billing
    other = CustomerFactory(owner=rep)
    via_page = activities.address_create(actor=rep, customer=other, region="330106", street="文三路 1 号")
    assert (via_page.is_default_shipping, via_page.is_default_billing) == (True, True)


def test_update_keeps_one_default_of_each_kind(rep):
    customer = CustomerFactory(owner=rep)
    records.customer_update(
        actor=rep,
        customer=customer,
        addresses=[
            {"region": "330106", "street": "一号"},
            {"region": "440305", "street": "二号", "is_default_shipping": True},
        ],
    )
    first, second = customer.addresses.order_by("pk")
    assert (first.is_default_shipping, first.is_default_billing) == (False, True)
    assert (second.is_default_shipping, second.is_default_billing) == (True, False)
    records.customer_update(
        actor=rep,
        customer=customer,
        addresses=[{"region": "330106", "street": "一号", "id": first.pk, "is_default_billing": False}],
    )
    only = customer.addresses.get()
    assert (only.is_default_shipping, only.is_default_billing) == (True, True)


def test_can_release(rep, manager, make_user, team, customer, admin_user):
    """The "Release to pool" button's rule mirrors customer_release_to_pool: owner or pool manager."""
    assert can_release(rep, customer)
    assert can_release(manager, customer)
    assert can_release(admin_user, customer)
    assert not can_release(make_user(roles.SALES_REP, team=team), customer)
    assert not can_release(make_user(roles.ANALYST, team=team), customer)
    assert not can_release(make_user(roles.SALES_MANAGER), customer)  # another team's manager
    assert not can_release(None, customer)
    records.customer_delete(actor=manager, customer=customer)
    customer.refresh_from_db()
    assert not can_release(rep, customer)
    pooled = CustomerFactory(owner=None, pool=PoolFactory())
    assert not can_release(admin_user, pooled)
