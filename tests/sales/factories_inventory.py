"""Factories of the inventory tests: stock through the services, bare orders as plain rows.

``bare_order`` writes an Order with lines directly (no order services, no reservation), so the
inventory services can be tested on their own; order tests build orders through
sales.services.orders instead.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from sales.models import Order, OrderLine, OrderStatus
from sales.services.inventory import stock_receive
from tests.customers.factories import CustomerFactory

from .factories import ProductFactory, WarehouseFactory

_numbers = itertools.count(1)


def default_warehouse(**kwargs):
    kwargs.setdefault("code", "main")
    kwargs.setdefault("name", "主仓")
    kwargs.setdefault("is_default", True)
    return WarehouseFactory(**kwargs)


def stocked(product=None, warehouse=None, quantity="10", **product_fields):
    """A product with ``quantity`` received into ``warehouse`` (the default one if not given)."""
    product = product or ProductFactory(**product_fields)
    warehouse = warehouse or default_warehouse()
    stock_receive(actor=None, product=product, warehouse=warehouse, quantity=Decimal(quantity), reason="test")
    return product


def bare_order(lines, *, customer=None, warehouse=None, owner=None, status=OrderStatus.PENDING_PAYMENT):
    """An order with ``lines`` = [(product, quantity), ...], written as plain rows."""
    customer = customer or CustomerFactory()
    order = Order.objects.create(
        number=f"SOTEST-{next(_numbers):06d}",
        customer=customer,
        warehouse=warehouse,
        owner=owner,
        status=status,
    )
    for position, (product, quantity) in enumerate(lines):
        OrderLine.objects.create(
            order=order,
            position=position,
            product=product,
            sku=product.sku,
            name=product.name,
            quantity=Decimal(str(quantity)),
            unit_price=product.list_price,
            tax_rate=product.tax_rate,
        )
    return order
