"""Customer record services: create, update, soft delete, restore, assign, tags (R5.1.1, R5.1.2,
R7.1.1 sensitive data never in the ledger, R7.2.4 audit of every write)."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from crm.accounts import roles
from crm.core.audit.models import AuditAction, AuditEntry
from crm.core.audit.services import CHANGED
from crm.core.fields import sensitive_q
from customers.models import Address, Customer, CustomerPhone, CustomerSearchToken, PlatformAccount, Tag
from customers.services import records, search
from tests.customers.factories import CustomerFactory, PoolFactory, TagFactory, level

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


PHONE = "13812345678"
STREET = "文三路 90 号 3 幢 501 室"


def full_kwargs(**overrides):
    values = {
        "name": "张伟明",
        "kind": "person",
        "gender": "male",
        "birthday": datetime.date(1990, 5, 17),
        "stage": "active",
        "source": "tmall",
        "notes": "老客户",
        "wechat_id": "wx_zhangwm",
        "phones": [{"number": PHONE, "label": "mobile", "is_primary": True}, {"number": "021-12345678"}],
        "emails": [{"address": "zwm@example.com", "is_primary": True}],
        "platform_accounts": [{"platform": "tmall", "account_id": "tb_zwm", "nickname": "小明"}],
        "addresses": [{"recipient": "张伟明", "phone": PHONE, "region": "330106", "street": STREET}],
    }
    values.update(overrides)
    return values


def entries(customer, action=None):
    qs = AuditEntry.objects.filter(object_type="customers.customer", object_id=str(customer.pk))
    return qs.filter(action=action) if action else qs


def errors_of(exc_info) -> dict:
    return exc_info.value.message_dict


# Create ---------------------------------------------------------------------------------------------


def test_create_writes_everything_and_audits_without_plaintext(rep):
    """R5.1.1 / R7.1.1 / R7.2.4: all parts stored, tokens built, region set, ledger has no plaintext."""
    customer = records.customer_create(actor=rep, **full_kwargs())
    assert customer.owner == rep
    assert customer.team == rep.team
    assert customer.owned_since is not None
    assert customer.created_by == rep
    assert customer.level == level("regular")  # the default level
    assert customer.province_id == "330000"
    assert customer.city_id == "330100"
    assert customer.phones.count() == 2
    assert customer.phones.get(is_primary=True).number == PHONE
    assert (
        CustomerPhone.objects.filter(sensitive_q(CustomerPhone, "number", PHONE)).get().customer == customer
    )
    assert customer.emails.get().is_primary
    assert customer.platform_accounts.get().account_id == "tb_zwm"
    assert customer.addresses.get().is_default_shipping  # the only address becomes the default
    assert set(search.filter_by_name(Customer.objects.all(), "伟明")) == {customer}
    entry = entries(customer, AuditAction.CREATE).get()
    assert entry.actor == rep
    assert entry.changes["name"] == [None, "张伟明"]
    assert entry.changes["wechat_id"] == CHANGED
    assert entry.changes["phones"] == CHANGED
    assert entry.changes["addresses"] == CHANGED
    text = str(entry.changes)
    for secret in (PHONE, "zwm@example.com", "wx_zhangwm", "文三路"):
        assert secret not in text


def test_create_minimal_and_international_and_landline_phones(rep):
    customer = records.customer_create(
        actor=rep, name="Emma Zhou", phones=[{"number": "+447911123456"}, {"number": "0571-88886666"}]
    )
    assert customer.phones.count() == 2
    assert customer.phones.filter(is_primary=True).count() == 1
    assert customer.province is None


def test_create_tags_by_name_object_and_id(manager):
    vip = TagFactory(name="VIP")
    other = TagFactory(name="复购")
    customer = records.customer_create(actor=manager, name="王芳", tags=[vip, str(other.pk), "新标签"])
    assert set(customer.tags.values_list("name", flat=True)) == {"VIP", "复购", "新标签"}


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"name": "  "}, "name", "name"),
        ({"name": "张" * 201}, "name", "200"),
        ({"birthday": timezone.localdate() + datetime.timedelta(days=1)}, "birthday", "impossible"),
        ({"birthday": datetime.date(1899, 12, 31)}, "birthday", "impossible"),
        ({"birthday": "1990-13-45"}, "birthday", "date"),
        ({"gender": "robot"}, "gender", "valid"),
        ({"stage": "nope"}, "stage", "valid"),
        ({"level": "platinum"}, "level", "level"),
        ({"notes": "x" * 5001}, "notes", "5000"),
        ({"wechat_id": "w" * 65}, "wechat_id", "64"),
        ({"phones": [{"number": "12345"}]}, "phones", "Phone 1"),
        ({"phones": [{"number": "1381234567"}]}, "phones", "valid phone"),
        ({"phones": [{"number": PHONE}, {"number": "138 1234 5678"}]}, "phones", "twice"),
        (
            {
                "phones": [
                    {"number": PHONE, "is_primary": True},
                    {"number": "13900000000", "is_primary": True},
                ]
            },
            "phones",
            "primary",
        ),
        ({"phones": [{"number": PHONE, "label": "fax"}]}, "phones", "valid option"),
        ({"emails": [{"address": "not-an-email"}]}, "emails", "valid e-mail"),
        ({"emails": [{"address": "a" * 250 + "@x.com"}]}, "emails", "254"),
        (
            {
                "emails": [
                    {"address": "a@x.com", "is_primary": True},
                    {"address": "b@x.com", "is_primary": True},
                ]
            },
            "emails",
            "primary",
        ),
        ({"platform_accounts": [{"platform": "ebay", "account_id": "x"}]}, "platform_accounts", "platform"),
        ({"platform_accounts": [{"platform": "jd", "account_id": ""}]}, "platform_accounts", "account ID"),
        ({"platform_accounts": [{"platform": "jd", "account_id": "x" * 129}]}, "platform_accounts", "128"),
        (
            {
                "platform_accounts": [
                    {"platform": "jd", "account_id": "a"},
                    {"platform": "jd", "account_id": "a"},
                ]
            },
            "platform_accounts",
            "twice",
        ),
        ({"addresses": [{"region": "999999", "street": STREET}]}, "addresses", "Unknown region"),
        ({"addresses": [{"region": "abc", "street": STREET}]}, "addresses", "Unknown region"),
        ({"addresses": [{"region": "330000", "street": STREET}]}, "addresses", "complete region"),
        ({"addresses": [{"region": "330106", "street": ""}]}, "addresses", "street"),
        ({"addresses": [{"region": "330106", "street": "路" * 301}]}, "addresses", "300"),
        (
            {"addresses": [{"region": "330106", "street": STREET, "postcode": "31000"}]},
            "addresses",
            "six digits",
        ),
        ({"addresses": [{"region": "330106", "street": STREET, "phone": "12"}]}, "addresses", "valid phone"),
        (
            {
                "addresses": [
                    {"region": "330106", "street": STREET, "is_default_shipping": True},
                    {"region": "330106", "street": STREET, "is_default_shipping": True},
                ]
            },
            "addresses",
            "default shipping",
        ),
        ({"phones": [{"number": f"1380000{i:04d}"} for i in range(51)]}, "phones", "50"),
        ({"tags": ["不存在的标签"]}, "tags", "Unknown tag"),
    ],
)
def test_create_rejects_bad_input_and_writes_nothing(rep, overrides, field, fragment):
    """R5.1.1 bad input: each error is keyed by field, translated, and nothing is stored."""
    before = AuditEntry.objects.count()
    with pytest.raises(ValidationError) as exc_info:
        records.customer_create(actor=rep, **full_kwargs(**overrides))
    messages = errors_of(exc_info)
    assert field in messages, messages
    assert any(fragment.lower() in m.lower() for m in messages[field]), messages[field]
    assert not Customer.objects.exists()
    assert not PlatformAccount.objects.exists()
    assert AuditEntry.objects.count() == before


def test_several_errors_reported_together(rep):
    with pytest.raises(ValidationError) as exc_info:
        records.customer_create(actor=rep, name="", phones=[{"number": "1"}], emails=[{"address": "x"}])
    assert {"name", "phones", "emails"} <= set(errors_of(exc_info))


def test_platform_account_taken_by_another_customer_names_the_platform(rep):
    """R5.1.1: duplicate platform accounts get a clear message naming the platform."""
    CustomerFactory(owner=rep, platform_accounts=[{"platform": "jd", "account_id": "jd_buyer"}])
    with pytest.raises(ValidationError) as exc_info:
        records.customer_create(
            actor=rep, name="李四", platform_accounts=[{"platform": "jd", "account_id": "jd_buyer"}]
        )
    assert "JD account already belongs to another customer" in errors_of(exc_info)["platform_accounts"][0]
    # The same ID on another platform is a different account.
    records.customer_create(
        actor=rep, name="李四", platform_accounts=[{"platform": "tmall", "account_id": "jd_buyer"}]
    )


def test_integrity_error_is_mapped_and_rolls_back_the_customer(rep, monkeypatch):
    """The database constraint is the last line of defence: a race that passes the check still
    gives the translated message, and the customer written before it is rolled back (atomic)."""
    CustomerFactory(owner=rep, platform_accounts=[{"platform": "douyin", "account_id": "dy_1"}])
    count = Customer.objects.count()
    original = records._clean_accounts

    def no_check(errors, items, *, customer):
        return (
            original(errors, items, customer=None)
            if False
            else [
                {"id": None, "platform": i["platform"], "account_id": i["account_id"], "nickname": ""}
                for i in items
            ]
        )

    monkeypatch.setattr(records, "_clean_accounts", no_check)
    with pytest.raises(ValidationError) as exc_info:
        records.customer_create(
            actor=rep, **full_kwargs(platform_accounts=[{"platform": "douyin", "account_id": "dy_1"}])
        )
    assert "Douyin account already belongs to another customer" in errors_of(exc_info)["platform_accounts"][0]
    assert Customer.objects.count() == count
    assert not Customer.objects.filter(name="张伟明").exists()


def test_failure_after_the_customer_row_rolls_everything_back(rep, monkeypatch):
    """Atomicity: a failure while writing addresses leaves no customer, phone or audit entry."""
    audit_count = AuditEntry.objects.count()

    def broken(customer):
        raise ValidationError({"addresses": ["boom"]})

    monkeypatch.setattr(records, "refresh_region", broken)
    with pytest.raises(ValidationError):
        records.customer_create(actor=rep, **full_kwargs())
    assert not Customer.objects.exists()
    assert not CustomerPhone.objects.exists()
    assert not Address.objects.exists()
    assert AuditEntry.objects.count() == audit_count


def test_rep_cannot_create_for_someone_else(rep, make_user):
    other = make_user(roles.SALES_REP)
    with pytest.raises(ValidationError) as exc_info:
        records.customer_create(actor=rep, name="王五", owner=other)
    assert "owner" in errors_of(exc_info)


def test_pool_customer_has_no_owner(admin_user):
    pool = PoolFactory(name="全国公海")
    customer = records.customer_create(actor=admin_user, name="池中客户", pool=pool)
    assert customer.owner is None
    assert customer.owned_since is None
    assert customer.pool == pool
    with pytest.raises(ValidationError) as exc_info:
        records.customer_create(actor=admin_user, name="x", pool=pool, owner=admin_user)
    assert "pool" in errors_of(exc_info)


# Update ---------------------------------------------------------------------------------------------


def test_update_records_changed_fields_only(rep):
    """R7.2.4: the update entry lists the changed fields; sensitive ones only as "changed"."""
    customer = records.customer_create(actor=rep, **full_kwargs())
    records.customer_update(
        actor=rep,
        customer=customer,
        name="张伟",
        stage="loyal",
        wechat_id="wx_new",
        phones=[{"number": "13900001111"}],
    )
    entry = entries(customer, AuditAction.UPDATE).get()
    assert entry.changes == {
        "name": ["张伟明", "张伟"],
        "stage": ["active", "loyal"],
        "wechat_id": CHANGED,
        "phones": CHANGED,
    }
    customer.refresh_from_db()
    assert [p.number for p in customer.phones.all()] == ["13900001111"]
    assert set(search.filter_by_name(Customer.objects.all(), "伟明")) == set()
    assert set(search.filter_by_name(Customer.objects.all(), "张伟")) == {customer}
    assert "13900001111" not in str(entry.changes)


def test_update_without_changes_writes_no_entry(rep):
    customer = records.customer_create(actor=rep, **full_kwargs())
    records.customer_update(actor=rep, customer=customer, name="张伟明", stage="active")
    assert not entries(customer, AuditAction.UPDATE).exists()


def test_update_keeps_rows_by_id_and_replaces_the_set(rep):
    customer = records.customer_create(actor=rep, **full_kwargs())
    address = customer.addresses.get()
    account = customer.platform_accounts.get()
    records.customer_update(
        actor=rep,
        customer=customer,
        addresses=[
            {"id": address.pk, "region": "310101", "street": "南京东路 1 号", "is_default_shipping": False},
            {"region": "440305", "street": "科技园 8 号", "is_default_shipping": True},
        ],
        platform_accounts=[
            {"id": account.pk, "platform": "tmall", "account_id": "tb_zwm", "nickname": "新昵称"}
        ],
    )
    customer.refresh_from_db()
    assert customer.addresses.count() == 2
    assert customer.addresses.filter(pk=address.pk, region_id="310101").exists()
    assert customer.province_id == "440000"  # follows the new default shipping address
    assert customer.platform_accounts.get().pk == account.pk
    assert customer.platform_accounts.get().nickname == "新昵称"
    records.customer_update(actor=rep, customer=customer, addresses=[], platform_accounts=[])
    customer.refresh_from_db()
    assert not customer.addresses.exists()
    assert customer.province is None


def test_update_bad_input_changes_nothing(rep):
    customer = records.customer_create(actor=rep, **full_kwargs())
    with pytest.raises(ValidationError):
        records.customer_update(
            actor=rep, customer=customer, name="新名字", addresses=[{"region": "000000", "street": "x"}]
        )
    customer.refresh_from_db()
    assert customer.name == "张伟明"
    assert customer.addresses.count() == 1


def test_update_owner_rules(rep, manager, make_user, team):
    customer = CustomerFactory(owner=rep)
    stranger = make_user(roles.SALES_REP)
    with pytest.raises(ValidationError) as exc_info:
        records.customer_update(actor=rep, customer=customer, owner=stranger)
    assert "owner" in errors_of(exc_info)
    colleague = make_user(roles.SALES_REP, team=team)
    records.customer_update(actor=manager, customer=customer, owner=colleague)
    customer.refresh_from_db()
    assert customer.owner == colleague
    assert customer.team == team


def test_update_refuses_deleted_and_unknown_fields(rep, manager):
    customer = CustomerFactory(owner=rep)
    with pytest.raises(TypeError):
        records.customer_update(actor=rep, customer=customer, deleted_at=None)
    records.customer_delete(actor=manager, customer=customer)
    with pytest.raises(ValidationError):
        records.customer_update(actor=rep, customer=customer, name="x")


# Delete, restore, assign, tags ------------------------------------------------------------------


def test_soft_delete_and_restore(rep, manager, admin_user):
    """R5.1.2: deleting is soft; administrators restore; both are audited."""
    customer = CustomerFactory(owner=rep)
    records.customer_delete(actor=manager, customer=customer)
    customer.refresh_from_db()
    assert customer.is_deleted
    assert customer.deleted_by == manager
    assert not Customer.objects.alive().filter(pk=customer.pk).exists()
    assert entries(customer, AuditAction.DELETE).get().actor == manager
    with pytest.raises(ValidationError):
        records.customer_delete(actor=manager, customer=customer)
    with pytest.raises(ValidationError):
        records.customer_restore(actor=manager, customer=customer)  # managers may not restore
    records.customer_restore(actor=admin_user, customer=customer)
    customer.refresh_from_db()
    assert not customer.is_deleted
    assert customer.deleted_by is None
    assert entries(customer, AuditAction.UPDATE).get().changes["deleted_at"][1] is None
    with pytest.raises(ValidationError):
        records.customer_restore(actor=admin_user, customer=customer)


def test_assign(rep, manager, admin_user, make_user, team):
    customer = CustomerFactory(owner=rep)
    colleague = make_user(roles.SALES_REP, team=team)
    elsewhere = make_user(roles.SALES_REP)
    with pytest.raises(ValidationError):
        records.customer_assign(actor=rep, customer=customer, owner=colleague)  # no permission
    with pytest.raises(ValidationError) as exc_info:
        records.customer_assign(actor=manager, customer=customer, owner=elsewhere)  # outside the team
    assert "owner" in errors_of(exc_info)
    records.customer_assign(actor=manager, customer=customer, owner=colleague, reason="休假交接")
    customer.refresh_from_db()
    assert customer.owner == colleague
    assert customer.owned_since is not None
    entry = entries(customer, AuditAction.UPDATE).get()
    assert entry.changes["owner"] == [str(rep.pk), str(colleague.pk)]
    assert entry.message == "休假交接"
    records.customer_assign(actor=admin_user, customer=customer, owner=elsewhere)
    customer.refresh_from_db()
    assert customer.owner == elsewhere
    assert customer.team is None


def test_assign_takes_a_customer_out_of_its_pool(admin_user, rep):
    pool = PoolFactory(name="华东公海")
    customer = records.customer_create(actor=admin_user, name="池中客户", pool=pool)
    records.customer_assign(actor=admin_user, customer=customer, owner=rep)
    customer.refresh_from_db()
    assert customer.pool is None
    assert customer.owner == rep
    assert customer.owned_since is not None


def test_set_tags(rep):
    customer = CustomerFactory(owner=rep)
    vip, big = TagFactory(name="VIP"), TagFactory(name="大客户")
    records.customer_set_tags(actor=rep, customer=customer, add=[vip, big])
    assert set(customer.tags.values_list("name", flat=True)) == {"VIP", "大客户"}
    records.customer_set_tags(actor=rep, customer=customer, remove=["VIP", "不存在"])
    assert list(customer.tags.values_list("name", flat=True)) == ["大客户"]
    changes = [e.changes["tags"] for e in entries(customer, AuditAction.UPDATE).order_by("seq")]
    assert changes == [[[], ["VIP", "大客户"]], [["VIP", "大客户"], ["大客户"]]]
    records.customer_set_tags(actor=rep, customer=customer, add=[big])  # no change, no entry
    assert entries(customer, AuditAction.UPDATE).count() == 2
    with pytest.raises(ValidationError):
        records.customer_set_tags(actor=rep, customer=customer, add=["全新标签"])  # reps cannot create tags
    assert not Tag.objects.filter(name="全新标签").exists()


def test_refresh_region_prefers_default_shipping(rep):
    customer = records.customer_create(
        actor=rep,
        name="地址客户",
        addresses=[
            {"region": "110105", "street": "建国路 1 号"},
            {"region": "440106", "street": "天河路 2 号", "is_default_shipping": True},
        ],
    )
    assert (customer.province_id, customer.city_id) == ("440000", "440100")
    Address.objects.filter(customer=customer).delete()
    records.refresh_region(customer)
    customer.refresh_from_db()
    assert customer.province is None


def test_assignable_users(rep, manager, admin_user, make_user, team):
    colleague = make_user(roles.SALES_REP, team=team)
    elsewhere = make_user(roles.SALES_REP)
    assert list(records.assignable_users(rep)) == [rep]
    assert {colleague, rep, manager} <= set(records.assignable_users(manager))
    assert elsewhere not in set(records.assignable_users(manager))
    assert elsewhere in set(records.assignable_users(admin_user))
    assert not CustomerSearchToken.objects.exists()
