"""Factories of the orders tests: orders built through sales.services.orders, as in production.

order = make_order(actor=rep, customer=customer, lines=[(product, "2")])       # a draft
order = make_order(actor=rep, confirm=True)          # pending payment, stock reserved
order = paid_order(actor=manager)                    # paid in full
"""

from __future__ import annotations

from decimal import Decimal

from sales.models import Channel, PaymentMethod
from sales.services.orders import OrderLineInput, order_create
from sales.services.payments import payment_record
from tests.customers.factories import CustomerFactory

from .factories_inventory import default_warehouse, stocked


def make_order(
    *,
    actor=None,
    customer=None,
    lines=None,
    channel=Channel.OFFLINE,
    confirm=False,
    stock="100",
    **kwargs,
):
    """An order of ``lines`` = [(product, quantity[, unit_price[, discount_rate]]), ...]; by default
    one line of a freshly stocked product (100 in the default warehouse)."""
    default_warehouse()
    if customer is None:
        customer = CustomerFactory(owner=actor if getattr(actor, "pk", None) else None)
    if lines is None:
        lines = [(stocked(quantity=stock), "2")]
    inputs = []
    for line in lines:
        product, quantity, *rest = line
        inputs.append(
            OrderLineInput(
                product=product,
                quantity=str(quantity),
                unit_price=str(rest[0]) if len(rest) > 0 and rest[0] is not None else None,
                discount_rate=str(rest[1]) if len(rest) > 1 else Decimal("0"),
            )
        )
    return order_create(
        actor=actor, customer=customer, channel=channel, lines=inputs, confirm=confirm, **kwargs
    )


def paid_order(*, actor=None, payer=None, **kwargs):
    """A confirmed order paid in full by ``payer`` (default ``actor``)."""
    order = make_order(actor=actor, confirm=True, **kwargs)
    payment_record(
        actor=payer or actor, order=order, amount=order.total_amount, method=PaymentMethod.BANK_TRANSFER
    )
    order.refresh_from_db()
    return order
