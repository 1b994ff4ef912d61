"""Merging duplicate customers: preview, service and screens (R5.1.1, R7.1.1, R7.1.2)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from crm.accounts import roles
from crm.core.audit.models import AuditAction, AuditEntry
from customers.models import (
    Address,
    ContactPerson,
    Customer,
    CustomerMetrics,
    CustomerPhone,
    CustomerSearchToken,
    Feedback,
    FollowUp,
    MarketingConsent,
    Platform,
    PlatformAccount,
    PoolEvent,
)
from customers.services import merge
from customers.services.merge import customer_relations, customers_merge, merge_preview

from .factories import CustomerFactory, FeedbackFactory, FollowUpFactory, PoolFactory, TagFactory

SURVIVOR_PHONE = "13811110000"
SHARED_PHONE = "13822220000"


@pytest.fixture
def other_team_rep(make_user):
    from tests.factories import TeamFactory

    return make_user(roles.SALES_REP, username="rep_north", team=TeamFactory(name="华北组"))


@pytest.fixture
def pair(rep, manager):
    """A survivor and a duplicate of it with one row of every related model."""
    vip, new = TagFactory(name="VIP"), TagFactory(name="新客")
    survivor = CustomerFactory(
        name="张伟",
        owner=rep,
        gender="male",
        phones=[{"number": SURVIVOR_PHONE}, {"number": SHARED_PHONE}],
        emails=[{"address": "zhang@example.com"}],
        addresses=[{"region": "330106", "street": "文三路1号", "is_default_shipping": True}],
        tags=[vip],
    )
    other = CustomerFactory(
        name="张伟(淘宝)",
        owner=rep,
        gender="female",
        birthday=datetime.date(1990, 5, 1),
        wechat_id="zw_wx",
        phones=[{"number": "+86 138 2222 0000"}, {"number": "13833330000"}],
        emails=[{"address": "ZHANG@example.com"}, {"address": "zw@example.com"}],
        platform_accounts=[{"platform": Platform.TMALL, "account_id": "tb_zw"}],
        addresses=[{"region": "330106", "street": "文三路2号", "is_default_shipping": True}],
        tags=[vip, new],
    )
    contact = ContactPerson.objects.create(customer=other, name="小王", is_primary=True)
    CustomerPhone.objects.create(customer=other, contact=contact, number="13844440000")
    FollowUpFactory(customer=other, author=rep)
    FeedbackFactory(customer=other, recorded_by=rep)
    MarketingConsent.objects.create(customer=other, channel=MarketingConsent.Channel.SMS, source="店铺")
    PoolEvent.objects.create(customer=other, action=PoolEvent.Action.CLAIM, user=rep)
    earlier = CustomerFactory(name="张伟旧", owner=rep)
    Customer.objects.filter(pk=earlier.pk).update(merged_into=other, deleted_at=timezone.now())
    later = timezone.now()
    Customer.objects.filter(pk=other.pk).update(last_follow_up_at=later)
    other.refresh_from_db()
    return survivor, other, earlier


# Preview -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_preview_counts_and_fields(manager, pair):
    """R5.1.1: the preview says what moves and which fields the survivor takes."""
    survivor, other, _earlier = pair
    before = AuditEntry.objects.count()
    plan = merge_preview(actor=manager, survivor=survivor, other=other)
    # Relations of later apps (orders, quotes, ...) and empty ones count zero here.
    assert {key: count for key, count in plan.counts.items() if count} == {
        "merged_from": 1,
        "contacts": 1,
        "phones": 2,  # 13833330000 and the contact's number; the shared one stays behind
        "emails": 1,
        "platform_accounts": 1,
        "addresses": 1,
        "follow_ups": 1,
        "feedback": 1,
        "consents": 1,
        "pool_events": 1,
        "tags": 1,
    }
    assert plan.duplicates == {"phones": 1, "emails": 1}
    assert [t.name for t in plan.new_tags] == ["新客"]
    assert set(plan.taken_fields) == {"birthday", "wechat_id", "last_follow_up_at"}
    gender = next(f for f in plan.fields if f.name == "gender")
    assert gender.take is False
    wechat = next(f for f in plan.fields if f.name == "wechat_id")
    assert wechat.other_value == "zw_wx"  # a manager may see it in full
    # Nothing changed.
    assert AuditEntry.objects.count() == before
    assert CustomerPhone.objects.filter(customer=other).count() == 3
    other.refresh_from_db()
    assert other.deleted_at is None


@pytest.mark.django_db
def test_preview_masks_sensitive_values_without_permission(make_user, rep, admin_user):
    """R7.2.4: the preview shows WeChat IDs masked to users who may not see them in full."""
    from django.contrib.auth.models import Permission

    lead = make_user(roles.SALES_REP, username="rep_merger", team=rep.team)
    lead.user_permissions.add(Permission.objects.get(codename="merge_customer"))
    lead = type(lead).objects.get(pk=lead.pk)
    a = CustomerFactory(name="甲", owner=lead)
    b = CustomerFactory(name="乙", owner=lead, wechat_id="secretwx")
    wechat = next(f for f in merge_preview(actor=lead, survivor=a, other=b).fields if f.name == "wechat_id")
    assert wechat.other_value == "s******"


# Merge ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_merge_moves_every_relation(manager, pair):
    """R5.1.1: every related record ends up on the survivor; the other keeps only duplicates."""
    survivor, other, earlier = pair
    result = customers_merge(actor=manager, survivor=survivor, other=other)
    assert result == survivor
    for relation in customer_relations():
        left = relation.rows_of(other)
        if relation.key == "phones":
            assert [p.number for p in left] == ["+86 138 2222 0000"]
        elif relation.key == "emails":
            assert [e.address for e in left] == ["ZHANG@example.com"]
        else:
            assert not left.exists(), relation.key
    assert sorted(p.number for p in survivor.phones.filter(contact__isnull=True)) == [
        "13811110000",
        "13822220000",
        "13833330000",
    ]
    assert survivor.phones.filter(contact__isnull=False).get().number == "13844440000"
    assert survivor.phones.filter(contact__isnull=True, is_primary=True).count() == 1
    assert sorted(e.address for e in survivor.emails.all()) == ["zhang@example.com", "zw@example.com"]
    assert survivor.emails.filter(is_primary=True).count() == 1
    assert PlatformAccount.objects.get(account_id="tb_zw").customer == survivor
    assert survivor.addresses.count() == 2
    assert survivor.addresses.filter(is_default_shipping=True).get().street == "文三路1号"
    assert ContactPerson.objects.get(name="小王").customer == survivor
    assert FollowUp.objects.get().customer == survivor
    assert Feedback.objects.get().customer == survivor
    assert MarketingConsent.objects.get().customer == survivor
    assert PoolEvent.objects.get().customer == survivor
    earlier.refresh_from_db()
    assert earlier.merged_into == survivor
    assert sorted(survivor.tags.values_list("name", flat=True)) == ["VIP", "新客"]


@pytest.mark.django_db
def test_merge_fills_empty_fields_and_keeps_the_rest(manager, pair):
    survivor, other, _earlier = pair
    customers_merge(actor=manager, survivor=survivor, other=other)
    survivor.refresh_from_db()
    assert survivor.name == "张伟"
    assert survivor.gender == "male"
    assert survivor.birthday == datetime.date(1990, 5, 1)
    assert survivor.wechat_id == "zw_wx"
    assert survivor.last_follow_up_at == other.last_follow_up_at
    # The blind index came with the value: the WeChat ID now finds the survivor.
    from crm.core.fields import sensitive_q

    assert list(Customer.objects.alive().filter(sensitive_q(Customer, "wechat_id", "zw_wx"))) == [survivor]


@pytest.mark.django_db
def test_merge_marks_other_deleted_and_merged_into(manager, pair):
    survivor, other, _earlier = pair
    customers_merge(actor=manager, survivor=survivor, other=other)
    other.refresh_from_db()
    assert other.is_deleted
    assert other.merged_into == survivor
    assert other.deleted_by == manager
    assert not Customer.objects.alive().filter(pk=other.pk).exists()


@pytest.mark.django_db
def test_merge_rebuilds_survivor_tokens(manager, pair):
    survivor, other, _earlier = pair
    CustomerSearchToken.objects.filter(customer=survivor).delete()
    customers_merge(actor=manager, survivor=survivor, other=other)
    assert set(CustomerSearchToken.objects.filter(customer=survivor).values_list("token", flat=True)) == {
        "张",
        "伟",
        "张伟",
    }


@pytest.mark.django_db
def test_merge_writes_audit_entries_on_both(manager, pair):
    """R7.1.2: both customers keep an audit trail of the merge."""
    survivor, other, _earlier = pair
    customers_merge(actor=manager, survivor=survivor, other=other)
    on_survivor = AuditEntry.objects.filter(object_type="customers.customer", object_id=str(survivor.pk))
    update = on_survivor.order_by("-seq").first()
    assert update.action == AuditAction.UPDATE
    assert update.message == f"merged from #{other.pk}"
    assert update.actor == manager
    assert update.changes["merged_from"] == str(other.pk)
    assert update.changes["wechat_id"] == "changed"  # sensitive: never the value
    assert "birthday" in update.changes
    assert update.changes["tags"] == {"added": ["新客"]}
    assert update.changes["moved"]["follow_ups"] == "1"
    on_other = AuditEntry.objects.filter(object_type="customers.customer", object_id=str(other.pk))
    delete = on_other.order_by("-seq").first()
    assert delete.action == AuditAction.DELETE
    assert delete.message == f"merged into #{survivor.pk}"
    assert delete.changes["merged_into"] == [None, str(survivor.pk)]
    assert on_other.filter(action=AuditAction.CREATE).exists()  # the earlier trail is still there


@pytest.mark.django_db
def test_merge_takes_owner_when_survivor_is_in_a_pool(admin_user, rep):
    pool = PoolFactory(name="公海A")
    pooled = CustomerFactory(name="池中", owner=None, actor=admin_user, pool=pool)
    owned = CustomerFactory(name="有主", owner=rep)
    customers_merge(actor=admin_user, survivor=pooled, other=owned)
    pooled.refresh_from_db()
    assert pooled.owner == rep
    assert pooled.team == rep.team
    assert pooled.pool is None


@pytest.mark.django_db
def test_merge_refuses_self(manager, pair):
    survivor, _other, _earlier = pair
    with pytest.raises(ValidationError):
        customers_merge(actor=manager, survivor=survivor, other=Customer.objects.get(pk=survivor.pk))
    with pytest.raises(ValidationError):
        merge_preview(actor=manager, survivor=survivor, other=survivor)


@pytest.mark.django_db
def test_merge_refuses_deleted(manager, pair):
    survivor, other, earlier = pair
    with pytest.raises(ValidationError):
        customers_merge(actor=manager, survivor=survivor, other=earlier)
    Customer.objects.filter(pk=survivor.pk).update(deleted_at=timezone.now())
    with pytest.raises(ValidationError):
        customers_merge(actor=manager, survivor=survivor, other=other)  # stale instance: re-read under lock


@pytest.mark.django_db
def test_merge_refuses_out_of_scope(manager, pair, other_team_rep):
    """R7.1.1: a manager cannot merge another team's customer."""
    survivor, _other, _earlier = pair
    foreign = CustomerFactory(name="外组", owner=other_team_rep)
    with pytest.raises(PermissionDenied):
        customers_merge(actor=manager, survivor=survivor, other=foreign)
    with pytest.raises(PermissionDenied):
        merge_preview(actor=manager, survivor=foreign, other=survivor)
    foreign.refresh_from_db()
    assert not foreign.is_deleted


