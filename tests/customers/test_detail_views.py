"""The customer page and its small forms, per role (R5.1.1, R5.6.2, R7.1.1, R7.2.4)."""

from __future__ import annotations

import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from openpyxl import load_workbook

from crm.accounts import roles
from crm.core.audit.models import AuditAction, AuditEntry
from customers.models import Address, ContactPerson, Feedback, FollowUp, MarketingConsent
from customers.services import activities as svc
from customers.services.pools import can_release

from .factories import CustomerFactory, FollowUpFactory

pytestmark = pytest.mark.django_db

PHONE = "13812345678"
EMAIL = "zhangwei.vip@example.com"


@pytest.fixture
def other_rep(make_user, team):
    return make_user(roles.SALES_REP, username="rep2", team=team)


@pytest.fixture
def customer(rep):
    return CustomerFactory(
        owner=rep,
        name="张伟",
        kind="company",
        wechat_id="wx_zhangwei_88",
        phones=[{"number": PHONE, "is_primary": True}],
        emails=[{"address": EMAIL, "is_primary": True}],
        addresses=[{"region": "330106", "street": "文三路 188 号", "phone": "13900001111"}],
    )


@pytest.fixture
def others(other_rep):
    """Another rep's customer with one row of each kind."""
    other = CustomerFactory(owner=other_rep, name="王芳", kind="company")
    svc.followup_create(actor=other_rep, customer=other, content="x")
    contact = svc.contact_create(actor=other_rep, customer=other, name="赵六")
    address = svc.address_create(actor=other_rep, customer=other, region="330106", street="x 路")
    consent = svc.consent_grant(actor=other_rep, customer=other, channel="sms", source="x")
    return {
        "customer": other,
        "followup": other.follow_ups.get(),
        "contact": contact,
        "address": address,
        "consent": consent,
    }


def url(name, *args):
    return reverse(f"customers:{name}", args=args)


# The page -----------------------------------------------------------------------------------------


def test_anonymous_redirected_to_login(client, customer):
    response = client.get(url("customer-detail", customer.pk))
    assert response.status_code == 302
    assert "login" in response["Location"]


