"""Services of the customer page: follow-ups, feedback, contacts, addresses, consent, reveal,
personal-data export (R5.1.1, R7.1.1, R7.2.4)."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation
from openpyxl import load_workbook

from crm.accounts import roles
from crm.core.audit.models import AuditAction, AuditEntry
from customers.models import Address, ContactPerson, CustomerEmail, CustomerPhone, FollowUp, MarketingConsent
from customers.services import activities as svc

from .factories import AddressFactory, CustomerFactory, FollowUpFactory, region

pytestmark = pytest.mark.django_db

HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def other_rep(make_user, team):
    return make_user(roles.SALES_REP, username="rep2", team=team)


@pytest.fixture
def customer(rep):
    return CustomerFactory(owner=rep, name="张伟", phones=[{"number": "13812345678", "is_primary": True}])


@pytest.fixture
def company(rep):
    return CustomerFactory(owner=rep, name="杭州云帆贸易有限公司", kind="company")


def entries(action=None, **filters):
    qs = AuditEntry.objects.all()
    if action:
        qs = qs.filter(action=action)
    return qs.filter(**filters)


# Follow-ups -------------------------------------------------------------------------------------


def test_followup_create_sets_author_and_last_follow_up(rep, customer):
    """R5.1.1: a follow-up records when/how/what/next step; the customer's last follow-up moves."""
    when = timezone.now() - 2 * HOUR
    follow_up = svc.followup_create(
        actor=rep,
        customer=customer,
        content="电话沟通新品",
        method="call",
        occurred_at=when,
        next_step="发送报价",
        next_date=timezone.localdate() + datetime.timedelta(days=3),
    )
    customer.refresh_from_db()
    assert follow_up.author == rep
    assert customer.last_follow_up_at == when
    assert entries(AuditAction.CREATE, object_type="customers.followup", object_id=str(follow_up.pk)).exists()


def test_followup_in_the_future_rejected_but_next_date_may_be(rep, customer):
    """R5.1.1: a follow-up is a contact that happened; only its next step date lies ahead."""
    with pytest.raises(ValidationError) as exc:
        svc.followup_create(
            actor=rep, customer=customer, content="x", occurred_at=timezone.now() + datetime.timedelta(days=1)
        )
    assert "occurred_at" in exc.value.message_dict
    assert not FollowUp.objects.exists()
    # A clock a minute fast is not refused.
    svc.followup_create(
        actor=rep, customer=customer, content="x", occurred_at=timezone.now() + datetime.timedelta(minutes=1)
    )


def test_followup_next_date_before_occurred_rejected(rep, customer):
    """R5.1.1: the next step cannot come before the follow-up."""
    with pytest.raises(ValidationError) as exc:
        svc.followup_create(
            actor=rep,
            customer=customer,
            content="x",
            occurred_at=timezone.now() - HOUR,
            next_step="回访",
            next_date=timezone.localdate() - datetime.timedelta(days=2),
        )
    assert "next_date" in exc.value.message_dict
    customer.refresh_from_db()
    assert customer.last_follow_up_at is None


def test_followup_empty_content_and_bad_method_rejected(rep, customer):
    with pytest.raises(ValidationError) as exc:
        svc.followup_create(actor=rep, customer=customer, content="  ", method="fax")
    assert {"content", "method"} <= set(exc.value.message_dict)


def test_followup_contact_of_another_customer_rejected(rep, customer, company):
    contact = svc.contact_create(actor=rep, customer=company, name="李经理")
    with pytest.raises(ValidationError) as exc:
        svc.followup_create(actor=rep, customer=customer, content="x", contact=contact)
    assert "contact" in exc.value.message_dict


def test_followup_create_out_of_scope_denied(other_rep, customer):
    """R7.1.1: a rep cannot write on another rep's customer."""
    with pytest.raises(PermissionDenied):
        svc.followup_create(actor=other_rep, customer=customer, content="x")
    assert not FollowUp.objects.exists()