@pytest.mark.django_db
@pytest.mark.parametrize("role", [roles.SALES_REP, roles.SERVICE_MANAGER, roles.ANALYST])
def test_merge_refuses_without_permission(make_user, rep, pair, role):
    survivor, other, _earlier = pair
    actor = rep if role == roles.SALES_REP else make_user(role)
    with pytest.raises(PermissionDenied):
        customers_merge(actor=actor, survivor=survivor, other=other)
    other.refresh_from_db()
    assert not other.is_deleted


@pytest.mark.django_db
def test_merge_is_atomic(manager, pair, monkeypatch):
    """R5.1.1: a failure half-way leaves both customers exactly as they were."""
    survivor, other, earlier = pair
    entries = AuditEntry.objects.count()

    def boom(customer):
        raise RuntimeError("disk full")

    monkeypatch.setattr(merge, "rebuild_tokens", boom)
    with pytest.raises(RuntimeError):
        customers_merge(actor=manager, survivor=survivor, other=other)
    other = Customer.objects.get(pk=other.pk)
    survivor = Customer.objects.get(pk=survivor.pk)
    assert other.deleted_at is None
    assert other.merged_into is None
    assert survivor.birthday is None
    assert survivor.wechat_id == ""
    assert CustomerPhone.objects.filter(customer=other).count() == 3
    assert FollowUp.objects.get().customer == other
    assert Address.objects.filter(customer=other, is_default_shipping=True).count() == 1
    assert list(survivor.tags.values_list("name", flat=True)) == ["VIP"]
    earlier.refresh_from_db()
    assert earlier.merged_into == other
    assert AuditEntry.objects.count() == entries


