"""Bulk benchmark orders (sales.scale, ``manage.py seed_orders_scale``) and the demo step (R5.1.3, R8.2).

The 5,000,000-order run on MariaDB is measured by hand (docs/performance.md); these tests pin the
shape of the data on a small volume, that queries grow with batches and not rows, and that the
deferred indexes come back.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.core.audit.models import AuditEntry
from crm.core.bulk import DictInserter
from crm.core.fields import sensitive_q
from crm.core.regions.loader import ensure_loaded
from customers import scale as customer_scale
from customers.models import Customer, CustomerMetrics, Tag
from sales import scale
from sales.models import AnalysisRun, AutoTagRule, Order, OrderLine, OrderStatus, Product
from sales.services.analysis_demo import seed_analysis
from tests.customers.factories import level

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers(rep, manager):
    # A transactional test before may have flushed the levels and regions the migrations load.
    ensure_loaded()
    level("regular")
    customer_scale.seed_customers_at_scale(count=300, batch=100, seed=3, owners=[rep, manager])


def test_seeds_orders_with_lines_over_the_customers(customers):
    audit_before = AuditEntry.objects.count()
    result = scale.seed_orders_at_scale(count=2000, batch=500, seed=11)
    assert (result.orders, result.batches, result.products_created) == (2000, 4, scale.PRODUCT_COUNT)
    assert Order.objects.count() == 2000
    assert OrderLine.objects.count() == result.lines
    assert 2000 <= result.lines <= 6000
    assert 150 <= result.customers_with_orders <= 290  # about a fifth never order
    assert Order.objects.values("number").distinct().count() == 2000
    assert not Order.objects.exclude(number__startswith=scale.ORDER_NUMBER_PREFIX).exists()
    statuses = set(Order.objects.values_list("status", flat=True))
    assert {OrderStatus.COMPLETED, OrderStatus.CANCELLED} <= statuses
    assert AuditEntry.objects.count() == audit_before  # benchmark rows write no audit entries
    assert Product.objects.filter(sku__startswith=scale.SKU_PREFIX).count() == scale.PRODUCT_COUNT


def test_amounts_add_up_and_dates_follow_the_status(customers):
    scale.seed_orders_at_scale(count=500, batch=500, seed=5)
    now = timezone.now()
    for order in Order.objects.prefetch_related("lines")[:200]:
        lines = list(order.lines.all())
        assert order.goods_amount == sum(line.line_total for line in lines)
        assert order.total_amount == order.goods_amount + order.shipping_amount
        assert order.tax_amount == sum(line.tax_amount for line in lines)
        assert order.ordered_at <= now
        if order.status == OrderStatus.COMPLETED:
            assert order.paid_amount == order.total_amount
            assert order.ordered_at < order.paid_at <= order.shipped_at <= order.completed_at
        if order.status == OrderStatus.CANCELLED:
            assert order.paid_at is None
            assert order.cancelled_at is not None
        if order.status == OrderStatus.REFUNDED:
            assert order.refunded_amount == order.total_amount
        assert order.owner_id == order.customer.owner_id


def test_recipient_phone_is_encrypted_and_searchable(customers):
    scale.seed_orders_at_scale(count=200, batch=200, seed=5)
    order = Order.objects.first()
    raw = Order.objects.filter(pk=order.pk).values_list("recipient_phone", flat=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT recipient_phone FROM sales_order WHERE id = %s", [order.pk])
        stored = cursor.fetchone()[0]
    assert stored != order.recipient_phone
    assert order.recipient_phone == customer_scale.mobile_for(order.customer_id)
    assert raw.get() == order.recipient_phone
    assert Order.objects.filter(sensitive_q(Order, "recipient_phone", order.recipient_phone)).exists()


def test_queries_grow_with_batches_not_rows(customers):
    """No query per row: on SQLite a batch is cut into statements of 999 parameters (about 20
    orders or 70 lines each); on MySQL a batch of orders is one statement and its lines another."""
    scale.seed_orders_at_scale(count=100, batch=100, seed=1)  # products exist from here on

    def inserts(count):
        with CaptureQueriesContext(connection) as queries:
            scale.seed_orders_at_scale(count=count, batch=count, seed=count)
        return sum(q["sql"].startswith("INSERT") for q in queries.captured_queries), len(queries)

    small, small_total = inserts(1000)
    large, large_total = inserts(2000)
    orders_per_statement = connection.ops.bulk_batch_size(
        DictInserter(Order, with_pk=True).fields, [None] * 1000
    )
    assert small <= 2 * (1000 // orders_per_statement + 1)
    assert large <= 2 * small
    assert large_total - small_total == large - small  # nothing else grows with the rows


@pytest.mark.django_db(transaction=True)  # MySQL commits at DDL: the test cleans up by flushing
def test_deferred_indexes_are_dropped_and_rebuilt(customers):
    def index_names():
        with connection.cursor() as cursor:
            return set(connection.introspection.get_constraints(cursor, Order._meta.db_table))

    names = {name for name, _create, _drop in scale._deferred_index_sql()}
    assert len(names) == 2
    assert names <= index_names()
    assert set(scale.drop_deferred_indexes()) == names
    assert not names & index_names()
    # A run restores what an interrupted run left dropped, and defers them again when told to.
    scale.seed_orders_at_scale(count=50, batch=50, seed=1, defer_indexes=True)
    assert names <= index_names()
    assert scale.restore_deferred_indexes() == []


def test_seeding_is_deterministic_per_starting_point(customers):
    scale.seed_orders_at_scale(count=100, batch=100, seed=9)
    first = list(Order.objects.order_by("pk").values_list("customer_id", "total_amount", "status"))
    Order.objects.all().delete()
    scale.seed_orders_at_scale(count=100, batch=100, seed=9)
    second = list(Order.objects.order_by("pk").values_list("customer_id", "total_amount", "status"))
    assert first == second


def test_command_reports_and_rejects_bad_arguments(customers):
    out = StringIO()
    call_command("seed_orders_scale", "--count", "300", "--batch", "150", stdout=out)
    assert "300 orders" in out.getvalue()
    with pytest.raises(CommandError):
        call_command("seed_orders_scale", "--count", "0")
    with pytest.raises(CommandError):
        call_command("seed_orders_scale", "--count", "10", "--batch", "0")


def test_command_needs_customers():
    with pytest.raises(CommandError, match="seed_customers_scale"):
        call_command("seed_orders_scale", "--count", "10", stdout=StringIO())


def test_demo_step_adds_rules_runs_the_analysis_and_is_idempotent(customers):
    scale.seed_orders_at_scale(count=600, batch=600, seed=4)
    seed_analysis(scale=1, stdout=StringIO())
    assert AutoTagRule.objects.count() == 3
    assert Tag.objects.filter(name__in=["高消费", "流失风险", "重要价值"]).count() == 3
    assert CustomerMetrics.objects.exists()
    assert AnalysisRun.objects.filter(status=AnalysisRun.Status.SUCCEEDED).count() == 1
    links = Customer.tags.through.objects.filter(tag__name="重要价值")
    assert links.count() == CustomerMetrics.objects.filter(segment="important_value").count() > 0
    seed_analysis(scale=1, stdout=StringIO())
    assert AutoTagRule.objects.count() == 3
    assert Order.objects.count() == 600


def test_demo_step_with_scale_adds_orders(customers, monkeypatch):
    from sales.services import analysis_demo

    monkeypatch.setattr(analysis_demo, "ORDERS_PER_SCALE", 100)
    seed_analysis(scale=3, stdout=StringIO())
    assert Order.objects.count() == 200