def test_followup_update_by_author_and_manager_not_by_other(rep, other_rep, manager, customer):
    """Only the author or a manager in scope may change or delete a follow-up."""
    follow_up = svc.followup_create(actor=rep, customer=customer, content="原文")
    svc.followup_update(actor=rep, follow_up=follow_up, content="改过")
    svc.followup_update(actor=manager, follow_up=follow_up, content="经理改过")
    follow_up.refresh_from_db()
    assert follow_up.content == "经理改过"
    assert follow_up.author == rep  # the author stays
    # Another rep (who does not even see the customer) is refused.
    with pytest.raises(PermissionDenied):
        svc.followup_update(actor=other_rep, follow_up=follow_up, content="hack")
    update = entries(AuditAction.UPDATE, object_type="customers.followup").first()
    assert update.changes["content"] == ["改过", "经理改过"]


def test_followup_update_author_but_not_manager_when_both_rep(rep, make_user, team, customer):
    """The owner who is not the author (and no manager) may not delete; an author who lost the
    customer may not edit."""
    colleague = make_user(roles.SALES_REP, username="rep3", team=team)
    follow_up = FollowUpFactory(customer=customer, author=colleague)
    # The colleague is the author but no longer sees the customer: refused by scope.
    with pytest.raises(PermissionDenied):
        svc.followup_update(actor=colleague, follow_up=follow_up, content="x")
    # The owner sees it but is neither author nor manager.
    with pytest.raises(PermissionDenied):
        svc.followup_delete(actor=rep, follow_up=follow_up)
    assert FollowUp.objects.filter(pk=follow_up.pk).exists()


def test_followup_update_validates(rep, customer):
    follow_up = svc.followup_create(
        actor=rep, customer=customer, content="x", occurred_at=timezone.now() - HOUR
    )
    with pytest.raises(ValidationError):
        svc.followup_update(
            actor=rep,
            follow_up=follow_up,
            next_step="a",
            next_date=timezone.localdate() - datetime.timedelta(days=5),
        )
    with pytest.raises(TypeError):
        svc.followup_update(actor=rep, follow_up=follow_up, author=rep)


def test_followup_delete_recomputes_last_follow_up(rep, customer):
    older = svc.followup_create(
        actor=rep, customer=customer, content="a", occurred_at=timezone.now() - 5 * HOUR
    )
    newer = svc.followup_create(actor=rep, customer=customer, content="b", occurred_at=timezone.now() - HOUR)
    customer.refresh_from_db()
    assert customer.last_follow_up_at == newer.occurred_at
    newer_pk = newer.pk
    svc.followup_delete(actor=rep, follow_up=newer)
    customer.refresh_from_db()
    assert customer.last_follow_up_at == older.occurred_at
    assert entries(AuditAction.DELETE, object_type="customers.followup", object_id=str(newer_pk)).exists()
    svc.followup_delete(actor=rep, follow_up=older)
    customer.refresh_from_db()
    assert customer.last_follow_up_at is None


# Feedback ---------------------------------------------------------------------------------------


def test_feedback_create(rep, customer):
    """R5.1.1: praise, suggestion, complaint with channel and rating."""
    feedback = svc.feedback_create(
        actor=rep, customer=customer, kind="complaint", content="发货太慢", channel="wechat", rating=2
    )
    assert feedback.recorded_by == rep
    assert entries(AuditAction.CREATE, object_type="customers.feedback").exists()


@pytest.mark.parametrize("rating", [0, 6, -1])
def test_feedback_rating_out_of_range_rejected(rep, customer, rating):
    with pytest.raises(ValidationError) as exc:
        svc.feedback_create(actor=rep, customer=customer, kind="praise", content="好", rating=rating)
    assert "rating" in exc.value.message_dict
    assert not customer.feedback.exists()


def test_feedback_bad_kind_and_empty_content_rejected(rep, customer):
    with pytest.raises(ValidationError) as exc:
        svc.feedback_create(actor=rep, customer=customer, kind="rant", content="")
    assert {"kind", "content"} <= set(exc.value.message_dict)


def test_feedback_out_of_scope_denied(other_rep, customer):
    with pytest.raises(PermissionDenied):
        svc.feedback_create(actor=other_rep, customer=customer, kind="praise", content="好")


# Contact persons --------------------------------------------------------------------------------