@pytest.mark.django_db
def test_relations_are_found_generically():
    """Later apps' foreign keys to Customer move too: the relation list comes from the model meta."""
    keys = {r.key for r in customer_relations()}
    assert {
        "phones",
        "emails",
        "platform_accounts",
        "addresses",
        "contacts",
        "follow_ups",
        "feedback",
    } <= keys
    assert {"consents", "pool_events", "merged_from"} <= keys
    assert "search_tokens" not in keys
    fk_models = {
        rel.related_model
        for rel in Customer._meta.get_fields(include_hidden=True)
        if rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one)
    }
    handled = {r.model for r in customer_relations()} | {CustomerSearchToken, CustomerMetrics}
    assert "metrics" not in keys  # recomputed from the orders, never moved
    assert {m for m in fk_models if not m._meta.auto_created} <= handled


# Views ---------------------------------------------------------------------------------------------


def merge_url(a, b):
    return reverse("customers:customer-merge", args=[a.pk, b.pk])


@pytest.mark.django_db
def test_merge_view_requires_login(client, pair):
    survivor, other, _earlier = pair
    response = client.get(merge_url(survivor, other))
    assert response.status_code == 302
    assert "/login" in response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"),
    [
        (roles.SALES_REP, 403),
        (roles.SERVICE_AGENT, 403),
        (roles.MARKETING, 403),
        (roles.ANALYST, 403),
        (roles.SERVICE_MANAGER, 403),
        (roles.ADMINISTRATOR, 200),
    ],
)
def test_merge_view_status_per_role(client_for, make_user, pair, role, status):
    survivor, other, _earlier = pair
    user = make_user(role)
    assert client_for(user).get(merge_url(survivor, other)).status_code == status
    assert client_for(user).post(merge_url(survivor, other)).status_code in (status, 302)
    other.refresh_from_db()
    assert other.is_deleted is (status == 200)


