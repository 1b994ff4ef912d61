"""Stock under concurrency: 50 reservations at once on one SKU (MariaDB/MySQL only).

Each thread has its own database connection (Django's connections are per thread) and its own
order; all start together behind a barrier. With 30 on hand and 50 orders of one piece each,
exactly 30 reservations succeed, 20 are refused with the translated shortage message, and the
level ends with reserved == 30 == the sum of the active reservations.

Run on MariaDB:
    DATABASE_URL=mysql://root@127.0.0.1:3306/crm_ci \
        .venv/bin/pytest -m mysql tests/sales/test_inventory_concurrency.py
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.db.models import Sum
from django.utils import translation

from sales.models import StockLevel, StockMove, StockReservation
from sales.services.inventory import stock_adjust, stock_receive, stock_reserve_order, stock_ship_order

from .factories import ProductFactory
from .factories_inventory import bare_order, default_warehouse

pytestmark = [pytest.mark.mysql, pytest.mark.django_db(transaction=True)]

THREADS = 50


@pytest.fixture(autouse=True)
def _needs_mysql():
    if connection.vendor != "mysql":
        pytest.skip("needs MySQL/MariaDB: set DATABASE_URL=mysql://...")


def run_together(functions):
    """Run the callables in threads started at once; return [(result or None, error or None)]."""
    barrier = threading.Barrier(len(functions))
    outcomes: list = [None] * len(functions)

    def worker(index, function):
        # The active language is per thread; speak English like the test's own thread.
        translation.activate("en")
        try:
            barrier.wait(timeout=30)
            outcomes[index] = (function(), None)
        except Exception as error:
            outcomes[index] = (None, error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a reservation hung"
    return outcomes


def test_50_concurrent_reservations_never_oversell():
    warehouse = default_warehouse()
    product = ProductFactory(sku="HOT-1")
    stock_receive(actor=None, product=product, warehouse=warehouse, quantity=Decimal(30), reason="入库")
    orders = [bare_order([(product, 1)]) for _ in range(THREADS)]

    outcomes = run_together(
        [lambda order=order: stock_reserve_order(actor=None, order=order) for order in orders]
    )

    errors = [error for _result, error in outcomes if error is not None]
    assert all(isinstance(error, ValidationError) for error in errors), errors
    assert len(errors) == 20
    assert all("HOT-1" in error.messages[0] and "0 available" in error.messages[0] for error in errors)
    level = StockLevel.objects.get(product=product, warehouse=warehouse)
    active = StockReservation.objects.filter(product=product, state="active")
    assert active.count() == 30
    assert level.reserved == 30 == active.aggregate(total=Sum("quantity"))["total"]
    assert level.on_hand == 30
    assert level.available == 0


def test_concurrent_shipments_and_adjustments_keep_the_level_equal_to_its_moves():
    warehouse = default_warehouse()
    product = ProductFactory(sku="HOT-2")
    stock_receive(actor=None, product=product, warehouse=warehouse, quantity=Decimal(40), reason="入库")
    orders = [bare_order([(product, 2)]) for _ in range(10)]
    for order in orders:
        stock_reserve_order(actor=None, order=order)

    shipping = [lambda order=order: stock_ship_order(actor=None, order=order) for order in orders]
    # Each adjustment takes 3 of the 20 unreserved: only 6 of the 10 fit.
    adjusting = [
        lambda: stock_adjust(
            actor=None, product=product, warehouse=warehouse, quantity=Decimal(-3), reason="盘亏"
        )
        for _ in range(10)
    ]
    outcomes = run_together(shipping + adjusting)

    ship_errors = [error for _r, error in outcomes[:10] if error is not None]
    adjust_errors = [error for _r, error in outcomes[10:] if error is not None]
    assert ship_errors == []
    assert len(adjust_errors) == 4
    assert all(isinstance(e, ValidationError) for e in adjust_errors)
    level = StockLevel.objects.get(product=product, warehouse=warehouse)
    moved = StockMove.objects.filter(product=product, warehouse=warehouse).aggregate(total=Sum("quantity"))
    assert level.on_hand == moved["total"] == 40 - 20 - 18
    assert level.reserved == 0
