"""The orders area's part of ``manage.py seed_demo`` (R5.2.1, R5.1.1): orders, payments, refunds,
invoices that tell a story with the demo customers of sales1 and sales2.

For each rep, on customers the quotes step left alone:

* a Tmall order settled by the platform, shipped and completed two months ago (platform status
  交易成功), with an electronic invoice issued;
* a JD order paid by Alipay and shipped last week (tracking number);
* an offline order with a deposit paid and the rest due (balance due on the order list);
* a B2B order shipped on credit under a three-instalment plan whose first instalment is overdue
  (on the receivables list; the rep and salesmgr have the overdue notice);
* a WeChat order paid and then partly refunded (one item returned short), invoice requested;
* a cancelled order (its stock released) and a draft being prepared.

Everything goes through the order, payment and invoice services (history, audit, stock effects as
in production); salesmgr books the payments and decides the refund. Idempotent: nothing is added
when the demo marker order (Tmall DEMO-TM-<rep>-1) exists. Needs the inventory step's products.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from customers.models import Customer

from ..models import Channel, Order, OrderStatus, PaymentMethod, Product
from . import invoices, orders, payments

REPS = ("sales1", "sales2")
S = OrderStatus
D = Decimal


def _write(stdout, message: str) -> None:
    if stdout is not None:
        stdout.write(message)


def _ago(days: int, hour: int = 10) -> datetime.datetime:
    local = timezone.localtime() - datetime.timedelta(days=days)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


def seed_orders(*, scale: int = 1, stdout=None) -> int:
    users = {u.username: u for u in get_user_model().objects.filter(username__in=(*REPS, "salesmgr"))}
    if not all(name in users for name in (*REPS, "salesmgr")):
        _write(stdout, "orders: demo users missing, skipped")
        return 0
    if Order.objects.filter(channel=Channel.TMALL, external_number__startswith="DEMO-TM-").exists():
        _write(stdout, "orders: demo orders exist, nothing added")
        return 0
    products = {
        p.sku: p for p in Product.objects.filter(sku__startswith="DEMO-", status=Product.Status.ON_SALE)
    }
    if len(products) < 6:
        _write(stdout, "orders: no demo products (the inventory step adds them), skipped")
        return 0
    created = 0
    for rep_name in REPS:
        rep, manager = users[rep_name], users["salesmgr"]
        customers = list(Customer.objects.alive().filter(owner=rep).order_by("pk")[8:16])
        if len(customers) < 7:
            continue
        try:
            with transaction.atomic():
                created += _story(rep, manager, customers, products)
        except ValidationError as exc:  # not enough stock left, e.g. after hand-made changes
            _write(stdout, f"orders: story of {rep_name} skipped ({'; '.join(exc.messages)})")
    _write(stdout, f"orders: {created} orders")
    return created


def _lines(products, *specs):
    available = sorted(products)
    result = []
    for index, quantity in specs:
        sku = available[index % len(available)]
        result.append(orders.OrderLineInput(product=products[sku], quantity=D(quantity)))
    return result


def _confirm(rep, manager, order) -> Order:
    orders.order_confirm(actor=rep, order=order)
    if order.status == S.PENDING_APPROVAL:
        from . import approvals

        request = order.approvals.filter(status="pending").first()
        if request is not None:
            approvals.approval_decide(actor=manager, request=request, approve=True, comment="同意")
        order.refresh_from_db()
    return order


def _story(rep, manager, customers, products) -> int:
    tag = rep.username[-1]
    today = timezone.localdate()

    def create(customer, lines, **kwargs):
        return orders.order_create(
            actor=rep,
            customer=customer,
            lines=lines,
            address=customer.addresses.first(),
            **kwargs,
        )

    # 1. Tmall, settled by the platform, completed two months ago; invoice issued.
    tmall = create(
        customers[0],
        _lines(products, (0, "1"), (7, "2")),
        channel=Channel.TMALL,
        external_number=f"DEMO-TM-{tag}-1",
        ordered_at=_ago(62),
        source=Order.Source.IMPORT,
    )
    orders.order_apply_platform_status(
        actor=rep, order=tmall, status=S.COMPLETED, at=_ago(55), platform_status="交易成功"
    )
    invoice = invoices.invoice_request(actor=rep, order=tmall, title=customers[0].name)
    invoices.invoice_issue(actor=manager, invoice=invoice)

    # 2. JD, paid by Alipay, shipped last week.
    jd = create(
        customers[1],
        _lines(products, (2, "1")),
        channel=Channel.JD,
        external_number=f"DEMO-JD-{tag}-1",
        ordered_at=_ago(8),
    )
    _confirm(rep, manager, jd)
    payments.payment_record(
        actor=manager, order=jd, amount=jd.total_amount, method=PaymentMethod.ALIPAY, received_at=_ago(8, 11)
    )
    orders.order_transition(
        actor=rep, order=jd, to_status=S.SHIPPED, carrier="京东物流", tracking_number=f"JD{tag}0001"
    )

    # 3. Offline, a deposit paid, the rest due.
    offline = create(
        customers[2], _lines(products, (4, "2"), (10, "3")), channel=Channel.OFFLINE, ordered_at=_ago(5)
    )
    _confirm(rep, manager, offline)
    deposit = (offline.total_amount * D("0.3")).quantize(D("0.01"))
    payments.payment_record(
        actor=manager, order=offline, amount=deposit, method=PaymentMethod.WECHAT_PAY, received_at=_ago(5, 15)
    )

    # 4. B2B on credit: three instalments, the first overdue; shipped under the plan.
    b2b = create(
        customers[3],
        _lines(products, (1, "5"), (3, "5")),
        channel=Channel.OFFLINE,
        ordered_at=_ago(40),
        notes="月结客户，分三期付款",
    )
    _confirm(rep, manager, b2b)
    first = (b2b.total_amount * D("0.3")).quantize(D("0.01"))
    second = (b2b.total_amount * D("0.3")).quantize(D("0.01"))
    payments.payment_plan_set(
        actor=rep,
        order=b2b,
        items=[
            payments.PlanItemInput(today + datetime.timedelta(days=20), first, "首付款"),
            payments.PlanItemInput(today + datetime.timedelta(days=50), second, "第二期"),
            payments.PlanItemInput(
                today + datetime.timedelta(days=80), b2b.total_amount - first - second, "尾款"
            ),
        ],
    )
    orders.order_transition(
        actor=rep, order=b2b, to_status=S.SHIPPED, carrier="顺丰", tracking_number=f"SF{tag}0002"
    )
    # The first instalment has since fallen due unpaid (dates moved back as time would have).
    b2b.plan_items.filter(note="首付款").update(due_date=today - datetime.timedelta(days=10))
    b2b.plan_items.filter(note="第二期").update(due_date=today + datetime.timedelta(days=2))
    payments.payment_reminders_send(today=today)

    # 5. WeChat, paid, then one item refunded; invoice requested.
    wechat = create(customers[4], _lines(products, (5, "2")), channel=Channel.WECHAT, ordered_at=_ago(20))
    _confirm(rep, manager, wechat)
    payments.payment_record(
        actor=manager,
        order=wechat,
        amount=wechat.total_amount,
        method=PaymentMethod.WECHAT_PAY,
        received_at=_ago(20),
    )
    orders.order_transition(
        actor=rep, order=wechat, to_status=S.SHIPPED, carrier="中通", tracking_number=f"ZT{tag}0003"
    )
    unit = wechat.lines.first().line_total / wechat.lines.first().quantity
    refund = payments.refund_request(
        actor=rep, order=wechat, amount=unit.quantize(D("0.01")), reason="一件有瑕疵，部分退款", at=_ago(15)
    )
    payments.refund_complete(actor=manager, refund=refund, at=_ago(14))
    invoices.invoice_request(actor=rep, order=wechat, title=customers[4].name)

    # 6. Cancelled before payment (stock released) and a draft being prepared.
    cancelled = create(customers[5], _lines(products, (6, "1")), channel=Channel.DOUYIN, ordered_at=_ago(3))
    _confirm(rep, manager, cancelled)
    orders.order_transition(actor=rep, order=cancelled, to_status=S.CANCELLED, note="客户改买其他款")
    create(
        customers[6], _lines(products, (8, "1"), (9, "1")), channel=Channel.OWN_SITE, notes="等客户确认颜色"
    )
    return 7
