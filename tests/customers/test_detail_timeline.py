"""The customer timeline renders audit entries in the viewer's language (R5.1.1, R5.6.1).

Ledger entries keep the English ``message`` they were written with (hash-chained); the timeline
builds each item from the entry's structured fields instead, so zh-hans shows Chinese and en
English. The zh-hans checks need the new strings in the zh_Hans catalog (a translator adds them).
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from crm.accounts import roles
from crm.core.audit.models import AuditAction, AuditEntry
from crm.core.audit.services import audit_record
from customers.models import Customer
from customers.selectors.audit_timeline import audit_timeline_items, entry_kind
from customers.selectors.detail import customer_timeline
from customers.services import activities as svc
from customers.services import merge as merge_svc
from customers.services import pools as pool_svc
from customers.services import records as record_svc

from .factories import CustomerFactory, PoolFactory, TagFactory

pytestmark = pytest.mark.django_db

ASCII_WORD = re.compile(r"[A-Za-z]{3,}")


@pytest.fixture
def people(make_user, team):
    """Users with Chinese display names, so any English word left in a zh-hans item is the template's."""
    rep = make_user(roles.SALES_REP, username="rep1", team=team, display_name="李销售")
    rep2 = make_user(roles.SALES_REP, username="rep2", team=team, display_name="赵销售")
    manager = make_user(roles.SALES_MANAGER, username="manager1", team=team, display_name="王经理")
    team.leader = manager
    team.save(update_fields=["leader"])
    admin = make_user(roles.ADMINISTRATOR, username="admin1", display_name="陈管理员")
    pool = PoolFactory(name="华东公海", team=team, members=[rep, rep2], daily_claim_cap=5, max_owned=50)
    return {"rep": rep, "rep2": rep2, "manager": manager, "admin": admin, "pool": pool}


def history(people, *, name: str = "张伟") -> Customer:
    """A customer with one ledger entry of each kind the customers services write."""
    rep, rep2, manager, admin, pool = (people[k] for k in ("rep", "rep2", "manager", "admin", "pool"))
    customer = CustomerFactory(owner=rep, name=name, phones=[{"number": "13812345678", "is_primary": True}])
    record_svc.customer_update(actor=rep, customer=customer, name=f"{name}明", stage="loyal")
    record_svc.customer_set_tags(actor=rep, customer=customer, add=[TagFactory(name="重要客户")])
    phone = customer.phones.get()
    svc.customer_reveal_sensitive(actor=manager, customer=customer, field=f"phone:{phone.pk}")
    svc.customer_personal_data_export(actor=manager, customer=customer)
    record_svc.customer_assign(actor=manager, customer=customer, owner=rep2, reason="客户在杭州")
    pool_svc.customer_release_to_pool(actor=rep2, customer=customer, pool=pool, reason="联系不上")
    pool_svc.pool_claim(actor=rep, customer=Customer.objects.get(pk=customer.pk))
    pool_svc.customer_release_to_pool(
        actor=rep, customer=Customer.objects.get(pk=customer.pk), pool=pool, reason="换人跟进"
    )
    pool_svc.pool_assign(actor=manager, customer=Customer.objects.get(pk=customer.pk), owner=rep2)
    record_svc.customer_delete(actor=admin, customer=customer, reason="误删")
    record_svc.customer_restore(actor=admin, customer=customer)
    other = CustomerFactory(owner=rep2, name=f"{name}（重复）")
    merge_svc.customers_merge(actor=manager, survivor=Customer.objects.get(pk=customer.pk), other=other)
    # What an import writes (customers.services.imports), and an entry with no structured data.
    audit_record(
        action=AuditAction.CREATE, actor=admin, obj=customer, changes={"name": [None, name]}, message="import"
    )
    audit_record(action=AuditAction.OTHER, actor=admin, obj=customer, message="Legacy note kept as written")
    return Customer.objects.get(pk=customer.pk)


def entries_of(customer) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(object_type="customers.customer", object_id=str(customer.pk)).order_by(
            "-seq"
        )
    )


EXPECTED_KINDS = {
    "create",
    "update",
    "tags",
    "reveal",
    "export",
    "assign",
    "release",
    "claim",
    "pool_assign",
    "delete",
    "restore",
    "merge",
    "import",
    "other",
}


def test_every_kind_of_entry_is_recognised(people):
    customer = history(people)
    kinds = [entry_kind(entry) for entry in entries_of(customer)]
    assert set(kinds) == EXPECTED_KINDS
    other = Customer.objects.get(merged_into=customer)
    assert entry_kind(entries_of(other)[0]) == "merged_into"


def test_look_alike_changes_are_told_apart_by_the_service_marker():
    """Claim, pool assignment and a plain assignment change the same fields."""
    changes = {"owner": [None, "7"], "pool": ["3", None], "team": ["1", "2"]}
    update = AuditAction.UPDATE
    assert entry_kind(AuditEntry(action=update, changes=changes, message="Claimed from pool A")) == "claim"
    assert entry_kind(AuditEntry(action=update, changes=changes, message="Assigned from pool A to b")) == (
        "pool_assign"
    )
    assert entry_kind(AuditEntry(action=update, changes=changes, message="assign")) == "assign"
    assert entry_kind(AuditEntry(action=update, changes=changes, message="")) == "assign"
    to_pool = {"owner": ["7", None], "pool": [None, "3"]}
    assert entry_kind(AuditEntry(action=update, changes=to_pool, message="")) == "update"
    assert entry_kind(AuditEntry(action=update, changes={"deleted_at": ["x", None]})) == "restore"
    assert entry_kind(AuditEntry(action=update, changes={})) == "other"
    assert entry_kind(AuditEntry(action=AuditAction.DELETE, changes={"deleted_at": [None, "x"]})) == "delete"