@pytest.mark.django_db
def test_merge_view_preview_page(client_for, manager, pair):
    survivor, other, _earlier = pair
    response = client_for(manager).get(merge_url(survivor, other))
    html = response.content.decode()
    assert response.status_code == 200
    assert "张伟(淘宝)" in html
    assert merge_url(other, survivor) in html  # swap button
    assert 'method="post"' in html
    other.refresh_from_db()
    assert not other.is_deleted


@pytest.mark.django_db
def test_merge_view_other_reps_customer_is_404(client_for, manager, pair, other_team_rep):
    """R7.1.1: a customer outside the manager's scope answers 404 on both sides of the URL."""
    survivor, _other, _earlier = pair
    foreign = CustomerFactory(name="外组", owner=other_team_rep)
    client = client_for(manager)
    assert client.get(merge_url(survivor, foreign)).status_code == 404
    assert client.get(merge_url(foreign, survivor)).status_code == 404
    assert client.post(merge_url(survivor, foreign)).status_code == 404
    assert client.get(reverse("customers:customer-merge", args=[survivor.pk, 999999])).status_code == 404
    foreign.refresh_from_db()
    assert not foreign.is_deleted


@pytest.mark.django_db
def test_merge_view_deleted_customer_is_404(client_for, manager, pair):
    survivor, _other, earlier = pair
    assert client_for(manager).get(merge_url(survivor, earlier)).status_code == 404


@pytest.mark.django_db
def test_merge_view_self_redirects_with_error(client_for, manager, pair):
    survivor, _other, _earlier = pair
    client = client_for(manager)
    response = client.get(merge_url(survivor, survivor))
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:duplicate-list")
    response = client.post(merge_url(survivor, survivor))
    assert response.status_code == 302
    assert not Customer.objects.get(pk=survivor.pk).is_deleted


@pytest.mark.django_db
def test_merge_view_rejects_put(client_for, manager, pair):
    survivor, other, _earlier = pair
    assert client_for(manager).put(merge_url(survivor, other)).status_code == 405