def test_rep_sees_own_customer_masked(client_for, rep, customer):
    """R7.2.4: a rep sees contact details masked; no full number anywhere in the page source."""
    response = client_for(rep).get(url("customer-detail", customer.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "张伟" in html
    assert "138****5678" in html
    for secret in (PHONE, EMAIL, "wx_zhangwei_88", "文三路 188 号", "13900001111"):
        assert secret not in html
    assert url("customer-reveal", customer.pk) not in html  # no "show full number" for reps
    assert url("customer-personal-data", customer.pk) not in html


@pytest.mark.parametrize("tab", ["timeline", "followups", "feedback", "contacts", "addresses", "consent"])
def test_rep_tabs_never_show_full_values(client_for, rep, customer, tab):
    """R7.2.4: every tab masks sensitive values for a rep."""
    svc.contact_create(
        actor=rep, customer=customer, name="李经理", phones=["13700002222"], emails=["li@x.com"]
    )
    html = client_for(rep).get(url("customer-detail", customer.pk), {"tab": tab}).content.decode()
    for secret in (PHONE, EMAIL, "13700002222", "li@x.com", "文三路 188 号", "13900001111"):
        assert secret not in html


def test_manager_sees_team_customer_with_reveal_buttons(client_for, manager, customer):
    """R7.1.1: a manager sees the team's customers; the page masks and offers "show full number"."""
    response = client_for(manager).get(url("customer-detail", customer.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert PHONE not in html
    assert url("customer-reveal", customer.pk) in html
    assert url("customer-personal-data", customer.pk) in html


def test_other_rep_gets_404(client_for, other_rep, customer):
    """R7.1.1: another rep's customer answers 404, like a missing one."""
    client = client_for(other_rep)
    assert client.get(url("customer-detail", customer.pk)).status_code == 404
    assert client.get(url("customer-detail", 999_999)).status_code == 404


def test_deleted_customer_gets_404(client_for, rep, customer):
    customer.deleted_at = timezone.now()
    customer.save(update_fields=["deleted_at"])
    assert client_for(rep).get(url("customer-detail", customer.pk)).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (roles.ADMINISTRATOR, 200),
        (roles.SALES_MANAGER, 200),  # of another team, but not in scope -> 404 below
        (roles.MARKETING, 200),
        (roles.SERVICE_MANAGER, 200),
        (roles.SERVICE_AGENT, 200),
        (roles.ANALYST, 200),
    ],
)
def test_detail_per_role(client_for, make_user, customer, role, status):
    """Every role with all-records scope sees the page; a manager of another team does not."""
    user = make_user(role, username=f"u_{role.replace(' ', '_')}")
    response = client_for(user).get(url("customer-detail", customer.pk))
    expected = 404 if role == roles.SALES_MANAGER else status
    assert response.status_code == expected


def test_tabs_by_query_string_and_htmx(client_for, rep, customer):
    """R5.6.2: each tab is reachable as ?tab=key without JS; htmx gets only the tab block."""
    FollowUpFactory(customer=customer, author=rep, content="第一次回访内容")
    client = client_for(rep)
    page = client.get(url("customer-detail", customer.pk), {"tab": "followups"}).content.decode()
    assert "第一次回访内容" in page
    assert 'aria-current="page"' in page
    partial = client.get(
        url("customer-detail", customer.pk),
        {"tab": "followups"},
        headers={"HX-Request": "true", "HX-Target": "customer-tabs"},
    ).content.decode()
    assert "第一次回访内容" in partial
    assert "<html" not in partial
    unknown = client.get(url("customer-detail", customer.pk), {"tab": "nope"})
    assert unknown.status_code == 200  # falls back to the first tab


def test_placeholder_tabs_until_registered(client_for, rep, customer):
    """R5.1.1: places later issues fill show an empty state."""
    rep.language = "en"  # the request runs in the user's language, whatever the test has activated
    rep.save(update_fields=["language"])
    with translation.override("en"):
        html = client_for(rep).get(url("customer-detail", customer.pk), {"tab": "tickets"}).content.decode()
    assert "Service tickets will appear here once the service module is installed." in html
    for key in ("orders", "opportunities", "tickets", "campaigns"):
        assert f"?tab={key}" in html


def test_contacts_tab_only_for_companies(client_for, rep):
    person = CustomerFactory(owner=rep, kind="person")
    html = client_for(rep).get(url("customer-detail", person.pk)).content.decode()
    assert "?tab=contacts" not in html
    assert "?tab=addresses" in html


def test_detail_actions_per_role(client_for, rep, manager, customer):
    """Header actions: follow-up, edit, release for the rep; delete and personal data for the manager."""
    html = client_for(rep).get(url("customer-detail", customer.pk)).content.decode()
    assert url("followup-create", customer.pk) in html
    assert url("customer-edit", customer.pk) in html
    assert url("customer-release", customer.pk) in html
    assert url("customer-delete", customer.pk) not in html
    assert url("customer-personal-data", customer.pk) not in html
    html = client_for(manager).get(url("customer-detail", customer.pk)).content.decode()
    assert url("customer-delete", customer.pk) in html
    assert url("customer-personal-data", customer.pk) in html


def test_detail_htmx_response_varies(client_for, rep, customer):
    response = client_for(rep).get(url("customer-detail", customer.pk))
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize("tab", ["timeline", "followups"])
def test_detail_query_count_constant(client_for, manager, customer, tab):
    """Query count on the customer page is the same with 10 and 100 follow-ups (and contacts)."""
    client = client_for(manager)
    path = url("customer-detail", customer.pk)

    def fill(n):
        have = customer.follow_ups.count()
        for i in range(have, n):
            FollowUpFactory(customer=customer, author=manager, content=f"回访 {i}")
            svc.contact_create(actor=manager, customer=customer, name=f"联系人{i}", phones=[f"139{i:08d}"])

    fill(10)
    client.get(path, {"tab": tab})  # warm caches (regions, session)
    with CaptureQueriesContext(connection) as ten:
        assert client.get(path, {"tab": tab}).status_code == 200
    fill(100)
    with CaptureQueriesContext(connection) as hundred:
        assert client.get(path, {"tab": tab}).status_code == 200
    assert len(ten) == len(hundred)
    assert len(ten) <= 30


# Reveal -------------------------------------------------------------------------------------------


def test_reveal_manager_htmx_returns_value_and_audits(client_for, manager, customer):
    """R7.2.4: "show full number" returns the plain value in place and writes the ledger."""
    phone = customer.phones.get()
    response = client_for(manager).post(
        url("customer-reveal", customer.pk), {"field": f"phone:{phone.pk}"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert PHONE in response.content.decode()
    assert "<html" not in response.content.decode()
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert (
        AuditEntry.objects.filter(action=AuditAction.VIEW_SENSITIVE, object_id=str(customer.pk)).count() == 1
    )


def test_reveal_without_js_renders_page(client_for, manager, customer):
    response = client_for(manager).post(url("customer-reveal", customer.pk), {"field": "wechat"})
    assert response.status_code == 200
    assert "wx_zhangwei_88" in response.content.decode()


def test_reveal_rep_forbidden_and_not_audited(client_for, rep, customer):
    phone = customer.phones.get()
    response = client_for(rep).post(url("customer-reveal", customer.pk), {"field": f"phone:{phone.pk}"})
    assert response.status_code == 403
    assert PHONE not in response.content.decode()
    assert not AuditEntry.objects.filter(action=AuditAction.VIEW_SENSITIVE).exists()


def test_reveal_get_not_allowed_and_bad_field_404(client_for, manager, customer):
    client = client_for(manager)
    assert client.get(url("customer-reveal", customer.pk)).status_code == 405
    assert client.post(url("customer-reveal", customer.pk), {"field": "phone:999999"}).status_code == 404
    assert not AuditEntry.objects.filter(action=AuditAction.VIEW_SENSITIVE).exists()


def test_reveal_other_teams_customer_404(client_for, make_user, customer):
    outsider = make_user(roles.SALES_MANAGER, username="mgr2")
    assert (
        client_for(outsider).post(url("customer-reveal", customer.pk), {"field": "wechat"}).status_code == 404
    )


# Personal-data export -----------------------------------------------------------------------------


def test_personal_data_export_download(client_for, manager, customer):
    """R7.1.1 (PIPL): the manager downloads everything about the customer; the export is audited."""
    client = client_for(manager)
    assert client.get(url("customer-personal-data", customer.pk)).status_code == 200
    response = client.post(url("customer-personal-data", customer.pk))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    wb = load_workbook(io.BytesIO(response.content))
    flat = str([list(r) for ws in wb.worksheets for r in ws.iter_rows(values_only=True)])
    assert PHONE in flat
    assert EMAIL in flat
    assert "文三路 188 号" in flat
    assert AuditEntry.objects.filter(action=AuditAction.EXPORT, actor=manager).count() == 1


def test_personal_data_export_rep_forbidden(client_for, rep, customer):
    client = client_for(rep)
    assert client.get(url("customer-personal-data", customer.pk)).status_code == 403
    assert client.post(url("customer-personal-data", customer.pk)).status_code == 403
    assert not AuditEntry.objects.filter(action=AuditAction.EXPORT).exists()


def test_personal_data_export_out_of_scope_404(client_for, make_user, customer):
    outsider = make_user(roles.SALES_MANAGER, username="mgr2")
    assert client_for(outsider).post(url("customer-personal-data", customer.pk)).status_code == 404


# Follow-ups ---------------------------------------------------------------------------------------


def _local(dt):
    return timezone.localtime(dt).strftime("%Y-%m-%dT%H:%M")


def test_followup_create_page(client_for, rep, customer):
    """R5.1.1: add a follow-up through a plain form (no JS needed)."""
    client = client_for(rep)
    assert client.get(url("followup-create", customer.pk)).status_code == 200
    when = timezone.now() - datetime.timedelta(hours=2)
    response = client.post(
        url("followup-create", customer.pk),
        {
            "occurred_at": _local(when),
            "method": "wechat",
            "content": "微信沟通",
            "next_step": "",
            "next_date": "",
        },
    )
    assert response.status_code == 302
    assert response["Location"].endswith("?tab=followups")
    follow_up = FollowUp.objects.get()
    assert follow_up.author == rep
    assert follow_up.method == "wechat"


def test_followup_create_invalid_shows_errors(client_for, rep, customer):
    today = timezone.localdate()
    response = client_for(rep).post(
        url("followup-create", customer.pk),
        {
            "occurred_at": _local(timezone.now()),
            "method": "call",
            "content": "x",
            "next_step": "回访",
            "next_date": (today - datetime.timedelta(days=3)).isoformat(),
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["next_date"]
    assert not FollowUp.objects.exists()


def test_followup_edit_and_delete_by_author(client_for, rep, customer):
    follow_up = FollowUpFactory(customer=customer, author=rep)
    client = client_for(rep)
    assert client.get(url("followup-edit", customer.pk, follow_up.pk)).status_code == 200
    response = client.post(
        url("followup-edit", customer.pk, follow_up.pk),
        {"occurred_at": _local(follow_up.occurred_at), "method": "visit", "content": "改了"},
    )
    assert response.status_code == 302
    follow_up.refresh_from_db()
    assert follow_up.content == "改了"
    assert client.get(url("followup-delete", customer.pk, follow_up.pk)).status_code == 200
    assert client.post(url("followup-delete", customer.pk, follow_up.pk)).status_code == 302
    assert not FollowUp.objects.exists()


def test_followup_edit_by_non_author_rep_forbidden(client_for, rep, make_user, team, customer):
    colleague = make_user(roles.SALES_REP, username="rep3", team=team)
    follow_up = FollowUpFactory(customer=customer, author=colleague)
    client = client_for(rep)
    assert client.get(url("followup-edit", customer.pk, follow_up.pk)).status_code == 403
    assert client.post(url("followup-delete", customer.pk, follow_up.pk)).status_code == 403
    assert FollowUp.objects.filter(pk=follow_up.pk).exists()


def test_followup_edit_by_manager(client_for, manager, rep, customer):
    follow_up = FollowUpFactory(customer=customer, author=rep)
    response = client_for(manager).post(
        url("followup-edit", customer.pk, follow_up.pk),
        {"occurred_at": _local(follow_up.occurred_at), "method": "call", "content": "经理补充"},
    )
    assert response.status_code == 302


def test_another_customers_row_ids_404(client_for, rep, customer, others):
    """R7.1.1: a row of another customer, addressed through my customer's URL, answers 404."""
    client = client_for(rep)
    for name, key in (
        ("followup-edit", "followup"),
        ("followup-delete", "followup"),
        ("contact-edit", "contact"),
        ("contact-delete", "contact"),
        ("address-edit", "address"),
        ("address-delete", "address"),
        ("consent-withdraw", "consent"),
    ):
        assert client.get(url(name, customer.pk, others[key].pk)).status_code == 404, name
        assert client.post(url(name, customer.pk, others[key].pk)).status_code == 404, name
    assert FollowUp.objects.filter(pk=others["followup"].pk).exists()
    assert ContactPerson.objects.filter(pk=others["contact"].pk).exists()
    assert Address.objects.filter(pk=others["address"].pk).exists()
    assert MarketingConsent.objects.get(pk=others["consent"].pk).is_active


def test_another_reps_customer_404_on_every_url(client_for, rep, others):
    """R7.1.1: every URL of another rep's customer answers 404."""
    client = client_for(rep)
    other = others["customer"]
    plain = [
        "customer-detail",
        "followup-create",
        "feedback-create",
        "contact-create",
        "address-create",
        "consent-grant",
    ]
    for name in plain:
        assert client.get(url(name, other.pk)).status_code == 404, name
    for name, key in (
        ("followup-edit", "followup"),
        ("followup-delete", "followup"),
        ("contact-edit", "contact"),
        ("contact-delete", "contact"),
        ("address-edit", "address"),
        ("address-delete", "address"),
        ("consent-withdraw", "consent"),
    ):
        assert client.post(url(name, other.pk, others[key].pk)).status_code == 404, name
    assert client.post(url("customer-reveal", other.pk), {"field": "wechat"}).status_code == 404


ALL_URLS = [
    ("customer-detail", False),
    ("customer-personal-data", False),
    ("followup-create", False),
    ("feedback-create", False),
    ("contact-create", False),
    ("address-create", False),
    ("consent-grant", False),
    ("followup-edit", True),
    ("followup-delete", True),
    ("contact-edit", True),
    ("contact-delete", True),
    ("address-edit", True),
    ("address-delete", True),
    ("consent-withdraw", True),
]


@pytest.mark.parametrize(("name", "item"), ALL_URLS)
def test_every_url_redirects_anonymous(client, customer, name, item):
    args = (customer.pk, 1) if item else (customer.pk,)
    response = client.get(url(name, *args))
    assert response.status_code == 302
    assert "login" in response["Location"]


# Permissions per role for the forms ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (
            roles.ANALYST,
            {"followup-create": 403, "feedback-create": 403, "consent-grant": 403, "address-create": 403},
        ),
        (
            roles.SERVICE_AGENT,
            {"followup-create": 200, "feedback-create": 200, "consent-grant": 200, "address-create": 403},
        ),
        (
            roles.MARKETING,
            {"followup-create": 403, "feedback-create": 403, "consent-grant": 200, "address-create": 403},
        ),
        (
            roles.ADMINISTRATOR,
            {"followup-create": 200, "feedback-create": 200, "consent-grant": 200, "address-create": 200},
        ),
    ],
)
def test_form_pages_per_role(client_for, make_user, customer, role, expected):
    user = make_user(role, username=f"u_{role.replace(' ', '_')}")
    client = client_for(user)
    for name, status in expected.items():
        assert client.get(url(name, customer.pk)).status_code == status, name


# Feedback, contacts, addresses, consent pages -----------------------------------------------------


def test_feedback_create_page(client_for, rep, customer):
    client = client_for(rep)
    assert client.get(url("feedback-create", customer.pk)).status_code == 200
    response = client.post(
        url("feedback-create", customer.pk),
        {
            "kind": "complaint",
            "channel": "phone",
            "rating": "2",
            "content": "太慢",
            "received_at": _local(timezone.now()),
        },
    )
    assert response.status_code == 302
    assert Feedback.objects.get().rating == 2
    bad = client.post(
        url("feedback-create", customer.pk),
        {
            "kind": "praise",
            "channel": "phone",
            "rating": "9",
            "content": "x",
            "received_at": _local(timezone.now()),
        },
    )
    assert bad.status_code == 200
    assert Feedback.objects.count() == 1


def test_contact_pages(client_for, rep, customer):
    client = client_for(rep)
    assert client.get(url("contact-create", customer.pk)).status_code == 200
    response = client.post(
        url("contact-create", customer.pk),
        {"name": "李经理", "title": "采购", "phones": "13700002222\n021-12345678", "emails": "li@x.com"},
    )
    assert response.status_code == 302
    contact = ContactPerson.objects.get()
    assert contact.phones.count() == 2
    # Editing as a rep: the form never contains the numbers; leaving them empty keeps them.
    page = client.get(url("contact-edit", customer.pk, contact.pk)).content.decode()
    assert "13700002222" not in page
    assert "137****2222" in page
    response = client.post(
        url("contact-edit", customer.pk, contact.pk), {"name": "李总", "phones": "", "emails": ""}
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.name == "李总"
    assert contact.phones.count() == 2
    assert contact.emails.count() == 1
    bad = client.post(url("contact-create", customer.pk), {"name": "x", "phones": "123"})
    assert bad.status_code == 200
    assert bad.context["form"].errors["phones"]
    assert client.post(url("contact-delete", customer.pk, contact.pk)).status_code == 302
    assert not ContactPerson.objects.exists()


def test_address_pages(client_for, rep, customer):
    client = client_for(rep)
    assert client.get(url("address-create", customer.pk)).status_code == 200
    response = client.post(
        url("address-create", customer.pk),
        {
            "region_0": "310000",
            "region_1": "310100",
            "region_2": "310101",
            "street": "南京东路 1 号",
            "recipient": "张伟",
            "is_default_shipping": "on",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    new = Address.objects.filter(customer=customer).order_by("-pk").first()
    assert new.is_default_shipping
    customer.refresh_from_db()
    assert customer.province_id == "310000"
    page = client.get(url("address-edit", customer.pk, new.pk)).content.decode()
    assert "南京东路 1 号" not in page
    response = client.post(
        url("address-edit", customer.pk, new.pk),
        {
            "region_0": "310000",
            "region_1": "310100",
            "region_2": "310101",
            "street": "",
            "postcode": "200001",
            "is_default_shipping": "on",
            "is_default_billing": "",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    new.refresh_from_db()
    assert new.street == "南京东路 1 号"  # kept
    assert new.postcode == "200001"
    assert client.post(url("address-delete", customer.pk, new.pk)).status_code == 302
    customer.refresh_from_db()
    assert customer.province_id == "330000"


def test_consent_pages(client_for, rep, customer):
    client = client_for(rep)
    assert client.get(url("consent-grant", customer.pk)).status_code == 200
    response = client.post(
        url("consent-grant", customer.pk),
        {"channel": "sms", "source": "门店登记", "granted_at": _local(timezone.now())},
    )
    assert response.status_code == 302
    consent = MarketingConsent.objects.get()
    assert client.get(url("consent-withdraw", customer.pk, consent.pk)).status_code == 200
    assert client.post(url("consent-withdraw", customer.pk, consent.pk)).status_code == 302
    consent.refresh_from_db()
    assert not consent.is_active
    # A second withdrawal is refused with a message, nothing changes.
    again = client.post(url("consent-withdraw", customer.pk, consent.pk), follow=True)
    assert again.status_code == 200
    assert len(list(again.context["messages"])) >= 1


def test_edit_forms_never_hold_full_values_even_for_managers(client_for, manager, customer):
    """R7.2.4: edit pages do not unmask (only the audited reveal does)."""
    contact = svc.contact_create(actor=manager, customer=customer, name="李经理", phones=["13700002222"])
    address = customer.addresses.get()
    client = client_for(manager)
    contact_page = client.get(url("contact-edit", customer.pk, contact.pk)).content.decode()
    address_page = client.get(url("address-edit", customer.pk, address.pk)).content.decode()
    assert "13700002222" not in contact_page
    assert "137****2222" in contact_page
    assert "文三路 188 号" not in address_page
    assert "13900001111" not in address_page


@pytest.mark.parametrize("role", [roles.ANALYST, roles.MARKETING, roles.SERVICE_AGENT])
def test_detail_hides_actions_the_role_may_not_use(client_for, make_user, team, customer, role):
    """R7.1.1: no Release / Edit / Delete button for users who would get 403 on it."""
    user = make_user(role, team=team)
    response = client_for(user).get(url("customer-detail", customer.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert not can_release(user, customer)
    assert url("customer-release", customer.pk) not in html
    assert url("customer-edit", customer.pk) not in html
    assert url("customer-delete", customer.pk) not in html
    assert client_for(user).get(url("customer-release", customer.pk)).status_code in (403, 404)


def test_release_button_follows_can_release(client_for, rep, manager, make_user, team, customer):
    """The owner and a pool manager see "Release to pool"; a service manager sees Edit only."""
    service_manager = make_user(roles.SERVICE_MANAGER, team=team)
    for user, shown in ((rep, True), (manager, True), (service_manager, False)):
        html = client_for(user).get(url("customer-detail", customer.pk)).content.decode()
        assert can_release(user, customer) is shown
        assert (url("customer-release", customer.pk) in html) is shown
    assert url("customer-edit", customer.pk) in html  # service manager: change_customer
    assert url("customer-delete", customer.pk) not in html
    assert client_for(service_manager).get(url("customer-release", customer.pk)).status_code == 403
