"""The orders area's demo step: a story told through the services, idempotent (R5.2.1, R6.1.5)."""

from io import StringIO

import pytest
from django.core.management import call_command

from crm.core.registry import registry
from sales.models import Invoice, Order, OrderStatus, PaymentPlanItem, Refund, StockLevel
from sales.services.orders_demo import seed_orders

pytestmark = pytest.mark.django_db

S = OrderStatus


@pytest.fixture
def demo(monkeypatch):
    steps = {
        key: step for key, step in registry.demo_steps.items() if key in ("customers", "inventory", "orders")
    }
    monkeypatch.setattr(registry, "demo_steps", steps)
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_demo_orders_tell_the_story_and_rerun_adds_nothing(demo):
    assert "orders: 14 orders" in demo
    statuses = set(Order.objects.values_list("status", flat=True))
    assert {S.COMPLETED, S.SHIPPED, S.PENDING_PAYMENT, S.CANCELLED, S.DRAFT} <= statuses
    assert PaymentPlanItem.objects.filter(overdue_notified_at__isnull=False).count() == 2
    assert Refund.objects.filter(status=Refund.Status.REFUNDED).count() == 2
    assert Invoice.objects.filter(status=Invoice.Status.ISSUED).count() == 2
    assert StockLevel.objects.filter(reserved__gt=0).exists()
    assert seed_orders(stdout=StringIO()) == 0
    assert Order.objects.count() == 14


def test_demo_orders_skip_without_users_or_products():
    out = StringIO()
    assert seed_orders(stdout=out) == 0
    assert "skipped" in out.getvalue()