def test_contact_crud_with_phones_and_emails(rep, company):
    """R5.1.1: company contact persons with their own phones and e-mails (encrypted rows)."""
    contact = svc.contact_create(
        actor=rep,
        customer=company,
        name="李经理",
        title="采购",
        phones=["13900001111", {"number": "021-12345678", "label": "work"}],
        emails=["li@example.com"],
    )
    assert contact.is_primary  # the first contact
    assert CustomerPhone.objects.filter(contact=contact, customer=company).count() == 2
    assert CustomerEmail.objects.get(contact=contact).address == "li@example.com"
    svc.contact_update(actor=rep, contact=contact, title="采购总监", phones=["13900002222"])
    assert [p.number for p in contact.phones.all()] == ["13900002222"]
    assert contact.emails.count() == 1  # emails=None keeps them
    update = entries(AuditAction.UPDATE, object_type="customers.contactperson").first()
    assert update.changes["phones"] == "changed"
    assert "13900002222" not in str(update.changes)
    svc.contact_delete(actor=rep, contact=contact)
    assert not ContactPerson.objects.exists()
    assert not CustomerPhone.objects.filter(contact__isnull=False).exists()


def test_contact_for_person_customer_rejected(rep, customer):
    with pytest.raises(ValidationError):
        svc.contact_create(actor=rep, customer=customer, name="王五")
    assert not ContactPerson.objects.exists()


def test_contact_invalid_phone_and_email_rejected(rep, company):
    with pytest.raises(ValidationError) as exc:
        svc.contact_create(actor=rep, customer=company, name="李", phones=["12345"], emails=["not-an-email"])
    assert {"phones", "emails"} <= set(exc.value.message_dict)
    assert not ContactPerson.objects.exists()


def test_contact_single_primary(rep, company):
    first = svc.contact_create(actor=rep, customer=company, name="甲")
    second = svc.contact_create(actor=rep, customer=company, name="乙", is_primary=True)
    first.refresh_from_db()
    assert second.is_primary
    assert not first.is_primary


def test_contact_out_of_scope_denied(other_rep, company):
    with pytest.raises(PermissionDenied):
        svc.contact_create(actor=other_rep, customer=company, name="甲")


# Addresses --------------------------------------------------------------------------------------


def test_first_address_is_default_and_sets_region(rep, customer):
    """R5.1.1: addresses from the region list; the customer's province/city follow the default."""
    address = svc.address_create(
        actor=rep, customer=customer, region="330106", street="文三路 1 号", postcode="310000"
    )
    assert address.is_default_shipping
    assert address.is_default_billing
    customer.refresh_from_db()
    assert (customer.province_id, customer.city_id) == ("330000", "330100")


def test_new_default_clears_old_one(rep, customer):
    """Exactly one default shipping/billing address per customer."""
    first = svc.address_create(actor=rep, customer=customer, region="330106", street="文三路 1 号")
    second = svc.address_create(
        actor=rep, customer=customer, region="310101", street="南京东路 2 号", is_default_shipping=True
    )
    first.refresh_from_db()
    assert second.is_default_shipping
    assert not first.is_default_shipping
    assert first.is_default_billing
    assert not second.is_default_billing
    customer.refresh_from_db()
    assert customer.province_id == "310000"
    assert Address.objects.filter(customer=customer, is_default_shipping=True).count() == 1


def test_unsetting_the_default_rejected(rep, customer):
    address = svc.address_create(actor=rep, customer=customer, region="330106", street="文三路 1 号")
    with pytest.raises(ValidationError) as exc:
        svc.address_update(actor=rep, address=address, is_default_shipping=False)
    assert "is_default_shipping" in exc.value.message_dict


def test_deleting_the_default_passes_it_on(rep, customer):
    first = svc.address_create(actor=rep, customer=customer, region="330106", street="文三路 1 号")
    second = svc.address_create(actor=rep, customer=customer, region="310101", street="南京东路 2 号")
    svc.address_delete(actor=rep, address=first)
    second.refresh_from_db()
    assert second.is_default_shipping
    assert second.is_default_billing
    customer.refresh_from_db()
    assert customer.province_id == "310000"
    svc.address_delete(actor=rep, address=second)
    customer.refresh_from_db()
    assert customer.province_id is None