def _items(customer, language: str):
    with translation.override(language):
        return [(str(i.title), i.body, i.icon, i.url) for i in audit_timeline_items(customer, 50)]


def test_timeline_in_english_reads_from_structured_fields(people):
    customer = history(people)
    text = "\n".join(f"{title} | {body}" for title, body, _icon, _url in _items(customer, "en"))
    for expected in (
        "李销售 created the customer",
        "李销售 changed the customer | Changed: name, lifecycle stage",
        "李销售 changed the tags | Tags added: 重要客户",
        "王经理 viewed in full: ",
        "王经理 exported the customer's personal data",
        "王经理 assigned the customer to 赵销售 | Reason: 客户在杭州",
        "赵销售 released the customer to pool 华东公海 | Reason: 联系不上",
        "李销售 claimed the customer from pool 华东公海",
        "李销售 released the customer to pool 华东公海 | Reason: 换人跟进",
        "王经理 assigned the customer from pool 华东公海 to 赵销售",
        "陈管理员 deleted the customer | Reason: 误删",
        "陈管理员 restored the customer",
        "王经理 merged customer #",
        "陈管理员 imported the customer from a file",
    ):
        assert expected in text, expected
    # Messages are never shown for entries that carry structured data...
    assert "Claimed from pool" not in text
    assert "Released to pool" not in text
    assert "merged from #" not in text
    # ...only for the one that carries none.
    assert "Legacy note kept as written" in text


def test_timeline_in_chinese_has_no_english_left(people):
    customer = history(people)
    english = _items(customer, "en")
    chinese = _items(customer, "zh-hans")
    assert len(chinese) == len(english) == len(EXPECTED_KINDS) + 1  # two releases
    for (zh_title, zh_body, _icon, _url), (en_title, _en_body, _i, _u) in zip(chinese, english, strict=True):
        if "Legacy note" in zh_body:
            assert zh_body == "Legacy note kept as written"  # no structured data: the stored text
            continue
        assert zh_title != en_title
        assert not ASCII_WORD.search(zh_title), zh_title
        assert not ASCII_WORD.search(zh_body), zh_body
    titles = "\n".join(title for title, *_ in chinese)
    assert "华东公海" in titles  # names come from the ids in the changes
    assert "赵销售" in titles


def test_stored_messages_are_unchanged(people):
    customer = history(people)
    before = {e.seq: (e.message, e.entry_hash) for e in entries_of(customer)}
    _items(customer, "zh-hans")
    after = {e.seq: (e.message, e.entry_hash) for e in entries_of(customer)}
    assert before == after
    messages = {m for m, _h in before.values()}
    assert "Claimed from pool 华东公海" in messages
    assert f"Assigned from pool 华东公海 to {people['rep2']}" in messages


def test_merged_customer_points_to_the_survivor(people):
    customer = history(people)
    other = Customer._base_manager.get(merged_into=customer)
    with translation.override("en"):
        item = audit_timeline_items(other, 50)[0]
    assert str(item.title).endswith(f"merged this customer into customer #{customer.pk}")
    assert item.url == reverse("customers:customer-detail", args=[customer.pk])


def test_removed_pool_and_user_do_not_break_the_timeline(people):
    customer = history(people)
    pool = people["pool"]
    pool.events.all().delete()
    Customer._base_manager.filter(pool=pool).update(pool=None)
    pool.delete()
    with translation.override("en"):
        titles = [str(i.title) for i in audit_timeline_items(customer, 50)]
    assert "李销售 claimed the customer from pool a removed pool" in titles


def test_values_are_never_shown(people):
    customer = history(people)
    text = " ".join(f"{t} {b}" for t, b, *_ in _items(customer, "en"))
    assert "13812345678" not in text
    assert "loyal" not in text.lower()  # the stage's name is shown ("lifecycle stage"), never its value
    assert "Changed: name, lifecycle stage" in text


def test_query_count_does_not_grow_with_entries(people, django_assert_num_queries):
    small = history(people, name="张伟")
    large = history(people, name="王芳")
    for i in range(5):  # ten more entries on the larger history
        owner = people["rep"] if i % 2 else people["rep2"]
        record_svc.customer_assign(actor=people["manager"], customer=large, owner=owner)
        record_svc.customer_set_tags(actor=people["rep"], customer=large, add=[TagFactory(name=f"标签{i}")])
    assert len(entries_of(large)) == len(entries_of(small)) + 10
    viewer = people["manager"]
    customer_timeline(customer=small, user=viewer)  # permissions cached on the user
    with CaptureQueriesContext(connection) as few:
        customer_timeline(customer=small, user=viewer)
    with CaptureQueriesContext(connection) as many:
        customer_timeline(customer=large, user=viewer)
    assert len(few) == len(many)
    # The ledger's part: the entries (with their actors), then the pools and users they name.
    with django_assert_num_queries(3):
        audit_timeline_items(large, 50)


@pytest.mark.parametrize(
    ("language", "expected", "absent"),
    [
        ("en", "claimed the customer from pool 华东公海", "Claimed from pool"),
        ("zh-hans", "华东公海", "claimed the customer"),
    ],
)
def test_timeline_tab_in_the_users_language(client_for, people, language, expected, absent):
    customer = history(people)
    viewer = people["manager"]
    viewer.language = language
    viewer.save(update_fields=["language"])
    response = client_for(viewer).get(
        reverse("customers:customer-detail", args=[customer.pk]), {"tab": "timeline"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert expected in html
    assert absent not in html