@pytest.mark.django_db
def test_merge_round_trip_through_the_views(client_for, manager, rep):
    """R5.1.1: the duplicates screen proposes the pair, the preview shows it, the merge is done."""
    a = CustomerFactory(name="陈静", owner=rep, phones=[{"number": "13700001234"}])
    b = CustomerFactory(name="陈静", owner=rep, phones=[{"number": "137 0000 1234"}], wechat_id="cj")
    client = client_for(manager)
    listing = client.get(reverse("customers:duplicate-list"), {"kind": "phone"}).content.decode()
    assert merge_url(a, b) in listing
    check = client.get(
        reverse("customers:duplicate-check"), {"phone": "13700001234"}, HTTP_ACCEPT="application/json"
    )
    assert {m["id"] for m in check.json()["matches"]} == {a.pk, b.pk}
    assert client.get(merge_url(a, b)).status_code == 200
    response = client.post(merge_url(a, b), follow=False)
    assert response.status_code == 302
    assert response["Location"] == a.get_absolute_url()
    b.refresh_from_db()
    assert b.merged_into == a
    followed = client.get(reverse("customers:duplicate-list"), {"kind": "phone"})
    assert merge_url(a, b) not in followed.content.decode()
    check = client.get(
        reverse("customers:duplicate-check"), {"phone": "13700001234"}, HTTP_ACCEPT="application/json"
    )
    assert [m["id"] for m in check.json()["matches"]] == [a.pk]
    from django.contrib.messages import get_messages

    assert any(f"#{b.pk}" in str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.django_db
def test_generic_many_to_many_rows_move_without_duplicates(manager, rep, monkeypatch):
    """Later apps' many-to-many memberships (e.g. campaign segments) move, deduplicated."""
    through = Customer.tags.through
    relation = merge._Relation(
        key="segments", label="Segments", model=through, fk_name="customer", other_fk_name="tag", kind="m2m"
    )
    monkeypatch.setattr(merge, "customer_relations", lambda: [relation])
    shared, extra = TagFactory(name="共同"), TagFactory(name="独有")
    survivor = CustomerFactory(name="甲", owner=rep)
    other = CustomerFactory(name="乙", owner=rep)
    through.objects.create(customer=survivor, tag=shared)
    through.objects.create(customer=other, tag=shared)
    through.objects.create(customer=other, tag=extra)
    plan = merge_preview(actor=manager, survivor=survivor, other=other)
    assert plan.counts["segments"] == 1
    assert plan.duplicates == {"segments": 1}
    customers_merge(actor=manager, survivor=survivor, other=other)
    assert sorted(through.objects.filter(customer=survivor).values_list("tag__name", flat=True)) == [
        "共同",
        "独有",
    ]
    assert list(through.objects.filter(customer=other).values_list("tag__name", flat=True)) == ["共同"]


@pytest.mark.django_db
def test_generic_one_to_one_moves_only_when_survivor_has_none(manager, rep, monkeypatch):
    relation = merge._Relation(
        key="profile", label="Profile", model=ContactPerson, fk_name="customer", kind="one"
    )
    monkeypatch.setattr(merge, "customer_relations", lambda: [relation])
    survivor, other, third = (CustomerFactory(name=n, owner=rep) for n in ("甲", "乙", "丙"))
    ContactPerson.objects.create(customer=other, name="乙的")
    customers_merge(actor=manager, survivor=survivor, other=other)
    assert ContactPerson.objects.get(name="乙的").customer == survivor
    ContactPerson.objects.create(customer=third, name="丙的")
    customers_merge(actor=manager, survivor=survivor, other=third)
    assert ContactPerson.objects.get(name="丙的").customer == third


@pytest.mark.django_db
def test_conflicting_rows_abort_with_a_validation_error(manager, rep, monkeypatch):
    """A unique constraint a later app declares on its customer rows aborts the whole merge cleanly."""
    relation = merge._Relation(
        key="tokens", label="Tokens", model=CustomerSearchToken, fk_name="customer", kind="fk"
    )
    monkeypatch.setattr(merge, "customer_relations", lambda: [relation])
    survivor = CustomerFactory(name="张三", owner=rep)
    other = CustomerFactory(name="张四", owner=rep)  # shares the token "张" (unique per customer)
    with pytest.raises(ValidationError):
        customers_merge(actor=manager, survivor=survivor, other=other)
    other.refresh_from_db()
    assert not other.is_deleted
    assert CustomerSearchToken.objects.filter(customer=other).exists()
