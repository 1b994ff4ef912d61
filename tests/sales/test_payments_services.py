"""sales.services.payments and sales.services.invoices: receipts, plans, reminders, refunds, invoices."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.accounts import roles
from crm.core.audit.models import AuditEntry
from crm.core.notifications.models import Notification
from sales.models import Invoice, OrderStatus, PaymentPlanItem, Refund, StockLevel
from sales.services import invoices as invoice_services
from sales.services.orders import order_transition
from sales.services.payments import (
    PlanItemInput,
    payment_plan_set,
    payment_record,
    payment_reminders_send,
    refund_complete,
    refund_decline,
    refund_request,
    refundable_amount,
)

from .factories_inventory import stocked
from .factories_orders import make_order, paid_order

pytestmark = pytest.mark.django_db

D = Decimal
S = OrderStatus


def codes(error: ValidationError) -> set[str]:
    if hasattr(error, "error_dict"):
        return {e.code for errors in error.error_dict.values() for e in errors}
    return {e.code for e in error.error_list}


def hundred_order(actor, **kwargs):
    product = stocked(quantity="10", list_price=D("100.00"))
    return make_order(actor=actor, lines=[(product, "1")], confirm=True, **kwargs)


# Payments ----------------------------------------------------------------------------------------


def test_partial_payments_then_paid(rep, manager):
    order = hundred_order(rep)
    payment_record(actor=manager, order=order, amount="30.00", method="alipay", reference="2026112422001")
    assert order.status == S.PENDING_PAYMENT
    assert order.paid_amount == D("30.00")
    assert order.balance_due == D("70.00")
    payment_record(actor=manager, order=order, amount=D("70.00"), method="wechat_pay")
    assert order.status == S.PAID
    assert order.balance_due == 0
    assert order.payments.count() == 2
    assert AuditEntry.objects.filter(object_type="sales.payment").count() == 2
    # the owner hears that the order was paid (someone else booked it)
    assert Notification.objects.filter(recipient=rep, category="orders").exists()


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("100.01", "overpayment"),
        ("0", "amount_not_positive"),
        ("-5", "amount_negative"),
        ("1.001", "amount_places"),
    ],
)
def test_bad_payment_amounts(rep, manager, amount, code):
    order = hundred_order(rep)
    with pytest.raises(ValidationError) as caught:
        payment_record(actor=manager, order=order, amount=amount)
    assert code in codes(caught.value)
    assert order.payments.count() == 0


def test_payment_on_a_draft_or_cancelled_order_is_refused(rep, manager):
    draft = make_order(actor=rep)
    with pytest.raises(ValidationError) as caught:
        payment_record(actor=manager, order=draft, amount="1.00")
    assert "not_payable" in codes(caught.value)


def test_payment_method_and_future_date_are_checked(rep, manager):
    order = hundred_order(rep)
    with pytest.raises(ValidationError):
        payment_record(actor=manager, order=order, amount="1.00", method="bitcoin")
    with pytest.raises(ValidationError):
        payment_record(
            actor=manager, order=order, amount="1.00", received_at=timezone.now() + datetime.timedelta(days=9)
        )


# Plans -------------------------------------------------------------------------------------------


def test_plan_must_add_up_to_the_total(rep):
    order = hundred_order(rep)
    today = timezone.localdate()
    with pytest.raises(ValidationError) as caught:
        payment_plan_set(actor=rep, order=order, items=[PlanItemInput(today, "60.00")])
    assert "plan_sum" in codes(caught.value)
    items = payment_plan_set(
        actor=rep,
        order=order,
        items=[PlanItemInput(today + datetime.timedelta(days=30), "60.00"), PlanItemInput(today, "40.00")],
    )
    assert [i.amount for i in items] == [D("40.00"), D("60.00")]  # by due date


def test_payments_are_allocated_to_instalments_by_due_date(rep, manager):
    order = hundred_order(rep)
    today = timezone.localdate()
    payment_plan_set(
        actor=rep,
        order=order,
        items=[PlanItemInput(today, "40.00"), PlanItemInput(today + datetime.timedelta(days=30), "60.00")],
    )
    payment_record(actor=manager, order=order, amount="50.00")
    first, second = PaymentPlanItem.objects.filter(order=order).order_by("due_date")
    assert (first.paid_amount, second.paid_amount) == (D("40.00"), D("10.00"))
    assert second.outstanding == D("50.00")


def test_plan_with_bad_rows_names_the_row(rep):
    order = hundred_order(rep)
    with pytest.raises(ValidationError) as caught:
        payment_plan_set(actor=rep, order=order, items=[PlanItemInput(timezone.localdate(), "abc")])
    assert "1" in caught.value.messages[0]


def test_plan_cannot_change_once_paid(rep, manager):
    order = paid_order(actor=rep, payer=manager)
    with pytest.raises(ValidationError) as caught:
        payment_plan_set(actor=rep, order=order, items=[])
    assert "not_plannable" in codes(caught.value)


def test_reminders_before_due_and_once_when_overdue(rep, manager, django_capture_on_commit_callbacks):
    rep.manager = manager
    rep.save(update_fields=["manager"])
    product = stocked(quantity="10", list_price=D("100.00"))
    order = make_order(
        actor=rep,
        lines=[(product, "1")],
        ordered_at=timezone.now() - datetime.timedelta(days=60),
        confirm=True,
    )
    today = timezone.localdate()
    payment_plan_set(
        actor=rep,
        order=order,
        items=[
            PlanItemInput(today - datetime.timedelta(days=10), "50.00"),
            PlanItemInput(today + datetime.timedelta(days=2), "30.00"),
            PlanItemInput(today + datetime.timedelta(days=20), "20.00"),
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        counts = payment_reminders_send(today=today)
    assert counts == {"due_soon": 1, "overdue": 1}
    assert Notification.objects.filter(recipient=rep, category="payments").count() == 2
    assert Notification.objects.filter(recipient=manager, category="payments").count() == 1
    assert len(mail.outbox) >= 1
    # once only
    assert payment_reminders_send(today=today) == {"due_soon": 0, "overdue": 0}


def test_no_reminders_for_paid_or_cancelled_orders(rep, manager):
    order = hundred_order(rep)
    payment_plan_set(actor=rep, order=order, items=[PlanItemInput(timezone.localdate(), "100.00")])
    order_transition(actor=rep, order=order, to_status=S.CANCELLED)
    assert payment_reminders_send() == {"due_soon": 0, "overdue": 0}


# Refunds -----------------------------------------------------------------------------------------


def test_partial_refund_returns_the_order_to_where_it_was(rep, manager):
    order = paid_order(actor=rep, payer=manager)
    refund = refund_request(actor=rep, order=order, amount="10.00", reason="少发一件赠品")
    assert order.status == S.REFUND_REQUESTED
    assert order.status_before_refund == S.PAID
    refund_complete(actor=manager, refund=refund)
    order.refresh_from_db()
    assert refund.status == Refund.Status.REFUNDED
    assert order.status == S.PAID
    assert order.refunded_amount == D("10.00")
    assert refundable_amount(order) == order.paid_amount - D("10.00")


def test_refunding_more_than_paid_is_refused(rep, manager):
    order = hundred_order(rep)
    payment_record(actor=manager, order=order, amount="30.00")
    with pytest.raises(ValidationError) as caught:
        refund_request(actor=rep, order=order, amount="30.01", reason="x")
    assert "refund_too_much" in codes(caught.value)
    refund = refund_request(actor=rep, order=order, amount="30.00", reason="取消订金")
    refund_complete(actor=manager, refund=refund)
    order.refresh_from_db()
    assert order.status == S.REFUNDED  # everything paid came back
    assert StockLevel.objects.get(product=order.lines.get().product).reserved == 0


def test_full_refund_with_restock_books_the_goods_back(rep, manager):
    product = stocked(quantity="10")
    order = paid_order(actor=rep, payer=manager, lines=[(product, "3")])
    order_transition(actor=rep, order=order, to_status=S.SHIPPED)
    assert StockLevel.objects.get(product=product).on_hand == 7
    with pytest.raises(ValidationError) as caught:
        refund_request(actor=rep, order=order, amount="1.00", reason="x", restock=True)
    assert "restock_partial" in codes(caught.value)
    refund = refund_request(
        actor=rep, order=order, amount=order.paid_amount, reason="质量问题退货", restock=True
    )
    refund_complete(actor=manager, refund=refund)
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    assert StockLevel.objects.get(product=product).on_hand == 10


def test_declined_refund_and_decided_twice(rep, manager):
    order = paid_order(actor=rep, payer=manager)
    order_transition(actor=rep, order=order, to_status=S.SHIPPED)
    refund = refund_request(actor=rep, order=order, amount="5.00", reason="x")
    with pytest.raises(ValidationError):  # one open refund at a time
        refund_request(actor=rep, order=order, amount="5.00", reason="y")
    refund_decline(actor=manager, refund=refund, comment="超出退款期")
    order.refresh_from_db()
    assert order.status == S.SHIPPED
    assert order.refunded_amount == 0
    with pytest.raises(ValidationError) as caught:
        refund_complete(actor=manager, refund=refund)
    assert "refund_decided" in codes(caught.value)


def test_refund_needs_a_reason_and_a_refundable_state(rep, manager):
    order = paid_order(actor=rep, payer=manager)
    with pytest.raises(ValidationError):
        refund_request(actor=rep, order=order, amount="1.00", reason="  ")
    draft = make_order(actor=rep)
    with pytest.raises(ValidationError) as caught:
        refund_request(actor=rep, order=draft, amount="1.00", reason="x")
    assert "not_refundable" in codes(caught.value)


# Invoices ----------------------------------------------------------------------------------------


def test_invoice_request_issue_void(rep, manager):
    order = paid_order(actor=rep, payer=manager)
    invoice = invoice_services.invoice_request(actor=rep, order=order, title="杭州云帆贸易有限公司")
    assert invoice.amount == order.total_amount
    assert invoice.status == Invoice.Status.REQUESTED
    with pytest.raises(ValidationError):  # nothing left to invoice
        invoice_services.invoice_request(actor=rep, order=order, title="X")
    invoice_services.invoice_issue(actor=manager, invoice=invoice, number="24332000000012345678")
    assert invoice.status == Invoice.Status.ISSUED
    assert invoice.issued_at
    second = make_order(actor=rep, confirm=True)
    other = invoice_services.invoice_request(actor=rep, order=second, title="Y", amount="1.00")
    with pytest.raises(ValidationError) as caught:
        invoice_services.invoice_issue(actor=manager, invoice=other, number="24332000000012345678")
    assert "number_taken" in codes(caught.value)
    generated = invoice_services.invoice_issue(actor=manager, invoice=other)
    assert generated.number.startswith("INV")
    invoice_services.invoice_void(actor=manager, invoice=invoice, reason="抬头错误")
    assert invoice.status == Invoice.Status.VOID
    assert invoice_services.invoiceable_amount(order) == order.total_amount


def test_invoice_validation(rep, manager):
    order = paid_order(actor=rep, payer=manager)
    with pytest.raises(ValidationError) as caught:
        invoice_services.invoice_request(actor=rep, order=order, title="", kind="special", tax_id="abc")
    assert {"title", "tax_id"} <= set(caught.value.message_dict)
    with pytest.raises(ValidationError) as caught:
        invoice_services.invoice_request(actor=rep, order=order, title="X", amount="99999.00")
    assert "amount" in caught.value.message_dict
    special = invoice_services.invoice_request(
        actor=rep, order=order, title="X", kind="special", tax_id="91330106ma2abcde0x", amount="1.00"
    )
    assert special.tax_id == "91330106MA2ABCDE0X"


def test_invoice_on_a_draft_is_refused(rep):
    with pytest.raises(ValidationError):
        invoice_services.invoice_request(actor=rep, order=make_order(actor=rep), title="X")


def test_service_roles_can_request_refunds_of_orders_they_see(make_user, rep, manager):
    agent = make_user(roles.SERVICE_AGENT, username="agent-x")
    order = paid_order(actor=rep, payer=manager)
    refund = refund_request(actor=agent, order=order, amount="1.00", reason="售后补偿")
    assert refund.requested_by == agent
