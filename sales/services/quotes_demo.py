"""The quotes area's part of ``manage.py seed_demo`` (R5.2.1, R6.1.5).

A story with the demo sales team (sales1 and sales2 report to salesmgr) and their customers, on the
products the inventory step added:

* drafts being prepared, and quotes sent and waiting for an answer (one expiring this week);
* a quote sent, accepted by the customer and turned into an order in one click;
* one rejected (price too high), then revised with a better price and sent again (revision 2);
* one whose validity passed and that the nightly job expired;
* a large discount from sales1 that waits for salesmgr's approval (in his approvals list), and one
  salesmgr already approved.

Goes through the services (numbers, totals, approvals, audit as in production). Idempotent: nothing
is added when the demo reps already have quotes.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from sales.models import Product, Quote

from . import approvals, quotes

REPS = ("sales1", "sales2")


def _write(stdout, message: str) -> None:
    if stdout is not None:
        stdout.write(message)


def _line(product, quantity, discount="0"):
    return quotes.QuoteLineInput(product=product, quantity=Decimal(quantity), discount_rate=Decimal(discount))


def seed_quotes(*, scale: int = 1, stdout=None) -> int:
    users = {u.username: u for u in get_user_model().objects.filter(username__in=(*REPS, "salesmgr"))}
    if not all(name in users for name in (*REPS, "salesmgr")):
        _write(stdout, "quotes: demo users missing, skipped")
        return 0
    if Quote.objects.filter(owner__username__in=REPS).exists():
        _write(stdout, "quotes: demo quotes exist, nothing added")
        return 0
    products = list(Product.objects.filter(status=Product.Status.ON_SALE).order_by("sku")[:12])
    if len(products) < 4:
        _write(stdout, "quotes: no products (the inventory step adds them), skipped")
        return 0
    approvals.ensure_default_rules()
    created = 0
    with transaction.atomic():
        for rep_name in REPS:
            rep, manager = users[rep_name], users["salesmgr"]
            customers = list(Customer.objects.alive().filter(owner=rep).order_by("pk")[:8])
            if len(customers) < 7:
                continue
            created += _story(rep, manager, customers, products)
    _write(stdout, f"quotes: {created} quotes")
    return created


def _story(rep, manager, customers, products) -> int:
    today = timezone.localdate()
    p = products
    made = []

    def create(customer, lines, **kwargs):
        quote = quotes.quote_create(actor=rep, customer=customer, lines=lines, **kwargs)
        made.append(quote)
        return quote

    # Drafts being prepared.
    create(customers[0], [_line(p[0], "2"), _line(p[1], "1")], title="新品试用报价")
    # Sent, waiting; the second one expires within the week.
    sent = create(customers[1], [_line(p[2], "10", "0.05")], title="年度采购报价")
    quotes.quote_send(actor=rep, quote=sent)
    soon = create(customers[2], [_line(p[3], "3")], valid_until=today + datetime.timedelta(days=3))
    quotes.quote_send(actor=rep, quote=soon)
    # Accepted and converted to an order in one click (needs stock; skipped quietly without).
    won = create(customers[3], [_line(p[0], "1"), _line(p[2], "2", "0.05")], title="门店开业套餐")
    quotes.quote_send(actor=rep, quote=won)
    try:
        with transaction.atomic():
            quotes.quote_accept_and_convert(actor=rep, quote=won)
    except (ValidationError, ImportError):
        quotes.quote_accept(actor=rep, quote=won)
    # Rejected, then revised with a better price and sent again.
    lost = create(customers[4], [_line(p[1], "5")], title="批量采购报价")
    quotes.quote_send(actor=rep, quote=lost)
    quotes.quote_reject(actor=rep, quote=lost, reason="价格偏高")
    quotes.quote_revise(actor=rep, quote=lost, reason="降价 8%")
    quotes.quote_update(actor=rep, quote=lost, lines=[_line(p[1], "5", "0.08")])
    quotes.quote_send(actor=rep, quote=lost)
    # Expired by the nightly job.
    old = create(customers[5], [_line(p[3], "1")])
    quotes.quote_send(actor=rep, quote=old)
    Quote.objects.filter(pk=old.pk).update(valid_until=today - datetime.timedelta(days=1))
    quotes.quote_expire_due(today=today)
    # A large discount: awaiting the manager's approval, and one already approved (when the rules
    # of this installation ask for approval at all).
    big = create(customers[6], [_line(p[0], "20", "0.18")], title="大客户特价（待审批）")
    granted = create(customers[6], [_line(p[2], "30", "0.15")], title="大客户特价（已批准）")
    try:
        approvals.approval_request(actor=rep, document=big)
        request = approvals.approval_request(actor=rep, document=granted)
    except ValidationError:
        return len(made)
    if approvals.can_decide(manager, request):
        approvals.approval_decide(actor=manager, request=request, approve=True, comment="同意，限本季度")
    return len(made)
