"""Customer create / edit / delete / restore / deleted-list pages, per role (R5.1.1, R5.1.2, R7.2.4)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from crm.accounts import roles
from crm.core.audit.models import AuditAction, AuditEntry
from customers.models import Customer
from customers.services import records
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

CREATE = reverse("customers:customer-create")
DELETED = reverse("customers:customer-deleted-list")


@pytest.fixture(autouse=True)
def english_messages():
    with translation.override("en"):
        yield


def edit_url(c):
    return reverse("customers:customer-edit", args=[c.pk])


def delete_url(c):
    return reverse("customers:customer-delete", args=[c.pk])


def restore_url(c):
    return reverse("customers:customer-restore", args=[c.pk])


def management(prefix, total=0, initial=0):
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def post_data(owner_user, **overrides):
    data = {
        "kind": "person",
        "name": "周杰",
        "gender": "male",
        "birthday": "1988-08-08",
        "stage": "new",
        "source": "jd",
        "owner": str(owner_user.pk),
        "wechat_id": "",
        "notes": "",
        **management("phones", 1),
        "phones-0-number": "13912345678",
        "phones-0-label": "mobile",
        "phones-0-is_primary": "on",
        **management("emails", 1),
        "emails-0-address": "",
        **management("accounts", 1),
        "accounts-0-platform": "jd",
        "accounts-0-account_id": "jd_zhoujie",
        "accounts-0-nickname": "",
        **management("addresses", 1),
        "addresses-0-recipient": "周杰",
        "addresses-0-phone": "",
        "addresses-0-region_0": "330000",
        "addresses-0-region_1": "330100",
        "addresses-0-region_2": "330106",
        "addresses-0-street": "文三路 1 号",
        "addresses-0-postcode": "310000",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("url", [CREATE, DELETED, "/customers/1/edit/", "/customers/1/delete/"])
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_anonymous_restore_is_sent_to_login(client, rep):
    customer = CustomerFactory(owner=rep)
    response = client.post(restore_url(customer))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_rep_creates_a_customer(rep, client_for):
    """R5.1.1: a sales rep creates a customer with phone, account and address; they own it."""
    client = client_for(rep)
    page = client.get(CREATE)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="phones-0-number"' in body
    assert "data-formset-template" in body
    assert "js/customers.js" in body
    response = client.post(CREATE, post_data(rep))
    customer = Customer.objects.get(name="周杰")
    assert response.status_code == 302
    assert response["Location"] in (customer.get_absolute_url() if _has_detail() else "", edit_url(customer))
    assert customer.owner == rep
    assert customer.phones.get().number == "13912345678"
    assert customer.platform_accounts.get().account_id == "jd_zhoujie"
    assert customer.addresses.get().region_id == "330106"
    assert customer.province_id == "330000"
    assert not customer.emails.exists()  # the empty extra row is ignored
    assert AuditEntry.objects.filter(action=AuditAction.CREATE, object_id=str(customer.pk)).exists()


def _has_detail():
    try:
        reverse("customers:customer-detail", args=[1])
    except Exception:
        return False
    return True


def english(user):
    user.language = "en"
    user.save(update_fields=["language"])
    return user


def test_invalid_post_rerenders_with_input_kept(rep, client_for):
    """Bad input: the page comes back with the message and everything typed."""
    english(rep)
    client = client_for(rep)
    response = client.post(
        CREATE,
        post_data(rep, **{"phones-0-number": "12345", "birthday": "2999-01-01", "name": "保留的名字"}),
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "保留的名字" in body
    assert 'value="12345"' in body
    assert "jd_zhoujie" in body
    assert "valid phone number" in body
    assert "impossible" in body
    assert not Customer.objects.exists()


def test_service_error_is_shown_on_the_formset(rep, client_for):
    """A platform account of another customer: the service's message appears above the rows."""
    CustomerFactory(owner=english(rep), platform_accounts=[{"platform": "jd", "account_id": "jd_zhoujie"}])
    response = client_for(rep).post(CREATE, post_data(rep))
    assert response.status_code == 200
    assert "JD account already belongs to another customer" in response.content.decode()
    assert Customer.objects.count() == 1


def test_owner_choices_follow_the_role(rep, manager, admin_user, make_user, client_for, team):
    other = make_user(roles.SALES_REP, display_name="隔壁销售")
    colleague = make_user(roles.SALES_REP, team=team, display_name="同组销售")
    body = client_for(rep).get(CREATE).content.decode()
    assert "同组销售" not in body
    assert "隔壁销售" not in body
    body = client_for(manager).get(CREATE).content.decode()
    assert "同组销售" in body
    assert "隔壁销售" not in body
    body = client_for(admin_user).get(CREATE).content.decode()
    assert "隔壁销售" in body
    # A rep who forges another owner gets a form error, not a customer for someone else.
    response = client_for(rep).post(CREATE, post_data(rep, owner=str(other.pk)))
    assert response.status_code == 200
    assert not Customer.objects.exists()
    assert colleague.pk