def test_address_update_moves_region_and_audits_street_as_changed(rep, customer):
    address = svc.address_create(actor=rep, customer=customer, region="330106", street="文三路 1 号")
    svc.address_update(actor=rep, address=address, region="310101", street="南京东路 9 号")
    customer.refresh_from_db()
    assert customer.city_id == "310100"
    update = entries(AuditAction.UPDATE, object_type="customers.address").first()
    assert update.changes["street"] == "changed"
    assert "南京东路" not in str(update.changes)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"region": "999999", "street": "x"}, "region"),
        ({"region": "330000", "street": "x"}, "region"),  # a province is not a complete address
        ({"region": "330106", "street": ""}, "street"),
        ({"region": "330106", "street": "x", "postcode": "31"}, "postcode"),
        ({"region": "330106", "street": "x", "phone": "12"}, "phone"),
        ({"region": "330106", "street": "x" * 301}, "street"),
    ],
)
def test_address_bad_input_rejected(rep, customer, kwargs, field):
    with pytest.raises(ValidationError) as exc:
        svc.address_create(actor=rep, customer=customer, **kwargs)
    assert field in exc.value.message_dict
    assert not Address.objects.exists()


def test_address_out_of_scope_denied(other_rep, customer):
    address = AddressFactory(customer=customer, region=region())
    with pytest.raises(PermissionDenied):
        svc.address_delete(actor=other_rep, address=address)
    assert Address.objects.filter(pk=address.pk).exists()


# Consent ------------------------------------------------------------------------------------------


def test_consent_grant_and_withdraw(rep, customer):
    """R5.1.1 (PIPL): consent per channel with time and source; withdrawal kept on record."""
    consent = svc.consent_grant(actor=rep, customer=customer, channel="sms", source="天猫店铺会员注册")
    assert consent.is_active
    assert consent.recorded_by == rep
    svc.consent_withdraw(actor=rep, consent=consent)
    consent.refresh_from_db()
    assert consent.withdrawn_at is not None
    assert consent.withdrawn_by == rep
    assert entries(AuditAction.UPDATE, object_type="customers.marketingconsent").exists()
    # After withdrawal a new consent on the same channel may be recorded.
    svc.consent_grant(actor=rep, customer=customer, channel="sms", source="再次同意")
    assert MarketingConsent.objects.filter(customer=customer).count() == 2


def test_consent_withdraw_twice_rejected(rep, customer):
    consent = svc.consent_grant(actor=rep, customer=customer, channel="email", source="官网")
    svc.consent_withdraw(actor=rep, consent=consent)
    first = MarketingConsent.objects.get(pk=consent.pk).withdrawn_at
    with pytest.raises(ValidationError):
        svc.consent_withdraw(actor=rep, consent=MarketingConsent.objects.get(pk=consent.pk))
    assert MarketingConsent.objects.get(pk=consent.pk).withdrawn_at == first


def test_consent_bad_input_rejected(rep, customer):
    with pytest.raises(ValidationError) as exc:
        svc.consent_grant(actor=rep, customer=customer, channel="fax", source="")
    assert {"channel", "source"} <= set(exc.value.message_dict)
    with pytest.raises(ValidationError) as exc:
        svc.consent_grant(
            actor=rep,
            customer=customer,
            channel="sms",
            source="x",
            granted_at=timezone.now() + datetime.timedelta(days=1),
        )
    assert "granted_at" in exc.value.message_dict


def test_consent_twice_on_same_channel_rejected(rep, customer):
    svc.consent_grant(actor=rep, customer=customer, channel="sms", source="a")
    with pytest.raises(ValidationError):
        svc.consent_grant(actor=rep, customer=customer, channel="sms", source="b")


def test_consent_service_agent_may_grant_not_withdraw(make_user, customer):
    """Roles: service agents record consent; withdrawing needs the change permission."""
    agent = make_user(roles.SERVICE_AGENT, username="agent1")
    consent = svc.consent_grant(actor=agent, customer=customer, channel="wechat", source="客服会话")
    with pytest.raises(PermissionDenied):
        svc.consent_withdraw(actor=agent, consent=consent)


# Sensitive values -------------------------------------------------------------------------------


def test_reveal_without_permission_denied_and_not_audited(rep, customer):
    """R7.2.4: a rep cannot unmask; nothing is written to the ledger."""
    phone = customer.phones.get()
    before = entries(AuditAction.VIEW_SENSITIVE).count()
    with pytest.raises(PermissionDenied):
        svc.customer_reveal_sensitive(actor=rep, customer=customer, field=f"phone:{phone.pk}")
    assert entries(AuditAction.VIEW_SENSITIVE).count() == before


