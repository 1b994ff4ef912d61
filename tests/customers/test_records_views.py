"""Customer create / edit / delete / restore / deleted-list pages, per role (R5.1.1, R5.1.2, R7.2.4)."""

from html.parser import HTMLParser

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


class _FormReader(HTMLParser):
    """What a browser submits for ``form#customer-form`` as rendered (rows in <template> left out)."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self.in_form = self.in_template = False
        self.select = self.textarea = None
        self.options: list[tuple[str, bool]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == "customer-form":
            self.in_form = True
        if not self.in_form or self.in_template or tag == "template":
            self.in_template = self.in_template or tag == "template"
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.setdefault(name, []).append(
                a.get("value") or ("on" if a.get("type") == "checkbox" else "")
            )
        elif tag == "select" and name:
            self.select, self.options = name, []
        elif tag == "option" and self.select:
            self.options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea" and name:
            self.textarea = name
            self.data.setdefault(name, []).append("")

    def handle_endtag(self, tag):
        if tag == "template":
            self.in_template = False
        elif tag == "form":
            self.in_form = False
        elif tag == "select" and self.select:
            chosen = [v for v, selected in self.options if selected] or [v for v, _ in self.options[:1]]
            self.data.setdefault(self.select, []).extend(chosen)
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data):
        if self.textarea and self.in_form:
            self.data[self.textarea][-1] += data


def submitted(page) -> dict:
    reader = _FormReader()
    reader.feed(page.content.decode())
    return reader.data


SENSITIVE = {
    "phones": ["13900000001", "02112345678"],
    "email": "zhou.private@example.com",
    "wechat": "wx_secret_zhou",
    "street": "文三路 90 号 3 幢 501 室",
    "recipient_phone": "13700001111",
}


def sensitive_customer(owner):
    return CustomerFactory(
        owner=owner,
        name="我的客户",
        wechat_id=SENSITIVE["wechat"],
        phones=[{"number": n} for n in SENSITIVE["phones"]],
        emails=[{"address": SENSITIVE["email"]}],
        addresses=[
            {"region": "330106", "street": SENSITIVE["street"], "phone": SENSITIVE["recipient_phone"]}
        ],
    )


def stored(customer):
    customer.refresh_from_db()
    address = customer.addresses.get()
    return {
        "phones": sorted(p.number for p in customer.phones.all()),
        "email": customer.emails.get().address,
        "wechat": customer.wechat_id,
        "street": address.street,
        "recipient_phone": address.phone,
    }


def full_values():
    return [
        *SENSITIVE["phones"],
        SENSITIVE["email"],
        SENSITIVE["wechat"],
        SENSITIVE["street"],
        SENSITIVE["recipient_phone"],
    ]


@pytest.mark.parametrize(
    "role", [roles.SALES_REP, roles.SALES_MANAGER, roles.ADMINISTRATOR, roles.SERVICE_MANAGER]
)
def test_edit_page_never_holds_full_values(role, make_user, team, client_for):
    """R7.2.4: whatever the role (even with accounts.view_sensitive_data), the edit page shows
    sensitive values masked only, so it unmasks nothing and needs no audit entry."""
    user = english(make_user(role, team=team))  # the help text is asserted in English
    customer = sensitive_customer(make_user(roles.SALES_REP, team=team) if role != roles.SALES_REP else user)
    page = client_for(user).get(edit_url(customer))
    assert page.status_code == 200
    body = page.content.decode()
    for value in full_values():
        assert value not in body
    assert "wx_s" not in body  # not even a prefix beyond the mask
    assert "w******" in body  # the masked WeChat ID is the placeholder
    if role != roles.SERVICE_MANAGER:
        assert "139****0001" in body
        assert "z***@example.com" in body
        assert "leave empty to keep" in body
    assert not AuditEntry.objects.filter(action=AuditAction.VIEW_SENSITIVE).exists()


def test_rep_edits_own_customer_only(rep, make_user, client_for):
    """R7.1.1: another rep's customer answers 404. R7.2.4: the edit page holds no full value;
    saving it unchanged keeps every stored value; changing one phone changes only that one."""
    english(rep)
    mine = sensitive_customer(rep)
    theirs = CustomerFactory(owner=make_user(roles.SALES_REP))
    client = client_for(rep)
    assert client.get(edit_url(theirs)).status_code == 404
    assert client.post(edit_url(theirs), post_data(rep)).status_code == 404
    page = client.get(edit_url(mine))
    assert page.status_code == 200
    for value in full_values():
        assert value not in page.content.decode()
    before = stored(mine)
    assert before["phones"] == sorted(SENSITIVE["phones"])

    data = submitted(page)
    assert data["phones-0-number"] == [""]  # nothing pre-filled
    data["name"] = ["改过的名字"]
    response = client.post(edit_url(mine), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert stored(mine) == before
    assert mine.name == "改过的名字"
    entry = AuditEntry.objects.filter(action=AuditAction.UPDATE, object_id=str(mine.pk)).get()
    assert entry.changes == {"name": ["我的客户", "改过的名字"]}

    page = client.get(edit_url(mine))
    data = submitted(page)
    first = mine.phones.order_by("pk").first()
    index = next(i for i in range(2) if data[f"phones-{i}-id"] == [str(first.pk)])
    data[f"phones-{index}-number"] = ["13900000002"]
    assert client.post(edit_url(mine), data).status_code == 302
    after = stored(mine)
    assert after["phones"] == sorted(["13900000002", SENSITIVE["phones"][1]])
    assert mine.phones.get(pk=first.pk).number == "13900000002"  # the same row, changed in place
    assert {k: v for k, v in after.items() if k != "phones"} == {
        k: v for k, v in before.items() if k != "phones"
    }
    entry = AuditEntry.objects.filter(action=AuditAction.UPDATE, object_id=str(mine.pk)).latest("pk")
    assert entry.changes == {"phones": "changed"}


def test_edit_clears_optional_sensitive_values_only_when_asked(rep, client_for):
    """The WeChat ID and the recipient phone are removed with their checkbox, not by leaving them empty."""
    customer = sensitive_customer(rep)
    client = client_for(rep)
    data = submitted(client.get(edit_url(customer)))
    assert "wechat_id_clear" not in data  # unticked
    data["wechat_id_clear"] = ["on"]
    data["addresses-0-phone_clear"] = ["on"]
    assert client.post(edit_url(customer), data).status_code == 302
    after = stored(customer)
    assert after["wechat"] == ""
    assert after["recipient_phone"] == ""
    assert after["street"] == SENSITIVE["street"]


def test_edit_replaces_a_sensitive_value_with_a_new_one(rep, client_for):
    customer = sensitive_customer(rep)
    client = client_for(rep)
    data = submitted(client.get(edit_url(customer)))
    data["wechat_id"] = ["wx_new_id"]
    data["addresses-0-street"] = ["新街 8 号"]
    assert client.post(edit_url(customer), data).status_code == 302
    after = stored(customer)
    assert (after["wechat"], after["street"]) == ("wx_new_id", "新街 8 号")
    assert after["phones"] == sorted(SENSITIVE["phones"])


def test_service_manager_edit_form_has_no_lists(make_user, rep, team, client_for):
    """R7.2.4: without the row permissions the lists are not offered, and a forged list is ignored."""
    english(rep)
    service_manager = english(make_user(roles.SERVICE_MANAGER, team=team))
    customer = sensitive_customer(rep)
    client = client_for(service_manager)
    page = client.get(edit_url(customer))
    body = page.content.decode()
    for prefix in ("phones", "emails", "accounts", "addresses"):
        assert f'name="{prefix}-TOTAL_FORMS"' not in body
    assert "you may not change are not shown" in body
    data = submitted(page)
    data["notes"] = ["客服备注"]
    data.update({k: [v] for k, v in management("phones", 1).items()})
    data["phones-0-number"] = ["13611112222"]
    assert client.post(edit_url(customer), data).status_code == 302
    customer.refresh_from_db()
    assert customer.notes == "客服备注"
    assert sorted(p.number for p in customer.phones.all()) == sorted(SENSITIVE["phones"])
    # A rep has the row permissions: the lists are there.
    body = client_for(rep).get(edit_url(customer)).content.decode()
    assert 'name="phones-TOTAL_FORMS"' in body


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
