"""Bulk benchmark seeding of customers (customers.scale): counts, sensitive fields, tokens, cost (R8.2).

The 1,000,000-row run on MariaDB is measured by hand (docs/performance.md); these tests pin the
behaviour on a small volume and that the number of queries grows with batches, not with rows.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from crm.core.fields import sensitive_q
from customers import scale
from customers.models import (
    Customer,
    CustomerEmail,
    CustomerPhone,
    CustomerPool,
    CustomerSearchToken,
    PlatformAccount,
)
from customers.services import search

pytestmark = pytest.mark.django_db


@pytest.fixture
def sellers(make_user, team):
    return [
        make_user(roles.SALES_REP, username="rep-a", team=team),
        make_user(roles.SALES_REP, username="rep-b", team=team),
        make_user(roles.SALES_MANAGER, username="mgr-a", team=team),
    ]


def test_mobile_numbers_are_unique_and_well_formed():
    """R8.2: the generated mobiles never repeat (blind-index lookups find exactly one customer)."""
    numbers = [scale.mobile_for(n) for n in range(1, 200_001)]
    assert len(set(numbers)) == len(numbers)
    assert all(len(n) == 11 and n.isdigit() and n[0] == "1" for n in numbers[:1000])


def test_seeds_the_right_counts(sellers):
    """R5.1.1, R8.2: customers with one or two phones, some e-mails and accounts, owners and pools."""
    result = scale.seed_customers_at_scale(count=2000, batch=500, seed=7)

    assert result.customers == Customer.objects.count() == 2000
    assert result.batches == 4
    phones = CustomerPhone.objects.count()
    assert result.phones == phones
    assert 2000 < phones <= 4000
    assert CustomerPhone.objects.filter(is_primary=True).count() == 2000
    assert result.emails == CustomerEmail.objects.count() > 0
    assert result.platform_accounts == PlatformAccount.objects.count() > 0
    assert result.tokens == CustomerSearchToken.objects.count() > 2000 * 3
    owned = Customer.objects.filter(owner__isnull=False)
    assert set(owned.values_list("owner", flat=True)) == {u.pk for u in sellers}
    assert not owned.filter(team__isnull=True).exists()
    unowned = Customer.objects.filter(owner__isnull=True)
    assert 100 < unowned.count() < 600  # about 15%
    assert not unowned.filter(pool__isnull=True).exists()
    assert CustomerPool.objects.filter(name=scale.DEFAULT_POOL).exists()
    assert Customer.objects.filter(province__isnull=False, city__isnull=False).count() > 1500
    assert Customer.objects.values("level").distinct().count() == 4
    created = sorted(Customer.objects.values_list("created_at", flat=True))
    assert (created[-1] - created[0]).days > 2 * 365  # spread over three years, not "now"


def test_phones_are_encrypted_and_found_by_blind_index(sellers):
    """R7.1.1: seeded phones are ciphertext at rest; full number and last four digits find them."""
    scale.seed_customers_at_scale(count=300, batch=100, seed=1)
    phone = CustomerPhone.objects.filter(is_primary=True).order_by("pk").first()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT number FROM {CustomerPhone._meta.db_table} WHERE id = %s", [phone.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("v1$")
    assert phone.number not in stored
    found = CustomerPhone.objects.filter(sensitive_q(CustomerPhone, "number", phone.number))
    assert list(found.values_list("customer_id", flat=True)) == [phone.customer_id]
    last4 = CustomerPhone.objects.filter(sensitive_q(CustomerPhone, "number", phone.number[-4:]))
    assert phone.customer_id in set(last4.values_list("customer_id", flat=True))
    assert not CustomerPhone.objects.filter(sensitive_q(CustomerPhone, "number", "13000000000")).exists()
    wechat = Customer.objects.exclude(wechat_id_index="").first()
    assert wechat is not None
    assert Customer.objects.filter(sensitive_q(Customer, "wechat_id", wechat.wechat_id)).get() == wechat


def test_names_are_found_by_token(sellers):
    """R5.1.2: every seeded name is found by its fragments through the token table."""
    scale.seed_customers_at_scale(count=500, batch=200, seed=3)
    for customer in Customer.objects.order_by("pk")[:25]:
        stored = set(customer.search_tokens.values_list("token", flat=True))
        assert stored == search.name_tokens(customer.name)
        fragment = customer.name[:2]
        assert customer in search.filter_by_name(Customer.objects.all(), fragment)
    assert not search.filter_by_name(Customer.objects.all(), "龘龘").exists()


def test_queries_grow_with_batches_not_rows(sellers):
    """R8.2: no query per row. Four times the rows in the same number of batches costs no more queries."""
    scale.seed_customers_at_scale(count=10, batch=5, seed=2)  # pools and tags exist from here on
    with CaptureQueriesContext(connection) as small:
        scale.seed_customers_at_scale(count=40, batch=20, seed=4)
    with CaptureQueriesContext(connection) as large:
        scale.seed_customers_at_scale(count=160, batch=80, seed=5)
    # Same batches, four times the rows: at most a few more statements (SQLite allows 999
    # parameters per statement, so a large INSERT is cut in two), never one per row.
    assert len(small.captured_queries) <= len(large.captured_queries) <= len(small.captured_queries) + 4
    with CaptureQueriesContext(connection) as more_batches:
        scale.seed_customers_at_scale(count=160, batch=40, seed=6)
    assert len(more_batches.captured_queries) > len(large.captured_queries)
    assert len(more_batches.captured_queries) < 160  # far fewer than one per row


def test_no_audit_entry_per_seeded_row(sellers):
    """R7.1.2: benchmark rows are not business writes; the ledger gets no entry for them."""
    before = AuditEntry.objects.count()
    scale.seed_customers_at_scale(count=100, batch=50, seed=8)
    assert AuditEntry.objects.count() == before


def test_without_sellers_every_customer_is_in_a_pool(db):
    """R5.1.3: with nobody to own them, seeded customers all wait in the pool (公海)."""
    result = scale.seed_customers_at_scale(count=50, batch=50, owners=[], seed=9)
    assert result.customers == 50
    assert not Customer.objects.filter(owner__isnull=False).exists()
    assert not Customer.objects.filter(pool__isnull=True).exists()


def test_second_run_adds_without_collisions(sellers):
    """R8.2: running the seeder again adds customers; phones and platform accounts stay unique."""
    scale.seed_customers_at_scale(count=200, batch=100)
    scale.seed_customers_at_scale(count=200, batch=100)
    assert Customer.objects.count() == 400
    indexes = list(CustomerPhone.objects.filter(is_primary=True).values_list("number_index", flat=True))
    assert len(set(indexes)) == len(indexes) == 400


def test_nothing_to_do_for_zero():
    """R8.2: a count of zero writes nothing."""
    result = scale.seed_customers_at_scale(count=0)
    assert result.customers == 0
    assert not Customer.objects.exists()


def test_command(sellers):
    """R8.2: manage.py seed_customers_scale --count N runs the seeder and reports the rate."""
    out = StringIO()
    call_command("seed_customers_scale", count=120, batch=50, stdout=out)
    assert Customer.objects.count() == 120
    assert "120 customers" in out.getvalue()


def test_command_rejects_bad_count():
    """R8.2: a count below one is refused."""
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("seed_customers_scale", count=0, stdout=StringIO())
