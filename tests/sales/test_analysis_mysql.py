"""The customer analysis on MariaDB/MySQL (R5.1.3): the index-hinted reads and the writer thread.

Run on MariaDB:
    DATABASE_URL=mysql://root@127.0.0.1:3306/crm_ci \\
        .venv/bin/pytest -m mysql tests/sales/test_analysis_mysql.py
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Customer, CustomerMetrics
from sales.models import AutoTagRule, OrderStatus
from sales.services import analysis
from sales.services.analysis_rules import auto_tag_rule_create
from tests.customers.factories import CustomerFactory, TagFactory

from .factories_analysis import order_row, orders_for

pytestmark = [pytest.mark.mysql, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_mysql():
    if connection.vendor != "mysql":
        pytest.skip("needs MySQL/MariaDB: set DATABASE_URL=mysql://...")


@pytest.fixture
def shop(rep):
    customers = []
    for i in range(30):
        customer = CustomerFactory(owner=rep, name=f"客户{i}")
        orders_for(customer, *[1 + 7 * k + i for k in range(1 + i % 4)], total=f"{100 + 37 * i}.50")
        customers.append(customer)
    order_row(customers[0], days_ago=2, status=OrderStatus.CANCELLED, total="99999")
    return customers


def test_threaded_writer_gives_the_same_results(shop, monkeypatch):
    analysis.analysis_run_full()
    expected = list(
        CustomerMetrics.objects.order_by("pk").values_list("pk", "segment", "monetary", "churn_risk")
    )
    CustomerMetrics.objects.all().delete()
    monkeypatch.setattr(analysis, "THREADED_WRITE_FROM", 1)
    run = analysis.analysis_run_full()
    assert run.customers == 30
    got = list(CustomerMetrics.objects.order_by("pk").values_list("pk", "segment", "monetary", "churn_risk"))
    assert got == expected
    assert Customer.objects.get(pk=shop[0].pk).last_order_at is not None


def test_full_run_reads_the_whole_table_and_windowed_rules_the_time_index(shop, manager):
    auto_tag_rule_create(
        actor=manager,
        name="近30天消费",
        metric=AutoTagRule.Metric.SPENT,
        min_amount=Decimal("100"),
        window_days=30,
        tag=TagFactory(name="近期"),
    )
    with CaptureQueriesContext(connection) as queries:
        analysis.analysis_run_full(actor=manager)
    sql = [q["sql"] for q in queries.captured_queries]
    assert any("USE INDEX ()" in s for s in sql)
    assert any("USE INDEX (`order_time`)" in s for s in sql)
    tagged = Customer.tags.through.objects.filter(tag__name="近期").count()
    assert 0 < tagged <= 30


def test_a_failing_write_stops_the_run_and_is_recorded(shop, monkeypatch):
    monkeypatch.setattr(analysis, "THREADED_WRITE_FROM", 1)

    def broken(self, rows):
        raise RuntimeError("write failed")

    monkeypatch.setattr(analysis._Upsert, "write", broken)
    with pytest.raises(RuntimeError, match="write failed"):
        analysis.analysis_run_full()
    assert analysis.AnalysisRun.objects.get().status == analysis.AnalysisRun.Status.FAILED


def test_a_batch_refresh_skips_customers_another_transaction_holds(shop):
    """An import writing a customer's next orders holds their row: the refresh skips it (and says
    so) instead of waiting while holding the others, which is how the two deadlocked."""
    import threading

    from django.db import connections, transaction

    held, free = shop[3], shop[4]
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        busy: list[int] = []
        result = analysis.refresh_customers([held.pk, free.pk], busy=busy)
    finally:
        release.set()
        holder.join()
    assert busy == [held.pk]
    assert set(result) == {free.pk}
    assert CustomerMetrics.objects.filter(pk=free.pk).exists()
    assert not CustomerMetrics.objects.filter(pk=held.pk).exists()
    assert analysis.refresh_customers([held.pk], busy=[])[held.pk] is not None  # free again
