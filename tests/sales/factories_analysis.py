"""Factories of the analysis tests: plain order rows with the figures the analysis reads.

The analysis reads orders only (customer, status, total, refunded amount, time), so these rows skip
the order services (lines, stock, payments): ``order_row(customer, total="100", days_ago=3)``.
The end-to-end path through the order services is covered in test_analysis_services.py.
"""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

from django.utils import timezone

from sales.models import Order, OrderStatus

_numbers = itertools.count(1)


def order_row(
    customer,
    *,
    total="100.00",
    days_ago: float = 1,
    status=OrderStatus.COMPLETED,
    refunded="0",
    at: datetime.datetime | None = None,
) -> Order:
    total = Decimal(str(total))
    return Order.objects.create(
        number=f"TA{next(_numbers):08d}",
        customer=customer,
        status=status,
        goods_amount=total,
        total_amount=total,
        paid_amount=total,
        refunded_amount=Decimal(str(refunded)),
        ordered_at=at or timezone.now() - datetime.timedelta(days=days_ago),
        owner=customer.owner,
        team=customer.team,
    )


def orders_for(customer, *days_ago: float, total="100.00", status=OrderStatus.COMPLETED) -> list[Order]:
    return [order_row(customer, total=total, days_ago=d, status=status) for d in days_ago]