def test_reveal_with_permission_audited(manager, customer):
    """R7.1.1, R7.2.4: every unmasking is recorded in the audit ledger."""
    phone = customer.phones.get()
    value = svc.customer_reveal_sensitive(actor=manager, customer=customer, field=f"phone:{phone.pk}")
    assert value == "13812345678"
    entry = entries(
        AuditAction.VIEW_SENSITIVE, object_type="customers.customer", object_id=str(customer.pk)
    ).get()
    assert entry.actor == manager
    assert entry.changes == {"fields": [f"phone:{phone.pk}"]}
    assert "13812345678" not in str(entry.changes) + entry.message


def test_reveal_street_wechat_and_unknown_fields(manager, rep):
    customer = CustomerFactory(owner=rep, wechat_id="wx_zhang")
    address = svc.address_create(
        actor=manager, customer=customer, region="330106", street="文三路 1 号", phone="13900001111"
    )
    assert (
        svc.customer_reveal_sensitive(actor=manager, customer=customer, field=f"street:{address.pk}")
        == "文三路 1 号"
    )
    assert (
        svc.customer_reveal_sensitive(actor=manager, customer=customer, field=f"address_phone:{address.pk}")
        == "13900001111"
    )
    assert svc.customer_reveal_sensitive(actor=manager, customer=customer, field="wechat") == "wx_zhang"
    other = CustomerFactory(owner=rep, phones=[{"number": "13700000000"}])
    for field in ("nope", "phone:abc", f"phone:{other.phones.get().pk}", "street:999999"):
        with pytest.raises(ValidationError):
            svc.customer_reveal_sensitive(actor=manager, customer=customer, field=field)


def test_reveal_out_of_scope_denied(make_user, customer):
    """A manager of another team with the permission still cannot unmask outside their scope."""
    outsider = make_user(roles.SALES_MANAGER, username="mgr2")
    with pytest.raises(PermissionDenied):
        svc.customer_reveal_sensitive(actor=outsider, customer=customer, field="wechat")


# Personal-data export ---------------------------------------------------------------------------


def test_personal_data_export_holds_everything_in_full(manager, rep, company):
    """R7.1.1 (PIPL): everything held about one customer, in full, one sheet per record type; audited."""
    svc.contact_create(
        actor=rep, customer=company, name="李经理", phones=["13900001111"], emails=["li@example.com"]
    )
    svc.address_create(actor=rep, customer=company, region="330106", street="文三路 1 号")
    svc.followup_create(actor=rep, customer=company, content='=HYPERLINK("http://x")')
    svc.feedback_create(actor=rep, customer=company, kind="praise", content="很好", rating=5)
    svc.consent_grant(actor=rep, customer=company, channel="sms", source="官网")
    with translation.override("en"):
        filename, content = svc.customer_personal_data_export(actor=manager, customer=company)
    assert filename.startswith(f"customer-{company.pk}-personal-data-")
    assert filename.endswith(".xlsx")
    wb = load_workbook(io.BytesIO(content))
    assert len(wb.sheetnames) >= 10
    values = {title: [list(row) for row in wb[title].iter_rows(values_only=True)] for title in wb.sheetnames}
    flat = str(values)
    for expected in (
        "杭州云帆贸易有限公司",
        "13900001111",
        "li@example.com",
        "文三路 1 号",
        "很好",
        "官网",
        "李经理",
    ):
        assert expected in flat
    followups = values["Follow-ups"]
    assert followups[1][3] == '=HYPERLINK("http://x")'
    assert wb["Follow-ups"]["D2"].data_type == "s"  # text, never a formula
    entry = entries(AuditAction.EXPORT).get()
    assert entry.actor == manager
    assert entry.changes["filters"] == {"customer": str(company.pk)}


def test_personal_data_export_requires_sensitive_permission(rep, customer):
    before = entries(AuditAction.EXPORT).count()
    with pytest.raises(PermissionDenied):
        svc.customer_personal_data_export(actor=rep, customer=customer)
    assert entries(AuditAction.EXPORT).count() == before