@pytest.mark.parametrize("role", [roles.ANALYST, roles.MARKETING, roles.SERVICE_AGENT])
def test_roles_without_add_permission_get_403(role, make_user, client_for):
    user = make_user(role)
    client = client_for(user)
    assert client.get(CREATE).status_code == 403
    assert client.post(CREATE, post_data(user)).status_code == 403
    assert not Customer.objects.exists()


def test_rep_edits_own_customer_only(rep, make_user, client_for):
    """Another rep's customer answers 404 (R7.1.1 visibility)."""
    mine = CustomerFactory(owner=rep, name="我的客户", phones=[{"number": "13900000001"}])
    theirs = CustomerFactory(owner=make_user(roles.SALES_REP))
    client = client_for(rep)
    assert client.get(edit_url(theirs)).status_code == 404
    assert client.post(edit_url(theirs), post_data(rep)).status_code == 404
    page = client.get(edit_url(mine))
    assert page.status_code == 200
    assert "13900000001" in page.content.decode()
    phone = mine.phones.get()
    data = post_data(rep, name="改过的名字")
    data.update(management("phones", 1, 1))
    data.update(
        {"phones-0-id": str(phone.pk), "phones-0-customer": str(mine.pk), "phones-0-number": "13900000002"}
    )
    response = client.post(edit_url(mine), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    mine.refresh_from_db()
    assert mine.name == "改过的名字"
    assert [p.pk for p in mine.phones.all()] == [phone.pk]
    assert mine.phones.get().number == "13900000002"
    entry = AuditEntry.objects.filter(action=AuditAction.UPDATE, object_id=str(mine.pk)).get()
    assert entry.changes["name"] == ["我的客户", "改过的名字"]
    assert entry.changes["phones"] == "changed"


def test_edit_deletes_marked_rows(rep, client_for):
    customer = CustomerFactory(owner=rep, phones=[{"number": "13900000001"}])
    phone = customer.phones.get()
    data = post_data(rep, name=customer.name)
    data.update(management("phones", 1, 1))
    data.update(
        {"phones-0-id": str(phone.pk), "phones-0-customer": str(customer.pk), "phones-0-DELETE": "on"}
    )
    assert client_for(rep).post(edit_url(customer), data).status_code == 302
    assert not customer.phones.exists()


def test_deleted_customer_cannot_be_edited(rep, manager, client_for):
    customer = CustomerFactory(owner=rep)
    records.customer_delete(actor=manager, customer=customer)
    assert client_for(rep).get(edit_url(customer)).status_code == 404


def test_delete_permissions_and_flow(rep, manager, make_user, client_for):
    """Reps may not delete (403); a manager deletes a team customer (confirm page, then POST);
    another team's customer is 404."""
    customer = CustomerFactory(owner=rep)
    outsider = CustomerFactory(owner=make_user(roles.SALES_REP))
    assert client_for(rep).post(delete_url(customer)).status_code == 403
    client = client_for(manager)
    assert client.get(delete_url(outsider)).status_code == 404
    assert client.post(delete_url(outsider)).status_code == 404
    page = client.get(delete_url(customer))
    assert page.status_code == 200
    assert customer.name in page.content.decode()
    assert not Customer.objects.get(pk=customer.pk).is_deleted  # GET changes nothing
    response = client.post(delete_url(customer))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.is_deleted
    assert AuditEntry.objects.filter(action=AuditAction.DELETE, object_id=str(customer.pk)).exists()
    assert client.post(delete_url(customer)).status_code == 404  # already gone


def test_restore_and_deleted_list(rep, manager, admin_user, client_for):
    """R5.1.2: only administrators see deleted customers and restore them (POST only)."""
    customer = CustomerFactory(owner=rep, name="被删除的客户")
    records.customer_delete(actor=manager, customer=customer)
    for user in (rep, manager):
        client = client_for(user)
        assert client.get(DELETED).status_code == 403
        assert client.post(restore_url(customer)).status_code == 403
    client = client_for(admin_user)
    page = client.get(DELETED)
    assert page.status_code == 200
    assert "被删除的客户" in page.content.decode()
    assert client.get(restore_url(customer)).status_code == 405
    response = client.post(restore_url(customer))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert not customer.is_deleted
    assert restore_url(customer) not in client.get(DELETED).content.decode()
    assert client.post(restore_url(customer)).status_code == 404  # not deleted any more


def test_deleted_list_query_count_is_constant(rep, manager, admin_user, client_for):
    client = client_for(admin_user)

    def count_queries(n):
        for customer in [CustomerFactory(owner=rep) for _ in range(n)]:
            records.customer_delete(actor=manager, customer=customer)
        client.get(DELETED)  # warm caches (session, permissions)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(DELETED).status_code == 200
        return len(ctx.captured_queries)

    assert count_queries(2) == count_queries(10)
